"""The SIP edge of a node, read from its configuration: which ports face whom,
who the carrier is, which phones may talk in clear, and the site's ban
thresholds (site/edge.conf, site/transports.conf, site/trunk.conf,
site/phones.conf).  ``switchboard dialplan check`` checks it
(switchboard/dialplan_tools/checks_edge.py); ``switchboard edge install`` renders the
nftables ruleset and the fail2ban jail from it (dialplan/edge/).
"""

from __future__ import annotations

import ipaddress
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from string import Template

from switchboard.dialplan_tools.conf import DIALPLAN_DIR, SITE, Conf, Finding, Item, load_conf
from switchboard.dialplan_tools.model import pjsip_objects
from switchboard.dialplan_tools.tree import assemble

EDGE_DIR = DIALPLAN_DIR / "edge"
EDGE_FILE = "edge.conf"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
CARRIER_LINKS = ("tls", "firewall")
PHONES_FROM = ("any", "site")
_TABLE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,30}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
# bounds of the ban thresholds: below them a mistyped password bans an office,
# above them a guesser gets thousands of tries an hour
BAN_LIMITS = {"ban_after": (2, 50), "ban_window_min": (1, 1440),
              "ban_minutes": (1, 10080)}
BAN_DEFAULTS = {"ban_after": 5, "ban_window_min": 10, "ban_minutes": 60}


@dataclass(frozen=True)
class Transport:
    name: str
    protocol: str  # udp | tcp | tls | ws | wss
    port: int | None
    items: dict[str, Item]  # option -> its (last) line

    @property
    def secure(self) -> bool:
        return self.protocol in ("tls", "wss")


@dataclass(frozen=True)
class Endpoint:
    name: str
    items: list[Item]  # effective options, in the order Asterisk applies them
    file: str  # where its section starts
    line: int

    def get(self, key: str) -> str | None:
        """The option's value (the last one wins, as pjsip applies them)."""
        found = [i.value for i in self.items if i.key == key]
        return found[-1].strip() if found else None

    def option(self, key: str) -> Item | None:
        found = [i for i in self.items if i.key == key]
        return found[-1] if found else None

    def variables(self) -> dict[str, str]:
        """``set_var = NAME=value`` lines (they add up)."""
        out = {}
        for i in self.items:
            if i.key == "set_var":
                name, _, value = i.value.partition("=")
                out[name.strip()] = value.strip()
        return out

    @property
    def authenticated(self) -> bool:
        return bool(self.get("auth"))


@dataclass(frozen=True)
class Edge:
    """What the site's files say about the edge (valid values only)."""

    carrier_link: str
    site_networks: tuple[Network, ...]
    phones_from: str
    ban_after: int
    ban_window_min: int
    ban_minutes: int
    nft_table: str
    clear_phones: tuple[str, ...]
    carrier_networks: tuple[Network, ...]
    carrier_port: int
    tls_port: int | None
    clear_port: int | None
    clear_networks: tuple[Network, ...]  # the clear phones' own addresses (permit)

    @property
    def sip_ports(self) -> tuple[int, ...]:
        return tuple(sorted({p for p in (self.carrier_port, self.tls_port, self.clear_port)
                             if p is not None}))

    @property
    def never_banned(self) -> tuple[Network, ...]:
        return self.site_networks + self.carrier_networks


def transports(pjsip: Conf) -> dict[str, Transport]:
    out = {}
    for name, _, _, items in pjsip_objects(pjsip, "transport"):
        by_key = {i.key: i for i in items}
        protocol = by_key["protocol"].value.lower() if "protocol" in by_key else "udp"
        port = None
        if "bind" in by_key:
            m = re.search(r":(\d{1,5})$", by_key["bind"].value.strip())
            port = int(m.group(1)) if m else (5061 if protocol == "tls" else 5060)
        out[name] = Transport(name, protocol, port, by_key)
    return out


def endpoints(pjsip: Conf) -> dict[str, Endpoint]:
    return {name: Endpoint(name, items, file, line)
            for name, file, line, items in pjsip_objects(pjsip, "endpoint")}


