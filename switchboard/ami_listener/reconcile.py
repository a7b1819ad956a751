"""Make the calls in the database agree with Asterisk's queue_log.

queue_log is the book of record for what happened to each queued call (as in
QueueMetrics' loader); AMI gives the exact times and, for calls an Asterisk
shutdown or restart cut, the better truth (queue_log writes those as ordinary
ABANDON or COMPLETEAGENT, so a ``cut`` outcome is kept).  Rules, per call that
queue_log has whole (its ENTERQUEUE and its end):

- no row: one is made with every figure queue_log has (the call joined and
  ended while nobody listened); its ``gap_key`` is the gap that hid it;
- a row: outcome, hold, talk, ring-no-answers, agent and transfer target follow
  queue_log; ``answered_at`` and ``ended_at`` are taken from it only where AMI
  gave none (a call open across a gap, or closed as ``unknown`` by one), since
  AMI's are exact to the microsecond and queue_log's to the second.

A call is reconciled only once the listener has committed every frame up to
``SETTLE_S`` after its end, so a listener catching up on its spool is never
overtaken.  Used by ``switchboard reconcile`` (any period, on demand) and on a
schedule by the running listener (reading only what was appended).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from switchboard import log
from switchboard.ami_listener import queue_log
from switchboard.ami_listener.derive import Deriver
from switchboard.ami_listener.derived import Call
from switchboard.ami_listener.queue_log import Position, QueueLogCall
from switchboard.ami_listener.rows import Conn, call_from_row, ts, us, write_calls
from switchboard.sqlfile import queries

Q = queries("reconcile.sql")
SETTLE_S = 3  # a call is reconciled once the listener is this far past its end
MAX_CALL_S = 4 * 3600  # the longest a call may wait and talk (reading window)
PENDING_MAX = 200_000  # incomplete calls the scheduled reconciler keeps in memory
FIGURES = ("outcome", "hold_s", "talk_s", "rna_count", "member_name", "transfer_target")


@dataclass(frozen=True)
class Difference:
    uniqueid: str
    queue: str
    what: str  # a column, "row" (the database had none) or "queue_log" (it has none)
    database: Any
    queue_log: Any
    fixed: bool

    def __str__(self) -> str:
        verb = "fixed" if self.fixed else "left"
        return (f"{self.uniqueid} {self.queue}: {self.what} database={self.database!r} "
                f"queue_log={self.queue_log!r} ({verb})")


def queue_log_call_id(node: str, q: QueueLogCall) -> bytes:
    """A stable key for a row made from queue_log (a second run finds it again)."""
    return hashlib.sha256(f"ql\0{node}\0{q.uniqueid}\0{q.queue}\0{q.entered_at}".encode()
                          ).digest()[:16]


def merge(call: Call | None, q: QueueLogCall, node: str
          ) -> tuple[Call, list[tuple[str, Any, Any]]]:
    """The call as queue_log says it went, and what differed (column, database,
    queue_log).  ``q`` must be complete."""
    assert q.entered_at is not None and q.ended_at is not None
    if call is None:
        made = Call(queue_log_call_id(node, q), node, q.uniqueid, None, q.queue, q.caller_num,
                    None, q.entered_at * 1_000_000, None, q.outcome, None, q.member_name,
                    q.hold_s, q.ring_s, q.talk_s, q.rna_count,
                    None if q.answered_at is None else q.answered_at * 1_000_000, None, None,
                    q.ended_at * 1_000_000, q.extra.get("completed_by") or "queue_log",
                    None, q.transfer_target)
        return made, [("row", None, q.outcome)]
    diffs: list[tuple[str, Any, Any]] = []
    want: dict[str, Any] = {"outcome": q.outcome, "hold_s": q.hold_s, "talk_s": q.talk_s,
                            "rna_count": q.rna_count, "member_name": q.member_name,
                            "transfer_target": q.transfer_target}
    if call.outcome == "cut":
        del want["outcome"]  # AMI saw Asterisk cut it; queue_log cannot tell
    gap_closed = call.outcome == "unknown" or call.complete_reason == "gap"
    for name in FIGURES:
        if name not in want or want[name] is None:
            continue
        if getattr(call, name) != want[name]:
            diffs.append((name, getattr(call, name), want[name]))
            setattr(call, name, want[name])
    if call.ring_s is None and q.ring_s is not None:
        call.ring_s = q.ring_s
    if call.answered_at_us is None and q.answered_at is not None:
        diffs.append(("answered_at", None, q.answered_at))
        call.answered_at_us = q.answered_at * 1_000_000
    end_us = max(q.ended_at * 1_000_000, call.entered_at_us)
    if call.ended_at_us is None or (gap_closed and call.ended_at_us != end_us):
        diffs.append(("ended_at", call.ended_at_us, q.ended_at))
        call.ended_at_us = end_us
    if gap_closed and "completed_by" in q.extra:
        call.complete_reason = q.extra["completed_by"]
    elif call.complete_reason == "gap":
        call.complete_reason = None
    return call, diffs


@dataclass
class Result:
    differences: list[Difference] = field(default_factory=list)
    calls_checked: int = 0
    rows_made: int = 0
    rows_fixed: int = 0
    not_settled: int = 0
    gaps_reconciled: int = 0
    done: list[tuple[str, str]] = field(default_factory=list)  # (uniqueid, queue) settled

    @property
    def off(self) -> bool:
        return bool(self.differences)

    def add(self, other: Result) -> None:
        self.differences += other.differences
        self.done += other.done
        self.calls_checked += other.calls_checked
        self.rows_made += other.rows_made
        self.rows_fixed += other.rows_fixed
        self.not_settled += other.not_settled


async def horizon_us(conn: Conn, node: str) -> int:
    """The listener's last committed frame: calls that ended after it may still
    be in its spool."""
    row = await conn.fetchrow(Q["last_seen"], node)
    return (us(row["last_seen_at"]) or 0) if row is not None else 0


async def reconcile_calls(conn: Conn, node: str, logged: list[QueueLogCall], *,
                          deriver: Deriver | None = None, dry_run: bool = False,
                          now_us: int | None = None, horizon: int | None = None) -> Result:
    """Make the database agree with these (complete) queue_log calls, in the
    caller's transaction.  Calls the listener tracks are changed in its
    deriver too, so its next write carries the fix instead of undoing it."""
    result = Result()
    now_us = now_us if now_us is not None else time.time_ns() // 1000
    if horizon is None:
        horizon = await horizon_us(conn, node)
    ready = [q for q in logged if q.complete
             and (q.ended_at or 0) * 1_000_000 <= horizon - SETTLE_S * 1_000_000]
    result.not_settled = len(logged) - len(ready)
    result.done = [(q.uniqueid, q.queue) for q in ready]
    if not ready:
        return result
    rows = await conn.fetch(Q["calls_by_uniqueid"], node, sorted({q.uniqueid for q in ready}))
    by_key: dict[tuple[str, str], list[Call]] = {}
    for r in rows:
        by_key.setdefault((r["uniqueid"], r["queue"]), []).append(call_from_row(r))
    changed: list[Call] = []
    for q in ready:
        result.calls_checked += 1
        call = _closest(by_key.get((q.uniqueid, q.queue), []), q)
        if call is not None and deriver is not None:
            tracked = deriver.calls.get(call.uniqueid)
            if tracked is not None and tracked.call_id == call.call_id:
                call = tracked
        if dry_run and call is not None:
            call = dataclasses.replace(call)
        merged, diffs = merge(call, q, node)
        if not diffs:
            continue
        for what, db_value, ql_value in diffs:
            result.differences.append(Difference(q.uniqueid, q.queue, what, db_value,
                                                 ql_value, not dry_run))
        if call is None:
            gap = await conn.fetchrow(Q["gap_at"], node, ts(merged.entered_at_us))
            merged.gap_key = gap["gap_key"] if gap is not None else None
            result.rows_made += 1
        else:
            result.rows_fixed += 1
        merged.reconciled_at_us = now_us
        changed.append(merged)
    if changed and not dry_run:
        await write_calls(conn, changed)
    return result


def _closest(calls: list[Call], q: QueueLogCall) -> Call | None:
    """The row of this queue_log call: a caller queued twice in one queue has two
    (then the one that entered nearest to it; a row made from a QueueStatus
    snapshot after a gap knows its entry only to the second)."""
    if len(calls) <= 1:
        return calls[0] if calls else None
    entered = (q.entered_at or 0) * 1_000_000
    return min(calls, key=lambda c: abs(c.entered_at_us - entered))


async def reconcile_period(conn: Conn, node: str, path: Path, start: datetime,
                           end: datetime, *, dry_run: bool = False) -> Result:
    """``switchboard reconcile``: every call that entered a queue in [start, end)."""
    lo, hi = int(start.timestamp()), int(end.timestamp())
    lines = queue_log.read(path, lo, min(hi + MAX_CALL_S, int(time.time()) + 60))
    logged = [q for q in queue_log.fold(lines).values()
              if q.entered_at is not None and lo <= q.entered_at < hi]
    async with conn.transaction():
        result = await reconcile_calls(conn, node, logged, dry_run=dry_run)
        known = {(q.uniqueid, q.queue) for q in logged}
        for r in await conn.fetch(Q["calls_in_window"], node, start, end):
            if (r["uniqueid"], r["queue"]) not in known:
                result.differences.append(Difference(r["uniqueid"], r["queue"], "queue_log",
                                                     r["outcome"], None, False))
        if not dry_run and not result.not_settled:
            covered = min(end.timestamp(), _newest(lines) - SETTLE_S)
            gaps = await conn.fetch(Q["mark_gaps_reconciled"], node,
                                    datetime.fromtimestamp(covered, UTC), start)
            result.gaps_reconciled = len(gaps)
    return result


def _newest(lines: list[queue_log.QueueLogLine]) -> float:
    return float(max((x.epoch for x in lines), default=0))


class Scheduled:
    """The listener's reconciler: reads what was appended to queue_log since
    last time (by inode and offset, kept in the database), keeps calls that are
    not whole yet, and reconciles those that are, in one transaction with the
    new position."""

    LOOKBACK_S = 6 * 3600  # where a first run starts reading

    def __init__(self, node: str, path: Path) -> None:
        self.node = node
        self.path = path
        self.pending: dict[tuple[str, str], QueueLogCall] = {}
        self.position: Position | None = None
        self.newest = 0  # the newest epoch read from queue_log
        # where each pending call's first line is in the current file: the saved
        # position never passes a call that is not whole yet, so a restarted
        # listener reads it again instead of seeing only its end
        self.first_at: dict[tuple[str, str], int] = {}
        self._loaded = False
        self.log = log.get("ami_listener.reconcile").bind(node=node, path=str(path))

    async def tick(self, conn: Conn, deriver: Deriver | None) -> Result:
        if not self._loaded:
            row = await conn.fetchrow(Q["load_position"], self.node)
            if row is not None and row["path"] == str(self.path):
                self.position = Position(row["inode"], row["byte_offset"])
            else:  # first run: from what the database still needs to know
                oldest = await conn.fetchval(Q["oldest_unsettled"], self.node)
                since = int(time.time()) - self.LOOKBACK_S
                if oldest is not None:
                    since = min(since, int(oldest.timestamp()) - 60)
                st = self.path.stat()
                self.position = Position(st.st_ino, queue_log.offset_for(self.path, since))
            self._loaded = True
        read, position = queue_log.read_new(self.path, self.position)
        if self.position is not None and position.inode != self.position.inode:
            self.first_at.clear()  # offsets of the old file mean nothing now
        for offset, line in read:
            key = (line.uniqueid, line.queue)
            if offset >= 0 and key not in self.pending and key not in self.first_at:
                self.first_at[key] = offset
        queue_log.fold((line for _, line in read), self.pending)
        self.newest = max([self.newest, *(line.epoch for _, line in read)])
        complete = [q for q in self.pending.values() if q.complete]
        horizon = await horizon_us(conn, self.node)
        result = Result()
        for i in range(0, len(complete), 5000):
            async with conn.transaction():
                result.add(await reconcile_calls(conn, self.node, complete[i:i + 5000],
                                                 deriver=deriver, horizon=horizon))
        for key in result.done:
            self.pending.pop(key, None)
            self.first_at.pop(key, None)
        self._trim()
        await self._mark_gaps(conn, horizon)
        self.position = position
        resume = min((self.first_at[k] for k in self.pending if k in self.first_at),
                     default=position.offset)
        await conn.execute(Q["save_position"], self.node, str(self.path), position.inode,
                           min(resume, position.offset))
        return result

    async def _mark_gaps(self, conn: Conn, horizon: int) -> None:
        """Gaps that ended before what queue_log and the listener both cover, with
        no call still waiting to be settled before them, are reconciled."""
        covered = min(float(self.newest), horizon / 1e6) - SETTLE_S
        unsettled = [q.ended_at for q in self.pending.values() if q.complete and q.ended_at]
        if unsettled:
            covered = min(covered, min(unsettled) - 1)
        if covered <= 0:
            return
        for g in await conn.fetch(Q["mark_gaps_reconciled"], self.node,
                                  datetime.fromtimestamp(covered, UTC), None):
            self.log.info("gap_reconciled", gap_start=g["started_at"].isoformat(),
                          gap_end=g["ended_at"].isoformat(), calls_fixed=g["backfilled"])

    def _trim(self) -> None:
        """Calls queue_log never finished (their start was before the first read,
        or Asterisk died): dropped once queue_log is MAX_CALL_S past their
        entry, and never more than PENDING_MAX."""
        oldest = self.newest - MAX_CALL_S
        for key, q in list(self.pending.items()):
            if (q.entered_at or q.ended_at or 0) < oldest:
                del self.pending[key]
                self.first_at.pop(key, None)
        while len(self.pending) > PENDING_MAX:
            key = next(iter(self.pending))
            del self.pending[key]
            self.first_at.pop(key, None)
