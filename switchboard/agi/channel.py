"""The channel interface handlers see, whatever the transport.

Handlers call these methods; the transport adapter (FastAGI here, pyst2 process
AGI with issue 3) owns quoting, reply parsing and turning a hangup into
``ChannelHangup``.  Values coming back are bounded and typed.
"""

from __future__ import annotations

from typing import Protocol

from switchboard.agi.protocol import AgiHangup, AgiSession

MAX_VALUE = 1024


class ChannelHangup(Exception):
    """The caller is gone: stop prompting; setting the status may still work."""


class Channel(Protocol):
    uniqueid: str
    env: dict[str, str]

    async def get_variable(self, name: str) -> str | None: ...
    async def set_variable(self, name: str, value: str) -> None: ...
    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str | None: ...
    async def stream_file(self, prompt: str) -> None: ...
    async def verbose(self, message: str, level: int = 1) -> None: ...


class FastAgiChannel:
    """``Channel`` over one FastAGI connection."""

    def __init__(self, session: AgiSession, env: dict[str, str]) -> None:
        self.session = session
        self.env = env
        self.uniqueid = env.get("agi_uniqueid", "")[:150]

    async def get_variable(self, name: str) -> str | None:
        try:
            reply = await self.session.command("GET VARIABLE", name)
        except AgiHangup as exc:
            raise ChannelHangup from exc
        if reply.result != "1":
            return None  # "200 result=0": not set
        return (reply.data or "")[:MAX_VALUE]

    async def set_variable(self, name: str, value: str) -> None:
        try:
            await self.session.command("SET VARIABLE", name, value)
        except AgiHangup as exc:
            raise ChannelHangup from exc

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str | None:
        """Digits keyed (None on timeout with nothing keyed); ChannelHangup if the
        caller hung up (``result=-1``)."""
        try:
            reply = await self.session.command("GET DATA", prompt, str(timeout_ms),
                                               str(max_digits),
                                               wait_s=timeout_ms / 1000 * max(1, max_digits)
                                               + 30)
        except AgiHangup as exc:
            raise ChannelHangup from exc
        if reply.result == "-1":
            raise ChannelHangup("hangup during GET DATA")
        return reply.result[:max_digits] or None

    async def stream_file(self, prompt: str) -> None:
        try:
            reply = await self.session.command("STREAM FILE", prompt, "")
        except AgiHangup as exc:
            raise ChannelHangup from exc
        if reply.result == "-1" and reply.rest != "endpos=0":
            raise ChannelHangup("hangup during STREAM FILE")

    async def verbose(self, message: str, level: int = 1) -> None:
        try:
            await self.session.command("VERBOSE", message[:MAX_VALUE], str(level))
        except AgiHangup as exc:
            raise ChannelHangup from exc
