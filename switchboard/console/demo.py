"""``switchboard demo``: the real listener against recorded Asterisk traffic, and
the real FastAGI service against scripted callers (switchboard/agi/demo.py).

A loopback AMI server replays the captures of real Asterisk 22.10.1 calls
(answered, abandoned, ring-no-answer, queue timeout, member actions, a 50-call
burst) with fresh uniqueids and Timestamps moved to now, at ``speed`` times real
pace.  The listener is the production code path; only the AMI endpoint differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from datetime import UTC, datetime

from switchboard import db, log
from switchboard.ami_listener.captures import Capture, Refresher, Segment
from switchboard.ami_listener.replay import ReplayServer, ServerOptions
from switchboard.ami_listener.service import Listener
from switchboard.console.demo_agi import print_agi_summary, run_agi_traffic
from switchboard.figures.summary import print_summary
from switchboard.pgcluster import free_port, port_free
from switchboard.settings import AmiNode, Settings, site_tz
from switchboard.web.wallboard import Board, BoardConfig, token_from

DEMO_CAPTURES = ("a_answered_ts", "b_abandon_ts", "c_ringnoanswer", "d_queue_timeout_ts",
                 "e_member_actions", "f_burst_50_calls_ts")
DEMO_NODE = "pbx-a"  # the systemname in the *_ts captures


def build_segment(rounds: int, *, pause_s: float = 1.0, speed: float = 1.0
                  ) -> tuple[Segment, float]:
    """All captures, ``rounds`` times, and the recorded duration of the whole;
    Timestamps are moved to now and compressed by ``speed``, so each event's
    time is when the replay sends it."""
    refresher = Refresher()
    chunks: list[tuple[float, bytes]] = []
    t0 = 0.0
    now = datetime.now(UTC).timestamp()
    for _ in range(rounds):
        for name in DEMO_CAPTURES:
            timed = Capture.load(name).timed_frames()
            frames = refresher.frames([f for _, f in timed], shift_to=now + t0 / speed,
                                      scale=1 / speed)
            chunks.extend((t0 + t, f) for (t, _), f in zip(timed, frames, strict=True))
            t0 += (timed[-1][0] if timed else 0.0) + pause_s
    return Segment(chunks, close_at_end=False), (chunks[-1][0] if chunks else 0.0)


async def start_board(settings: Settings, url: str) -> Board | None:
    """The wall board for the demo, on SB_WALLBOARD_LISTEN (127.0.0.1:8088) or a
    free port when that one is taken; None when it cannot start."""
    token, _ = token_from(dict(os.environ), settings.state_dir)
    host, _, port_s = os.environ.get("SB_WALLBOARD_LISTEN", "127.0.0.1:8088").rpartition(":")
    port = int(port_s) if port_free(int(port_s)) else free_port()
    board = Board(url, BoardConfig(host=host or "127.0.0.1", port=port, token=token,
                                   tz=site_tz(os.environ), metrics_port=0))
    try:
        await board.start()
    except OSError as exc:
        log.get("demo").warning("wallboard_not_started", error=str(exc)[:200])
        return None
    print(f"wall board: http://{board.cfg.host}:{board.port}/?token={token}", flush=True)
    return board


async def run_demo(settings: Settings, *, speed: float, rounds: int,
                   hold_s: float = 0.0) -> int:
    logger = log.get("demo")
    url = db.database_url(settings)
    applied = await db.migrate(url)
    if applied:
        logger.info("migrations_applied", names=applied)
    board = await start_board(settings, db.service_url(settings, "reports"))
    segment, recorded_s = build_segment(max(1, rounds), speed=speed)
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
    runner = Listener(listener, db.service_url(settings, "listener"))
    await runner.start()
    try:
        agi = asyncio.ensure_future(run_agi_traffic(settings, url, db.service_url(settings, "agi"),
                                                    rounds=max(1, rounds)))
        await server.finished.wait()
        async with asyncio.timeout(60):
            await runner.wait_idle()
        got = await agi
        if board is not None and hold_s > 0:
            print(f"wall board stays up for {hold_s:.0f} s (Ctrl-C to stop)", flush=True)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(hold_s)
    finally:
        await runner.stop()
        await server.close()
        if board is not None:
            await board.stop()
    print()
    await print_summary(url, started, written_since=True, tz=site_tz(os.environ))
    await print_agi_summary(url, started, got)
    return 0
