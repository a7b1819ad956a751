"""A scripted Asterisk for FastAGI, built on the bytes Asterisk 22.10.1 sent
(tests/fixtures/asterisk/agi): it connects to the server as Asterisk does,
sends the recorded environment block (caller ID, uniqueid and script replaced),
and answers each command the way the recordings show:

* ``GET DATA``: the next scripted keypresses, ``200 result=<digits>``; nothing
  keyed: ``200 result= (timeout)``; a hangup: ``200 result=-1``, after which the
  next reply is preceded by the late ``HANGUP`` line and commands that need a
  live channel answer ``511`` (GET VARIABLE still works, as recorded);
* ``SET VARIABLE`` (arguments parsed as Asterisk's parse_args does: quotes and
  backslash escapes), ``GET VARIABLE``, ``STREAM FILE``, ``VERBOSE``;
* anything else: ``510 Invalid or unknown command``.

Used by the tests, ``make demo`` and ``bench/agi_sessions.py``; never in
production.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass, field

from switchboard.resources import data_dir

FIXTURE = data_dir("captures") / "agi" / "fastagi_verify_ok.rx"
HANGUP = "HANGUP"  # in Call.keys: the caller hangs up during that GET DATA
DEAD = b"511 Command Not Permitted on a dead channel or intercept routine\n"


def recorded_environment() -> bytes:
    rx = FIXTURE.read_bytes()
    return rx[: rx.index(b"\n\n") + 2]


def environment(script: str, uniqueid: str, callerid: str, *, base: bytes | None = None,
                request_host: str = "127.0.0.1:4573") -> bytes:
    """The recorded block with these values in place (the caller ID as given:
    tests put hostile bytes there)."""
    replace = {"agi_network_script": script, "agi_request": f"agi://{request_host}/{script}",
               "agi_uniqueid": uniqueid, "agi_callerid": callerid,
               "agi_calleridname": "Caller"}
    out = []
    for line in (base or recorded_environment()).decode().split("\n")[:-2]:
        key = line.partition(":")[0]
        out.append(f"{key}: {replace[key]}" if key in replace else line)
    return ("\n".join(out) + "\n\n").encode("utf-8", "surrogateescape")


def parse_args(text: str) -> list[str]:
    """AGI arguments as Asterisk reads them: blanks split, double quotes group,
    a backslash takes the next character literally."""
    args: list[str] = []
    cur: list[str] = []
    quoted = escaped = started = False
    for ch in text:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = started = True
        elif ch == '"':
            quoted = not quoted
            started = True
        elif ch in " \t" and not quoted:
            if started:
                args.append("".join(cur))
                cur, started = [], False
        else:
            cur.append(ch)
            started = True
    if started:
        args.append("".join(cur))
    return args


def attested(callerid: str, verstat: str = "TN-Validation-Passed-A") -> dict[str, str]:
    """SB_ATTEST as [sb-attest] sets it (CALLER_ID_ATTEST=verstat: no
    P-Asserted-Identity, then the From header) for a carrier that put its
    ``verstat`` verdict in the From URI's user part."""
    number = "".join(c for c in callerid if c in "+0123456789")[:20] or "anonymous"
    return {"SB_ATTEST": f'verstat  "Caller" <sip:{number};verstat={verstat}'
                         f'@carrier.invalid;user=phone>;tag=as01'}


@dataclass
class Call:
    script: str
    uniqueid: str
    callerid: str = "+16155550100"
    keys: list[str] = field(default_factory=list)  # per GET DATA: digits, "" or HANGUP
    variables: dict[str, str] = field(default_factory=dict)  # the channel's variables
    key_delay_s: float = 0.0  # time the caller takes per GET DATA


@dataclass
class Outcome:
    commands: list[str]
    variables: dict[str, str]  # what the server set
    round_trips_s: list[float]  # server time from our reply to its next command
    closed_cleanly: bool


async def play(call: Call, port: int, host: str = "127.0.0.1",
               env: bytes | None = None) -> Outcome:
    """One FastAGI call against the server at host:port."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(env if env is not None else environment(call.script, call.uniqueid,
                                                         call.callerid))
    try:
        return await converse(call, reader, writer)
    finally:
        writer.close()


async def play_process(call: Call, argv: list[str], env: dict[str, str] | None = None,
                       stdin_env: bytes | None = None) -> tuple[Outcome, int, bytes]:
    """One process-AGI call, as Asterisk runs it: the program gets the environment
    block on stdin, its commands are read from stdout; a hangup is a SIGHUP (no
    HANGUP line), after which SET VARIABLE, GET VARIABLE and VERBOSE still answer
    200 and STREAM FILE 511, as recorded.  Returns the outcome, the exit status
    and what the program wrote to stderr."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    proc.stdin.write(stdin_env if stdin_env is not None else
                     environment(call.script, call.uniqueid, call.callerid))
    errors = asyncio.ensure_future(proc.stderr.read())
    try:
        outcome = await asyncio.wait_for(converse(call, proc.stdout, proc.stdin, process=proc),
                                         60)
        proc.stdin.close()
        status = await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return outcome, status, await errors


async def converse(call: Call, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   *, process: asyncio.subprocess.Process | None = None) -> Outcome:
    await writer.drain()
    keys = list(call.keys)
    variables = dict(call.variables)
    set_vars: dict[str, str] = {}
    commands: list[str] = []
    trips: list[float] = []
    hung = late = False
    replied_at: float | None = None
    closed_cleanly = True
    try:
        while line := await reader.readline():
            if replied_at is not None:
                trips.append(time.perf_counter() - replied_at)
            text = line.decode().rstrip("\n")
            commands.append(text)
            words = text.split(" ", 2)
            cmd = " ".join(words[:2])
            rest = words[2] if len(words) > 2 else ""
            out = b""
            if hung and late:
                out, late = b"HANGUP\n", False
            still_works = ("GET VARIABLE", "SET VARIABLE", "VERBOSE") if process else (
                "GET VARIABLE",)
            if hung and not any(text.startswith(c) for c in still_works):
                out += DEAD
            elif cmd == "GET VARIABLE":
                name = parse_args(rest)[0]
                value = variables.get(name)
                out += (f"200 result=1 ({value})\n".encode() if value is not None
                        else b"200 result=0\n")
            elif cmd == "GET DATA":
                if call.key_delay_s:
                    await asyncio.sleep(call.key_delay_s)
                key = keys.pop(0) if keys else ""
                if key == HANGUP:
                    hung = True
                    late = process is None  # FastAGI: a late HANGUP line
                    if process is not None:  # process AGI: a signal instead
                        process.send_signal(signal.SIGHUP)
                        await asyncio.sleep(0.05)
                    out += b"200 result=-1\n"
                elif key == "":
                    out += b"200 result= (timeout)\n"
                else:
                    out += f"200 result={key}\n".encode()
            elif cmd == "SET VARIABLE":
                name, value = parse_args(rest)[:2]
                variables[name] = set_vars[name] = value
                out += b"200 result=1\n"
            elif cmd == "STREAM FILE":
                out += b"200 result=0 endpos=3520\n"
            elif text.startswith("VERBOSE "):
                out += b"200 result=1\n"
            else:
                out += b"510 Invalid or unknown command\n"
            writer.write(out)
            await writer.drain()
            replied_at = time.perf_counter()
    except ConnectionError:
        closed_cleanly = False
    return Outcome(commands, set_vars, trips, closed_cleanly)
