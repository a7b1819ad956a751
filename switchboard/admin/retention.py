"""Retention of the raw AMI events (issue 15): ``ami_event`` is partitioned by
UTC day (migration 0001); a day older than the configured age is archived (if
asked) and dropped, partition by partition.  The derived rows (queue_call,
agent_state, the figures' bins) and the audit log are other tables: untouched.

Dropping a partition needs a moment of exclusive lock on ``ami_event``, which
the listener writes all the time.  Each drop waits at most ``lock_timeout_ms``
for it, so the listener is held up that long at worst; when it does not get it
(the listener is in a long batch), it lets go and tries again a little later.
``DETACH ... CONCURRENTLY`` would need no such lock, but PostgreSQL refuses it
while the table has a default partition, which ours has so that no event is
ever refused.
"""

from __future__ import annotations

import asyncio
import gzip
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from switchboard import log
from switchboard.sqlfile import queries

Q = queries("ops.sql")
PART_RE = re.compile(r"^ami_event_(\d{8})$")


@dataclass
class Dropped:
    partition: str
    day: date
    rows: int
    archive: Path | None
    tries: int


async def old_partitions(conn: Any, keep_days: int, today: date | None = None
                         ) -> list[tuple[str, date]]:
    """The day partitions wholly older than ``keep_days`` full days (UTC)."""
    cutoff = (today or datetime.now(UTC).date()) - timedelta(days=keep_days)
    out = []
    for r in await conn.fetch(Q["event_partitions"]):
        m = PART_RE.match(r["name"])
        if m:
            day = datetime.strptime(m.group(1), "%Y%m%d").date()
            if day < cutoff:
                out.append((r["name"], day))
    return sorted(out, key=lambda x: x[1])


async def archive(conn: Any, partition: str, folder: Path) -> Path:
    """The partition's rows as CSV with a header (gzip), written before anything
    is dropped; the file is complete (renamed into place) or absent."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    final = folder / f"{partition}.csv.gz"
    part = folder / f".{partition}.csv.gz.part"
    with gzip.open(part, "wb") as out:
        async def sink(chunk: bytes) -> None:
            out.write(chunk)
        # asyncpg quotes the name; the database checked it is a day partition
        await conn.fetchval(Q["event_partition_rows"], partition)
        await conn.copy_from_table(partition, output=sink, format="csv", header=True)
    await asyncio.to_thread(part.rename, final)
    return final


async def drop(conn: Any, partition: str, *, lock_timeout_ms: int, tries: int) -> int:
    """Drop one partition, waiting at most lock_timeout_ms for its lock per try."""
    for attempt in range(1, tries + 1):
        try:
            async with conn.transaction():
                await conn.execute(Q["event_partition_drop"], partition,
                                   f"{int(lock_timeout_ms)}ms")
            return attempt
        except asyncpg.LockNotAvailableError:
            await asyncio.sleep(min(2.0, 0.05 * attempt))
    raise TimeoutError(f"{partition}: no lock in {tries} tries of {lock_timeout_ms} ms")


async def run(url: str, keep_days: int, *, archive_dir: Path | None = None,
              dry_run: bool = False, lock_timeout_ms: int = 200, tries: int = 50,
              today: date | None = None) -> list[Dropped]:
    logger = log.get("retention")
    conn = await asyncpg.connect(url, timeout=10)
    done: list[Dropped] = []
    try:
        for name, day in await old_partitions(conn, keep_days, today):
            rows = await conn.fetchval(Q["event_partition_rows"], name)
            if dry_run:
                done.append(Dropped(name, day, rows, None, 0))
                continue
            path = await archive(conn, name, archive_dir) if archive_dir is not None else None
            attempts = await drop(conn, name, lock_timeout_ms=lock_timeout_ms, tries=tries)
            logger.info("event_partition_dropped", partition=name, rows=rows,
                        archive=str(path) if path else None, tries=attempts)
            done.append(Dropped(name, day, rows, path, attempts))
    finally:
        await conn.close()
    return done
