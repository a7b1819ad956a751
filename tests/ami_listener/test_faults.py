"""Fault injection against the real parts: the socket dropped mid-stream, the
database stopped mid-stream, the listener SIGKILLed mid-stream.  Each asserts
that the rows equal the frames accepted, with no duplicate, and that the
derived rows are right."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from switchboard.ami_listener.captures import Capture, Segment, frames_segment
from switchboard.ami_listener.fields import KEPT_EVENTS
from switchboard.ami_listener.replay import ReplayServer, ServerOptions
from switchboard.ami_listener.service import Listener
from switchboard.ami_listener.spool import _scan
from switchboard.pgcluster import LocalCluster
from tests.conftest import TEMPLATE, fresh_database, make_cluster
from tests.helpers import as_service, calls, fetch, ingest, listener_process_env, listener_settings

ABANDON = Capture.load("b_abandon").event_frames()
JOIN_AT = next(i for i, f in enumerate(ABANDON) if f.startswith(b"Event: QueueCallerJoin"))


def kept(frames: list[bytes]) -> int:
    return sum(f.split(b"\r\n")[0][7:].decode() in KEPT_EVENTS for f in frames)


def entry_item(uid: str, queue: str = "intake") -> bytes:
    """A QueueStatus QueueEntry list item in the recorded format."""
    return (b"Event: QueueEntry\r\nQueue: " + queue.encode() + b"\r\nPosition: 1\r\n"
            b"Channel: PJSIP/pstn-00000004\r\nUniqueid: " + uid.encode()
            + b"\r\nCallerIDNum: 5550001\r\nCallerIDName: Caller 5550001\r\n"
            b"ConnectedLineNum: unknown\r\nConnectedLineName: unknown\r\nWait: 6\r\n"
            b"Priority: 0\r\nActionID: x\r\n\r\n")


def waiting(frames: list[bytes]) -> list[bytes]:
    """What QueueStatus would list after ``frames``: callers joined, not yet left."""
    queues: dict[str, str] = {}
    for f in frames:
        fields = dict(ln.split(": ", 1) for ln in f.decode().split("\r\n") if ": " in ln)
        if fields.get("Event") == "QueueCallerJoin":
            queues[fields["Uniqueid"]] = fields["Queue"]
        elif fields.get("Event") == "QueueCallerLeave":
            queues.pop(fields["Uniqueid"], None)
    return [entry_item(uid, q) for uid, q in queues.items()]


def second_connection(items: list[bytes]) -> Callable[[int], list[bytes]]:
    """QueueStatus lists nobody at the first login, ``items`` at the next ones."""
    return lambda connection: items if connection > 1 else []


async def counts(db_url: str) -> tuple[int, int]:
    row = (await fetch(db_url, "SELECT count(*) AS n, count(DISTINCT dedupe_key) AS d"
                       " FROM ami_event"))[0]
    return row["n"], row["d"]


def test_socket_drop_with_the_call_still_waiting(db_url: str, tmp_path: Path) -> None:
    """Dropped after the caller joined; on reconnect QueueStatus still lists the
    caller, so the call stays open and ends as the later events say."""
    first = frames_segment(ABANDON[:JOIN_AT + 1], close=True)
    second = frames_segment(ABANDON[JOIN_AT + 1:])
    options = ServerOptions(speed=None, queue_status=second_connection(
        [entry_item("1795856213.4")]))
    asyncio.run(ingest(db_url, tmp_path, [first, second], options=options))
    [call] = asyncio.run(calls(db_url))
    assert (call["outcome"], call["hold_s"]) == ("abandoned", 23)
    gaps = asyncio.run(fetch(db_url, "SELECT calls_closed, reason FROM listener_gap"))
    assert [(g["calls_closed"]) for g in gaps] == [0]
    assert asyncio.run(counts(db_url)) == (kept(ABANDON),) * 2


def test_socket_drop_while_the_call_ends_closes_it_as_unknown(db_url: str,
                                                              tmp_path: Path) -> None:
    """The call ended while nobody listened: not guessed, closed as unknown, gap kept."""
    end = next(i for i, f in enumerate(ABANDON) if f.startswith(b"Event: Hangup\r\n"))
    first = frames_segment(ABANDON[:JOIN_AT + 1], close=True)
    second = frames_segment(ABANDON[end + 1:])  # the abandon itself was never seen
    asyncio.run(ingest(db_url, tmp_path, [first, second]))
    [call] = asyncio.run(calls(db_url))
    assert call["outcome"] == "unknown" and call["hold_s"] is None
    rows = asyncio.run(fetch(db_url, "SELECT g.calls_closed, c.ended_at = g.ended_at AS at_end"
                             " FROM queue_call c JOIN listener_gap g USING (gap_key)"))
    assert [(r["calls_closed"], r["at_end"]) for r in rows] == [(1, True)]


def test_caller_who_joined_during_the_gap_gets_a_row(db_url: str, tmp_path: Path) -> None:
    """Nobody saw the join; QueueStatus lists the caller (Wait: 6) after the
    reconnect, so the row exists and the later abandon lands on it."""
    first = frames_segment(ABANDON[:JOIN_AT], close=True)  # up to, not including, the join
    second = frames_segment(ABANDON[JOIN_AT + 1:])
    options = ServerOptions(speed=None, queue_status=second_connection(
        [entry_item("1795856213.4")]))
    asyncio.run(ingest(db_url, tmp_path, [first, second], options=options))
    [call] = asyncio.run(calls(db_url))
    assert (call["outcome"], call["hold_s"], call["position"]) == ("abandoned", 23, 1)
    [row] = asyncio.run(fetch(db_url, "SELECT g.gap_key IS NOT NULL AS in_gap,"
                              " c.entered_at < g.ended_at AS before_resync"
                              " FROM queue_call c JOIN listener_gap g USING (gap_key)"))
    assert row["in_gap"] and row["before_resync"]


def test_call_closed_by_a_gap_gets_queue_logs_outcome(db_url: str, tmp_path: Path) -> None:
    """The caller hangs up while nobody listens: the gap closes the call as
    unknown, and the listener's scheduled reconciler gives it what Asterisk's
    queue_log recorded (the abandon after 23 s)."""
    cap = Capture.load("b_abandon_ts").event_frames()
    join = next(i for i, f in enumerate(cap) if f.startswith(b"Event: QueueCallerJoin"))
    end = next(i for i, f in enumerate(cap) if f.startswith(b"Event: Hangup\r\n"))
    lines = (Path(__file__).parents[1] / "fixtures/asterisk/queue_log_ts").read_text()
    qlog = tmp_path / "queue_log"
    qlog.write_text("".join(ln for ln in lines.splitlines(keepends=True)
                            if "pbx-a-1795859391.2" in ln))
    first = frames_segment(cap[:join + 1], close=True)
    second = frames_segment(cap[end + 1:])

    async def reconciled() -> bool:
        rows = await fetch(db_url, "SELECT reconciled_at FROM queue_call")
        return bool(rows) and rows[0]["reconciled_at"] is not None
    # the reconciler's ticks 1 s apart: the capture is two days old, so with ticks
    # 50 ms apart one could land between the first batches, before the caller's
    # join is stored, and make a second row for the call from queue_log (with
    # live traffic queue_log is never ahead of the listener's horizon like that)
    asyncio.run(ingest(db_url, tmp_path, [first, second], node="pbx-a",
                       queue_logs={"*": qlog}, reconcile_interval_s=1.0, until=reconciled))
    [call] = asyncio.run(calls(db_url))
    assert (call["outcome"], call["hold_s"]) == ("abandoned", 23)
    # (the capture is two days old: queue_log has the call whole before the gap,
    # so the reconciler may fix it before the gap would have closed it)
    assert len(asyncio.run(fetch(db_url, "SELECT 1 FROM listener_gap"))) == 1
    rows = asyncio.run(fetch(db_url, "SELECT * FROM queue_log_position"))
    assert len(rows) == 1, [dict(r) for r in rows]
    [pos] = rows
    assert pos["byte_offset"] == qlog.stat().st_size  # read once, to the end


def assert_whole_burst(url: str, burst: list[bytes]) -> None:
    """Rows == frames accepted, no duplicate, and the burst's 13/37 split."""
    assert asyncio.run(counts(url)) == (kept(burst),) * 2
    rows = asyncio.run(calls(url))
    outcomes = [r["outcome"] for r in rows]
    assert len(rows) == 50 and outcomes.count("answered") == 13
    assert outcomes.count("abandoned") == 37


