"""AMI ingest benchmark: socket -> listener -> committed rows, against a ceiling
measured in the same run on the same machine.

  (a) events/s end to end: a loopback AMI server sends N events (the real
      f_burst_50_calls_ts capture, replayed with fresh uniqueids) as fast as the
      listener (a separate process, the production command) takes them; the clock
      stops when the listener's checkpoint says the last frame is committed.
  (b) ceiling: the same kind of rows written by asyncpg copy_records_to_table in
      batches of 10,000 straight from memory into the same table.
  (c) event -> commit latency p50/p99 at a fixed 1,000 events/s: each frame's
      Timestamp is set when it is sent; a poller sees the row committed.
  (d) the listener's peak RSS (VmHWM) over the N events of (a).

Prints a table, then one JSON line (the last line).  Figures, not assertions.
Usage: python bench/ami_ingest.py [--events N] [--ceiling-rows N] [--latency-seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from switchboard import db
from switchboard.ami_listener.batchsql import RAW_COLUMNS, raw_tuple
from switchboard.ami_listener.captures import Capture, Refresher, Segment
from switchboard.ami_listener.fields import KEPT_EVENTS
from switchboard.ami_listener.normalise import FrameNormaliser
from switchboard.ami_listener.replay import ReplayServer, ServerOptions
from switchboard.ami_listener.spool import Record
from switchboard.pgcluster import LocalCluster
from tests.conftest import make_cluster
from tests.helpers import db_env

BASE = Capture.load("f_burst_50_calls_ts").event_frames()
KEPT_PER_ROUND = sum(f.split(b"\r\n")[0][7:].decode() in KEPT_EVENTS for f in BASE)


def rounds_for(events: int) -> int:
    return max(1, events // len(BASE))


def stream(rounds: int, per_chunk: int = 256) -> Iterator[tuple[float, bytes]]:
    refresher = Refresher()
    now = time.time()
    buf: list[bytes] = []
    for n in range(rounds):
        # each round is a new burst 75 s after the previous one (the capture spans 69 s)
        for frame in refresher.frames(BASE, shift_to=now + 75 * n):
            buf.append(frame)
            if len(buf) >= per_chunk:
                yield 0.0, b"".join(buf)
                buf = []
    if buf:
        yield 0.0, b"".join(buf)


async def new_database(cluster: LocalCluster, name: str) -> str:
    conn = await asyncpg.connect(cluster.superuser_url())
    await conn.execute(f'CREATE DATABASE {name} OWNER "{cluster.app_user}"')
    await conn.close()
    url = cluster.app_url().rsplit("/", 1)[0] + "/" + name
    await db.migrate(url)
    return url


PROFILE: list[str] = []  # --profile PATH: the throughput run's listener under cProfile


async def start_listener(url: str, port: int, state: Path,
                         profile: bool = False) -> asyncio.subprocess.Process:
    # the listener's own login (sb_listener), as in production
    env = {**os.environ, **db_env(url), "SB_STATE_DIR": str(state),
           "SB_AMI_NODES": f"bench@127.0.0.1:{port}", "SB_AMI_SECRET": "listenerpass",
           "SB_METRICS_ADDR": "127.0.0.1:0", "SB_LOG_LEVEL": "warning",
           "SB_SPOOL_MAX_BYTES": str(8 << 30)}
    prof = ["-m", "cProfile", "-o", PROFILE[0]] if profile and PROFILE else []
    return await asyncio.create_subprocess_exec(
        sys.executable, *prof, "-m", "switchboard.console.cli", "ami-listener", env=env)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def wait_checkpoint(url: str, seq: int, timeout: float) -> float:
    conn = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = await conn.fetchval("SELECT seq FROM listener_checkpoint WHERE node='bench'")
            if got is not None and got >= seq:
                return time.monotonic()
            await asyncio.sleep(0.02)
    finally:
        await conn.close()
    raise TimeoutError(f"checkpoint did not reach {seq}")


async def throughput(cluster: LocalCluster, events: int, state: Path) -> dict[str, float]:
    url = await new_database(cluster, "bench_throughput")
    rounds = rounds_for(events)
    frames = rounds * len(BASE)
    # generated before the clock starts, so the sender does not compete for the CPU
    chunks = list(stream(rounds))
    server = ReplayServer([Segment(chunks, close_at_end=False)],
                          ServerOptions(speed=None, username="listener"))
    port = await server.start()
    proc = await start_listener(url, port, state / "throughput", profile=True)
    try:
        while server.stats.logins == 0:
            await asyncio.sleep(0.01)
        start = time.monotonic()
        # spool: 'connected' + QueueStatusComplete + every kept frame (the edge filter
        # drops the rest before the spool); seq counts from 0
        end = await wait_checkpoint(url, rounds * KEPT_PER_ROUND + 1, timeout=900)
        rss = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        await proc.wait()
        await server.close()
    conn = await asyncpg.connect(url)
    rows = await conn.fetchval("SELECT count(*) FROM ami_event")
    dupes = rows - await conn.fetchval("SELECT count(DISTINCT dedupe_key) FROM ami_event")
    calls = await conn.fetchval("SELECT count(*) FROM queue_call")
    await conn.close()
    return {"frames": frames, "rows": rows, "duplicates": dupes, "calls": calls,
            "seconds": end - start, "events_per_s": rows / (end - start),
            "frames_per_s": frames / (end - start), "peak_rss_mb": rss}


async def ceiling(cluster: LocalCluster, n_rows: int) -> dict[str, float]:
    url = await new_database(cluster, "bench_ceiling")
    normaliser = FrameNormaliser("bench", "ceiling")
    tuples = []
    seq = 0
    now_us = time.time_ns() // 1000
    for _, chunk in stream(max(1, n_rows // KEPT_PER_ROUND + 1)):
        for frame in chunk.split(b"\r\n\r\n"):
            if not frame:
                continue
            item = normaliser.item(Record(seq, now_us, frame))
            seq += 1
            if item is not None and item.raw is not None:
                tuples.append(raw_tuple(item.raw))
        if len(tuples) >= n_rows:
            break
    tuples = tuples[:n_rows]
    conn = await asyncpg.connect(url)
    await conn.execute("SELECT sb_ensure_event_partition(current_date)")
    start = time.monotonic()
    for i in range(0, len(tuples), 10_000):
        async with conn.transaction():
            await conn.copy_records_to_table("ami_event", records=tuples[i:i + 10_000],
                                             columns=RAW_COLUMNS)
    elapsed = time.monotonic() - start
    await conn.close()
    return {"rows": len(tuples), "seconds": elapsed, "ceiling_per_s": len(tuples) / elapsed}


async def latency(cluster: LocalCluster, seconds: float, rate: int, state: Path
                  ) -> dict[str, float]:
    url = await new_database(cluster, "bench_latency")
    per_tick = 10
    total = int(seconds * rate)
    frames: list[bytes] = []
    refresher = Refresher()
    while len(frames) < total:
        frames += [f for f in refresher.frames(BASE, shift_to=time.time())
                   if b"\r\nTimestamp: " in f]
    frames = frames[:total]
    chunks = [(i / rate, b"".join(frames[i:i + per_tick])) for i in range(0, total, per_tick)]
    server = ReplayServer([Segment(chunks, close_at_end=False)],
                          ServerOptions(speed=1.0, stamp_on_send=True))
    port = await server.start()
    proc = await start_listener(url, port, state / "latency")
    seen: dict[bytes, float] = {}
    conn = await asyncpg.connect(url)
    try:
        while server.stats.logins == 0:
            await asyncio.sleep(0.01)
        deadline = time.monotonic() + seconds + 30
        last_seq = -1
        while time.monotonic() < deadline:
            rows = await conn.fetch(
                "SELECT dedupe_key, extract(epoch FROM event_time)::float8 AS t, spool_seq"
                " FROM ami_event WHERE spool_seq > $1 AND event_time > now() - interval '1 hour'",
                last_seq)
            now = time.time()
            for r in rows:
                seen.setdefault(r["dedupe_key"], (now - r["t"]) * 1000)
                last_seq = max(last_seq, r["spool_seq"])
            if server.stats.segments_done and len(seen) >= sum(
                    f.split(b"\r\n")[0][7:].decode() in KEPT_EVENTS for f in frames):
                break
            await asyncio.sleep(0.005)
    finally:
        await conn.close()
        proc.terminate()
        await proc.wait()
        await server.close()
    lat = sorted(seen.values())
    q = statistics.quantiles(lat, n=100)
    return {"events": len(lat), "rate": rate, "p50_ms": q[49], "p99_ms": q[98],
            "max_ms": lat[-1]}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--ceiling-rows", type=int, default=200_000)
    ap.add_argument("--latency-seconds", type=float, default=10.0)
    ap.add_argument("--profile", default=None,
                    help="write the throughput run's listener profile here (cProfile; "
                    "read it with python -m pstats); the figures are then not comparable")
    args = ap.parse_args()
    if args.profile:
        PROFILE.append(os.path.abspath(args.profile))  # noqa: ASYNC240 (once, at start)
    cluster = await asyncio.to_thread(make_cluster, "sb-bench-pg-")
    state = cluster.root.parent / "state"
    try:
        ceil = await ceiling(cluster, args.ceiling_rows)
        thr = await throughput(cluster, args.events, state)
        lat = await latency(cluster, args.latency_seconds, 1000, state)
    finally:
        await asyncio.to_thread(cluster.destroy)
        shutil.rmtree(cluster.root.parent, ignore_errors=True)  # the folder make_cluster made
    ratio = thr["events_per_s"] / ceil["ceiling_per_s"]
    print(f"{'measure':<44}{'value':>14}")
    for label, value in [
        ("(a) frames sent", thr["frames"]),
        ("(a) event rows committed", thr["rows"]),
        ("(a) duplicate rows", thr["duplicates"]),
        ("(a) queue_call rows", thr["calls"]),
        ("(a) seconds, socket to last commit", round(thr["seconds"], 2)),
        ("(a) events/s end to end", round(thr["events_per_s"])),
        ("(a) frames/s read (incl. dropped types)", round(thr["frames_per_s"])),
        ("(b) ceiling rows/s (COPY 10k batches)", round(ceil["ceiling_per_s"])),
        ("ratio (a)/(b)", round(ratio, 3)),
        ("(c) events at 1,000/s", lat["events"]),
        ("(c) commit latency p50 ms", round(lat["p50_ms"], 1)),
        ("(c) commit latency p99 ms", round(lat["p99_ms"], 1)),
        ("(c) commit latency max ms", round(lat["max_ms"], 1)),
        ("(d) listener peak RSS MB", round(thr["peak_rss_mb"], 1)),
    ]:
        print(f"{label:<44}{value!s:>14}")
    print(json.dumps({"events_per_s": round(thr["events_per_s"]),
                      "ceiling_per_s": round(ceil["ceiling_per_s"]), "ratio": round(ratio, 3),
                      "p50_commit_ms": round(lat["p50_ms"], 1),
                      "p99_commit_ms": round(lat["p99_ms"], 1),
                      "peak_rss_mb": round(thr["peak_rss_mb"], 1), "events": thr["rows"],
                      "frames": thr["frames"], "duplicates": thr["duplicates"]}))


if __name__ == "__main__":
    asyncio.run(main())
