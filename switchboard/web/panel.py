"""``switchboard panel``: the agent panel.

An aiohttp server (SB_PANEL_LISTEN, default 127.0.0.1:8089) beside the wall
board, on the same auth layer (switchboard/web/auth.py: known host names, CSP without
inline script, safe headers).  Agents log in with their own account
(``switchboard agent add``; the password stored like a PIN, checked here with
the pepper); the session is a random token in an HttpOnly, SameSite=Strict
cookie whose SHA-256 the database holds, so a logout, a disabled account, an
idle session (SB_PANEL_IDLE_S) or an old one (SB_PANEL_SESSION_S) ends at once.

The server logs in as sb_panel, which may only call the sb_panel_* functions
(sql/migrations/0012): the database decides what an agent may see and do and
writes the audit rows.  The screen pop: the AMI listener stores AgentCalled and
AgentConnect on the call's row, PostgreSQL notifies ``sb_live``, and each open
page's event stream gets its agent's calls within a fraction of a second
(switchboard/web/panel_streams.py: one query per change for every open page).

Its parts, each on this session layer: the event streams (panel_streams.py),
calling an agency back (callout.py: AMI ``Originate`` into ``sb-oob``; user
SB_PANEL_AMI_USER with ``originate`` rights, secret SB_PANEL_AMI_SECRET[_FILE]),
callback requests (callbacks.py), the supervisor's side (supervise.py) and the
reports page (reports.py).

Fail closed: with the database away every answer is 503 and the page says so
and shows nothing; the desk phone's caller-name prefix still works.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from switchboard import log
from switchboard.agi.pins import PinHasher
from switchboard.ami_listener.actions import AmiLogin
from switchboard.loop import notify, stop_on_signals
from switchboard.sqlfile import queries
from switchboard.web import live
from switchboard.web.auth import host_guard, known_hosts, safe_headers
from switchboard.web.callbacks import Callbacks
from switchboard.web.callout import CallOut
from switchboard.web.common import DatabaseDown, row
from switchboard.web.common import uid as call_id
from switchboard.web.live import DB_ERRORS
from switchboard.web.panel_streams import Streams
from switchboard.web.reports import Reports
from switchboard.web.supervise import Supervise, SuperviseConfig

Q = queries("panel.sql")
STATIC = Path(__file__).with_name("static")
COOKIE = "sb_panel"
MAX_BODY = 8 << 10


@dataclass(frozen=True)
class PanelConfig:
    host: str = "127.0.0.1"
    port: int = 8089
    session_s: int = 8 * 3600  # a shift
    idle_s: int = 30 * 60  # no page open and no request for this long: logged out
    hosts: tuple[str, ...] = ()
    conn_idle_s: float = 30.0
    debounce_s: float = 0.2  # a burst of changes: one refresh per open page (still < 1 s)
    ami: AmiLogin | None = None  # None: no Originate (the page says so)
    # the other nodes' AMI (SB_PANEL_AMI_ADDR with several): tried in turn when a
    # node does not answer, so calling out works while one node is down
    ami_others: tuple[AmiLogin, ...] = ()
    oob_context: str = "sb-oob"
    ring_agent_s: int = 30  # how long the agent's own phone rings first
    originate_wait_s: float = 45.0
    recheck_s: float = 10.0  # an open page's session is checked at least this often
    # recordings' playback, listening in, transfers (switchboard/web/supervise.py)
    supervise: SuperviseConfig = field(default_factory=SuperviseConfig)
    # the reports page's login (sb_reports; switchboard/web/reports.py); None: no reports page
    reports_url: str | None = None


class Panel:
    def __init__(self, database_url: str, config: PanelConfig, hasher: PinHasher,
                 server_settings: dict[str, str] | None = None) -> None:
        self.url = database_url
        self.cfg = config
        self.hasher = hasher
        self.server_settings = {"application_name": "switchboard-panel",
                                **(server_settings or {})}
        self.log = log.get("panel")
        self.pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()
        self.version = 0
        self.changed = asyncio.Condition()
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._runner: web.AppRunner | None = None
        self._hosts = known_hosts(config.host, config.hosts)
        self.port = 0
        self.listening = asyncio.Event()
        self.callout = CallOut(self)
        self.streams = Streams(self)
        self.callbacks = Callbacks(self)
        self.supervise = Supervise(self, config.supervise)
        self.reports = Reports(self, config.reports_url)

    # --- database ----------------------------------------------------------------
    async def db(self) -> asyncpg.Pool:
        if self.pool is not None:
            return self.pool
        async with self._pool_lock:
            if self.pool is None:
                try:
                    pool = await asyncpg.create_pool(
                        self.url, min_size=1, max_size=10, command_timeout=10, timeout=5,
                        server_settings=self.server_settings)
                except DB_ERRORS as exc:
                    raise DatabaseDown() from exc
                assert pool is not None
                role = await pool.fetchval("SELECT current_user")
                if role != "sb_panel":
                    await pool.close()
                    raise RuntimeError(f"the panel logs in as {role}, not sb_panel: give it "
                                       "its own login (SB_PANEL_DATABASE_URL, "
                                       "docs/security.md)")
                self.pool = pool
        return self.pool

    async def call(self, query: str, *args: Any, one: bool = False) -> Any:
        pool = await self.db()
        try:
            if one:
                return await pool.fetchrow(Q[query], *args)
            return await pool.fetch(Q[query], *args)
        except DB_ERRORS as exc:
            self.log.warning("panel_db_error", query=query, error=type(exc).__name__)
            raise DatabaseDown() from exc

    async def listener(self) -> None:
        """LISTEN sb_live (the listener's commits on queue_call); each notification
        wakes the streams, and so does losing the database."""
        await live.follow(self.url, self._dirty, self.listening, self.log,
                          "panel_listen_lost", connect={"server_settings":
                                                        self.server_settings},
                          ping_s=5, wake_on_loss=True)

    def changed_now(self) -> None:
        """Something every page showing a call should see (a level confirmed)."""
        self._dirty.set()

    async def waker(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(self.cfg.debounce_s)
            self._dirty.clear()
            async with self.changed:
                self.version += 1
                self.changed.notify_all()

    # --- sessions ------------------------------------------------------------------
    @staticmethod
    def _token_hash(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()

    def token_hash_of(self, request: web.Request) -> bytes:
        return self._token_hash(request.cookies.get(COOKIE, ""))

    async def agent(self, request: web.Request) -> Any:
        token = request.cookies.get(COOKIE, "")
        if not 20 <= len(token) <= 100:
            raise web.HTTPUnauthorized(text="log in\n")
        row = await self.call("session", self._token_hash(token), one=True)
        if row is None:
            raise web.HTTPUnauthorized(text="session ended: log in again\n")
        return row

    def no_ami(self) -> web.Response | None:
        """The answer to a request that must call out when this panel cannot."""
        if self.cfg.ami is not None:
            return None
        return web.json_response({"error": "calling out is not set up on this panel "
                                  "(SB_PANEL_AMI_USER)"}, status=503)

    @staticmethod
    def check_post(request: web.Request) -> None:
        """Only our own page posts: SameSite=Strict cookies, a header a form on
        another site cannot send without CORS, and the Origin when given."""
        if request.headers.get("X-SB-Panel") != "1":
            raise web.HTTPForbidden(text="missing X-SB-Panel header\n")
        origin = request.headers.get("Origin")
        if origin and origin.split("://", 1)[-1] != request.host:
            raise web.HTTPForbidden(text="cross-site request\n")

    async def body(self, request: web.Request) -> dict[str, Any]:
        self.check_post(request)
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY,
                                                actual_size=request.content_length)
        try:
            data = json.loads(await request.content.read(MAX_BODY + 1) or b"{}")
        except ValueError as exc:
            raise web.HTTPBadRequest(text="JSON body expected\n") from exc
        if not isinstance(data, dict):
            raise web.HTTPBadRequest(text="JSON object expected\n")
        return data

    # --- pages -----------------------------------------------------------------------
    async def page(self, _request: web.Request) -> web.StreamResponse:
        return web.Response(body=(STATIC / "panel.html").read_bytes(),
                            content_type="text/html")

    async def script(self, request: web.Request) -> web.StreamResponse:
        name = "supervise.js" if request.path == "/supervise.js" else "panel.js"
        return web.Response(body=(STATIC / name).read_bytes(),
                            content_type="text/javascript")

    async def login(self, request: web.Request) -> web.StreamResponse:
        data = await self.body(request)
        login, password = data.get("login"), data.get("password")
        if not isinstance(login, str) or not isinstance(password, str) or not (
                0 < len(login) <= 40 and 0 < len(password) <= 200):
            raise web.HTTPBadRequest(text="login and password expected\n")
        row = await self.call("login_hash", login, one=True)
        # the same argon2 work whether or not the account exists
        ok = await asyncio.to_thread(self.hasher.verify,
                                     row["password_hash"] if row else None, password)
        token = secrets.token_urlsafe(32)
        result = await self.call("login", login, ok and row is not None,
                                 self._token_hash(token), self.cfg.session_s,
                                 self.cfg.idle_s, one=True)
        outcome = result["outcome"]
        self.log.info("panel_login", login=login, outcome=outcome)
        if outcome != "ok":
            return web.json_response(
                {"error": "account locked for a while: ask a supervisor"
                 if outcome == "locked" else "wrong login or password"}, status=401)
        resp = web.json_response({"ok": True})
        resp.set_cookie(COOKIE, token, httponly=True, samesite="Strict",
                        secure=request.secure, max_age=self.cfg.session_s, path="/")
        return resp

    async def logout(self, request: web.Request) -> web.StreamResponse:
        self.check_post(request)
        token = request.cookies.get(COOKIE, "")
        if token:
            with contextlib.suppress(DatabaseDown):
                await self.call("logout", self._token_hash(token))
        resp = web.json_response({"ok": True})
        resp.del_cookie(COOKIE, path="/")
        return resp

    async def me(self, request: web.Request) -> web.StreamResponse:
        a = await self.agent(request)
        return web.json_response({**row(a), "originate": self.cfg.ami is not None})

    async def calls(self, request: web.Request) -> web.StreamResponse:
        a = await self.agent(request)
        return web.json_response([row(r) for r in await self.call("calls", a["agent_id"])])

    async def case(self, request: web.Request) -> web.StreamResponse:
        a = await self.agent(request)
        self.check_post(request)
        uid = call_id(request.match_info["uid"])
        r = await self.call("case", a["agent_id"], uid, one=True)
        self.log.info("panel_case", uniqueid=uid, agent=a["login"], outcome=r["outcome"])
        if r["outcome"] != "shown":
            return web.json_response({"error": "case details are shown only to the agent "
                                      "on the call, for a caller verified in full or by "
                                      "calling the agency back"}, status=403)
        return web.json_response({k: v for k, v in row(r).items() if v is not None})

    async def lookup(self, request: web.Request) -> web.StreamResponse:
        a = await self.agent(request)
        data = await self.body(request)
        uid = call_id(request.match_info["uid"])
        number = data.get("case_number")
        if not isinstance(number, str) or not number.isdigit() or not 6 <= len(number) <= 12:
            raise web.HTTPBadRequest(text="a case number is 6-12 digits\n")
        r = await self.call("case_lookup", a["agent_id"], uid, number, one=True)
        self.log.info("panel_lookup", uniqueid=uid, agent=a["login"], outcome=r["outcome"])
        self._dirty.set()
        status = 403 if r["outcome"] == "refused" else 200
        return web.json_response({"outcome": r["outcome"], "case_ref": r["case_ref"]},
                                 status=status)

    async def agencies(self, request: web.Request) -> web.StreamResponse:
        await self.agent(request)
        return web.json_response([row(r) for r in await self.call("agencies")])

    async def dispositions(self, request: web.Request) -> web.StreamResponse:
        await self.agent(request)
        return web.json_response([row(r) for r in await self.call("dispositions")])

    async def dispose(self, request: web.Request) -> web.StreamResponse:
        a = await self.agent(request)
        data = await self.body(request)
        uid = call_id(request.match_info["uid"])
        code, note = data.get("code"), data.get("note") or ""
        if not isinstance(code, str) or not isinstance(note, str) or len(note) > 2000:
            raise web.HTTPBadRequest(text="a disposition code and a note of at most 2,000 "
                                     "characters\n")
        r = await self.call("dispose", a["agent_id"], uid, code, note, one=True)
        self.log.info("panel_disposition", uniqueid=uid, agent=a["login"], code=code,
                      outcome=r["outcome"])
        if r["outcome"] != "saved":
            return web.json_response({"error": r["why"]}, status=403)
        self._dirty.set()
        return web.json_response({"outcome": "saved"})

    # --- the agent's own queues (issue 23) ----------------------------------------------
    async def presence_state(self, request: web.Request) -> web.StreamResponse:
        a = await self.agent(request)
        return web.json_response([row(r) for r in await self.call("presence_state",
                                                                   a["agent_id"])])

    async def presence(self, request: web.Request) -> web.StreamResponse:
        """Log in, out, pause (with a reason) or resume, on every node: the
        database's agent_presence, which each node's listener applies."""
        a = await self.agent(request)
        data = await self.body(request)
        action, reason = data.get("action"), data.get("reason")
        if not isinstance(action, str) or not (reason is None or isinstance(reason, str)):
            raise web.HTTPBadRequest(text="an action (login, logout, pause, resume) and, "
                                     "for a pause, a reason\n")
        r = await self.call("presence", a["agent_id"], action[:20],
                            reason[:40] if reason else None, one=True)
        self.log.info("panel_presence", agent=a["login"], action=action[:20],
                      outcome=r["outcome"])
        if r["outcome"] != "ok":
            return web.json_response({"error": r["why"]}, status=403)
        return web.json_response({"outcome": "ok"})

    # --- callbacks ------------------------------------------------------------------------
    # --- server ----------------------------------------------------------------------------
    @web.middleware
    async def fail_closed(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            resp: web.StreamResponse = await handler(request)
            return resp
        except DatabaseDown:
            return web.json_response({"error": "the panel cannot reach the database: "
                                      "nothing can be shown. Calls still reach your phone; "
                                      "its display shows V (verified) or UNVERIFIED."},
                                     status=503)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[host_guard(self._hosts), self.fail_closed],
                              client_max_size=MAX_BODY)
        app.on_response_prepare.append(safe_headers)
        r = app.router
        r.add_get("/", self.page)
        r.add_get("/call/{uid}", self.page)  # the desk phone's action URL
        r.add_get("/panel.js", self.script)
        r.add_get("/supervise.js", self.script)
        r.add_post("/api/login", self.login)
        r.add_post("/api/logout", self.logout)
        r.add_get("/api/me", self.me)
        r.add_get("/api/calls", self.calls)
        r.add_get("/api/agencies", self.agencies)
        r.add_get("/api/dispositions", self.dispositions)
        r.add_post("/api/calls/{uid}/case", self.case)
        r.add_post("/api/calls/{uid}/lookup", self.lookup)
        r.add_post("/api/calls/{uid}/disposition", self.dispose)
        r.add_get("/api/presence", self.presence_state)
        r.add_post("/api/presence", self.presence)
        self.callout.routes(r)
        self.streams.routes(r)
        self.callbacks.routes(r)
        self.supervise.routes(r)
        self.reports.routes(r)
        return app

    async def start(self) -> int:
        with contextlib.suppress(DatabaseDown):
            await self.db()  # a database that is away now is retried per request
        self._tasks = [asyncio.ensure_future(self.listener()),
                       asyncio.ensure_future(self.waker()),
                       asyncio.ensure_future(self.streams.run()),
                       asyncio.ensure_future(self.supervise.housekeeping())]
        self._runner, self.port = await live.serve(self.app(), self.cfg.host, self.cfg.port,
                                                   self.cfg.conn_idle_s)
        self.log.info("panel_listening", url=f"http://{self.cfg.host}:{self.port}/")
        return self.port

    async def stop(self) -> None:
        with contextlib.suppress(DatabaseDown):
            await self.supervise.close()
        await self.reports.close()
        await live.stop(self._tasks, self._runner, self.pool)


async def run_panel(database_url: str, config: PanelConfig, hasher: PinHasher,
                    server_settings: dict[str, str], *,
                    stop: asyncio.Event | None = None) -> int:
    panel = Panel(database_url, config, hasher, server_settings)
    with stop_on_signals(stop or asyncio.Event()) as stopping:
        try:
            port = await panel.start()
            print(f"agent panel: http://{config.host}:{port}/", flush=True)
            notify("READY=1")
            await stopping.wait()
            notify("STOPPING=1")
        finally:
            await panel.stop()
    return 0
