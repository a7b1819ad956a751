"""The audit log's anchors outside the database (migration 0009).

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

Threat model (README "Security"): whoever holds only the database, even as its
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
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from switchboard import log, ops
from switchboard.settings import AgiSettings, ConfigError, generated_secret

KEY_SETTING = "sb.audit_key"
MAGIC = "sb-audit-anchor v1"


def load_key(path: Path, *, create: bool = False) -> bytes:
    """The audit key from its file (made once, mode 600, when ``create``)."""
    if create and not path.exists():
        generated_secret(path, 32)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise ConfigError(f"no audit key at {path} (SB_AUDIT_KEY_FILE)") from exc
    if mode & stat.S_IRWXO:
        raise ConfigError(f"{path} is readable by others (mode {mode & 0o777:o}): chmod 600 "
                          "(or 640 with the group of the process-AGI fallback)")
    material = path.read_bytes().strip()
    if len(material) < 32:
        raise ConfigError(f"{path}: the audit key must be at least 32 characters")
    return hashlib.sha256(material).digest()


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


@dataclass
class Verdict:
    rows: int = 0
    heads: str = ""
    anchors: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify(conn: Any, key: bytes | None, anchor_path: Path | None) -> Verdict:
    chain = await ops.audit_verify(conn)
    v = Verdict(chain.rows, chain.heads)
    if not chain.ok:
        v.problems.append(f"chain {chain.broken_chain}, row {chain.broken_at}: "
                          f"{chain.problem}")
    if key is None:
        v.problems.append("no audit key (SB_AUDIT_KEY_FILE): the rows' signatures could "
                          "not be checked")
        return v
    unsigned = await conn.fetch(
        "SELECT chain, seq, mac IS NULL AS missing FROM audit_log "
        "WHERE mac IS DISTINCT FROM hmac(hash, $1::bytea, 'sha256') "
        "ORDER BY chain, seq LIMIT 5", key)
    for r in unsigned:
        v.problems.append(f"chain {r['chain']}, row {r['seq']}: "
                          + ("not signed (written without the audit key)" if r["missing"]
                             else "its signature does not match (forged or edited)"))
    if anchor_path is None:
        v.problems.append("no checkpoint file given (SB_AUDIT_ANCHOR_FILE)")
        return v
    anchors, problems = parse_anchors(anchor_path, key)
    v.problems += problems
    v.anchors = len(anchors)
    heads = {r["chain"]: (r["seq"], bytes(r["hash"]), bytes(r["genesis"]))
             for r in await conn.fetch("SELECT chain, seq, hash, sb_audit_genesis(chain) "
                                       "AS genesis FROM audit_head")}
    highest: dict[int, int] = {}
    for a in anchors:
        if a.chain not in heads:
            v.problems.append(f"checkpoint for chain {a.chain}, which has no head")
            continue
        head_seq, _, genesis = heads[a.chain]
        if a.seq < highest.get(a.chain, 0):
            v.problems.append(f"chain {a.chain}: checkpoint at row {a.seq} after one at row "
                              f"{highest[a.chain]} (the checkpoint file was reordered)")
        highest[a.chain] = max(highest.get(a.chain, 0), a.seq)
        if a.seq > head_seq:
            v.problems.append(f"chain {a.chain}: checkpointed at row {a.seq} ({a.at}) but "
                              f"the head says row {head_seq} (rows were cut or the log "
                              "truncated)")
            continue
        if a.seq == 0:
            found: bytes | None = genesis
        else:
            got = await conn.fetchval("SELECT hash FROM audit_log WHERE chain = $1 AND "
                                      "seq = $2", a.chain, a.seq)
            found = bytes(got) if got is not None else None
        if found != a.digest:
            v.problems.append(f"chain {a.chain}, row {a.seq}: differs from its checkpoint "
                              f"of {a.at} (history was rewritten)")
    return v


class Anchorer:
    """The AGI service's checkpoints: every ``interval_s``, the heads that moved."""

    def __init__(self, pool: Any, key: bytes, path: Path, interval_s: float) -> None:
        self.pool, self.key, self.path, self.interval_s = pool, key, path, interval_s
        self.last: dict[int, int] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def once(self) -> list[str]:
        async with self.pool.acquire() as conn:
            lines = await anchor(conn, self.key, self.path, last=self.last)
            await conn.fetchval("SELECT sb_agi_housekeeping()")  # migration 0010
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
