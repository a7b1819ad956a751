"""A standby listener per node (issue 13): two listener processes for one
Asterisk node, each with its own spool; the lease holder works, the other
waits.  Killed or hung, the working one is replaced within 5 s; nothing is
written twice (frames without a Timestamp included: the f_burst_50_calls
capture has none), and a hung listener that wakes up after the takeover writes
nothing more and exits non-zero."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from switchboard.ami_listener.captures import Capture, frames_segment
from switchboard.ami_listener.replay import ReplayServer, ServerOptions
from tests.ami_listener.test_faults import (
    assert_whole_burst,
    counts,
    kept,
    second_connection,
    waiting,
)
from tests.helpers import fetch, listener_process_env

LEASE_S = "2.5"
CMD = [sys.executable, "-m", "switchboard.console.cli", "ami-listener"]


def events(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


async def until(check: Any, limit_s: float = 30) -> float:
    """Wait for ``check()`` (sync or async) to be true; the time it became so."""
    async with asyncio.timeout(limit_s):
        while True:
            got = check()
            if asyncio.iscoroutine(got):
                got = await got
            if got:
                return time.monotonic()
            await asyncio.sleep(0.05)


async def two_listeners(db_url: str, tmp: Path, fault: str) -> dict[str, Any]:
    burst = Capture.load("f_burst_50_calls").event_frames()
    half = len(burst) // 2
    out: dict[str, Any] = {"burst": burst}
    server = ReplayServer([frames_segment(burst[:half]), frames_segment(burst[half:])],
                          ServerOptions(speed=None,
                                        queue_status=second_connection(waiting(burst[:half]))))
    port = await server.start()
    procs = {}
    logs = {}
    try:
        for name in ("a", "b"):
            (tmp / name).mkdir()
            env = listener_process_env(db_url, tmp / name, SB_LISTENER_LEASE_S=LEASE_S,
                                       SB_AMI_NODES=f"lab@127.0.0.1:{port}")
            logs[name] = tmp / f"{name}.log"
            procs[name] = await asyncio.create_subprocess_exec(
                *CMD, env=env, stdout=asyncio.subprocess.DEVNULL,
                stderr=logs[name].open("wb"))
            if name == "a":  # a works the node and commits the first half
                await until(lambda: _has(logs["a"], "ami_logged_in"))
                await until(lambda: _count_at_least(db_url, kept(burst[:half])))
        await until(lambda: _has(logs["b"], "listener_standby"))
        lease = await fetch(db_url, "SELECT holder FROM listener_lease WHERE node = 'lab'")
        out["holder_pid"] = int(lease[0]["holder"].split(":")[1])
        out["a_pid"] = procs["a"].pid
        t0 = time.monotonic()
        procs["a"].send_signal(signal.SIGKILL if fault == "kill" else signal.SIGSTOP)
        t1 = await until(lambda: _has(logs["b"], "listener_takes_over"), limit_s=15)
        out["takeover_s"] = t1 - t0
        await until(lambda: _count_at_least(db_url, kept(burst)), limit_s=60)
        if fault == "hang":  # a wakes up: it must see the lease is gone, and stop
            procs["a"].send_signal(signal.SIGCONT)
            out["a_status"] = await asyncio.wait_for(procs["a"].wait(), 20)
            out["a_lost"] = _has(logs["a"], "listener_lease_lost")
        else:
            out["a_status"] = await procs["a"].wait()
        await asyncio.sleep(1.5)  # a batch window or two: nothing more must arrive
        procs["b"].send_signal(signal.SIGTERM)
        out["b_status"] = await asyncio.wait_for(procs["b"].wait(), 30)
    finally:
        for p in procs.values():
            if p.returncode is None:
                p.send_signal(signal.SIGCONT)
                p.send_signal(signal.SIGKILL)
                await p.wait()
        await server.close()
    return out


def _has(log: Path, event: str) -> bool:
    return log.exists() and any(e.get("event") == event for e in events(log))


async def _count_at_least(db_url: str, n: int) -> bool:
    return (await counts(db_url))[0] >= n


def test_standby_takes_over_from_a_killed_listener(db_url: str, tmp_path: Path) -> None:
    out = asyncio.run(two_listeners(db_url, tmp_path, "kill"))
    print(f"standby took over {out['takeover_s']:.2f} s after the SIGKILL")
    assert out["holder_pid"] == out["a_pid"]
    assert out["takeover_s"] < 5.0
    n, distinct = asyncio.run(counts(db_url))
    assert n == distinct == kept(out["burst"])  # every frame once
    assert out["b_status"] == 0
    assert_whole_burst(db_url, out["burst"])


def test_a_hung_listener_is_replaced_and_writes_nothing_when_it_wakes(
        db_url: str, tmp_path: Path) -> None:
    out = asyncio.run(two_listeners(db_url, tmp_path, "hang"))
    print(f"standby took over {out['takeover_s']:.2f} s after the SIGSTOP")
    assert out["takeover_s"] < 5.0
    assert out["a_status"] == 1 and out["a_lost"]
    n, distinct = asyncio.run(counts(db_url))
    assert n == distinct == kept(out["burst"])
    assert_whole_burst(db_url, out["burst"])
