"""Asterisk's security events and the dialplan's 911 and outbound events, as a
real Asterisk 22.10.1 sent them to the listener during the live tier's edge
scenarios (tests/fixtures/asterisk/security/edge_guessing.c1: a stranger's
probes, a forged carrier call, two 911 calls, the panel's outbound calls
refused and granted, 200 password guesses over TLS until the ban).  Replayed
into the real listener and PostgreSQL: stored like every event, counted by
name, the wall board notified, and the edge's figures read from them."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from switchboard.ami_listener.captures import FIXTURES, Capture, segment_from
from switchboard.ami_listener.fields import SECURITY_EVENTS
from tests.helpers import fetch, ingest

DIRECTORY = FIXTURES / "security"
RECORDED = Capture.load("edge_guessing.c1", DIRECTORY)


def recorded_names() -> Counter[str]:
    names: Counter[str] = Counter()
    for _, frame in RECORDED.timed_frames():
        if frame.startswith(b"Event: "):
            names[frame[7:frame.find(b"\r\n")].decode()] += 1
    return names


def test_security_events_are_stored_counted_and_notified(db_url: str, tmp_path: Path) -> None:
    names = recorded_names()
    security = {n: c for n, c in names.items() if n in SECURITY_EVENTS}
    # what the recording holds: failures only (the AMI user filters out the
    # challenges and the successes)
    assert security == {"ChallengeResponseFailed": 27, "InvalidAccountID": 11}
    assert "SuccessfulAuth" not in names and "ChallengeSent" not in names

    async def scenario() -> tuple[Any, list[str]]:
        heard: list[str] = []
        conn = await asyncpg.connect(db_url)
        await conn.add_listener("sb_live", lambda *a: heard.append(a[3]))
        try:
            listener, _ = await ingest(db_url, tmp_path, [segment_from(RECORDED)],
                                       node="sb-live")
            await asyncio.sleep(0.2)
        finally:
            await conn.close()
        return listener, heard
    listener, heard = asyncio.run(scenario())
    stored = asyncio.run(fetch(db_url, "SELECT event, count(*) AS n FROM ami_event WHERE "
                               "event = ANY($1) GROUP BY event", sorted(SECURITY_EVENTS)))
    assert {r["event"]: r["n"] for r in stored} == security
    metric = listener.metrics.security
    for name, n in security.items():
        assert metric.labels("sb-live", name)._value.get() == n
    assert "edge" in heard  # the wall board refreshes at once

    since = datetime(2000, 1, 1, tzinfo=UTC)
    failing = asyncio.run(fetch(db_url, "SELECT * FROM sb_edge_failing($1)",
                                since))
    # the guesser first, with every one of its failures; the stranger's probes next
    assert failing[0]["address"] == "127.0.0.9"
    assert sum(r["failures"] for r in failing) == sum(security.values())
    figures = asyncio.run(fetch(db_url, "SELECT * FROM sb_edge_figures($1)",
                                since))[0]
    assert figures["auth_failures"] == sum(security.values())
    assert figures["emergency_calls"] == 2
    calls = asyncio.run(fetch(db_url, "SELECT * FROM sb_edge_emergencies($1)",
                              since))
    assert [(r["phone"], r["elin"], r["status"]) for r in calls] == [
        ("2003", "+16155550190", "ANSWER")] * 2
    assert all(r["ended_at"] > r["started_at"] for r in calls)
    # the outbound gate's decisions are in the stream too (the rows are the
    # AGI service's; these are what the node said)
    refused = asyncio.run(fetch(db_url, "SELECT fields->>'Reason' AS r FROM ami_event WHERE "
                                "event = 'UserEvent' AND fields->>'UserEvent' = 'SBOutbound' "
                                "AND fields->>'Step' = 'refused' ORDER BY event_time"))
    assert [r["r"] for r in refused] == ["minutes", "legs"]
