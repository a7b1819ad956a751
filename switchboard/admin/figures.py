"""``switchboard db rebuild-figures``: the figures' bins (migration 0020) from
the call rows, a UTC day per transaction, after a restore of ``queue_call``
with triggers off or a change of the site's thresholds (``kpi_agg_config``).

One call over a long history would hold every bin and its window sweep in one
statement (bench/kpi_scale.py: more than ten minutes for 31 days at 100x the
reference volume, with nothing to show until the end); a day at a time shows
its progress, commits as it goes, and can be stopped and run again from any day.
Readers are never blocked: a bin being rebuilt keeps its old row until commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import asyncpg

from switchboard.sqlfile import queries

Q = queries("ops.sql")


def utc_day(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


async def span(url: str) -> tuple[date, date] | None:
    """The UTC days the call rows cover, or None when there are none."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(Q["kpi_calls_span"])
    finally:
        await conn.close()
    if row is None or row["first"] is None:
        return None
    return row["first"].astimezone(UTC).date(), row["last"].astimezone(UTC).date()


async def rebuild(url: str, first: date, last: date,
                  progress: Callable[[date, int, float], None]) -> int:
    """Every bin of the UTC days first..last (none when last < first); returns
    how many bins."""
    conn = await asyncpg.connect(url)
    total = 0
    try:
        day = first
        while day <= last:
            t0 = time.monotonic()
            async with conn.transaction():
                n = await conn.fetchval(Q["kpi_rebuild"], utc_day(day),
                                        utc_day(day + timedelta(days=1)))
            total += n
            progress(day, n, time.monotonic() - t0)
            day += timedelta(days=1)
    finally:
        await conn.close()
    return total
