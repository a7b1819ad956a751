"""Figures at scale: the real schema (all migrations) in a fresh local
PostgreSQL, filled with calls at 1x (6,500 a day), 10x and 100x (650,000 a day)
the reference volume, 31 days at 100x and 365 days at 10x; then the time of:

  today         sb_kpi_figures, one day, all queues ('day' and 'hour' buckets),
                with the bin the listener is writing dirty (as on a live node),
                against the baseline measured here too: sb_kpi_queue over the
                call rows (the definitions, as every figure was computed before)
  wall board    one full refresh of web/wallboard.Board.compute() (every query
                the wall board runs), the 100x day being its "today"
  31-day, 365-day report   sb_kpi_figures over the range, daily buckets
  31-day reports page      what the page's server does for a 31-day range:
                figures.report.gather (the report, agents, gaps and the mix of
                verification, caller-ID checks, callbacks, dispositions and
                transfers) and its JSON, with the mix's rows generated too

Calls are generated in SQL (fixed seed): queues, outcomes, waits, talk times
and dispositions in the proportions of the recorded traffic; loading them bulk
(triggers off), then the bins a UTC day at a time as `switchboard db
rebuild-figures` builds them after a restore (timed).
Each time is the median of --repeat runs.  Prints a table, then one JSON line
(the last line).  Figures, not assertions.

Usage: python bench/kpi_scale.py [--repeat N] [--quick] [--parts today,31d,365d]
  --quick: 31 days at 10x and 365 days at 1x (a smoke run; keys say so)
  --parts: which parts, each in a fresh database of its own
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import time
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from switchboard import db
from switchboard.admin import figures as figures_admin
from switchboard.figures.report import Range, gather
from switchboard.sqlfile import queries
from switchboard.web.wallboard import Board, BoardConfig
from tests.conftest import make_cluster

TZ = "America/Chicago"
REPORT = queries("report.sql")
REF = 6500  # calls a day at the reference deployment

# One day of calls, [$1, $2) local day in UTC, $3 calls, $4 seed, $5 call id prefix.
GENERATE = """
WITH s AS (SELECT setseed($4)),
c AS (
    SELECT n, $1::timestamptz + (random() * extract(epoch FROM $2::timestamptz - $1))
                                * interval '1 second' AS t,
           random() AS r, random() AS r2, random() AS r3
      FROM s, generate_series(1, $3) n
)
INSERT INTO queue_call (call_id, node, uniqueid, queue, entered_at, outcome, hold_s, talk_s,
                        member_interface, answered_at, left_at, ended_at)
SELECT convert_to($5 || n, 'UTF8'), 'pbx-b', $5 || n,
       CASE WHEN r3 < 0.7 THEN 'intake' WHEN r3 < 0.9 THEN 'priority' ELSE 'overflow' END, t,
       o, w::int, CASE WHEN o = 'answered' THEN talk END,
       CASE WHEN o = 'answered' THEN 'PJSIP/2' || lpad((n % 200)::text, 3, '0') END,
       CASE WHEN o = 'answered' THEN t + w * interval '1 second' END,
       CASE WHEN o <> 'answered' THEN t + w * interval '1 second' END,
       t + (w + coalesce(CASE WHEN o = 'answered' THEN talk END, 0)) * interval '1 second'
  FROM (SELECT *, CASE WHEN r < 0.72 THEN 'answered' WHEN r < 0.92 THEN 'abandoned'
                       WHEN r < 0.97 THEN 'timeout' ELSE 'transferred' END AS o,
               round((-ln(1 - r2) * 25)::numeric, 3) AS w, 60 + (r2 * 900)::int AS talk
          FROM c) x
 ORDER BY t  -- in the order the listener writes them
"""


# What the AGI service writes for each of a day's calls, as the wall board reads
# it: the caller-ID check and the verification's audit row (bulk, unsigned: the
# chain is not what is measured here).  $1 the call id prefix.
VERIFICATIONS = """
WITH c AS (SELECT uniqueid, entered_at, row_number() OVER () AS n FROM queue_call
            WHERE starts_with(uniqueid, $1)),
