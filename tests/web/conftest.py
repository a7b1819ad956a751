"""Agent panel set-up: the real AGI service verifies the callers, the real
listener stores recorded AMI streams, the real panel serves them, and a fake
AMI server answers the panel's Originate with the bytes Asterisk sends."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from switchboard import auditlog
from switchboard.admin import agents, ops
from switchboard.agi import fakecall
from switchboard.agi.app import AgiService, make_hasher
from switchboard.ami_listener.captures import Capture, Refresher, Segment
from switchboard.ami_listener.framing import Framer, parse_frame
from tests.agi.conftest import AGENCY, CASE_FOUND, LINE, OFFICER, PIN, agi_settings

PASSWORD = {"alice": "alice-password-123", "bob": "bob-password-1234",
            "sue": "supervisor-sue-pass"}
AGENTS = (("alice", "Alice Agent", "PJSIP/2001", "agent"),
          ("bob", "Bob Agent", "PJSIP/2002", "agent"),
          ("sue", "Sue Supervisor", "PJSIP/2009", "supervisor"))
OTHER_LINE = "+16155550155"  # a second registered line of the agency


def keyed(tmp: Path) -> dict[str, str]:
    key = tmp / "audit.key"
    key.write_text("an audit key kept outside the database 0123456789\n")
    key.chmod(0o600)
    return {"SB_AUDIT_KEY_FILE": str(key), "SB_AUDIT_ANCHOR_FILE": str(tmp / "anchors.log")}


async def seed(db_url: str, env: dict[str, str]) -> None:
    """Agency 42 with its registered line, two officers, a case with details,
    three agents; as the ops commands do it, with the audit key."""
    settings = agi_settings(**env)
    key = auditlog.settings_key(settings)
    conn = await asyncpg.connect(db_url, server_settings=auditlog.session_settings(key))
    try:
        hasher = make_hasher(settings)
        await ops.agency_add(conn, AGENCY, "Demo County Sheriff's Office (FAKE)")
        await ops.line_add(conn, AGENCY, LINE, "US", "switchboard room")
        await ops.agency_add(conn, "77", "Other Force (FAKE)")
        await ops.line_add(conn, "77", OTHER_LINE, "US", "control room")
        for number in (OFFICER, "1002"):
            await ops.officer_add(conn, AGENCY, number, f"Officer {number} (FAKE)")
            await ops.officer_set_pin(conn, hasher, AGENCY, number, PIN)
        await ops.case_add(conn, CASE_FOUND, "high", "national desk")
        await conn.execute("UPDATE case_record SET summary = 'Child last seen at the "
                           "station (FAKE)', sensitive = 'Family court order (FAKE)' "
                           "WHERE case_number = $1", CASE_FOUND)
        for login, name, iface, role in AGENTS:
            await agents.agent_add(conn, login, name, iface, role)
            await agents.agent_set_password(conn, hasher, login, PASSWORD[login])
    finally:
        await conn.close()


def _ts(frame: bytes) -> float:
    return float(frame.split(b"Timestamp: ")[1].split(b"\r\n")[0])


def answered_call() -> tuple[str, list[bytes]]:
    """a_answered_ts (a caller answered by PJSIP/2001, talking 12 s) as a new
    call: its uniqueid and its frames (replay them with ``stamp_on_send``, so
    their Timestamps are when they are sent)."""
    frames = Capture.load("a_answered_ts").event_frames()
    stamped = [f for f in frames if b"\r\nTimestamp: " in f]
    called = frames[index(frames, "AgentCalled")]
    fresh = Refresher().frames(frames, shift_to=time.time() - (_ts(called) - _ts(stamped[0])))
    uid = parse_frame(fresh[index(fresh, "AgentCalled")]).get("Uniqueid") or ""
    return uid, fresh


def index(frames: list[bytes], event: str) -> int:
    return next(i for i, f in enumerate(frames) if f.startswith(f"Event: {event}".encode()))


def call_segment(frames: list[bytes], *, end: bool) -> Segment:
    """Sent as Asterisk sent it: up to AgentCalled now, up to AgentConnect a
    second later, the end (the caller hangs up) 12 s after that, or never."""
    called, connect = index(frames, "AgentCalled"), index(frames, "AgentConnect")
    hangup = index(frames, "Cdr")  # the call's end starts with its CDR
    t0 = _ts(frames[called])
    parts = [(0.0, b"".join(frames[:called + 1])),
             (_ts(frames[connect]) - t0, b"".join(frames[called + 1:hangup]))]
    if end:
        parts.append((_ts(frames[hangup]) - t0, b"".join(frames[hangup:])))
    return Segment(parts, False)


async def verify(port: int, uid: str, keys: list[str], *, callerid: str = LINE,
                 lookup: str | None = CASE_FOUND) -> dict[str, str]:
    """The caller's IVR steps through the real FastAGI service."""
    out = await fakecall.play(fakecall.Call("verify", uid, callerid, keys,
                                            fakecall.attested(callerid)), port)
    got = dict(out.variables)
    if lookup and got.get("SB_VERIFIED") in ("full", "line-only"):
        more = await fakecall.play(fakecall.Call("lookup", uid, callerid, [lookup],
                                                 {"SB_VERIFIED": got["SB_VERIFIED"]}), port)
        got.update(more.variables)
    return got


