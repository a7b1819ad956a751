"""AGI test set-up: reference data seeded through the ops functions, the real
FastAGI service (pool as role sb_agi) on a loopback port."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from switchboard.admin import ops
from switchboard.agi import fakecall
from switchboard.agi.app import AgiService, make_hasher
from switchboard.agi.validate import with_check_digit
from switchboard.settings import AgiSettings, parse_agi
from tests.helpers import as_service

PEPPER = "test-pepper-0123456789abcdefghijklmnopqrstuvwxyz"
PIN = "739184"
AGENCY = "42"
OFFICER = "1001"
LINE = "+16155550100"  # NANP 555-0100..0199: reserved for fiction, never a subscriber
OTHER_NUMBER = "+16155550199"
CASE_FOUND = with_check_digit("2026001")  # a case that exists (priority high)
CASE_MISSING = with_check_digit("2026999")  # valid check digit, no such case
_uid = itertools.count(1)


def agi_settings(**extra: str) -> AgiSettings:
    env = {"SB_PIN_PEPPER": PEPPER, "SB_AGI_LISTEN": "127.0.0.1:0",
           # cheap argon2 for the tests; bench/ measures the production parameters
           "SB_ARGON2_TIME_COST": "1", "SB_ARGON2_MEMORY_KIB": "8192",
           "SB_AGI_SHUTDOWN_GRACE_S": "5"}
    env.update(extra)
    return parse_agi(env)


def uniqueid() -> str:
    return f"pbx-t-1795860000.{next(_uid)}"


async def seed(db_url: str, settings: AgiSettings) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        hasher = make_hasher(settings)
        await ops.agency_add(conn, AGENCY, "Demo County Sheriff's Office (FAKE)")
        await ops.line_add(conn, AGENCY, LINE, "US", "switchboard room")
        for number in (OFFICER, "1002"):
            await ops.officer_add(conn, AGENCY, number, f"Officer {number} (FAKE)")
            await ops.officer_set_pin(conn, hasher, AGENCY, number, PIN)
        await ops.case_add(conn, CASE_FOUND, "high", "national desk")
    finally:
        await conn.close()


@dataclass
class Agi:
    service: AgiService
    port: int
    db_url: str

    async def call(self, script: str, keys: list[str], *, callerid: str = LINE,
                   uid: str | None = None, variables: dict[str, str] | None = None
                   ) -> fakecall.Outcome:
        """One call.  Unless the test says otherwise, the carrier validated the
        caller ID with attestation A (tests/agi/test_attestation.py covers the
        rest)."""
        return await fakecall.play(fakecall.Call(script, uid or uniqueid(), callerid, keys,
                                                 {**fakecall.attested(callerid),
                                                  **(variables or {})}), self.port)

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.db_url)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()


RunAgi = Callable[[Callable[[Agi], Awaitable[Any]]], Any]


@pytest.fixture
def run_agi(db_url: str) -> RunAgi:
    """``run_agi(scenario)``: seed, start the service, run ``scenario(agi)``, stop."""
    def run(scenario: Callable[[Agi], Awaitable[Any]], **extra: str) -> Any:
        async def main() -> Any:
            settings = agi_settings(**extra)
            await seed(db_url, settings)
            service = AgiService(settings, as_service(db_url, "agi"))
            port = await service.start()
            try:
                return await scenario(Agi(service, port, db_url))
            finally:
                await service.stop()
        return asyncio.run(main())
    return run

