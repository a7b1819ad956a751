"""Faults on the derived rows, one rule at a time: exact gaps, calls an
Asterisk shutdown or restart cut, late events after a gap, talking calls whose
end fell in a gap.  The recorded fault scenarios are in test_fault_recordings.py."""

from __future__ import annotations

import itertools

from switchboard.ami_listener import events as ev
from switchboard.ami_listener.derive import Deriver
from switchboard.ami_listener.derived import Call

_seq = itertools.count()
UID = "pbx-a-1795859391.2"


def item(domain: ev.Domain, t: float) -> ev.Item:
    n = next(_seq)
    return ev.Item(n, int(t * 1_000_000), n.to_bytes(16, "big"), None, domain)


def feed(d: Deriver, *steps: tuple[ev.Domain, float]) -> Deriver:
    for domain, t in steps:
        d.apply(item(domain, t))
    return d


def the_call(d: Deriver) -> Call:
    calls = [c for c in d.take_changes().calls.values() if c.uniqueid == UID]
    assert len(calls) == 1
    return calls[0]


JOIN = ev.CallerJoin(UID, UID, "intake", "5550001", "Caller", 1)
CONNECT = ev.AgentConnect(UID, "intake", "PJSIP/2001", "Agent 2001", 6, 2)
COMPLETE = ev.AgentComplete(UID, "intake", "PJSIP/2001", "Agent 2001", 6, 40, "agent")
ABANDON = ev.CallerAbandon(UID, "intake", 7)


def member(in_call: bool) -> ev.MemberState:
    return ev.MemberState("intake", "PJSIP/2001", "Agent 2001", 2 if in_call else 1, False,
                          None, in_call, snapshot=True)


def test_a_first_start_is_not_a_gap() -> None:
    d = feed(Deriver("pbx-a"), (ev.Connected(1), 100.0), (JOIN, 100.1))
    assert not d.take_changes().gaps


def test_a_gap_runs_from_the_last_bytes_before_the_loss_to_the_login() -> None:
    d = feed(Deriver("pbx-a"), (ev.Connected(1), 100.0), (JOIN, 101.0), (ev.Alive(), 105.0),
             (ev.Disconnected("closed", 105_500_000), 106.0), (ev.Connected(2), 130.0))
    [gap] = d.take_changes().gaps.values()
    assert (gap.started_at_us, gap.ended_at_us) == (105_500_000, 130_000_000)


def test_after_a_listener_restart_the_gap_starts_at_the_checkpoint() -> None:
    # a SIGKILL writes no "disconnected": the last frame committed (or its
    # heartbeat) is where the listener stopped knowing
    d = feed(Deriver("pbx-a", last_seen_us=200_000_000), (ev.Connected(1), 230.0))
    [gap] = d.take_changes().gaps.values()
    assert (gap.started_at_us, gap.ended_at_us, gap.reason) == (
        200_000_000, 230_000_000, "listener restarted")


def test_waiting_callers_cut_by_a_restart_are_cut_not_timeouts() -> None:
    d = feed(Deriver("pbx-a"), (ev.Connected(1), 100.0), (JOIN, 101.0),
             (ev.SoftHangup(UID, 4), 108.0), (ABANDON, 108.0), (ev.Hangup(UID), 108.1),
             (ev.AsteriskShutdown(restart=True), 108.5))
    call = the_call(d)
    assert (call.outcome, call.complete_reason, call.hold_s) == ("cut", "restart", 7)


def test_a_soft_hangup_for_another_reason_is_no_cut() -> None:
    # Cause 2 (an async goto, e.g. a redirect) and the caller's own hang-up stay
    # what they were
    d = feed(Deriver("pbx-a"), (ev.Connected(1), 100.0), (JOIN, 101.0),
             (ev.SoftHangup(UID, 2), 103.0), (ev.HangupRequest(UID), 108.0), (ABANDON, 108.0))
    assert the_call(d).outcome == "abandoned"


