"""The per-interval aggregates (sql/migrations/0020) always give what the
definitions of sql/kpi.md give from the call rows: random calls on random days
(the two daylight saving days among them), written as the listener writes them
(a row when the caller joins, updated as the call goes on, in batches), then
corrected as the reconciler corrects them, with dispositions, callbacks and
overflows; after each step every figure of sb_kpi_figures (from the bins) equals
sb_kpi_queue (from the rows) for days, hours and quarter hours, in UTC and in
America/Chicago, for every service-level variant; and once more after the bins
are thrown away and rebuilt from scratch."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from tests.helpers import CLI, db_env

QUEUES = ("intake", "priority", "overflow")
VARIANTS = ("offered_excl_short", "offered", "answered", "offered_excl_abandoned_within_t")
CENTRAL = ZoneInfo("America/Chicago")


def local_day(d: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    a = datetime(d.year, d.month, d.day, tzinfo=tz)
    n = d + timedelta(days=1)
    return a.astimezone(UTC), datetime(n.year, n.month, n.day, tzinfo=tz).astimezone(UTC)


def make_calls(rng: random.Random, days: list[date], per_day: int) -> list[dict[str, Any]]:
    """Calls as queue_call rows in their final state (some still waiting)."""
    rows: list[dict[str, Any]] = []
    n = 0
    for d in days:
        start, end = local_day(d, CENTRAL)
        span = (end - start).total_seconds()
        for _ in range(per_day):
            n += 1
            uid = f"pbx-r-{n}"
            t = start + timedelta(seconds=rng.uniform(0, span))
            queue = rng.choice(QUEUES[:2])
            for hop in range(2):  # a timeout may overflow into the next queue
                kind = rng.choices(
                    ["answered", "abandoned", "timeout", "left-empty", "joined-empty",
                     "transferred", "cut", "cut-waiting", "unknown", "waiting"],
                    [40, 20, 10, 3, 3, 4, 3, 2, 3, 2])[0]
                wait = rng.choice([0, 1, 3, 4.999, 5, 6, 19, 20, 21, 45, 130, 700]) \
                    if rng.random() < 0.3 else round(rng.expovariate(1 / 25), 3)
                talk = rng.randint(5, 900)
                row: dict[str, Any] = {
                    "call_id": f"{uid}/{hop}".encode(), "node": "pbx-r", "uniqueid": uid,
                    "queue": queue, "entered_at": t, "outcome": None, "hold_s": None,
                    "talk_s": None, "answered_at": None, "left_at": None,
                    "ended_at": None, "member_interface": None}
                if kind in ("answered", "transferred", "cut"):
                    row.update(outcome=kind, answered_at=t + timedelta(seconds=wait),
                               member_interface=f"PJSIP/20{rng.randint(1, 30):02d}",
                               hold_s=round(wait) if rng.random() < 0.8 else None,
                               talk_s=talk if rng.random() < 0.95 else None,
                               ended_at=t + timedelta(seconds=wait + talk))
                elif kind in ("abandoned", "timeout", "left-empty", "unknown"):
                    row.update(outcome=kind, left_at=t + timedelta(seconds=wait),
                               ended_at=t + timedelta(seconds=wait),
                               hold_s=round(wait) if rng.random() < 0.5 else None)
                elif kind == "joined-empty":
                    row.update(outcome=kind, left_at=t, ended_at=t)
                elif kind == "cut-waiting":
                    row.update(outcome="cut", ended_at=t + timedelta(seconds=wait))
                rows.append(row)
                if kind != "timeout" or rng.random() < 0.4 or queue == "overflow":
                    break
                t = t + timedelta(seconds=wait + 1)
                queue = "overflow"
    return rows


COLS = ("call_id", "node", "uniqueid", "queue", "entered_at", "outcome", "hold_s", "talk_s",
        "answered_at", "left_at", "ended_at", "member_interface")


async def write_like_the_listener(conn: asyncpg.Connection, rows: list[dict[str, Any]],
                                  rng: random.Random) -> None:
    """A row when the caller joins (nothing known yet), then its final state, in
    batches of random size, each batch one statement (an upsert of many rows)."""
    sql = (f"INSERT INTO queue_call ({', '.join(COLS)}) SELECT * FROM unnest("
           "$1::bytea[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[], "
           "$7::int[], $8::int[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[], "
           "$12::text[]) ON CONFLICT (call_id) DO UPDATE SET outcome = EXCLUDED.outcome, "
           "hold_s = EXCLUDED.hold_s, talk_s = EXCLUDED.talk_s, "
           "answered_at = EXCLUDED.answered_at, left_at = EXCLUDED.left_at, "
           "ended_at = EXCLUDED.ended_at, member_interface = EXCLUDED.member_interface")
    joined = [{**r, "outcome": None, "hold_s": None, "talk_s": None, "answered_at": None,
               "left_at": None, "ended_at": None, "member_interface": None} for r in rows]
    steps = joined + rows
    i = 0
    while i < len(steps):
        batch = steps[i:i + rng.randint(1, 400)]
        i += len(batch)
        await conn.execute(sql, *[[r[c] for r in batch] for c in COLS])


async def compare(conn: asyncpg.Connection, days: list[date], wrapup_s: int) -> int:
    """Every figure, both ways; returns the number of rows compared."""
    compared = 0
    for d in days:
        for tz in ("UTC", "America/Chicago"):
            a, b = local_day(d, ZoneInfo(tz))
            for bucket in ("day", "hour", "15min"):
                for variant in VARIANTS if bucket == "hour" else VARIANTS[:1]:
                    args = (a, b, bucket, tz, 5, 20, variant, wrapup_s)
                    fast = [dict(r) for r in await conn.fetch(
                        "SELECT * FROM sb_kpi_figures($1, $2, $3, $4, $5, $6, $7, $8)", *args)]
                    rows = [dict(r) for r in await conn.fetch(
                        "SELECT * FROM sb_kpi_queue($1, $2, $3, $4, $5, $6, $7, $8)", *args)]
                    assert fast == rows, (d, tz, bucket, variant, [
                        (r.get("bucket"), r.get("queue"), k, r.get(k), f.get(k))
                        for f, r in zip(fast, rows, strict=False) for k in r
                        if f.get(k) != r.get(k)][:5], len(fast), len(rows))
                    compared += len(rows)
    return compared


@pytest.mark.parametrize("seed", [1, 2])
def test_the_bins_equal_the_definitions_on_random_days(db_url: str, seed: int) -> None:
    rng = random.Random(seed)
    days = sorted({date(2026, 3, 8), date(2026, 11, 1),
                   *(date(2026, 1, 1) + timedelta(days=rng.randrange(330)) for _ in range(2))})

    async def main() -> None:
        conn = await asyncpg.connect(db_url)
        try:
            rows = make_calls(rng, days, per_day=300)
            await write_like_the_listener(conn, rows, rng)
            assert await compare(conn, days, wrapup_s=15) > 1000

            # the panel's dispositions (wrap-up in AHT), callback requests (the last
            # queue of the call), the reconciler's corrections and a deleted row
            await conn.execute("INSERT INTO agent (login, name, interface, role) VALUES "
                               "('kpi', 'KPI test', 'PJSIP/2001', 'agent') "
                               "ON CONFLICT DO NOTHING")
            answered = [r for r in rows if r["outcome"] in ("answered", "transferred")]
            for r in rng.sample(answered, len(answered) // 3):
                await conn.execute(
                    "INSERT INTO call_disposition (uniqueid, agent_id, code, wrapup_s) "
                    "SELECT $1, agent_id, 'info-given', $2 FROM agent WHERE login = 'kpi' "
                    "ON CONFLICT DO NOTHING", r["uniqueid"], rng.randint(0, 300))
            for r in rng.sample(rows, 40):
                await conn.execute(
                    "INSERT INTO callback_request (uniqueid, ani, requested_at) VALUES "
                    "($1, '+16155550123', $2) ON CONFLICT DO NOTHING", r["uniqueid"],
                    r["entered_at"] + timedelta(seconds=rng.randint(1, 1200)))
            for r in rng.sample(rows, 60):
                await conn.execute(
                    "UPDATE queue_call SET outcome = 'abandoned', hold_s = $2::int, "
                    "left_at = entered_at + make_interval(secs => $2::int), "
                    "ended_at = entered_at + make_interval(secs => $2::int), "
                    "answered_at = NULL "
                    "WHERE call_id = $1", r["call_id"], rng.randint(0, 40))
            await conn.execute("DELETE FROM queue_call WHERE call_id = $1", rows[7]["call_id"])
            await conn.execute("DELETE FROM call_disposition WHERE uniqueid = $1",
                               answered[0]["uniqueid"])
            assert await compare(conn, days, wrapup_s=0) > 1000

            # from scratch: the same figures
            await conn.execute("TRUNCATE kpi_bin")
            a = min(local_day(d, ZoneInfo("UTC"))[0] for d in days) - timedelta(days=1)
            assert await conn.fetchval("SELECT sb_kpi_rebuild($1, $2)", a,
                                       a + timedelta(days=400)) > 0
            assert await compare(conn, days, wrapup_s=15) > 1000
        finally:
            await conn.close()
    asyncio.run(main())


def test_other_thresholds_and_unaligned_ranges_come_from_the_rows(db_url: str) -> None:
    """Thresholds other than the site's (kpi_agg_config), or a range that does
    not fall on quarter hours, are answered from the call rows, the same way."""
    async def main() -> None:
        conn = await asyncpg.connect(db_url)
        try:
            rng = random.Random(3)
            day = date(2026, 6, 1)
            await write_like_the_listener(conn, make_calls(rng, [day], 200), rng)
            a, b = local_day(day, ZoneInfo("UTC"))
            for args in ((a, b, "hour", "UTC", 10, 30, "offered", 0),
                         (a + timedelta(minutes=7), b, "hour", "UTC", 5, 20, "offered", 0)):
                fast = await conn.fetch("SELECT * FROM sb_kpi_figures($1, $2, $3, $4, $5, $6, "
                                        "$7, $8)", *args)
                rows = await conn.fetch("SELECT * FROM sb_kpi_queue($1, $2, $3, $4, $5, $6, "
                                        "$7, $8)", *args)
                assert [dict(r) for r in fast] == [dict(r) for r in rows] and rows
            # nothing was marked as computed for those: the bins are only the site's
            assert await conn.fetchval("SELECT count(*) FROM kpi_dirty") > 0
        finally:
            await conn.close()
    asyncio.run(main())


def test_recorded_traffic_written_by_the_real_listener(recorded: str) -> None:
    """The recorded runs (answered, abandoned, queue timeout, the 50-call burst)
    through the real listener: its batches marked the bins, and the figures
    from them are the figures from the rows."""
    async def main() -> int:
        conn = await asyncpg.connect(recorded)
        try:
            assert await conn.fetchval("SELECT count(*) FROM kpi_dirty") > 0
            return await compare(conn, [date(2026, 11, 28)], wrapup_s=15)
        finally:
            await conn.close()
    assert asyncio.run(main()) > 20  # rows compared, each equal


def test_rebuild_figures_after_a_restore_with_triggers_off(db_url: str) -> None:
    """Calls restored with the bins' triggers off (as pg_restore does) leave no
    bins: the figures are wrong until `switchboard db rebuild-figures`, which
    rebuilds a UTC day per transaction; afterwards they equal the definitions."""
    rng = random.Random(5)
    days = [date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9)]  # DST in the middle
    env = {**os.environ, **db_env(db_url)}

    async def restore() -> None:
        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute("ALTER TABLE queue_call DISABLE TRIGGER USER")
            await write_like_the_listener(conn, make_calls(rng, days, 300), rng)
            await conn.execute("ALTER TABLE queue_call ENABLE TRIGGER USER")
            assert await conn.fetchval("SELECT count(*) FROM kpi_bin") == 0
        finally:
            await conn.close()

    async def check() -> int:
        conn = await asyncpg.connect(db_url)
        try:
            return await compare(conn, days, wrapup_s=15)
        finally:
            await conn.close()

    asyncio.run(restore())
    with pytest.raises(AssertionError):  # before: the figures miss the restored calls
        asyncio.run(check())
    out = subprocess.run([str(CLI), "db", "rebuild-figures"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # the calls' UTC days (a Chicago day reaches into the next UTC day), one line each
    assert lines[0].startswith("2026-03-07: ") and lines[-2].startswith("2026-03-10: ")
    assert lines[-1].startswith("rebuilt ") and "2026-03-07 to 2026-03-10" in lines[-1]
    assert asyncio.run(check()) > 500
    again = subprocess.run([str(CLI), "db", "rebuild-figures", "--from", "2026-03-08", "--to",
                            "2026-03-08"], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.startswith("2026-03-08: 96 bins")
    assert asyncio.run(check()) > 500
    bad = subprocess.run([str(CLI), "db", "rebuild-figures", "--from", "2026-03-09", "--to",
                          "2026-03-08"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "before --from" in bad.stderr