def identifies(pjsip: Conf) -> dict[str, list[str]]:
    """endpoint -> the addresses its identify sections match."""
    out: dict[str, list[str]] = {}
    for _, _, _, items in pjsip_objects(pjsip, "identify"):
        endpoint = next((i.value for i in reversed(items) if i.key == "endpoint"), "")
        for i in items:
            if i.key == "match":
                out.setdefault(endpoint, []).extend(
                    v.strip() for v in i.value.split(",") if v.strip())
    return out


def network(value: str) -> Network | None:
    """An address or network as Asterisk writes it (1.2.3.4, 1.2.3.0/24,
    1.2.3.4/255.255.255.255); None when it is not one."""
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return None


def is_phone(e: Endpoint) -> bool:
    """A desk phone: an endpoint with its own credentials (the carrier has none)."""
    return e.authenticated


def phone_in_clear(e: Endpoint, tls: dict[str, Transport]) -> bool:
    t = tls.get(e.get("transport") or "")
    return t is None or not t.secure or (e.get("media_encryption") or "no") == "no"


def read_edge_conf(path: Path, shown: str) -> tuple[dict[str, str], list[Finding]]:
    """site/edge.conf's [edge] as key -> value (its lines: ``key = value``)."""
    if not path.is_file():
        return {}, [Finding(shown, 0, "SB-EDGE", f"no {shown}: say how the carrier proves "
                            "itself, the site's networks and the ban thresholds (start from "
                            "dialplan/site.example/edge.conf)")]
    conf = load_conf(path, path.parent, display=shown)
    values = {i.key: i.value for i in conf.items if i.section == "edge"}
    return values, list(conf.findings)


