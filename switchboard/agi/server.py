"""The FastAGI server: asyncio, one task per call, a registry of handlers.

Routing is by ``agi_network_script`` (``agi://host/verify`` -> ``verify``).  Each
call gets a structlog context (uniqueid, channel, script).  A handler that
raises never takes the server down: the call gets the handler's fail-closed
variables and a log line.  Stopping stops accepting, lets calls in progress
finish for a bounded time, then cancels the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from switchboard import log
from switchboard.agi.channel import Channel, ChannelHangup, FastAgiChannel
from switchboard.agi.protocol import AgiError, AgiSession, read_environment

Handler = Callable[[Channel], Awaitable[None]]


@dataclass(frozen=True)
class Registration:
    """A handler and what the dialplan gets when it fails (fail closed)."""

    handler: Handler
    on_error: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 4573
    allow: frozenset[str] = frozenset()  # client addresses; empty = loopback only
    backlog: int = 1024  # at 200 simultaneous connects a backlog of 100 stalls ~1 s
    env_timeout_s: float = 5.0
    command_timeout_s: float = 30.0
    # a whole session, however its peer answers (HANGUP lines and 520- usage
    # blocks without end would otherwise hold it forever)
    session_max_s: float = 180.0
    shutdown_grace_s: float = 10.0
    max_line: int = 8192


def script_name(env: Mapping[str, str]) -> str:
    raw = env.get("agi_network_script", "")
    return raw.split("?", 1)[0].strip("/").split("/")[0][:64]


async def run_call(registration: Registration, channel: Channel, logger: Any, *,
                   deadline_s: float | None = None) -> bool:
    """Run one handler on one call (either transport), within ``deadline_s``.
    False when it failed or ran out of time: the call then gets the
    registration's fail-closed variables (tried for 2 s at most) and a log line
    that names the exception's type only (messages may hold caller input)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(deadline_s):
            await registration.handler(channel)
        session = getattr(channel, "session", None)
        logger.info("agi_call_done", seconds=round(time.monotonic() - started, 3),
                    busy_max_ms=round(session.busy_max_s * 1000, 2) if session else None,
                    argon2_ms=round(session.deliberate_s * 1000, 2) if session else None)
        return True
    except ChannelHangup:
        logger.info("agi_caller_hung_up", seconds=round(time.monotonic() - started, 3))
        return True
    except TimeoutError:
        logger.warning("agi_session_deadline", limit_s=deadline_s,
                       fail_closed=dict(registration.on_error))
    except Exception as exc:
        logger.error("agi_handler_failed", error=type(exc).__name__,
                     fail_closed=dict(registration.on_error))
    with contextlib.suppress(ChannelHangup, AgiError, TimeoutError):
        async with asyncio.timeout(2.0):
            for name, value in registration.on_error.items():
                await channel.set_variable(name, value)
    return False


class FastAgiServer:
    def __init__(self, registry: Mapping[str, Registration],
                 config: ServerConfig | None = None) -> None:
        self.registry = dict(registry)
        self.config = config or ServerConfig()
        self.log = log.get("agi.server")
        self._server: asyncio.Server | None = None
        self._calls: set[asyncio.Task[Any]] = set()
        self.port = 0
        self.served = 0
        self.failed = 0

    async def start(self) -> int:
        c = self.config
        self._server = await asyncio.start_server(self._accept, c.host, c.port,
                                                  backlog=c.backlog, limit=c.max_line)
        self.port = self._server.sockets[0].getsockname()[1]
        self.log.info("agi_listening", host=c.host, port=self.port,
                      scripts=sorted(self.registry))
        return self.port

    def _allowed(self, peer: str) -> bool:
        if peer in self.config.allow:
            return True
        try:
            return ipaddress.ip_address(peer).is_loopback
        except ValueError:
            return False

    async def _accept(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._calls.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._calls.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str((writer.get_extra_info("peername") or ("?",))[0])
        if not self._allowed(peer):
            self.log.warning("agi_client_refused", peer=peer)
            return
        try:
            env = await read_environment(reader, self.config.env_timeout_s)
        except AgiError as exc:
            self.log.warning("agi_environment_incomplete", peer=peer, error=str(exc)[:200])
            return
        script = script_name(env)
        session = AgiSession(reader, writer, timeout=self.config.command_timeout_s)
        session.last_reply_at = time.monotonic()  # the environment is in
        channel = FastAgiChannel(session, env)
        with structlog.contextvars.bound_contextvars(
                uniqueid=channel.uniqueid, channel=env.get("agi_channel", "")[:80],
                script=script):
            registration = self.registry.get(script)
            if registration is None:
                self.log.error("agi_unknown_script", known=sorted(self.registry))
                return
            if await run_call(registration, channel, self.log,
                              deadline_s=self.config.session_max_s):
                self.served += 1
            else:
                self.failed += 1

    async def stop(self) -> None:
        """Stop accepting; let calls in progress finish (bounded); cancel the rest."""
        if self._server is not None:
            self._server.close()
        if self._calls:
            _, pending = await asyncio.wait(set(self._calls),
                                            timeout=self.config.shutdown_grace_s)
            for task in pending:
                task.cancel()
            if pending:
                self.log.warning("agi_calls_cancelled_at_shutdown", count=len(pending))
                await asyncio.gather(*pending, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        self.log.info("agi_stopped", served=self.served, failed=self.failed)
