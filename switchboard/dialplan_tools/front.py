"""The nodes behind the SIP front (issue 23), read from site/cluster.conf:
where the front listens, whom it takes calls from, and each Asterisk node's
carrier address and AMI address.  ``switchboard front render`` writes
Kamailio's files from it (dialplan/front/kamailio.cfg as shipped, with
front-site.cfg, dispatcher.list and address.list); ``switchboard dialplan
check`` checks it against the node's own files (checks_cluster.py) and runs
``kamailio -c`` on the rendered files when Kamailio is installed.

A site without site/cluster.conf is one node with no front.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from switchboard.dialplan_tools.conf import DIALPLAN_DIR, SITE, Finding, Item, load_conf
from switchboard.dialplan_tools.edge import network

FRONT_DIR = DIALPLAN_DIR / "front"
CLUSTER_FILE = "cluster.conf"
NODE_STATES = ("active", "drained")
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,39}$")
# bounds: a probe more often than every second is noise, less often than every
# 30 s leaves calls going to a dead node for that long; a node timeout under
# 200 ms fails over from a node that is merely busy, over 5 s keeps the caller
# in silence
PROBE_LIMITS = (1, 30)
TIMEOUT_LIMITS = (200, 5000)


@dataclass(frozen=True)
class ClusterNode:
    name: str  # Asterisk's systemname on that node
    sip_host: str
    sip_port: int  # the node's carrier transport: where the front sends calls
    ami_host: str
    ami_port: int
    state: str  # active | drained (no new calls)
    line: int

    @property
    def sip_uri(self) -> str:
        return f"sip:{self.sip_host}:{self.sip_port}"


@dataclass(frozen=True)
class Cluster:
    listen_host: str
    listen_port: int
    carrier: tuple[str, ...]  # addresses (or networks) the carrier sends from
    probe_s: int
    node_timeout_ms: int
    nodes: tuple[ClusterNode, ...]

    def node(self, name: str) -> ClusterNode | None:
        return next((n for n in self.nodes if n.name == name), None)

    def peers(self, name: str) -> tuple[ClusterNode, ...]:
        return tuple(n for n in self.nodes if n.name != name)


def _hostport(value: str) -> tuple[str, int] | None:
    m = re.match(r"^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$", value.strip())
    if not m:
        return None
    try:
        ipaddress.IPv4Address(m.group(1))
    except ValueError:
        return None
    port = int(m.group(2))
    return (m.group(1), port) if 1 <= port <= 65535 else None


def _int(value: str | None, default: int, limits: tuple[int, int]) -> int | None:
    if value is None:
        return default
    if not value.strip().isdigit():
        return None
    n = int(value)
    return n if limits[0] <= n <= limits[1] else None


def parse_cluster(path: Path, shown: str = f"{SITE}/{CLUSTER_FILE}"
                  ) -> tuple[Cluster | None, list[Finding]]:
    """site/cluster.conf as a Cluster (None: no such file, or it is wrong: the
    findings say why)."""
    if not path.is_file():
        return None, []
    conf = load_conf(path, path.parent, display=shown)
    found = list(conf.findings)

    def bad(line: int, message: str) -> None:
        found.append(Finding(shown, line, "SB-CLUSTER", message))

    by_section: dict[str, dict[str, Item]] = {}
    for item in conf.items:
        by_section.setdefault(item.section, {})[item.key] = item
    front = by_section.pop("front", None)
    if front is None:
        bad(1, "no [front] section: say where the front listens (listen = address:port) "
               "and whom it takes calls from (carrier = addresses)")
        return None, found
    first = min(i.line for i in front.values())
    listen = _hostport(front["listen"].value) if "listen" in front else None
    if listen is None:
        bad(front["listen"].line if "listen" in front else first,
            "[front] listen is the front's IPv4 address:port, e.g. 192.0.2.5:5060")
    carrier: list[str] = []
    for part in (front["carrier"].value.split(",") if "carrier" in front else []):
        net = network(part)
        if net is None:
            bad(front["carrier"].line, f"[front] carrier: {part.strip()!r} is not an address")
        else:
            carrier.append(str(net))
    if not carrier:
        bad(first, "[front] carrier names the carrier's signalling addresses: nobody "
                   "else may send the front a call")
    probe = _int(front["probe_s"].value if "probe_s" in front else None, 1, PROBE_LIMITS)
    if probe is None:
        bad(front["probe_s"].line, f"[front] probe_s is {PROBE_LIMITS[0]} to "
                                   f"{PROBE_LIMITS[1]} seconds")
    timeout = _int(front["node_timeout_ms"].value if "node_timeout_ms" in front else None,
                   1000, TIMEOUT_LIMITS)
    if timeout is None:
        bad(front["node_timeout_ms"].line, f"[front] node_timeout_ms is "
                                           f"{TIMEOUT_LIMITS[0]} to {TIMEOUT_LIMITS[1]}")
    nodes: list[ClusterNode] = []
    seen: dict[tuple[str, int], str] = {}
    for name, items in by_section.items():
        line = min(i.line for i in items.values())
        if not _NAME_RE.match(name):
            bad(line, f"[{name}]: a node's section is named by its systemname "
                      "(letters, digits, - and _)")
            continue
        sip = _hostport(items["sip"].value) if "sip" in items else None
        ami = _hostport(items["ami"].value) if "ami" in items else None
        state = items["state"].value.strip() if "state" in items else "active"
        if sip is None:
            bad(line, f"[{name}] sip is the node's carrier transport, address:port")
        if ami is None:
            bad(line, f"[{name}] ami is the node's AMI address:port")
        if state not in NODE_STATES:
            bad(items["state"].line, f"[{name}] state is one of {', '.join(NODE_STATES)}")
        if sip is not None and sip in seen:
            bad(line, f"[{name}] sip {sip[0]}:{sip[1]} is also node {seen[sip]}'s")
        if sip is None or ami is None or state not in NODE_STATES:
            continue
        seen[sip] = name
        nodes.append(ClusterNode(name, sip[0], sip[1], ami[0], ami[1], state, line))
    if not nodes:
        bad(first, "no node: a section per Asterisk node, [systemname] with sip = and ami =")
    if not any(n.state == "active" for n in nodes) and nodes:
        bad(first, "every node is drained: the front would refuse every call")
    if len(found) > len(conf.findings) or listen is None or probe is None or timeout is None:
        return None, found
    return Cluster(listen[0], listen[1], tuple(carrier), probe, timeout, tuple(nodes)), found


def render_front(cluster: Cluster, out: Path) -> dict[str, str]:
    """Kamailio's files for ``cluster``, with absolute paths under ``out`` (where
    they will be written): name -> text."""
    site = (f"# rendered from site/{CLUSTER_FILE} by `switchboard front render`: do not "
            "edit\n"
            f"listen=udp:{cluster.listen_host}:{cluster.listen_port}\n"
            f'#!define SB_DISPATCHER_LIST "{out / "dispatcher.list"}"\n'
            f'#!define SB_ADDRESS_LIST "{out / "address.list"}"\n'
            f'#!define SB_CTL "unix:{out / "kamailio.ctl"}"\n'
            f"#!define SB_PROBE_S {cluster.probe_s}\n"
            f"#!define SB_NODE_TIMEOUT_MS {cluster.node_timeout_ms}\n")
    # dispatcher flags: 0 in rotation (probing decides), 4 disabled by the site
    # (drained: no new calls, probes go on so that it shows)
    dispatch = "".join(f"1 {n.sip_uri} {0 if n.state == 'active' else 4} 0 name={n.name}\n"
                       for n in cluster.nodes)
    groups = [(1, net) for net in cluster.carrier]
    groups += [(2, f"{n.sip_host}/32") for n in cluster.nodes]
    address = "".join(f"{g} {net.split('/')[0]} {net.split('/')[1]} 0\n"
                      for g, net in groups)
    return {"kamailio.cfg": (FRONT_DIR / "kamailio.cfg").read_text(encoding="utf-8"),
            "front-site.cfg": site, "dispatcher.list": dispatch, "address.list": address}


def write_front(cluster: Cluster, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_front(cluster, out.resolve()).items():
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    return written


def kamailio_binary() -> str | None:
    return shutil.which("kamailio") or next(
        (p for p in ("/usr/sbin/kamailio", "/usr/local/sbin/kamailio")
         if Path(p).is_file()), None)


def kamailio_check(cluster: Cluster) -> list[Finding]:
    """``kamailio -c`` on the rendered files (nothing when Kamailio is not installed:
    the check of the node list still runs)."""
    binary = kamailio_binary()
    if binary is None:
        return []
    with tempfile.TemporaryDirectory(prefix="sb-front-") as tmp:
        write_front(cluster, Path(tmp))
        try:
            r = subprocess.run([binary, "-c", "-f", str(Path(tmp) / "kamailio.cfg")],
                               capture_output=True, text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [Finding("front/kamailio.cfg", 0, "SB-FRONT", f"kamailio -c: {exc}")]
    if r.returncode == 0:
        return []
    errors = [x for x in (r.stderr + r.stdout).splitlines() if "ERROR" in x or "error" in x]
    return [Finding("front/kamailio.cfg", 0, "SB-FRONT",
                    "kamailio -c refused the front: "
                    + ("; ".join(errors[-3:]) or (r.stderr or r.stdout)[-300:]).strip())]