def parse_edge(values: dict[str, str], shown: str, pjsip: Conf,
               globals_: dict[str, Item]) -> tuple[Edge | None, list[Finding]]:
    """The edge from site/edge.conf's values and pjsip.conf; every finding on the
    way (None when something it needs is missing or wrong)."""
    found: list[Finding] = []

    def bad(message: str, code: str = "SB-EDGE", where: Item | None = None) -> None:
        found.append(Finding(where.file if where else shown, where.line if where else 1,
                             code, message))

    link = values.get("carrier_link", "")
    if link not in CARRIER_LINKS:
        bad(f"carrier_link = {link!r}: say tls (the carrier's own TLS connection) or "
            "firewall (the shipped nftables ruleset admits only its addresses)")
    nets = []
    for v in filter(None, (x.strip() for x in values.get("site_networks", "").split(","))):
        n = network(v)
        if n is None:
            bad(f"site_networks: {v!r} is not an address or a network")
        else:
            nets.append(n)
    phones_from = values.get("phones_from", "any")
    if phones_from not in PHONES_FROM:
        bad(f"phones_from = {phones_from!r}: any or site")
    if phones_from == "site" and not nets:
        bad("phones_from = site but site_networks is empty: no phone could reach the node")
    numbers = {}
    for key, (low, high) in BAN_LIMITS.items():
        raw = values.get(key, str(BAN_DEFAULTS[key]))
        if not raw.isdigit() or not low <= int(raw) <= high:
            bad(f"{key} = {raw!r}: a whole number from {low} to {high}")
        else:
            numbers[key] = int(raw)
    table = values.get("nft_table", "switchboard")
    if not _TABLE_RE.match(table):
        bad(f"nft_table = {table!r}: letters, digits and _ (at most 31)")
    clear = tuple(n.strip() for n in values.get("clear_phones", "").split(",") if n.strip())
    for name in clear:
        if not _NAME_RE.match(name):
            bad(f"clear_phones: {name!r} is not an endpoint name")

    tps = transports(pjsip)
    carrier_t = tps.get("transport-carrier")
    if carrier_t is None or carrier_t.port is None:
        bad("pjsip.conf: no [transport-carrier] with a bind address (site/transports.conf): "
            "the carrier needs a transport of its own", code="SB-EDGE")
    ports: dict[int, str] = {}
    for t in tps.values():
        if t.port is not None:
            if t.port in ports:
                bad(f"{t.name} and {ports[t.port]} share port {t.port}: the firewall tells "
                    "the carrier, the phones and the legacy phones apart by port",
                    where=t.items.get("bind"))
            ports.setdefault(t.port, t.name)
    if carrier_t is not None and link == "tls" and carrier_t.protocol != "tls":
        bad(f"carrier_link = tls but transport-carrier is {carrier_t.protocol}",
            where=carrier_t.items.get("protocol"))
    if carrier_t is not None and link == "tls" and carrier_t.protocol == "tls":
        for key, want in (("verify_client", "yes"), ("require_client_cert", "yes")):
            item = carrier_t.items.get(key)
            if item is None or item.value.lower() not in ("yes", "true", "1"):
                bad(f"carrier_link = tls: transport-carrier needs {key} = {want} (the "
                    "carrier proves itself with its certificate)", code="SB-TLS",
                    where=item or carrier_t.items.get("protocol"))
        if "ca_list_file" not in carrier_t.items and "ca_list_path" not in carrier_t.items:
            bad("carrier_link = tls: transport-carrier needs ca_list_file (the carrier's CA)",
                code="SB-TLS", where=carrier_t.items.get("protocol"))
    if carrier_t is not None and link == "firewall" and carrier_t.protocol not in ("udp",
                                                                                   "tcp"):
        bad(f"carrier_link = firewall but transport-carrier is {carrier_t.protocol} (a "
            "carrier with TLS: carrier_link = tls)", where=carrier_t.items.get("protocol"))
    port_item = globals_.get("CARRIER_PORT")
    if carrier_t is not None and carrier_t.port is not None and (
            port_item is None or port_item.value.strip() != str(carrier_t.port)):
        bad(f"CARRIER_PORT (site/globals.conf) must be transport-carrier's port "
            f"{carrier_t.port}: a call counts as the carrier's only when it arrived "
            f"there ({'unset' if port_item is None else repr(port_item.value)})",
            where=port_item)
    carrier_nets = []
    for addr in identifies(pjsip).get("carrier", []):
        n = network(addr)
        if n is None:
            bad(f"the carrier's identify matches {addr!r}: give addresses (the firewall "
                "admits these and never bans them)")
        else:
            carrier_nets.append(n)
    if not carrier_nets:
        bad("no identify section matches the carrier's address (site/trunk.conf)")
    eps = endpoints(pjsip)
    clear_nets = []
    for name in clear:
        e = eps.get(name)
        if e is None:
            bad(f"clear_phones names {name}, which is not an endpoint", code="SB-TLS")
            continue
        for permit in (i.value for i in e.items if i.key == "permit"):
            n = network(permit)
            if n is not None:
                clear_nets.append(n)
    clear_t = tps.get("transport-clear")
    if (link not in CARRIER_LINKS or carrier_t is None or carrier_t.port is None
            or not carrier_nets or len(numbers) < len(BAN_LIMITS)
            or not _TABLE_RE.match(table) or phones_from not in PHONES_FROM):
        return None, found
    tls_t = tps.get("transport-tls")
    return Edge(link, tuple(nets), phones_from, numbers["ban_after"],
                numbers["ban_window_min"], numbers["ban_minutes"], table, clear,
                tuple(carrier_nets), carrier_t.port, tls_t.port if tls_t else None,
                clear_t.port if clear_t else None, tuple(clear_nets)), found


# --- what `switchboard edge install` writes ------------------------------------------

def _elements(nets: tuple[Network, ...], version: int) -> str:
    chosen = sorted(str(n) for n in nets if n.version == version)
    return f" elements = {{ {', '.join(chosen)} }};" if chosen else ""


def _ports(ports: tuple[int, ...]) -> str:
    return ", ".join(str(p) for p in ports)


