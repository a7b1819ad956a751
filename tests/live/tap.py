"""A recording TCP proxy between the listener and Asterisk's AMI port.

The live tier's listener always connects through it.  It records every
connection in the fixture format of ``tests/fixtures/asterisk/ami`` (``.ami``
= bytes Asterisk sent, ``.client`` = bytes the listener sent, ``.timing.tsv``
= when each chunk passed), so that a fault seen live can be kept and replayed
in the fast tier.  ``cut(seconds)`` drops the connection and refuses new ones
for a while, as a broken network does: what Asterisk sends meanwhile is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Recording:
    started: float
    server: bytearray = field(default_factory=bytearray)
    client: bytearray = field(default_factory=bytearray)
    rows: list[tuple[float, str, int, int]] = field(default_factory=list)
    closed: bool = False

    def add(self, direction: str, data: bytes) -> None:
        buf = self.server if direction == "S" else self.client
        self.rows.append((time.time() - self.started, direction, len(buf), len(data)))
        buf.extend(data)

    def save(self, directory: Path, stem: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{stem}.ami").write_bytes(bytes(self.server))
        (directory / f"{stem}.client").write_bytes(bytes(self.client))
        lines = ["# t_seconds_since_connect\tdir(S=from asterisk,C=from client)\t"
                 "byte_offset\tlength"]
        lines += [f"{t:.6f}\t{d}\t{off}\t{n}" for t, d, off, n in self.rows]
        (directory / f"{stem}.timing.tsv").write_text("\n".join(lines) + "\n")


class Tap:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.recordings: list[Recording] = []
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._refuse_until = 0.0
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> int:
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self.port

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for w in list(self._writers):
                w.transport.abort()
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def mark(self) -> int:
        """The number of connections so far (recordings after it are the scenario's)."""
        return len(self.recordings)

    def cut(self, seconds: float) -> None:
        """Drop every connection now and refuse new ones for ``seconds``."""
        def go() -> None:
            self._refuse_until = time.monotonic() + seconds
            for w in list(self._writers):
                w.transport.abort()
        self._loop.call_soon_threadsafe(go)

    def save(self, since: int, directory: Path, name: str) -> list[str]:
        """Keep the recordings since ``mark()`` as NAME.cN.{ami,client,timing.tsv}."""
        out = []
        for i, rec in enumerate(self.recordings[since:], 1):
            rec.save(directory, f"{name}.c{i}")
            out.append(f"{name}.c{i}")
        return out

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if time.monotonic() < self._refuse_until:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1",
                                                                 self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        rec = Recording(time.time())
        self.recordings.append(rec)
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, d: str) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    rec.add(d, data)
                    dst.write(data)
                    await dst.drain()
        tasks = [asyncio.ensure_future(pipe(up_reader, writer, "S")),
                 asyncio.ensure_future(pipe(reader, up_writer, "C"))]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        rec.closed = True
        for w in (writer, up_writer):
            self._writers.discard(w)
            w.transport.abort()
        for t in tasks:
            t.cancel()


def keep_queue_log(queue_log: Path, since: float, directory: Path, name: str) -> None:
    """Beside the AMI recordings: Asterisk's queue_log lines from ``since`` on."""
    lines = [ln for ln in queue_log.read_text(errors="replace").splitlines(keepends=True)
             if ln.split("|", 1)[0].isdigit() and int(ln.split("|", 1)[0]) >= int(since) - 1]
    (directory / f"{name}.queue_log").write_text("".join(lines))
