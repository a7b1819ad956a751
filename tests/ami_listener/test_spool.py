"""The on-disk spool: order, rotation, release, bound, crash recovery."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from switchboard.ami_listener.spool import Spool, SpoolFull


def make(tmp: Path, **kw: int) -> Spool:
    async def build() -> Spool:  # Spool owns an asyncio.Event: build it inside a loop
        return Spool(tmp / "node", **kw)
    return asyncio.run(build())


@pytest.mark.parametrize("memory_records", [0, 100, 100_000])
def test_append_read_in_order_across_segments(tmp_path: Path, memory_records: int) -> None:
    """From disk only, from memory, and across the edge between the two."""
    spool = make(tmp_path, segment_bytes=1 << 16, memory_records=memory_records)
    frames = [f"Event: E{i}\r\nN: {'x' * (i % 50)}".encode() for i in range(5000)]
    for i in range(0, 5000, 100):
        spool.append(frames[i:i + 100], 1_000_000 + i)
    assert len(list((tmp_path / "node").glob("seg-*.log"))) > 3
    got, seq = [], -1
    while batch := spool.read_after(seq, 333):
        got += [r.frame for r in batch]
        seq = batch[-1].seq
    assert got == frames and seq == 4999


def test_release_deletes_only_committed_segments(tmp_path: Path) -> None:
    spool = make(tmp_path, segment_bytes=1 << 10)  # ~30 records a segment
    for i in range(200):
        spool.append([b"Event: X\r\nI: %d" % i], i)
    before = len(list((tmp_path / "node").glob("seg-*.log")))
    spool.release(99)
    after = sorted((tmp_path / "node").glob("seg-*.log"))
    assert 0 < len(after) < before
    first_kept = int(after[0].name[4:-4])
    assert first_kept <= 100  # the segment holding seq 100 is still there
    assert spool.read_after(99, 1000)[0].seq == 100  # nothing uncommitted was lost
    assert [r.seq for r in spool.read_after(99, 1000)] == list(range(100, 200))


def test_reopen_continues_sequence_and_cuts_a_torn_tail(tmp_path: Path) -> None:
    spool = make(tmp_path)
    spool.append([b"Event: A", b"Event: B"], 1)
    spool.close()
    seg = next((tmp_path / "node").glob("seg-*.log"))
    with seg.open("ab") as fh:  # a crash in the middle of a write
        fh.write(b"\x20\x00\x00\x00garbage")
    again = make(tmp_path)
    assert again.spool_id == spool.spool_id
    assert again.next_seq == 2
    again.append([b"Event: C"], 2)
    assert [r.frame for r in again.read_after(-1, 10)] == [b"Event: A", b"Event: B", b"Event: C"]


def test_corrupt_record_is_not_returned(tmp_path: Path) -> None:
    spool = make(tmp_path)
    spool.append([b"Event: A", b"Event: B"], 1)
    spool.close()
    seg = next((tmp_path / "node").glob("seg-*.log"))
    data = bytearray(seg.read_bytes())
    data[-1] ^= 0xFF  # flip a bit in the last frame: CRC mismatch
    seg.write_bytes(bytes(data))
    again = make(tmp_path)
    assert [r.frame for r in again.read_after(-1, 10)] == [b"Event: A"]


def test_bound_refuses_and_counts(tmp_path: Path) -> None:
    spool = make(tmp_path, max_bytes=1 << 20, segment_bytes=1 << 16)
    frame = b"Event: X\r\n" + b"y" * 1000
    with pytest.raises(SpoolFull):
        for _ in range(2000):
            spool.append([frame], 0)
    assert spool.refused == 1
    assert spool.size_bytes <= 1 << 20
