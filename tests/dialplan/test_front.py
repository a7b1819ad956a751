"""The SIP front's topology as code (issue 23): site/cluster.conf read and
checked against a node's own files, Kamailio's files rendered from it and
accepted by ``kamailio -c`` (when Kamailio is installed), the peers' device
state sections printed for a node."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from switchboard.console.front_cli import render_peers
from switchboard.dialplan_tools.dialcheck import check
from switchboard.dialplan_tools.front import FRONT_DIR, kamailio_binary, parse_cluster, write_front
from tests.helpers import CLI, make_site

CLUSTER = """\
[front]
listen = 127.0.0.12:{front_port}
carrier = 127.0.0.2
probe_s = 1
node_timeout_ms = 800

[pbx-a]
sip = 127.0.0.1:{carrier_port}
ami = 127.0.0.1:5038

[pbx-b]
sip = 127.0.0.11:{carrier_port}
ami = 127.0.0.11:5038
state = {b_state}
"""


def two_node_site(tmp: Path, b_state: str = "active") -> tuple[Path, dict[str, int]]:
    """The example site as node pbx-a of two, with the front on 127.0.0.12."""
    site, ports = make_site(tmp)
    (site / "cluster.conf").write_text(CLUSTER.format(front_port=ports["carrier"] + 1,
                                                      carrier_port=ports["carrier"],
                                                      b_state=b_state))
    cluster, found = parse_cluster(site / "cluster.conf")
    assert cluster is not None and not found, found
    (site / "peers.conf").write_text(render_peers(cluster, "pbx-a"))
    (site / "modules.conf").write_text("load = res_pjsip_outbound_publish.so\n"
                                       "load = res_pjsip_publish_asterisk.so\n")
    trunk = (site / "trunk.conf").read_text()
    (site / "trunk.conf").write_text(trunk.replace("match = 127.0.0.2",
                                                   "match = 127.0.0.2, 127.0.0.12"))
    return site, ports


def codes(findings: list) -> list[str]:
    return [f"{f.code}: {f.message}" for f in findings if f.code.startswith(("SB-CLUSTER",
                                                                            "SB-FRONT"))]


def test_a_node_of_two_checks_clean(tmp_path: Path) -> None:
    site, _ = two_node_site(tmp_path)
    assert codes(check(site_dir=site)) == []


def test_what_the_check_catches(tmp_path: Path) -> None:
    site, ports = two_node_site(tmp_path)
    # the carrier's identify without the front: calls through it would be strangers'
    trunk = (site / "trunk.conf").read_text()
    (site / "trunk.conf").write_text(trunk.replace(", 127.0.0.12", ""))
    # no device states from pbx-b accepted
    peers = (site / "peers.conf").read_text()
    (site / "peers.conf").write_text(peers.split("[pbx-b](sb-node-inbound)")[0])
    found = "\n".join(codes(check(site_dir=site)))
    assert "does not match the front (127.0.0.12)" in found
    assert "node pbx-b's device states are not accepted" in found
    # this node's transport elsewhere than cluster.conf says
    (site / "cluster.conf").write_text((site / "cluster.conf").read_text().replace(
        f"sip = 127.0.0.1:{ports['carrier']}", "sip = 127.0.0.1:5999"))
    found = "\n".join(codes(check(site_dir=site)))
    assert "but site/cluster.conf sends this node's calls to 127.0.0.1:5999" in found
    # a node list the product cannot use
    (site / "cluster.conf").write_text("[front]\nlisten = nowhere\n\n[pbx-a]\nsip = x\n")
    found = "\n".join(codes(check(site_dir=site)))
    assert "[front] listen is the front's IPv4 address:port" in found
    assert "[front] carrier names the carrier's signalling addresses" in found
    assert "[pbx-a] sip is the node's carrier transport" in found


def test_node_not_in_the_cluster(tmp_path: Path) -> None:
    site, _ = two_node_site(tmp_path)
    node = (site / "node.conf").read_text().replace("systemname = pbx-a", "systemname = pbx-z")
    (site / "node.conf").write_text(node)
    assert any("this node (pbx-z) is not a node of site/cluster.conf" in c
               for c in codes(check(site_dir=site)))


def test_rendered_front(tmp_path: Path) -> None:
    site, ports = two_node_site(tmp_path, b_state="drained")
    cluster, _ = parse_cluster(site / "cluster.conf")
    assert cluster is not None
    out = tmp_path / "front"
    write_front(cluster, out)
    assert (out / "kamailio.cfg").read_text() == (FRONT_DIR / "kamailio.cfg").read_text()
    # a drained node is disabled (4): no new calls, still probed
    assert (out / "dispatcher.list").read_text().splitlines() == [
        f"1 sip:127.0.0.1:{ports['carrier']} 0 0 name=pbx-a",
        f"1 sip:127.0.0.11:{ports['carrier']} 4 0 name=pbx-b"]
    assert (out / "address.list").read_text().splitlines() == [
        "1 127.0.0.2 32 0", "2 127.0.0.1 32 0", "2 127.0.0.11 32 0"]
    site_cfg = (out / "front-site.cfg").read_text()
    assert f"listen=udp:127.0.0.12:{ports['carrier'] + 1}" in site_cfg
    assert "#!define SB_NODE_TIMEOUT_MS 800" in site_cfg
    binary = kamailio_binary()
    if binary is None:
        pytest.skip("kamailio not installed (apt-get install kamailio): kamailio -c not run")
    r = subprocess.run([binary, "-c", "-f", str(out / "kamailio.cfg")], capture_output=True,
                       text=True, timeout=60, check=False)
    assert r.returncode == 0, r.stderr


def test_front_cli(tmp_path: Path) -> None:
    site, _ = two_node_site(tmp_path)
    shown = subprocess.run([str(CLI), "front", "show", "--site", str(site)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert "pbx-b" in shown.stdout and "active" in shown.stdout
    peers = subprocess.run([str(CLI), "front", "peers", "--site", str(site), "--node",
                            "pbx-b"], capture_output=True, text=True, timeout=60, check=False)
    # pbx-b publishes to pbx-a as itself
    assert "server_uri = sip:pbx-b@127.0.0.1:" in peers.stdout
    shutil.copy(site / "cluster.conf", tmp_path / "broken.conf")
    (site / "cluster.conf").write_text("[front]\n")
    bad = subprocess.run([str(CLI), "front", "render", "--site", str(site), "--out",
                          str(tmp_path / "out")], capture_output=True, text=True, timeout=60,
                         check=False)
    assert bad.returncode == 2 and "the site's cluster is not usable" in bad.stderr
    assert not (tmp_path / "out").exists()