x AS (INSERT INTO caller_id_check (uniqueid, checked_at, ani, source, attest, result)
      SELECT uniqueid, entered_at, '+16155550123', 'verstat',
             CASE WHEN n % 10 < 8 THEN 'A' END,
             CASE WHEN n % 10 < 8 THEN 'passed' ELSE 'not-validated' END FROM c)
INSERT INTO audit_log (chain, seq, at, actor, uniqueid, action, result, prev_hash, hash)
SELECT n % 16, 1000000000 + n * 2 + k, entered_at, 'agi', uniqueid,
       CASE k WHEN 0 THEN 'caller-id' ELSE 'verify' END,
       CASE k WHEN 0 THEN 'passed' WHEN 1 THEN
            CASE WHEN n % 10 < 7 THEN 'full' WHEN n % 10 < 9 THEN 'line-only'
                 ELSE 'wrong-pin' END END, '\\x00', '\\x00'
  FROM c, (VALUES (0), (1)) AS v (k)
"""


# What the rest of the line writes for each of a day's calls, as the reports
# page's mix reads it (sb_report_mix): the caller's verification (one attempt
# each, outcomes in the wall board's proportions), the caller-ID check, a
# disposition for each answered call, a callback request for 3 %.  Bulk, with
# the tables' triggers off (a restore's way; the bins are rebuilt after).
# $1 the call id prefix.
MIX_SOURCES = (
    """INSERT INTO verify_attempt (uniqueid, channel, ani, agency, officer, status, line_ok,
                                   begun_xid, started_at, finished_at, outcome)
       SELECT uniqueid, 'PJSIP/carrier-1', '+16155550123', '42', '1001', 'ok', true, 0,
              entered_at - interval '40 seconds', entered_at - interval '5 seconds',
              CASE WHEN n % 10 < 7 THEN 'full' WHEN n % 10 < 9 THEN 'line-only'
                   ELSE 'wrong-pin' END
         FROM (SELECT uniqueid, entered_at, row_number() OVER () AS n FROM queue_call
                WHERE starts_with(uniqueid, $1)) c""",
    """INSERT INTO caller_id_check (uniqueid, checked_at, ani, source, attest, result)
       SELECT uniqueid, entered_at - interval '45 seconds', '+16155550123', 'verstat',
              CASE WHEN n % 10 < 8 THEN 'A' END,
              CASE WHEN n % 10 < 8 THEN 'passed' ELSE 'not-validated' END
         FROM (SELECT uniqueid, entered_at, row_number() OVER () AS n FROM queue_call
                WHERE starts_with(uniqueid, $1)) c""",
    """INSERT INTO call_disposition (uniqueid, agent_id, code, saved_at, call_ended_at, wrapup_s)
       SELECT uniqueid, (SELECT min(agent_id) FROM agent),
              (ARRAY['info-given', 'referred', 'callback-needed', 'not-verified'])[1 + n % 4],
              ended_at + interval '12 seconds', ended_at, 12
         FROM (SELECT uniqueid, ended_at, row_number() OVER () AS n FROM queue_call
                WHERE starts_with(uniqueid, $1) AND outcome = 'answered') c""",
    """INSERT INTO callback_request (requested_at, uniqueid, ani, status, done_at)
       SELECT ended_at, uniqueid, '+16155550123',
              CASE WHEN n % 3 = 0 THEN 'open' ELSE 'done' END,
              CASE WHEN n % 3 = 0 THEN NULL ELSE ended_at + interval '20 minutes' END
         FROM (SELECT uniqueid, ended_at, row_number() OVER () AS n FROM queue_call
                WHERE starts_with(uniqueid, $1) AND outcome <> 'answered') c
        WHERE n % 8 = 0""",
)
MIX_FROM_ROWS = ("SELECT part, kind, sum(n) FROM sb_mix_rows($1, $2, ARRAY['verification', "
                 "'caller_id', 'callbacks', 'dispositions', 'transfers']) GROUP BY 1, 2")
MIX_TABLES = ("verify_attempt", "caller_id_check", "call_disposition", "callback_request")
MIX_MARK_ALL = next(q for q in Path(db.MIGRATIONS_DIR, "0028_report_mix_bins.sql")
                    .read_text().split(";") if "INSERT INTO report_mix_dirty" in q)


async def fill_mix(conn: asyncpg.Connection, days: list[date], tag: str) -> float:
    """The mix's sources for the calls ``fill`` made; seconds."""
    t0 = time.perf_counter()
    await conn.execute("INSERT INTO agent (login, name, interface) VALUES "
                       "('bench', 'Bench Agent', 'PJSIP/bench') ON CONFLICT DO NOTHING")
    for t in MIX_TABLES:
        await conn.execute(f"ALTER TABLE {t} DISABLE TRIGGER USER")
    for d in days:
        for sql in MIX_SOURCES:
            await conn.execute(sql, f"{tag}-{d.isoformat()}-")
    for t in MIX_TABLES:
        await conn.execute(f"ALTER TABLE {t} ENABLE TRIGGER USER")
        await conn.execute(f"ANALYZE {t}")
    # the mix's bins, as migration 0028 builds them for what is there
    await conn.execute(MIX_MARK_ALL)
    await conn.fetchval("SELECT sb_mix_refresh()")
    return time.perf_counter() - t0


