"""The agent panel's callback requests: a page at a time, oldest first, with
how many are open in all; claim, call back (the agency's registered number,
through the agent's own phone) and close with a disposition.  The database
decides (sb_panel_callback_*); this is the HTTP side, on the panel's session
and helpers (switchboard/web/panel.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from switchboard.web.common import row

if TYPE_CHECKING:
    from switchboard.web.panel import Panel

PAGE = 10  # requests per page, unless the page asks for another size (at most 100)


def _number(request: web.Request, name: str, default: int, hi: int) -> int:
    raw = request.query.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or len(raw) > 6:
        raise web.HTTPBadRequest(text=f"{name}: a number\n")
    return min(int(raw), hi)


class Callbacks:
    def __init__(self, panel: Panel) -> None:
        self.p = panel

    def routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/api/callbacks", self.page)
        r.add_post("/api/callbacks/{rid}/claim", self.claim)
        r.add_post("/api/callbacks/{rid}/dial", self.dial)
        r.add_post("/api/callbacks/{rid}/close", self.close)

    async def page(self, request: web.Request) -> web.StreamResponse:
        """``?offset=N&limit=M``: the open requests from the Nth oldest; past the
        end (others closed them meanwhile), the first page."""
        a = await self.p.agent(request)
        offset = _number(request, "offset", 0, 10**6)
        limit = _number(request, "limit", PAGE, 100) or PAGE
        rows = await self.p.call("callbacks", a["agent_id"], offset, limit)
        if not rows and offset > 0:
            offset = 0
            rows = await self.p.call("callbacks", a["agent_id"], offset, limit)
        total = rows[0]["total"] if rows else 0
        return web.json_response({"total": total, "offset": offset, "limit": limit,
                                  "rows": [{k: v for k, v in row(r).items() if k != "total"}
                                           for r in rows]})

    @staticmethod
    def _request_id(request: web.Request) -> int:
        try:
            return int(request.match_info["rid"])
        except ValueError as exc:
            raise web.HTTPBadRequest(text="bad id\n") from exc

    async def claim(self, request: web.Request) -> web.StreamResponse:
        a = await self.p.agent(request)
        self.p.check_post(request)
        rid = self._request_id(request)
        r = await self.p.call("callback_claim", a["agent_id"], rid, one=True)
        return web.json_response({"outcome": r["outcome"]},
                                 status=200 if r["outcome"] == "claimed" else 409)

    async def dial(self, request: web.Request) -> web.StreamResponse:
        a = await self.p.agent(request)
        self.p.check_post(request)
        rid = self._request_id(request)
        if (refused := self.p.no_ami()) is not None:
            return refused
        r = await self.p.call("callback_dial", a["agent_id"], rid, one=True)
        return await self.p.callout.place(a, f"callback-{rid}", r)

    async def close(self, request: web.Request) -> web.StreamResponse:
        a = await self.p.agent(request)
        data = await self.p.body(request)
        rid = self._request_id(request)
        code, note = data.get("code"), data.get("note") or ""
        if not isinstance(code, str) or not isinstance(note, str) or len(note) > 2000:
            raise web.HTTPBadRequest(text="a disposition code and a note of at most 2,000 "
                                     "characters\n")
        r = await self.p.call("callback_close", a["agent_id"], rid, code, note, one=True)
        self.p.log.info("panel_callback_close", agent=a["login"], request_id=rid, code=code,
                        outcome=r["outcome"])
        return web.json_response({"outcome": r["outcome"]},
                                 status=200 if r["outcome"] == "closed" else 403)
