"""AGI benchmark: full lookup sessions over FastAGI against the same flow run as
process AGI (one process per call, as Asterisk spawns it), in the same run.

  (a) FastAGI: ``switchboard agi-server`` (the production command, its own
      process) and N concurrent scripted Asterisk clients (agi.fakecall, the
      recorded bytes) running lookup sessions back to back: environment,
      GET VARIABLE SB_VERIFIED, GET DATA (the case number), the database lookup,
      three SET VARIABLEs.  Sessions/s over the run.
  (b) per-command latency with 200 calls in progress, each caller taking
      0.5-1.5 s to key the case number, independently (so the server is loaded
      but not saturated): the time from a client's reply to the server's next
      command, p50/p99, for the commands that do not wait on the database, and
      separately for the one that does (the lookup).  The same figures at
      saturation (a) are printed too.
  (c) process AGI: the installed ``switchboard-agi lookup`` entry point, one
      process per session, as many at a time as there are cores.
  (d) verify throughput: argon2id with the production parameters (settings'
      defaults unless SB_ARGON2_* are set), on as many threads as cores.

Every session's uniqueid (2,000 of them, used in turn) was verified beforehand
(audit rows written as the owner), so lookups run the real permission check.
Prints a table, then one JSON line (the last line).  Figures, not assertions.
Usage: python bench/agi_sessions.py [--seconds S] [--concurrency N] [--process-sessions N]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import shutil
import signal
import socket
import statistics
import sys
import time
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from switchboard import db
from switchboard.agi import fakecall
from switchboard.agi.app import make_hasher
from switchboard.agi.validate import with_check_digit
from switchboard.pgcluster import LocalCluster
from switchboard.settings import parse_agi
from tests.agi.conftest import PEPPER, agi_settings, seed
from tests.conftest import make_cluster
from tests.helpers import db_env

BIN = Path(sys.executable).parent
CASE = with_check_digit("2026001")  # seeded by tests.agi.conftest.seed


def env_for(url: str, port: int) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), **db_env(url),  # sb_agi's own login
            "SB_PIN_PEPPER": PEPPER, "SB_AGI_LISTEN": f"127.0.0.1:{port}",
            "SB_LOG_LEVEL": "warning", "SB_LOG_FORMAT": "json", "HOME": "/tmp",
            "SB_AGI_POOL_MAX": "20"}


async def prepare(cluster: LocalCluster, sessions: int) -> tuple[str, list[str]]:
    conn = await asyncpg.connect(cluster.superuser_url())
    await conn.execute(f'CREATE DATABASE bench_agi OWNER "{cluster.app_user}"')
    await conn.close()
    url = cluster.app_url().rsplit("/", 1)[0] + "/bench_agi"
    await db.migrate(url)
    await seed(url, agi_settings())
    uids = [f"bench-1795860000.{n}" for n in range(sessions)]
    conn = await asyncpg.connect(url)
    # Each call verified once, on the channel and number the recorded AGI
    # environment carries: a lookup is bound to them (sb_agi_case_lookup), at
    # most lookup_max times per verification, so there are enough calls that
    # none is looked up more often than a real caller may.
    channel = fakecall.recorded_environment().decode().split("agi_channel: ")[1].split()[0]
    await conn.execute(
        "INSERT INTO verify_attempt (uniqueid, channel, ani, agency, officer, officer_id, "
        "status, line_ok, begun_xid, hash_given_at, finished_at, outcome) "
        "SELECT u, $2, '+16155550100', '42', '1001', NULL, 'ok', true, 0, now(), now(), "
        "'full' FROM unnest($1::text[]) AS u", uids, channel)
    await conn.close()
    return url, uids


def lookup_call(uid: str, key_delay_s: float = 0.0) -> fakecall.Call:
    return fakecall.Call("lookup", uid, "+16155550100", [CASE], {"SB_VERIFIED": "full"},
                         key_delay_s=key_delay_s)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def fastagi(url: str, uids: list[str], seconds: float, concurrency: int,
                  key_delay_s: float = 0.0) -> dict[str, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "switchboard"), "agi-server", env=env_for(url, port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        for _ in range(400):
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        plain: list[float] = []
        db_step: list[float] = []
        done = 0
        bad = 0
        next_uid = itertools.cycle(uids)  # 60,000 calls: none looked up > 3 times
        deadline = time.monotonic() + seconds

        async def client() -> None:
            nonlocal done, bad
            if key_delay_s:  # independent callers: start at random, key at their pace
                await asyncio.sleep(random.uniform(0, key_delay_s))
            while time.monotonic() < deadline:
                delay = random.uniform(0.5, 1.5) * key_delay_s
                out = await fakecall.play(lookup_call(next(next_uid), delay), port)
                if out.variables.get("SB_LOOKUP") != "found":
                    bad += 1
                done += 1
                # trips[i]: from our reply to command i to command i+1; the reply to
                # GET DATA (index 1) is followed by the database lookup
                for i, t in enumerate(out.round_trips_s):
                    (db_step if i == 1 else plain).append(t * 1000)
        cpu0, own0 = cpu_s(proc.pid), time.process_time()
        start = time.monotonic()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.monotonic() - start
        server_cpu, client_cpu = cpu_s(proc.pid) - cpu0, time.process_time() - own0
    finally:
        proc.terminate()
        await proc.wait()

    def pct(xs: list[float], q: float) -> float:
        return statistics.quantiles(xs, n=1000)[int(q * 1000) - 1] if len(xs) > 10 else 0.0
    return {"sessions": done, "failed": bad, "seconds": elapsed,
            "server_cpu_ms": server_cpu * 1000 / max(done, 1),
            "client_cpu_ms": client_cpu * 1000 / max(done, 1),
            "sessions_per_s": done / elapsed, "p50_command_ms": pct(plain, 0.5),
            "p99_command_ms": pct(plain, 0.99), "p50_lookup_ms": pct(db_step, 0.5),
            "p99_lookup_ms": pct(db_step, 0.99)}


async def process_agi(url: str, uids: list[str], sessions: int) -> dict[str, float]:
    env = env_for(url, 0)
    todo = iter(uids[-sessions:])
    results: list[bool] = []

    async def worker() -> None:
        for uid in todo:
            out, status, _ = await fakecall.play_process(
                lookup_call(uid), [str(BIN / "switchboard-agi"), "lookup"], env)
            results.append(status == 0 and out.variables.get("SB_LOOKUP") == "found")
    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(os.cpu_count() or 1)))
    elapsed = time.monotonic() - start
    return {"sessions": len(results), "failed": results.count(False), "seconds": elapsed,
            "sessions_per_s": len(results) / elapsed}


async def verify_rate(seconds: float) -> dict[str, float | str]:
    s = parse_agi({**os.environ, "SB_PIN_PEPPER": PEPPER})
    hasher = make_hasher(s)
    pin_hash = hasher.hash("739184")
    t0 = time.perf_counter()
    hasher.verify(pin_hash, "739184")
    single_ms = (time.perf_counter() - t0) * 1000
    count = 0
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal count
        while time.monotonic() < deadline:
            ok = await asyncio.to_thread(hasher.verify, pin_hash, "739184")
            assert ok
            count += 1
    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(os.cpu_count() or 1)))
    return {"parameters": hasher.parameters, "single_ms": single_ms,
            "verify_per_s": count / (time.monotonic() - start)}


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument("--process-sessions", type=int, default=30)
    args = p.parse_args()
    # a SIGTERM (e.g. from `timeout`) still stops the cluster and the server
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    cluster = await asyncio.to_thread(make_cluster, "sb-bench-agi-")
    try:
        url, uids = await prepare(cluster, 60_000)
        fast = await fastagi(url, uids, args.seconds, args.concurrency)
        # 200 calls in progress at once, each caller taking 0.5-1.5 s to key the
        # case number: the load a busy line puts on one server, below its capacity
        paced = await fastagi(url, uids, args.seconds, args.concurrency, key_delay_s=1.0)
        proc = await process_agi(url, uids, args.process_sessions)
        ver = await verify_rate(3.0)
    finally:
        await asyncio.to_thread(cluster.destroy)
        shutil.rmtree(cluster.root.parent, ignore_errors=True)  # the folder make_cluster made
    ratio = fast["sessions_per_s"] / proc["sessions_per_s"]
    print(f"FastAGI   {fast['sessions']:>7.0f} lookup sessions in {fast['seconds']:.1f} s "
          f"with {args.concurrency} concurrent calls: {fast['sessions_per_s']:.0f}/s "
          f"({fast['failed']:.0f} not found)")
    print(f"          saturated: per command p50 {fast['p50_command_ms']:.2f} ms, "
          f"p99 {fast['p99_command_ms']:.2f} ms; lookup step (database) "
          f"p50 {fast['p50_lookup_ms']:.2f} ms, p99 {fast['p99_lookup_ms']:.2f} ms")
    print(f"          {args.concurrency} calls in progress, 0.5-1.5 s to key each case number "
          f"({paced['sessions_per_s']:.0f} sessions/s): per command "
          f"p50 {paced['p50_command_ms']:.2f} ms, p99 {paced['p99_command_ms']:.2f} ms; "
          f"lookup step p50 {paced['p50_lookup_ms']:.2f} ms, "
          f"p99 {paced['p99_lookup_ms']:.2f} ms")
    print(f"          CPU per session: server {fast['server_cpu_ms']:.2f} ms, "
          f"load generator {fast['client_cpu_ms']:.2f} ms (the rest is PostgreSQL)")
    print(f"process   {proc['sessions']:>7.0f} sessions in {proc['seconds']:.1f} s: "
          f"{proc['sessions_per_s']:.1f}/s ({proc['failed']:.0f} failed)")
    print(f"ratio     {ratio:.0f}x")
    print(f"verify    {ver['parameters']}: {ver['single_ms']:.1f} ms each, "
          f"{ver['verify_per_s']:.1f}/s on {os.cpu_count()} threads")
    print(json.dumps({
        "fastagi_sessions_per_s": round(fast["sessions_per_s"], 1),
        "process_sessions_per_s": round(proc["sessions_per_s"], 2),
        "ratio": round(ratio, 1),
        "p50_command_ms": round(paced["p50_command_ms"], 3),
        "p99_command_ms": round(paced["p99_command_ms"], 3),
        "p99_lookup_ms": round(paced["p99_lookup_ms"], 3),
        "saturated_p99_command_ms": round(fast["p99_command_ms"], 3),
        "verify_per_s": round(float(ver["verify_per_s"]), 1),
        "verify_ms": round(float(ver["single_ms"]), 1),
        "argon2": ver["parameters"], "concurrency": args.concurrency,
        "failed": fast["failed"] + proc["failed"]}))


if __name__ == "__main__":
    asyncio.run(main())
