"""``switchboard edge ...``: the SIP edge's firewall and bans (switchboard/admin/edge.py),
from the site's files (switchboard/dialplan_tools/edge.py).  docs/ops.md "SIP edge"."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

import asyncpg

from switchboard import auditlog, db
from switchboard.admin import edge as admin_edge
from switchboard.dialplan_tools.deploy import DEFAULT_SITE_DIR
from switchboard.dialplan_tools.edge import JAIL, Edge, edge_of_site, render_jail, render_nft
from switchboard.settings import ConfigError, Settings

DESCRIPTION = """\
The SIP edge on this node: an nftables table of the product's own (banned
addresses reach no SIP port; the carrier's port admits only the carrier's
addresses; the legacy phones' port only theirs) and a fail2ban jail reading
Asterisk's security log, both from the site's files (site/edge.conf,
transports.conf, trunk.conf, phones.conf).  Needs root (nft, fail2ban)."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ed = sub.add_parser("edge", help="the SIP edge: firewall and bans (fail2ban, nftables)",
                        description=DESCRIPTION).add_subparsers(
        dest="action", required=True, metavar="ACTION")
    a = ed.add_parser("install", help="write and load the firewall, the fail2ban filter, "
                      "action and jail; reload fail2ban",
                      description="Render dialplan/edge/ with the site's values, load the "
                      "nftables table (checked first, replaced in one transaction) and "
                      "reload fail2ban.  Run it again after a change of the site's "
                      "edge.conf, transports or carrier addresses.")
    _site(a)
    a.add_argument("--fail2ban-dir", default=str(admin_edge.FAIL2BAN_DIR),
                   help=f"fail2ban's folder (default {admin_edge.FAIL2BAN_DIR})")
    a.add_argument("--nft-file", default=str(admin_edge.NFT_FILE),
                   help=f"where the ruleset is written (default {admin_edge.NFT_FILE}; "
                   "include it from /etc/nftables.conf so a reboot loads it)")
    a.add_argument("--config", default=None, help="the settings file fail2ban's action "
                   "reads to record bans (default: SB_CONFIG, else "
                   "/etc/switchboard/switchboard.env)")
    a.add_argument("--dry-run", action="store_true", help="say what would be written")
    a = ed.add_parser("show", help="print the nftables ruleset or the fail2ban jail as "
                      "install would write it")
    a.add_argument("what", choices=("nft", "jail"))
    _site(a)
    a = ed.add_parser("status", help="bans in force (the firewall's and the database's) "
                      "and whether fail2ban's jail runs")
    _site(a)
    a = ed.add_parser("unban", help="lift a ban before its time (audited)")
    a.add_argument("address")
    a.add_argument("--jail", default=JAIL)
    a.add_argument("--socket", default=None, help="fail2ban's socket (default: its own)")
    a = ed.add_parser("record", help="(run by fail2ban's action) record a ban or its end",
                      description="fail2ban's switchboard-nftables action runs this after "
                      "each ban and unban, so the wall board, the metrics and the audit "
                      "see it.  Database role sb_edge.")
    a.add_argument("event", choices=("ban", "unban"))
    a.add_argument("address")
    a.add_argument("--jail", required=True)
    a.add_argument("--seconds", type=int, default=None, help="the ban's length (ban)")
    a.add_argument("--failures", type=int, default=None, help="failures seen (ban)")


def _site(a: argparse.ArgumentParser) -> None:
    a.add_argument("--site", default=None, help="the site's files (default: SB_SITE_DIR, "
                   f"else {DEFAULT_SITE_DIR})")
    a.add_argument("--security-log", default=str(admin_edge.SECURITY_LOG),
                   help=f"Asterisk's security log (default {admin_edge.SECURITY_LOG})")


def site_edge(args: argparse.Namespace) -> Edge:
    site = Path(args.site or os.environ.get("SB_SITE_DIR") or DEFAULT_SITE_DIR)
    if not site.is_dir():
        raise ConfigError(f"--site {site}: no such folder (the site's files)")
    edge, findings = edge_of_site(site)
    if edge is None or findings:
        raise ConfigError("the site's edge is not usable:\n  "
                          + "\n  ".join(str(f) for f in findings))
    return edge


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "record":
        key = auditlog.settings_key(settings.agi)
        asyncio.run(admin_edge.record(
            db.service_url(settings, "edge"), args.event, args.address, jail=args.jail,
            seconds=args.seconds, failures=args.failures,
            server_settings=auditlog.session_settings(key)))
        return 0
    if args.action == "unban":
        address = admin_edge.checked_address(args.address)
        status = admin_edge.jail_status(args.jail, args.socket)
        if status is None or address not in status.split():
            raise admin_edge.EdgeError(f"{address} is not banned by fail2ban's jail "
                                       f"{args.jail} (switchboard edge status)")
        key = auditlog.settings_key(settings.agi)
        n = asyncio.run(admin_edge.record(
            db.service_url(settings, "edge"), "unban", args.address, jail=args.jail,
            seconds=None, failures=None, by="ops",
            server_settings=auditlog.session_settings(key)))
        admin_edge.unban(args.address, args.jail, args.socket)
        print(f"{admin_edge.checked_address(args.address)}: ban lifted ({n} recorded)")
        return 0
    edge = site_edge(args)
    if args.action == "show":
        print(render_nft(edge) if args.what == "nft" else render_jail(
            edge, security_log=Path(args.security_log),
            record=admin_edge.record_command(_config())), end="")
        return 0
    if args.action == "status":
        return _status(edge, settings)
    paths = admin_edge.Paths(Path(args.fail2ban_dir), Path(args.nft_file),
                             Path(args.security_log))
    for line in admin_edge.install(edge, paths, record=admin_edge.record_command(
            Path(args.config) if args.config else _config()), dry_run=args.dry_run):
        print(line)
    return 0


def _config() -> Path | None:
    given = os.environ.get("SB_CONFIG")
    default = Path("/etc/switchboard/switchboard.env")
    return Path(given) if given else (default if default.exists() else None)


def _status(edge: Edge, settings: Settings) -> int:
    loaded = admin_edge.nft_table_loaded(edge.nft_table)
    if loaded is None:
        print(f"firewall: table inet {edge.nft_table} NOT loaded (switchboard edge install)")
    else:
        bans = admin_edge.nft_bans(edge.nft_table)
        print(f"firewall: table inet {edge.nft_table} loaded, {len(bans)} address(es) banned")
        for addr, left in bans:
            print(f"  {addr}  {left if left is not None else '?'} s left")
    running = admin_edge.fail2ban_running()
    print(f"fail2ban: {'runs' if running else 'NOT running'} (jail {JAIL}: "
          f"{edge.ban_after} failures in {edge.ban_window_min} min ban for "
          f"{edge.ban_minutes} min)")

    async def recorded() -> list[str]:
        conn = await asyncpg.connect(db.service_url(settings, "edge"), timeout=10)
        try:
            rows = await conn.fetch("SELECT * FROM sb_edge_bans()")
        finally:
            await conn.close()
        return [f"  {r['address']}  jail {r['jail']}  until {r['until']:%Y-%m-%d %H:%M:%S %Z}"
                f"  ({r['failures']} failures)" for r in rows]
    lines = asyncio.run(recorded())
    print(f"recorded bans in force: {len(lines)}")
    for line in lines:
        print(line)
    return 0 if loaded is not None and running else 1
