"""``queue_call`` rows to and from the deriver's ``Call``: one place for the
listener's writer and the queue_log reconciler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from switchboard.ami_listener.derived import Call
from switchboard.sqlfile import queries

Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Q = queries("ami_listener.sql")


def ts(us: int | None) -> datetime | None:
    # timedelta(0, 0, us): positional is measurably faster (every row, twice)
    return None if us is None else EPOCH + timedelta(0, 0, us)


def us(value: datetime | None) -> int | None:
    if value is None:
        return None
    delta = value - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


LATE_EVENTS_S = 6 * 3600  # how long a call a gap closed still takes late events


def call_from_row(r: Any) -> Call:
    """A ``queue_call`` row (load_open_calls' columns) as the deriver's Call."""
    return Call(
        r["call_id"], r["node"], r["uniqueid"], r["linkedid"], r["queue"], r["caller_num"],
        r["caller_name"], us(r["entered_at"]) or 0, r["position"], r["outcome"],
        r["member_interface"], r["member_name"], r["hold_s"], r["ring_s"], r["talk_s"],
        r["rna_count"], us(r["answered_at"]), us(r["left_at"]), us(r["caller_hangup_at"]),
        us(r["ended_at"]), r["complete_reason"], r["gap_key"], r["transfer_target"],
        us(r["reconciled_at"]), ringing=tuple(r["ringing"] or ()))


async def write_calls(conn: Conn, c: list[Call]) -> None:
    await conn.execute(
        Q["upsert_calls"], [x.call_id for x in c], [x.node for x in c],
        [x.uniqueid for x in c], [x.linkedid for x in c], [x.queue for x in c],
        [x.caller_num for x in c], [x.caller_name for x in c],
        [ts(x.entered_at_us) for x in c], [x.position for x in c],
        [x.outcome for x in c], [x.member_interface for x in c],
        [x.member_name for x in c], [x.hold_s for x in c], [x.ring_s for x in c],
        [x.talk_s for x in c], [x.rna_count for x in c],
        [ts(x.answered_at_us) for x in c], [ts(x.left_at_us) for x in c],
        [ts(x.caller_hangup_at_us) for x in c], [ts(x.ended_at_us) for x in c],
        [x.complete_reason for x in c], [x.gap_key for x in c],
        [x.transfer_target for x in c], [ts(x.reconciled_at_us) for x in c],
        # text[][] needs equal lengths: each call's ringing list as one text
        [" ".join(x.ringing) or None for x in c])
