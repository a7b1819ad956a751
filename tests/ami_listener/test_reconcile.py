"""The queue_log reconciler: reading queue_log by position, folding every line
app_queue writes, and ``switchboard reconcile`` making the database agree."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from switchboard.ami_listener import queue_log
from switchboard.ami_listener.captures import FIXTURES, Capture, frames_segment
from switchboard.ami_listener.reconcile import Result, Scheduled
from switchboard.ami_listener.replay import ServerOptions
from tests.helpers import db_env, fetch, ingest, judge_calls

CLI = [sys.executable, "-m", "switchboard.console.cli"]


class Ran:
    def __init__(self, out: subprocess.CompletedProcess[str]) -> None:
        self.code, self.out, self.err = out.returncode, out.stdout, out.stderr


def reconcile(env: dict[str, str], *args: str) -> Ran:
    """``switchboard reconcile`` as an operator runs it."""
    return Ran(subprocess.run([*CLI, "reconcile", *args], capture_output=True, text=True,
                              env={**os.environ, **env}, timeout=60, check=False))

QUEUE_LOG = FIXTURES / "queue_log_ts"
BURST = (1795859450, 1795859520)  # the 50-call burst's span in queue_log_ts


def test_transfers_are_folded_with_their_target() -> None:
    # the formats app_queue.c (Asterisk 22) writes: BLINDTRANSFER
    # extension|context|holdtime|calltime|origposition; ATTENDEDTRANSFER
    # BRIDGE|id or APP|app or LINK|a|b, then holdtime|calltime|origposition
    lines = [queue_log.parse_line(x) for x in (
        "100|u1|intake|NONE|ENTERQUEUE||6155550101|1",
        "104|u1|intake|Agent A|CONNECT|4|u9|2",
        "130|u1|intake|Agent A|BLINDTRANSFER|6155550142|sb-transfer|4|26|1",
        "200|u2|intake|NONE|ENTERQUEUE||6155550102|1",
        "203|u2|intake|Agent B|CONNECT|3|u8|1",
        "260|u2|intake|Agent B|ATTENDEDTRANSFER|LINK|PJSIP/2001-1|PJSIP/2002-2|3|57|1",
        "300|u3|intake|NONE|ENTERQUEUE||6155550103|1",
        "302|u3|intake|Agent B|CONNECT|2|u7|1",
        "340|u3|intake|Agent B|ATTENDEDTRANSFER|BRIDGE|5f1e-77|2|38|1")]
    calls = queue_log.fold(x for x in lines if x is not None)
    got = {k[0]: (c.outcome, c.transfer_target, c.talk_s, c.hold_s, c.answered_at)
           for k, c in calls.items()}
    assert got == {"u1": ("transferred", "6155550142@sb-transfer", 26, 4, 104),
                   "u2": ("transferred", "LINK|PJSIP/2001-1|PJSIP/2002-2", 57, 3, 203),
                   "u3": ("transferred", "BRIDGE|5f1e-77", 38, 2, 302)}
    assert calls[("u1", "intake")].caller_num == "6155550101"


def test_a_long_queue_log_is_read_from_the_position_of_the_period(tmp_path: Path) -> None:
    """A year of queue_log is not read whole for one hour: bisection finds the
    offset, and the lines read equal a full scan's."""
    base = QUEUE_LOG.read_text().splitlines()
    path = tmp_path / "queue_log"
    with path.open("w") as fh:
        for day in range(400):  # the recorded day, again and again, a day apart
            for line in base:
                epoch, rest = line.split("|", 1)
                fh.write(f"{int(epoch) + day * 86400}|{rest}\n")
    since, until = BURST[0] + 200 * 86400, BURST[1] + 200 * 86400
    offset = queue_log.offset_for(path, since)
    size = path.stat().st_size
    assert size * 0.45 < offset < size * 0.55
    whole = [queue_log.parse_line(x) for x in path.read_text().splitlines()]
    want = [x for x in whole if x is not None and since <= x.epoch <= until]
    assert queue_log.read(path, since, until) == want and len(want) > 50


