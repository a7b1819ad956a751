"""Checks of the SIP edge (issue 22): what faces the outside world.

    SB-TLS      a phone's SIP or media in clear that site/edge.conf does not name
                (clear_phones), a named legacy phone that accepts any address, a
                TLS transport without its certificate and key, SRTP without
                res_srtp
    SB-IDENTIFY an endpoint without authentication that can be matched by anything
                but its address (identify_by = ip): anyone could be it
    SB-EDGE     site/edge.conf, the carrier's transport and CARRIER_PORT, ports
                shared by two transports, the version in every SIP answer
    SB-E911     a desk phone without a 911 location, an emergency caller ID that
                is not E.164
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from switchboard.dialplan_tools.conf import Finding, Item
from switchboard.dialplan_tools.edge import (
    Edge,
    edge_from,
    endpoints,
    is_phone,
    phone_in_clear,
    transports,
)
from switchboard.dialplan_tools.project import Project, explicit_loads

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
SRTP_MODULE = "res_srtp.so"


def site_globals(p: Project) -> dict[str, Item]:
    return {i.key: i for i in p.extensions.items if i.section == "globals"}


def load_edge(p: Project) -> tuple[Edge | None, list[Finding]]:
    return edge_from(p.tree, p.pjsip, site_globals(p))


def check_edge(p: Project) -> Iterator[Finding]:
    _, found = load_edge(p)
    yield from found
    for key, default in (("user_agent", "Asterisk PBX 22.10.1"), ("default_realm", "asterisk")):
        given = [i for i in p.pjsip.items if i.section == "global" and i.key == key]
        if not given:
            yield Finding("pjsip.conf", 1, "SB-EDGE", f"no {key} in [global]: every SIP "
                          f"answer would say {default!r} to anyone who asks")
        elif "asterisk" in given[-1].value.lower() or re.search(r"\d+\.\d+", given[-1].value):
            yield Finding(given[-1].file, given[-1].line, "SB-EDGE",
                          f"{key} = {given[-1].value!r} tells scanners what to attack: "
                          "name no product or version")
    g = site_globals(p)
    mode = g.get("CARRIER_UNPROVEN")
    if mode is None or mode.value not in ("unattested", "reject"):
        yield Finding(mode.file if mode else p.extensions.name, mode.line if mode else 1,
                      "SB-EDGE", "CARRIER_UNPROVEN (site/globals.conf) is unattested or "
                      "reject: what a call matched to the carrier that did not arrive on its "
                      "port becomes")
    legs = g.get("OUTBOUND_MAX_LEGS")
    if legs is None or not legs.value.isdigit() or not 1 <= int(legs.value) <= 1000:
        yield Finding(legs.file if legs else p.extensions.name, legs.line if legs else 1,
                      "SB-EDGE", "OUTBOUND_MAX_LEGS (site/globals.conf) is 1 to 1000: the "
                      "most outbound calls this node places at once (toll fraud's bound)")


def check_tls(p: Project) -> Iterator[Finding]:
    tps = transports(p.pjsip)
    for t in tps.values():
        if not t.secure:
            continue
        where = t.items.get("protocol") or next(iter(t.items.values()))
        for key in ("cert_file", "priv_key_file"):
            item = t.items.get(key)
            if item is None or not item.value.strip():
                yield Finding(where.file, where.line, "SB-TLS",
                              f"{t.name} is {t.protocol} without {key}: give the site's "
                              "certificate and key (the key in the secrets folder)")
            elif p.strict and not os.path.isfile(item.value.strip()):
                yield Finding(item.file, item.line, "SB-TLS",
                              f"{key} {item.value.strip()}: no such file on this node")
    edge, _ = load_edge(p)
    named = set(edge.clear_phones) if edge else set()
    eps = endpoints(p.pjsip)
    encrypted = False
    for e in eps.values():
        enc = (e.get("media_encryption") or "no").lower()
        encrypted |= enc in ("sdes", "dtls")
        if not is_phone(e):
            continue
        if phone_in_clear(e, tps) and e.name not in named:
            yield Finding(e.file, e.line, "SB-TLS",
                          f"phone {e.name} would send its SIP or media in clear (transport "
                          f"{e.get('transport')!r}, media_encryption {enc!r}): use "
                          "sb-phone (TLS and SRTP), or name it in site/edge.conf clear_phones "
                          "if it cannot do TLS")
        elif e.name in named and not phone_in_clear(e, tps):
            yield Finding("site/edge.conf", 1, "SB-TLS",
                          f"clear_phones names {e.name}, which uses TLS and SRTP: remove it")
        if e.name in named and phone_in_clear(e, tps):
            permits = [i.value for i in e.items if i.key == "permit"]
            denies = [i.value.replace(" ", "") for i in e.items if i.key == "deny"]
            if not permits or ("0.0.0.0/0.0.0.0" not in denies and "0.0.0.0/0" not in denies):
                yield Finding(e.file, e.line, "SB-TLS",
                              f"legacy phone {e.name} in clear accepts any address: give it "
                              "deny = 0.0.0.0/0.0.0.0 and permit = its own address")
    loads = explicit_loads(p.modules) if p.modules is not None else None
    if encrypted and loads is not None and SRTP_MODULE not in loads:
        yield Finding("modules.conf", 1, "SB-TLS", f"an endpoint has media_encryption but "
                      f"modules.conf does not load {SRTP_MODULE}: its calls would fail")


def check_identify(p: Project) -> Iterator[Finding]:
    for e in endpoints(p.pjsip).values():
        if e.authenticated:
            continue
        given = e.option("identify_by")
        methods = [m.strip() for m in (given.value if given else "username,ip").split(",")]
        if methods != ["ip"]:
            where = given or e.option("type") or e.items[0]
            yield Finding(where.file, where.line, "SB-IDENTIFY",
                          f"endpoint {e.name} has no authentication and is matched by "
                          f"{', '.join(methods)}: anyone sending its name could be it; "
                          "set identify_by = ip (and match its addresses in an identify)")


def check_e911(p: Project) -> Iterator[Finding]:
    g = site_globals(p)
    elin = g.get("E911_ELIN")
    if elin is None or not _E164.match(elin.value.strip()):
        yield Finding(elin.file if elin else p.extensions.name, elin.line if elin else 1,
                      "SB-E911", "E911_ELIN (site/globals.conf) must be the site's emergency "
                      "caller ID in E.164 (+1...): the last resort of every 911 call")
    for e in endpoints(p.pjsip).values():
        if not is_phone(e):
            continue
        v = e.variables()
        if not _E164.match(v.get("IVR_E911_ELIN", "")) or not v.get("IVR_E911_PLACE"):
            yield Finding(e.file, e.line, "SB-E911",
                          f"phone {e.name} has no 911 location: name its place's template "
                          "from site/locations.conf (IVR_E911_ELIN in E.164 and "
                          "IVR_E911_PLACE), e.g. [{0}](sb-phone,loc-hq-3)".format(e.name))
