"""Calls through a real Asterisk 22 running the project's dialplan/ (see
conftest.py for the set-up).  Every scenario compares every queued call in the
database with Asterisk's own queue_log."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.live import sipp
from tests.live.calls import (
    agent_invites,
    caller,
    compare_with_queue_log,
    finish,
    national,
    run_calls,
    shown,
    start_calls,
    steps,
    uniqueids,
    uniqueids_all,
)
from tests.live.harness import (
    CASE_HIGH,
    CASE_MISSING,
    CASE_NORMAL,
    PIN,
    REGISTERED,
    WRONG_PIN,
    Live,
    Service,
    skip_reason,
)
from tests.live.tap import keep_queue_log

if (_reason := skip_reason()) is not None:  # one line for the whole tier
    pytest.skip(_reason, allow_module_level=True)

AGENTS = [0, 1, 2, 3]  # the phones that answer
NEVER_ANSWERS = 4


def test_start_up_has_no_error_or_warning(live: Live) -> None:
    """The project's configuration loads on a real Asterisk 22 without a single
    ERROR or WARNING line (first install, then start)."""
    assert live.node.problems() == []
    shown = live.node.rx("module show like res_agi")
    assert re.search(r"res_agi\.so .*Running", shown), shown


def test_a_verified_caller_reaches_an_agent_with_the_context(live: Live) -> None:
    asyncio.run(live.agents(AGENTS))
    since = time.time()
    number = REGISTERED[0]
    placed = asyncio.run(run_calls(live, [caller(number, "1001", case=CASE_HIGH)], tag="s1"))
    assert placed[0].rc == 0
    uid = asyncio.run(uniqueids(live, since))[national(number)]
    assert asyncio.run(steps(live, uid))[:3] == [("answered", ""), ("verify", "full"),
                                                 ("lookup", "found")]
    rows = asyncio.run(compare_with_queue_log(live, since))
    assert [(r["queue"], r["outcome"]) for r in rows.values()] == [("priority", "answered")]
    # the agent's leg: the caller name says who was verified how, with the case
    # reference (never the network's caller name); the headers say the same
    invites = agent_invites(live, number)
    assert len(invites) == 1, invites
    name, verified, ref = shown(invites[0])
    assert re.fullmatch(r"C[0-9A-F]{12}", ref), invites[0]
    assert (name, verified) == (f"V 42/1001 {ref}", "full")


def test_wrong_pins_lock_the_officer_and_nobody_is_cut_off(live: Live) -> None:
    """Three wrong PINs (failed), two more on the next call (the fifth locks),
    then the right PIN while locked: each caller still reaches an agent, marked
    UNVERIFIED with the reason.  The right PIN from a number that is not the
    agency's gets line-only: the agent is told to call back (CB)."""
    asyncio.run(live.agents(AGENTS))
    since = time.time()
    line, stranger = REGISTERED[1], live.unregistered_number()

    async def scenario() -> None:
        other = await start_calls(live, [caller(stranger, "1003", case=CASE_NORMAL)],
                                  tag="s2-other")
        for tag, pins in (("s2-a", [WRONG_PIN] * 3), ("s2-b", [WRONG_PIN] * 2),
                          ("s2-c", [PIN])):
            placed = await run_calls(live, [caller(line, "1002", pins=pins)], tag=tag)
            assert placed[0].rc == 0
        await finish(other)
    asyncio.run(scenario())
    calls = asyncio.run(uniqueids_all(live, since))
    by_number = {n: [asyncio.run(steps(live, u)) for u in uids] for n, uids in calls.items()}
    verify = {n: [dict(s).get("verify") for s in runs] for n, runs in by_number.items()}
    assert verify[national(line)] == ["failed", "locked", "locked"]
    assert verify[national(stranger)] == ["line-only"]
    seen = [shown(i) for i in agent_invites(live, line)]
    assert seen == [("UNVERIFIED failed", "failed", ""), ("UNVERIFIED locked", "locked", ""),
                    ("UNVERIFIED locked", "locked", "")]
    name, verified, ref = shown(agent_invites(live, stranger)[0])
    assert (name, verified) == (f"CB 42/1003 {ref}", "line-only") and ref
    rows = asyncio.run(compare_with_queue_log(live, since))
    assert sorted(r["outcome"] for r in rows.values()) == ["answered"] * 4
    status = asyncio.run(live.fetch(
        "SELECT failed_count, locked_until > now() AS locked FROM officer"
        " WHERE number = '1002'"))[0]
    assert status["locked"] and status["failed_count"] >= 5