def test_a_talking_call_cut_by_a_shutdown_is_answered_and_cut() -> None:
    d = feed(Deriver("pbx-a"), (ev.Connected(1), 100.0), (JOIN, 101.0), (CONNECT, 107.0),
             (ev.SoftHangup(UID, 4), 147.0), (COMPLETE, 147.0),
             (ev.AsteriskShutdown(restart=False), 148.0))
    call = the_call(d)
    assert (call.outcome, call.complete_reason, call.talk_s) == ("cut", "shutdown", 40)
    assert call.answered_at_us == 107_000_000  # the figures count it as answered


def test_calls_still_open_at_the_shutdown_event_are_cut_then() -> None:
    d = feed(Deriver("pbx-a"), (ev.Connected(1), 100.0), (JOIN, 101.0),
             (ev.AsteriskShutdown(restart=True), 120.0))
    call = the_call(d)
    assert (call.outcome, call.ended_at_us, call.complete_reason) == (
        "cut", 120_000_000, "restart")


def _through_a_gap(*after: tuple[ev.Domain, float], in_call: bool = False,
                   answered: bool = False) -> Deriver:
    d = feed(Deriver("pbx-a"), (ev.Connected(1), 100.0), (JOIN, 101.0),
             *([(CONNECT, 103.0)] if answered else []),
             (ev.Disconnected("closed", 104_000_000), 104.0), (ev.Connected(2), 110.0),
             (member(in_call), 110.1), (ev.ResyncComplete(True), 110.2))
    return feed(d, *after)


def test_a_waiting_call_gone_after_a_gap_is_unknown_until_its_late_events_say() -> None:
    d = _through_a_gap()
    call = the_call(d)
    assert (call.outcome, call.ended_at_us) == ("unknown", 110_000_000)
    # answered while nobody listened: its AgentComplete still comes
    feed(d, (COMPLETE, 150.0))
    call = the_call(d)
    assert (call.outcome, call.talk_s, call.ended_at_us) == ("answered", 40, 150_000_000)
    assert call.gap_key is not None  # it crossed the gap, and says which


def test_an_unknown_call_answered_late_is_open_again() -> None:
    d = _through_a_gap((CONNECT, 111.0))
    call = the_call(d)
    assert (call.outcome, call.ended_at_us) == ("answered", None)


def test_a_talking_call_whose_agent_is_free_after_the_gap_ended_in_it() -> None:
    d = _through_a_gap(answered=True, in_call=False)
    call = the_call(d)
    assert (call.outcome, call.ended_at_us, call.complete_reason) == (
        "answered", 110_000_000, "gap")


def test_a_talking_call_whose_agent_is_still_in_a_call_stays_open() -> None:
    d = _through_a_gap((COMPLETE, 200.0), answered=True, in_call=True)
    call = the_call(d)
    assert (call.outcome, call.talk_s, call.ended_at_us, call.complete_reason) == (
        "answered", 40, 200_000_000, "agent")


def test_a_blind_transfer_names_its_target() -> None:
    d = feed(Deriver("pbx-a"), (ev.Connected(1), 100.0), (JOIN, 101.0), (CONNECT, 103.0),
             (ev.Transfer(UID, "6155550142@sb-transfer"), 130.0),
             (ev.AgentComplete(UID, "intake", "PJSIP/2001", "Agent 2001", 6, 27, "transfer"),
              130.0))
    call = the_call(d)
    assert (call.outcome, call.transfer_target) == ("transferred", "6155550142@sb-transfer")


def test_a_talking_call_is_over_when_its_agent_answers_another() -> None:
    """Its end fell in a gap and its agent was in a call at the resync (maybe
    this one, maybe the next): once the agent answers another call, it cannot
    still be talking to this one (ringinuse=no)."""
    other = "pbx-a-1795859400.9"
    d = _through_a_gap(answered=True, in_call=True)
    d.take_changes()
    feed(d, (ev.CallerJoin(other, other, "intake", "5550002", None, 1), 120.0),
         (ev.AgentConnect(other, "intake", "PJSIP/2001", "Agent 2001", 2, 1), 122.0))
    call = the_call(d)
    assert (call.outcome, call.ended_at_us, call.complete_reason) == (
        "answered", 122_000_000, "gap")
