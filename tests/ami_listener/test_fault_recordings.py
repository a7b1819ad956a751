"""Faults recorded on a real Asterisk 22.10.1 (the live tier's fault scenarios,
kept with SB_LIVE_RECORD; see tests/fixtures/asterisk/faults/README.md):

- restart_mid_burst: ``core restart now`` while calls wait and talk;
- listener_killed: the listener SIGKILLed mid-burst, started 6 s later;
- connection_dropped: the network to AMI down for 8 s mid-burst.

Each connection is replayed as it was received, with its own QueueStatus
answer; what Asterisk sent while nobody listened is not in the recording, so
it is gone here too.  For each: nothing accepted is lost or doubled, the gap
rows have their bounds to the frame, and after the reconciler every call
equals queue_log (for the restart, AMI's better truth: ``cut``)."""

from __future__ import annotations

import asyncio
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from switchboard.ami_listener import queue_log, reconcile
from switchboard.ami_listener.captures import FIXTURES, Capture, Segment
from switchboard.ami_listener.fields import KEPT_EVENTS, parse_timestamp_us
from switchboard.ami_listener.replay import ReplayServer, ServerOptions
from switchboard.ami_listener.rows import us
from tests.helpers import TEN_YEARS, fetch, ingest, judge_calls, listener_process_env

DIRECTORY = FIXTURES / "faults"
NODE = "sb-live"


@dataclass
class Connection:
    events: list[tuple[float, bytes]]  # (seconds after the login, frame)
    queue_status: list[bytes]  # the resync's list items, as Asterisk sent them


@dataclass
class Recording:
    name: str
    connections: list[Connection]
    queue_log: Path

    @classmethod
    def load(cls, name: str) -> Recording:
        conns = []
        for k in range(1, 10):
            if not (DIRECTORY / f"{name}.c{k}.ami").exists():
                break
            conn = Connection([], [])
            for t, frame in Capture.load(f"{name}.c{k}", DIRECTORY).timed_frames():
                if not frame.startswith(b"Event: "):
                    continue  # replies to the recorded listener's own actions
                if b"\r\nActionID: sb-resync-" in frame:
                    if not frame.startswith(b"Event: QueueStatusComplete"):
                        conn.queue_status.append(frame)
                else:
                    conn.events.append((t, frame))
            conns.append(conn)
        return cls(name, conns, DIRECTORY / f"{name}.queue_log")

    def segments(self, *, close: bool = True) -> list[Segment]:
        """One per connection; each but the last ends with Asterisk closing it
        (``close``; else the connection stays open until the listener dies)."""
        last = len(self.connections) - 1
        return [Segment([(0.0, b"".join(f for _, f in c.events))],
                        close_at_end=close and i < last)
                for i, c in enumerate(self.connections)]

    def options(self) -> ServerOptions:
        status = {i + 1: c.queue_status for i, c in enumerate(self.connections)}
        return ServerOptions(speed=None, queue_status=lambda n: status.get(n, []))

    def kept(self) -> int:
        return sum(f.split(b"\r\n", 1)[0][7:].decode() in KEPT_EVENTS
                   for c in self.connections for _, f in c.events)

    def logged(self) -> dict[tuple[str, str], queue_log.QueueLogCall]:
        lines = [x for x in map(queue_log.parse_line, self.queue_log.read_text().splitlines())
                 if x is not None]
        return queue_log.fold(lines)

    def cut_at(self) -> float | None:
        """When Asterisk began hanging calls up for its restart (Cause 4)."""
        for c in self.connections:
            for _, f in c.events:
                if f.startswith(b"Event: SoftHangupRequest") and b"\r\nCause: 4\r\n" in f:
                    stamp = f.split(b"\r\nTimestamp: ", 1)[1].split(b"\r\n", 1)[0].decode()
                    return (parse_timestamp_us(stamp) or 0) / 1e6
        return None


SCENARIOS = ["restart_mid_burst", "listener_killed", "connection_dropped"]


async def _db_rows(db_url: str) -> dict[tuple[str, str], dict[str, Any]]:
    rows = await fetch(db_url, "SELECT * FROM queue_call")
    return {(r["uniqueid"], r["queue"]): dict(r) for r in rows}


