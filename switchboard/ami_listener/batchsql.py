"""The SQL side of the listener's commit (switchboard/ami_listener/writer.py):
COPY of the raw events (through a staging table with ON CONFLICT when some
are already there), the derived calls, agent states and gaps, the spool
checkpoint, the one-by-one fallback that skips a poison event, and the day
partitions the events go into.  A base class of ``Writer``, which owns the
state these methods use."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import asyncpg

from switchboard.ami_listener import events as ev
from switchboard.ami_listener.derive import Deriver
from switchboard.ami_listener.derived import Changes
from switchboard.ami_listener.metrics import Metrics
from switchboard.ami_listener.normalise import FrameNormaliser
from switchboard.ami_listener.rows import EPOCH, Conn, ts, write_calls
from switchboard.ami_listener.spool import Spool
from switchboard.sqlfile import queries

Q = queries("ami_listener.sql")
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError, asyncio.TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError, asyncpg.CrashShutdownError,
)

RAW_COLUMNS = ("event_time", "dedupe_key", "node", "received_at", "event", "uniqueid",
               "linkedid", "queue", "interface", "spool_seq", "fields")

def plain(value: Any) -> Any:
    return value if value is None or isinstance(value, (int, str)) else str(value)


def raw_tuple(r: ev.RawRow) -> tuple[Any, ...]:
    return (ts(r.event_time_us), r.dedupe_key, r.node, ts(r.received_at_us), r.event,
            r.uniqueid, r.linkedid, r.queue, r.interface, r.spool_seq, r.fields_json)



class BatchSql:
    # the Writer's state these methods use
    node: str
    pool: asyncpg.Pool
    spool: Spool
    normaliser: FrameNormaliser
    metrics: Metrics
    deriver: Deriver
    seq: int
    log: Any
    _days: set[int]

    async def load_state(self) -> None:
        raise NotImplementedError  # the Writer's

    def _apply(self, items: Iterable[ev.Item], new_keys: set[bytes] | None) -> int:
        written = 0
        for item in items:
            if item.raw is not None:
                if new_keys is not None and item.key not in new_keys:
                    continue  # already in the database: already applied
                written += 1
            self.deriver.apply(item)
        return written

    async def _insert_raw(self, conn: Conn, tuples: list[tuple[Any, ...]]
                          ) -> set[bytes] | None:
        """Insert rows; return None when all were new, else the set of new keys."""
        if not tuples:
            return None
        try:
            async with conn.transaction():  # savepoint: a duplicate aborts only this
                await conn.copy_records_to_table("ami_event", records=tuples,
                                                 columns=RAW_COLUMNS)
            return None
        except asyncpg.UniqueViolationError:
            pass
        await conn.execute(Q["stage_table"])
        await conn.copy_records_to_table("ami_event_stage", records=tuples,
                                         columns=RAW_COLUMNS)
        rows = await conn.fetch(Q["insert_staged"])
        await conn.execute("TRUNCATE ami_event_stage")
        return {r["dedupe_key"] for r in rows}

    async def _write_changes(self, conn: Conn, changes: Changes) -> None:
        if changes.gaps:
            gaps = list(changes.gaps.values())
            await conn.execute(Q["upsert_gaps"], [g.gap_key for g in gaps],
                               [g.node for g in gaps], [ts(g.started_at_us) for g in gaps],
                               [ts(g.ended_at_us) for g in gaps], [g.reason for g in gaps],
                               [g.calls_closed for g in gaps], [g.backfilled for g in gaps])
            for g in gaps:
                self.log.warning("listener_gap", gap_start_us=g.started_at_us,
                                 gap_end_us=g.ended_at_us, reason=g.reason,
                                 gap_s=round((g.ended_at_us - g.started_at_us) / 1e6, 3),
                                 calls_closed_unknown=g.calls_closed)
        if changes.calls:
            await write_calls(conn, list(changes.calls.values()))
        if changes.intervals:
            iv = list(changes.intervals.values())
            await conn.execute(
                Q["upsert_intervals"], [x.node for x in iv], [x.queue for x in iv],
                [x.interface for x in iv], [x.member_name for x in iv],
                [x.state for x in iv], [x.reason for x in iv],
                [ts(x.started_at_us) for x in iv], [ts(x.ended_at_us) for x in iv],
                [x.start_key for x in iv], [x.start_seq for x in iv])
        if changes.presence:
            pr = changes.presence
            await conn.execute(Q["presence"], self.node, [p.queue for p in pr],
                               [p.interface for p in pr], [p.member_name for p in pr],
                               [p.logged_in for p in pr], [p.paused for p in pr],
                               [p.reason for p in pr], [ts(p.at_us) for p in pr])
        if changes.node_state is not None:
            state, since_us, reason = changes.node_state
            # a node lost: the wall board says so, and the callers it verified in
            # full get a callback request (sb_listener_node_state, migration 0025)
            await conn.execute(Q["node_state"], self.node, state, ts(since_us), reason)
            if state == "lost":
                self.log.error("node_lost", node=self.node, since_us=since_us, reason=reason)

    async def _checkpoint(self, conn: Conn, last_seq: int) -> None:
        await conn.execute(Q["save_checkpoint"], self.node, self.spool.spool_id, last_seq,
                           ts(self.deriver.last_seen_us))

    async def _commit_one_by_one(self, conn: Conn, items: list[ev.Item],
                                 last_seq: int) -> int:
        written = 0
        async with conn.transaction():
            for item in items:
                new: set[bytes] | None = None
                try:
                    async with conn.transaction():
                        new = await self._insert_raw(
                            conn, [raw_tuple(item.raw)] if item.raw else [])
                except Exception as exc:
                    if isinstance(exc, CONNECTION_ERRORS):
                        raise
                    self._poison(item, "poison", exc)
                    continue
                written += 1 if item.raw is not None and (new is None or item.key in new) else 0
                try:
                    async with conn.transaction():
                        self._apply([item], new)
                        await self._write_changes(conn, self.deriver.take_changes())
                except Exception as exc:
                    if isinstance(exc, CONNECTION_ERRORS):
                        raise
                    # the raw row is kept; only its effect on the derived tables is lost
                    self.deriver.take_changes()
                    self._poison(item, "derive_error", exc)
            await self._checkpoint(conn, last_seq)
        # the deriver may hold changes of skipped items: rebuild it from what committed
        await self.load_state()
        return written

    def _poison(self, item: ev.Item, reason: str, exc: BaseException) -> None:
        self.metrics.drop(self.node, reason)
        self.log.error("poison_event_skipped", reason=reason, seq=item.seq,
                       ami_event=item.raw.event if item.raw else type(item.domain).__name__,
                       uniqueid=item.raw.uniqueid if item.raw else None,
                       error=type(exc).__name__, detail=str(exc)[:300],
                       excerpt=(item.raw.fields_json[:500] if item.raw else None))

    async def _ensure_partitions(self, raws: list[ev.RawRow]) -> None:
        # day numbers by integer division: no datetime per row on the hot path
        for day in {r.event_time_us // 86_400_000_000 for r in raws}:
            if day not in self._days:
                await self.ensure_partition(day)

    async def ensure_partition(self, day_number: int) -> None:
        day = (EPOCH + timedelta(days=day_number)).date()
        async with self.pool.acquire() as conn:
            try:
                await conn.execute(Q["ensure_partition"], day)
            except asyncpg.DuplicateTableError:
                pass  # another writer created it at the same moment
            except asyncpg.CheckViolationError as exc:
                # rows for that day already sit in the default partition: leave them there
                self.log.warning("partition_not_created", day=day.isoformat(),
                                 detail=str(exc)[:200])
        self._days.add(day_number)

    def _report(self, records: list[Any], written: int, duplicates: int) -> None:
        m, node = self.metrics, self.node
        m.written.labels(node).inc(written)
        if duplicates:
            m.duplicates.labels(node).inc(duplicates)
        now = time.time()
        m.lag.labels(node).observe(max(0.0, now - records[-1].received_at_us / 1e6))
        m.spool_lag.labels(node).set(self.spool.next_seq - 1 - self.seq)
        m.spool_bytes.labels(node).set(self.spool.size_bytes)
        stats = self.normaliser.stats
        for reason, n in stats.dropped.items():
            m.drop(node, reason, n)
        for kind, n in stats.invalid.items():
            m.invalid_fields(node, kind, n)
        for name, n in stats.security.items():
            m.security.labels(node, name).inc(n)
        stats.dropped.clear()
        stats.invalid.clear()
        stats.security.clear()
