"""``switchboard edge``: the SIP edge's firewall and ban engine on a node.

The engines are the system's own: nftables keeps one table of ours (the
ruleset of dialplan/edge/nftables.nft with the site's values: bans, the
carrier's port for the carrier's addresses only, the legacy phones' port for
their addresses only), and fail2ban reads Asterisk's security log with the
shipped filter and bans through the shipped action into that table.  This
module writes their files, loads them, and records what fail2ban did in the
database (``edge record``, run by the action), so bans are seen on the wall
board, in metrics and in the audit.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from switchboard import log
from switchboard.dialplan_tools.edge import JAIL, Edge, fail2ban_files, render_jail, render_nft
from switchboard.files import replace_file

SECURITY_LOG = Path("/var/log/asterisk/security.log")
FAIL2BAN_DIR = Path("/etc/fail2ban")
NFT_FILE = Path("/etc/switchboard/nftables.nft")
JAIL_FILE = "jail.d/switchboard.local"


class EdgeError(Exception):
    """Something the edge needs is missing or refused (a clear message)."""


@dataclass(frozen=True)
class Paths:
    fail2ban_dir: Path = FAIL2BAN_DIR
    nft_file: Path = NFT_FILE
    security_log: Path = SECURITY_LOG


def record_command(config: Path | None = None) -> str:
    """How fail2ban's action runs ``switchboard edge record``: this
    installation's own command, with the settings file it should read."""
    exe = Path(sys.executable).parent / "switchboard"
    prefix = f"env SB_CONFIG={config} " if config is not None else ""
    return f"{prefix}{exe} edge record"


def _run(args: list[str], what: str, timeout: float = 30) -> str:
    if shutil.which(args[0]) is None:
        raise EdgeError(f"{what}: {args[0]} is not installed (Debian: apt-get install "
                        f"{'nftables' if args[0] == 'nft' else 'fail2ban'})")
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if r.returncode != 0:
        raise EdgeError(f"{what}: {' '.join(args[:3])} ...: "
                        f"{(r.stderr or r.stdout).strip()[:400]}")
    return r.stdout


def load_nft(path: Path) -> None:
    """Check the ruleset, then load it (one transaction: the table is replaced
    whole)."""
    _run(["nft", "-c", "-f", str(path)], "the nftables ruleset does not check")
    _run(["nft", "-f", str(path)], "the nftables ruleset was refused")


def install(edge: Edge, paths: Paths, *, record: str, dry_run: bool = False,
            reload: bool = True) -> list[str]:
    """Write and load the firewall, write fail2ban's filter, action and jail, and
    reload fail2ban when it runs; returns what was done, line by line."""
    out = []
    nft = render_nft(edge)
    jail = render_jail(edge, security_log=paths.security_log, record=record)
    files = {paths.nft_file: nft, paths.fail2ban_dir / JAIL_FILE: jail}
    files |= {paths.fail2ban_dir / rel: text for rel, text in fail2ban_files().items()}
    for path, text in files.items():
        if dry_run:
            out.append(f"would write {path}")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, text.encode(), uid=os.geteuid(), gid=os.getegid(), mode=0o644)
        out.append(f"wrote {path}")
    if dry_run:
        return out
    if reload:
        load_nft(paths.nft_file)
        out.append(f"loaded nftables table inet {edge.nft_table} (SIP ports "
                   f"{', '.join(map(str, edge.sip_ports))}; carrier "
                   f"{', '.join(map(str, edge.carrier_networks))} on {edge.carrier_port})")
        if fail2ban_running():
            _run(["fail2ban-client", "reload"], "fail2ban refused the reload")
            out.append(f"fail2ban reloaded: jail {JAIL} bans after {edge.ban_after} failures "
                       f"in {edge.ban_window_min} min, for {edge.ban_minutes} min")
        else:
            out.append("fail2ban does not run: start it (systemctl enable --now fail2ban)")
    return out


