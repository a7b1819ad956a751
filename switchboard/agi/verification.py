"""The database side of verify and lookup, shared by both transports.

One verification attempt is three statements, each its own transaction
(migration 0008): ``sb_agi_attempt_begin`` counts the attempt as a failure and
records it (committed), ``sb_agi_attempt_hash`` hands back the PIN hash for
that committed attempt only, the PIN is checked with argon2id in a worker
thread (no connection held meanwhile), and ``sb_agi_attempt_finish`` gives the
outcome, clearing the failure when the PIN was right.  The database holds the
policy and decides; the service reports only whether the PIN matched the hash
it was given.  A connection is held only while the database is asked, never
while the caller is keying digits or argon2 runs.

Overload: when no connection is free within the pool wait, the attempt is shed
(the caller gets ``error``: UNVERIFIED, still reaching an agent) and its audit
row is written by a reserve connection of its own, so no attempt goes
unrecorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

from switchboard.agi.attest import CallerIdCheck
from switchboard.agi.pins import PinHasher
from switchboard.agi.protocol import note_deliberate
from switchboard.auditlog import session_settings
from switchboard.sqlfile import queries

Q = queries("agi.sql")
VERIFIED = ("full", "line-only")


class Database(Protocol):
    def transaction(self) -> contextlib.AbstractAsyncContextManager[Any]: ...
    def connection(self) -> contextlib.AbstractAsyncContextManager[Any]: ...


class PoolDatabase:
    """FastAGI: a pool made at start-up; each step borrows a connection."""

    def __init__(self, pool: asyncpg.Pool, wait_s: float = 5.0) -> None:
        self.pool = pool
        self.wait_s = wait_s  # for a free connection; then the call fails closed

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self.pool.acquire(timeout=self.wait_s) as conn, conn.transaction():
            yield conn

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        async with self.pool.acquire(timeout=self.wait_s) as conn:
            yield conn


class ConnectionDatabase:
    """Process AGI: one connection for the one call."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self.conn.transaction():
            yield self.conn

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        yield self.conn


def connect_kwargs(audit_key: bytes | None = None) -> dict[str, Any]:
    """The AGI service logs in as its own role (sb_agi), never as the owner; its
    sessions carry the audit key, so the rows they cause are signed."""
    return {"server_settings": {"application_name": "switchboard-agi",
                                **session_settings(audit_key)},
            "command_timeout": 10}


@dataclass(frozen=True)
class LookupResult:
    outcome: str  # found | not-found | refused
    case_ref: str | None
    priority: str | None


