"""The database side of verify and lookup, shared by both transports.

One verification attempt is one transaction: ``sb_agi_verify_begin`` locks the
officer's row and hands back the PIN hash (only when the officer may be tried
at all), the PIN is checked with argon2id in a worker thread, and
``sb_agi_verify_finish`` records the attempt, the counters and the audit rows.
Concurrent attempts on one officer therefore queue up on the row lock and the
failure counter cannot be raced.  A connection is held only while the database
is asked, never while the caller is keying digits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

from agi.pins import PinHasher
from switchboard.settings import AgiSettings
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


def connect_kwargs() -> dict[str, Any]:
    """The AGI service logs in as its own role (sb_agi), never as the owner."""
    return {"server_settings": {"application_name": "switchboard-agi"},
            "command_timeout": 10}


@dataclass(frozen=True)
class Policy:
    max_failures: int = 5
    lock_minutes: int = 30
    ani_max_failures: int = 10
    ani_block_minutes: int = 60

    @classmethod
    def from_settings(cls, s: AgiSettings) -> Policy:
        return cls(s.lockout_failures, s.lockout_minutes, s.ani_max_failures,
                   s.ani_block_minutes)


@dataclass(frozen=True)
class LookupResult:
    outcome: str  # found | not-found | refused
    case_ref: str | None
    priority: str | None


class Verifier:
    def __init__(self, db: Database, hasher: PinHasher, policy: Policy, *,
                 hash_workers: int = 2) -> None:
        self.db = db
        self.hasher = hasher
        self.policy = policy
        self._hash_slots = asyncio.Semaphore(hash_workers)

    async def _check_pin(self, pin_hash: str | None, pin: str) -> bool:
        async with self._hash_slots:
            return await asyncio.to_thread(self.hasher.verify, pin_hash, pin)

    async def verify(self, uniqueid: str, ani: str, agency: str, officer: str,
                     pin: str) -> str:
        """One attempt -> full | line-only | failed | locked."""
        p = self.policy
        async with self.db.transaction() as conn:
            start = await conn.fetchrow(Q["verify_begin"], ani, agency, officer)
            status = start["status"]
            # Always the same argon2 work, whether or not there is a hash to check.
            pin_ok = await self._check_pin(start["pin_hash"], pin)
            pin_ok = pin_ok and status == "ok"
            outcome: str = await conn.fetchval(
                Q["verify_finish"], uniqueid, ani, agency, officer, status,
                start["officer_id"], pin_ok, bool(start["line_ok"]), p.max_failures,
                p.lock_minutes, p.ani_max_failures, p.ani_block_minutes)
        return outcome

    async def lookup(self, uniqueid: str, ani: str, case_number: str) -> LookupResult:
        # one statement (one function call): atomic without BEGIN/COMMIT round trips
        async with self.db.connection() as conn:
            row = await conn.fetchrow(Q["lookup"], uniqueid, ani, case_number)
        return LookupResult(row["outcome"], row["case_ref"], row["priority"])

    async def callback(self, uniqueid: str, ani: str, case_ref: str | None) -> str:
        async with self.db.connection() as conn:
            outcome: str = await conn.fetchval(Q["callback"], uniqueid, ani, case_ref)
        return outcome

    async def audit(self, uniqueid: str, ani: str, action: str, result: str) -> None:
        async with self.db.connection() as conn:
            await conn.fetchval(Q["audit"], uniqueid, ani, action, result)
