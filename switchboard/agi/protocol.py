"""The AGI protocol on asyncio streams (FastAGI) — the part both named libraries
get wrong against Asterisk 22 (tests/fixtures/asterisk/agi and compat/):

* Asterisk sends an unsolicited ``HANGUP`` line after the caller hangs up, and
  also when the script ends; it lands *before* the reply to the next command.
  It is consumed here, never taken as a reply, and marks the channel hung up.
* usage errors are multi-line: ``520-Invalid command syntax...`` ... ``520 End
  of proper usage.``; all of it is read, so later replies stay in step.
* after a hangup many commands answer ``511 Command Not Permitted on a dead
  channel``: that is a hangup, not an error.
* ``RECEIVE CHAR`` answers ``200 result=-1 (hangup)`` on a live channel: a value,
  not a hangup.
* the connection may close before the environment block is complete: that is an
  error for this call, never a busy loop.

Every line read has a size limit and a timeout.  Arguments are quoted, and any
control character (CR/LF could inject a second command) is refused.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import time
from dataclasses import dataclass

MAX_LINE = 8192
MAX_ENV_KEYS = 128
USAGE_END = "520 End of proper usage."
# result= is a number for most commands but the keyed digits for GET DATA, which
# may hold '*' (only '#' ends the input): anything up to the first blank.
_REPLY_RE = re.compile(r"^(\d{3}) result=(\S*)(?: \((.*)\))?(?: (.*))?$")


class AgiError(Exception):
    """The command failed (invalid command, usage error, protocol breakage)."""


class AgiHangup(AgiError):
    """The channel is gone (HANGUP line, 511, or the connection closed)."""


class AgiUsageError(AgiError):
    """520: Asterisk did not accept the command's arguments."""


class AgiProtocolError(AgiError):
    """Something Asterisk would not send: a line too long, garbage, a timeout."""


@dataclass(frozen=True)
class Reply:
    code: int
    result: str
    data: str | None  # the part in parentheses: "(en)", "(timeout)", "(hangup)"
    rest: str | None  # e.g. "endpos=3520", "Gosub label not found"

    @property
    def value(self) -> int:
        return int(self.result) if re.fullmatch(r"-?\d+", self.result) else 0


def parse_reply(line: str) -> Reply:
    m = _REPLY_RE.match(line)
    if m is None:
        raise AgiProtocolError(f"unexpected reply {line[:80]!r}")
    return Reply(int(m.group(1)), m.group(2), m.group(3), m.group(4))


def quote(arg: str) -> str:
    """One AGI argument: refused if it holds a control character; quoted (with
    backslash escapes) when empty or holding blanks, quotes or backslashes."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in arg):
        raise ValueError("control character in an AGI argument")
    if arg and not any(ch in arg for ch in ' \t"\\'):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_command(*words: str) -> bytes:
    """``build_command("STREAM FILE", "beep", "")`` -> ``b'STREAM FILE beep ""\\n'``.
    The first word is the command itself (ours, never from outside)."""
    if not words or not re.fullmatch(r"[A-Z][A-Z ]*[A-Z]", words[0]):
        raise ValueError(f"bad AGI command name {words[:1]!r}")
    return (" ".join([words[0], *(quote(w) for w in words[1:])]) + "\n").encode()


async def read_line(reader: asyncio.StreamReader, wait_s: float | None) -> str:
    """One line; ``wait_s`` None: the caller holds a deadline of its own."""
    try:
        if wait_s is None:
            raw = await reader.readuntil(b"\n")
        else:
            async with asyncio.timeout(wait_s):  # no extra task, unlike wait_for
                raw = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        raise AgiHangup("connection closed by Asterisk") from exc
    except asyncio.LimitOverrunError as exc:
        raise AgiProtocolError("line longer than the limit") from exc
    except TimeoutError as exc:
        raise AgiProtocolError(f"no line from Asterisk within {wait_s}s") from exc
    return raw[:-1].decode("utf-8", "replace").rstrip("\r")


async def read_environment(reader: asyncio.StreamReader, wait_s: float = 5.0
                           ) -> dict[str, str]:
    """The ``agi_*`` block up to its blank line, all of it within ``wait_s``."""
    env: dict[str, str] = {}
    try:
        async with asyncio.timeout(wait_s):
            while True:
                line = await read_line(reader, None)
                if line == "":
                    return env
                key, sep, value = line.partition(": ")
                if not sep or not key.startswith("agi_") or len(env) >= MAX_ENV_KEYS:
                    raise AgiProtocolError(f"bad environment line {line[:80]!r}")
                env[key] = value
    except TimeoutError as exc:
        raise AgiProtocolError(f"environment not complete within {wait_s}s") from exc


# Time a handler spends on purpose within one step (the PIN's argon2id, slow by
# design): not the server's latency, so not in busy_max_s.  Per call (contextvars
# follow the handler's task).
_DELIBERATE: contextvars.ContextVar[float] = contextvars.ContextVar("sb_agi_deliberate_s",
                                                                    default=0.0)


def note_deliberate(seconds: float) -> None:
    """Say that ``seconds`` of the current step were spent on purpose."""
    _DELIBERATE.set(_DELIBERATE.get() + seconds)


class AgiSession:
    """Commands and replies over one connection (or process AGI's stdin/stdout)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 timeout: float = 30.0) -> None:
        self.reader = reader
        self.writer = writer
        self.timeout = timeout
        self.hung_up = False
        # the server's own time per step: from Asterisk's last reply (or the
        # environment) to the next command; the longest one is logged per call
        self.last_reply_at: float | None = None
        self.busy_max_s = 0.0
        self.deliberate_s = 0.0  # of which on purpose (note_deliberate), in all

    async def command(self, *words: str, wait_s: float | None = None) -> Reply:
        """Send one command, return its reply.  Raises AgiHangup on 511 or a closed
        connection, AgiUsageError on 520, AgiError on 510."""
        if self.last_reply_at is not None:
            spent = _DELIBERATE.get()
            if spent:
                _DELIBERATE.set(0.0)
                self.deliberate_s += spent
            self.busy_max_s = max(self.busy_max_s,
                                  time.monotonic() - self.last_reply_at - spent)
        self.writer.write(build_command(*words))
        try:
            await self.writer.drain()
        except ConnectionError as exc:
            self.hung_up = True
            raise AgiHangup("connection closed by Asterisk") from exc
        limit = self.timeout if wait_s is None else wait_s
        while True:
            line = await self._line(limit)
            if line == "HANGUP":  # late notice of an earlier hangup: not our reply
                self.hung_up = True
                continue
            if line.startswith("520-"):
                while (await self._line(self.timeout)) != USAGE_END:
                    pass
                raise AgiUsageError(f"{words[0]}: invalid syntax")
            if line.startswith("511 "):
                self.hung_up = True
                raise AgiHangup(f"{words[0]}: channel is gone")
            if line.startswith("510 "):
                raise AgiError(f"{words[0]}: invalid or unknown command")
            reply = parse_reply(line)
            self.last_reply_at = time.monotonic()
            if reply.code != 200:
                raise AgiError(f"{words[0]}: reply {reply.code}")
            return reply

    async def _line(self, wait_s: float) -> str:
        try:
            return await read_line(self.reader, wait_s)
        except AgiHangup:
            self.hung_up = True
            raise
