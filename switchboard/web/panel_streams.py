"""The agent panel's event streams (``/api/events``), fanned out.

Every open page used to run its own two queries on each change (its session,
its agent's calls): about 500 queries a second at 100x with 100 pages open.
Now one round serves them all: on each change (``sb_live``, debounced by the
panel's waker) and every ``recheck_s`` (an idle session ends on its own
clock), one query (sql/queries/panel.sql ``streams``) returns, for every open
page's session token, its agent and the calls that agent may see; each page
gets its share and writes it only when it changed.  A page that opens is
answered at once by a round of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from switchboard.web.common import DatabaseDown, row

if TYPE_CHECKING:
    from switchboard.web.panel import Panel

MAX_STREAMS = 500
DOWN = b'{"db": "down", "calls": []}'


@dataclass(eq=False)
class Page:
    """One open page's stream: its session token's hash and what it was sent."""

    token_hash: bytes
    inbox: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(1))


def shares(rows: list[Any]) -> dict[bytes, bytes | None]:
    """The ``streams`` rows, per token: the page's body, or None (ended)."""
    alive: dict[bytes, bool] = {}
    calls: dict[bytes, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        token = bytes(r["stream_token"])
        alive[token] = r["stream_agent"] is not None
        if r["uniqueid"] is not None:
            calls[token].append({k: v for k, v in row(r).items()
                                 if k not in ("stream_token", "stream_agent")})
    return {t: json.dumps({"db": "up", "calls": calls[t]}).encode() if ok else None
            for t, ok in alive.items()}


class Streams:
    def __init__(self, panel: Panel) -> None:
        self.p = panel
        self.pages: set[Page] = set()
        self.rounds = 0  # the number of fan-out queries run (tests, metrics)
        self._due = asyncio.Event()
        self._ids = itertools.count()

    def routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/api/events", self.events)

    async def query(self, token_hashes: list[bytes]) -> dict[bytes, bytes | None] | None:
        """One round: every page's body (None: its session ended); None when the
        database is away."""
        try:
            rows = await self.p.call("streams", token_hashes)
        except DatabaseDown:
            return None
        self.rounds += 1
        return shares(list(rows))

    async def run(self) -> None:
        """The fan-out: a round after every change and every recheck_s."""
        seen = -1
        while True:
            async with self.p.changed:
                if self.p.version == seen:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.p.changed.wait(), self.p.cfg.recheck_s)
                seen = self.p.version
            pages = list(self.pages)
            if not pages:
                continue
            got = await self.query(sorted({pg.token_hash for pg in pages}))
            for pg in pages:
                body = DOWN if got is None else got.get(pg.token_hash)
                self._deliver(pg, body)

    @staticmethod
    def _deliver(pg: Page, body: bytes | None) -> None:
        """The newest body wins: a page that has not written the last one yet
        gets this one instead."""
        with contextlib.suppress(asyncio.QueueEmpty):
            pg.inbox.get_nowait()
        pg.inbox.put_nowait(body)

    async def events(self, request: web.Request) -> web.StreamResponse:
        """The agent's calls: on connect, and after every change (sb_live); the
        database's state; ``expired`` when the session ends."""
        await self.p.agent(request)
        if len(self.pages) >= MAX_STREAMS:
            raise web.HTTPServiceUnavailable(text="too many panels open\n")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        page = Page(self.p.token_hash_of(request))
        first = await self.query([page.token_hash])
        self._deliver(page, DOWN if first is None else first.get(page.token_hash))
        self.pages.add(page)
        last: bytes | None = None
        try:
            while True:
                try:
                    body = await asyncio.wait_for(page.inbox.get(),
                                                  self.p.cfg.recheck_s + 5)
                except TimeoutError:
                    await resp.write(b": keep-alive\n\n")
                    continue
                if body is None:
                    await resp.write(b"event: expired\ndata: {}\n\n")
                    break
                if body != last:
                    await resp.write(b"retry: 1000\nevent: calls\ndata: " + body + b"\n\n")
                    last = body
                else:
                    await resp.write(b": keep-alive\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.pages.discard(page)
        return resp
