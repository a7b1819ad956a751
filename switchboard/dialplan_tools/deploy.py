"""``switchboard dialplan deploy``, ``rollback`` and ``confirm``.

What is deployed: ``dialplan/*.conf`` into the configuration folder, and the
site's own files (``--site``, default ``/etc/switchboard/site``) into its
``site/`` folder: both are diffed, written, reloaded and confirmed alike.

Deploy: check (refuse on any finding), show what changes, log in to AMI with the
ops user (refuse, writing nothing, when Asterisk cannot be reached), keep the
files it replaces in ``CONFDIR/.switchboard/previous``, write each changed file
atomically (temporary file, fsync, rename) keeping its owner, group and mode,
reload only what changed, and confirm from Asterisk's replies: every module
modules.conf loads is running, every context, endpoint and queue is loaded, each
queue has its strategy.  On any difference the previous files go back, the same
reloads run again, and the command exits 1.  An audit row records who deployed
what and how it ended (ok, refused, rolled-back).

First install (``--first-install``, Asterisk stopped): the AMI users are defined
by the very files being deployed, so nothing can be reloaded or confirmed yet:
deploy writes the files and says so; start Asterisk, then ``confirm``.

Rollback: swap the current files with the kept previous ones, reload, confirm.
Confirm: compare the running Asterisk with the files in the folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from switchboard import auditlog
from switchboard.ami_listener.actions import AmiLogin, AmiSession
from switchboard.dialplan_tools import dialcheck
from switchboard.dialplan_tools.confchanges import (
    Change,
    actions_for,
    deploy_lock,
    includers_for,
    keep_previous,
    plan,
    preflight,
    previous_changes,
    same_folder,
    short_diff,
    write_all,
)
from switchboard.dialplan_tools.confchanges import (
    DeployError as DeployError,  # noqa: PLC0414 - deploy.DeployError for its callers
)
from switchboard.settings import ConfigError, load

DEFAULT_SITE_DIR = Path("/etc/switchboard/site")
# The AMI session and its error live in switchboard/ami_listener/actions.py, shared with the
# agent panel's Originate; deploy's names for them:
AmiOps = AmiLogin
AmiCommands = AmiSession


# --- what the files say Asterisk should be running --------------------------------

@dataclass(frozen=True)
class Expected:
    modules: list[str]  # modules.conf load lines (autoload = no)
    contexts: list[str]
    endpoints: list[str]
    queues: dict[str, str]  # queue -> strategy (the first one, as Asterisk reads it)


def expected(confdir: Path) -> Expected:
    """What the live files (site files included) define."""
    tree = confdir
    ext = dialcheck.load_conf(tree / "extensions.conf", tree)
    contexts = [c for c, (_, _, tpl) in ext.sections.items()
                if c not in ("general", "globals") and not tpl]
    pj = dialcheck.load_conf(tree / "pjsip.conf", tree)
    queues = dialcheck.queue_strategies(dialcheck.load_conf(tree / "queues.conf", tree))
    loads = (dialcheck.explicit_loads(dialcheck.load_conf(tree / "modules.conf", tree))
             if (tree / "modules.conf").exists() else None)
    return Expected(list(loads or ()), contexts, sorted(dialcheck.endpoints(pj)), queues)


def modules_running(lines: list[str]) -> dict[str, str]:
    """``module show`` output -> module -> status (Running, Not Running, ...)."""
    out = {}
    for line in lines:
        m = re.match(r"^(\S+\.so)\s.*?\s(Running|Not Running|Declined|Failed)\b", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


async def confirm_live(ami: AmiCommands, confdir: Path, say: Any, *,
                       pending_restart: Iterable[str] = ()) -> None:
    """Raise DeployError unless the running Asterisk matches the files in
    ``confdir``.  Modules first loaded by a modules.conf that changed in this
    deploy only run after a restart: they are reported, not failed."""
    want = expected(confdir)
    problems: list[str] = []
    settings = " ".join(await ami.command("core show settings"))
    m = re.search(r"Configuration directory:\s+(\S+)", settings)
    if m and not same_folder(m.group(1), confdir):
        problems.append(f"Asterisk reads its configuration from {m.group(1)}, not {confdir}")
    running = modules_running(await ami.command("module show"))
    later = [mod for mod in want.modules if running.get(mod) != "Running"]
    if later and "modules.conf" in set(pending_restart):
        say(f"  after the restart: {', '.join(later)} (not running yet)")
    elif later:
        problems.append("modules not running: " + ", ".join(
            f"{mod} ({running.get(mod, 'not loaded')})" for mod in later))
    for ctx in want.contexts:
        out = await ami.command(f"dialplan show {ctx}")
        if not any(f"[ Context '{ctx}' created by 'pbx_config' ]" in x for x in out):
            problems.append(f"context {ctx} is not loaded")
    shown = " ".join(await ami.command("pjsip show endpoints"))
    missing = [e for e in want.endpoints
               if not re.search(rf"Endpoint:\s+{re.escape(e)}[\s/]", shown)]
    if missing:
        problems.append(f"endpoints not loaded: {', '.join(missing)}")
    shown = "\n".join(await ami.command("queue show"))
    for queue, strategy in want.queues.items():
        m = re.search(rf"(?:^|\s){re.escape(queue)} has \d+ calls .*? in '([a-z]+)' strategy",
                      shown, re.M)
        if not m:
            problems.append(f"queue {queue} is not loaded")
        elif m.group(1) != strategy:
            problems.append(f"queue {queue} runs strategy {m.group(1)}, the files say "
                            f"{strategy}")
    if problems:
        raise DeployError("; ".join(problems))
    say(f"  confirmed: {len(want.modules)} modules running, {len(want.contexts)} contexts, "
        f"{len(want.endpoints)} endpoints, {len(want.queues)} queues ("
        + ", ".join(f"{q} {s}" for q, s in want.queues.items()) + ")")


# pjsip.conf objects that their own modules load (res_pjsip's reload leaves them
# as they were): the nodes' shared device states (issue 23)
PJSIP_OWN_RELOADS = ("res_pjsip_outbound_publish.so", "res_pjsip_publish_asterisk.so")


def with_pjsip_modules(reloads: list[str], confdir: Path) -> list[str]:
    """``reloads`` plus, after a reload of res_pjsip, the reload of each module in
    PJSIP_OWN_RELOADS that the node loads."""
    if "module reload res_pjsip.so" not in reloads:
        return reloads
    loaded = expected(confdir).modules
    return reloads + [f"module reload {m}" for m in PJSIP_OWN_RELOADS if m in loaded]


async def reload_and_confirm(ami: AmiCommands, reloads: list[str], confdir: Path,
                             say: Any, *, pending_restart: Iterable[str] = ()) -> None:
    for cmd in with_pjsip_modules(reloads, confdir):
        out = await ami.command(cmd)
        say(f"  {cmd}: {' / '.join(out) or 'ok'}")
        if cmd == "dialplan reload" and not any("Dialplan reloaded" in x for x in out):
            raise DeployError(f"'{cmd}' did not say 'Dialplan reloaded.': {out}")
        if any(re.search(r"\b(Unable|fail|failed|No such command|not found|not properly)\b",
                         x, re.I) for x in out):
            raise DeployError(f"'{cmd}' reported: {' / '.join(out)}")
    await confirm_live(ami, confdir, say, pending_restart=pending_restart)


# --- carrying a change out -----------------------------------------------------------

def digest(changes: Iterable[Change]) -> str:
    h = hashlib.sha256()
    for c in changes:
        h.update(c.name.encode() + b"\0" + (c.new or "").encode() + b"\0")
    return h.hexdigest()[:16]


async def record(database_url: str | None, action: str, result: str, detail: str,
                 say: Any) -> None:
    if not database_url:
        say("note: no database configured; not recorded in the audit log")
        return
    try:  # signed with the audit key, as every ops row (docs/security.md)
        signing = auditlog.session_settings(auditlog.settings_key(load().agi))
    except ConfigError as exc:
        say(f"warning: the audit row is not signed ({exc})")
        signing = {}
    try:
        conn = await asyncpg.connect(database_url, timeout=5, server_settings=signing)
        try:
            await auditlog.append_ops_row(conn, None, None, action, result=result,
                                          detail=detail[:200])
        finally:
            await conn.close()
    except (OSError, asyncpg.PostgresError) as exc:
        say(f"warning: audit row not written ({type(exc).__name__})")


async def apply(changes: list[Change], confdir: Path, ami: AmiCommands, say: Any, *,
                reloads: list[str], restart: list[str]) -> None:
    """Write ``changes`` (the previous version is already kept), reload, confirm.
    On failure put the old text back, reload and confirm again, then raise."""
    write_all(changes, confdir, "new")
    try:
        await reload_and_confirm(ami, reloads, confdir, say, pending_restart=restart)
    except DeployError as exc:
        say(f"FAILED: {exc}; putting the previous files back")
        write_all(changes, confdir, "old")
        try:
            await reload_and_confirm(ami, reloads, confdir, say, pending_restart=restart)
        except DeployError as again:
            raise DeployError(f"{exc}; and restoring the previous version failed too: "
                              f"{again}") from again
        say("previous version restored and confirmed")
        raise
    if restart:
        say(f"note: {', '.join(restart)} take effect at the next Asterisk restart; "
            f"then run 'switchboard dialplan confirm'")


async def ami_answers(cfg: AmiOps) -> bool:
    """Something accepts connections on the ops AMI address."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(cfg.host, cfg.port),
                                           min(cfg.timeout_s, 3))
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True


