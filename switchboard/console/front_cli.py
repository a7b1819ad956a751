"""``switchboard front ...``: the SIP front (Kamailio's dispatcher) in front of
the Asterisk nodes, rendered from site/cluster.conf (switchboard/dialplan_tools/front.py).
docs/ops.md "Nodes behind the front"."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from switchboard.dialplan_tools.deploy import DEFAULT_SITE_DIR
from switchboard.dialplan_tools.front import (
    CLUSTER_FILE,
    Cluster,
    kamailio_check,
    parse_cluster,
    write_front,
)
from switchboard.settings import ConfigError

DESCRIPTION = """\
The SIP front: Kamailio (Debian package kamailio) takes the carrier's calls and
hands each to a live Asterisk node (round robin, OPTIONS probes, the next node
when one does not answer).  Its configuration is dialplan/front/kamailio.cfg as
shipped plus files rendered from the site's cluster.conf: the nodes, the
carrier's addresses, the probe interval and the node timeout."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fr = sub.add_parser("front", help="the SIP front before the nodes (Kamailio dispatcher)",
                        description=DESCRIPTION).add_subparsers(
        dest="action", required=True, metavar="ACTION")
    a = fr.add_parser("render", help="write Kamailio's files for the site's cluster",
                      description="Write kamailio.cfg, front-site.cfg, dispatcher.list and "
                      "address.list into OUT, checked with `kamailio -c` when Kamailio is "
                      "installed.  Then start Kamailio with `kamailio -f OUT/kamailio.cfg`, "
                      "or, after a change of the node list, reload it with `kamcmd -s "
                      "unix:OUT/kamailio.ctl dispatcher.reload`.")
    _site(a)
    a.add_argument("--out", required=True, help="the front's folder (e.g. /etc/kamailio/sb)")
    a = fr.add_parser("peers", help="print site/peers.conf for one node (the device states "
                      "it shares with the other nodes)")
    _site(a)
    a.add_argument("--node", required=True, help="the node's systemname")
    a = fr.add_parser("show", help="the nodes and what the front does with each")
    _site(a)


def _site(a: argparse.ArgumentParser) -> None:
    a.add_argument("--site", default=None, help="the site's files (default: SB_SITE_DIR, "
                   f"else {DEFAULT_SITE_DIR})")


def site_cluster(args: argparse.Namespace) -> Cluster:
    site = Path(args.site or os.environ.get("SB_SITE_DIR") or DEFAULT_SITE_DIR)
    cluster, findings = parse_cluster(site / CLUSTER_FILE)
    if cluster is None and not findings:
        raise ConfigError(f"{site / CLUSTER_FILE}: no such file (one node, no front; start "
                          "from dialplan/site.example/cluster.conf)")
    if cluster is None or findings:
        raise ConfigError("the site's cluster is not usable:\n  "
                          + "\n  ".join(str(f) for f in findings))
    return cluster


def render_peers(cluster: Cluster, node: str) -> str:
    if cluster.node(node) is None:
        raise ConfigError(f"{node} is not a node of the cluster "
                          f"({', '.join(n.name for n in cluster.nodes)})")
    # each node publishes to a peer as itself (the request's user is the
    # resource the peer's inbound-publication and asterisk-publication are named
    # after), and accepts the peer's publications under the peer's name
    out = [f"; site/peers.conf of {node}: rendered by `switchboard front peers`\n"]
    for p in cluster.peers(node):
        out.append(f"[{p.name}](sb-node)\n\n[{p.name}](sb-node-identify)\n"
                   f"endpoint = {p.name}\nmatch = {p.sip_host}\n\n"
                   f"[{p.name}](sb-node-publish)\nserver_uri = sip:{node}@{p.sip_host}:"
                   f"{p.sip_port}\n\n[{p.name}](sb-node-inbound)\nendpoint = {p.name}\n"
                   f"event_asterisk-devicestate = {p.name}\n\n"
                   f"[{p.name}](sb-node-state)\ndevicestate_publish = {p.name}\n\n")
    return "".join(out)


def run(args: argparse.Namespace) -> int:
    cluster = site_cluster(args)
    if args.action == "peers":
        print(render_peers(cluster, args.node), end="")
        return 0
    if args.action == "show":
        print(f"front: udp:{cluster.listen_host}:{cluster.listen_port}, calls from "
              f"{', '.join(cluster.carrier)}; probe every {cluster.probe_s} s, next node "
              f"after {cluster.node_timeout_ms} ms without an answer")
        for n in cluster.nodes:
            print(f"  {n.name:<16} {n.sip_uri:<28} AMI {n.ami_host}:{n.ami_port}  {n.state}")
        return 0
    problems = kamailio_check(cluster)
    if problems:
        raise ConfigError("\n  ".join(str(f) for f in problems))
    for path in write_front(cluster, Path(args.out)):
        print(f"wrote {path}")
    return 0