def test_hang_up_in_queue_and_timeout_to_overflow_then_a_callback_row(live: Live) -> None:
    """With only an agent who never answers: one caller gives up in the queue
    (abandoned); another waits out intake, then overflow (timeouts, not
    abandons, although AMI calls both QueueCallerAbandon), and leaves a callback
    request: a row, with the case reference."""
    asyncio.run(live.agents([NEVER_ANSWERS]))
    since = time.time()
    gives_up, waits = REGISTERED[2], REGISTERED[3]
    placed = asyncio.run(run_calls(live, [
        caller(gives_up, "1004", case=CASE_NORMAL, patience_ms=3000),
        caller(waits, "1005", case=CASE_HIGH)], tag="s3"))
    assert [p.rc for p in placed] == [0, 0]
    rows = asyncio.run(compare_with_queue_log(live, since))
    ids = asyncio.run(uniqueids(live, since))
    outcome = {(r["uniqueid"], r["queue"]): r["outcome"] for r in rows.values()}
    assert outcome == {(ids[national(gives_up)], "intake"): "abandoned",
                       (ids[national(waits)], "priority"): "timeout",
                       (ids[national(waits)], "overflow"): "timeout"}
    assert ("callback", "stored") in asyncio.run(steps(live, ids[national(waits)]))
    request = asyncio.run(live.fetch(
        "SELECT ani, case_ref, status FROM callback_request WHERE uniqueid = $1",
        ids[national(waits)]))
    assert [(r["ani"], r["status"]) for r in request] == [(waits, "open")]
    assert request[0]["case_ref"] is not None


def test_join_empty_when_every_agent_is_paused_from_the_desk_phone(live: Live) -> None:
    """Registered phones log in (*11) and pause for lunch (*21): the queue
    refuses the caller at the door (JOINEMPTY, which app_queue does not log and
    AMI does not show: the dialplan's SBQueueResult event does), so does
    overflow, and the caller leaves a callback request."""
    asyncio.run(live.agents(AGENTS))
    for i in AGENTS:
        assert asyncio.run(live.feature(i, "*21")) == 0
    members = live.members()
    assert all("paused" in v for v in members.values()), members
    since = time.time()
    number = REGISTERED[4]
    placed = asyncio.run(run_calls(live, [caller(number, "1006", case=CASE_NORMAL)],
                                   tag="s4"))
    assert placed[0].rc == 0
    rows = asyncio.run(compare_with_queue_log(live, since))
    assert sorted((r["queue"], r["outcome"]) for r in rows.values()) == [
        ("intake", "joined-empty"), ("overflow", "joined-empty")]
    uid = asyncio.run(uniqueids(live, since))[national(number)]
    assert ("callback", "stored") in asyncio.run(steps(live, uid))
    paused = asyncio.run(live.fetch(
        "SELECT DISTINCT interface, reason FROM agent_state WHERE state = 'paused'"
        " AND ended_at IS NULL ORDER BY interface"))
    assert [(r["interface"], r["reason"]) for r in paused] == [
        (f"PJSIP/{live.node.phones[i].name}", "lunch") for i in AGENTS]


