"""The AGI protocol layer against the recorded Asterisk 22.10.1 transcripts: a
fake Asterisk on a real socket plays each transcript, command by command, and
checks that what we send means what the recorded script sent."""

from __future__ import annotations

import ast
import asyncio
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from switchboard.agi.protocol import (
    AgiError,
    AgiHangup,
    AgiProtocolError,
    AgiSession,
    AgiUsageError,
    Reply,
    build_command,
    parse_reply,
    quote,
    read_environment,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "asterisk"
COMMANDS = sorted((" ".join(line.split()[1:]).split("   ")[0].upper()
                   for line in (FIXTURES / "cli" / "agi_show_commands.txt").read_text()
                   .splitlines()[1:] if line.strip()), key=len, reverse=True)


def split_args(text: str) -> list[str]:
    """AGI's own argument splitting: blanks separate, double quotes group, \\ escapes."""
    out, cur, quoted, esc, any_ = [], "", False, False, False
    for ch in text:
        if esc:
            cur, esc = cur + ch, False
        elif ch == "\\":
            esc = True
        elif ch == '"':
            quoted, any_ = not quoted, True
        elif ch == " " and not quoted:
            if cur or any_:
                out.append(cur)
            cur, any_ = "", False
        else:
            cur += ch
    if cur or any_:
        out.append(cur)
    return out


def words_of(line: str) -> list[str]:
    upper = line.upper()
    name = next((c for c in COMMANDS if upper == c or upper.startswith(c + " ")),
                line.split(" ", maxsplit=1)[0])
    return [name.upper(), *split_args(line[len(name):].strip())]


@dataclass
class Transcript:
    env: bytes
    steps: list[tuple[str, list[bytes]]] = field(default_factory=list)
    tail: list[bytes] = field(default_factory=list)

    @classmethod
    def load(cls, name: str) -> Transcript:
        t = cls(b"")
        for line in (FIXTURES / "agi" / f"{name}.log").read_text().splitlines():
            m = re.match(r"^\+\s+[\d.]+\s+(<<|>>)\s+(b.*)$", line)
            if not m:
                continue
            data = ast.literal_eval(m.group(2))
            if m.group(1) == ">>":
                t.steps.append((data.decode().rstrip("\n"), []))
            elif t.steps:
                t.steps[-1][1].append(data)
            else:
                t.env += data
        if t.steps:  # lines after the last reply (the closing HANGUP) are the tail
            last_cmd, lines = t.steps[-1]
            first = next((i for i, ln in enumerate(lines) if ln != b"HANGUP\n"), None)
            if first is None:  # no reply at all (Asterisk closed the socket)
                t.steps[-1], t.tail = (last_cmd, []), lines
            else:
                t.steps[-1] = (last_cmd, lines[:first + 1])
                t.tail = lines[first + 1:]
        return t


async def fake_asterisk(t: Transcript, seen: list[list[str]]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(t.env)
        for recorded, replies in t.steps:
            line = await reader.readline()
            if not line:
                break
            seen.append([words_of(line.decode().rstrip("\n")), words_of(recorded)])
            writer.write(b"".join(replies))
            await writer.drain()
        writer.write(b"".join(t.tail))
        writer.close()
    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def play(name: str) -> tuple[dict[str, str], list[object], list[list[str]], bool]:
    t = Transcript.load(name)
    seen: list[list[str]] = []
    server = await fake_asterisk(t, seen)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    env = await read_environment(reader)
    session = AgiSession(reader, writer, timeout=10)
    results: list[object] = []
    for recorded, _ in t.steps:
        try:
            results.append(await session.command(*words_of(recorded)))
        except AgiError as exc:
            results.append(type(exc).__name__)
    writer.close()
    server.close()
    return env, results, seen, session.hung_up


def test_verify_transcript_stays_in_step() -> None:
    env, results, seen, hung_up = asyncio.run(play("fastagi_verify_ok"))
    assert env["agi_network_script"] == "verify" and env["agi_uniqueid"]
    assert all(ours == theirs for ours, theirs in seen)  # same meaning as the recording
    by_cmd = dict(zip([" ".join(w[0] for w in [s[1]]) + " " + " ".join(s[1][1:])
                       for s in seen], results, strict=True))
    assert by_cmd["GET VARIABLE CHANNEL(language)"] == Reply(200, "1", "en", None)
    assert by_cmd["GET DATA vm-enter-num-to-call 6000 4"].result == "1234"  # type: ignore[union-attr]
    assert by_cmd["STREAM FILE beep "] == Reply(200, "0", None, "endpos=3520")
    assert by_cmd["EXEC NoSuchApplication foo"].result == "-2"  # type: ignore[union-attr]
    assert not hung_up  # the HANGUP after the script ended is never read as a reply


def test_late_hangup_line_is_not_taken_as_the_next_reply() -> None:
    _, results, _, hung_up = asyncio.run(play("fastagi_hangup_in_get_data"))
    # GET DATA -> -1; GET VARIABLE: HANGUP line first, then its real reply
    assert [r.result if isinstance(r, Reply) else r for r in results] == [
        "0", "1", "-1", "0", "1", "AgiHangup", "AgiHangup", "1", "AgiHangup", "AgiHangup"]
    assert hung_up


def test_usage_errors_are_read_whole_and_the_rest_stays_in_step() -> None:
    _, results, _, _ = asyncio.run(play("fastagi_errors_and_usage"))
    names = [r if isinstance(r, str) else r.result for r in results]
    assert names[:7] == ["0", "AgiError", "0", "AgiUsageError", "AgiUsageError",
                         "AgiUsageError", "AgiUsageError"]
    receive_char = results[19]
    assert isinstance(receive_char, Reply) and receive_char.data == "hangup"  # a value
    gosub = results[22]
    assert isinstance(gosub, Reply) and gosub.rest == "Gosub label not found"
    # HANGUP -> 1; GET VARIABLE still works on the dead channel (after the late HANGUP
    # line); STREAM FILE -> 511
    assert names[-3:] == ["1", "0", "AgiHangup"]


def test_exit_on_hangup_closes_the_socket() -> None:
    _, results, _, hung_up = asyncio.run(play("fastagi_hangup_in_get_data_exitonhangup"))
    assert "AgiHangup" in results and hung_up


def test_environment_cut_short_is_an_error_not_a_busy_loop() -> None:
    async def scenario() -> None:
        async def handle(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(b"agi_network: yes\nagi_network_script: verify\n")
            w.close()
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.sockets[0].getsockname()[1])
        with pytest.raises(AgiHangup):
            await read_environment(reader)
        writer.close()
        server.close()
    asyncio.run(scenario())


def test_silence_and_huge_lines_are_bounded() -> None:
    async def scenario(payload: bytes) -> type[BaseException]:
        async def handle(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(payload)
            await asyncio.sleep(1)
            w.close()
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.sockets[0].getsockname()[1], limit=1024)
        try:
            await read_environment(reader, wait_s=0.3)
        except AgiError as exc:
            return type(exc)
        finally:
            writer.close()
            server.close()
        return BaseException
    assert asyncio.run(scenario(b"agi_network: yes\n")) is AgiProtocolError  # timeout
    assert asyncio.run(scenario(b"agi_x: " + b"y" * 5000 + b"\n")) is AgiProtocolError


def test_quoting_matches_what_asterisk_accepted() -> None:
    assert build_command("STREAM FILE", "beep", "") == b'STREAM FILE beep ""\n'
    assert build_command("VERBOSE", "verify: done", "1") == b'VERBOSE "verify: done" 1\n'
    assert build_command("SET VARIABLE", "VERIFY_NOTE", "digits ok, len=4") == \
        b'SET VARIABLE VERIFY_NOTE "digits ok, len=4"\n'
    assert quote('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'
    assert split_args(quote('say "hi" \\o/')) == ['say "hi" \\o/']


@pytest.mark.parametrize("hostile", ["1234\nHANGUP", "x\r\nEXEC System rm", "\x00", "a\tb"])
def test_control_characters_cannot_inject_a_command(hostile: str) -> None:
    with pytest.raises(ValueError, match="control character"):
        build_command("SET VARIABLE", "SB_AGENCY", hostile)


def test_reply_parsing() -> None:
    assert parse_reply("200 result=1 (en)") == Reply(200, "1", "en", None)
    assert parse_reply("200 result= (timeout)") == Reply(200, "", "timeout", None)
    assert parse_reply("200 result=-1 (hangup)").data == "hangup"
    with pytest.raises(AgiProtocolError):
        parse_reply("garbage")
    assert AgiUsageError.__mro__[1] is AgiError
