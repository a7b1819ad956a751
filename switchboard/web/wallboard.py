"""``switchboard wallboard``: the live wall board.

An aiohttp server on loopback (SB_WALLBOARD_LISTEN, default 127.0.0.1:8088)
behind a token (SB_WALLBOARD_TOKEN[_FILE]; without one, a token is made once in
the state directory and the login URL printed that once).  ``/?token=`` is
exchanged for a session cookie (random, signed with a key derived from the
token, 12 h, HttpOnly, SameSite=Strict, Secure over TLS) and the browser is sent
on to ``/``, so the token leaves the address bar; the cookie never holds the
token.  Only the configured host names are served (SB_WALLBOARD_HOSTS), the
page runs no inline script (CSP), and idle or slow connections are closed after
SB_WALLBOARD_IDLE_S.  The session and auth layer is switchboard/web/auth.py.  The page holds one
Server-Sent-Events stream: a snapshot on connect and a new one within a fraction
of a second after PostgreSQL notifies a change (the `sb_live` NOTIFY fired by
statement triggers on queue_call and agent_state; no polling).  EventSource
reconnects by itself after a blip; the server re-LISTENs with backoff when its
database connection drops.  Live figures are also Prometheus gauges
(SB_WALLBOARD_METRICS_ADDR, default 127.0.0.1:9469).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web
from prometheus_client import start_http_server

from switchboard import log
from switchboard.configfiles import generated_secret
from switchboard.figures.report import plain, reader_settings
from switchboard.loop import notify, stop_on_signals
from switchboard.sqlfile import queries
from switchboard.web import live
from switchboard.web.auth import Sessions, host_guard, known_hosts, safe_headers, same_secret
from switchboard.web.board_gauges import BoardGauges

Q = queries("report.sql")
STATIC = Path(__file__).with_name("static")
PAGE = STATIC / "wallboard.html"
SCRIPT = STATIC / "wallboard.js"
COOKIE = "sb_wallboard"
SESSION_S = 12 * 3600
MAX_STREAMS = 100  # live streams at once (a wall board or two per room)
EMERGENCY_SHOWN_S = 1800  # a 911 call stays on the board this long after it ended
FAVICON = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
           b'<rect width="16" height="16" rx="3" fill="#1b232c"/>'
           b'<path d="M3 11h2V7H3zm4 0h2V4H7zm4 0h2V8h-2z" fill="#2e9d4f"/></svg>')


@dataclass(frozen=True)
class BoardConfig:
    host: str = "127.0.0.1"
    port: int = 8088
    token: str = ""
    tz: str = "UTC"
    sl_target: float = 0.8
    sl_s: int = 20
    asa_target_s: float = 20.0
    short_s: int = 5
    wrapup_s: int = 15
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9469  # 0: off
    debounce_s: float = 0.1
    hosts: tuple[str, ...] = ()  # host names served besides loopback and ``host``
    idle_s: float = 10.0  # a connection with no request in progress is closed then
    callback_stale_min: int = 15  # a callback request not started by then is an alert
    periodic_s: float = 30.0  # refresh this often even without a change (ages, alerts)
    wait_alert_s: int = 60  # a caller waiting longer than this is an alert on the board
    silent_s: int = 120  # agents of a node not heard from for this long are not counted
    ping_s: float = 10.0  # the stream's heartbeat: the page turns stale without it


def token_from(env: dict[str, str], state_dir: Path) -> tuple[str, bool]:
    """(token, created): SB_WALLBOARD_TOKEN, the file SB_WALLBOARD_TOKEN_FILE, or
    one made once in the state directory (mode 600)."""
    if env.get("SB_WALLBOARD_TOKEN"):
        return env["SB_WALLBOARD_TOKEN"], False
    return generated_secret(Path(env.get("SB_WALLBOARD_TOKEN_FILE")
                                 or state_dir / "wallboard-token"))


class Board:
    def __init__(self, database_url: str, config: BoardConfig) -> None:
        self.url = database_url
        self.cfg = config
        self.log = log.get("wallboard")
        self.pool: asyncpg.Pool | None = None
        self.snapshot: dict[str, Any] = {}
        self.version = 0
        self.changed = asyncio.Condition()
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.listening = asyncio.Event()
        self.gauges = BoardGauges(config.sl_target, config.wait_alert_s)
        self.registry = self.gauges.registry
        self._metrics_server: Any = None
        self.sessions = Sessions(config.token, cookie=COOKIE, lifetime_s=SESSION_S,
                                 purpose=b"switchboard wall board session")
        self._streams = 0
        self._hosts = known_hosts(config.host, config.hosts)

    # --- data ----------------------------------------------------------------------
    def today_start(self) -> datetime:
        zone = ZoneInfo(self.cfg.tz)
        now = datetime.now(zone)
        return datetime(now.year, now.month, now.day, tzinfo=zone)

    async def compute(self) -> dict[str, Any]:
        assert self.pool is not None
        c = self.cfg
        start = self.today_start()
        end = start + timedelta(days=1)
        async with self.pool.acquire() as conn:
            live = [dict(r) for r in await conn.fetch(Q["live_heard"], c.silent_s)]
            silent = [dict(r) for r in await conn.fetch(Q["silent_nodes"], c.silent_s)]
            nodes = [dict(r) for r in await conn.fetch(Q["node_figures"])]
            split = {r["level"]: r["calls"] for r in await conn.fetch(Q["verify_split"],
                                                                       start)}
            cid = {r["kind"]: r["calls"] for r in await conn.fetch(Q["caller_id_split"],
                                                                     start)}
            day = [dict(r) for r in await conn.fetch(
                Q["queue_figures"], start, end, "day", c.tz, c.short_s, c.sl_s,
                "offered_excl_short", c.wrapup_s)]
            hours = [dict(r) for r in await conn.fetch(
                Q["queue_figures"], start, end, "hour", c.tz, c.short_s, c.sl_s,
                "offered_excl_short", c.wrapup_s)]
            abandoned = [dict(r) for r in await conn.fetch(Q["abandoned_today"], start,
                                                            c.short_s)]
            now = await conn.fetchval("SELECT now()")
            alerts = {r["kind"]: r["n"] for r in await conn.fetch(Q["security_counts"],
                                                                  start)}
            cbw = dict(await conn.fetchrow(Q["callbacks_waiting"], c.callback_stale_min)
                       or {"waiting": 0, "stale": 0, "oldest_s": None})
            edge = await self._edge(conn, start, now)
        today = {r["queue"]: r for r in day}
        queues = []
        for q in sorted({r["queue"] for r in live} | {r["queue"] for r in day} - {"(all)"}):
            lv = next((r for r in live if r["queue"] == q), {})
            td = today.get(q, {})
            queues.append({
                "queue": q, "waiting": lv.get("waiting", 0),
                "oldest_entered_at": plain(lv.get("oldest_entered_at")),
                "available": lv.get("agents_available", 0),
                "on_call": lv.get("agents_on_call", 0), "paused": lv.get("agents_paused", 0),
                "paused_reasons": plain(lv.get("paused_reasons") or "{}"),
                "offered": td.get("offered", 0), "answered": td.get("answered", 0),
                "abandoned": td.get("abandoned", 0),
                "short_abandoned": td.get("short_abandoned", 0),
                "service_level": plain(td.get("service_level")),
                "asa_s": plain(td.get("asa_s")),
            })
        total = today.get("(all)", {})
        return {
            "version": self.version + 1, "server_time": now.isoformat(), "tz": c.tz,
            "targets": {"service_level": c.sl_target, "sl_s": c.sl_s,
                        "asa_s": c.asa_target_s, "short_s": c.short_s,
                        "wait_alert_s": c.wait_alert_s},
            "queues": queues,
            "total": {k: plain(total.get(k)) for k in ("offered", "answered", "abandoned",
                                                        "service_level", "asa_s")},
            "hours": [{"bucket": plain(r["bucket"]), "offered": r["offered"],
                       "answered": r["answered"], "abandoned": r["abandoned"],
                       "service_level": plain(r["service_level"])}
                      for r in hours if r["queue"] == "(all)"],
            "alerts": alerts,
            "callbacks_stale": {"n": cbw["stale"], "waiting": cbw["waiting"],
                                "oldest_s": cbw["oldest_s"],
                                "threshold_min": c.callback_stale_min},
            "verified": {k: split.get(k, 0) for k in ("full", "callback", "line-only",
                                                       "unverified")},
            "caller_id": {k: cid.get(k, 0) for k in ("attested-a", "attested-bc",
                                                      "not-attested", "failed")},
            "silent_nodes": [{"node": r["node"], "last_seen_at": plain(r["last_seen_at"])}
                             for r in silent],
            "edge": edge,
            # every node's state (issue 23): a lost node is said plainly
            "nodes": [{"node": r["node"], "state": r["state"], "since": plain(r["since"]),
                       "reason": r["reason"], "agents": r["agents"]} for r in nodes],
            "abandoned_total": total.get("abandoned", 0),
            "abandoned_list": [{"at": plain(r["entered_at"]), "queue": r["queue"],
                                "wait_s": plain(r["wait_s"])} for r in abandoned],
        }

    async def _edge(self, conn: Any, start: datetime, now: datetime) -> dict[str, Any]:
        """The SIP edge: bans in force, who fails to log in this hour, 911 calls
        today (the last ended ones for EMERGENCY_SHOWN_S), the toll-fraud caps."""
        hour = now - timedelta(hours=1)
        f = await conn.fetchrow(Q["edge_figures"], start)
        hour_f = await conn.fetchrow(Q["edge_figures"], hour)
        bans = await conn.fetch(Q["edge_bans"])
        failing = await conn.fetch(Q["edge_failing"], hour)
        calls = await conn.fetch(Q["edge_emergencies"], start)
        return {
            "bans": [{"address": r["address"], "failures": r["failures"],
                      "until": plain(r["until"])} for r in bans],
            "auth_failures_hour": hour_f["auth_failures"],
            "failing_addresses_hour": hour_f["failing_addresses"],
            "failing": [{"address": r["address"], "failures": r["failures"]}
                        for r in failing[:3]],
            "bans_today": f["bans_since"],
            "emergencies": [{"phone": r["phone"], "place": r["place"], "elin": r["elin"],
                             "started_at": plain(r["started_at"]),
                             "ended_at": plain(r["ended_at"]), "status": r["status"]}
                            for r in calls
                            if r["ended_at"] is None
                            or (now - r["ended_at"]).total_seconds() < EMERGENCY_SHOWN_S],
            "emergency_calls_today": f["emergency_calls"],
            "emergency_calls_active": sum(1 for r in calls if r["ended_at"] is None),
            "outbound_granted_today": f["outbound_granted"],
            "outbound_refused_today": f["outbound_refused"],
            "outbound_refused_hour": hour_f["outbound_refused"],
            "outbound_minutes_hour": f["outbound_minutes_hour"],
            "outbound_minutes_per_hour": f["minutes_per_hour"],
        }

    async def refresher(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(self.cfg.debounce_s)  # a burst of NOTIFYs -> one refresh
            self._dirty.clear()
            try:
                snap = await self.compute()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.log.warning("wallboard_refresh_failed", error=type(exc).__name__)
                await asyncio.sleep(1)
                self._dirty.set()
                continue
            self.gauges.update(snap)
            async with self.changed:
                self.version = snap["version"]
                self.snapshot = snap
                self.changed.notify_all()

    async def periodic(self) -> None:
        """Ages and alerts that change with time alone (a callback request going
        stale) without a NOTIFY."""
        while True:
            await asyncio.sleep(self.cfg.periodic_s)
            self._dirty.set()

    async def listener(self) -> None:
        """LISTEN sb_live on a connection of its own; reconnect with backoff."""
        await live.follow(self.url, self._dirty, self.listening, self.log,
                          "wallboard_listen_lost", connect=reader_settings(), ping_s=10)

    # --- http ------------------------------------------------------------------------
    def _authorised(self, request: web.Request) -> bool:
        return self.sessions.valid(request)

    async def page(self, request: web.Request) -> web.StreamResponse:
        if "token" in request.query:  # the login link: exchanged once, then gone
            if not same_secret(request.query.get("token", ""), self.cfg.token):
                return _unauthorised()
            resp = web.Response(status=303, headers={"Location": "/"})
            self.sessions.set_cookie(request, resp)
            return resp
        if not self._authorised(request):
            return _unauthorised()
        return web.Response(body=PAGE.read_bytes(), content_type="text/html")

    async def script(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            return _unauthorised()
        return web.Response(body=SCRIPT.read_bytes(), content_type="text/javascript")

    async def events(self, request: web.Request) -> web.StreamResponse:
        if not self._authorised(request):
            raise web.HTTPUnauthorized()
        if self._streams >= MAX_STREAMS:
            raise web.HTTPServiceUnavailable(text="too many wall boards open\n")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        seen = -1
        self._streams += 1
        try:
            while True:
                async with self.changed:
                    if self.version == seen:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self.changed.wait(), self.cfg.ping_s)
                    snap, seen_now = self.snapshot, self.version
                if seen_now != seen and snap:
                    seen = seen_now
                    await resp.write(b"retry: 1000\nevent: snapshot\ndata: "
                                     + json.dumps(snap).encode() + b"\n\n")
                else:  # a heartbeat the page can see: without it, it turns stale
                    await resp.write(b"event: ping\ndata: " + json.dumps(
                        {"server_time": datetime.now().astimezone().isoformat()}).encode()
                        + b"\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._streams -= 1
        return resp

    async def favicon(self, _request: web.Request) -> web.Response:
        return web.Response(body=FAVICON, content_type="image/svg+xml",
                            headers={"Cache-Control": "max-age=86400"})

    async def snapshot_json(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            raise web.HTTPUnauthorized()
        return web.json_response(self.snapshot)

    async def start(self) -> int:
        self.pool = await asyncpg.create_pool(self.url, min_size=1, max_size=3,
                                              **reader_settings(),
                                              command_timeout=10)
        self.snapshot = await self.compute()
        self.version = self.snapshot["version"]
        self.gauges.update(self.snapshot)
        self._tasks = [asyncio.ensure_future(self.refresher()),
                       asyncio.ensure_future(self.listener()),
                       asyncio.ensure_future(self.periodic())]
        app = web.Application(middlewares=[host_guard(self._hosts)])
        app.on_response_prepare.append(safe_headers)
        app.router.add_get("/", self.page)
        app.router.add_get("/wallboard.js", self.script)
        app.router.add_get("/events", self.events)
        app.router.add_get("/snapshot.json", self.snapshot_json)
        app.router.add_get("/favicon.ico", self.favicon)
        app.router.add_get("/favicon.svg", self.favicon)
        self._runner, self.port = await live.serve(app, self.cfg.host, self.cfg.port,
                                                   self.cfg.idle_s)
        if self.cfg.metrics_port:
            self._metrics_server = start_http_server(self.cfg.metrics_port,
                                                     addr=self.cfg.metrics_host,
                                                     registry=self.registry)
        self.log.info("wallboard_listening", url=f"http://{self.cfg.host}:{self.port}/")
        return self.port

    async def stop(self) -> None:
        await live.stop(self._tasks, self._runner, self.pool)
        if self._metrics_server is not None:
            server, thread = self._metrics_server
            server.shutdown()
            server.server_close()
            thread.join(timeout=2)
            self._metrics_server = None


def _unauthorised() -> web.Response:
    return web.Response(status=401, content_type="text/html",
                        text="<h1>switchboard wall board</h1><p>Open the login link with "
                        "its token (<code>/?token=...</code>, the token from "
                        "SB_WALLBOARD_TOKEN_FILE or the state directory).</p>")


async def run_wallboard(database_url: str, config: BoardConfig, *,
                        stop: asyncio.Event | None = None) -> int:
    board = Board(database_url, config)
    with stop_on_signals(stop or asyncio.Event()) as stopping:
        try:
            port = await board.start()
            # the token itself only when it was just made (board_config): not into
            # the journal at every start
            print(f"wall board: http://{config.host}:{port}/ (log in once with "
                  f"/?token=<the wall board token>)", flush=True)
            notify("READY=1")
            await stopping.wait()
            notify("STOPPING=1")
        finally:
            await board.stop()
    return 0