class ShedAudit:
    """Audit rows for attempts shed under overload, written in the background by
    a connection of their own (the pool had none to spare)."""

    def __init__(self, database_url: str, connect: dict[str, Any]) -> None:
        self.url = database_url
        self.connect = connect
        self.pending: list[tuple[str, str]] = []
        self.written = 0
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def add(self, uniqueid: str, ani: str) -> None:
        if len(self.pending) < 100_000:
            self.pending.append((uniqueid, ani))
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        conn = None
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(self.url, timeout=10, **self.connect)
                while self.pending:
                    batch = self.pending[:500]
                    async with conn.transaction():
                        await conn.executemany(Q["audit"], [(u, a, "verify", "shed")
                                                            for u, a in batch])
                    del self.pending[:len(batch)]
                    self.written += len(batch)
                self._drained.set()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                conn = None
                await asyncio.sleep(1)
                self._wake.set()

    async def stop(self) -> None:
        if self.pending:
            self._drained.clear()
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), 5)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class Verifier:
    def __init__(self, db: Database, hasher: PinHasher, *, hash_workers: int = 2,
                 shed: ShedAudit | None = None) -> None:
        self.db = db
        self.hasher = hasher
        self.shed = shed
        self._hash_slots = asyncio.Semaphore(hash_workers)

    async def _check_pin(self, pin_hash: str | None, pin: str) -> tuple[bool, str | None]:
        """(right, the PIN re-hashed when its hash has old parameters)."""
        async with self._hash_slots:
            started = time.monotonic()
            try:
                return await asyncio.to_thread(self.hasher.verify_and_rehash, pin_hash, pin)
            finally:
                note_deliberate(time.monotonic() - started)

    async def caller_id(self, uniqueid: str, ani: str, check: CallerIdCheck) -> None:
        """Record the call's caller-ID check (once per call, with its audit row)."""
        try:
            async with self.db.connection() as conn:
                await conn.fetchval(Q["caller_id"], uniqueid, ani, check.source, check.attest,
                                    check.result, check.reason)
        except TimeoutError:
            if self.shed is not None:  # overloaded: this call's verification is shed
                self.shed.add(uniqueid, ani)
            raise

    async def verify(self, uniqueid: str, *, channel: str, ani: str, agency: str,
                     officer: str, pin: str) -> str:
        """One attempt -> full | line-only | failed | locked."""
        try:
            async with self.db.connection() as conn:
                attempt = await conn.fetchval(Q["attempt_begin"], uniqueid, channel, ani,
                                              agency, officer)
                pin_hash = await conn.fetchval(Q["attempt_hash"], attempt, uniqueid)
        except TimeoutError:
            if self.shed is not None:  # overloaded: no connection came free in time
                self.shed.add(uniqueid, ani)
            raise
        # Always the same argon2 work, whether or not there is a hash to check.
        pin_ok, new_hash = await self._check_pin(pin_hash, pin)
        async with self.db.connection() as conn:
            outcome: str = await conn.fetchval(Q["attempt_finish"], attempt, uniqueid,
                                               pin_ok and pin_hash is not None, new_hash)
        return outcome

    async def lookup(self, uniqueid: str, channel: str, ani: str,
                     case_number: str) -> LookupResult:
        # one statement (one function call): atomic without BEGIN/COMMIT round trips
        async with self.db.connection() as conn:
            row = await conn.fetchrow(Q["lookup"], uniqueid, channel, ani, case_number)
        return LookupResult(row["outcome"], row["case_ref"], row["priority"])

    async def callback(self, uniqueid: str, ani: str, case_ref: str | None) -> str:
        async with self.db.connection() as conn:
            outcome: str = await conn.fetchval(Q["callback"], uniqueid, ani, case_ref)
        return outcome

    async def oob_begin(self, interface: str) -> tuple[str, str | None, int | None,
                                                        str | None]:
        """The desk phone's call back: (outcome, why, oob id, registered number)."""
        async with self.db.connection() as conn:
            row = await conn.fetchrow(Q["oob_begin"], interface)
        return row["outcome"], row["why"], row["oob_id"], row["e164"]

    async def oob_confirm(self, interface: str, oob_id: int, answered: bool,
                          confirmed: bool | None) -> str:
        async with self.db.connection() as conn:
            outcome: str = await conn.fetchval(Q["oob_confirm"], interface, oob_id, answered,
                                               confirmed)
        return outcome

    async def outbound_begin(self, uniqueid: str, *, node: str, purpose: str, number: str,
                             legs: int | None, max_legs: int | None
                             ) -> tuple[str, str | None, int | None, int]:
        """An outbound call: (granted | refused, why, leg id, seconds granted)."""
        async with self.db.connection() as conn:
            row = await conn.fetchrow(Q["outbound_begin"], node, uniqueid, purpose, number,
                                      legs, max_legs)
        return row["outcome"], row["reason"], row["leg_id"], row["grant_s"]

    async def outbound_end(self, leg_id: int, uniqueid: str, answered_s: int | None) -> str:
        async with self.db.connection() as conn:
            outcome: str = await conn.fetchval(Q["outbound_end"], leg_id, uniqueid, answered_s)
        return outcome

    async def emergency(self, uniqueid: str, *, node: str, phone: str, elin: str,
                        place: str, status: str, answered_s: int | None) -> str:
        async with self.db.connection() as conn:
            outcome: str = await conn.fetchval(Q["emergency"], node, uniqueid, phone, elin,
                                               place, status, answered_s)
        return outcome

    async def audit(self, uniqueid: str, ani: str, action: str, result: str) -> None:
        async with self.db.connection() as conn:
            await conn.fetchval(Q["audit"], uniqueid, ani, action, result)