def test_a_burst_of_30_concurrent_calls(live: Live) -> None:
    """30 callers within about 1.5 s: every one verified and looked up, answered by
    one of four agents or, past the queues' waits, a callback request; every
    call in the database as queue_log has it."""
    asyncio.run(live.agents(AGENTS))
    since = time.time()
    cases = [CASE_HIGH, CASE_NORMAL, CASE_MISSING]
    numbers = REGISTERED[5:35]
    officers = [f"{1007 + i % 14}" for i in range(30)]
    placed = asyncio.run(run_calls(live, [
        caller(n, o, case=cases[i % 3]) for i, (n, o) in enumerate(zip(numbers, officers,
                                                                        strict=True))],
        tag="s5"))
    assert [p.rc for p in placed] == [0] * 30
    ids = asyncio.run(uniqueids(live, since))
    assert sorted(ids) == sorted(national(n) for n in numbers)
    for i, n in enumerate(numbers):
        got = dict(asyncio.run(steps(live, ids[national(n)])))
        assert (got.get("verify"), got.get("lookup")) == (
            "full", "not-found" if cases[i % 3] == CASE_MISSING else "found"), (n, got)
    rows = asyncio.run(compare_with_queue_log(live, since))
    answered = sum(r["outcome"] == "answered" for r in rows.values())
    callbacks = asyncio.run(live.fetch(
        "SELECT count(*) AS n FROM callback_request WHERE uniqueid = ANY($1)",
        list(ids.values())))[0]["n"]
    assert answered >= 4 and answered + callbacks == 30, (answered, callbacks)


def test_fastagi_killed_before_and_during_calls_the_process_fallback_answers(
        live: Live) -> None:
    """The FastAGI server killed (SIGKILL) before the calls: Asterisk cannot
    connect (AGISTATUS=FAILURE) and the dialplan runs the installed process
    AGI.  Killed during the calls, while they wait for digits: Asterisk reports
    the AGI as SUCCESS although no answer came, which the dialplan recognises
    (no SB_VERIFIED) and falls back too.  Either way the callers get the same
    results as over FastAGI."""
    asyncio.run(live.agents(AGENTS))
    try:
        live.agi.stop(signal.SIGKILL)
        since = time.time()
        before = [REGISTERED[35], live.unregistered_number()]
        placed = asyncio.run(run_calls(live, [caller(before[0], "1001", case=CASE_HIGH),
                                              caller(before[1], "1003", case=CASE_HIGH)],
                                       tag="s6-before"))
        assert [p.rc for p in placed] == [0, 0]
        ids = asyncio.run(uniqueids(live, since))
        # the second FastAGI server (AGI_SERVER2) is not running in this test either
        assert asyncio.run(steps(live, ids[national(before[0])]))[1:7] == [
            ("verify-second", "FAILURE"), ("verify-fallback", "FAILURE"), ("verify", "full"),
            ("lookup-second", "FAILURE"), ("lookup-fallback", "FAILURE"), ("lookup", "found")]
        assert dict(asyncio.run(steps(live, ids[national(before[1])])))["verify"] == \
            "line-only"
        name, verified, ref = shown(agent_invites(live, before[0])[-1])
        assert (name, verified) == (f"V 42/1001 {ref}", "full") and ref

        live.start_agi()
        during = [REGISTERED[36], REGISTERED[37]]

        async def kill_during() -> list[Any]:
            placed = await start_calls(live, [caller(n, "1001", case=CASE_HIGH,
                                                     first_ms=4500) for n in during],
                                       tag="s6-during")
            await asyncio.sleep(1.8)  # both calls are in the verify AGI, keying nothing yet
            live.agi.stop(signal.SIGKILL)
            await finish(placed)
            return placed
        placed = asyncio.run(kill_during())
        assert [p.rc for p in placed] == [0, 0]
        ids = asyncio.run(uniqueids(live, since))
        for n in during:
            assert asyncio.run(steps(live, ids[national(n)]))[1:7] == [
                ("verify-second", "SUCCESS"), ("verify-fallback", "FAILURE"),
                ("verify", "full"), ("lookup-second", "FAILURE"),
                ("lookup-fallback", "FAILURE"), ("lookup", "found")], n
            name, verified, ref = shown(agent_invites(live, n)[-1])
            assert (name, verified) == (f"V 42/1001 {ref}", "full") and ref
        rows = asyncio.run(compare_with_queue_log(live, since))
        assert len(rows) == 4
        # Asterisk's own WARNING "The FD we were waiting for has something waiting.
        # Waitfordigit returning numeric 1": GET DATA waits for digits while also
        # watching the FastAGI socket (so a script could interrupt it); the killed
        # server's socket turns readable (end of file), once per call in progress.
        fd_warnings = [x for x in live.node.problems()
                       if "The FD we were waiting for" in x and "ast_waitfordigit" not in x]
        assert len(fd_warnings) == len(during), fd_warnings
        audit = asyncio.run(live.fetch(
            "SELECT count(*) AS n FROM audit_log WHERE uniqueid = ANY($1)"
            " AND action = 'verify' AND result = 'full'", list(ids.values())))
        assert audit[0]["n"] == 3  # the stranger's is line-only
    finally:
        if live.agi.proc is None:
            live.start_agi()


