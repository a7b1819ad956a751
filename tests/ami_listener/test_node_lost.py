"""A node that dies (issue 23): its AMI connection drops and nothing answers
again.  After SB_NODE_LOST_S the listener says the node is lost: its open
calls end as cut with a reason naming it, its agents are not counted, the
wall board's figures show it down, and a caller it had verified in full gets a
callback request to the agency's registered line.  Recorded bytes over a real
socket into the real listener and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

from switchboard.ami_listener import events as ev
from switchboard.ami_listener.captures import Capture, frames_segment
from switchboard.ami_listener.derive import Deriver
from switchboard.ami_listener.replay import ServerOptions
from tests.ami_listener.test_gaps_and_cuts import CONNECT, JOIN, UID, feed, item, member
from tests.helpers import calls, fetch, ingest

ABANDON = Capture.load("b_abandon").event_frames()
JOIN_AT = next(i for i, f in enumerate(ABANDON) if f.startswith(b"Event: QueueCallerJoin"))
REGISTERED = "+16155550101"


def test_a_lost_node_cuts_its_calls_and_closes_its_agents() -> None:
    d = feed(Deriver("pbx-a"), (ev.Connected(1), 100.0), (member(False), 100.05),
             (JOIN, 100.1), (CONNECT, 104.0))
    d.take_changes()
    d.apply(item(ev.NodeLost("no answer", 105_000_000), 111.0))
    changes = d.take_changes()
    [call] = [c for c in changes.calls.values() if c.uniqueid == UID]
    assert (call.outcome, call.complete_reason, call.ended_at_us) == (
        "cut", "node pbx-a lost", 105_000_000)
    assert call.answered_at_us is not None  # it was talking: answered, then cut
    assert [iv.ended_at_us for iv in changes.intervals.values()] == [105_000_000]
    assert changes.node_state == ("lost", 105_000_000, "no answer")
    assert not d.members


def test_the_node_dies_mid_call(db_url: str, tmp_path: Path) -> None:
    async def seed() -> None:
        await fetch(db_url, "INSERT INTO verify_attempt (uniqueid, channel, ani, agency,"
                    " officer, status, line_ok, begun_xid, finished_at, outcome)"
                    " VALUES ('1795856213.4', 'PJSIP/pstn-00000004', $1, '42', '1001', 'ok',"
                    " true, 1, now(), 'full')", REGISTERED)
        # a caller of the same node verified in full and still in the IVR (not
        # queued, no hangup): lost with the node too
        await fetch(db_url, "INSERT INTO verify_attempt (uniqueid, channel, ani, agency,"
                    " officer, status, line_ok, begun_xid, finished_at, outcome)"
                    " VALUES ('pbx-a-1795856299.9', 'PJSIP/pstn-00000009', $1, '42', '1002',"
                    " 'ok', true, 1, now(), 'full')", REGISTERED)
        # one of another node: not this node's to call back
        await fetch(db_url, "INSERT INTO verify_attempt (uniqueid, channel, ani, agency,"
                    " officer, status, line_ok, begun_xid, finished_at, outcome)"
                    " VALUES ('pbx-b-1795856299.3', 'PJSIP/pstn-00000003', $1, '42', '1003',"
                    " 'ok', true, 1, now(), 'full')", REGISTERED)
    asyncio.run(seed())

    async def cut() -> bool:
        rows = await fetch(db_url, "SELECT outcome FROM queue_call")
        return bool(rows) and rows[0]["outcome"] == "cut"
    # the connection drops after the caller joined, and nobody answers again
    asyncio.run(ingest(db_url, tmp_path, [frames_segment(ABANDON[:JOIN_AT + 1], close=True)],
                       options=ServerOptions(speed=None, refuse_after=True), node="pbx-a",
                       until=cut, node_lost_s=0.6, backoff_max_s=0.2))
    [call] = asyncio.run(calls(db_url))
    assert (call["outcome"], call["complete_reason"]) == ("cut", "node pbx-a lost")
    requests = asyncio.run(fetch(db_url, "SELECT uniqueid, ani, origin FROM callback_request"
                                 " ORDER BY uniqueid"))
    assert [(r["uniqueid"], r["ani"], r["origin"]) for r in requests] == [
        ("1795856213.4", REGISTERED, "node-lost"),  # queued (the recording's own uniqueid)
        ("pbx-a-1795856299.9", REGISTERED, "node-lost")]  # in the IVR
    [node] = asyncio.run(fetch(db_url, "SELECT * FROM sb_node_figures()"))
    assert (node["node"], node["state"], node["agents"]) == ("pbx-a", "lost", 0)
