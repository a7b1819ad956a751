"""Process-AGI fallback through pyst2: ``switchboard-agi [--config FILE] verify|lookup|callback``.

The dialplan runs it as ``AGI(switchboard-agi,verify)`` when the FastAGI server
cannot answer; Asterisk starts one process per call with the environment block
on stdin and reads commands from stdout.  The same handlers run as over
FastAGI, behind the same ``Channel`` interface.  On a node it is the script
``switchboard agi install`` writes, which passes ``--config``: the settings then
come from that root-owned file only (switchboard/agi/install.py), and a missing or unsafe
file is a log line and the fail-closed answer.

pyst2 0.5.1 does the line protocol (reading the environment, sending commands,
parsing ``200 result=`` replies, SIGHUP).  Its defects against Asterisk 22, and
what this adapter does about each (tests/agi/test_process.py covers every one):

* it echoes every line it reads and writes (caller IDs, DTMF digits, so PINs)
  to stderr, which lands in Asterisk's log: the ``AGI`` object gets a sink that
  discards everything as its stderr;
* ``asterisk.agitb`` installs a traceback hook meant to print local variables (on
  Python 3 it falls back to the full traceback, message included): it is
  never imported; failures are logged by exception type only;
* a hangup during GET DATA raises ``AGIAppError``, not ``AGIHangup``: mapped to
  ``ChannelHangup`` for GET DATA; for STREAM FILE a ``result=-1`` may also be a
  missing sound file, so it only counts as a hangup once SIGHUP has arrived;
* ``get_variable`` returns ``''`` for an unset variable and the string
  ``'hangup'`` for a variable whose value is "hangup" (it mistakes it for a
  hangup notice): the adapter sends GET VARIABLE itself, returns None when unset
  and the real value otherwise;
* no escaping: ``_quote`` wraps arguments in double quotes without escaping
  quotes or backslashes, and lets CR/LF through (a second AGI command): every
  argument goes through ``agi.protocol.quote`` (escapes; refuses control
  characters) and pyst2's own quoting is never called;
* it decodes stdin strictly, so a caller name in another encoding would crash it:
  stdin is read as UTF-8 with replacement.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import asyncpg
import structlog
from asterisk.agi import (
    AGI,
    AGIAppError,
    AGIError,
    AGIResultHangup,
    AGISIGHUPHangup,
    AGISIGPIPEHangup,
)

from switchboard import db, log
from switchboard.agi.app import make_flow, make_hasher
from switchboard.agi.channel import MAX_VALUE, ChannelHangup
from switchboard.agi.handlers import DB_ERRORS, FAIL_CLOSED, registry
from switchboard.agi.install import read_config
from switchboard.agi.protocol import AgiError, quote
from switchboard.agi.server import run_call
from switchboard.agi.verification import ConnectionDatabase, Verifier, connect_kwargs
from switchboard.auditlog import settings_key
from switchboard.settings import ConfigError, load

SCRIPTS = tuple(FAIL_CLOSED)
_HANGUPS = (AGISIGHUPHangup, AGISIGPIPEHangup, AGIResultHangup)


class _Discard(io.TextIOBase):
    """pyst2's stderr: everything it writes (every AGI line) goes nowhere."""

    def write(self, s: str) -> int:
        return len(s)


