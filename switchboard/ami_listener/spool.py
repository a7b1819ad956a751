"""Durable, bounded, ordered spool between the AMI reader and the database writer.

Every frame the reader accepts is appended here first (one ``write()`` per TCP
read, so a SIGKILL of the listener loses nothing the kernel has; ``fsync`` runs
every ``fsync_interval`` against power loss).  The writer reads the spool in
order and records in the database, in the same transaction as the rows, the last
sequence number it committed; on start it resumes after that number.  Segments
wholly below the checkpoint are deleted.  When the spool is full (database down
for long), new frames are refused and counted, never silently lost.

Record: ``<u32 length><u32 crc32><u64 seq><i64 received_at_us>`` + frame bytes.
A torn or corrupt tail (crash mid-write) is detected by length/CRC and cut off.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import struct
import zlib
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

_HEAD = struct.Struct("<IIQq")
_SEG_PREFIX = "seg-"
_SEG_SUFFIX = ".log"
_READ_CHUNK = 1 << 20


class Record(NamedTuple):
    """One spooled frame (a NamedTuple: one is built per frame read, on the hot
    path, where a frozen dataclass's __init__ cost measurably more)."""

    seq: int
    received_at_us: int
    frame: bytes


class SpoolFull(Exception):
    pass


def _seg_name(first_seq: int) -> str:
    return f"{_SEG_PREFIX}{first_seq:020d}{_SEG_SUFFIX}"


def _seg_first(path: Path) -> int:
    return int(path.name[len(_SEG_PREFIX):-len(_SEG_SUFFIX)])


def _scan(data: bytes, start: int = 0) -> tuple[list[Record], int]:
    """Records from ``data[start:]`` and the offset after the last good one."""
    out: list[Record] = []
    pos = start
    end = len(data)
    head = _HEAD.size
    while pos + head <= end:
        length, crc, seq, recv = _HEAD.unpack_from(data, pos)
        stop = pos + head + length
        if stop > end:
            break
        frame = data[pos + head:stop]
        if zlib.crc32(frame) != crc:
            break
        out.append(Record(seq, recv, frame))
        pos = stop
    return out, pos


class Spool:
    def __init__(self, directory: Path, *, max_bytes: int = 1 << 30,
                 segment_bytes: int = 16 << 20, memory_records: int = 20_000) -> None:
        self.dir = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.dir.mkdir(parents=True, exist_ok=True)
        id_file = self.dir / "spool.id"
        if not id_file.exists():
            tmp = self.dir / "spool.id.tmp"
            tmp.write_text(secrets.token_hex(8))
            os.replace(tmp, id_file)
        self.spool_id = id_file.read_text().strip()
        self.appended = asyncio.Event()
        self.refused = 0
        self._fd: int | None = None
        self._active_first = 0
        self._active_size = 0
        self._dirty = False
        self.next_seq = 0
        self._sizes: dict[int, int] = {}
        # The newest records also stay in memory, so a writer that keeps up never
        # reads the disk; after a restart or a long outage it reads the files.
        self._memory: deque[Record] = deque(maxlen=memory_records)
        self._recover()
        # reader position cache: (segment first seq, byte offset, next seq expected there)
        self._rpos: tuple[int, int, int] | None = None

    # -- housekeeping ------------------------------------------------------------
    def _segments(self) -> list[Path]:
        return sorted(p for p in self.dir.glob(f"{_SEG_PREFIX}*{_SEG_SUFFIX}"))

    def _recover(self) -> None:
        segs = self._segments()
        for p in segs:
            self._sizes[_seg_first(p)] = p.stat().st_size
        if not segs:
            self._open_segment(0)
            return
        last = segs[-1]
        data = last.read_bytes()
        records, good = _scan(data)
        if good < len(data):  # torn tail from a crash: cut it off
            with last.open("r+b") as fh:
                fh.truncate(good)
        first = _seg_first(last)
        self.next_seq = records[-1].seq + 1 if records else first
        self._fd = os.open(last, os.O_WRONLY | os.O_APPEND)
        self._active_first = first
        self._active_size = good
        self._sizes[first] = good

    def _open_segment(self, first_seq: int) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
        path = self.dir / _seg_name(first_seq)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._active_first = first_seq
        self._active_size = 0
        self._sizes[first_seq] = 0
        self.next_seq = max(self.next_seq, first_seq)

    @property
    def size_bytes(self) -> int:
        return sum(self._sizes.values())

    # -- writing (reader stage) ------------------------------------------------------
    def append(self, frames: Sequence[bytes], received_at_us: int) -> int:
        """Append frames in one write; returns the last sequence number written.
        Raises SpoolFull (nothing written) when the bound would be exceeded."""
        if not frames:
            return self.next_seq - 1
        parts: list[bytes] = []
        records: list[Record] = []
        seq = self.next_seq
        for frame in frames:
            parts.append(_HEAD.pack(len(frame), zlib.crc32(frame), seq, received_at_us))
            parts.append(frame)
            records.append(Record(seq, received_at_us, frame))
            seq += 1
        blob = b"".join(parts)
        if self.size_bytes + len(blob) > self.max_bytes:
            self.refused += len(frames)
            raise SpoolFull(f"spool {self.dir} is full ({self.size_bytes} bytes)")
        if self._active_size >= self.segment_bytes:
            self._open_segment(self.next_seq)
        assert self._fd is not None
        view = memoryview(blob)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._active_size += len(blob)
        self._sizes[self._active_first] = self._active_size
        self.next_seq = seq
        self._memory.extend(records)
        self._dirty = True
        self.appended.set()
        return seq - 1

    def sync(self) -> None:
        if self._dirty and self._fd is not None:
            os.fsync(self._fd)
            self._dirty = False

    def close(self) -> None:
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            self._fd = None

    # -- reading (writer stage) --------------------------------------------------
    def _iter_segment(self, first: int, offset: int) -> Iterator[tuple[Record, int]]:
        """Records of one segment from ``offset``, each with the offset after it."""
        try:
            fh = (self.dir / _seg_name(first)).open("rb")
        except FileNotFoundError:
            return
        with fh:
            fh.seek(offset)
            buf = b""
            base = offset
            while True:
                chunk = fh.read(_READ_CHUNK)
                if not chunk:
                    return
                buf = buf + chunk if buf else chunk
                records, good = _scan(buf)
                pos = base
                for rec in records:
                    pos += _HEAD.size + len(rec.frame)
                    yield rec, pos
                buf = buf[good:]
                base += good

    def read_after(self, seq: int, max_records: int) -> list[Record]:
        """Up to ``max_records`` records with sequence > ``seq``, in order."""
        want = seq + 1
        memory = self._memory
        while memory and memory[0].seq < want:
            memory.popleft()  # consumed: the files still have them if ever needed again
        if memory and memory[0].seq == want:
            return list(itertools.islice(memory, max_records))
        out: list[Record] = []
        firsts = sorted(self._sizes)
        for idx, first in enumerate(firsts):
            nxt = firsts[idx + 1] if idx + 1 < len(firsts) else None
            if nxt is not None and nxt <= want:
                continue  # this whole segment is before what we want
            offset = 0
            if self._rpos is not None and self._rpos[0] == first and self._rpos[2] <= want:
                offset = self._rpos[1]
            for rec, end in self._iter_segment(first, offset):
                if rec.seq < want:
                    continue
                out.append(rec)
                self._rpos = (first, end, rec.seq + 1)
                if len(out) >= max_records:
                    return out
        return out

    def release(self, upto_seq: int) -> int:
        """Delete segments whose records are all <= upto_seq (never the active one)."""
        removed = 0
        firsts = sorted(self._sizes)
        for idx, first in enumerate(firsts[:-1]):
            nxt = firsts[idx + 1]
            if nxt - 1 <= upto_seq and first != self._active_first:
                (self.dir / _seg_name(first)).unlink(missing_ok=True)
                del self._sizes[first]
                if self._rpos is not None and self._rpos[0] == first:
                    self._rpos = None
                removed += 1
        return removed
