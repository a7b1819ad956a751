"""Retention of raw AMI events (switchboard/admin/retention.py): old day partitions are
archived and dropped while a writer keeps inserting today's events; the
derived rows and the audit log stay; a drop that cannot get its lock gives up
instead of holding the writer up."""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from switchboard.admin import retention
from tests.helpers import CLI, db_env

TODAY = date(2026, 11, 30)
OLD = [TODAY - timedelta(days=n) for n in (200, 120, 91)]
KEPT = [TODAY - timedelta(days=n) for n in (89, 1, 0)]


async def seed(conn: asyncpg.Connection) -> None:
    for d in OLD + KEPT:
        await conn.fetchval("SELECT sb_ensure_event_partition($1)", d)
        await conn.execute(
            "INSERT INTO ami_event (event_time, dedupe_key, node, received_at, event, "
            "spool_seq, fields) SELECT $1::timestamptz + n * interval '1 minute', "
            "int4send(n), 'pbx-a', now(), 'Newchannel', n, '{}' "
            "FROM generate_series(1, 50) n",
            datetime(d.year, d.month, d.day, 6, tzinfo=UTC))
    await conn.execute("INSERT INTO queue_call (call_id, node, uniqueid, queue, entered_at) "
                       "VALUES ('\\x01', 'pbx-a', 'u1', 'intake', $1)",
                       datetime(OLD[0].year, OLD[0].month, OLD[0].day, 6, tzinfo=UTC))
    await conn.execute("SELECT sb_audit_append('agi', 'u1', NULL, NULL, NULL, 'verify', 'x')")


async def partitions(conn: asyncpg.Connection) -> list[str]:
    return sorted(r["name"] for r in await conn.fetch(
        "SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'ami_event'::regclass"))


def test_old_days_are_archived_and_dropped_while_events_keep_coming(db_url: str,
                                                                      tmp_path: Path) -> None:
    async def main() -> tuple[list[retention.Dropped], list[str], int, int, int, int]:
        conn = await asyncpg.connect(db_url)
        await seed(conn)
        stop = asyncio.Event()
        written = 0

        async def writer() -> None:  # the listener's inserts, one transaction each
            nonlocal written
            w = await asyncpg.connect(db_url)
            try:
                while not stop.is_set():
                    async with w.transaction():
                        await w.execute(
                            "INSERT INTO ami_event (event_time, dedupe_key, node, received_at, "
                            "event, spool_seq, fields) VALUES ($1, $2, 'pbx-a', now(), "
                            "'QueueCallerJoin', $3, '{}')",
                            datetime(TODAY.year, TODAY.month, TODAY.day, 12, tzinfo=UTC)
                            + timedelta(microseconds=written), b"w%d" % written, written)
                    written += 1
            finally:
                await w.close()
        task = asyncio.ensure_future(writer())
        try:
            listed = await retention.run(db_url, 90, dry_run=True, today=TODAY)
            assert [d.partition for d in listed] == [f"ami_event_{d:%Y%m%d}" for d in OLD]
            done = await retention.run(db_url, 90, archive_dir=tmp_path, today=TODAY)
        finally:
            stop.set()
            await task
        left = await partitions(conn)
        today_rows = await conn.fetchval("SELECT count(*) FROM ami_event WHERE event = "
                                         "'QueueCallerJoin'")
        calls = await conn.fetchval("SELECT count(*) FROM queue_call")
        audit = await conn.fetchval("SELECT count(*) FROM audit_log WHERE uniqueid = 'u1'")
        await conn.close()
        return done, left, written, today_rows, calls, audit

    done, left, written, today_rows, calls, audit = asyncio.run(main())
    assert [(d.partition, d.rows) for d in done] == [(f"ami_event_{d:%Y%m%d}", 50) for d in OLD]
    for d in done:
        assert d.archive is not None
        with gzip.open(d.archive) as f:
            lines = f.read().decode().splitlines()
        assert lines[0].startswith("event_time,dedupe_key,node") and len(lines) == 51
    assert left == sorted(["ami_event_default", *(f"ami_event_{d:%Y%m%d}" for d in KEPT)])
    assert written > 0 and today_rows == written  # every insert went through
    assert (calls, audit) == (1, 1)  # derived rows and the audit log stay


def test_a_drop_that_cannot_get_its_lock_gives_up_and_blocks_nobody(db_url: str) -> None:
    async def main() -> tuple[str, list[str]]:
        conn = await asyncpg.connect(db_url)
        await seed(conn)
        holder = await asyncpg.connect(db_url)
        tx = holder.transaction()
        await tx.start()  # a long batch of the listener's, still open
        await holder.execute("INSERT INTO ami_event (event_time, dedupe_key, node, "
                             "received_at, event, spool_seq, fields) VALUES (now(), 'h', "
                             "'pbx-a', now(), 'Hangup', 1, '{}')")
        try:
            with pytest.raises(TimeoutError) as err:
                await retention.run(db_url, 90, lock_timeout_ms=50, tries=3, today=TODAY)
        finally:
            await tx.commit()  # the batch commits: it was never in the way
            await holder.close()
        left = await partitions(conn)
        await conn.close()
        return str(err.value), left
    message, left = asyncio.run(main())
    assert "no lock in 3 tries of 50 ms" in message
    assert f"ami_event_{OLD[0]:%Y%m%d}" in left


def test_the_command_refuses_too_short_a_retention(db_url: str) -> None:
    env = {**os.environ, **db_env(db_url)}
    out = subprocess.run([str(CLI), "db", "retention", "--keep-days", "1"], env=env,
                         capture_output=True, text=True, check=False)
    assert out.returncode == 2 and "--keep-days" in out.stderr
    out = subprocess.run([str(CLI), "db", "retention", "--keep-days", "90", "--dry-run"],
                         env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "nothing older than 90 days" in out.stdout
