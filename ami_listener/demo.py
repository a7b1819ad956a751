"""``switchboard demo``: the real listener against recorded Asterisk traffic, and
the real FastAGI service against scripted callers (agi/demo.py).

A loopback AMI server replays the captures of real Asterisk 22.10.1 calls
(answered, abandoned, ring-no-answer, queue timeout, member actions, a 50-call
burst) with fresh uniqueids and Timestamps moved to now, at ``speed`` times real
pace.  The listener is the production code path; only the AMI endpoint differs.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

from agi.demo import print_agi_summary, run_agi_traffic
from ami_listener.replay import Capture, Refresher, ReplayServer, Segment, ServerOptions
from ami_listener.service import Listener
from switchboard import db, log
from switchboard.settings import AmiNode, Settings
from switchboard.summary import print_summary

DEMO_CAPTURES = ("a_answered_ts", "b_abandon_ts", "c_ringnoanswer", "d_queue_timeout_ts",
                 "e_member_actions", "f_burst_50_calls_ts")
DEMO_NODE = "pbx-a"  # the systemname in the *_ts captures


def build_segment(rounds: int, *, pause_s: float = 1.0) -> tuple[Segment, float]:
    """All captures, ``rounds`` times, and the recorded duration of the whole."""
    refresher = Refresher()
    chunks: list[tuple[float, bytes]] = []
    t0 = 0.0
    now = datetime.now(UTC).timestamp()
    for _ in range(rounds):
        for name in DEMO_CAPTURES:
            timed = Capture.load(name).timed_frames()
            frames = refresher.frames([f for _, f in timed], shift_to=now + t0)
            chunks.extend((t0 + t, f) for (t, _), f in zip(timed, frames, strict=True))
            t0 += (timed[-1][0] if timed else 0.0) + pause_s
    return Segment(chunks, close_at_end=False), (chunks[-1][0] if chunks else 0.0)


async def run_demo(settings: Settings, *, speed: float, rounds: int) -> int:
    logger = log.get("demo")
    url = db.database_url(settings)
    applied = await db.migrate(url)
    if applied:
        logger.info("migrations_applied", names=applied)
    segment, recorded_s = build_segment(max(1, rounds))
    server = ReplayServer([segment], ServerOptions(speed=speed))
    port = await server.start()
    duration = recorded_s / speed
    logger.info("demo_replaying", captures=list(DEMO_CAPTURES), rounds=rounds, speed=speed,
                expected_seconds=round(duration, 1),
                ami=f"127.0.0.1:{port}")
    listener = dataclasses.replace(
        settings.listener,
        nodes=(AmiNode(DEMO_NODE, "127.0.0.1", port, "listener", "listenerpass"),),
        spool_dir=settings.state_dir / "demo-spool")
    started = datetime.now(UTC)
    runner = Listener(listener, url)
    await runner.start()
    try:
        agi = asyncio.ensure_future(run_agi_traffic(settings, url, rounds=max(1, rounds)))
        await server.finished.wait()
        async with asyncio.timeout(60):
            await runner.wait_idle()
        got = await agi
    finally:
        await runner.stop()
        await server.close()
    print()
    await print_summary(url, started, written_since=True)
    await print_agi_summary(url, started, got)
    return 0
