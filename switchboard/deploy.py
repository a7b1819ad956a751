"""``switchboard dialplan deploy`` and ``rollback``.

Deploy: check (refuse on any finding), show what changes, keep the files it
replaces in ``CONFDIR/.switchboard/previous``, write each changed file
atomically (temporary file, fsync, rename), reload over AMI with the ops user
only what changed, and confirm from Asterisk's replies that every context,
endpoint and queue is loaded.  On any error the previous files go back, the same
reloads run again, and the command exits 1.  An audit row records who deployed
what (actor ops:<login>, the files and their digest).

Rollback: swap the current files with the kept previous ones, reload, confirm.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from ami_listener.framing import Framer, parse_frame, render_action
from switchboard import dialcheck, ops

STATE = ".switchboard"
# what to reload when a file changed (None: only a restart applies it)
RELOADS: dict[str, str | None] = {
    "extensions.conf": "dialplan reload",
    "pjsip.conf": "module reload res_pjsip.so",
    "queues.conf": "queue reload all",
    "manager.conf": "manager reload",
    "logger.conf": "logger reload",
    "musiconhold.conf": "moh reload",
    "modules.conf": None,
    "asterisk.conf": None,
}


class DeployError(Exception):
    """Something a person must look at; the message says what."""


@dataclass(frozen=True)
class AmiOps:
    host: str
    port: int
    username: str
    secret: str
    timeout_s: float = 10.0


class AmiCommands:
    """A small AMI session for ops: MD5 challenge login, ``Command`` actions whose
    ``Output`` lines come back; events in between are skipped."""

    def __init__(self, cfg: AmiOps) -> None:
        self.cfg = cfg
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.framer = Framer(1 << 20)
        self.pending: list[bytes] = []
        self.seq = 0

    async def __aenter__(self) -> AmiCommands:
        c = self.cfg
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(c.host, c.port), c.timeout_s)
        except (OSError, TimeoutError) as exc:
            raise DeployError(f"cannot reach AMI at {c.host}:{c.port}: {exc}") from exc
        challenge = await self.action("Challenge", {"AuthType": "MD5"})
        nonce = challenge.get("Challenge") or ""
        key = hashlib.md5((nonce + c.secret).encode(), usedforsecurity=False).hexdigest()
        login = await self.action("Login", {"AuthType": "MD5", "Username": c.username,
                                            "Key": key, "Events": "off"})
        if login.get("Response") != "Success":
            raise DeployError(f"AMI login as {c.username} refused: {login.get('Message')}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.action("Logoff", {}), 2)
            self.writer.close()

    async def action(self, name: str, headers: dict[str, str]) -> Any:
        assert self.reader is not None and self.writer is not None
        self.seq += 1
        aid = f"sb-deploy-{os.getpid()}-{self.seq}"
        self.writer.write(render_action(name, {"ActionID": aid, **headers}))
        await self.writer.drain()
        deadline = time.monotonic() + self.cfg.timeout_s
        while True:
            while self.pending:
                msg = parse_frame(self.pending.pop(0))
                if msg.get("ActionID") == aid:
                    return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeployError(f"AMI did not answer {name} within {self.cfg.timeout_s}s")
            try:
                data = await asyncio.wait_for(self.reader.read(65536), left)
            except TimeoutError:
                continue
            if not data:
                raise DeployError("AMI closed the connection")
            self.pending += self.framer.feed(data)

    async def command(self, cli: str) -> list[str]:
        msg = await self.action("Command", {"Command": cli})
        if msg.get("Response") != "Success":
            raise DeployError(f"'{cli}' refused by Asterisk: {msg.get('Message')}")
        out = msg.fields.get("Output") or []
        return [out] if isinstance(out, str) else list(out)


@dataclass(frozen=True)
class Change:
    name: str
    old: str | None
    new: str | None  # None: the file goes away (rollback to "did not exist")


def managed_files(dialplan_dir: Path) -> list[str]:
    return sorted(p.name for p in dialplan_dir.glob("*.conf"))


def plan(dialplan_dir: Path, confdir: Path) -> list[Change]:
    changes = []
    for name in managed_files(dialplan_dir):
        new = (dialplan_dir / name).read_text()
        target = confdir / name
        old = target.read_text() if target.exists() else None
        if old != new:
            changes.append(Change(name, old, new))
    return changes


def short_diff(changes: Iterable[Change], limit: int = 40) -> list[str]:
    out: list[str] = []
    for c in changes:
        lines = list(difflib.unified_diff((c.old or "").splitlines(),
                                          (c.new or "").splitlines(),
                                          f"live/{c.name}", f"new/{c.name}", lineterm="", n=1))
        added = sum(1 for x in lines if x.startswith("+") and not x.startswith("+++"))
        removed = sum(1 for x in lines if x.startswith("-") and not x.startswith("---"))
        out.append(f"{c.name}: +{added} -{removed}"
                   + (" (new file)" if c.old is None else "")
                   + (" (removed)" if c.new is None else ""))
        body = [x for x in lines if not x.startswith(("---", "+++"))]
        out += ["    " + x for x in body[:limit]]
        if len(body) > limit:
            out.append(f"    ... {len(body) - limit} more lines")
    return out


def actions_for(changes: Iterable[Change]) -> tuple[list[str], list[str]]:
    """(AMI commands to run, files that only a restart applies)."""
    reloads: list[str] = []
    restart: list[str] = []
    for c in changes:
        cmd = RELOADS.get(c.name, f"module reload {c.name}")
        if cmd is None:
            restart.append(c.name)
        elif cmd not in reloads:
            reloads.append(cmd)
    return reloads, restart


def write_atomic(path: Path, text: str | None) -> None:
    if text is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    tmp = path.with_name(f".{path.name}.sb-tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    if path.exists():
        os.chmod(tmp, path.stat().st_mode & 0o7777)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def keep_previous(confdir: Path, changes: list[Change]) -> None:
    """Remember the live version of every file about to change (absent: null)."""
    prev = confdir / STATE / "previous"
    if prev.exists():
        for f in prev.iterdir():
            f.unlink()
    prev.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for c in changes:
        manifest[c.name] = c.old is not None
        if c.old is not None:
            write_atomic(prev / c.name, c.old)
    write_atomic(prev / "manifest.json", json.dumps(manifest, indent=1))


def previous_changes(confdir: Path) -> list[Change]:
    prev = confdir / STATE / "previous"
    try:
        manifest = json.loads((prev / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise DeployError(f"no previous version kept in {prev}") from exc
    changes = []
    for name, existed in sorted(manifest.items()):
        live = confdir / name
        changes.append(Change(name, live.read_text() if live.exists() else None,
                              (prev / name).read_text() if existed else None))
    return changes


def expected(confdir: Path) -> tuple[list[str], list[str], list[str]]:
    """Contexts, endpoints and queues the live files define (site files included)."""
    tree = confdir
    ext = dialcheck.load_conf(tree / "extensions.conf", tree)
    contexts = [c for c, (_, _, tpl) in ext.sections.items()
                if c not in ("general", "globals") and not tpl]
    pj = dialcheck.load_conf(tree / "pjsip.conf", tree)
    qs = dialcheck.load_conf(tree / "queues.conf", tree)
    endpoints = sorted(dialcheck.endpoints(pj))
    queues = [q for q, (_, _, tpl) in qs.sections.items() if q != "general" and not tpl]
    return contexts, endpoints, queues


async def reload_and_confirm(ami: AmiCommands, reloads: list[str], confdir: Path,
                             say: Any) -> None:
    for cmd in reloads:
        out = await ami.command(cmd)
        say(f"  {cmd}: {' / '.join(out) or 'ok'}")
        if cmd == "dialplan reload" and not any("Dialplan reloaded" in x for x in out):
            raise DeployError(f"'{cmd}' did not say 'Dialplan reloaded.': {out}")
        if any(re.search(r"\b(Unable|fail|No such command|not found)\b", x, re.I)
               for x in out):
            raise DeployError(f"'{cmd}' reported: {' / '.join(out)}")
    contexts, endpoints, queues = expected(confdir)
    for ctx in contexts:
        out = await ami.command(f"dialplan show {ctx}")
        if not any(f"[ Context '{ctx}' created by 'pbx_config' ]" in x for x in out):
            raise DeployError(f"context {ctx} is not loaded: {' / '.join(out)[:200]}")
    shown = " ".join(await ami.command("pjsip show endpoints"))
    missing = [e for e in endpoints
               if not re.search(rf"Endpoint:\s+{re.escape(e)}[\s/]", shown)]
    if missing:
        raise DeployError(f"endpoints not loaded: {', '.join(missing)}")
    shown = " ".join(await ami.command("queue show"))
    missing = [q for q in queues if not re.search(rf"(^|\s){re.escape(q)} has ", shown)]
    if missing:
        raise DeployError(f"queues not loaded: {', '.join(missing)}")
    say(f"  confirmed: {len(contexts)} contexts, {len(endpoints)} endpoints, "
        f"{len(queues)} queues loaded")


async def apply(changes: list[Change], confdir: Path, ami_cfg: AmiOps, say: Any) -> None:
    """Log in to AMI first (nothing is written if Asterisk cannot be reached),
    write ``changes``, reload, confirm.  On failure put the old text back, reload
    and confirm again, then raise."""
    reloads, restart = actions_for(changes)
    async with AmiCommands(ami_cfg) as ami:
        for c in changes:
            write_atomic(confdir / c.name, c.new)
        try:
            await reload_and_confirm(ami, reloads, confdir, say)
        except DeployError as exc:
            say(f"FAILED: {exc}; putting the previous files back")
            for c in changes:
                write_atomic(confdir / c.name, c.old)
            try:
                await reload_and_confirm(ami, reloads, confdir, say)
            except DeployError as again:
                raise DeployError(f"{exc}; and restoring the previous version failed too: "
                                  f"{again}") from again
            say("previous version restored and confirmed")
            raise
    if restart:
        say(f"note: {', '.join(restart)} take effect at the next Asterisk restart")


def digest(changes: Iterable[Change]) -> str:
    h = hashlib.sha256()
    for c in changes:
        h.update(c.name.encode() + b"\0" + (c.new or "").encode() + b"\0")
    return h.hexdigest()[:16]


async def record(database_url: str | None, action: str, result: str, detail: str,
                 say: Any) -> None:
    if not database_url:
        say("note: no database configured; deploy not recorded in the audit log")
        return
    try:
        conn = await asyncpg.connect(database_url, timeout=5)
        try:
            await conn.fetchval(ops.Q["audit_append"], ops.actor(), None, None, action,
                                result, detail[:200])
        finally:
            await conn.close()
    except (OSError, asyncpg.PostgresError) as exc:
        say(f"warning: audit row not written ({type(exc).__name__})")


async def carry_out(changes: list[Change], confdir: Path, ami_cfg: AmiOps, *,
                    dry_run: bool, database_url: str | None, action: str, failed: str,
                    say: Any) -> bool:
    """What deploy and rollback share once they know the changes: show the diff
    and the actions; unless a dry run, keep the live files as the previous
    version (so a rollback can itself be rolled back), apply, and write the audit
    row (``failed`` as its result when apply raised).  True when applied."""
    for line in short_diff(changes):
        say(line)
    reloads, restart = actions_for(changes)
    say("actions: " + ", ".join(reloads + [f"(restart for {r})" for r in restart]))
    if dry_run:
        say("dry run: nothing written, nothing reloaded")
        return False
    keep_previous(confdir, changes)
    detail = f"{digest(changes)} {','.join(c.name for c in changes)}"
    try:
        await apply(changes, confdir, ami_cfg, say)
    except DeployError:
        await record(database_url, action, failed, detail, say)
        raise
    await record(database_url, action, "ok", detail, say)
    return True


async def deploy(dialplan_dir: Path, confdir: Path, ami_cfg: AmiOps, *, dry_run: bool,
                 database_url: str | None, say: Any = print) -> int:
    site = confdir / "site" if (confdir / "site").is_dir() else None
    findings = dialcheck.check(dialplan_dir, site)
    if findings:
        for f in findings:
            say(str(f))
        raise DeployError(f"dialplan check failed ({len(findings)} problems): not deploying")
    changes = plan(dialplan_dir, confdir)
    if not changes:
        say("nothing to deploy: the live files are the same")
        return 0
    if await carry_out(changes, confdir, ami_cfg, dry_run=dry_run, database_url=database_url,
                       action="dialplan-deploy", failed="rolled-back", say=say):
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
