"""The panoramisk 1.4 defects that real Asterisk 22 traffic triggers, each shown
on panoramisk itself (so we notice if an upstream release fixes it) and then on
our replacement, end to end where the defect is end to end.

Why the framing and connection were replaced, not wrapped: docs/dependencies.md.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message as PanoMessage

from switchboard.ami_listener import normalise
from switchboard.ami_listener.captures import Capture, Segment, frames_segment
from switchboard.ami_listener.replay import ReplayServer, ServerOptions
from switchboard.ami_listener.spool import Spool
from tests.helpers import as_service, fetch, ingest, listener_settings

NEWCHANNEL = next(f for f in Capture.load("a_answered_filtered").event_frames()
                  if f.startswith(b"Event: Newchannel"))
JOSE = NEWCHANNEL.replace(b"CallerIDName: Caller 5550001", "CallerIDName: José".encode())


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        pass


def _panoramisk_protocol(manager: Any) -> AMIProtocol:
    proto = AMIProtocol()
    proto.connection_made(_Transport())
    proto.factory = manager
    proto.encoding = "utf8"
    return proto


def test_split_utf8_character_is_dropped_by_panoramisk_kept_by_us(
        db_url: str, tmp_path: Path) -> None:
    seen: list[str] = []

    async def pano() -> None:
        manager = Manager(loop=asyncio.get_running_loop())
        manager.register_event("Newchannel", lambda m, e: seen.append(e["CallerIDName"]))
        proto = _panoramisk_protocol(manager)
        cut = JOSE.index("é".encode()) + 1
        proto.data_received(JOSE[:cut])
        proto.data_received(JOSE[cut:])
    asyncio.run(pano())
    assert seen == ["Jos"]  # panoramisk: each read decoded alone, errors ignored

    cut = JOSE.index("é".encode()) + 1
    segment = Segment([(0.0, JOSE[:cut]), (0.05, JOSE[cut:])], close_at_end=False)
    asyncio.run(ingest(db_url, tmp_path, [segment]))
    rows = asyncio.run(fetch(db_url, "SELECT fields->>'CallerIDName' AS n FROM ami_event"))
    assert [r["n"] for r in rows] == ["José"]


def test_empty_last_header_is_dropped_by_panoramisk_kept_by_us(
        db_url: str, tmp_path: Path) -> None:
    frame = NEWCHANNEL.split(b"\r\nLanguage:")[0] + b"\r\nAccountCode: \r\n\r\n"
    pano = PanoMessage.from_line(frame.decode().strip())
    assert "AccountCode" not in pano and pano.AccountCode == ""  # gone, and read as ''

    asyncio.run(ingest(db_url, tmp_path, [frames_segment([frame])]))
    rows = asyncio.run(fetch(db_url, "SELECT fields FROM ami_event"))
    assert json.loads(rows[0]["fields"])["AccountCode"] == ""


def test_raising_callback_loses_the_rest_of_the_read_in_panoramisk(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frames = Capture.load("b_abandon").event_frames()
    got: list[str] = []

    async def pano() -> None:
        manager = Manager(loop=asyncio.get_running_loop())

        def callback(_m: Any, event: Any) -> None:
            if event.event == "QueueCallerJoin":
                raise RuntimeError("bug in a callback")
            got.append(event.event)
        manager.register_event("*", callback)
        proto = _panoramisk_protocol(manager)
        with pytest.raises(RuntimeError):
            proto.data_received(b"".join(frames))
    asyncio.run(pano())
    assert "QueueCallerAbandon" not in got and "Hangup" not in got

    # Ours: no callbacks in the read loop.  Even a stage that raises on one frame
    # (here the normaliser, on the QueueCallerJoin) costs that frame only.
    original = normalise.DISPATCH["QueueCallerJoin"]

    def broken(m: Any) -> Any:
        raise RuntimeError("bug in a normaliser")
    monkeypatch.setitem(normalise.DISPATCH, "QueueCallerJoin", broken)
    asyncio.run(ingest(db_url, tmp_path, [frames_segment(frames, per_chunk=len(frames))]))
    monkeypatch.setitem(normalise.DISPATCH, "QueueCallerJoin", original)
    names = [r["event"] for r in asyncio.run(fetch(
        db_url, "SELECT event FROM ami_event ORDER BY spool_seq"))]
    wire = [f.split(b"\r\n")[0][7:].decode() for f in frames]
    expected = [n for n in wire if n in normalise.KEPT_EVENTS and n != "QueueCallerJoin"]
    assert names == expected and len(expected) == 14


def test_async_callbacks_run_unordered_in_panoramisk_in_order_in_our_spool(
        db_url: str, tmp_path: Path) -> None:
    finished: list[str] = []

    async def pano() -> None:
        manager = Manager(loop=asyncio.get_running_loop())

        async def callback(_m: Any, event: Any) -> None:
            if event.event == "QueueCallerJoin":
                await asyncio.sleep(0.01)  # any await reorders: tasks are fire-and-forget
            finished.append(event.event)
        manager.register_event("*", callback)
        proto = _panoramisk_protocol(manager)
        proto.data_received(b"".join(Capture.load("d_queue_timeout").event_frames()))
        await asyncio.sleep(0.05)
    asyncio.run(pano())
    assert finished.index("QueueCallerAbandon") < finished.index("QueueCallerJoin")

    cap = Capture.load("d_queue_timeout")
    asyncio.run(ingest(db_url, tmp_path, [frames_segment(cap.event_frames())]))

    async def spooled() -> list[bytes]:
        return [r.frame for r in Spool(tmp_path / "spool" / "lab").read_after(-1, 10_000)]
    # the spool holds the events the edge filter lets in, in wire order
    wire = [f[:-4] for f in cap.event_frames()
            if f.split(b"\r\n")[0][7:].decode() in normalise.KEPT_EVENTS]
    got = [f for f in asyncio.run(spooled())
           if f.startswith(b"Event:") and b"ActionID: sb-resync" not in f]
    assert got == wire


def test_unanswered_pings_go_unnoticed_by_panoramisk_not_by_us(tmp_path: Path,
                                                               db_url: str) -> None:
    async def pano() -> tuple[int, int]:
        server = ReplayServer([], ServerOptions(answer_pings=False))
        port = await server.start()
        manager = Manager(loop=asyncio.get_running_loop(), host="127.0.0.1", port=port,
                          username="listener", secret="listenerpass", ping_delay=0.1,
                          ping_interval=0.1)
        manager.connect()
        await asyncio.sleep(1.2)
        manager.close()
        await server.close()
        return server.stats.connections, server.stats.pings
    connections, pings = asyncio.run(pano())
    assert pings >= 5 and connections == 1  # never noticed the silence

    async def ours() -> tuple[int, float]:
        server = ReplayServer([], ServerOptions(answer_pings=False))
        port = await server.start()
        from switchboard.ami_listener.service import Listener
        listener = Listener(listener_settings(tmp_path, port, ping_interval_s=0.2,
                                              ping_timeout_s=0.3),
                            as_service(db_url, "listener"))
        loop = asyncio.get_running_loop()
        start = loop.time()
        await listener.start()
        try:
            async with asyncio.timeout(10):
                while server.stats.connections < 2:
                    await asyncio.sleep(0.02)
        finally:
            await listener.stop()
            await server.close()
        return server.stats.connections, loop.time() - start
    connections, elapsed = asyncio.run(ours())
    assert connections >= 2 and elapsed < 3.0  # closed and reconnected within seconds
