"""Recordings after the call (docs/recordings.md): the shipper on each
Asterisk node, the purge, legal holds, and the check of the store against
the audit chain.

The shipper's order keeps nothing lost and the clear audio short-lived:

1. MixMonitor writes ``<spool>/<call>__<leg>.wav``; when the call ends its
   post-command moves the file to ``<spool>/done/`` (a file left in the spool
   untouched for SB_REC_STALE_S is finished too: Asterisk stopped).
2. ``seal``: Opus, encrypted to the site's public key, into ``<spool>/sealed/``;
   then the clear WAV is removed.  From here on the node holds only ciphertext
   and no key that opens it.
3. The sealed file is copied into the store (idempotent), then indexed with its
   SHA-256 (``sb_recorder_stored``, which also writes it into the call's audit
   chain), then removed from the node.  A crash or a database outage anywhere
   leaves the file where the next pass picks it up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from switchboard import log
from switchboard.admin.recstore import (
    NAME_RE,
    SEALED_SUFFIX,
    RecordingError,
    Sealed,
    Store,
    key_for,
    open_store,
    seal,
    sha256_file,
)
from switchboard.recsettings import RecordingSettings
from switchboard.sqlfile import queries

Q = queries("recordings.sql")
DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncio.TimeoutError)


@dataclass
class ShipStats:
    sealed: int = 0
    stored: int = 0
    failed: int = 0
    seal_ms: list[float] = field(default_factory=list)
    store_ms: list[float] = field(default_factory=list)


class Shipper:
    def __init__(self, cfg: RecordingSettings, database_url: str,
                 server_settings: dict[str, str] | None = None) -> None:
        if cfg.recipients_file is None or not cfg.recipients_file.is_file():
            raise RecordingError("SB_REC_RECIPIENTS_FILE must name the age public key(s) the "
                                 "recordings are encrypted to (age-keygen -y on the "
                                 "playback host's key)")
        self.cfg = cfg
        self.url = database_url
        # the audit key (sb.audit_key), so the recording-stored rows are signed
        self.server_settings = {"application_name": "switchboard-recordings",
                                **(server_settings or {})}
        self.store = open_store(cfg)
        self.done = cfg.spool / "done"
        self.sealed = cfg.spool / "sealed"
        self.stats = ShipStats()
        self.log = log.get("recordings")
        self.conn: asyncpg.Connection | None = None

    def prepare(self) -> None:
        for d in (self.cfg.spool, self.done, self.sealed):
            d.mkdir(parents=True, exist_ok=True)

    def finished(self) -> list[Path]:
        """WAVs whose recording is over: moved to done/, or untouched for stale_s."""
        now = time.time()
        out = sorted(p for p in self.done.glob("*.wav") if NAME_RE.match(p.name))
        for p in self.cfg.spool.glob("*.wav"):
            with contextlib.suppress(FileNotFoundError):
                if NAME_RE.match(p.name) and now - p.stat().st_mtime >= self.cfg.stale_s:
                    out.append(p)
        return out

    def waiting(self) -> tuple[int, float]:
        """Files not yet in the store, and the age of the oldest (s): the alert's
        figure (a recording not moved within N minutes)."""
        now, oldest, n = time.time(), 0.0, 0
        for folder, pattern in ((self.done, "*.wav"), (self.sealed, "*" + SEALED_SUFFIX)):
            for p in folder.glob(pattern):
                if not NAME_RE.match(p.name.removesuffix(SEALED_SUFFIX).removesuffix(".wav")
                                     + ".wav"):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    oldest = max(oldest, now - p.stat().st_mtime)
                    n += 1
        return n, oldest

    async def db(self) -> asyncpg.Connection:
        if self.conn is None or self.conn.is_closed():
            self.conn = await asyncpg.connect(
                self.url, timeout=5, command_timeout=10, server_settings=self.server_settings)
        return self.conn

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()
            self.conn = None

    def seal_one(self, wav: Path) -> Sealed | None:
        t0 = time.perf_counter()
        try:
            sealed = seal(wav, self.sealed, self.cfg.recipients_file,  # type: ignore[arg-type]
                          kbps=self.cfg.opus_kbps, complexity=self.cfg.opus_complexity)
        except RecordingError as exc:
            self.stats.failed += 1
            self.log.error("recording_seal_failed", file=wav.name, error=str(exc))
            return None
        wav.unlink()
        self.stats.sealed += 1
        self.stats.seal_ms.append((time.perf_counter() - t0) * 1000)
        self.log.info("recording_sealed", uniqueid=sealed.uniqueid, leg=sealed.leg,
                      seconds=round(sealed.seconds, 2), bytes=sealed.size)
        return sealed

    def _loaded(self, path: Path) -> Sealed | None:
        m = NAME_RE.match(path.name[:-len(SEALED_SUFFIX)] + ".wav")
        meta = _meta(path)
        if m is None or meta is None:
            self.log.error("recording_sealed_without_meta", file=path.name)
            return None
        return Sealed(path, m.group(1), m.group(2), meta[0], meta[1], path.stat().st_size,
                      sha256_file(path))

    async def store_one(self, path: Path) -> bool:
        """Copy a sealed file into the store and index it; True when done."""
        sealed = await asyncio.to_thread(self._loaded, path)
        if sealed is None:
            return False
        key = key_for(self.cfg.node, sealed)
        t0 = time.perf_counter()
        try:
            await asyncio.to_thread(self.store.put, key, path, sealed.sha256)
            conn = await self.db()
            result = await conn.fetchval(
                Q["stored"], sealed.uniqueid, sealed.leg, self.cfg.node, key, sealed.size,
                sealed.sha256, Decimal(f"{sealed.seconds:.2f}"), sealed.started)
        except (RecordingError, *DB_ERRORS) as exc:
            self.stats.failed += 1
            self.log.warning("recording_store_failed", uniqueid=sealed.uniqueid,
                             leg=sealed.leg, error=type(exc).__name__, detail=str(exc)[:200])
            await self.close()
            return False
        await asyncio.to_thread(_forget, path)
        self.stats.stored += 1
        self.stats.store_ms.append((time.perf_counter() - t0) * 1000)
        self.log.info("recording_stored", uniqueid=sealed.uniqueid, leg=sealed.leg, key=key,
                      result=result)
        return True

    async def pass_once(self) -> int:
        """Seal every finished WAV, store every sealed file; the number stored."""
        for wav in self.finished():
            sealed = await asyncio.to_thread(self.seal_one, wav)
            if sealed is not None:
                _write_meta(sealed)
        stored = 0
        for p in sorted(self.sealed.glob("*" + SEALED_SUFFIX)):
            stored += await self.store_one(p)
        return stored

    async def run(self, stop: asyncio.Event) -> None:
        self.prepare()
        self.log.info("recordings_shipper_started", spool=str(self.cfg.spool),
                      store=self.store.describe(), node=self.cfg.node)
        try:
            while not stop.is_set():
                await self.pass_once()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.cfg.poll_s)
        finally:
            await self.close()


def _forget(sealed: Path) -> None:
    sealed.unlink()
    _meta_path(sealed).unlink(missing_ok=True)


def _meta_path(sealed: Path) -> Path:
    return sealed.with_name(sealed.name + ".meta")


def _write_meta(s: Sealed) -> None:
    """When the recording started and how long it is, beside the sealed file
    (the clear WAV they came from is gone)."""
    _meta_path(s.path).write_text(f"{s.seconds:.2f} {s.started.timestamp():.3f}\n")


def _meta(sealed: Path) -> tuple[float, datetime] | None:
    try:
        seconds, started = _meta_path(sealed).read_text().split()
        return float(seconds), datetime.fromtimestamp(float(started), UTC)
    except (OSError, ValueError):
        return None


# --- ops: purge, holds, verification ---------------------------------------------------

@dataclass
class Purged:
    deleted: int = 0
    missing: int = 0
    kept_by_hold: int = 0
    failed: int = 0      # the store refused or did not answer: kept, tried next time


async def purge(conn: Any, store: Store, days: int, actor: str, *,
                dry_run: bool = False, limit: int = 100_000) -> Purged:
    """Delete the recordings older than ``days`` that no legal hold keeps; each
    deletion is an audit row (the file first, then the row: a crash between
    leaves a row whose file is gone, which the next purge finishes).  A file
    the store would not delete keeps its row, for the next purge."""
    out = Purged()
    out.kept_by_hold = await conn.fetchval(Q["kept_by_hold"], days)
    for r in await conn.fetch(Q["expired"], days, limit):
        if dry_run:
            out.deleted += 1
            continue
        try:
            if not await asyncio.to_thread(store.delete, r["store_key"]):
                out.missing += 1
        except RecordingError as exc:
            out.failed += 1
            log.get("recordings").warning("recording_purge_failed", uniqueid=r["uniqueid"],
                                          error=str(exc)[:200])
            continue
        if await conn.fetchval(Q["purged"], r["recording_id"], actor, days):
            out.deleted += 1
    return out


async def hold(conn: Any, uniqueid: str, reason: str, actor: str) -> str:
    async with conn.transaction():
        done = await conn.fetchval(Q["hold"], uniqueid, reason[:200], actor)
        if done:
            await conn.execute(Q["hold_audit"], actor, uniqueid, "on", reason[:200])
    return "held" if done else "already held"


async def release(conn: Any, uniqueid: str, actor: str) -> str:
    async with conn.transaction():
        done = await conn.fetchval(Q["release"], uniqueid)
        if done:
            await conn.execute(Q["hold_audit"], actor, uniqueid, "off", None)
    return "released" if done else "not held"


async def verify_store(conn: Any, store: Store) -> tuple[int, list[str]]:
    """Every kept recording against the digest its audit row holds (the chain
    itself is checked by ``audit verify``): a file replaced, edited or missing,
    or a row whose digest the audit log never saw, is a problem."""
    problems: list[str] = []
    rows = await conn.fetch(Q["kept"])
    for r in rows:
        rid = r["recording_id"]
        if not r["audited"]:
            problems.append(f"recording {rid} (call {r['uniqueid']}): its digest is not the "
                            "one the audit log recorded (the index was edited)")
        try:
            digest = await asyncio.to_thread(store.digest, r["store_key"])
        except FileNotFoundError:
            problems.append(f"recording {rid} (call {r['uniqueid']}): missing from the store")
            continue
        except RecordingError as exc:
            problems.append(f"recording {rid} (call {r['uniqueid']}): not read: {exc}")
            continue
        if digest != bytes(r["sha256"]):
            problems.append(f"recording {rid} (call {r['uniqueid']}): the stored file was "
                            "replaced or edited (its SHA-256 differs from the audited one)")
    return len(rows), problems