def local_day(d: date) -> tuple[datetime, datetime]:
    z = ZoneInfo(TZ)
    n = d + timedelta(days=1)
    return (datetime(d.year, d.month, d.day, tzinfo=z).astimezone(UTC),
            datetime(n.year, n.month, n.day, tzinfo=z).astimezone(UTC))


async def fill(conn: asyncpg.Connection, url: str, days: list[date], per_day: int,
               tag: str) -> float:
    """Bulk load (as a restore would: the bins' triggers off; for many days the
    indexes dropped first and built after), then the bins as `switchboard db
    rebuild-figures` builds them; seconds."""
    t0 = time.perf_counter()
    # a restore's way for many days: the indexes built once afterwards
    indexes = [] if len(days) < 10 else await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'queue_call' "
        "AND indexname <> 'queue_call_pkey'")
    for ix in indexes:
        await conn.execute(f'DROP INDEX "{ix["indexname"]}"')
    await conn.execute("ALTER TABLE queue_call DISABLE TRIGGER USER")
    for i, d in enumerate(days):
        a, b = local_day(d)
        seed = zlib.crc32(f"{tag}-{i}".encode()) % 1000 / 1000  # the same every run
        await conn.execute(GENERATE, a, b, per_day, seed, f"{tag}-{d.isoformat()}-")
    await conn.execute("ALTER TABLE queue_call ENABLE TRIGGER USER")
    await conn.execute("SET maintenance_work_mem = '1GB'")  # as a restore would
    for ix in indexes:
        # every index before the bins, the wait-span (GiST) one included: a
        # bin's recompute finds who was still waiting through it; without it,
        # each day's rebuild reads every earlier call (quadratic in the history)
        await conn.execute(ix["indexdef"])
    await conn.execute("RESET maintenance_work_mem")
    await conn.execute("ANALYZE queue_call")
    # the bins a UTC day at a time (a transaction each), as after a restore
    first, last = local_day(days[0])[0], local_day(days[-1])[1] - timedelta(microseconds=1)
    await figures_admin.rebuild(url, first.date(), last.date(), lambda *_: None)
    return time.perf_counter() - t0


class Table(list[tuple[str, Any]]):
    """The measures, each printed as it is taken."""

    def __init__(self) -> None:
        super().__init__()
        print(f"{'measure':<44}{'value':>14}", flush=True)

    def append(self, row: tuple[str, Any]) -> None:
        super().append(row)
        print(f"{row[0]:<44}{row[1]!s:>14}", flush=True)

    def __iadd__(self, more: Any) -> Table:
        for row in more:
            self.append(row)
        return self


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