@pytest.fixture
def own_cluster() -> Iterator[LocalCluster]:
    """A cluster this test may stop and start (the session one is shared)."""
    cluster = make_cluster("sb-fault-pg-")
    async def template() -> None:
        import asyncpg

        from switchboard import db
        conn = await asyncpg.connect(cluster.superuser_url())
        await conn.execute(f'CREATE DATABASE {TEMPLATE} OWNER "{cluster.app_user}"')
        await conn.close()
        await db.migrate(cluster.app_url().rsplit("/", 1)[0] + f"/{TEMPLATE}")
    asyncio.run(template())
    yield cluster
    cluster.destroy()
    shutil.rmtree(cluster.root.parent, ignore_errors=True)


def test_database_stopped_mid_stream(own_cluster: LocalCluster, tmp_path: Path) -> None:
    url = fresh_database(own_cluster)
    burst = Capture.load("f_burst_50_calls").event_frames()
    half = len(burst) // 2

    async def scenario() -> None:
        # one connection: the first half now, the second half 1.5 s later, by which
        # time the database is down
        segment = Segment([(0.0, b"".join(burst[:half])), (1.5, b"".join(burst[half:]))],
                          close_at_end=False)
        server = ReplayServer([segment], ServerOptions(speed=1.0))
        port = await server.start()
        listener = Listener(listener_settings(tmp_path, port, backoff_max_s=0.5),
                            as_service(url, "listener"))
        await listener.start()
        pipeline = listener.pipelines[0]
        async with asyncio.timeout(60):
            await listener.wait_idle()
            await asyncio.to_thread(own_cluster.stop, "fast")
            while server.stats.segments_done < 1:
                await asyncio.sleep(0.05)
            await asyncio.sleep(2.0)  # several failed write attempts meanwhile
            assert pipeline.writer.seq < pipeline.spool.next_seq - 1  # waiting in the spool
            await asyncio.to_thread(own_cluster.start)
            await listener.wait_idle()
        assert server.stats.connections == 1  # the AMI side never noticed
        await listener.stop()
        await server.close()
    asyncio.run(scenario())
    assert_whole_burst(url, burst)