async def carry_out(changes: list[Change], confdir: Path, ami_cfg: AmiOps, *,
                    dry_run: bool, database_url: str | None, action: str, failed: str,
                    say: Any, first_install: bool = False) -> bool:
    """What deploy and rollback share once they know the changes: show the diff
    and the actions; unless a dry run, log in to AMI (or, for a first install,
    make sure Asterisk is not running), keep the live files as the previous
    version (so a rollback can itself be rolled back), write, reload, confirm,
    and write the audit row.  A refused change writes nothing and keeps the
    previous version as it was.  True when applied."""
    for line in short_diff(changes):
        say(line)
    reloads, restart = actions_for(changes, includers_for(changes, confdir))
    if first_install:
        say("actions: none (first install: Asterisk is stopped)")
    else:
        say("actions: " + ", ".join(reloads + [f"(restart for {r})" for r in restart]))
    if dry_run:
        say("dry run: nothing written, nothing reloaded")
        return False
    detail = f"{digest(changes)} {','.join(c.name for c in changes)}"
    with deploy_lock(confdir):
        try:
            preflight(changes, confdir)
        except DeployError as exc:
            await record(database_url, action, "refused", f"{detail} {exc}", say)
            raise
        if first_install:
            if await ami_answers(ami_cfg):
                why = (f"Asterisk answers on AMI at {ami_cfg.host}:{ami_cfg.port}: this is "
                       f"not a first install; deploy without --first-install")
                await record(database_url, action, "refused", f"{detail} {why}", say)
                raise DeployError(why)
            keep_previous(confdir, changes)
            write_all(changes, confdir, "new")
            await record(database_url, action, "written", detail, say)
            say(f"written {len(changes)} file(s) ({digest(changes)}). Start Asterisk now, "
                f"then run 'switchboard dialplan confirm' (if it finds a problem, "
                f"'switchboard dialplan rollback' puts the previous files back)")
            return True
        try:
            session = AmiCommands(ami_cfg)
            await session.__aenter__()
        except DeployError as exc:
            await record(database_url, action, "refused", f"{detail} {exc}", say)
            raise DeployError(f"{exc}: nothing written (for a node whose Asterisk is not "
                              f"running yet, see --first-install)") from exc
        try:
            keep_previous(confdir, changes)
            try:
                await apply(changes, confdir, session, say, reloads=reloads,
                            restart=restart)
            except DeployError:
                await record(database_url, action, failed, detail, say)
                raise
        finally:
            await session.__aexit__(None, None, None)
    await record(database_url, action, "ok", detail, say)
    return True


