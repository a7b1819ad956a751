"""The supervisor's part of the agent panel (issue 24): recordings played back,
listening in on an agent's call, and the agent's transfer button.

- **Playback**, supervisors only: the page asks for a ticket
  (``POST /api/recordings/{id}/play``); the database keeps its hash, bound to
  this supervisor, for 60 s and one use.  The audio element then streams
  ``GET /api/recordings/stream/{ticket}`` with the session cookie: the play is
  audited, the file's SHA-256 checked against the indexed (and audited) one,
  and ``age`` decrypts it with the private key (SB_REC_IDENTITY_FILE) as it is
  sent.  A second GET, another session, or the link a minute later gets 403.
- **Listening in**: ``POST /api/calls/{uid}/spy`` (listen, whisper, barge); the
  database checks the role and names the agent; Asterisk rings the
  supervisor's own phone into ``sb-spy`` (ChanSpy on the agent's channel).  The
  start (answered) and the end (the supervisor's leg hung up) are audited.
- **Transfer**: ``POST /api/calls/{uid}/transfer`` (an agent's own call in
  progress): AMI BlindTransfer of the agent's channel to ``sb-transfer``, where
  the caller queues again with the verified context.
- **Housekeeping**: the playback host holds the store, so the panel purges it
  daily (SB_REC_RETENTION_DAYS; a legal hold keeps a call's recordings), each
  deletion audited as ``housekeeping:panel``; ``switchboard recordings purge``
  does the same by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from switchboard.admin import recordings as recs
from switchboard.admin.recstore import RecordingError, Store, open_sealed
from switchboard.ami_listener.actions import AmiActionError, AmiLogin, AmiSession
from switchboard.web.common import row
from switchboard.web.common import uid as call_id

if TYPE_CHECKING:
    from switchboard.web.panel import Panel

TRANSFER_TARGETS = {"intake": "700", "priority": "701", "overflow": "702",
                    "supervisors": "709"}
MODES = ("listen", "whisper", "barge")


@dataclass(frozen=True)
class SuperviseConfig:
    store: Store | None = None         # the recordings store (SB_REC_STORE)
    identity: Path | None = None       # the age private key (SB_REC_IDENTITY_FILE)
    retention_days: int = 180          # SB_REC_RETENTION_DAYS: the daily purge
    purge_every_s: float = 86400.0     # 0: no housekeeping in this panel
    purge_first_s: float = 60.0        # after the start (a restart loop purges little)
    spy_context: str = "sb-spy"
    transfer_context: str = "sb-transfer"
    ring_supervisor_s: int = 30


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class Supervise:
    def __init__(self, panel: Panel, cfg: SuperviseConfig) -> None:
        self.p = panel
        self.cfg = cfg
        self.log = panel.log
        self._watchers: set[asyncio.Task[None]] = set()

    def routes(self, r: web.UrlDispatcher) -> None:
        r.add_get("/api/recordings", self.recordings)
        r.add_post("/api/recordings/{rid}/play", self.ticket)
        r.add_get("/api/recordings/stream/{token}", self.stream)
        r.add_post("/api/calls/{uid}/spy", self.spy)
        r.add_post("/api/calls/{uid}/transfer", self.transfer)

    async def housekeeping(self) -> None:
        """The daily purge of the store (a task of the panel's while it runs)."""
        store, every = self.cfg.store, self.cfg.purge_every_s
        if store is None or every <= 0:
            return
        await asyncio.sleep(self.cfg.purge_first_s)
        while True:
            try:
                out = await recs.purge(await self.p.db(), store, self.cfg.retention_days,
                                       "housekeeping:panel")
                self.log.info("recordings_purged", deleted=out.deleted, missing=out.missing,
                              kept_by_hold=out.kept_by_hold, failed=out.failed,
                              days=self.cfg.retention_days)
            except Exception as exc:  # a bad day must not end the panel
                self.log.warning("recordings_purge_failed", error=type(exc).__name__,
                                 detail=str(exc)[:200])
                await asyncio.sleep(min(every, 600))   # soon again, not in a day
                continue
            await asyncio.sleep(every)

    async def close(self) -> None:
        for t in list(self._watchers):
            t.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        if self._watchers:
            await self.p.call("spy_orphans")

    # --- recordings ----------------------------------------------------------------
    async def recordings(self, request: web.Request) -> web.StreamResponse:
        a = await self.p.agent(request)
        if a["role"] != "supervisor":
            raise web.HTTPForbidden(text="only supervisors may play recordings\n")
        call = request.query.get("call")
        rows = await self.p.call("recordings", a["agent_id"], call_id(call) if call else None, 50)
        return web.json_response([row(r) for r in rows])

    async def ticket(self, request: web.Request) -> web.StreamResponse:
        a = await self.p.agent(request)
        self.p.check_post(request)
        rid = request.match_info["rid"]
        if not rid.isdigit() or len(rid) > 18:
            raise web.HTTPBadRequest(text="a recording is its number\n")
        if self.cfg.identity is None or self.cfg.store is None:
            return web.json_response({"error": "playback is not set up on this panel "
                                      "(SB_REC_IDENTITY_FILE, SB_REC_STORE)"}, status=503)
        token = secrets.token_urlsafe(32)
        outcome = (await self.p.call("recording_ticket", a["agent_id"], int(rid),
                                     _token_hash(token), one=True))["outcome"]
        if outcome != "ok":
            return web.json_response({"error": "only supervisors may play recordings"
                                      if outcome == "refused" else "no such recording"},
                                     status=403 if outcome == "refused" else 404)
        return web.json_response({"url": f"/api/recordings/stream/{token}"})

    async def stream(self, request: web.Request) -> web.StreamResponse:
        a = await self.p.agent(request)
        token = request.match_info["token"]
        if not 20 <= len(token) <= 100:
            raise web.HTTPForbidden(text="not a ticket\n")
        r = await self.p.call("recording_play", a["agent_id"], _token_hash(token), one=True)
        if r is None or r["outcome"] != "ok":
            raise web.HTTPForbidden(text="this ticket is spent, expired or not yours\n")
        assert self.cfg.store is not None and self.cfg.identity is not None
        try:
            data = await asyncio.to_thread(self.cfg.store.read, r["store_key"])
        except RecordingError as exc:
            await self.p.call("recording_failed", a["agent_id"], r["uniqueid"], str(exc))
            self.log.error("recording_missing", uniqueid=r["uniqueid"], error=str(exc))
            raise web.HTTPNotFound(text="the recording is missing from the store\n") from exc
        if hashlib.sha256(data).digest() != bytes(r["sha256"]):
            await self.p.call("recording_failed", a["agent_id"], r["uniqueid"],
                              "the stored file differs from the audited digest")
            self.log.error("recording_altered", uniqueid=r["uniqueid"])
            raise web.HTTPConflict(text="the stored recording is not the one that was "
                                   "recorded (its digest differs): not played\n")
        self.log.info("recording_played", uniqueid=r["uniqueid"], login=a["login"])
        resp = web.StreamResponse(headers={"Content-Type": "audio/ogg",
                                           "Content-Disposition": "inline"})
        await resp.prepare(request)
        try:
            async for chunk in open_sealed(data, self.cfg.identity):
                await resp.write(chunk)
        except RecordingError as exc:
            self.log.error("recording_decrypt_failed", uniqueid=r["uniqueid"], error=str(exc))
        await resp.write_eof()
        return resp

    # --- listening in ----------------------------------------------------------------
    async def spy(self, request: web.Request) -> web.StreamResponse:
        a = await self.p.agent(request)
        data = await self.p.body(request)
        uid = call_id(request.match_info["uid"])
        mode = data.get("mode")
        if mode not in MODES:
            raise web.HTTPBadRequest(text="mode is listen, whisper or barge\n")
        if (refused := self.p.no_ami()) is not None:
            return refused
        r = await self.p.call("spy_begin", a["agent_id"], uid, mode, one=True)
        if r["outcome"] != "ok":
            return web.json_response({"error": r["why"]}, status=403)
        started = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(self._spy_session(r["spy_id"], r["phone"], r["target"],
                                                       mode, started))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)
        result = await asyncio.shield(started)
        self.log.info("panel_spy", uniqueid=uid, login=a["login"], mode=mode,
                      spy_id=r["spy_id"], result=result)
        return web.json_response({"spy_id": r["spy_id"], "result": result},
                                 status=200 if result == "started" else 502)

    async def _spy_session(self, spy_id: int, phone: str, target: str, mode: str,
                           started: asyncio.Future[str]) -> None:
        """Ring the supervisor's phone into sb-spy; once answered, hold the AMI
        session until that leg hangs up, then close the session's row."""
        state = "failed"
        try:
            for ami in (self.p.cfg.ami, *self.p.cfg.ami_others):
                assert ami is not None
                try:
                    session = await AmiSession(ami, events="call", purpose="spy").__aenter__()
                except (AmiActionError, OSError):
                    continue
                try:
                    state = await self._spy_on(session, spy_id, phone, target, mode=mode,
                                               started=started)
                finally:
                    await session.__aexit__(None, None, None)
                break
        except asyncio.CancelledError:
            state = "unknown"
            raise
        except (AmiActionError, OSError, ValueError) as exc:
            self.log.warning("panel_spy_failed", spy_id=spy_id, error=type(exc).__name__)
        finally:
            if not started.done():
                started.set_result(state)
            with contextlib.suppress(Exception):
                await self.p.call("spy_state", spy_id, "ended" if state == "started"
                                  else state)

    async def _spy_on(self, s: AmiSession, spy_id: int, phone: str, target: str, *,
                      mode: str, started: asyncio.Future[str]) -> str:
        headers: dict[str, str | list[str]] = {
            "Channel": phone, "Context": self.cfg.spy_context, "Exten": "s",
            "Priority": "1", "Timeout": str(self.cfg.ring_supervisor_s * 1000),
            "CallerID": f'"Listen: {mode}" <spy>', "Async": "true",
            "Variable": [f"IVR_SPY_ID={spy_id}", f"IVR_SPY_TARGET={target}",
                         f"IVR_SPY_MODE={mode}"]}
        resp = await s.action("Originate", headers)
        if resp.get("Response") != "Success":
            return "failed"
        aid = resp.get("ActionID")
        ev = await s.wait_event(lambda m: m.get("Event") == "OriginateResponse"
                                and m.get("ActionID") == aid,
                                self.cfg.ring_supervisor_s + 15)
        if ev is None or ev.get("Response") != "Success":
            return "not-answered"
        leg = ev.get("Uniqueid")
        await self.p.call("spy_state", spy_id, "started")
        started.set_result("started")
        while True:  # until the supervisor's leg hangs up (or AMI goes away)
            hung = await s.wait_event(lambda m: m.get("Event") == "Hangup"
                                      and m.get("Uniqueid") == leg, 3600)
            if hung is not None or s.reader is None or s.reader.at_eof():
                return "started"

    # --- transfer ----------------------------------------------------------------------
    async def transfer(self, request: web.Request) -> web.StreamResponse:
        a = await self.p.agent(request)
        data = await self.p.body(request)
        uid = call_id(request.match_info["uid"])
        target = data.get("target")
        if target not in TRANSFER_TARGETS:
            raise web.HTTPBadRequest(text="target is intake, priority, overflow or "
                                     "supervisors\n")
        if (refused := self.p.no_ami()) is not None:
            return refused
        r = await self.p.call("transfer", a["agent_id"], uid, target, one=True)
        if r["outcome"] != "ok":
            return web.json_response({"error": r["why"]}, status=403)
        for ami in (self.p.cfg.ami, *self.p.cfg.ami_others):
            result = await self._transfer_on(ami, uid, r["interface"], target)
            if result is not None:
                self.log.info("panel_transfer", uniqueid=uid, login=a["login"],
                              target=target, result=result)
                return web.json_response({"result": result},
                                         status=200 if result == "transferred" else 502)
        return web.json_response({"error": "no node has this call"}, status=502)

    async def _transfer_on(self, ami: AmiLogin | None, uid: str, interface: str,
                           target: str) -> str | None:
        """BlindTransfer on the node that has the call; None: not this node."""
        assert ami is not None
        try:
            async with AmiSession(ami, purpose="transfer") as s:
                channels = await s.action_list("Status", {}, "StatusComplete")
                caller = next((c for c in channels if c.get("Uniqueid") == uid), None)
                if caller is None:
                    return None
                bridge = caller.get("BridgeID") or caller.get("BridgeId")
                agent = next((c.get("Channel") for c in channels
                              if bridge and (c.get("BridgeID") or c.get("BridgeId")) == bridge
                              and (c.get("Channel") or "").startswith(interface + "-")),
                             None)
                if agent is None:
                    return "failed"
                resp = await s.action("BlindTransfer", {
                    "Channel": agent, "Context": self.cfg.transfer_context,
                    "Exten": TRANSFER_TARGETS[target]})
                return "transferred" if resp.get("Response") == "Success" else "failed"
        except (AmiActionError, OSError) as exc:
            self.log.warning("panel_transfer_failed", uniqueid=uid, error=type(exc).__name__)
            return None
