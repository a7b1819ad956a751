"""Recorded Asterisk 22 traffic, ready to replay.

A capture is ``NAME.ami`` (bytes Asterisk sent) and ``NAME.timing.tsv`` (when
each chunk arrived), under the captures folder (tests/fixtures/asterisk/ami).
A ``Segment`` is what one connection of the replay server plays
(switchboard/ami_listener/replay.py); a ``Refresher`` gives replayed calls
fresh uniqueids so the same capture can be played again as new calls.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from switchboard.ami_listener.framing import Framer
from switchboard.resources import data_dir

SEP = b"\r\n\r\n"
FIXTURES = data_dir("captures")
_ID_HEADERS = (b"Uniqueid", b"Linkedid", b"DestUniqueid", b"DestLinkedid")
_TS_RE = re.compile(rb"Timestamp: [0-9.]+")
_UID_RE = re.compile(rb"^((?:[A-Za-z0-9_.-]+-)?)(\d+)\.(\d+)$")


@dataclass
class Capture:
    name: str
    server: bytes
    rows: list[tuple[float, int, int]]  # (t, offset, length) of server chunks
    login_end: int  # offset just after the login reply frame

    @classmethod
    def load(cls, name: str, directory: Path = FIXTURES / "ami") -> Capture:
        server = (directory / f"{name}.ami").read_bytes()
        rows = []
        for line in (directory / f"{name}.timing.tsv").read_text().splitlines():
            if not line or line.startswith("#"):
                continue
            t, d, off, length = line.split("\t")
            if d == "S":
                rows.append((float(t), int(off), int(length)))
        banner_end = server.index(b"\r\n") + 2
        login_end = server.index(SEP, banner_end) + len(SEP)
        accepted = server.find(b"Message: Authentication accepted")
        if accepted > 0:  # an MD5 login: the Challenge reply comes first
            login_end = server.index(SEP, accepted) + len(SEP)
        return cls(name, server, rows, login_end)

    @property
    def banner(self) -> bytes:
        return self.server[: self.server.index(b"\r\n") + 2]

    def chunks_after_login(self) -> tuple[list[tuple[float, bytes]], bool]:
        """Recorded chunks after the login reply, with their times relative to the
        first of them, and whether Asterisk closed the connection at the end."""
        out: list[tuple[float, bytes]] = []
        closed = False
        t0: float | None = None
        for t, off, length in self.rows:
            if length == 0:
                closed = True
                continue
            start, end = max(off, self.login_end), off + length
            if end <= start:
                continue
            t0 = t if t0 is None else t0
            out.append((t - t0, self.server[start:end]))
        return out, closed

    def frames_after_login(self) -> list[bytes]:
        """Whole frames (each with its terminator) after the login reply."""
        framer = Framer(1 << 24, expect_banner=False)
        return [f + SEP for f in framer.feed(self.server[self.login_end:])]

    def timed_frames(self) -> list[tuple[float, bytes]]:
        """Whole frames after the login reply, each with the time (relative to the
        first chunk) at which its last byte arrived in the recording."""
        chunks, _ = self.chunks_after_login()
        out: list[tuple[float, bytes]] = []
        buf = b""
        for t, data in chunks:
            buf += data
            *whole, buf = buf.split(SEP)
            out.extend((t, f + SEP) for f in whole if f.strip(b"\r\n"))
        return out

    def event_frames(self) -> list[bytes]:
        return [f for f in self.frames_after_login() if f.startswith(b"Event:")]


@dataclass
class Segment:
    """What one connection plays.  ``chunks`` may be a generator (the benchmark
    streams a million events without holding them in memory)."""

    chunks: Iterable[tuple[float, bytes]]
    close_at_end: bool = True


def segment_from(capture: Capture, *, close: bool | None = None) -> Segment:
    chunks, closed = capture.chunks_after_login()
    return Segment(chunks, closed if close is None else close)


def concat(segments: Iterable[Segment], *, close: bool = False) -> Segment:
    """One connection playing several recordings one after the other."""
    chunks: list[tuple[float, bytes]] = []
    offset = 0.0
    for seg in segments:
        chunks.extend((offset + t, data) for t, data in seg.chunks)
        offset = chunks[-1][0] if chunks else offset
    return Segment(chunks, close)


def frames_segment(frames: Iterable[bytes], *, gap_s: float = 0.0, close: bool = False,
                   per_chunk: int = 1) -> Segment:
    chunks: list[tuple[float, bytes]] = []
    frames = list(frames)
    for i in range(0, len(frames), per_chunk):
        chunks.append((i * gap_s, b"".join(frames[i:i + per_chunk])))
    return Segment(chunks, close)


class Refresher:
    """Gives replayed calls fresh uniqueids (and shifts Timestamps to now), so
    the same capture can be played again and again as new calls."""

    def __init__(self, start: int | None = None) -> None:
        self.epoch = int(time.time()) if start is None else start
        self.counter = itertools.count(1)
        self.tag = 0

    def frames(self, frames: list[bytes], *, shift_to: float | None = None,
               scale: float = 1.0) -> list[bytes]:
        """``scale`` < 1 compresses the Timestamps' spacing (a replay at 20x speed
        uses 1/20, so the event times match when the frames are sent)."""
        self.tag += 1
        mapping: dict[bytes, bytes] = {}
        first_ts: float | None = None
        last_ts = float("-inf")
        out = []
        for frame in frames:
            lines = frame.split(b"\r\n")
            for i, line in enumerate(lines):
                key, sep, value = line.partition(b": ")
                if not sep:
                    continue
                if key in _ID_HEADERS:
                    m = _UID_RE.match(value)
                    if m:
                        new = mapping.get(value)
                        if new is None:
                            new = b"%s%d.%d" % (m.group(1), self.epoch + self.tag,
                                                next(self.counter))
                            mapping[value] = new
                        lines[i] = key + b": " + new
                elif key == b"Timestamp" and shift_to is not None:
                    try:
                        value_f = float(value)
                    except ValueError:
                        continue
                    first_ts = value_f if first_ts is None else first_ts
                    stamp = shift_to + (value_f - first_ts) * scale
                    if scale != 1.0:  # compressed: keep every frame's time distinct
                        stamp = max(stamp, last_ts + 1e-6)
                        last_ts = stamp
                    lines[i] = b"Timestamp: %.6f" % stamp
            out.append(b"\r\n".join(lines))
        return out
