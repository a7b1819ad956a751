"""Intervals on the two daylight saving days of America/Chicago (Nashville):
2026-03-08 has 23 hours (02:00 CST becomes 03:00 CDT), 2026-11-01 has 25
(02:00 CDT becomes 01:00 CST, so 01:00-02:00 happens twice).  The figures
functions and `switchboard report` / `staffing` on the real schema."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from datetime import UTC, datetime
from typing import Any

from tests.helpers import CLI, db_env, fetch

TZ = "America/Chicago"


def rows(url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in asyncio.run(fetch(url, sql, *args))]


def call(n: int, at: str, queue: str = "intake") -> str:
    """One answered call entering at ``at`` (UTC), waiting 10 s, talking 60 s."""
    return (f"('\\x{n:02x}', 'n', 'u{n}', '{queue}', '{at}+00', 'answered', 10, 60, "
            f"'PJSIP/2001', '{at}+00'::timestamptz + interval '10 s', "
            f"'{at}+00'::timestamptz + interval '70 s')")


def test_hourly_intervals_on_the_23_and_25_hour_days(db_url: str) -> None:
    starts = {day: [r["g"] for r in rows(
        db_url, "SELECT g FROM sb_bucket_starts($1, $2, 'hour', $3) g "
        "WHERE g < $2 ORDER BY g", a, b, TZ)]
        for day, (a, b) in {"spring": (datetime(2026, 3, 8, 6, tzinfo=UTC),
                                       datetime(2026, 3, 9, 5, tzinfo=UTC)),
                            "autumn": (datetime(2026, 11, 1, 5, tzinfo=UTC),
                                       datetime(2026, 11, 2, 6, tzinfo=UTC))}.items()}
    assert len(starts["spring"]) == 23 and len(starts["autumn"]) == 25
    # local midnight to local midnight, in days: 23 h, 25 h, 24 h
    days = [r["g"] for r in rows(db_url, "SELECT g FROM sb_bucket_starts($1, $2, 'day', $3) g",
                                 datetime(2026, 10, 31, 5, tzinfo=UTC),
                                 datetime(2026, 11, 3, 6, tzinfo=UTC), TZ)]
    assert [d.astimezone(UTC).hour for d in days] == [5, 5, 6, 6]


def test_the_repeated_hour_is_two_intervals_in_figures_and_reports(db_url: str) -> None:
    """A call at 01:30 CDT and one at 01:30 CST (an hour later) are in two
    intervals, not one; quarter hours likewise; the day holds both."""
    asyncio.run(fetch(db_url, f"""
        INSERT INTO queue_call (call_id, node, uniqueid, queue, entered_at, outcome, hold_s,
                                talk_s, member_interface, answered_at, ended_at)
        VALUES {call(1, '2026-11-01 06:30:00')}, {call(2, '2026-11-01 07:30:00')},
               {call(3, '2026-11-01 07:40:00')}, {call(4, '2026-03-08 08:30:00')}
        RETURNING 1"""))
    hourly = rows(db_url, "SELECT bucket, offered FROM sb_kpi_queue($1, $2, 'hour', $3) "
                  "WHERE queue = '(all)' ORDER BY bucket",
                  datetime(2026, 11, 1, 5, tzinfo=UTC), datetime(2026, 11, 2, 6, tzinfo=UTC), TZ)
    assert [(r["bucket"].astimezone(UTC).hour, r["offered"]) for r in hourly] == [(6, 1), (7, 2)]
    quarters = rows(db_url, "SELECT bucket, offered FROM sb_kpi_queue($1, $2, '15min', $3) "
                    "WHERE queue = '(all)' ORDER BY bucket",
                    datetime(2026, 11, 1, 5, tzinfo=UTC), datetime(2026, 11, 2, 6, tzinfo=UTC),
                    TZ)
    assert [(r["bucket"].astimezone(UTC).strftime("%H:%M"), r["offered"]) for r in quarters] \
        == [("06:30", 1), ("07:30", 2)]

    env = {**os.environ, **db_env(db_url), "SB_TZ": TZ}
    out = subprocess.run([str(CLI), "report", "--day", "2026-11-01", "--bucket", "hour",
                          "--json"], capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["tz"] == TZ
    assert (datetime.fromisoformat(got["to"]) - datetime.fromisoformat(got["from"])
            ).total_seconds() == 25 * 3600
    buckets = [q["bucket"] for q in got["queues"] if q["queue"] == "(all)"]
    assert [datetime.fromisoformat(b).astimezone(UTC).hour for b in buckets] == [6, 7]

    # staffing for the 23-hour day: one interval of 23 hours, and its Erlangs use
    # it (1,000 calls of 75 s in 23 h: 0.91; in 24 h it would be 0.87)
    asyncio.run(fetch(db_url, """
        INSERT INTO queue_call (call_id, node, uniqueid, queue, entered_at, outcome, hold_s,
                                talk_s, member_interface, answered_at, ended_at)
        SELECT int4send(1000 + n), 'n', 'd' || n, 'intake', t, 'answered', 10, 60,
               'PJSIP/2001', t + interval '10 s', t + interval '70 s'
          FROM generate_series(1, 999) n,
               LATERAL (SELECT timestamptz '2026-03-08 06:00+00' + n * interval '80 s') x (t)
        RETURNING 1"""))
    out = subprocess.run([str(CLI), "staffing", "--day", "2026-03-08", "--bucket", "day"],
                         capture_output=True, text=True, env=env, check=False)
    assert out.returncode in (0, 3), out.stderr
    line = next(x for x in out.stdout.splitlines() if x.strip().startswith("2026-03-08"))
    offered, aht, erlangs = line.split()[2:5]
    assert (offered, aht) == ("1000", "75")  # 60 s talk + the default 15 s wrap-up
    assert float(erlangs) == round(1000 * 75 / (23 * 3600), 2) == 0.91