FIGURES = "SELECT * FROM sb_kpi_figures($1, $2, $3, $4, 5, 20, 'offered_excl_short', 15)"
ROWS = "SELECT * FROM sb_kpi_queue($1, $2, $3, $4, 5, 20, 'offered_excl_short', 15)"
# as the listener does, all the time: a call in the current bin changes
TOUCH = ("UPDATE queue_call SET updated_at = now() WHERE call_id = "
         "(SELECT call_id FROM queue_call WHERE entered_at >= $1 ORDER BY entered_at LIMIT 1)")


async def day_figures(conn: asyncpg.Connection, d: date, repeat: int,
                      baseline: bool) -> dict[str, float]:
    a, b = local_day(d)
    mid = a + (b - a) / 2

    async def today() -> None:
        await conn.execute(TOUCH, mid)  # one bin dirty, as on a live node
        await conn.fetch(FIGURES, a, b, "day", TZ)
        await conn.fetch(FIGURES, a, b, "hour", TZ)

    out = {"figures_ms": await timed(today, repeat)}
    if baseline:
        async def rows() -> None:
            await conn.fetch(ROWS, a, b, "day", TZ)
            await conn.fetch(ROWS, a, b, "hour", TZ)
        out["rows_ms"] = await timed(rows, max(1, repeat // 2))
        fast = [dict(r) for r in await conn.fetch(FIGURES, a, b, "hour", TZ)]
        slow = [dict(r) for r in await conn.fetch(ROWS, a, b, "hour", TZ)]
        out["equal"] = float(fast == slow)
    return out


async def part_today(conn: asyncpg.Connection, url: str, today: date, repeat: int, *,
                     results: dict[str, Any], rows: Table) -> None:
    """1x and 10x on past days, 100x today (the wall board's day), each against
    the rows; then the wall board's refresh and each of its queries alone."""
    for mult, d in ((1, today - timedelta(days=400)), (10, today - timedelta(days=401)),
                    (100, today)):
        load_s = await fill(conn, url, [d], REF * mult, f"d{mult}")
        if mult == 100:  # the wall board's day: its verifications too
            await conn.execute(VERIFICATIONS, "d100-")
            await conn.execute("ANALYZE audit_log; ANALYZE caller_id_check")
        fig = await day_figures(conn, d, repeat, baseline=True)
        rows += [(f"{mult}x day: load + bins, s", round(load_s, 1)),
                 (f"{mult}x today, figures (bins) ms", round(fig["figures_ms"], 1)),
                 (f"{mult}x today, baseline (rows) ms", round(fig["rows_ms"], 1)),
                 (f"{mult}x today, same rows both ways", bool(fig["equal"]))]
        results[f"today_ms_{mult}x"] = round(fig["figures_ms"], 1)
        results[f"today_rows_ms_{mult}x"] = round(fig["rows_ms"], 1)
    results["today_speedup_100x"] = round(
        results["today_rows_ms_100x"] / results["today_ms_100x"], 1)

    board = Board(url, BoardConfig(port=0, token="x" * 32, tz=TZ, metrics_port=0))
    board.pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    a, b = local_day(today)
    try:
        async def refresh() -> None:
            await conn.execute(TOUCH, a + (b - a) / 2)
            await board.compute()
        results["wallboard_refresh_ms_100x"] = round(await timed(refresh, repeat), 1)
    finally:
        await board.pool.close()
    rows.append(("wall board refresh (100x today) ms", results["wallboard_refresh_ms_100x"]))
    # where a refresh goes: each of its queries alone
    for name, args_ in (("live_heard", (60,)), ("silent_nodes", (60,)),
                        ("verify_split", (a,)), ("caller_id_split", (a,)),
                        ("abandoned_today", (a, 5)), ("security_counts", (a,)),
                        ("callbacks_waiting", (15,))):
        ms = await timed(lambda n=name, x=args_: conn.fetch(REPORT[n], *x), repeat)
        rows.append((f"  wall board query {name} ms", round(ms, 1)))


async def part_history(conn: asyncpg.Connection, url: str, days: list[date], mult: int,
                       repeat: int, *,
                       results: dict[str, Any], rows: Table, page: bool = False) -> None:
    """A history of len(days) days at mult x, then the report over all of it
    (and with ``page``, the reports page: the report and the mix)."""
    load_s = await fill(conn, url, days, REF * mult, f"h{len(days)}")
    a, b = local_day(days[0])[0], local_day(days[-1])[1]
    ms = await timed(lambda: conn.fetch(FIGURES, a, b, "day", TZ), repeat)
    key = f"report_{len(days)}d_ms_{mult}x"
    results[key] = round(ms, 1)
    calls = await conn.fetchval("SELECT count(*) FROM queue_call")
    bins = await conn.fetchval("SELECT count(*) FROM kpi_bin")
    rows += [(f"{len(days)} days at {mult}x: load + indexes + bins, s", round(load_s, 1)),
             ("  call rows, bins", f"{calls}, {bins}"),
             (f"{len(days)}-day report ({mult}x) ms", results[key])]
    if not page:
        return
    # the reports page over the same range: every figure and the mix, as the
    # page's server computes them (figures.report.gather) and sends them (JSON)
    mix_s = await fill_mix(conn, days, f"h{len(days)}")
    rng = Range(a, b, TZ, "day")

    async def page_once() -> None:
        data = await gather(conn, rng, short_s=5, sl_s=20, variant="offered_excl_short",
                            wrapup_s=15)
        json.dumps(data)
    page_ms = await timed(page_once, repeat)
    mix_ms = await timed(lambda: conn.fetch(REPORT["mix"], a, b), repeat)
    # the baseline, in the same run: the same mix counted from the rows (the
    # definitions; how the page counted it before the bins), once
    rows_ms = await timed(lambda: conn.fetch(MIX_FROM_ROWS, a, b), 1)
    results[f"page_{len(days)}d_ms_{mult}x"] = round(page_ms, 1)
    results[f"page_mix_{len(days)}d_ms_{mult}x"] = round(mix_ms, 1)
    results[f"page_mix_rows_{len(days)}d_ms_{mult}x"] = round(rows_ms, 1)
    rows += [("  the mix's rows: load + bins s", round(mix_s, 1)),
             (f"{len(days)}-day reports page ({mult}x) ms", round(page_ms, 1)),
             ("  of which the mix (bins) ms", round(mix_ms, 1)),
             ("  the mix from the rows (baseline) ms", round(rows_ms, 1))]


async def in_fresh_database(fn: Callable[[asyncpg.Connection, str], Awaitable[None]]) -> None:
    """A local cluster of its own with every migration, for one part."""
    cluster = await asyncio.to_thread(make_cluster, "sb-bench-kpi-")
    try:
        url = cluster.app_url()
        await db.migrate(url)
        conn = await asyncpg.connect(url)
        try:
            await fn(conn, url)
        finally:
            await conn.close()
    finally:
        await asyncio.to_thread(cluster.destroy)
        shutil.rmtree(cluster.root.parent, ignore_errors=True)


PARTS = ("today", "31d", "365d")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--parts", default=",".join(PARTS),
                    help="which parts, each in a database of its own (default: all; the "
                    "365-day history alone takes about 40 minutes on 2 cores)")
    args = ap.parse_args()
    parts = args.parts.split(",")
    if not parts or set(parts) - set(PARTS):
        ap.error(f"--parts: a comma-separated list of {', '.join(PARTS)}")
    today = datetime.now(ZoneInfo(TZ)).date()
    m31, m365 = (10, 1) if args.quick else (100, 10)
    results: dict[str, Any] = {}
    rows = Table()
    if "today" in parts:
        await in_fresh_database(lambda conn, url: part_today(conn, url, today, args.repeat,
                                                             results=results, rows=rows))
    if "31d" in parts:
        d31 = [today - timedelta(days=40 + i) for i in range(31)][::-1]
        await in_fresh_database(lambda conn, url: part_history(conn, url, d31, m31, args.repeat,
                                                               results=results, rows=rows,
                                                               page=True))
    if "365d" in parts:
        d365 = [today - timedelta(days=800 + i) for i in range(365)][::-1]
        await in_fresh_database(lambda conn, url: part_history(conn, url, d365, m365, args.repeat,
                                                               results=results, rows=rows))
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
