"""A short AMI session for actions (MD5 challenge login, actions matched to
their answers by ActionID): ``switchboard dialplan deploy`` reloads and the agent
panel's Originate.  The listener's long-lived reader is client.py."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from dataclasses import dataclass
from typing import Any

from switchboard.ami_listener.framing import Framer, Message, parse_frame, render_action

# an ops command's output (``pjsip show endpoints`` on a node with thousands of
# phones): its lines, and its bytes (the framer's bound)
COMMAND_MAX_LINES = 200_000
COMMAND_MAX_BYTES = 16 << 20


class AmiActionError(Exception):
    """Something a person must look at; the message says what."""


@dataclass(frozen=True)
class AmiLogin:
    host: str
    port: int
    username: str
    secret: str
    timeout_s: float = 10.0


class AmiSession:
    """A small AMI session: MD5 challenge login, actions answered by ActionID,
    ``Command`` actions whose ``Output`` lines come back.  Events are skipped
    unless asked for (``events``: the classes to receive, e.g. ``call``), then
    ``wait_event`` finds one."""

    def __init__(self, cfg: AmiLogin, *, events: str = "off", purpose: str = "deploy") -> None:
        self.cfg = cfg
        self.events = events
        self.purpose = purpose
        self.seen: list[Message] = []  # events read while waiting for an answer
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.framer = Framer(COMMAND_MAX_BYTES)
        self.pending: list[bytes] = []
        self.seq = 0

    async def __aenter__(self) -> AmiSession:
        c = self.cfg
        try:
            self.reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(c.host, c.port), c.timeout_s)
        except (OSError, TimeoutError) as exc:
            raise AmiActionError(f"cannot reach AMI at {c.host}:{c.port}: {exc}") from exc
        challenge = await self.action("Challenge", {"AuthType": "MD5"})
        nonce = challenge.get("Challenge") or ""
        key = hashlib.md5((nonce + c.secret).encode(), usedforsecurity=False).hexdigest()
        login = await self.action("Login", {"AuthType": "MD5", "Username": c.username,
                                            "Key": key, "Events": self.events})
        if login.get("Response") != "Success":
            raise AmiActionError(f"AMI login as {c.username} refused: {login.get('Message')}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.action("Logoff", {}), 2)
            self.writer.close()

    async def _send(self, name: str,
                    headers: dict[str, str] | dict[str, str | list[str]]) -> str:
        """Write one action with a fresh ActionID; the ActionID."""
        assert self.writer is not None
        self.seq += 1
        aid = f"sb-{self.purpose}-{os.getpid()}-{self.seq}"
        self.writer.write(render_action(name, {**headers, "ActionID": aid}))
        await self.writer.drain()
        return aid

    async def _read_more(self, deadline: float, what: str) -> None:
        """Frames read by ``deadline`` into ``pending`` (none on a quiet moment);
        AmiActionError when the time is up or AMI closed."""
        assert self.reader is not None
        left = deadline - time.monotonic()
        if left <= 0:
            raise AmiActionError(f"AMI did not {what} within {self.cfg.timeout_s}s")
        try:
            data = await asyncio.wait_for(self.reader.read(65536), left)
        except TimeoutError:
            return
        if not data:
            raise AmiActionError("AMI closed the connection")
        self.pending += self.framer.feed(data)

    async def action(self, name: str,
                     headers: dict[str, str] | dict[str, str | list[str]]) -> Any:
        aid = await self._send(name, headers)
        deadline = time.monotonic() + self.cfg.timeout_s
        while True:
            while self.pending:
                msg = parse_frame(self.pending.pop(0), COMMAND_MAX_LINES)
                if msg.get("ActionID") == aid and msg.get("Event") is None:
                    return msg
                if msg.get("Event") is not None and self.events != "off":
                    self.seen.append(msg)
                    del self.seen[:-1000]
            await self._read_more(deadline, f"answer {name}")

    async def action_list(self, name: str, headers: dict[str, str], complete: str,
                          limit: int = 20_000) -> list[Message]:
        """An action answered by a list of events (Status, CoreShowChannels):
        the events carrying its ActionID up to ``complete``, at most ``limit``."""
        aid = await self._send(name, headers)
        deadline = time.monotonic() + self.cfg.timeout_s
        out: list[Message] = []
        while True:
            while self.pending:
                msg = parse_frame(self.pending.pop(0))
                if msg.get("ActionID") != aid:
                    continue
                if msg.get("Response") == "Error":
                    raise AmiActionError(f"{name} refused: {msg.get('Message')}")
                if msg.get("Event") == complete:
                    return out
                if msg.get("Event") is not None and len(out) < limit:
                    out.append(msg)
            await self._read_more(deadline, f"finish {name}")

    async def command(self, cli: str) -> list[str]:
        msg = await self.action("Command", {"Command": cli})
        if msg.get("Response") != "Success":
            raise AmiActionError(f"'{cli}' refused by Asterisk: {msg.get('Message')}")
        if msg.truncated_headers:
            raise AmiActionError(f"'{cli}': the output has more than {COMMAND_MAX_LINES} "
                                 "lines; not read")
        out = msg.fields.get("Output") or []
        return [out] if isinstance(out, str) else list(out)

    async def wait_event(self, match: Any, timeout_s: float) -> Message | None:
        """The first event (already read, or arriving within ``timeout_s``) for
        which ``match(msg)`` is true; None on timeout or when AMI closes."""
        assert self.reader is not None
        deadline = time.monotonic() + timeout_s
        while True:
            for msg in self.seen:
                if match(msg):
                    self.seen.remove(msg)
                    return msg
            self.seen.clear()
            while self.pending:
                msg = parse_frame(self.pending.pop(0))
                if msg.get("Event") is not None and match(msg):
                    return msg
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                data = await asyncio.wait_for(self.reader.read(65536), left)
            except TimeoutError:
                return None
            if not data:
                return None
            self.pending += self.framer.feed(data)
