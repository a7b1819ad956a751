"""Checks of a node behind the SIP front (issue 23), when the site has
site/cluster.conf:

    SB-CLUSTER  site/cluster.conf itself; this node (asterisk.conf's systemname)
                not among its nodes; the node's carrier transport or AMI not
                where cluster.conf says (the front and the listener would miss
                it); the carrier's identify without the front's address (every
                call through the front would be a stranger's); a peer node whose
                device states this node neither sends nor accepts (a queue here
                would ring an agent talking there), or without the modules that
                carry them
    SB-FRONT    Kamailio refuses the front rendered from cluster.conf
                (``kamailio -c``, when Kamailio is installed)
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from switchboard.dialplan_tools.conf import SITE, Finding
from switchboard.dialplan_tools.edge import identifies, network, transports
from switchboard.dialplan_tools.front import CLUSTER_FILE, Cluster, kamailio_check, parse_cluster
from switchboard.dialplan_tools.model import pjsip_objects
from switchboard.dialplan_tools.project import Project, explicit_loads

SHOWN = f"{SITE}/{CLUSTER_FILE}"
PEER_MODULES = ("res_pjsip_outbound_publish.so", "res_pjsip_publish_asterisk.so")


def systemname(p: Project) -> str | None:
    conf = next((c for c in p.others if c.name == "asterisk.conf"), None)
    found = [i.value for i in conf.items if i.key == "systemname"] if conf else []
    return found[-1] if found else None


def _covers(matches: list[str], host: str) -> bool:
    """One of an identify's ``match`` values (edge.network's forms) holds ``host``."""
    address = ipaddress.ip_address(host)
    return any(net is not None and address in net for net in map(network, matches))


def check_cluster(p: Project) -> Iterator[Finding]:
    cluster, found = parse_cluster(p.tree / SITE / CLUSTER_FILE, SHOWN)
    yield from found
    if cluster is None:
        return
    name = systemname(p)
    me = cluster.node(name or "")
    if me is None:
        yield Finding(SHOWN, 1, "SB-CLUSTER", f"this node ({name or 'no systemname'}) is not "
                      f"a node of {SHOWN}: the front would never send it a call")
        return
    carrier = transports(p.pjsip).get("transport-carrier")
    bind = carrier.items.get("bind") if carrier else None
    if bind is None or bind.value.strip() != f"{me.sip_host}:{me.sip_port}":
        yield Finding(bind.file if bind else "pjsip.conf", bind.line if bind else 1,
                      "SB-CLUSTER", f"transport-carrier binds "
                      f"{bind.value.strip() if bind else 'nothing'}, but {SHOWN} sends this "
                      f"node's calls to {me.sip_host}:{me.sip_port}")
    general = p.manager.section_items("general")
    host = [i for i in general if i.key == "bindaddr"]
    port = [i for i in general if i.key == "port"]
    ami = (host[-1].value if host else "any address", port[-1].value if port else "5038")
    if ami != (me.ami_host, str(me.ami_port)):
        yield Finding(host[-1].file if host else "manager.conf", host[-1].line if host else 1,
                      "SB-CLUSTER", f"AMI is on {ami[0]}:{ami[1]}, but {SHOWN} says this "
                      f"node's AMI is {me.ami_host}:{me.ami_port} (site/manager-bind.conf)")
    carrier_ids = identifies(p.pjsip).get("carrier", [])
    if not _covers(carrier_ids, cluster.listen_host):
        yield Finding(SHOWN, 1, "SB-CLUSTER", f"the carrier's identify (site/trunk.conf) does "
                      f"not match the front ({cluster.listen_host}): every call through the "
                      "front would be taken for a stranger's")
    yield from _check_peers(p, cluster, me.name)
    yield from kamailio_check(cluster)


def _check_peers(p: Project, cluster: Cluster, me: str) -> Iterator[Finding]:
    peers = cluster.peers(me)
    if not peers:
        return
    loads = explicit_loads(p.modules) if p.modules else None
    if loads is not None:
        for module in PEER_MODULES:
            if module not in loads:
                yield Finding("modules.conf", 1, "SB-CLUSTER",
                              f"{module} is not loaded: the nodes cannot share device states "
                              "(site/modules.conf)")
    publish = {n: {i.key: i.value for i in items}
               for n, _, _, items in pjsip_objects(p.pjsip, "outbound-publish")}
    inbound = {n: {i.key: i.value for i in items}
               for n, _, _, items in pjsip_objects(p.pjsip, "inbound-publication")}
    accept = {n: {i.key: i.value for i in items}
              for n, _, _, items in pjsip_objects(p.pjsip, "asterisk-publication")}
    ids = identifies(p.pjsip)
    for peer in peers:
        sends = [n for n, o in publish.items()
                 if re.search(rf"@{re.escape(peer.sip_host)}:{peer.sip_port}\b",
                              o.get("server_uri", ""))
                 and o.get("event") == "asterisk-devicestate"]
        takes = [n for n, o in inbound.items() if o.get("endpoint") == peer.name
                 and "event_asterisk-devicestate" in o]
        state = [n for n, o in accept.items()
                 if o.get("device_state", "no").lower() in ("yes", "true", "1")]
        if not sends:
            yield Finding(SHOWN, peer.line, "SB-CLUSTER", f"no outbound-publish of device "
                          f"states to node {peer.name} ({peer.sip_uri}): a queue there would "
                          "ring an agent talking here (site/peers.conf)")
        if not takes or not state:
            yield Finding(SHOWN, peer.line, "SB-CLUSTER", f"node {peer.name}'s device states "
                          "are not accepted (inbound-publication and asterisk-publication in "
                          "site/peers.conf): a queue here would ring an agent talking there")
        if not _covers(ids.get(peer.name, []), peer.sip_host):
            yield Finding(SHOWN, peer.line, "SB-CLUSTER", f"no identify matches node "
                          f"{peer.name} by its address ({peer.sip_host}): its publications "
                          "would be refused")
