"""The reports' mix kept in bins (migration 0028, sql/kpi.md "The mix"): rows
written and changed as the AGI, the panel and the listener write them, with
the triggers on, in a real PostgreSQL; after each step the mix of a day from
the bins equals the mix counted from the rows by the same definitions, and
what the definitions say (a call's verification counted once, by its last
finished attempt, on the day that attempt finished).  The AGI's 30-day
housekeeping deletes the rows; the bins keep the days."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

D1 = datetime(2026, 11, 2, tzinfo=UTC)
D2 = D1 + timedelta(days=1)
D3 = D2 + timedelta(days=1)
PARTS = ["verification", "caller_id", "callbacks", "dispositions", "transfers"]


def at(day: datetime, hh: int, mm: int) -> datetime:
    return day + timedelta(hours=hh, minutes=mm)


async def mix(conn: asyncpg.Connection, a: datetime, b: datetime) -> dict[str, dict[str, int]]:
    """The page's answer (the bins, refreshed first) and the rows' answer for
    the same range; the two must agree, and the bins' is returned."""
    binned: dict[str, dict[str, int]] = {}
    for r in await conn.fetch("SELECT * FROM sb_report_mix($1, $2)", a, b):
        binned.setdefault(r["part"], {})[r["kind"]] = r["n"]
    rows: dict[str, dict[str, int]] = {}
    for r in await conn.fetch("SELECT part, kind, sum(n)::bigint AS n FROM sb_mix_rows($1, $2, $3)"
                              " GROUP BY 1, 2", a, b, PARTS):
        rows.setdefault(r["part"], {})[r["kind"]] = r["n"]
    assert binned == rows
    return binned


ATTEMPT = ("INSERT INTO verify_attempt (uniqueid, channel, ani, agency, officer, status, "
           "line_ok, begun_xid, started_at, finished_at, outcome) VALUES "
           "($1, 'PJSIP/carrier-1', '+16155550123', '42', '1001', 'ok', true, 0, $2, $3, $4) "
           "RETURNING attempt_id")


async def scenario(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    out: dict[str, Any] = {}
    try:
        await conn.execute("INSERT INTO agent (login, name, interface) VALUES "
                           "('ann', 'Ann', 'PJSIP/2001')")
        # call A: a wrong PIN just before midnight, then the right one after it,
        # finished by an update (as the AGI finishes an attempt)
        await conn.fetchval(ATTEMPT, "A", at(D1, 23, 49), at(D1, 23, 50), "wrong-pin")
        second = await conn.fetchval(ATTEMPT, "A", at(D1, 23, 58), None, None)
        await conn.execute("UPDATE verify_attempt SET lookups = 1 WHERE attempt_id = $1", second)
        await conn.execute("UPDATE verify_attempt SET finished_at = $2, outcome = 'full' "
                           "WHERE attempt_id = $1", second, at(D2, 0, 5))
        # call B: one attempt, line only
        await conn.fetchval(ATTEMPT, "B", at(D1, 9, 59), at(D1, 10, 0), "line-only")
        await conn.execute(
            "INSERT INTO caller_id_check (uniqueid, checked_at, ani, source, attest, result) "
            "VALUES ('A', $1, '+16155550123', 'verstat', 'A', 'passed'), "
            "('B', $2, '+16155550124', 'none', NULL, 'not-validated')",
            at(D1, 23, 48), at(D1, 9, 58))
        await conn.execute("INSERT INTO callback_request (requested_at, uniqueid, ani) "
                           "VALUES ($1, 'B', '+16155550124')", at(D1, 10, 30))
        await conn.execute("INSERT INTO call_disposition (uniqueid, agent_id, code, saved_at) "
                           "VALUES ('A', (SELECT agent_id FROM agent), 'info-given', $1)",
                           at(D2, 0, 20))
        await conn.execute("INSERT INTO queue_call (call_id, node, uniqueid, queue, entered_at, "
                           "outcome, transfer_target) VALUES ('\\x01', 'pbx-a', 'C', "
                           "'intake', $1, 'transferred', '701@sb-transfer'), ('\\x02', "
                           "'pbx-a', 'D', 'intake', $1, 'answered', NULL)", at(D1, 12, 0))
        out["d1"] = await mix(conn, D1, D2)
        out["d2"] = await mix(conn, D2, D3)
        out["both"] = await mix(conn, D1, D3)

        # later changes: the callback worked, the disposition corrected, the
        # transfer found to be a plain answer by the reconciler
        await conn.execute("UPDATE callback_request SET status = 'done', done_at = $1",
                           at(D2, 8, 0))
        await conn.execute("UPDATE call_disposition SET code = 'referred'")
        await conn.execute("UPDATE queue_call SET outcome = 'answered', transfer_target = NULL "
                           "WHERE uniqueid = 'C'")
        await conn.execute("UPDATE queue_call SET outcome = 'transferred', "
                           "transfer_target = '709@sb-transfer' WHERE uniqueid = 'D'")
        out["d1_after"] = await mix(conn, D1, D2)
        out["d2_after"] = await mix(conn, D2, D3)
        # a range off the 15-minute grid is counted from the rows
        out["unaligned"] = await mix(conn, at(D1, 10, 1), at(D2, 0, 6))

        # the AGI's 30-day housekeeping: the rows go, the days keep their counts
        await conn.execute("DELETE FROM verify_attempt; DELETE FROM caller_id_check")
        out["d1_kept"] = {k: v for k, v in (await conn.fetch(
            "SELECT part, jsonb_object_agg(kind, n) AS kinds FROM sb_report_mix($1, $2) "
            "GROUP BY part", D1, D2))}
        out["dirty_left"] = await conn.fetchval("SELECT count(*) FROM report_mix_dirty")
    finally:
        await conn.close()
    return out


def test_the_mix_from_its_bins_equals_the_rows_and_outlives_them(db_url: str) -> None:
    out = asyncio.run(scenario(db_url))
    assert out["d1"] == {"verification": {"line-only": 1},
                         "caller_id": {"attested-a": 1, "not-attested": 1},
                         "callbacks": {"open": 1}, "transfers": {"701": 1}}
    # call A counts once, full, on the day its last attempt finished
    assert out["d2"] == {"verification": {"full": 1}, "dispositions": {"info-given": 1}}
    assert out["both"]["verification"] == {"full": 1, "line-only": 1}
    assert out["d1_after"] == {"verification": {"line-only": 1},
                               "caller_id": {"attested-a": 1, "not-attested": 1},
                               "callbacks": {"done": 1}, "transfers": {"709": 1}}
    assert out["d2_after"] == {"verification": {"full": 1}, "dispositions": {"referred": 1}}
    assert out["unaligned"] == {"verification": {"full": 1}, "caller_id": {"attested-a": 1},
                                "callbacks": {"done": 1}, "transfers": {"709": 1}}
    kept = {part: json.loads(kinds) for part, kinds in out["d1_kept"].items()}
    assert kept["verification"] == {"line-only": 1}
    assert kept["caller_id"] == {"attested-a": 1, "not-attested": 1}
    assert out["dirty_left"] == 0