@contextlib.asynccontextmanager
async def agi_service(db_url: str, env: dict[str, str]) -> Any:
    from tests.helpers import as_service
    service = AgiService(agi_settings(**env), as_service(db_url, "agi"))
    port = await service.start()
    try:
        yield port
    finally:
        await service.stop()


@dataclass
class FakeAmi:
    """Asterisk's AMI as far as the panel uses it: the MD5 challenge login,
    Originate (Async) answered at once and then by an OriginateResponse event,
    Logoff.  ``answer``: Success (the agent picked up) or Failure."""
    secret: str = "panel-secret"
    answer: str = "Success"
    delay_s: float = 0.2
    originates: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        framer = Framer(expect_banner=False)
        challenge = "518213746"
        n = 0
        try:
            while data := await reader.read(65536):
                for raw in framer.feed(data):
                    msg = parse_frame(raw)
                    aid = msg.get("ActionID") or ""
                    action = (msg.get("Action") or "").lower()
                    if action == "challenge":
                        writer.write(f"Response: Success\r\nActionID: {aid}\r\n"
                                     f"Challenge: {challenge}\r\n\r\n".encode())
                    elif action == "login":
                        want = hashlib.md5((challenge + self.secret).encode(),
                                           usedforsecurity=False).hexdigest()
                        ok = msg.get("Key") == want and msg.get("Username") == "panel"
                        writer.write((f"Response: Success\r\nActionID: {aid}\r\nMessage: "
                                      "Authentication accepted\r\n\r\n" if ok else
                                      f"Response: Error\r\nActionID: {aid}\r\nMessage: "
                                      "Authentication failed\r\n\r\n").encode())
                        if not ok:
                            writer.close()
                            return
                    elif action == "originate":
                        n += 1
                        self.originates.append({"fields": dict(msg.fields), "raw": raw})
                        writer.write(f"Response: Success\r\nActionID: {aid}\r\nMessage: "
                                     "Originate successfully queued\r\n\r\n".encode())
                        await writer.drain()
                        await asyncio.sleep(self.delay_s)
                        channel = msg.get("Channel") or ""
                        writer.write(
                            f"Event: OriginateResponse\r\nPrivilege: call,all\r\n"
                            f"ActionID: {aid}\r\nResponse: {self.answer}\r\n"
                            f"Channel: {channel}-0000000{n}\r\nContext: sb-oob\r\nExten: s\r\n"
                            f"Reason: {4 if self.answer == 'Success' else 3}\r\n"
                            f"Uniqueid: pbx-a-1795859999.{n}\r\nCallerIDNum: <unknown>\r\n"
                            f"CallerIDName: <unknown>\r\n\r\n".encode())
                    elif action == "logoff":
                        writer.write(f"Response: Goodbye\r\nActionID: {aid}\r\nMessage: "
                                     "Thanks for all the fish.\r\n\r\n".encode())
                        await writer.drain()
                        writer.close()
                        return
                    else:
                        writer.write(f"Response: Error\r\nActionID: {aid}\r\nMessage: "
                                     "Invalid/unknown command\r\n\r\n".encode())
                    await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


class PgProxy:
    """A TCP relay in front of PostgreSQL that the test can cut and restore: the
    database going away and coming back, as the panel sees it."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.up = True
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        try:
            r2, w2 = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._links |= {writer, w2}

        async def pipe(a: asyncio.StreamReader, b: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await a.read(65536):
                    b.write(data)
                    await b.drain()
            b.close()
        await asyncio.gather(pipe(reader, w2), pipe(r2, writer))

    def cut(self) -> None:
        self.up = False
        for w in list(self._links):
            w.close()
        self._links.clear()

    def restore(self) -> None:
        self.up = True

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