def test_a_growing_and_rotated_queue_log_is_read_once(tmp_path: Path) -> None:
    path = tmp_path / "queue_log"
    base = QUEUE_LOG.read_text().splitlines(keepends=True)
    path.write_text("".join(base[:10]) + base[10][:15])  # a line half written
    got, pos = queue_log.read_new(path, None)
    assert len(got) == 10
    with path.open("a") as fh:
        fh.write(base[10][15:] + "".join(base[11:20]))
    got, pos = queue_log.read_new(path, pos)
    assert [x.epoch for _, x in got] == [int(x.split("|")[0]) for x in base[10:20]]
    assert got[0][0] == len("".join(base[:10]).encode())  # where each line starts
    with path.open("a") as fh:
        fh.write("".join(base[20:25]))
    path.rename(tmp_path / "queue_log.1")  # logrotate
    path.write_text("".join(base[25:30]))
    got, pos = queue_log.read_new(path, pos)
    assert [x.epoch for _, x in got] == [int(x.split("|")[0]) for x in base[20:30]]
    assert [at for at, _ in got][:5] == [-1] * 5  # the rest of the rotated file
    assert queue_log.read_new(path, pos)[0] == []


def _waiting_at(frames: list[bytes]) -> list[bytes]:
    """QueueStatus' QueueEntry items for the callers still waiting after these
    frames (what Asterisk answers the listener's resync with at that moment)."""
    waiting: dict[str, dict[str, str]] = {}
    for f in frames:
        fields = dict(x.split(": ", 1) for x in f.decode().split("\r\n")[1:] if ": " in x)
        name = f.split(b"\r\n", 1)[0][7:]
        uid = fields.get("Uniqueid", "")
        if name == b"QueueCallerJoin":
            waiting[uid] = fields
        elif name == b"QueueCallerLeave":
            waiting.pop(uid, None)
    return [("Event: QueueEntry\r\nQueue: {Queue}\r\nPosition: 1\r\nChannel: {Channel}\r\n"
             "Uniqueid: {Uniqueid}\r\nCallerIDNum: {CallerIDNum}\r\nCallerIDName: "
             "{CallerIDName}\r\nConnectedLineNum: unknown\r\nConnectedLineName: unknown\r\n"
             "Wait: 5\r\nPriority: 0\r\nActionID: x\r\n\r\n").format(**f).encode()
            for f in waiting.values()]


def _db_calls(db_url: str) -> dict[tuple[str, str], dict[str, Any]]:
    rows = asyncio.run(fetch(db_url, "SELECT * FROM queue_call"))
    return {(r["uniqueid"], r["queue"]): dict(r) for r in rows}


def _logged() -> dict[tuple[str, str], queue_log.QueueLogCall]:
    return queue_log.fold(queue_log.read(QUEUE_LOG, *BURST))


