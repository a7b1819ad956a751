"""The reports page (``/reports`` on the agent panel's server), supervisors
only: any day, week or month, per queue, per agent, per 15 minutes, hour or
day, with the verification mix, caller-ID checks, callbacks, dispositions and
transfers; charts drawn by the page itself (SVG, no CDN), tables, and a CSV
download.

The figures come from ``figures.report.gather`` on the reports' own login
(sb_reports), the very function ``switchboard report --json`` prints: the page
and the command cannot disagree (tests/web/test_reports_page.py compares
them in a browser)."""

from __future__ import annotations

import asyncio
import io
import os
import re
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
from aiohttp import web

from switchboard.figures.report import BUCKET_S, Range, gather, reader_settings, write_csv
from switchboard.settings import site_tz
from switchboard.web.common import DatabaseDown

if TYPE_CHECKING:
    from switchboard.web.panel import Panel

STATIC = Path(__file__).with_name("static")
MAX_DAYS = 92
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class Reports:
    def __init__(self, panel: Panel, url: str | None) -> None:
        self.p = panel
        self.url = url
        self.pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self.tz = site_tz(os.environ)

    def routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/reports", self.page)
        r.add_get("/reports.js", self.script)
        r.add_get("/api/reports", self.figures)
        r.add_get("/api/reports.csv", self.csv)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def page(self, _request: web.Request) -> web.StreamResponse:
        return web.Response(body=(STATIC / "reports.html").read_bytes(),
                            content_type="text/html")

    async def script(self, _request: web.Request) -> web.StreamResponse:
        return web.Response(body=(STATIC / "reports.js").read_bytes(),
                            content_type="text/javascript")

    async def db(self) -> asyncpg.Pool:
        if self.url is None:
            raise web.HTTPServiceUnavailable(text="no reports login on this panel "
                                             "(SB_REPORTS_DATABASE_URL)\n")
        async with self._lock:
            if self.pool is None:
                try:
                    pool = await asyncpg.create_pool(self.url, min_size=0, max_size=4,
                                                     command_timeout=30, timeout=5,
                                                     **reader_settings())
                except (OSError, asyncpg.PostgresError) as exc:
                    raise DatabaseDown() from exc
                assert pool is not None
                if await pool.fetchval("SELECT current_user") != "sb_reports":
                    await pool.close()
                    raise RuntimeError("the reports page logs in as sb_reports only")
                self.pool = pool
        return self.pool

    def _range(self, request: web.Request) -> tuple[Range, dict[str, int | str]]:
        q = request.query
        start, end = q.get("from", ""), q.get("to", "")
        bucket = q.get("bucket", "hour")
        if not (_DAY.match(start) and _DAY.match(end)) or bucket not in BUCKET_S:
            raise web.HTTPBadRequest(text="from and to are days (YYYY-MM-DD), bucket is "
                                     "15min, hour or day\n")
        try:
            a, b = date.fromisoformat(start), date.fromisoformat(end)
        except ValueError as exc:
            raise web.HTTPBadRequest(text="not a day\n") from exc
        if not timedelta(days=1) <= b - a <= timedelta(days=MAX_DAYS):
            raise web.HTTPBadRequest(text=f"a range is 1 to {MAX_DAYS} days\n")
        # the defaults of `switchboard report`
        opts: dict[str, int | str] = {"short_s": 5, "sl_s": 20,
                                      "variant": "offered_excl_short", "wrapup_s": 15}
        for k, lo, hi in (("sl_s", 1, 3600), ("short_s", 0, 3600)):
            if k in q:
                if not q[k].isdigit() or not lo <= int(q[k]) <= hi:
                    raise web.HTTPBadRequest(text=f"{k} is {lo} to {hi}\n")
                opts[k] = int(q[k])
        return Range.parse(None, start, end, self.tz, bucket), opts

    async def _gather(self, request: web.Request) -> tuple[dict[str, Any], Any]:
        a = await self.p.agent(request)
        if a["role"] != "supervisor":
            raise web.HTTPForbidden(text="reports are for supervisors\n")
        rng, opts = self._range(request)
        pool = await self.db()
        async with pool.acquire() as conn:
            data = await gather(conn, rng, short_s=int(opts["short_s"]),
                                sl_s=int(opts["sl_s"]), variant=str(opts["variant"]),
                                wrapup_s=int(opts["wrapup_s"]))
        return data, a

    async def figures(self, request: web.Request) -> web.StreamResponse:
        data, a = await self._gather(request)
        self.p.log.info("report_viewed", login=a["login"], start=data["from"], end=data["to"])
        return web.json_response(data)

    async def csv(self, request: web.Request) -> web.StreamResponse:
        table = request.query.get("table", "queues")
        if table not in ("queues", "agents"):
            raise web.HTTPBadRequest(text="table is queues or agents\n")
        data, a = await self._gather(request)
        out = io.StringIO()
        write_csv(data, out, table)
        name = f"switchboard-{table}-{data['from'][:10]}-{data['to'][:10]}.csv"
        self.p.log.info("report_csv", login=a["login"], table=table, start=data["from"])
        return web.Response(text=out.getvalue(), content_type="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
