"""Every recorded scenario, replayed over real TCP with its real chunking into
the real listener and a real PostgreSQL; the expected rows were derived by hand
from the capture (and, for the *_ts runs, checked against Asterisk's own
queue_log, which app_queue writes independently of AMI)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from switchboard.ami_listener import queue_log
from switchboard.ami_listener.captures import (
    FIXTURES,
    Capture,
    concat,
    frames_segment,
    segment_from,
)
from switchboard.ami_listener.replay import ServerOptions
from tests.helpers import calls, fetch, ingest, intervals


def replay(db_url: str, tmp: Path, *names: str, **kw: Any) -> None:
    segment = concat(segment_from(Capture.load(n)) for n in names)
    asyncio.run(ingest(db_url, tmp, [segment], **kw))


def call(queue: str, uid: str, outcome: str, *, member: str | None = None, hold: int | None,
         ring: int | None = None, talk: int | None = None, rna: int = 0,
         reason: str | None = None, caller: str = "5550001", position: int = 1
         ) -> dict[str, Any]:
    return {"queue": queue, "uniqueid": uid, "caller_num": caller, "position": position,
            "outcome": outcome, "member_interface": member, "hold_s": hold, "ring_s": ring,
            "talk_s": talk, "rna_count": rna, "complete_reason": reason}


# call (a): Agent Bob answers after 1 s of hold, 1 s of ringing; 12 s of talk
CALL_A = call("intake", "1795856179.2", "answered", member="PJSIP/2002", hold=1, ring=1,
              talk=12, reason="caller")


def event_counts(db_url: str) -> dict[str, int]:
    rows = asyncio.run(fetch(db_url, "SELECT event, count(*) FROM ami_event GROUP BY event"))
    return {r["event"]: r["count"] for r in rows}


def test_answered_call(db_url: str, tmp_path: Path) -> None:
    replay(db_url, tmp_path, "a_answered_filtered")
    assert asyncio.run(calls(db_url)) == [CALL_A]
    # Bob is in intake and priority: one QueueMemberStatus per queue, each a state change
    assert asyncio.run(intervals(db_url)) == [
        ("priority", "PJSIP/2002", "ringing", None, False),
        ("intake", "PJSIP/2002", "ringing", None, False),
        ("priority", "PJSIP/2002", "on_call", None, False),
        ("intake", "PJSIP/2002", "on_call", None, False),
        ("priority", "PJSIP/2002", "available", None, True),
        ("intake", "PJSIP/2002", "available", None, True),
    ]
    counts = event_counts(db_url)
    assert sum(counts.values()) == 25  # of 43 events: no DTMF, Newstate, MOH, RTCP...
    assert counts["QueueMemberStatus"] == 6 and counts["Hangup"] == 2
    assert "DTMFEnd" not in counts and "NewConnectedLine" not in counts


def test_unfiltered_stream_keeps_the_same_rows(db_url: str, tmp_path: Path) -> None:
    """The read=all session of the same call (244 events, 98 KB) gives the same call
    row: the 117 VarSet, 30 AGIExec pairs... are dropped at the edge, counted."""
    replay(db_url, tmp_path, "a_answered_full")
    assert asyncio.run(calls(db_url)) == [CALL_A]
    assert "VarSet" not in event_counts(db_url)


def test_caller_abandons(db_url: str, tmp_path: Path) -> None:
    replay(db_url, tmp_path, "b_abandon")
    assert asyncio.run(calls(db_url)) == [call("intake", "1795856213.4", "abandoned", hold=23)]
    members = [("intake", f"PJSIP/{n}") for n in (2001, 2002, 2003)]
    assert asyncio.run(intervals(db_url)) == (
        [(q, i, "paused", "lab-abandon-test", False) for q, i in members]
        + [(q, i, "available", None, True) for q, i in members])


def test_ring_no_answer_then_answered_by_another_agent(db_url: str, tmp_path: Path) -> None:
    replay(db_url, tmp_path, "c_ringnoanswer")
    # RingTime is 6000 (ms) on AgentRingNoAnswer but 1 (s) on AgentConnect
    assert asyncio.run(calls(db_url)) == [
        call("priority", "1795856249.5", "answered", member="PJSIP/2002", hold=8, ring=1,
             talk=11, rna=1, reason="caller")]
    assert asyncio.run(intervals(db_url)) == [
        ("priority", "PJSIP/2004", "ringing", None, False),
        ("priority", "PJSIP/2004", "available", None, True),
        ("priority", "PJSIP/2002", "ringing", None, False),
        ("intake", "PJSIP/2002", "ringing", None, False),
        ("priority", "PJSIP/2002", "on_call", None, False),
        ("intake", "PJSIP/2002", "on_call", None, False),
        ("priority", "PJSIP/2002", "available", None, True),
        ("intake", "PJSIP/2002", "available", None, True),
    ]


def test_queue_timeout_is_not_an_abandon(db_url: str, tmp_path: Path) -> None:
    # Same QueueCallerAbandon + QueueCallerLeave as an abandon, but no HangupRequest first
    replay(db_url, tmp_path, "d_queue_timeout")
    assert asyncio.run(calls(db_url)) == [call("overflow", "1795856281.8", "timeout", hold=12)]


def test_join_empty_has_no_queue_events_until_the_dialplan_says_so(
        db_url: str, tmp_path: Path) -> None:
    cap = Capture.load("d_joinempty")
    replay(db_url, tmp_path, "d_joinempty")
    assert asyncio.run(calls(db_url)) == []
    # The dialplan (issue 4) reports QUEUESTATUS with a UserEvent; Asterisk sends it
    # with the caller's channel snapshot, built here from this capture's Hangup frame.
    hangup = next(f for f in cap.event_frames() if f.startswith(b"Event: Hangup\r\n"))
    snapshot = hangup.split(b"\r\n", 2)[2].split(b"Cause:")[0]
    user_event = (b"Event: UserEvent\r\nPrivilege: user,all\r\n" + snapshot
                  + b"UserEvent: SBQueueResult\r\nQueue: closed\r\nStatus: JOINEMPTY\r\n\r\n")
    asyncio.run(ingest(db_url, tmp_path, [frames_segment([user_event])]))
    rows = asyncio.run(calls(db_url))
    assert rows == [call("closed", "1795856304.9", "joined-empty", hold=None, position=None)]


def test_member_add_pause_unpause_remove(db_url: str, tmp_path: Path) -> None:
    replay(db_url, tmp_path, "e_member_actions")
    assert asyncio.run(calls(db_url)) == []
    assert asyncio.run(intervals(db_url)) == [
        ("intake", "PJSIP/2004", "available", None, False),   # QueueAdd
        ("intake", "PJSIP/2004", "paused", "Lunch", False),   # QueuePause Queue=intake
        ("intake", "PJSIP/2004", "available", None, False),   # unpause
        ("priority", "PJSIP/2004", "paused", "Meeting", False),  # pause without Queue
        ("intake", "PJSIP/2004", "paused", "Meeting", False),
        ("priority", "PJSIP/2004", "available", None, True),
        ("intake", "PJSIP/2004", "available", None, False),   # closed by QueueRemove
    ]


def _queue_log_oracle(since: int, until: int) -> dict[str, dict[str, Any]]:
    lines = queue_log.read(FIXTURES / "queue_log_ts", since, until)
    return {c.uniqueid: {"queue": c.queue, "outcome": c.outcome, "hold_s": c.hold_s,
                         "talk_s": c.talk_s, "rna_count": c.rna_count}
            for c in queue_log.fold(lines).values()}


def test_burst_of_50_calls_matches_asterisks_queue_log(db_url: str, tmp_path: Path) -> None:
    replay(db_url, tmp_path, "f_burst_50_calls_ts", node="pbx-a")
    rows = asyncio.run(calls(db_url))
    assert len(rows) == 50
    outcomes = [r["outcome"] for r in rows]
    assert outcomes.count("answered") == 13 and outcomes.count("abandoned") == 37
    got = {r["uniqueid"]: {k: r[k] for k in ("queue", "outcome", "hold_s", "talk_s",
                                             "rna_count")} for r in rows}
    assert got == _queue_log_oracle(1795859450, 1795859520)
    # every answered call carries the agent and Asterisk's ring time
    assert all(r["member_interface"] and r["ring_s"] is not None
               for r in rows if r["outcome"] == "answered")
    nodes = asyncio.run(fetch(db_url, "SELECT DISTINCT node FROM ami_event"))
    assert [r["node"] for r in nodes] == ["pbx-a"]  # from the SystemName header


def test_timestamped_runs_use_asterisk_time_and_match_queue_log(
        db_url: str, tmp_path: Path) -> None:
    replay(db_url, tmp_path, "a_answered_ts", "b_abandon_ts", "d_queue_timeout_ts",
           node="pbx-a")
    rows = asyncio.run(calls(db_url))
    got = {r["uniqueid"]: {k: r[k] for k in ("queue", "outcome", "hold_s", "talk_s",
                                             "rna_count")} for r in rows}
    assert got == _queue_log_oracle(1795859370, 1795859445)
    first = asyncio.run(fetch(
        db_url, "SELECT extract(epoch FROM event_time)::numeric(20,6) AS t, uniqueid, node"
        " FROM ami_event WHERE event = 'QueueCallerJoin' ORDER BY event_time LIMIT 1"))[0]
    # the Timestamp header of a_answered_ts' QueueCallerJoin, to the microsecond
    cap = Capture.load("a_answered_ts").event_frames()
    join = next(f for f in cap if f.startswith(b"Event: QueueCallerJoin"))
    stamp = join.split(b"Timestamp: ")[1].split(b"\r\n")[0].decode()
    assert str(first["t"]) == stamp
    assert (first["uniqueid"], first["node"]) == ("pbx-a-1795859365.0", "pbx-a")


@pytest.mark.parametrize("name", ["h1_reload_then_restart", "h2_reconnect_then_stop"])
def test_reload_and_restart_mid_stream(db_url: str, tmp_path: Path, name: str) -> None:
    """Reload events are stored, Shutdown closes the stream; the listener reconnects
    to the next connection and records the gap (no calls were open)."""
    cap = Capture.load(name)
    second = frames_segment(Capture.load("a_answered_filtered").event_frames())
    asyncio.run(ingest(db_url, tmp_path, [segment_from(cap), second]))
    counts = event_counts(db_url)
    if name == "h1_reload_then_restart":
        assert counts["Reload"] == 3 and counts["Shutdown"] == 1
    else:
        # logged in while Asterisk was booting: only the broadcast FullyBooted (Uptime 0)
        assert counts["Shutdown"] == 1 and counts["FullyBooted"] == 2
    assert asyncio.run(calls(db_url))[0]["outcome"] == "answered"
    gaps = asyncio.run(fetch(db_url, "SELECT reason, calls_closed FROM listener_gap"))
    assert len(gaps) == 1 and gaps[0]["calls_closed"] == 0


def test_replay_of_the_same_frames_never_doubles_a_row(db_url: str, tmp_path: Path) -> None:
    """A second listener (another spool) receiving the same timestamped frames —
    a standby taking over — adds no row: the key is (node, frame) when Timestamp is sent."""
    replay(db_url, tmp_path / "one", "a_answered_ts", node="pbx-a")
    before = event_counts(db_url)
    replay(db_url, tmp_path / "two", "a_answered_ts", node="pbx-a")
    after = event_counts(db_url)
    # Each login gets its own FullyBooted, sent without a Timestamp: two sessions, two
    # events.  Every timestamped event is stored once.
    assert after.pop("FullyBooted") == 2 and before.pop("FullyBooted") == 1
    assert after == before and sum(after.values()) == 21  # kept of the 39 timestamped
    assert len(asyncio.run(calls(db_url))) == 1


def test_options_are_respected(db_url: str, tmp_path: Path) -> None:
    """Session filter requested: Asterisk refuses it for a read-only user; the
    listener carries on with the edge filter."""
    options = ServerOptions(speed=None, filter_allowed=False)
    _, server = asyncio.run(ingest(
        db_url, tmp_path, [segment_from(Capture.load("d_queue_timeout"), close=False)],
        options=options, session_filter=True))
    assert server.stats.actions[:4] == ["challenge", "login", "filter", "queuestatus"]
    assert asyncio.run(calls(db_url))[0]["outcome"] == "timeout"
