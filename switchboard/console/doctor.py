"""``switchboard doctor``: one node checked end to end, in words an operator acts on.

Each check ends OK, WARN (works, but something is off) or FAIL (something a
call or a figure depends on is broken).  Exit status: 0 all OK, 1 a warning,
2 a failure.  Nothing is changed: the checks log in, ask and read.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from switchboard import auditlog, db, migrate
from switchboard.admin import edge as admin_edge
from switchboard.admin.recstore import RecordingError, open_store
from switchboard.ami_listener.actions import AmiActionError, AmiLogin, AmiSession
from switchboard.dialplan_tools.conf import DIALPLAN_DIR
from switchboard.dialplan_tools.deploy import DEFAULT_SITE_DIR, modules_running
from switchboard.dialplan_tools.edge import JAIL, edge_of_site
from switchboard.pgcluster import ClusterError
from switchboard.recsettings import load_recordings
from switchboard.settings import ConfigError, Settings, parse_ami_ops

LISTENER_READ = frozenset({"system", "call", "agent", "user", "reporting", "security", "cdr"})
SKEW_WARN_S = 2.0
SKEW_FAIL_S = 300.0


@dataclass(frozen=True)
class Check:
    area: str
    level: str  # OK | WARN | FAIL
    message: str

    def __str__(self) -> str:
        return f"{self.level:<4}  {self.area:<10} {self.message}"


def exit_status(checks: list[Check]) -> int:
    levels = {c.level for c in checks}
    return 2 if "FAIL" in levels else 1 if "WARN" in levels else 0


def required_modules(dialplan_dir: Path = DIALPLAN_DIR) -> list[str]:
    text = (dialplan_dir / "modules.conf").read_text()
    return re.findall(r"^\s*load\s*=>?\s*(\S+\.so)", text, re.M)


async def check_database(settings: Settings) -> list[Check]:
    out: list[Check] = []
    try:
        url = db.database_url(settings)
    except (db.MigrationError, ClusterError, ConfigError) as exc:
        return [Check("database", "FAIL", str(exc))]
    try:
        conn = await asyncpg.connect(url, timeout=5)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        return [Check("database", "FAIL", f"cannot connect as the owner: "
                      f"{type(exc).__name__}: {str(exc)[:200]}")]
    try:
        applied = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migration")}
        defined = {r["name"]: r["checksum"] for r in await conn.fetch(
            "SELECT name, checksum FROM schema_definition")}
    except asyncpg.UndefinedTableError:
        applied, defined = set(), {}
    finally:
        await conn.close()
    pending = [m.name for m in db.discover() if m.name not in applied]
    pending += [d.name for d in migrate.definitions() if defined.get(d.name) != d.checksum]
    out.append(Check("database", "FAIL", f"{len(pending)} migrations or definitions not "
                     f"applied ({', '.join(pending[:3])}...): run 'switchboard db migrate'")
               if pending else Check("database", "OK", f"{len(applied)} migrations and "
                                     f"{len(defined)} functions and views applied"))
    for svc, role in db.SERVICE_ROLES.items():
        try:
            c = await asyncpg.connect(db.service_url(settings, svc), timeout=5)
            try:
                who = await c.fetchval("SELECT current_user")
            finally:
                await c.close()
            out.append(Check("database", "OK", f"{svc} logs in as {who}") if who == role else
                       Check("database", "FAIL", f"{svc} logs in as {who}, not {role}"))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError,
                db.MigrationError) as exc:
            out.append(Check("database", "FAIL", f"the {svc} service cannot log in as "
                             f"{role}: {str(exc)[:160]} (SB_{svc.upper()}_DATABASE_URL or "
                             f"SB_DB_SECRETS_DIR/{role}.password)"))
    return out


def check_secrets(settings: Settings) -> list[Check]:
    out = [Check("secrets", "OK", "PIN pepper present") if settings.agi.pepper else
           Check("secrets", "FAIL", "no PIN pepper: set SB_PIN_PEPPER_FILE (the AGI service, "
                 "the panel and PIN changes need it)")]
    try:
        key = auditlog.settings_key(settings.agi)
        out.append(Check("secrets", "OK", "audit key present, mode safe") if key else
                   Check("secrets", "WARN", "no audit key: audit rows are written unsigned "
                         "(set SB_AUDIT_KEY_FILE)"))
    except ConfigError as exc:
        out.append(Check("secrets", "FAIL", str(exc)))
    return out


async def check_ami(settings: Settings, env: dict[str, str]) -> list[Check]:
    out: list[Check] = []
    if not settings.listener.nodes:
        return [Check("ami", "WARN", "no SB_AMI_NODES: the listener has nothing to read")]
    ops: AmiLogin | None = None
    try:
        host, port, user, secret = parse_ami_ops(env)
        ops = AmiLogin(host, port, user, secret, timeout_s=5)
    except ConfigError:
        out.append(Check("ami", "WARN", "no ops AMI secret (SB_AMI_OPS_SECRET_FILE): the "
                         "listener's read classes and the modules are not checked"))
    for node in settings.listener.nodes:
        login = AmiLogin(node.host, node.port, node.username, node.secret, timeout_s=5)
        try:
            async with AmiSession(login, purpose="doctor") as s:
                sent = time.time()
                pong = await s.action("Ping", {})
                back = time.time()
        except (AmiActionError, OSError) as exc:
            out.append(Check("ami", "FAIL", f"{node.name}: {exc}"))
            continue
        out.append(Check("ami", "OK", f"{node.name}: {node.host}:{node.port} logged in as "
                         f"{node.username}"))
        stamp = pong.get("Timestamp")
        if stamp:
            skew = float(stamp) - (sent + back) / 2
            level = ("FAIL" if abs(skew) > SKEW_FAIL_S else "WARN" if abs(skew) > SKEW_WARN_S
                     else "OK")
            out.append(Check("clock", level, f"{node.name}: Asterisk's clock is {skew:+.2f} s "
                             "from this host's" + ("" if level == "OK" else
                                                   ": run NTP (chrony) on both")))
    if ops is not None:  # this node's Asterisk, through the ops user (SB_AMI_OPS_ADDR)
        out += await _ops_checks(f"{ops.host}:{ops.port}",
                                 settings.listener.nodes[0].username, ops)
    return out


async def _ops_checks(node: str, listener_user: str, ops: AmiLogin) -> list[Check]:
    out: list[Check] = []
    try:
        async with AmiSession(ops, purpose="doctor") as s:
            shown = await s.command(f"manager show user {listener_user}")
            modules = modules_running(await s.command("module show"))
    except (AmiActionError, OSError) as exc:
        return [Check("ami", "FAIL", f"{node}: the ops AMI user cannot run commands: {exc}")]
    perms = next((re.split(r"[,\s]+", line.split(":", 1)[1].strip())
                  for line in shown if line.strip().lower().startswith("read perm")), None)
    if perms is None:
        out.append(Check("ami", "FAIL", f"{node}: no AMI user {listener_user} in manager.conf"))
    else:
        missing = sorted(LISTENER_READ - set(perms))
        out.append(Check("ami", "FAIL", f"{node}: the listener's AMI user may not read "
                         f"{', '.join(missing)} (read = in manager.conf)") if missing else
                   Check("ami", "OK", f"{node}: {listener_user} reads "
                         f"{', '.join(sorted(LISTENER_READ))}"))
    need = required_modules()
    down = [m for m in need if modules.get(m) != "Running"]
    out.append(Check("modules", "FAIL", f"{node}: not running: {', '.join(down)} (module "
                     "load, or check modules.conf and the log)") if down else
               Check("modules", "OK", f"{node}: the {len(need)} modules the dialplan needs "
                     "are running"))
    return out


async def check_agi(settings: Settings) -> list[Check]:
    a = settings.agi
    host = "127.0.0.1" if a.host in ("0.0.0.0", "::", "") else a.host  # noqa: S104
    try:
        _, w = await asyncio.wait_for(asyncio.open_connection(host, a.port), 3)
        w.close()
        out = [Check("fastagi", "OK", f"FastAGI answers on {host}:{a.port}")]
    except (OSError, TimeoutError) as exc:
        out = [Check("fastagi", "FAIL", f"nothing answers on {host}:{a.port} "
                     f"(SB_AGI_LISTEN): start switchboard-agi ({type(exc).__name__})")]
    return out


def check_agi_fallback(env: dict[str, str]) -> list[Check]:
    """The process-AGI fallback on this node (``switchboard agi install``)."""
    script = Path(env.get("SB_AGI_DIR", "/var/lib/asterisk/agi-bin")) / "switchboard-agi"
    config = Path(env.get("SB_AGI_CONFIG", "/etc/switchboard/agi.conf"))
    out: list[Check] = []
    if not script.exists():
        out.append(Check("fastagi", "WARN", f"no process-AGI fallback at {script}: run "
                         "'switchboard agi install' (SB_AGI_DIR names another folder)"))
    elif not os.access(script, os.X_OK):
        out.append(Check("fastagi", "FAIL", f"{script} is not executable"))
    else:
        cfg_ok = config.exists() and not config.stat().st_mode & stat.S_IRWXO
        out.append(Check("fastagi", "OK" if cfg_ok else "FAIL",
                         f"process-AGI fallback installed ({script})" if cfg_ok else
                         f"{config} is missing or readable by others: run "
                         "'switchboard agi install'"))
    return out


def check_files(settings: Settings) -> list[Check]:
    out: list[Check] = []
    for node in settings.listener.nodes:
        path = settings.listener.queue_log(node.name)
        if path is None:
            out.append(Check("queue_log", "WARN", f"{node.name}: no SB_QUEUE_LOG: calls a gap "
                             "closed are not reconciled with Asterisk's record"))
        elif not os.access(path, os.R_OK):
            out.append(Check("queue_log", "FAIL", f"{node.name}: {path} is not readable by "
                             "this user (the listener's: give it Asterisk's group)"))
        else:
            out.append(Check("queue_log", "OK", f"{node.name}: {path} readable"))
    spool = settings.listener.spool_dir
    probe = spool
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    need = settings.listener.spool_max_bytes
    out.append(Check("spool", "OK", f"{free >> 20} MiB free for the spool at {spool}")
               if free >= need else
               Check("spool", "WARN", f"only {free >> 20} MiB free at {spool}, the spool may "
                     f"grow to {need >> 20} MiB (SB_SPOOL_MAX_BYTES) in a database outage"))
    return out


def check_edge(env: dict[str, str]) -> list[Check]:
    """The SIP edge on this node: the site's edge files, the product's nftables
    table as loaded now (the carrier's addresses, for a carrier without TLS the
    only proof it has), fail2ban's jail, Asterisk's security log."""
    site = Path(env.get("SB_SITE_DIR") or DEFAULT_SITE_DIR)
    if not site.is_dir():
        return [Check("edge", "WARN", f"no site files at {site} (SB_SITE_DIR): the SIP edge "
                      "is not checked")]
    edge, findings = edge_of_site(site)
    if edge is None or findings:
        return [Check("edge", "FAIL", f"the site's edge: {f}") for f in findings[:5]]
    out: list[Check] = []
    firewall_needed = "FAIL" if edge.carrier_link == "firewall" else "WARN"
    try:
        if admin_edge.nft_table_loaded(edge.nft_table) is None:
            out.append(Check("edge", firewall_needed, f"the firewall (table inet "
                             f"{edge.nft_table}) is not loaded: run 'switchboard edge "
                             "install'" + (" (the carrier's calls prove nothing without it)"
                                           if edge.carrier_link == "firewall" else "")))
        else:
            loaded = admin_edge.nft_set_networks(edge.nft_table, "carrier4")
            want = {str(n) for n in edge.carrier_networks if n.version == 4}
            bans = admin_edge.nft_bans(edge.nft_table)
            out.append(Check("edge", "OK", f"firewall loaded: the carrier's port "
                             f"{edge.carrier_port} admits {', '.join(sorted(loaded)) or 'nobody'}; "
                             f"{len(bans)} address(es) banned now") if loaded == want else
                       Check("edge", "FAIL", f"the loaded firewall admits "
                             f"{', '.join(sorted(loaded)) or 'nobody'} to the carrier's port, "
                             f"the site says {', '.join(sorted(want))}: run 'switchboard edge "
                             "install'"))
    except admin_edge.EdgeError as exc:
        out.append(Check("edge", "WARN", f"the firewall could not be read: {exc} (run the "
                         "doctor as root)"))
    status = admin_edge.jail_status(JAIL, env.get("SB_FAIL2BAN_SOCKET"))
    out.append(Check("edge", "FAIL", f"fail2ban does not run the jail {JAIL}: password "
                     "guessing is not stopped (switchboard edge install; systemctl enable "
                     "--now fail2ban)") if status is None else
               Check("edge", "OK", f"fail2ban jail {JAIL} runs: " + " ".join(
                   ln.strip("|`- \t") for ln in status.splitlines()
                   if "Currently banned" in ln or "Total failed" in ln)))
    log = Path(env.get("SB_SECURITY_LOG") or admin_edge.SECURITY_LOG)
    out.append(Check("edge", "OK", f"Asterisk's security log {log} is there") if log.exists()
               else Check("edge", "FAIL", f"no security log at {log}: fail2ban reads nothing "
                          "(logger.conf security.log => security; res_security_log loaded)"))
    return out


def check_recordings(env: dict[str, str]) -> list[Check]:
    """Recordings on this host (docs/recordings.md): a node (the public key) can
    seal and reach the store; the playback host (the private key) keeps its key
    to itself; a node that also holds the private key defeats the sealing."""
    try:
        cfg = load_recordings(env)
    except ConfigError as exc:
        return [Check("recording", "FAIL", str(exc))]
    if cfg.recipients_file is None and cfg.identity_file is None:
        return [Check("recording", "OK", "not set up on this host (neither "
                      "SB_REC_RECIPIENTS_FILE nor SB_REC_IDENTITY_FILE)")]
    out: list[Check] = []
    need = ["age"] + (["opusenc"] if cfg.recipients_file is not None else [])
    missing = [t for t in need if shutil.which(t) is None]
    if missing:
        out.append(Check("recording", "FAIL", f"not installed: {', '.join(missing)} "
                         "(Debian packages age, opus-tools)"))
    if cfg.recipients_file is not None:
        try:
            keys = [ln for ln in cfg.recipients_file.read_text().split()
                    if ln.startswith("age1")]
        except OSError as exc:
            keys, why = [], exc.strerror
        else:
            why = "no age1... public key in it"
        out.append(Check("recording", "OK", f"node: seals to {len(keys)} public key(s) in "
                         f"{cfg.recipients_file}") if keys else
                   Check("recording", "FAIL", f"SB_REC_RECIPIENTS_FILE {cfg.recipients_file}: "
                         f"{why}: the shipper cannot seal"))
        if cfg.identity_file is not None:
            out.append(Check("recording", "WARN", "this node also holds the private key "
                             "(SB_REC_IDENTITY_FILE): a stolen disk opens its recordings; "
                             "keep it on the playback host only"))
    if cfg.identity_file is not None:
        try:
            mode = cfg.identity_file.stat().st_mode
        except OSError as exc:
            out.append(Check("recording", "FAIL", f"SB_REC_IDENTITY_FILE "
                             f"{cfg.identity_file}: {exc.strerror}: nothing plays back"))
        else:
            out.append(Check("recording", "FAIL", f"{cfg.identity_file} is readable by "
                             "others: chmod 600") if mode & (stat.S_IRWXG | stat.S_IRWXO)
                       else Check("recording", "OK", "playback: the private key is there, "
                                  "mode safe"))
    if cfg.s3 is None:
        folder = Path(cfg.store)
        out.append(Check("recording", "OK", f"the store folder {folder} is there")
                   if folder.is_dir() else
                   Check("recording", "WARN", f"the store folder {folder} does not exist "
                         "yet (the shipper makes it; a shared mount not mounted?)"))
        return out
    where = open_store(cfg)
    try:  # a key that cannot exist: "not found" is the store answering
        where.digest("doctor/0000/00/00/probe__probe.opus.age")
    except FileNotFoundError:
        out.append(Check("recording", "OK", f"the store answers ({where.describe()})"))
    except RecordingError as exc:
        out.append(Check("recording", "FAIL", f"the store does not answer: {exc}"))
    return out


async def run(settings: Settings, env: dict[str, str]) -> list[Check]:
    checks = check_secrets(settings)
    checks += await check_database(settings)
    checks += await check_ami(settings, env)
    checks += await check_agi(settings)
    checks += check_agi_fallback(env)
    checks += check_files(settings)
    checks += check_edge(env)
    checks += await asyncio.to_thread(check_recordings, env)
    return checks


def report(checks: list[Check], out: Any = print) -> int:
    for c in checks:
        out(str(c))
    status = exit_status(checks)
    out({0: "doctor: all OK", 1: "doctor: works, with warnings",
         2: "doctor: FAILED: see the FAIL lines"}[status])
    return status
