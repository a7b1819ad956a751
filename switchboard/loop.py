"""Which event loop runs a service: uvloop (libuv; from the authors of asyncpg)
by default for the network services, the standard loop on request.

With 200 calls in progress, uvloop halves the AGI server's per-command latency
(bench/agi_sessions.py: p99 2.5 ms -> 1.2 ms on 2 cores)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
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


def notify(state: str) -> bool:
    """Tell systemd (``Type=notify`` units) how the service is: ``READY=1`` once
    it serves, ``STOPPING=1`` when it begins to stop.  The sd_notify protocol is
    one datagram to $NOTIFY_SOCKET; nothing happens when that is not set (run by
    hand).  True when a notification was sent."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr or not (addr.startswith("/") or addr.startswith("@")):
        return False
    target = "\0" + addr[1:] if addr.startswith("@") else addr
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s, contextlib.suppress(OSError):
        s.sendto(state.encode(), target)
        return True
    return False
