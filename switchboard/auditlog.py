"""The audit log's signing key and checkpoints (migration 0009): what the
services and the ops commands need to write it (switchboard/admin/audit.py checks it).

- The audit key (SB_AUDIT_KEY_FILE, mode 600, like the pepper) goes to the
  sessions of the processes that write audit rows as the startup setting
  ``sb.audit_key``; ``sb_audit_append`` stores HMAC-SHA256(key, row hash) in
  each row.
- Checkpoints: signed lines ``sb-audit-anchor v1 <time> <chain> <seq> <hash>
  <mac>`` appended to SB_AUDIT_ANCHOR_FILE (and logged, so the journal and a
  remote syslog keep them too) by ``switchboard audit anchor`` and by the AGI
  service every SB_AUDIT_ANCHOR_INTERVAL_S.
- ``verify``: the chain (ops.audit_verify), then every row's MAC, then every
  checkpoint against the rows.

Threat model (docs/security.md): whoever holds only the database, even as its
owner with the triggers off, cannot edit, remove, reorder, forge, cut or
truncate rows unnoticed; whoever holds the database and the audit key can
rewrite rows, but not past the last checkpoint kept where they cannot write.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
import pwd
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from switchboard import log
from switchboard.configfiles import ConfigError, generated_secret, loose_mode
from switchboard.settings import AgiSettings
from switchboard.sqlfile import queries

KEY_SETTING = "sb.audit_key"
_OPS = queries("ops.sql")
MAGIC = "sb-audit-anchor v1"
HOUSEKEEPING_S = 3600.0


def load_key(path: Path, *, create: bool = False) -> bytes:
    """The audit key from its file (made once, mode 600, when ``create``)."""
    if create and not path.exists():
        generated_secret(path, 32)
    try:
        problem = loose_mode(path, group_may_read=True)  # the process-AGI fallback's group
    except FileNotFoundError as exc:
        raise ConfigError(f"no audit key at {path} (SB_AUDIT_KEY_FILE)") from exc
    if problem is not None:
        raise ConfigError(f"{problem}: chmod 600 (or 640 with the group of the process-AGI "
                          "fallback)")
    material = path.read_bytes().strip()
    if len(material) < 32:
        raise ConfigError(f"{path}: the audit key must be at least 32 characters")
    return hashlib.sha256(material).digest()


def actor() -> str:
    """Who runs an ops command: the login (the one behind sudo)."""
    try:
        name = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        name = str(os.getuid())
    return f"ops:{os.environ.get('SUDO_USER') or name}"[:100]


async def append_ops_row(conn: Any, agency: str | None, officer: str | None, action: str,
                         *, result: str = "ok", detail: str | None = None) -> None:
    """One audit row for an ops change (signed when the session has the key)."""
    await conn.fetchval(_OPS["audit_append"], actor(), agency, officer, action, result,
                        detail)


def settings_key(s: AgiSettings) -> bytes | None:
    """The audit key of these settings: SB_AUDIT_KEY_FILE (which must exist), or
    the state directory's (made by ``switchboard db up``), else None: rows are
    then written unsigned, and ``audit verify`` says so."""
    if s.audit_key_file is None:
        return None
    if not s.audit_key_explicit and not s.audit_key_file.exists():
        return None
    return load_key(s.audit_key_file)


def session_settings(key: bytes | None) -> dict[str, str]:
    """Startup settings that let this session's audit rows be signed."""
    return {KEY_SETTING: key.hex()} if key else {}


def _mac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def anchor_line(key: bytes, chain: int, seq: int, digest: bytes, at: datetime) -> str:
    body = f"{MAGIC} {at.astimezone(UTC).isoformat()} {chain} {seq} {digest.hex()}"
    return f"{body} {_mac(key, body)}"


@dataclass(frozen=True)
class Anchor:
    at: str
    chain: int
    seq: int
    digest: bytes


def parse_anchors(path: Path, key: bytes) -> tuple[list[Anchor], list[str]]:
    """The checkpoints in the file, and what is wrong with it."""
    anchors: list[Anchor] = []
    problems: list[str] = []
    if not path.exists():
        return [], [f"no checkpoint file at {path}: a cut tail or a truncated log "
                    "could not be told from a short one"]
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.startswith(MAGIC):
            continue  # e.g. a journal export with other lines
        body, _, mac = line.rpartition(" ")
        parts = body[len(MAGIC):].split()
        if len(parts) != 4 or not hmac.compare_digest(_mac(key, body), mac):
            problems.append(f"checkpoint line {n} is not signed with the audit key")
            continue
        try:
            anchors.append(Anchor(parts[0], int(parts[1]), int(parts[2]),
                                  bytes.fromhex(parts[3])))
        except ValueError:
            problems.append(f"checkpoint line {n} is malformed")
    return anchors, problems


def append_anchors(path: Path, lines: list[str]) -> None:
    """Append (never rewrite) and flush to disk; the file is made mode 600."""
    if not lines:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, ("\n".join(lines) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


async def anchor(conn: Any, key: bytes, path: Path, *,
                 last: dict[int, int] | None = None) -> list[str]:
    """Checkpoint every chain head that moved since ``last`` (chain -> seq)."""
    heads = await conn.fetch("SELECT chain, seq, hash FROM sb_audit_heads()")
    at = datetime.now(UTC)
    lines = []
    for h in heads:
        if last is not None and last.get(h["chain"]) == h["seq"]:
            continue
        lines.append(anchor_line(key, h["chain"], h["seq"], bytes(h["hash"]), at))
        if last is not None:
            last[h["chain"]] = h["seq"]
    append_anchors(path, lines)
    logger = log.get("audit")
    for line in lines:
        logger.info("audit_anchor", anchor=line)  # the journal keeps a copy
    return lines


class Anchorer:
    """The AGI service's checkpoints: every ``interval_s``, the heads that moved."""

    def __init__(self, pool: Any, key: bytes, path: Path, interval_s: float) -> None:
        self.pool, self.key, self.path, self.interval_s = pool, key, path, interval_s
        self.last: dict[int, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._housekeeping_due = 0.0  # monotonic time of the next housekeeping

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def once(self) -> list[str]:
        async with self.pool.acquire() as conn:
            lines = await anchor(conn, self.key, self.path, last=self.last)
            if time.monotonic() >= self._housekeeping_due:  # hourly: it scans the tables
                await conn.fetchval("SELECT sb_agi_housekeeping()")  # migration 0010
                self._housekeeping_due = time.monotonic() + HOUSEKEEPING_S
            return lines

    async def _run(self) -> None:
        while True:
            try:
                await self.once()
            except Exception as exc:  # a failed checkpoint must not stop the service
                log.get("audit").warning("audit_anchor_failed", error=type(exc).__name__,
                                         detail=str(exc)[:200])
            await asyncio.sleep(self.interval_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.once(), 5)  # the last heads, on the way out
