"""Process-AGI fallback: the installed ``switchboard-agi`` entry point run as a
subprocess, as Asterisk runs it (recorded environment on stdin, replies as
recorded, SIGHUP on hangup), and each pyst2 defect shown on pyst2 itself and
then neutralised by the adapter."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from asterisk.agi import AGI, AGIAppError

from switchboard.agi import fakecall, process
from switchboard.agi.channel import ChannelHangup
from switchboard.agi.fakecall import HANGUP
from switchboard.agi.server import Registration
from switchboard.pgcluster import free_port
from tests.agi.conftest import (
    AGENCY,
    CASE_FOUND,
    LINE,
    OFFICER,
    PEPPER,
    PIN,
    agi_settings,
    seed,
    uniqueid,
)
from tests.helpers import db_env

ENTRY = Path(sys.executable).parent / "switchboard-agi"
RIGHT = [AGENCY, OFFICER, PIN]
ENV_BLOCK = fakecall.environment("verify", "1795857248.184", "5550001").decode()


def proc_env(db_url: str, **extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", ""), **db_env(db_url),
           "SB_PIN_PEPPER": PEPPER, "SB_ARGON2_TIME_COST": "1",
           "SB_ARGON2_MEMORY_KIB": "8192", "HOME": "/tmp",
           # not the checkout's .local, whose demo pepper would be found by default
           "SB_STATE_DIR": "/tmp/sb-process-agi-state"}
    env.update(extra)
    return env


def run_process(db_url: str, script: str, keys: list[str], *, callerid: str = LINE,
                uid: str | None = None, variables: dict[str, str] | None = None,
                env: dict[str, str] | None = None, seeded: bool = True
                ) -> tuple[fakecall.Outcome, int, str]:
    async def main() -> tuple[fakecall.Outcome, int, bytes]:
        if seeded:
            await seed(db_url, agi_settings())
        call = fakecall.Call(script, uid or uniqueid(), callerid, keys,
                             {**fakecall.attested(callerid), **(variables or {})})
        return await fakecall.play_process(call, [str(ENTRY), script],
                                           env or proc_env(db_url))
    outcome, status, err = asyncio.run(main())
    return outcome, status, err.decode("utf-8", "replace")


def log_events(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in stderr.splitlines() if x.startswith("{")]


def test_entry_point_is_installed() -> None:
    assert ENTRY.exists() and os.access(ENTRY, os.X_OK)


def test_verify_and_lookup_through_the_process_entry_point(db_url: str) -> None:
    uid = uniqueid()
    verify, status, err = run_process(db_url, "verify", RIGHT, uid=uid)
    assert status == 0 and verify.variables["SB_VERIFIED"] == "full"
    lookup, status2, err2 = run_process(db_url, "lookup", [CASE_FOUND], uid=uid,
                                        variables=verify.variables, seeded=False)
    assert status2 == 0 and lookup.variables["SB_LOOKUP"] == "found"
    assert lookup.variables["SB_CASE_PRIORITY"] == "high"
    # same handler code as FastAGI: the same commands in the same order
    assert verify.commands[:5] == ["GET VARIABLE SB_ATTEST",
                                   "SET VARIABLE SB_CALLER_ID A-passed",
                                   "GET DATA agent-user 6000 6",
                                   "GET DATA dir-pls-enter 6000 10",
                                   "GET DATA agent-pass 8000 12"]
    for text in (err, err2):
        # pyst2's echo of every line (ENV LINE, COMMAND, RESULT_LINE) is gone, and
        # with it the caller ID, the PIN and the case number; no traceback either
        assert "ENV LINE" not in text and "COMMAND" not in text and "RESULT" not in text
        assert PIN not in text and CASE_FOUND not in text and "Traceback" not in text
        events = log_events(text)
        assert events and all(e["uniqueid"] == uid for e in events if "script" in e)
        assert {e.get("transport") for e in events if "script" in e} == {"process"}


def test_wrong_pins_and_lockout_are_shared_with_fastagi(db_url: str) -> None:
    out, _, _ = run_process(db_url, "verify", [AGENCY, OFFICER, "111999"] * 3)
    assert out.variables["SB_VERIFIED"] == "failed"
    out, _, _ = run_process(db_url, "verify", [AGENCY, OFFICER, "111999"] * 2, seeded=False)
    assert out.variables["SB_VERIFIED"] == "locked"


def test_hangup_during_get_data_is_a_hangup_not_an_error(db_url: str) -> None:
    uid = uniqueid()
    out, status, err = run_process(db_url, "verify", [AGENCY, OFFICER, HANGUP], uid=uid)
    assert status == 0
    assert "SB_VERIFIED" not in out.variables  # no "error": the caller is gone
    events = {e["event"] for e in log_events(err)}
    assert "agi_caller_hung_up" in events and "agi_handler_failed" not in events

    async def rows() -> list[str]:
        conn = await asyncpg.connect(db_url)
        try:
            return [r[0] for r in await conn.fetch(
                "SELECT result FROM audit_log WHERE uniqueid = $1 ORDER BY seq", uid)]
        finally:
            await conn.close()
    assert asyncio.run(rows()) == ["passed", "hangup"]  # the caller-ID check, the hang-up


@pytest.mark.parametrize("what", ["database unreachable", "no pepper"])
def test_cannot_start_fails_closed(db_url: str, what: str) -> None:
    env = proc_env(db_url)
    if what == "no pepper":
        del env["SB_PIN_PEPPER"]
    else:
        env["SB_DATABASE_URL"] = f"postgresql://x:y@127.0.0.1:{free_port()}/none"
    out, status, err = run_process(db_url, "verify", RIGHT, env=env)
    assert status == 0 and out.variables == {"SB_VERIFIED": "error"}
    assert out.commands == ["SET VARIABLE SB_VERIFIED error"]
    assert [e["event"] for e in log_events(err)] == ["agi_process_cannot_start"]


def test_unknown_script_and_non_utf8_caller_id(db_url: str) -> None:
    out, status, _ = run_process(db_url, "nosuch", RIGHT)
    assert status == 2 and out.commands == []
    out, status, _ = run_process(db_url, "verify", RIGHT, callerid="\udcff\udcfe5550001",
                                 seeded=False)
    assert status == 0 and out.variables["SB_VERIFIED"] == "line-only"


# --- each pyst2 defect, on pyst2 itself and then through the adapter ------------------

def pyst2(replies: str, stderr: io.StringIO | None = None) -> tuple[Any, io.StringIO]:
    out = io.StringIO()
    agi = AGI(stdin=io.StringIO(ENV_BLOCK + replies), stdout=out,
              stderr=stderr if stderr is not None else io.StringIO())
    return agi, out


def test_defect_echo_to_stderr() -> None:
    echo = io.StringIO()
    agi, _ = pyst2("200 result=739184\n", echo)
    agi.get_data("agent-pass", 8000, 12)
    assert "agi_callerid: 5550001" in echo.getvalue() and "739184" in echo.getvalue()
    # the adapter hands pyst2 a sink instead (the subprocess test checks real stderr)
    adapted = process.open_agi(io.StringIO(ENV_BLOCK + "200 result=739184\n"), io.StringIO())
    assert isinstance(adapted.stderr, process._Discard)
    assert asyncio.run(process.Pyst2Channel(adapted).get_data("agent-pass", 8000, 12)) \
        == "739184"


def test_defect_traceback_hook_is_never_installed(monkeypatch: pytest.MonkeyPatch,
                                                  db_url: str) -> None:
    from asterisk import agitb
    hook_output = io.StringIO()
    handler = agitb.Hook(display=1, file=hook_output)
    try:
        raise RuntimeError(f"bad PIN {PIN}")
    except RuntimeError:
        handler.handle(sys.exc_info())
    # agitb writes the whole traceback with the exception's message (on Python 3
    # its locals dump itself fails on types.ClassType and it falls back to that)
    assert PIN in hook_output.getvalue() and "Traceback" in hook_output.getvalue()

    # the adapter: a handler that raises with the PIN in its locals and message
    async def boom(channel: Any) -> None:
        pin = PIN
        raise RuntimeError(f"PIN {pin}")
    monkeypatch.setattr(process, "registry", lambda *_: {
        "verify": Registration(boom, {"SB_VERIFIED": "error"})})
    for key, value in proc_env(db_url).items():
        monkeypatch.setenv(key, value)
    agi, out = pyst2("200 result=1\n")
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    process.log.configure("json", "info", stream=stderr)
    try:
        assert asyncio.run(process.run(agi, "verify")) == 0
    finally:
        process.log.configure("console", "warning", stream=sys.__stderr__)
    assert 'SET VARIABLE SB_VERIFIED error' in out.getvalue()
    assert PIN not in stderr.getvalue() and "Traceback" not in stderr.getvalue()
    assert sys.excepthook is sys.__excepthook__


def test_defect_hangup_in_get_data_raises_app_error() -> None:
    agi, _ = pyst2("200 result=-1\n")
    with pytest.raises(AGIAppError):
        agi.get_data("agent-pass", 8000, 12)
    agi, _ = pyst2("200 result=-1\n")
    with pytest.raises(ChannelHangup):
        asyncio.run(process.Pyst2Channel(agi).get_data("agent-pass", 8000, 12))


def test_defect_get_variable_hangup_and_unset() -> None:
    agi, _ = pyst2("200 result=1 (hangup)\n200 result=0\n")
    assert agi.get_variable("SB_VERIFIED") == "hangup"  # a hangup notice or a value?
    assert agi.get_variable("SB_VERIFIED") == ""  # unset and empty look the same
    agi, _ = pyst2("200 result=1 (hangup)\n200 result=0\n200 result=1 ()\n")
    channel = process.Pyst2Channel(agi)
    assert asyncio.run(channel.get_variable("SB_VERIFIED")) == "hangup"  # the value
    assert asyncio.run(channel.get_variable("SB_VERIFIED")) is None  # unset
    assert asyncio.run(channel.get_variable("SB_VERIFIED")) == ""  # set, empty
    agi._got_sighup = True  # after a real SIGHUP it is a hangup
    with pytest.raises(ChannelHangup):
        asyncio.run(channel.get_variable("SB_VERIFIED"))


def test_defect_no_escaping() -> None:
    agi, out = pyst2("200 result=1\n200 result=1\n")
    agi.set_variable("SB_NOTE", 'a "quoted" \\ value')
    agi.set_variable("SB_NOTE", "x\nEXEC System reboot")
    sent = out.getvalue().splitlines()
    assert sent[0] == 'SET VARIABLE "SB_NOTE" "a "quoted" \\ value"'  # mangled
    assert sent[2] == 'EXEC System reboot"'  # an injected second command
    agi, out = pyst2("200 result=1\n")
    channel = process.Pyst2Channel(agi)
    asyncio.run(channel.set_variable("SB_NOTE", 'a "quoted" \\ value'))
    assert out.getvalue() == 'SET VARIABLE SB_NOTE "a \\"quoted\\" \\\\ value"\n'
    assert fakecall.parse_args(out.getvalue()[len("SET VARIABLE "):-1]) == [
        "SB_NOTE", 'a "quoted" \\ value']
    with pytest.raises(ValueError, match="control character"):
        asyncio.run(channel.set_variable("SB_NOTE", "x\nEXEC System reboot"))


def test_missing_sound_file_is_not_a_hangup() -> None:
    agi, _ = pyst2("200 result=-1 endpos=0\n")
    asyncio.run(process.Pyst2Channel(agi).stream_file("no-such-prompt"))  # no exception
    agi, _ = pyst2("200 result=-1 endpos=0\n")
    agi._got_sighup = True
    with pytest.raises(ChannelHangup):
        asyncio.run(process.Pyst2Channel(agi).stream_file("beep"))


def test_pyst2_cannot_serve_fastagi() -> None:
    """Why switchboard/agi/protocol.py exists: pyst2's FastAGI module does not import on
    Python 3, and its AGI class over a socket breaks on the late HANGUP line."""
    with pytest.raises(ModuleNotFoundError, match="SocketServer"):
        import asterisk.fastagi  # noqa: F401
    agi, _ = pyst2("HANGUP\n200 result=1\n")
    with pytest.raises(ValueError, match="invalid literal"):
        agi.verbose("x")