async def _kill_between(rec: Recording, db_url: str, tmp: Path) -> None:
    """The listener as a process, SIGKILLed once it has the first connection's
    frames in its spool (some not yet committed), started again."""
    server = ReplayServer(rec.segments(close=False), rec.options())
    port = await server.start()
    env = listener_process_env(db_url, tmp, SB_AMI_NODES=f"{NODE}@127.0.0.1:{port}",
                               SB_MAX_CLOCK_SKEW_S=str(int(TEN_YEARS)),
                               SB_PING_INTERVAL="0.5")
    cmd = [sys.executable, "-m", "switchboard.console.cli", "ami-listener"]
    first = await asyncio.create_subprocess_exec(*cmd, env=env,
                                                 stderr=asyncio.subprocess.DEVNULL)
    try:
        async with asyncio.timeout(30):
            while server.stats.segments_done < 1:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # into the spool, partly into the database
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    second = await asyncio.create_subprocess_exec(*cmd, env=env,
                                                  stderr=asyncio.subprocess.DEVNULL)
    try:
        async with asyncio.timeout(60):
            while (await fetch(db_url, "SELECT count(*) AS n FROM ami_event"))[0]["n"] \
                    < rec.kept():
                await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
    finally:
        second.send_signal(signal.SIGTERM)
        assert await second.wait() == 0
        await server.close()


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_call_is_right_after_the_recorded_fault(name: str, db_url: str,
                                                      tmp_path: Path) -> None:
    rec = Recording.load(name)
    assert len(rec.connections) == 2
    if name == "listener_killed":
        asyncio.run(_kill_between(rec, db_url, tmp_path))
    else:
        asyncio.run(ingest(db_url, tmp_path, rec.segments(), options=rec.options(), node=NODE))

    # nothing accepted is lost or doubled
    [row] = asyncio.run(fetch(db_url, "SELECT count(*) AS n, count(DISTINCT dedupe_key) AS d"
                              " FROM ami_event"))
    assert row["n"] == row["d"] == rec.kept()

    # one gap, from the last frame received before the loss to the next login:
    # no frame of the first connection after it, the second connection's first
    # frame right after it
    gaps = asyncio.run(fetch(db_url, "SELECT * FROM listener_gap"))
    assert len(gaps) == 1, [(g["reason"], str(g["started_at"]), str(g["ended_at"]))
                            for g in gaps]
    gap = gaps[0]
    [bounds] = asyncio.run(fetch(db_url, """
        SELECT max(received_at) FILTER (WHERE received_at <= $1) AS before,
               min(received_at) FILTER (WHERE received_at >= $2) AS after
        FROM ami_event""", gap["started_at"], gap["ended_at"]))
    assert bounds["before"] is not None and bounds["after"] is not None
    assert 0 <= us(gap["started_at"]) - us(bounds["before"]) < 1_000_000  # (a Ping reply)
    assert 0 <= us(bounds["after"]) - us(gap["ended_at"]) < 1_000_000
    inside = asyncio.run(fetch(db_url, "SELECT count(*) AS n FROM ami_event WHERE received_at"
                               " > $1 AND received_at < $2", gap["started_at"],
                               gap["ended_at"]))
    assert inside[0]["n"] == 0

    cut_at = rec.cut_at()
    logged = rec.logged()
    before, problems = judge_calls(logged, asyncio.run(_db_rows(db_url)), cut_at=cut_at)

    async def reconciled() -> reconcile.Result:
        import asyncpg
        conn = await asyncpg.connect(db_url)
        try:
            return await reconcile.reconcile_calls(
                conn, NODE, [q for q in logged.values() if q.complete])
        finally:
            await conn.close()
    result = asyncio.run(reconciled())
    right, problems = judge_calls(logged, asyncio.run(_db_rows(db_url)), cut_at=cut_at)
    total = right + len(problems)
    print(f"{name}: {before}/{total} calls right from AMI alone, {right}/{total} after the "
          f"reconciler ({result.rows_made} rows made, {result.rows_fixed} fixed)")
    assert problems == []
    rows = asyncio.run(_db_rows(db_url))
    assert all(r["ended_at"] is not None for r in rows.values())
    if cut_at is not None:
        cut = [r for r in rows.values() if r["outcome"] == "cut"]
        assert cut and all(r["complete_reason"] == "restart" for r in cut)
        assert {r["answered_at"] is None for r in cut} == {True, False}  # waiting, talking
        assert not [r for r in rows.values() if r["outcome"] == "timeout"
                    and (r["ended_at"].timestamp() >= cut_at)
                    and logged[(r["uniqueid"], r["queue"])].outcome != "timeout"]
