"""The listener writes as role sb_listener: events and derived rows, nothing
else (migration 0006)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from switchboard.ami_listener.captures import Capture, segment_from
from tests.helpers import as_service, ingest, refused


def test_the_listener_writes_as_sb_listener_and_can_do_nothing_else(
        db_url: str, tmp_path: Path) -> None:
    async def scenario() -> tuple[str, int, list[str]]:
        await ingest(db_url, tmp_path,
                     [segment_from(Capture.load("a_answered_ts"))], node="pbx-a")
        conn = await asyncpg.connect(as_service(db_url, "listener"))
        try:
            who = await conn.fetchval("SELECT current_user")
            rows = await conn.fetchval("SELECT count(*) FROM queue_call")
            not_allowed = await refused(conn, (
                "SELECT pin_hash FROM officer", "SELECT * FROM audit_log",
                "SELECT * FROM case_record", "DELETE FROM ami_event",
                "UPDATE ami_event SET event = 'x'", "DROP TABLE queue_call"))
        finally:
            await conn.close()
        return who, rows, not_allowed
    who, rows, not_allowed = asyncio.run(scenario())
    assert who == "sb_listener" and rows == 1 and len(not_allowed) == 6
