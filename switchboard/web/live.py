"""What the wall board and the agent panel both do: follow PostgreSQL's
``sb_live`` notifications on a connection of their own, and serve an aiohttp
app on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

import asyncpg
from aiohttp import web

DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


async def follow(url: str, wake: asyncio.Event, listening: asyncio.Event, log: Any,
                 event: str, *, connect: dict[str, Any], ping_s: float,
                 wake_on_loss: bool = False, channel: str = "sb_live") -> None:
    """LISTEN ``channel``, setting ``wake`` on every notification and once on
    each (re)connect (and each loss, with ``wake_on_loss``: open pages learn
    that the database went away); ``listening`` is set while the link is up.
    A silently dead link is noticed by a query every ``ping_s``; reconnects
    back off from 0.2 s to 5 s."""
    delay = 0.2
    while True:
        conn = None
        try:
            conn = await asyncpg.connect(url, timeout=5, **connect)
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c, ev=lost: ev.set())
            await conn.add_listener(channel, lambda *_: wake.set())
            listening.set()
            wake.set()  # whatever happened while we were away
            delay = 0.2
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), ping_s)
                if not lost.is_set():
                    await conn.fetchval("SELECT 1")
        except DB_ERRORS as exc:
            log.warning(event, error=type(exc).__name__, retry_s=delay)
        finally:
            if listening.is_set():
                listening.clear()
                if wake_on_loss:
                    wake.set()
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)


async def serve(app: web.Application, host: str, port: int, idle_s: float
                ) -> tuple[web.AppRunner, int]:
    """Start ``app``; (its runner, the port it got).  ``idle_s`` also closes a
    connection that never finishes its request."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1,
                           keepalive_timeout=idle_s)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = getattr(site, "_server", None)
    return runner, server.sockets[0].getsockname()[1] if server else port


async def stop(tasks: Iterable[asyncio.Future[Any]], runner: web.AppRunner | None,
               pool: asyncpg.Pool | None) -> None:
    tasks = list(tasks)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if runner is not None:
        await runner.cleanup()
    if pool is not None:
        await pool.close()