def _site_dir(site_dir: Path | None) -> Path:
    site = site_dir or DEFAULT_SITE_DIR
    if not site.is_dir():
        raise DeployError(f"no site files at {site}: copy dialplan/site.example there and "
                          f"edit it (or give --site)")
    return site


async def deploy(dialplan_dir: Path, confdir: Path, ami_cfg: AmiOps, *, dry_run: bool,
                 database_url: str | None, site_dir: Path | None = None,
                 first_install: bool = False, say: Any = print) -> int:
    site = _site_dir(site_dir)
    findings = dialcheck.check(dialplan_dir, site, strict=True)
    if findings:
        for f in findings:
            say(str(f))
        raise DeployError(f"dialplan check failed ({len(findings)} problems): not deploying")
    changes = plan(dialcheck.desired_files(dialplan_dir, site, confdir), confdir)
    if not changes:
        say("nothing to deploy: the live files are the same")
        return 0
    if await carry_out(changes, confdir, ami_cfg, dry_run=dry_run, database_url=database_url,
                       action="dialplan-deploy", failed="rolled-back", say=say,
                       first_install=first_install) and not first_install:
        say(f"deployed {len(changes)} file(s) ({digest(changes)})")
    return 0


async def rollback(confdir: Path, ami_cfg: AmiOps, *, dry_run: bool,
                   database_url: str | None, say: Any = print) -> int:
    changes = [c for c in previous_changes(confdir) if c.old != c.new]
    if not changes:
        say("nothing to roll back: the live files are the kept previous version")
        return 0
    if await carry_out(changes, confdir, ami_cfg, dry_run=dry_run, database_url=database_url,
                       action="dialplan-rollback", failed="failed", say=say):
        say(f"rolled back {len(changes)} file(s)")
    return 0


async def confirm(confdir: Path, ami_cfg: AmiOps, *, database_url: str | None,
                  say: Any = print) -> int:
    """Compare the running Asterisk with the files in ``confdir`` (after a first
    install, or after a restart for modules.conf)."""
    try:
        async with AmiCommands(ami_cfg) as ami:
            await confirm_live(ami, confdir, say)
    except DeployError as exc:
        await record(database_url, "dialplan-confirm", "failed", str(exc), say)
        raise
    await record(database_url, "dialplan-confirm", "ok", str(confdir), say)
    return 0
