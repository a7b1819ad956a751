"""Calling an agency back from the agent panel: the database hands out the
agency's registered number (never one the caller or the agent gave); Asterisk
rings the agent's own phone first, then dials that number (AMI ``Originate``
into the dialplan context ``sb-oob``, on the first node that answers among
SB_PANEL_AMI_ADDR); the agent then says whether the agency confirmed the
officer (sb_panel_oob_*)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from switchboard.ami_listener.actions import AmiActionError, AmiSession
from switchboard.web.common import uid as call_id

if TYPE_CHECKING:
    from switchboard.web.panel import Panel


class CallOut:
    def __init__(self, panel: Panel) -> None:
        self.p = panel

    def routes(self, r: web.UrlDispatcher) -> None:
        r.add_post("/api/calls/{uid}/oob", self.oob)
        r.add_post("/api/oob/{oob}/confirm", self.oob_confirm)

    async def originate(self, oob_id: int, interface: str, e164: str,
                         caller_name: str) -> str:
        """Ring the agent's phone, then (dialplan sb-oob) the agency's number.
        accepted: the agent answered and the agency is being dialled."""
        if self.p.cfg.ami is None:
            return "failed"
        for ami in (self.p.cfg.ami, *self.p.cfg.ami_others):
            try:
                session = await AmiSession(ami, events="call", purpose="panel").__aenter__()
            except (AmiActionError, OSError) as exc:  # this node is away: the next one
                self.p.log.warning("panel_node_unreachable", host=ami.host, port=ami.port,
                                 error=type(exc).__name__)
                continue
            return await self._originate_on(session, oob_id, interface, e164, caller_name)
        return "failed"

    async def _originate_on(self, s: AmiSession, oob_id: int, interface: str, e164: str,
                            caller_name: str) -> str:
        """Originate on a node whose AMI session is open (closed here)."""
        try:
            headers: dict[str, str | list[str]] = {
                "Channel": interface, "Context": self.p.cfg.oob_context, "Exten": "s",
                "Priority": "1", "Timeout": str(self.p.cfg.ring_agent_s * 1000),
                "CallerID": f'"{caller_name}" <{e164}>', "Async": "true",
                "Variable": [f"IVR_OOB_ID={oob_id}", f"IVR_OOB_NUMBER={e164}"]}
            resp = await s.action("Originate", headers)
            if resp.get("Response") != "Success":
                return "failed"
            aid = resp.get("ActionID")
            ev = await s.wait_event(
                lambda m: m.get("Event") == "OriginateResponse"
                and m.get("ActionID") == aid, self.p.cfg.originate_wait_s)
            return "accepted" if ev is not None and ev.get("Response") == "Success" \
                else "failed"
        except (AmiActionError, OSError, ValueError) as exc:
            self.p.log.warning("panel_originate_failed", oob_id=oob_id,
                             error=type(exc).__name__, detail=str(exc)[:200])
            return "failed"
        finally:
            await s.__aexit__(None, None, None)

    async def place(self, a: Any, uid: str, r: Any) -> web.StreamResponse:
        if r["outcome"] != "started":
            return web.json_response({"error": r["why"]}, status=403)
        self.p.log.info("panel_oob_started", uniqueid=uid, agent=a["login"], oob_id=r["oob_id"])
        result = await self.originate(r["oob_id"], r["interface"], r["e164"],
                                        f"Call back {r['agency_name']}"[:60])
        await self.p.call("oob_result", r["oob_id"], result, None)
        self.p.log.info("panel_oob_originate", uniqueid=uid, oob_id=r["oob_id"], result=result)
        return web.json_response({"oob_id": r["oob_id"], "originate": result,
                                  "agency_name": r["agency_name"], "e164": r["e164"]},
                                 status=200 if result == "accepted" else 502)

    async def oob(self, request: web.Request) -> web.StreamResponse:
        a = await self.p.agent(request)
        data = await self.p.body(request)
        uid = call_id(request.match_info["uid"])
        agency = data.get("agency")
        if agency is not None and not (isinstance(agency, str) and agency.isdigit()
                                       and len(agency) <= 6):
            raise web.HTTPBadRequest(text="an agency is its code\n")
        if (refused := self.p.no_ami()) is not None:
            return refused
        r = await self.p.call("oob_begin", a["agent_id"], uid, agency, one=True)
        return await self.place(a, uid, r)

    async def oob_confirm(self, request: web.Request) -> web.StreamResponse:
        a = await self.p.agent(request)
        data = await self.p.body(request)
        try:
            oob_id = int(request.match_info["oob"])
        except ValueError as exc:
            raise web.HTTPBadRequest(text="bad id\n") from exc
        confirmed = data.get("confirmed")
        if not isinstance(confirmed, bool):
            raise web.HTTPBadRequest(text="confirmed: true or false\n")
        r = await self.p.call("oob_confirm", a["agent_id"], oob_id, confirmed, one=True)
        self.p.log.info("panel_oob_confirm", agent=a["login"], oob_id=oob_id,
                      outcome=r["outcome"])
        self.p.changed_now()  # the call's level changed: every page showing it
        return web.json_response({"outcome": r["outcome"]},
                                 status=403 if r["outcome"] == "refused" else 200)
