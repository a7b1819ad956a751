"""AMI connection for one node: connect, log in, read, spool, watch, reconnect.

The read loop does no database work and never waits on anything but the
socket: each TCP read is split into frames and appended to the spool in one
write, then the loop reads again.  Responses to our own actions (Login, Ping,
Filter, QueueStatus) resolve futures; events (including the QueueStatus list,
tagged with our ActionID) go to the spool in arrival order.

Replaces panoramisk's ``Manager``/``AMIProtocol`` (docs/dependencies.md):
their defects sit in the framing and the connection code, not at the edges.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections import Counter
from typing import Any

from switchboard import log
from switchboard.ami_listener.framing import Framer, Message, parse_frame, render_action
from switchboard.ami_listener.metrics import Metrics
from switchboard.ami_listener.normalise import (
    RESYNC_ACTION_PREFIX,
    SPOOLED_EVENTS_B,
    SYNTHETIC_PREFIX,
    session_filter_regex,
    synthetic_frame,
)
from switchboard.ami_listener.spool import Spool, SpoolFull
from switchboard.ami_listener.writer import Backoff
from switchboard.settings import AmiNode, ListenerSettings

READ_SIZE = 1 << 16


class AmiError(Exception):
    pass


class LoginFailed(AmiError):
    pass


class AmiClient:
    def __init__(self, node: AmiNode, spool: Spool, settings: ListenerSettings,
                 metrics: Metrics) -> None:
        self.node = node
        self.spool = spool
        self.settings = settings
        self.metrics = metrics
        self.log = log.get("ami_listener.client").bind(node=node.name)
        self.framer = Framer(settings.frame_max_bytes)
        self.backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s)
        self.session = 0
        self.connected = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._action_seq = 0
        self._spool_full_logged = 0.0
        self.frames_spooled = 0
        self.last_rx_us: int | None = None  # when bytes last came from Asterisk
        self._login_id: str | None = None
        self._oversize_seen = 0
        self._oversize_logged = 0.0
        self.dropped: Counter[bytes] = Counter()  # by event name, flushed to metrics
        # Asterisk said it is stopping (Shutdown, or an action refused "Asterisk is
        # shutting down"): no more Pings on this connection, it is about to close
        self.asterisk_stopping = False
        # said the node is lost (since the last login): said once per loss
        self.node_lost_said = False

    # -- public ----------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected until ``stop`` is set."""
        while not stop.is_set():
            reason = "connection closed"
            try:
                await self._session(stop)
            except LoginFailed as exc:
                reason = f"login failed: {exc}"
                self.log.error("ami_login_failed", detail=str(exc), host=self.node.host,
                               port=self.node.port, user=self.node.username)
            except (OSError, TimeoutError, AmiError, asyncio.IncompleteReadError) as exc:
                reason = f"{type(exc).__name__}: {exc}"[:200]
                self.log.warning("ami_connection_lost", error=reason)
            except Exception as exc:  # a bug must not end the node's connection for good
                reason = f"internal error: {type(exc).__name__}"
                self.metrics.drop(self.node.name, "client_error")
                self.log.exception("ami_client_error", error=repr(exc)[:300])
            finally:
                was_connected = self.connected.is_set()
                self.connected.clear()
                self.metrics.connected.labels(self.node.name).set(0)
                self._fail_pending()
                if was_connected:
                    # the gap starts at the last bytes Asterisk sent (a Ping reply counts)
                    self._spool([synthetic_frame("disconnected", Reason=reason,
                                                 LastFrame=str(self.last_rx_us or ""))])
            if stop.is_set():
                break
            delay = self._node_lost_check(self.backoff.next_delay())
            self.log.info("ami_reconnect_scheduled", retry_in_s=round(delay, 2))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)

    def _node_lost_check(self, delay: float) -> float:
        """Between reconnects: once the node has been silent for SB_NODE_LOST_S
        since its last bytes, say it is lost (once per loss: its calls end as
        cut, the wall board says it is down).  Returns the delay to wait before
        the next attempt, shortened so that the moment is not missed."""
        if self.last_rx_us is None or self.node_lost_said:
            return delay
        silent_s = time.time() - self.last_rx_us / 1e6
        left = self.settings.node_lost_s - silent_s
        if left > 0:
            return min(delay, left + 0.01)
        self.node_lost_said = True
        self.log.error("ami_node_lost", silent_s=round(silent_s, 2),
                       hint="Asterisk does not answer: its calls are cut; the front sends "
                       "new calls to the other nodes")
        self._spool([synthetic_frame("nodelost", Reason=f"no answer for {silent_s:.1f} s",
                                     LastFrame=str(self.last_rx_us))])
        return delay

    # -- one connection --------------------------------------------------------
    async def _session(self, stop: asyncio.Event) -> None:
        s = self.settings
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.node.host, self.node.port, limit=READ_SIZE),
            timeout=s.connect_timeout_s)
        self._writer = writer
        self.framer.reset()
        self.asterisk_stopping = False
        reader_task = asyncio.ensure_future(self._read_loop(reader))
        stop_task = asyncio.ensure_future(stop.wait())
        try:
            await self._login(reader_task)  # the read loop spooled "connected"
            self.backoff.reset()
            self.metrics.reconnects.labels(self.node.name).inc()
            self.metrics.connected.labels(self.node.name).set(1)
            self.connected.set()
            self.node_lost_said = False
            self.log.info("ami_logged_in", session=self.session, banner=self._banner())
            if s.session_filter:
                await self._session_filter()
            resync = asyncio.ensure_future(self._resync())
            pinger = asyncio.ensure_future(self._ping_loop())
            waitables: set[asyncio.Future[Any]] = {reader_task, stop_task, pinger}
            done, _ = await asyncio.wait(waitables,
                                         return_when=asyncio.FIRST_COMPLETED)
            for task in (resync, pinger):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, AmiError, TimeoutError, OSError):
                await asyncio.gather(resync, pinger, return_exceptions=False)
            if stop_task in done:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.action("Logoff", {}), timeout=1.0)
                return  # our own goodbye: not a lost connection
            if pinger in done and not pinger.cancelled() and pinger.exception():
                raise pinger.exception()  # type: ignore[misc]
            if reader_task.done() and not reader_task.cancelled():
                exc = reader_task.exception()
                if exc is not None:
                    raise exc
                raise AmiError("Asterisk closed the connection")
        finally:
            self.flush_dropped()
            stop_task.cancel()
            reader_task.cancel()
            with contextlib.suppress(BaseException):
                await reader_task
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._writer = None

    def _banner(self) -> str:
        return (self.framer.banner or b"").decode("ascii", "replace")[:80]

    async def _login(self, reader_task: asyncio.Future[None]) -> None:
        if self.settings.auth == "md5":
            # challenge-response: the secret itself never crosses the wire
            challenge = await self._reply_or_close(
                self._send("Challenge", {"AuthType": "MD5"}), reader_task)
            nonce = challenge.get("Challenge")
            if challenge.name != "Success" or not nonce:
                raise LoginFailed(challenge.get("Message") or "no MD5 challenge")
            key = hashlib.md5((nonce + self.node.secret).encode(),  # AMI's own scheme
                              usedforsecurity=False).hexdigest()
            fut = self._send("Login", {"AuthType": "MD5", "Username": self.node.username,
                                       "Key": key, "Events": "on"}, self._login_action_id())
        else:
            fut = self._send("Login", {"Username": self.node.username,
                                       "Secret": self.node.secret, "Events": "on"},
                             self._login_action_id())
        reply = await self._reply_or_close(fut, reader_task)
        if reply.name != "Success":
            raise LoginFailed(reply.get("Message") or reply.name)

    def _next_action_id(self, prefix: str = "sb-") -> str:
        self._action_seq += 1
        return f"{prefix}{self.session}-{self._action_seq}"

    def _login_action_id(self) -> str:
        self._login_id = self._next_action_id()
        return self._login_id

    def _logged_in_frame(self, msg: Message) -> bytes | None:
        """The synthetic "connected" frame, placed in the spool exactly where the
        Login reply was in the stream: Asterisk sends FullyBooted in the same
        read, and it belongs after the mark, not before."""
        if self._login_id is None or msg.get("ActionID") != self._login_id:
            return None
        self._login_id = None
        if msg.name != "Success":
            return None
        self.session += 1
        return synthetic_frame("connected", Session=str(self.session))

    async def _reply_or_close(self, fut: asyncio.Future[Message],
                              reader_task: asyncio.Future[None]) -> Message:
        waitables: set[asyncio.Future[Any]] = {fut, reader_task}
        done, _ = await asyncio.wait(waitables, timeout=self.settings.connect_timeout_s,
                                     return_when=asyncio.FIRST_COMPLETED)
        if fut not in done:
            if reader_task in done:
                raise AmiError("connection closed before the login reply")
            raise TimeoutError("no login reply")
        return fut.result()

    async def _session_filter(self) -> None:
        reply = await asyncio.wait_for(
            self.action("Filter", {"Operation": "Add", "Filter": session_filter_regex()}),
            timeout=self.settings.ping_timeout_s)
        if reply.name != "Success":
            self.log.info("ami_session_filter_refused", detail=reply.get("Message"),
                          note="relying on manager.conf eventfilter and the edge filter")

    async def _resync(self) -> None:
        """QueueStatus after each login: the list items go to the spool like events."""
        action_id = self._next_action_id(RESYNC_ACTION_PREFIX)
        try:
            reply = await asyncio.wait_for(self.action("QueueStatus", {}, action_id=action_id),
                                           timeout=max(self.settings.ping_timeout_s, 5.0))
        except (TimeoutError, AmiError) as exc:
            self.log.warning("ami_resync_failed", error=type(exc).__name__)
            self._spool([synthetic_frame("resync-failed", Reason=type(exc).__name__)])
            return
        if reply.name != "Success":
            self.log.warning("ami_resync_refused", detail=reply.get("Message"))
            self._spool([synthetic_frame("resync-failed", Reason=reply.get("Message") or "")])

    async def _ping_loop(self) -> None:
        s = self.settings
        while True:
            await asyncio.sleep(s.ping_interval_s)
            if self.asterisk_stopping:
                continue  # it closes the connection itself; the reader sees that
            try:
                reply = await asyncio.wait_for(self.action("Ping", {}),
                                               timeout=s.ping_timeout_s)
            except TimeoutError as exc:
                if self.asterisk_stopping:  # it said so meanwhile: no answer is due
                    continue
                self.log.warning("ami_ping_timeout", timeout_s=s.ping_timeout_s)
                raise AmiError("no reply to Ping") from exc
            if reply.name == "Error" and "shutting down" in (reply.get("Message") or ""):
                self._stopping("ping refused")
                continue
            # the connection was alive now: a gap that follows starts no earlier
            self._spool([synthetic_frame("alive")])

    # -- actions ---------------------------------------------------------------
    def _send(self, action: str, headers: dict[str, str], action_id: str | None = None
              ) -> asyncio.Future[Message]:
        if self._writer is None:
            raise AmiError("not connected")
        if action_id is None:
            action_id = self._next_action_id()
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[action_id] = fut
        self._writer.write(render_action(action, {"ActionID": action_id, **headers}))
        return fut

    async def action(self, action: str, headers: dict[str, str], *,
                     action_id: str | None = None) -> Message:
        fut = self._send(action, headers, action_id)
        try:
            return await fut
        finally:
            self._pending = {k: v for k, v in self._pending.items() if v is not fut}

    def _fail_pending(self) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(AmiError("connection lost"))
                fut.exception()  # mark retrieved
        self._pending.clear()

    # -- reading ---------------------------------------------------------------
    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        name = self.node.name
        received = self.metrics.received.labels(name)
        reads = 0
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                return
            self.last_rx_us = time.time_ns() // 1000
            frames = self.framer.feed(data)
            if self.framer.stats.oversize != self._oversize_seen:
                self._oversize()
            if not frames:
                continue
            received.inc(len(frames))
            events: list[bytes] = []
            for frame in frames:
                if frame.startswith(b"Event: "):
                    # the edge filter: events we never store are not even spooled
                    end = frame.find(b"\r\n")
                    event_name = frame[7:end] if end > 0 else frame[7:]
                    if event_name in SPOOLED_EVENTS_B:
                        events.append(frame)
                    else:
                        self.dropped[event_name] += 1
                    if event_name == b"Shutdown":
                        self._stopping("Shutdown event")
                elif frame.startswith(b"Response:"):
                    msg = parse_frame(frame)
                    if (mark := self._logged_in_frame(msg)) is not None:
                        events.append(mark)
                    self._on_response(msg)
                elif frame.startswith(SYNTHETIC_PREFIX[:1]):
                    self.metrics.drop(name, "nul_frame")
                else:
                    # not a standard first header: let the normaliser judge it
                    msg = parse_frame(frame)
                    if msg.kind == "response":
                        self._on_response(msg)
                    else:
                        events.append(frame)
            if events:
                self._spool(events, self.last_rx_us)  # stamped with the read's own time
            reads += 1
            if self.dropped and reads % 64 == 0:
                self.flush_dropped()

    def _stopping(self, why: str) -> None:
        if not self.asterisk_stopping:
            self.asterisk_stopping = True
            self.log.info("ami_asterisk_stopping", why=why, note="no more Pings on this "
                          "connection")

    def _oversize(self) -> None:
        n = self.framer.stats.oversize - self._oversize_seen
        self._oversize_seen = self.framer.stats.oversize
        self.metrics.drop(self.node.name, "oversize", n)
        now = time.monotonic()
        if now - self._oversize_logged > 5:
            self._oversize_logged = now
            self.log.warning("ami_frame_oversize_dropped", frames=n,
                             limit_bytes=self.settings.frame_max_bytes,
                             total=self._oversize_seen)

    def flush_dropped(self) -> None:
        for name, n in self.dropped.items():
            self.metrics.drop(self.node.name, name[:64].decode("utf-8", "replace"), n)
        self.dropped.clear()

    def _on_response(self, msg: Message) -> None:
        action_id = msg.get("ActionID")
        fut = self._pending.pop(action_id, None) if action_id else None
        if fut is not None and not fut.done():
            fut.set_result(msg)
        else:
            self.log.debug("ami_unsolicited_response", action_id=(action_id or "")[:64])

    def _spool(self, frames: list[bytes], received_at_us: int | None = None) -> None:
        try:
            self.spool.append(frames, received_at_us or time.time_ns() // 1000)
        except SpoolFull as exc:
            self.metrics.drop(self.node.name, "spool_full", len(frames))
            now = time.monotonic()
            if now - self._spool_full_logged > 5:
                self._spool_full_logged = now
                self.log.error("spool_full_frames_refused", detail=str(exc),
                               refused_total=self.spool.refused)
            return
        self.frames_spooled += len(frames)
        self.metrics.spooled.labels(self.node.name).inc(len(frames))