def _spooled_events(spool_dir: Path) -> int:
    total = 0
    for seg in spool_dir.glob("seg-*.log"):
        records, _ = _scan(seg.read_bytes())
        total += sum(r.frame.startswith(b"Event:") and b"sb-resync" not in r.frame
                     for r in records)
    return total


def test_listener_sigkilled_mid_stream(db_url: str, tmp_path: Path) -> None:
    burst = Capture.load("f_burst_50_calls").event_frames()
    half = len(burst) // 2
    # frames wait in the spool when we kill it
    env = listener_process_env(db_url, tmp_path, SB_BATCH_DELAY_MS="3000")

    async def scenario() -> None:
        # Asterisk still has the waiting callers when the listener comes back
        server = ReplayServer([frames_segment(burst[:half]), frames_segment(burst[half:])],
                              ServerOptions(speed=None,
                                            queue_status=second_connection(waiting(burst[:half]))))
        port = await server.start()
        env["SB_AMI_NODES"] = f"lab@127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "switchboard.console.cli", "ami-listener"]
        first = await asyncio.create_subprocess_exec(*cmd, env=env,
                                                     stderr=asyncio.subprocess.DEVNULL)
        try:
            async with asyncio.timeout(30):
                while _spooled_events(tmp_path / "spool" / "lab") < kept(burst[:half]):
                    await asyncio.sleep(0.05)
        finally:
            first.send_signal(signal.SIGKILL)
            await first.wait()
        committed = (await fetch(db_url, "SELECT count(*) AS n FROM ami_event"))[0]["n"]
        assert committed < kept(burst[:half])  # some accepted frames were only spooled
        second = await asyncio.create_subprocess_exec(*cmd, env=env,
                                                      stderr=asyncio.subprocess.DEVNULL)
        try:
            async with asyncio.timeout(60):
                while (await counts(db_url))[0] < kept(burst):
                    await asyncio.sleep(0.1)
            await asyncio.sleep(3.5)  # one more batch window: nothing more must arrive
        finally:
            second.send_signal(signal.SIGTERM)
            assert await second.wait() == 0
            await server.close()
    asyncio.run(scenario())
    assert_whole_burst(db_url, burst)
    gaps = asyncio.run(fetch(db_url, "SELECT reason, calls_closed FROM listener_gap"))
    # the call talking at the kill: the replay's QueueStatus lists no member in a
    # call, so the gap closed it; its AgentComplete, sent after the restart, then
    # gave it its real end (assert_whole_burst: 13 answered, none open)
    assert [(g["reason"], g["calls_closed"]) for g in gaps] == [("listener restarted", 1)]
