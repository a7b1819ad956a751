"""A loopback AMI server that replays real Asterisk 22 captures.

Used by ``make demo`` (the built-in traffic source), by the tests and by the
benchmark.  It speaks enough AMI to stand in for Asterisk: banner, Login (with
the secret checked), Ping, QueueStatus (answered from a recorded list), Filter,
Logoff; everything else gets the error Asterisk gives an unknown action.  Our
replies are only ever sent between two whole frames of the recording.

Each connection plays the next ``Segment`` (switchboard/ami_listener/captures.py:
the recordings, and fresh uniqueids for replaying them again): a list of
``(seconds_from_start, bytes)`` chunks, then closes (or stays idle).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from switchboard.ami_listener.captures import SEP, Segment
from switchboard.ami_listener.framing import Framer, Message, parse_frame

_TS_RE = re.compile(rb"Timestamp: [0-9.]+")


# Asterisk 22's answers to the queue member actions (app_queue.c)
MEMBER_ACTIONS = {"queueadd": b"Added interface to queue",
                  "queueremove": b"Removed interface from queue",
                  "queuepause": b"Interface paused successfully"}


def member_event(action: str, msg: Message) -> bytes:
    """The event Asterisk 22 sends after a member action, in the recorded
    format (tests/fixtures/asterisk/ami/e_member_actions.ami)."""
    name = {"queueadd": "QueueMemberAdded", "queuepause": "QueueMemberPause",
            "queueremove": "QueueMemberRemoved"}[action]
    paused = str(msg.get("Paused") or "").lower() in ("true", "1", "yes")
    iface = str(msg.get("Interface") or "")
    fields = [("Event", name), ("Privilege", "agent,all"), ("Queue", str(msg.get("Queue") or "")),
              ("MemberName", str(msg.get("MemberName") or iface)), ("Interface", iface),
              ("StateInterface", iface), ("Membership", "dynamic"), ("Penalty", "0"),
              ("CallsTaken", "0"), ("LastCall", "0"), ("LastPause", "0"),
              ("LoginTime", str(int(time.time()))), ("InCall", "0"), ("Status", "1"),
              ("Paused", "1" if paused else "0"),
              ("PausedReason", str(msg.get("Reason") or "") if paused else ""),
              ("Ringinuse", "0"), ("Wrapuptime", "0"),
              ("Timestamp", f"{time.time():.6f}")]
    return "".join(f"{k}: {v}\r\n" for k, v in fields).encode() + b"\r\n"


@dataclass
class ServerOptions:
    username: str = "listener"
    secret: str = "listenerpass"  # noqa: S105 - the lab password of the captures
    answer_pings: bool = True
    filter_allowed: bool = False
    # QueueStatus list items (ActionID rewritten): one list for every connection, or
    # a function of the connection number (1, 2, ...) for what changed meanwhile
    queue_status: list[bytes] | Callable[[int], list[bytes]] | None = None
    speed: float | None = 1.0  # None: as fast as the socket takes it
    resync_first: bool = True  # hold the stream until the QueueStatus reply went out
    stamp_on_send: bool = False  # rewrite Timestamp headers to the send time (benchmark)
    banner: bytes = b"Asterisk Call Manager/11.0.0\r\n"
    # Action: Command -> (success, output lines) or None for Asterisk's
    # "Permission denied" (a user without the command class)
    command: Callable[[str], tuple[bool, list[str]]] | None = None
    # after the last segment, every new connection is dropped at once (a node
    # that died: issue 23)
    refuse_after: bool = False
    # answer QueueAdd, QueuePause and QueueRemove with the event Asterisk then
    # sends (QueueMemberAdded, QueueMemberPause, QueueMemberRemoved), as a member
    # list of its own would
    member_events: bool = False
    # and that event this late (a busy node: the reply comes first)
    member_event_delay: float = 0.0


@dataclass
class ServerStats:
    connections: int = 0
    logins: int = 0
    bytes_sent: int = 0
    pings: int = 0
    actions: list[str] = field(default_factory=list)
    # QueueAdd, QueueRemove, QueuePause as sent (their headers)
    member_actions: list[dict[str, str]] = field(default_factory=list)
    segments_done: int = 0


class ReplayServer:
    def __init__(self, segments: list[Segment], options: ServerOptions | None = None) -> None:
        self.segments = list(segments)
        self.options = options or ServerOptions()
        self.stats = ServerStats()
        self.server: asyncio.Server | None = None
        self.port = 0
        self.finished = asyncio.Event()
        self._conns: set[asyncio.StreamWriter] = set()
        self._next = 0
        self.members: set[tuple[str, str]] = set()  # (queue, interface): member_events

    def _member_refusal(self, name: str, msg: Message) -> bytes | None:
        """Asterisk's refusals of a member action, as recorded (e_member_actions),
        when this node keeps a member list of its own (``member_events``)."""
        if not self.options.member_events:
            return None
        key = (str(msg.get("Queue") or ""), str(msg.get("Interface") or ""))
        if name == "queueadd":
            if key in self.members:
                return b"Unable to add interface: Already there"
            self.members.add(key)
        elif name == "queueremove":
            if key not in self.members:
                return b"Unable to remove interface: Not there"
            self.members.discard(key)
        elif key not in self.members:
            return b"Interface not found"
        return None

    async def _later(self, send: Callable[[bytes], Awaitable[None]], event: bytes) -> None:
        await asyncio.sleep(self.options.member_event_delay)
        with contextlib.suppress(OSError, RuntimeError):
            await send(event)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self.server = await asyncio.start_server(self._handle, host, port, backlog=512)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for w in list(self._conns):
            w.close()
        if self.server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

    def drop_all(self) -> None:
        """Cut every open connection (socket loss)."""
        for w in list(self._conns):
            w.transport.abort()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.options.refuse_after and self._next >= len(self.segments):
            writer.transport.abort()
            return
        self.stats.connections += 1
        connection = self.stats.connections
        self._conns.add(writer)
        out_lock = asyncio.Lock()
        pending: list[bytes] = []
        at_boundary = True
        logged_in = asyncio.Event()
        closing = asyncio.Event()
        resynced = asyncio.Event()
        challenges: list[bytes] = []
        later: set[asyncio.Future[None]] = set()

        async def send(data: bytes) -> None:
            async with out_lock:
                writer.write(data)
                self.stats.bytes_sent += len(data)
                await writer.drain()

        async def reply(data: bytes) -> None:
            if at_boundary:
                await send(data)
            else:
                pending.append(data)

        async def actions() -> None:
            framer = Framer(1 << 20, expect_banner=False)
            while True:
                data = await reader.read(65536)
                if not data:
                    closing.set()
                    return
                for frame in framer.feed(data):
                    msg = parse_frame(frame)
                    name = (msg.get("Action") or "").lower()
                    aid = (msg.get("ActionID") or "").encode()
                    self.stats.actions.append(name)
                    head = b"Response: %s\r\nActionID: " + aid + b"\r\n"
                    if name == "challenge":
                        nonce = str(random.randrange(10**8, 10**9)).encode()  # noqa: S311
                        challenges.append(nonce)
                        await send(head % b"Success" + b"Challenge: " + nonce + b"\r\n\r\n")
                    elif name == "login":
                        if msg.get("Username") == self.options.username and (
                                msg.get("Secret") == self.options.secret
                                or ((msg.get("AuthType") or "").lower() == "md5" and challenges
                                    and msg.get("Key") == hashlib.md5(
                                        challenges[-1] + self.options.secret.encode(),
                                        usedforsecurity=False).hexdigest())):
                            await send(head % b"Success"
                                       + b"Message: Authentication accepted\r\n\r\n")
                            self.stats.logins += 1
                            logged_in.set()
                        else:
                            await send(head % b"Error" + b"Message: Authentication failed\r\n\r\n")
                            closing.set()
                            return
                    elif not logged_in.is_set():
                        await send(head % b"Error" + b"Message: Permission denied\r\n\r\n")
                    elif name == "ping":
                        self.stats.pings += 1
                        if self.options.answer_pings:
                            await reply(head % b"Success" + b"Ping: Pong\r\nTimestamp: %.6f\r\n\r\n"
                                        % time.time())
                    elif name == "queuestatus":
                        await reply(self._queue_status(aid, connection))
                        resynced.set()
                    elif name == "filter":
                        if self.options.filter_allowed:
                            await reply(head % b"Success" + b"Message: Filter Added\r\n\r\n")
                        else:
                            await reply(head % b"Error" + b"Message: Permission denied\r\n\r\n")
                    elif name == "command" and self.options.command is not None:
                        ok, lines = self.options.command(msg.get("Command") or "")
                        if ok:  # the recorded shape: one Output header per line
                            out = b"".join(b"Output: " + x.encode() + b"\r\n" for x in lines)
                            await reply(head % b"Success" + b"Message: Command output "
                                        b"follows\r\n" + out + b"\r\n")
                        else:
                            await reply(head % b"Error" + b"Message: " + "; ".join(lines)
                                        .encode() + b"\r\n\r\n")
                    elif name in MEMBER_ACTIONS:
                        self.stats.member_actions.append(
                            {k: str(v) for k, v in msg.fields.items() if k != "ActionID"})
                        refusal = self._member_refusal(name, msg)
                        if refusal is not None:
                            await reply(head % b"Error" + b"Message: " + refusal + b"\r\n\r\n")
                            continue
                        said = MEMBER_ACTIONS[name]
                        if name == "queuepause" and str(msg.get("Paused")).lower() != "true":
                            said = b"Interface unpaused successfully"
                        await reply(head % b"Success" + b"Message: " + said + b"\r\n\r\n")
                        if self.options.member_events:
                            event = member_event(name, msg)
                            if self.options.member_event_delay:
                                later.add(asyncio.ensure_future(self._later(send, event)))
                            else:
                                await send(event)
                    elif name == "logoff":
                        await reply(head % b"Goodbye"
                                    + b"Message: Thanks for all the fish.\r\n\r\n")
                        closing.set()
                        return
                    else:
                        await reply(head % b"Error" + b"Message: Invalid/unknown command: "
                                    + name.encode() + b". Use Action: ListCommands to show "
                                    b"available commands.\r\n\r\n")

        action_task = asyncio.ensure_future(actions())
        try:
            await send(self.options.banner)
            login_wait = asyncio.ensure_future(logged_in.wait())
            await asyncio.wait({login_wait, action_task}, timeout=10,
                               return_when=asyncio.FIRST_COMPLETED)
            login_wait.cancel()
            if not logged_in.is_set():
                return
            if self.options.resync_first:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(resynced.wait(), timeout=2.0)
            segment = self.segments[self._next] if self._next < len(self.segments) else None
            self._next += 1
            close_at_end = False
            if segment is not None:
                loop = asyncio.get_running_loop()
                start = loop.time()
                for t, chunk in segment.chunks:
                    if self.options.speed is not None:
                        delay = start + t / self.options.speed - loop.time()
                        if delay > 0:
                            await asyncio.sleep(delay)
                    if closing.is_set():
                        break
                    at_boundary = False
                    data = (_TS_RE.sub(b"Timestamp: %.6f" % time.time(), chunk)
                            if self.options.stamp_on_send else chunk)
                    await send(data)
                    at_boundary = data.endswith(SEP)
                    if at_boundary and pending:
                        queued, pending[:] = list(pending), []
                        for p in queued:
                            await send(p)
                self.stats.segments_done += 1
                close_at_end = segment.close_at_end
                at_boundary = True
                for p in pending:
                    await send(p)
                pending.clear()
            self.finished.set()
            if not close_at_end:
                await asyncio.wait({action_task})
        except (ConnectionError, OSError):
            pass
        finally:
            action_task.cancel()
            with contextlib.suppress(BaseException):
                await action_task
            for f in later:
                f.cancel()
            self._conns.discard(writer)
            writer.close()

    def _queue_status(self, aid: bytes, connection: int) -> bytes:
        spec = self.options.queue_status
        items = (spec(connection) if callable(spec) else spec) or []
        out = [b"Response: Success\r\nActionID: " + aid
               + b"\r\nEventList: start\r\nMessage: Queue status will follow\r\n\r\n"]
        for frame in items:
            out.append(re.sub(rb"ActionID: [^\r]*", b"ActionID: " + aid, frame))
        out.append(b"Event: QueueStatusComplete\r\nActionID: " + aid
                   + b"\r\nEventList: Complete\r\nListItems: %d\r\n\r\n" % len(items))
        return b"".join(out)

