"""Database stage: spool -> normalise -> derive -> one transaction per batch.

Fast path: COPY the batch straight into ``ami_event``.  If any row is already
there (a replay after a crash, or overlap with another listener), the batch is
retried through a staging table with ``ON CONFLICT DO NOTHING`` and only the new
events are applied to the derived tables.  The spool checkpoint is written in the
same transaction, so a restart resumes exactly after the last commit.

Database down: the batch is retried with backoff; the reader keeps spooling.
A batch that fails on its data is split into single events, each in its own
savepoint; the poison event is logged (name, sequence, a bounded excerpt) and
skipped, the rest is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from switchboard import log
from switchboard.ami_listener import events as ev
from switchboard.ami_listener.batchsql import CONNECTION_ERRORS, BatchSql, plain, raw_tuple
from switchboard.ami_listener.derive import Deriver
from switchboard.ami_listener.derived import Interval
from switchboard.ami_listener.metrics import Metrics
from switchboard.ami_listener.normalise import FrameNormaliser
from switchboard.ami_listener.reconcile import Scheduled
from switchboard.ami_listener.rows import (
    LATE_EVENTS_S,
    call_from_row,
    us,
)
from switchboard.ami_listener.spool import Record, Spool
from switchboard.sqlfile import queries

Q = queries("ami_listener.sql")


@dataclass(frozen=True)
class Prepared:
    """A batch read from the spool and normalised, ready for the database."""

    records: list[Record]
    items: list[ev.Item]
    raws: list[ev.RawRow]
    tuples: list[tuple[Any, ...]]

    @property
    def first_seq(self) -> int:
        return self.records[0].seq

    @property
    def last_seq(self) -> int:
        return self.records[-1].seq


class Backoff:
    """Exponential backoff with full jitter, reset after a success."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial, self.maximum, self.attempt = initial, maximum, 0

    def next_delay(self) -> float:
        ceiling = min(self.maximum, self.initial * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not crypto

    def reset(self) -> None:
        self.attempt = 0


class LeaseLost(Exception):
    """Another listener holds this node's lease now: this one must not write."""


class Writer(BatchSql):
    def __init__(self, *, node: str, pool: asyncpg.Pool, spool: Spool,
                 normaliser: FrameNormaliser, metrics: Metrics, batch_max: int = 5000,
                 batch_delay_s: float = 0.05, backoff: Backoff | None = None,
                 queue_log_path: Path | None = None,
                 reconcile_interval_s: float = 60.0,
                 lease_holder: str | None = None, lease_s: float = 3.0) -> None:
        self.node = node
        # set: every batch takes or renews the node's lease in its own transaction
        # and is refused when another listener holds it (fencing)
        self.lease_holder = lease_holder
        self.lease_s = lease_s
        self.pool = pool
        self.spool = spool
        self.normaliser = normaliser
        self.metrics = metrics
        self.batch_max = batch_max
        self.batch_delay_s = batch_delay_s
        self.backoff = backoff or Backoff(0.2, 5.0)
        self.deriver = Deriver(node)
        self.seq = -1  # last committed spool sequence
        self.log = log.get("ami_listener.writer").bind(node=node)
        self._days: set[int] = set()  # UTC day numbers with a partition
        self._state_loaded = False
        self.queue_log_path = queue_log_path
        self.reconcile_interval_s = reconcile_interval_s
        self._reconciler: Scheduled | None = None
        self._next_reconcile = 0.0

    # -- state ---------------------------------------------------------------
    async def load_state(self) -> None:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(Q["load_checkpoint"], self.node)
            last_seen = None
            if row is not None:
                last_seen = us(row["last_seen_at"])
                if row["spool_id"] == self.spool.spool_id:
                    self.seq = row["seq"]
                else:
                    self.log.warning("spool_replaced", old_spool=row["spool_id"],
                                     new_spool=self.spool.spool_id)
                    self.seq = -1
            deriver = Deriver(self.node, last_seen_us=last_seen)
            for r in await conn.fetch(Q["load_open_calls"], self.node,
                                      float(LATE_EVENTS_S)):
                deriver.load_call(call_from_row(r))
            for r in await conn.fetch(Q["load_open_intervals"], self.node):
                deriver.load_interval(Interval(
                    r["node"], r["queue"], r["interface"], r["member_name"], r["state"],
                    r["reason"], us(r["started_at"]) or 0, r["start_key"], r["start_seq"]))
        self.deriver = deriver
        self._state_loaded = True
        self.log.info("writer_state_loaded", checkpoint_seq=self.seq,
                      open_calls=len(deriver.calls), open_intervals=len(deriver.members))

    # -- main loop -------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Write until ``stop`` is set and the spool is drained (or the database
        is unreachable at shutdown: then the spool keeps the rest for next time).

        Two tasks: a preparer reads the spool and normalises the next batch (Python
        CPU) while this one waits for PostgreSQL to take the current one (server
        CPU), joined by a queue of two batches.
        """
        while not self._state_loaded:
            try:
                await self.load_state()
                self.backoff.reset()
            except Exception as exc:
                if stop.is_set():
                    return
                await self._sleep_after_error(exc, stop)
        queue: asyncio.Queue[Prepared | None] = asyncio.Queue(maxsize=2)
        preparer = asyncio.ensure_future(self._prepare_loop(stop, queue, self.seq))
        try:
            while True:
                try:
                    batch = await asyncio.wait_for(queue.get(), self._until_reconcile())
                except TimeoutError:
                    await self.reconcile_now()
                    continue
                if batch is None:
                    return
                outcome = await self._commit_with_retry(batch, stop)
                if outcome == "gave-up":
                    return
                if outcome == "resync":  # the database is not where the spool reader is
                    preparer.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await preparer
                    queue = asyncio.Queue(maxsize=2)
                    preparer = asyncio.ensure_future(
                        self._prepare_loop(stop, queue, self.seq))
        finally:
            preparer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await preparer

    async def _prepare_loop(self, stop: asyncio.Event, queue: asyncio.Queue[Prepared | None],
                            after: int) -> None:
        read_seq = after
        while True:
            self.spool.appended.clear()
            records = self.spool.read_after(read_seq, self.batch_max)
            if not records:
                if stop.is_set():
                    await queue.put(None)
                    return
                waiter = asyncio.ensure_future(self.spool.appended.wait())
                stopper = asyncio.ensure_future(stop.wait())
                try:
                    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                    stopper.cancel()
                continue
            if len(records) < self.batch_max and self.batch_delay_s > 0 and not stop.is_set():
                # let a small batch fill up for a moment, bounded by the first frame's age
                age = time.time() - records[0].received_at_us / 1e6
                if age < self.batch_delay_s:
                    await asyncio.sleep(self.batch_delay_s - age)
                    records = self.spool.read_after(read_seq, self.batch_max)
            items = self.normaliser.items(records)
            raws = [i.raw for i in items if i.raw is not None]
            batch = Prepared(records, items, raws, [raw_tuple(r) for r in raws])
            read_seq = batch.last_seq
            await queue.put(batch)
            await asyncio.sleep(0)  # let the committer start on it

    async def _commit_with_retry(self, batch: Prepared, stop: asyncio.Event) -> str:
        while True:
            if not self._state_loaded:
                try:
                    await self.load_state()
                except Exception as exc:
                    if stop.is_set() and self.backoff.attempt >= 3:
                        return "gave-up"
                    await self._sleep_after_error(exc, stop)
                    continue
            if batch.last_seq <= self.seq:
                return "done"  # committed before (the reply was lost): nothing to do
            if batch.first_seq != self.seq + 1:
                self.log.warning("spool_position_mismatch", checkpoint_seq=self.seq,
                                 batch_first_seq=batch.first_seq)
                return "resync"
            try:
                await self.commit(batch)
                self.backoff.reset()
                return "done"
            except LeaseLost:
                raise  # never retried: the process stops writing at once
            except Exception as exc:
                self.metrics.db_errors.labels(self.node).inc()
                self._state_loaded = False  # derived state may be ahead of the database
                if not isinstance(exc, CONNECTION_ERRORS):
                    self.log.exception("batch_error", error=repr(exc)[:300])
                if stop.is_set() and self.backoff.attempt >= 3:
                    self.log.warning("shutdown_with_unwritten_spool",
                                     pending=self.spool.next_seq - 1 - self.seq)
                    return "gave-up"
                await self._sleep_after_error(exc, stop)

    def _until_reconcile(self) -> float | None:
        if self.queue_log_path is None:
            return None
        return max(0.0, self._next_reconcile - time.monotonic())

    async def reconcile_now(self) -> None:
        """Make the calls agree with queue_log (between two batches, so the
        deriver and the database change together).  A failure is logged and
        retried at the next interval: it never stops the writer."""
        if self.queue_log_path is None:
            return
        self._next_reconcile = time.monotonic() + self.reconcile_interval_s
        if not self._state_loaded:
            return
        if self._reconciler is None:
            self._reconciler = Scheduled(self.node, self.queue_log_path)
        try:
            async with self.pool.acquire() as conn:
                result = await self._reconciler.tick(conn, self.deriver)
        except OSError as exc:
            self.log.warning("queue_log_unreadable", path=str(self.queue_log_path),
                             error=exc.strerror or type(exc).__name__)
            return
        except Exception as exc:
            self.log.warning("reconcile_failed", error=type(exc).__name__,
                             detail=str(exc)[:200])
            return
        for d in result.differences:
            self.metrics.reconciled.labels(self.node, d.what).inc()
            self.log.warning("reconciled_with_queue_log", uniqueid=d.uniqueid, queue=d.queue,
                             field=d.what, database=plain(d.database),
                             queue_log=plain(d.queue_log))
        if result.differences:
            self.log.info("reconcile_done", calls_checked=result.calls_checked,
                          rows_made=result.rows_made, rows_fixed=result.rows_fixed)

    async def _sleep_after_error(self, exc: BaseException, stop: asyncio.Event) -> None:
        delay = self.backoff.next_delay()
        self.log.warning("database_unavailable", error=type(exc).__name__,
                         detail=str(exc)[:200], retry_in_s=round(delay, 2),
                         spool_pending=self.spool.next_seq - 1 - self.seq)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)

    # -- one batch -------------------------------------------------------------
    async def commit(self, batch: Prepared) -> None:
        records, items, raws, last_seq = batch.records, batch.items, batch.raws, batch.last_seq
        await self._ensure_partitions(raws)
        async with self.pool.acquire() as conn:
            try:
                async with conn.transaction():
                    if self.lease_holder is not None and await conn.fetchrow(
                            Q["lease_take"], self.node, self.lease_holder,
                            self.lease_s) is None:
                        raise LeaseLost(self.node)
                    new_keys = await self._insert_raw(conn, batch.tuples)
                    written = self._apply(items, new_keys)
                    await self._write_changes(conn, self.deriver.take_changes())
                    await self._checkpoint(conn, last_seq)
                    if any(type(i.domain) is ev.EdgeAlert for i in items):
                        # a 911 call or a failed login: the wall board now, not at
                        # its next periodic refresh (delivered at commit)
                        await conn.execute(Q["notify_edge"])
            except Exception as exc:
                if isinstance(exc, (LeaseLost, *CONNECTION_ERRORS)):
                    raise
                self._state_loaded = False
                self.log.error("batch_failed_splitting", error=type(exc).__name__,
                               detail=str(exc)[:300], first_seq=records[0].seq,
                               last_seq=last_seq)
                await self.load_state()
                written = await self._commit_one_by_one(conn, items, last_seq)
        self.seq = last_seq
        self._report(records, written, len(raws) - written)
        self.spool.release(self.seq)