def test_a_second_fastagi_server_answers_when_the_first_is_killed(live: Live) -> None:
    """Two FastAGI servers (AGI_SERVER, AGI_SERVER2): the first killed, the
    dialplan goes to the second before the process fallback; the callers get
    the same results."""
    asyncio.run(live.agents(AGENTS))
    env = {**live.env, "SB_AGI_LISTEN": f"127.0.0.1:{live.node.agi_port2}"}
    second = Service("agi-server-2", ["agi-server"], env,
                     live.sipp_dir.parent / "agi-server-2.log")
    second.start()
    try:
        live.wait_port(live.node.agi_port2)
        live.agi.stop(signal.SIGKILL)
        since = time.time()
        number = REGISTERED[40]  # a line no other scenario calls from
        placed = asyncio.run(run_calls(live, [caller(number, "1001", case=CASE_HIGH)],
                                       tag="s6b"))
        assert placed[0].rc == 0
        uid = asyncio.run(uniqueids(live, since))[national(number)]
        assert asyncio.run(steps(live, uid))[1:5] == [
            ("verify-second", "FAILURE"), ("verify", "full"),
            ("lookup-second", "FAILURE"), ("lookup", "found")]
        name, verified, ref = shown(agent_invites(live, number)[-1])
        assert (name, verified) == (f"V 42/1001 {ref}", "full") and ref
        assert uid in second.log_text()  # the second server took the call
    finally:
        second.stop()
        if live.agi.proc is None:
            live.start_agi()


def test_postgresql_stopped_mid_burst_fails_closed_and_loses_nothing(live: Live) -> None:
    """PostgreSQL stopped while ten callers key their PINs, started again ten
    seconds later: every verification answers error (fail closed: the caller
    reaches an agent marked UNVERIFIED error, nothing is disclosed), the
    listener spools what Asterisk sends and writes it all once the database is
    back, and every service keeps logging JSON (no plain-text tracebacks)."""
    asyncio.run(live.agents(AGENTS))
    since = time.time()
    numbers = REGISTERED[38:40] + [live.unregistered_number() for _ in range(8)]
    agi_log_mark = len(live.agi.log_text())

    async def scenario() -> list[Any]:
        placed = await start_calls(live, [caller(n, "1001", case=CASE_HIGH) for n in numbers],
                                   tag="s7")
        await asyncio.sleep(2.5)
        live.cluster.stop("fast")
        await asyncio.sleep(10)
        live.cluster.start()
        await finish(placed)
        return placed
    placed = asyncio.run(scenario())
    assert [p.rc for p in placed] == [0] * 10
    ids = asyncio.run(uniqueids(live, since))
    assert sorted(ids) == sorted(national(n) for n in numbers)  # nothing lost
    for n in numbers:
        assert dict(asyncio.run(steps(live, ids[national(n)])))["verify"] == "error", n
    for n in numbers[:4]:
        for invite in agent_invites(live, n):
            assert shown(invite)[:2] == ("UNVERIFIED error", "error")
    asyncio.run(compare_with_queue_log(live, since, limit_s=60))
    lines = live.agi.log_text()[agi_log_mark:].splitlines()
    assert lines and all(x.startswith("{") for x in lines), [x for x in lines
                                                             if not x.startswith("{")][:5]
    assert '"verify_database_unavailable"' in "\n".join(lines)
    assert "database_unavailable" in live.listener.log_text()


