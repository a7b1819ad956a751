"""What landed in the database: calls per queue, events, listener gaps."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg

from switchboard.sqlfile import queries


async def print_summary(url: str, since: datetime, *, written_since: bool = False,
                        tz: str = "UTC") -> int:
    """``since`` and the gaps' times are shown in ``tz`` (the site's zone)."""
    q = queries("summary.sql")
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(q["calls_by_queue"], since, written_since)
        events = await conn.fetchval(q["event_count"], since)
        gaps = await conn.fetch(q["gaps_since"], since)
    finally:
        await conn.close()
    shown = since.astimezone(ZoneInfo(tz))
    print(f"since {shown:%Y-%m-%d %H:%M:%S} {shown.tzname()} ({tz}): {events} events stored")
    header = ("queue", "offered", "answered", "abandoned", "timeout", "unknown", "open",
              "avg hold s")
    print("  ".join(f"{h:>10}" for h in header))
    for r in rows:
        cells = (r["queue"], r["offered"], r["answered"], r["abandoned"], r["timeout"],
                 r["unknown"], r["in_progress"],
                 "-" if r["avg_hold_s"] is None else r["avg_hold_s"])
        print("  ".join(f"{c!s:>10}" for c in cells))
    for g in gaps:
        a = g["started_at"].astimezone(ZoneInfo(tz))
        b = g["ended_at"].astimezone(ZoneInfo(tz)) if g["ended_at"] else "now"
        print(f"listener gap on {g['node']}: {a} .. {b} "
              f"({g['reason']}; {g['calls_closed']} calls closed as unknown)")
    if not rows:
        print("(no queued calls)")
    return 0
