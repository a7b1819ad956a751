"""One query per change for every open panel page (issue 25): twelve pages of
three agents open on a real panel server over real sockets, a call arrives
through the real listener; the pages that should see it do, within one
fan-out round, and the panel ran one ``streams`` query per round instead of
two per page."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import ingest
from tests.web.conftest import PASSWORD, answered_call, call_segment, keyed, seed
from tests.web.test_panel import LIVE, panel_for


async def _open(port: int, login: str) -> tuple[aiohttp.ClientSession, aiohttp.ClientResponse]:
    s = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # an IP address
    r = await s.post(f"http://127.0.0.1:{port}/api/login", headers={"X-SB-Panel": "1"},
                     json={"login": login, "password": PASSWORD[login]})
    assert r.status == 200, await r.text()
    events = await s.get(f"http://127.0.0.1:{port}/api/events")
    assert events.status == 200
    return s, events


async def _next_calls(events: aiohttp.ClientResponse, within_s: float) -> list[dict[str, Any]]:
    """The next ``calls`` event's calls (keep-alives skipped)."""
    async with asyncio.timeout(within_s):
        while True:
            line = (await events.content.readline()).decode().strip()
            if line.startswith("data: "):
                data = json.loads(line[6:])
                if "calls" in data:
                    return list(data["calls"])


def test_every_open_page_is_served_by_one_query_per_change(db_url: str,
                                                           tmp_path: Path) -> None:
    env = keyed(tmp_path)
    asyncio.run(seed(db_url, env))
    uid, frames = answered_call()  # a caller answered by alice (PJSIP/2001)

    async def main() -> dict[str, Any]:
        panel = panel_for(db_url, env, recheck_s=60.0)  # rounds from changes only
        queries: Counter[str] = Counter()
        call = panel.call

        async def counted(query: str, *args: Any, one: bool = False) -> Any:
            queries[query] += 1
            return await call(query, *args, one=one)
        panel.call = counted  # type: ignore[method-assign]
        port = await panel.start()
        pages = [await _open(port, login) for login in ("alice", "bob", "sue") * 4]
        try:
            first = [await _next_calls(ev, 10) for _, ev in pages]
            before, rounds = Counter(queries), panel.streams.rounds
            await ingest(db_url, tmp_path, [call_segment(frames, end=False)], node="pbx-a",
                         options=LIVE)
            # alice's four pages and the supervisor's four get the call; bob's do not
            seen = [await _next_calls(ev, 15) for _, ev in pages[0::3] + pages[2::3]]
            await asyncio.sleep(0.5)
            during = queries - before
            return {"first": first, "seen": seen, "during": during,
                    "rounds": panel.streams.rounds - rounds, "pages": len(panel.streams.pages)}
        finally:
            for s, ev in pages:
                ev.close()
                await s.close()
            await panel.stop()
    out = asyncio.run(main())
    assert out["pages"] == 12
    assert all(calls == [] for calls in out["first"])
    for calls in out["seen"]:
        assert uid in {c["uniqueid"] for c in calls}
    # the change came as a few notifications (AgentCalled, then AgentConnect):
    # each round is one query for all twelve pages, and no page queried alone
    # (a round already under way when the counts were taken may fall either side)
    assert 1 <= out["rounds"] <= 4 and 1 <= out["during"]["streams"] <= 4, out
    assert out["during"]["calls"] == out["during"]["session"] == 0, out
