"""The derived-state machine on its own: outcomes the captures do not contain."""

from __future__ import annotations

import itertools

from switchboard.ami_listener import events as ev
from switchboard.ami_listener.derive import Deriver
from switchboard.ami_listener.derived import member_state

_seq = itertools.count()


def item(domain: ev.Domain, t: int) -> ev.Item:
    n = next(_seq)
    return ev.Item(n, t * 1_000_000, n.to_bytes(16, "big"), None, domain)


def run(*steps: tuple[ev.Domain, int]) -> Deriver:
    d = Deriver("pbx-a")
    for domain, t in steps:
        d.apply(item(domain, t))
    return d


def only_call(d: Deriver) -> object:
    [call] = d.take_changes().calls.values()
    return call


def test_transfer_is_an_answered_call_with_its_own_outcome() -> None:
    d = run((ev.CallerJoin("u.1", "u.1", "intake", "5550001", None, 1), 0),
            (ev.CallerLeave("u.1", "intake"), 3),
            (ev.AgentConnect("u.1", "intake", "PJSIP/2001", "Alice", 3, 1), 3),
            (ev.AgentComplete("u.1", "intake", "PJSIP/2001", "Alice", 3, 40, "transfer"), 43))
    call = only_call(d)
    assert (call.outcome, call.hold_s, call.talk_s) == ("transferred", 3, 40)  # type: ignore[attr-defined]


def test_leaving_without_agent_or_abandon_is_left_empty() -> None:
    d = run((ev.CallerJoin("u.2", None, "intake", None, None, 1), 0),
            (ev.CallerLeave("u.2", "intake"), 30),
            (ev.Hangup("u.2"), 35))
    call = only_call(d)
    assert call.outcome == "left-empty" and call.ended_at_us == 30_000_000  # type: ignore[attr-defined]
    assert "u.2" not in d.calls  # forgotten once over


def test_dialplan_timeout_report_overrides() -> None:
    d = run((ev.CallerJoin("u.3", None, "overflow", None, None, 1), 0),
            (ev.HangupRequest("u.3"), 11),  # e.g. a hangup handler racing the timeout
            (ev.CallerAbandon("u.3", "overflow", 12), 12),
            (ev.QueueResult("u.3", "overflow", "TIMEOUT", None), 12))
    assert only_call(d).outcome == "timeout"  # type: ignore[attr-defined]


def test_out_of_order_timestamps_never_end_before_they_start() -> None:
    member = ev.MemberState("intake", "PJSIP/2001", "Alice", 1, False, None, False)
    busy = ev.MemberState("intake", "PJSIP/2001", "Alice", 2, False, None, True)
    d = run((member, 100), (busy, 99))  # a Timestamp a few µs earlier than the previous
    intervals = list(d.take_changes().intervals.values())
    assert all(i.ended_at_us is None or i.ended_at_us >= i.started_at_us for i in intervals)


def test_member_removed_closes_its_interval() -> None:
    member = ev.MemberState("intake", "PJSIP/2004", "Dave", 1, False, None, False)
    d = run((member, 0), (ev.MemberRemoved("intake", "PJSIP/2004"), 60))
    [interval] = d.take_changes().intervals.values()
    assert interval.ended_at_us == 60_000_000 and not d.members


def test_device_states() -> None:
    assert member_state(1, False, False) == "available"
    assert member_state(6, False, False) == "ringing"
    assert member_state(2, False, False) == "on_call"
    assert member_state(1, True, False) == "paused"
    assert member_state(5, False, False) == "unavailable"
    assert member_state(None, False, False) == "unknown"
    assert member_state(1, False, True) == "on_call"


def test_ringing_members_follow_agent_called_until_answer_or_end() -> None:
    """The agent panel's screen pop: whose phone rings for this caller now (a
    ringall queue rings several; AgentRingNoAnswer takes one off; the answer
    or the caller's end clears them)."""
    d = run((ev.CallerJoin("u.9", None, "overflow", "5550001", None, 1), 0),
            (ev.AgentCalled("u.9", "overflow", "PJSIP/2001"), 1),
            (ev.AgentCalled("u.9", "overflow", "PJSIP/2002"), 1),
            (ev.AgentCalled("u.9", "overflow", "PJSIP/2002"), 1))  # told twice: once
    assert d.calls["u.9"].ringing == ("PJSIP/2001", "PJSIP/2002")
    d.apply(item(ev.AgentRingNoAnswer("u.9", "overflow", "PJSIP/2001", 15000), 16))
    assert d.calls["u.9"].ringing == ("PJSIP/2002",)
    d.apply(item(ev.AgentConnect("u.9", "overflow", "PJSIP/2002", "Bob", 17, 16), 17))
    assert d.calls["u.9"].ringing == () and d.calls["u.9"].member_interface == "PJSIP/2002"
    d.apply(item(ev.AgentCalled("u.9", "intake", "PJSIP/2003"), 18))  # another queue's
    assert d.calls["u.9"].ringing == ()
    e = run((ev.CallerJoin("u.10", None, "intake", None, None, 1), 0),
            (ev.AgentCalled("u.10", "intake", "PJSIP/2001"), 1),
            (ev.HangupRequest("u.10"), 3),
            (ev.CallerAbandon("u.10", "intake", 3), 3))
    assert e.calls["u.10"].ringing == () and e.calls["u.10"].outcome == "abandoned"
