"""Which event loop runs a service: uvloop (libuv; from the authors of asyncpg)
by default for the network services, the standard loop on request.

With 200 calls in progress, uvloop halves the AGI server's per-command latency
(bench/agi_sessions.py: p99 2.5 ms -> 1.2 ms on 2 cores)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T], kind: str = "uvloop") -> T:
    if kind == "uvloop":
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[asyncio.Event]:
    """SIGTERM and SIGINT set ``stop`` while the block runs (where the loop can
    take signal handlers); the handlers are removed afterwards."""
    loop = asyncio.get_running_loop()
    sigs = (signal.SIGTERM, signal.SIGINT)
    for sig in sigs:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in sigs:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