def fail2ban_running(socket_path: str | None = None) -> bool:
    if shutil.which("fail2ban-client") is None:
        return False
    args = ["fail2ban-client"] + (["-s", socket_path] if socket_path else []) + ["ping"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
    return r.returncode == 0 and "pong" in r.stdout


def jail_status(jail: str = JAIL, socket_path: str | None = None) -> str | None:
    """fail2ban's own words about the jail (None: it does not run it)."""
    if shutil.which("fail2ban-client") is None:
        return None
    args = ["fail2ban-client"] + (["-s", socket_path] if socket_path else [])
    r = subprocess.run([*args, "status", jail], capture_output=True, text=True, timeout=10,
                       check=False)
    return r.stdout if r.returncode == 0 else None


def nft_bans(table: str) -> list[tuple[str, int | None]]:
    """The addresses in the table's ban sets with their seconds left (the
    firewall's own truth, whatever the database says)."""
    out = []
    for name in ("banned4", "banned6"):
        data = json.loads(_run(["nft", "-j", "list", "set", "inet", table, name],
                               f"table inet {table} is not loaded (switchboard edge install)"))
        for entry in data.get("nftables", []):
            for elem in entry.get("set", {}).get("elem", []) or []:
                if isinstance(elem, dict) and "elem" in elem:
                    out.append((str(elem["elem"].get("val")), elem["elem"].get("expires")))
                else:
                    out.append((str(elem), None))
    return out


def nft_set_networks(table: str, name: str) -> set[str]:
    """The networks an interval set of the table holds, as ``1.2.3.0/24``."""
    data = json.loads(_run(["nft", "-j", "list", "set", "inet", table, name],
                           f"table inet {table} has no set {name}"))
    out = set()
    for entry in data.get("nftables", []):
        for elem in entry.get("set", {}).get("elem", []) or []:
            if isinstance(elem, dict) and "prefix" in elem:
                out.add(str(ipaddress.ip_network(
                    f"{elem['prefix']['addr']}/{elem['prefix']['len']}", strict=False)))
            elif isinstance(elem, str):
                out.add(str(ipaddress.ip_network(elem)))
    return out


def nft_table_loaded(table: str) -> dict[str, Any] | None:
    """The table as nftables has it now (None: not loaded)."""
    if shutil.which("nft") is None:
        return None
    r = subprocess.run(["nft", "-j", "list", "table", "inet", table], capture_output=True,
                       text=True, timeout=10, check=False)
    if r.returncode != 0:
        return None
    parsed: dict[str, Any] = json.loads(r.stdout)
    return parsed


def unban(address: str, jail: str = JAIL, socket_path: str | None = None) -> str:
    """Lift a ban before its time (fail2ban runs the action's unban, which
    records it)."""
    addr = checked_address(address)
    args = ["fail2ban-client"] + (["-s", socket_path] if socket_path else [])
    return _run([*args, "set", jail, "unbanip", addr], f"fail2ban could not unban {addr}")


def checked_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError as exc:
        raise EdgeError(f"{value!r} is not an IP address") from exc


_HOST_RE = re.compile(r"[^A-Za-z0-9_.-]")


def host_name() -> str:
    """This host's name as the ban rows carry it."""
    name = _HOST_RE.sub("-", socket.gethostname())[:63].strip("-.") or "edge"
    return name if name[0].isalnum() else f"h{name}"[:63]


async def record(url: str, action: str, address: str, *, jail: str, seconds: int | None,
                 failures: int | None, by: str = "expiry",
                 server_settings: dict[str, str] | None = None) -> int:
    """What fail2ban did, into the database (role sb_edge): a ban and its end."""
    addr = checked_address(address)
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", jail):
        raise EdgeError(f"jail {jail!r}: letters, digits, . _ - only")
    conn = await asyncpg.connect(url, timeout=10, server_settings=server_settings or {})
    try:
        if action == "ban":
            if seconds is None or not 1 <= seconds <= 31_536_000:
                raise EdgeError("--seconds: the ban's length, 1 s to a year")
            row_id: int = await conn.fetchval("SELECT sb_edge_ban($1, $2, $3, $4, $5)", addr,
                                              jail, host_name(), seconds, failures)
            log.get("edge").warning("sip_address_banned", address=addr, jail=jail,
                                    seconds=seconds, failures=failures, ban=row_id)
            return row_id
        n: int = await conn.fetchval("SELECT sb_edge_unban($1, $2, $3, $4)", addr, jail,
                                     host_name(), by)
        log.get("edge").info("sip_address_unbanned", address=addr, jail=jail, by=by, rows=n)
        return n
    finally:
        await conn.close()