class Pyst2Channel:
    """``Channel`` over a pyst2 ``AGI`` object (synchronous pipes; one call per
    process, so blocking here blocks nobody)."""

    def __init__(self, agi: Any) -> None:
        self.agi = agi
        self.env = {str(k)[:64]: str(v)[:MAX_VALUE] for k, v in agi.env.items()}
        self.uniqueid = self.env.get("agi_uniqueid", "")[:150]

    def _execute(self, command: str, *args: str) -> dict[str, tuple[str, str]]:
        quoted = [quote(a) for a in args]  # ValueError on control characters
        try:
            result: dict[str, tuple[str, str]] = self.agi.execute(command, *quoted)
            return result
        except _HANGUPS as exc:
            raise ChannelHangup(command) from exc
        except AGIError as exc:
            if isinstance(exc, AGIAppError):
                raise
            raise AgiError(f"{command}: {type(exc).__name__}") from exc

    async def get_variable(self, name: str) -> str | None:
        try:
            result = self._execute("GET VARIABLE", name)
        except ChannelHangup as exc:
            if isinstance(exc.__cause__, AGIResultHangup) and not self.agi._got_sighup:
                return "hangup"  # "200 result=1 (hangup)" is the value "hangup"
            raise
        res, value = result["result"]
        return value[:MAX_VALUE] if res == "1" else None

    async def set_variable(self, name: str, value: str) -> None:
        self._execute("SET VARIABLE", name, value)

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str | None:
        try:
            result = self._execute("GET DATA", prompt, str(timeout_ms), str(max_digits))
        except AGIAppError as exc:  # "200 result=-1": the caller hung up
            raise ChannelHangup("hangup during GET DATA") from exc
        return result["result"][0][:max_digits] or None

    async def stream_file(self, prompt: str) -> None:
        try:
            self._execute("STREAM FILE", prompt, "")
        except AGIAppError as exc:  # result=-1: a missing file, or a hangup
            if self.agi._got_sighup:
                raise ChannelHangup("hangup during STREAM FILE") from exc

    async def verbose(self, message: str, level: int = 1) -> None:
        self._execute("VERBOSE", message[:MAX_VALUE], str(level))


def open_agi(stdin: TextIO, stdout: TextIO) -> Any:
    """pyst2's AGI object, reading the environment, with its echo discarded."""
    return AGI(stdin=stdin, stdout=stdout, stderr=_Discard())


async def run(agi: Any, script: str, config: Path | None = None) -> int:
    """One call: the environment is read; run the handler for ``script`` with the
    settings of ``config`` (else of the process environment)."""
    logger = log.get("agi.process")
    channel = Pyst2Channel(agi)
    with structlog.contextvars.bound_contextvars(
            uniqueid=channel.uniqueid, channel=channel.env.get("agi_channel", "")[:80],
            script=script, transport="process"):
        if script not in SCRIPTS:
            logger.error("agi_unknown_script", known=list(SCRIPTS))
            return 2
        try:
            settings = load(read_config(config) if config else None)
            s = settings.agi
            hasher = make_hasher(s)
            conn = await asyncpg.connect(db.service_url(settings, "agi"), timeout=5,
                                         **connect_kwargs(settings_key(s)))
        except (ConfigError, *DB_ERRORS) as exc:
            logger.error("agi_process_cannot_start", error=type(exc).__name__,
                         detail=str(exc)[:200] if isinstance(exc, ConfigError) else None,
                         config=str(config) if config else None,
                         fail_closed=FAIL_CLOSED[script])
            for name, value in FAIL_CLOSED[script].items():
                await channel.set_variable(name, value)
            return 0
        try:
            verifier = Verifier(ConnectionDatabase(conn), hasher, hash_workers=1)
            await run_call(registry(verifier, make_flow(s))[script], channel, logger,
                           deadline_s=s.session_max_s)
        finally:
            await conn.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point ``switchboard-agi``.  Never lets a traceback (with locals, or
    with caller input in a message) reach Asterisk's log."""
    args = list(sys.argv[1:] if argv is None else argv)
    config: Path | None = None
    if len(args) >= 2 and args[0] == "--config":
        config, args = Path(args[1]), args[2:]
    script = args[0] if args else ""
    try:
        level = os.environ.get("SB_LOG_LEVEL", "info").lower()
        # JSON on stderr (Asterisk's log); stdout is the AGI channel itself
        log.configure("json", level if level in ("debug", "info", "warning", "error")
                      else "info", stream=sys.stderr)
        stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace",
                                 newline="\n")
        agi = open_agi(stdin, sys.stdout)
        return asyncio.run(run(agi, script, config))
    except ChannelHangup:
        return 0
    except Exception as exc:
        log.get("agi.process").error("agi_process_failed", error=type(exc).__name__)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