def test_reconcile_makes_a_burst_with_a_lost_middle_agree(db_url: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    """The 50-call burst with its middle third lost (the connection dropped, and
    what Asterisk sent meanwhile is gone): after the listener, calls are
    missing or unknown; ``switchboard reconcile`` lists and fixes each one,
    and a second run finds nothing."""
    burst = Capture.load("f_burst_50_calls_ts").event_frames()
    a, b = len(burst) // 3, 2 * len(burst) // 3
    status = {2: _waiting_at(burst[:b])}
    asyncio.run(ingest(db_url, tmp_path, [frames_segment(burst[:a], close=True),
                                          frames_segment(burst[b:])], node="pbx-a",
                       options=ServerOptions(speed=None,
                                             queue_status=lambda n: status.get(n, []))))
    right, problems = judge_calls(_logged(), _db_calls(db_url))
    assert right < 50 and problems  # what AMI alone leaves: the "before" of this fault
    before = right

    env = {**db_env(db_url), "SB_AMI_NODES": "pbx-a@127.0.0.1:5038",
           "SB_AMI_SECRET": "unused-here", "SB_STATE_DIR": str(tmp_path), "SB_LOG_LEVEL":
           "warning"}
    span = ["--from", "2026-11-28T09:50:50+00:00", "--to", "2026-11-28T09:52:00+00:00",
            "--queue-log", str(QUEUE_LOG)]
    assert reconcile(env, *span, "--dry-run").code == 1
    assert judge_calls(_logged(), _db_calls(db_url))[0] == before  # nothing changed
    ran = reconcile(env, *span)
    assert ran.code == 1, ran.err
    right, problems = judge_calls(_logged(), _db_calls(db_url))
    print(f"dropped middle third: {before}/50 calls right from AMI alone, {right}/50 after "
          "reconcile")
    assert (right, problems) == (50, [])
    listed = [x for x in ran.out.splitlines() if x.startswith("pbx-a-")]
    assert listed and all(x.endswith("(fixed)") for x in listed)
    assert "outcome database='unknown' queue_log='abandoned'" in ran.out
    again = reconcile(env, *span)  # a second run finds nothing
    assert again.code == 0 and "0 differences" in again.out
    rows = asyncio.run(fetch(db_url, "SELECT count(*) AS n, count(DISTINCT (uniqueid, queue))"
                             " AS calls, count(reconciled_at) AS fixed FROM queue_call"))
    assert rows[0]["n"] == rows[0]["calls"]  # no call twice
    assert 50 - before <= rows[0]["fixed"] < 50  # the wrong ones, and not every call


def test_reconcile_says_clearly_what_it_lacks(tmp_path: Path) -> None:
    env = {"SB_STATE_DIR": str(tmp_path), "SB_AMI_NODES": "a@127.0.0.1:5038,b@127.0.0.1:5039",
           "SB_AMI_SECRET": "unused-here", "SB_QUEUE_LOG": ""}
    ran = reconcile(env, "--from", "2026-11-28T00:00")
    assert ran.code == 2 and "--node" in ran.err
    ran = reconcile(env, "--from", "2026-11-28T00:00", "--node", "a")
    assert ran.code == 2 and "no readable queue_log" in ran.err
    ran = reconcile(env, "--from", "yesterday", "--node", "a")
    assert ran.code == 2 and "not an ISO time" in ran.err


def test_the_listener_reconciler_resumes_before_a_call_that_is_not_whole(
        db_url: str, tmp_path: Path) -> None:
    """The running listener's reconciler keeps its place in queue_log in the
    database, never past a call whose end has not been written yet: after a
    restart it reads that call's ENTERQUEUE again, so the call that ended while
    the listener was down still gets its row."""
    path = tmp_path / "queue_log"
    path.write_text("1795859300|u0|intake|NONE|ENTERQUEUE||6155550100|1\n"
                    "1795859310|u0|intake|NONE|ABANDON|1|1|10\n"
                    "1795859372|u1|intake|NONE|ENTERQUEUE||6155550101|1\n")

    async def tick() -> Result:
        conn = await asyncpg.connect(db_url)
        try:
            return await Scheduled("pbx-a", path).tick(conn, None)
        finally:
            await conn.close()
    asyncio.run(fetch(db_url, "INSERT INTO listener_checkpoint (node, spool_id, seq, "
                      "last_seen_at) VALUES ('pbx-a', 's', 1, now()) RETURNING 1"))
    first = asyncio.run(tick())
    assert (first.rows_made, first.calls_checked) == (1, 1)  # u0; u1 is not whole
    [pos] = asyncio.run(fetch(db_url, "SELECT byte_offset FROM queue_log_position"))
    assert pos["byte_offset"] == len(path.read_bytes().split(b"\n1795859372")[0]) + 1
    with path.open("a") as fh:  # written while the listener was down
        fh.write("1795859395|u1|intake|NONE|ABANDON|1|1|23\n")
    second = asyncio.run(tick())  # a new process: nothing in memory
    assert (second.rows_made, second.calls_checked) == (1, 1)
    rows = asyncio.run(fetch(db_url, "SELECT uniqueid, outcome, hold_s, caller_num FROM "
                             "queue_call ORDER BY uniqueid"))
    assert [tuple(r) for r in rows] == [("u0", "abandoned", 10, "6155550100"),
                                        ("u1", "abandoned", 23, "6155550101")]
    [pos] = asyncio.run(fetch(db_url, "SELECT byte_offset FROM queue_log_position"))
    assert pos["byte_offset"] == path.stat().st_size
