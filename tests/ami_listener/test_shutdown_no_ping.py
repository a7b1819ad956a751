"""Asterisk stopping: once it has said so (its ``Shutdown`` event, or an action
refused with "Asterisk is shutting down", both recorded in
faults/restart_mid_burst.c1 on a real Asterisk 22.10.1 during ``core restart
now``), the listener sends no more Pings on that connection; it keeps reading
until Asterisk closes it (issue 22: one ERROR line at every restart)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from switchboard.ami_listener.captures import FIXTURES, Capture
from switchboard.ami_listener.framing import parse_frame
from switchboard.ami_listener.service import Listener
from tests.helpers import as_service, listener_settings

RECORDED = Capture.load("restart_mid_burst.c1", FIXTURES / "faults")


def recorded(start: bytes) -> bytes:
    """The first frame of the recording that starts so, as Asterisk sent it."""
    frame = next(f for _, f in RECORDED.timed_frames() if f.startswith(start))
    return frame + b"\r\n\r\n"


SHUTDOWN = recorded(b"Event: Shutdown")
REFUSED = recorded(b"Response: Error\r\nActionID: sb-2-24")


class StoppingAsterisk:
    """AMI that logs the listener in, answers Pings, then stops as Asterisk 22
    does: ``how`` = "event" sends the recorded Shutdown; "refusal" answers the
    next Ping with the recorded refusal, then sends Shutdown."""

    def __init__(self, how: str) -> None:
        self.how = how
        self.pings_before = 0
        self.pings_after = 0
        self.connections = 0
        self.stopping = asyncio.Event()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                      ) -> None:
        self.connections += 1
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        buf = b""
        while data := await reader.read(65536):
            buf += data
            while b"\r\n\r\n" in buf:
                raw, buf = buf.split(b"\r\n\r\n", 1)
                m = parse_frame(raw)
                action, aid = (m.get("Action") or "").lower(), m.get("ActionID") or ""
                head = f"Response: Success\r\nActionID: {aid}\r\n"
                if action == "challenge":
                    writer.write(f"{head}Challenge: 123456789\r\n\r\n".encode())
                elif action == "login":
                    key = hashlib.md5(b"123456789listenerpass",
                                      usedforsecurity=False).hexdigest()
                    ok = m.get("Key") == key or m.get("Secret") == "listenerpass"
                    writer.write(f"{head}Message: Authentication accepted\r\n\r\n".encode()
                                 if ok else b"Response: Error\r\n\r\n")
                elif action == "queuestatus":
                    writer.write(f"{head}EventList: start\r\n\r\nEvent: QueueStatusComplete"
                                 f"\r\nActionID: {aid}\r\nEventList: Complete\r\n"
                                 f"ListItems: 0\r\n\r\n".encode())
                elif action == "ping" and not self.stopping.is_set():
                    self.pings_before += 1
                    if self.pings_before == 2:  # Asterisk starts stopping now
                        self.stopping.set()
                        writer.write(REFUSED.replace(b"sb-2-24", aid.encode())
                                     if self.how == "refusal" else
                                     f"{head}Ping: Pong\r\n\r\n".encode())
                        writer.write(SHUTDOWN)
                    else:
                        writer.write(f"{head}Ping: Pong\r\n\r\n".encode())
                elif action == "ping":
                    self.pings_after += 1
                    writer.write(REFUSED.replace(b"sb-2-24", aid.encode()))
                await writer.drain()


@pytest.mark.parametrize("how", ["event", "refusal"])
def test_no_ping_after_asterisk_says_it_stops(db_url: str, tmp_path: Path, how: str) -> None:
    async def scenario() -> tuple[StoppingAsterisk, Listener, bool]:
        ami = StoppingAsterisk(how)
        port = await ami.start()
        listener = Listener(listener_settings(tmp_path, port, ping_interval_s=0.2,
                                              ping_timeout_s=1.0),
                            as_service(db_url, "listener"))
        await listener.start()
        try:
            async with asyncio.timeout(20):
                await ami.stopping.wait()
            await asyncio.sleep(1.5)  # seven Ping intervals
            stopping = listener.pipelines[0].client.asterisk_stopping
        finally:
            await listener.stop()
            await ami.close()
        return ami, listener, stopping
    ami, _, stopping = asyncio.run(scenario())
    assert ami.pings_before == 2
    assert stopping
    assert ami.pings_after == 0
    assert ami.connections == 1  # and it did not hang up on a stopping Asterisk
