"""Which event loop runs a service: uvloop (libuv; from the authors of asyncpg)
by default for the network services, the standard loop on request.

With 200 calls in progress, uvloop halves the AGI server's per-command latency
(bench/agi_sessions.py: p99 2.5 ms -> 1.2 ms on 2 cores)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T], kind: str = "uvloop") -> T:
    if kind == "uvloop":
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)