def render_nft(edge: Edge) -> str:
    """The nftables ruleset (dialplan/edge/nftables.nft with the site's values)."""
    extra = []
    if edge.clear_port is not None:
        extra += ["\t\t# the legacy phones' port: their own addresses only (site/phones.conf "
                  "permit)",
                  f"\t\tmeta l4proto {{ tcp, udp }} th dport {edge.clear_port} "
                  "ip saddr != @clear4 drop",
                  f"\t\tmeta l4proto {{ tcp, udp }} th dport {edge.clear_port} "
                  "ip6 saddr != @clear6 drop"]
    if edge.phones_from == "site" and edge.tls_port is not None:
        extra += ["\t\t# the phones' TLS port: the site's networks only (phones_from = site)",
                  f"\t\ttcp dport {edge.tls_port} ip saddr != @site4 drop",
                  f"\t\ttcp dport {edge.tls_port} ip6 saddr != @site6 drop"]
    template = Template((EDGE_DIR / "nftables.nft").read_text(encoding="utf-8"))
    return template.substitute(
        table=edge.nft_table, sip_ports=_ports(edge.sip_ports),
        carrier_port=edge.carrier_port,
        carrier4=_elements(edge.carrier_networks, 4), carrier6=_elements(edge.carrier_networks, 6),
        clear4=_elements(edge.clear_networks, 4), clear6=_elements(edge.clear_networks, 6),
        site4=_elements(edge.site_networks, 4), site6=_elements(edge.site_networks, 6),
        more_rules="\n".join(extra))


JAIL = "switchboard-sip"


def render_jail(edge: Edge, *, security_log: Path, record: str, jail: str = JAIL) -> str:
    """The fail2ban jail (dialplan/edge/fail2ban/jail.local with the site's values)."""
    template = Template((EDGE_DIR / "fail2ban" / "jail.local").read_text(encoding="utf-8"))
    return template.substitute(
        jail=jail, security_log=security_log, ban_after=edge.ban_after,
        ban_window_min=edge.ban_window_min, ban_minutes=edge.ban_minutes,
        never_banned=" ".join(str(n) for n in edge.never_banned),
        table=edge.nft_table, record=record)


def fail2ban_files() -> dict[str, str]:
    """The filter and the action as shipped (relative path -> text)."""
    out = {}
    for sub in ("filter.d", "action.d"):
        for f in sorted((EDGE_DIR / "fail2ban" / sub).glob("*.conf")):
            out[f"{sub}/{f.name}"] = f.read_text(encoding="utf-8")
    return out


def edge_conf_path(tree: Path) -> Path:
    return tree / SITE / EDGE_FILE


def edge_from(tree: Path, pjsip: Conf, globals_: dict[str, Item]
              ) -> tuple[Edge | None, list[Finding]]:
    """The edge of an assembled configuration whose pjsip.conf and dialplan
    globals are parsed already (``dialplan check`` has them)."""
    values, found = read_edge_conf(edge_conf_path(tree), f"{SITE}/{EDGE_FILE}")
    if not values and found:
        return None, found
    edge, more = parse_edge(values, f"{SITE}/{EDGE_FILE}", pjsip, globals_)
    return edge, found + more


def edge_of_tree(tree: Path) -> tuple[Edge | None, list[Finding]]:
    """The edge of an assembled configuration (dialplan/ + site/)."""
    pjsip = load_conf(tree / "pjsip.conf", tree)
    extensions = load_conf(tree / "extensions.conf", tree)
    edge, found = edge_from(tree, pjsip, {i.key: i for i in extensions.items
                                          if i.section == "globals"})
    return edge, pjsip.findings + found


def edge_of_site(site_dir: Path, dialplan_dir: Path = DIALPLAN_DIR
                 ) -> tuple[Edge | None, list[Finding]]:
    """The edge of ``dialplan_dir`` with a site's files, as deploy would write them."""
    with tempfile.TemporaryDirectory(prefix="sb-edge-") as tmp:
        assemble(dialplan_dir, site_dir, Path(tmp))
        return edge_of_tree(Path(tmp))
