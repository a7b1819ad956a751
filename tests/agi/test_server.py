"""The FastAGI server with test handlers; the tests play Asterisk (which is the
FastAGI client) with the environment block recorded from Asterisk 22.10.1."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from switchboard.agi.channel import Channel
from switchboard.agi.server import FastAgiServer, Registration, ServerConfig

RX = (Path(__file__).resolve().parents[1] / "fixtures" / "asterisk" / "agi"
      / "fastagi_verify_ok.rx").read_bytes()
ENV = RX[: RX.index(b"\n\n") + 2]  # the recorded agi_* block (script "verify")


def env_for(script: str) -> bytes:
    return ENV.replace(b"agi_network_script: verify", b"agi_network_script: " + script.encode())


async def asterisk(port: int, env: bytes, *, host: str = "127.0.0.1",
                   replies: dict[bytes, bytes] | None = None) -> list[bytes]:
    """Connect like Asterisk, send the environment, answer each command
    (``200 result=1`` unless told otherwise), return the commands received."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(env)
    seen: list[bytes] = []
    while line := await reader.readline():
        seen.append(line)
        word = b" ".join(line.split()[:2])
        writer.write((replies or {}).get(word, b"200 result=1\n"))
    writer.close()
    return seen


async def echo(channel: Channel) -> None:
    caller = await channel.get_variable("CALLERID(num)")
    digits = await channel.get_data("beep", 3000, 4)
    await channel.set_variable("SB_TEST", f"{caller}:{digits}")


async def broken(channel: Channel) -> None:
    await channel.verbose("about to fail")
    raise RuntimeError("pin 123456 mismatch")  # the message must never be logged


REGISTRY = {"echo": Registration(echo),
            "broken": Registration(broken, on_error={"SB_VERIFIED": "error"})}


def run_with_server(scenario, config: ServerConfig | None = None):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        server = FastAgiServer(REGISTRY, config or ServerConfig(port=0))
        port = await server.start()
        try:
            return await scenario(server, port)
        finally:
            await server.stop()
    return asyncio.run(main())


def test_routes_by_script_and_binds_the_uniqueid_to_every_log_line(
        json_log_lines: Callable[[], list[dict[str, Any]]]) -> None:
    async def scenario(server: FastAgiServer, port: int) -> list[bytes]:
        replies = {b"GET VARIABLE": b"200 result=1 (5550001)\n",
                   b"GET DATA": b"200 result=1234\n"}
        return await asterisk(port, env_for("echo"), replies=replies)
    seen = run_with_server(scenario)
    assert seen == [b"GET VARIABLE CALLERID(num)\n", b"GET DATA beep 3000 4\n",
                    b"SET VARIABLE SB_TEST 5550001:1234\n"]
    lines = json_log_lines()
    call_lines = [x for x in lines if x.get("script") == "echo"]
    assert [x["event"] for x in call_lines] == ["agi_call_done"]
    assert all(x["uniqueid"] == "1795856179.2" for x in call_lines)


def test_handler_failure_fails_closed_and_the_server_goes_on() -> None:
    async def scenario(server: FastAgiServer, port: int) -> tuple[list[bytes], list[bytes]]:
        first = await asterisk(port, env_for("broken"))
        second = await asterisk(port, env_for("echo"))
        return first, second
    with capture_logs() as logs:
        first, second = run_with_server(scenario)
    assert first[-1] == b"SET VARIABLE SB_VERIFIED error\n"
    assert second[-1].startswith(b"SET VARIABLE SB_TEST")
    failed = [e for e in logs if e["event"] == "agi_handler_failed"]
    assert failed and "123456" not in repr(logs)


def test_unknown_script_and_cut_environment_are_refused_cleanly() -> None:
    async def scenario(server: FastAgiServer, port: int) -> list[bytes]:
        assert await asterisk(port, env_for("nosuchscript")) == []
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(ENV[:60])
        writer.close()
        return await asterisk(port, env_for("echo"))
    with capture_logs() as logs:
        seen = run_with_server(scenario)
    assert seen and {e["event"] for e in logs} >= {"agi_unknown_script",
                                                   "agi_environment_incomplete"}


def test_clients_outside_the_allow_list_are_refused() -> None:
    async def scenario(server: FastAgiServer, port: int) -> list[bytes]:
        return await asterisk(port, env_for("echo"), host="127.0.0.1")
    config = ServerConfig(host="127.0.0.1", port=0, allow=frozenset())
    # 127.0.0.1 is loopback: allowed even with an empty allow-list
    assert run_with_server(scenario, config)
    async def from_other(server: FastAgiServer, port: int) -> bool:
        return server._allowed("192.0.2.7")
    assert run_with_server(from_other, config) is False
    allowed = ServerConfig(host="127.0.0.1", port=0, allow=frozenset({"192.0.2.7"}))
    assert run_with_server(from_other, allowed) is True


def test_burst_of_200_simultaneous_calls() -> None:
    async def scenario(server: FastAgiServer, port: int) -> int:
        results = await asyncio.gather(*(asterisk(port, env_for("echo")) for _ in range(200)))
        return sum(len(r) == 3 for r in results)
    assert run_with_server(scenario) == 200


def test_stop_lets_a_call_in_progress_finish() -> None:
    async def scenario(server: FastAgiServer, port: int) -> list[bytes]:
        async def slow_asterisk() -> list[bytes]:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(env_for("echo"))
            seen = []
            while line := await reader.readline():
                seen.append(line)
                await asyncio.sleep(0.2)  # a slow caller
                writer.write(b"200 result=1\n")
            writer.close()
            return seen
        call = asyncio.ensure_future(slow_asterisk())
        await asyncio.sleep(0.1)
        await server.stop()  # returns once the call has finished
        assert call.done()
        return call.result()
    assert len(run_with_server(scenario)) == 3


def test_a_peer_that_answers_forever_is_cut_at_the_session_deadline() -> None:
    """A hostile FastAGI client answers every command with a late HANGUP line,
    or a 520- usage block that never ends, each line well within the command
    timeout: the session still ends at its absolute deadline (before: held as
    long as the peer liked)."""
    async def stall(port: int, line: bytes) -> float:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(env_for("echo"))
        started = asyncio.get_running_loop().time()
        while await reader.readline():  # every command: an endless trickle
            while True:
                writer.write(line)
                try:
                    await writer.drain()
                    if await asyncio.wait_for(reader.read(1), 0.2) == b"":
                        return asyncio.get_running_loop().time() - started
                except TimeoutError:
                    continue
                except ConnectionError:
                    return asyncio.get_running_loop().time() - started
        return asyncio.get_running_loop().time() - started

    async def scenario(server: FastAgiServer, port: int) -> list[float]:
        return list(await asyncio.gather(stall(port, b"HANGUP\n"),
                                         stall(port, b"520-Invalid command syntax.\n")))
    with capture_logs() as logs:
        held = run_with_server(scenario, ServerConfig(port=0, session_max_s=1.5,
                                                      command_timeout_s=30))
    assert all(1.4 < t < 6 for t in held), held  # not 30 s, not forever
    assert [e["event"] for e in logs].count("agi_session_deadline") == 2