def _record(live: Live, mark: int, since: float, name: str) -> None:
    """With SB_LIVE_RECORD=DIR, keep the scenario's AMI connections (as the
    listener received them) and queue_log as fixtures for the fast tier."""
    directory = os.environ.get("SB_LIVE_RECORD")
    if directory:
        live.tap.save(mark, Path(directory), name)
        keep_queue_log(live.node.queue_log, since, Path(directory), name)


def _fresh_connection(live: Live) -> tuple[float, int]:
    """A new AMI connection for the scenario (so that its recording starts with a
    login, as a replay needs): returns (since, the tap's mark)."""
    logins = live.listener.log_text().count('"ami_logged_in"')
    mark = live.tap.mark()
    live.tap.cut(0)
    _relogged(live, logins)
    time.sleep(0.5)  # the QueueStatus reply after the login
    return time.time(), mark


def _fault_burst(live: Live, tag: str, fault: Callable[[], None], *, at_s: float = 11,
                 n: int = 10) -> float:
    """Ten calls a second apart (some talking, some waiting, some in the IVR
    when the fault strikes ``at_s`` seconds in); returns when it struck."""
    numbers = [live.unregistered_number() for _ in range(n)]
    struck = 0.0

    async def scenario() -> None:
        nonlocal struck
        placed = await start_calls(live, [caller(x, "1001", case=CASE_NORMAL)
                                          for x in numbers], tag=tag, stagger_s=0.8)
        await asyncio.sleep(at_s)
        struck = time.time()
        fault()
        await finish(placed, 90)
    asyncio.run(scenario())
    return struck


def _relogged(live: Live, logins: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while live.listener.log_text().count('"ami_logged_in"') <= logins:
        assert time.monotonic() < deadline, "the listener did not log in again"
        time.sleep(0.2)


async def _gaps(live: Live, since: float) -> list[Any]:
    return await live.fetch("SELECT started_at, ended_at, reason FROM listener_gap"
                            " WHERE ended_at >= to_timestamp($1) ORDER BY started_at", since)


def test_core_restart_mid_burst_every_call_is_right(live: Live) -> None:
    """``core restart now`` while calls are in the IVR, in the queue and talking:
    Asterisk hangs them all up and starts again.  Every call queue_log has is
    in the database once and equal to it, except that the calls the restart
    cut say ``cut`` (queue_log calls them ABANDON or COMPLETEAGENT)."""
    asyncio.run(live.agents(AGENTS))
    since, mark = _fresh_connection(live)
    logins = live.listener.log_text().count('"ami_logged_in"')
    struck = _fault_burst(live, "s8", lambda: live.node.rx("core restart now"), at_s=6)
    live.node.wait_booted()
    _relogged(live, logins)
    asyncio.run(live.agents(AGENTS))  # members come back from the desk phones' state
    _record(live, mark, since, "restart_mid_burst")
    rows = asyncio.run(compare_with_queue_log(live, since, limit_s=60, cut_at=struck))
    cut = [r for r in rows.values() if r["outcome"] == "cut"]
    assert any(r["answered_at"] is None for r in cut)  # waiting
    assert any(r["answered_at"] is not None for r in cut)  # talking
    shutdown = asyncio.run(live.fetch(
        "SELECT fields->>'Restart' AS restart FROM ami_event WHERE event = 'Shutdown'"
        " AND event_time >= to_timestamp($1)", since))
    assert [r["restart"] for r in shutdown] == ["True"]
    gaps = asyncio.run(_gaps(live, since))
    assert len(gaps) == 1 and gaps[0]["started_at"].timestamp() >= struck - 1.5, gaps


def test_listener_killed_mid_burst_every_call_is_right(live: Live) -> None:
    """The listener SIGKILLed while calls are queued and talking, started again
    six seconds later: what Asterisk sent meanwhile is gone from AMI; the gap
    is recorded from the last frame before the kill, and the reconciler makes
    every call equal queue_log."""
    asyncio.run(live.agents(AGENTS))
    since, mark = _fresh_connection(live)

    def kill() -> None:
        live.listener.stop(signal.SIGKILL)
        time.sleep(6)
        live.start_listener()
    struck = _fault_burst(live, "s9", kill)
    _record(live, mark, since, "listener_killed")
    asyncio.run(compare_with_queue_log(live, since, limit_s=60))
    gaps = asyncio.run(_gaps(live, since))
    assert len(gaps) == 1, gaps
    assert gaps[0]["started_at"].timestamp() <= struck
    assert gaps[0]["ended_at"].timestamp() >= struck + 6


def test_connection_dropped_mid_burst_every_call_is_right(live: Live) -> None:
    """The network between listener and Asterisk down for eight seconds
    mid-burst (the tap drops the connection and refuses new ones): the gap is
    exact and every call equals queue_log."""
    asyncio.run(live.agents(AGENTS))
    since, mark = _fresh_connection(live)
    logins = live.listener.log_text().count('"ami_logged_in"')
    struck = _fault_burst(live, "s10", lambda: live.tap.cut(8))
    _relogged(live, logins)
    _record(live, mark, since, "connection_dropped")
    asyncio.run(compare_with_queue_log(live, since, limit_s=60))
    gaps = asyncio.run(_gaps(live, since))
    assert len(gaps) == 1, gaps
    assert struck - 1.5 <= gaps[0]["started_at"].timestamp() <= struck  # pings every 1 s
    assert gaps[0]["ended_at"].timestamp() >= struck + 8


def test_ops_deploy_a_site_file_to_the_running_node_then_roll_back(live: Live) -> None:
    """An ops change on the live node: a DID added to the site's dids.conf is
    checked, written, reloaded and confirmed by Asterisk itself; a call to it
    is answered by the line.  Rollback takes it away again."""
    dids = live.node.site_src / "dids.conf"
    original = dids.read_text()
    new_did = "6155550177"
    dids.write_text(original + f"exten => {new_did},1,Goto(sb-inbound,s,1)\n")
    try:
        out = live.node.switchboard("dialplan", "deploy", "--confdir", str(live.node.etc),
                                    "--site", str(live.node.site_src), env=live.env)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "site/dids.conf: +1 -0" in out.stdout
        assert "dialplan reload: Dialplan reloaded." in out.stdout
        assert re.search(r"confirmed: \d+ modules running, 22 contexts", out.stdout), out.stdout

        def answered(number: str) -> bool:
            since = time.time()
            c = sipp.Caller(national(number), (), 3000, new_did)
            placed = asyncio.run(run_calls(live, [c], tag="ops"))
            assert placed[0].rc == 0
            uid = asyncio.run(uniqueids(live, since))[national(number)]
            return ("answered", "") in asyncio.run(steps(live, uid))
        assert answered(live.unregistered_number())
        back = live.node.switchboard("dialplan", "rollback", "--confdir", str(live.node.etc),
                                     env=live.env)
        assert back.returncode == 0, back.stdout + back.stderr
        assert "rolled back 1 file(s)" in back.stdout
        assert not answered(live.unregistered_number())  # unknown DID: ss-noservice
        rows = asyncio.run(live.fetch(
            "SELECT action, result FROM audit_log WHERE action LIKE 'dialplan-%'"
            " ORDER BY at"))
        assert [(r["action"], r["result"]) for r in rows][-2:] == [
            ("dialplan-deploy", "ok"), ("dialplan-rollback", "ok")]
    finally:
        dids.write_text(original)


def test_the_whole_runs_audit_log_is_signed_and_checkpointed(live: Live) -> None:
    """Every audit row this run wrote (FastAGI, the process fallback after the
    FastAGI server was killed, ops) carries its signature, and the AGI
    service's checkpoints agree with the rows: ``audit verify`` exits 0."""
    anchored = live.node.switchboard("audit", "anchor", env=live.env)
    assert anchored.returncode == 0, anchored.stdout + anchored.stderr
    out = live.node.switchboard("audit", "verify", env=live.env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "every one signed" in out.stdout
