"""Recordings benchmark: what one recording costs to seal and move, and what
the line's recordings weigh per minute and per day.

For calls of 1, 4 and 10 minutes (MixMonitor's format: 8 kHz, 16-bit WAV, of
a speech-like signal: syllable-length bursts of several partials over noise),
in the same run:

  (a) baseline: copying the clear WAV into a store folder (copy, fsync,
      rename): what moving a recording costs with no work on it at all;
  (b) the shipper's path: Opus at SB_REC_OPUS_KBPS (opusenc) piped into age
      (encrypted to a public key), then copied into the store the same way
      (admin.recstore.seal and LocalStore.put, the production code).

Prints a table, then one JSON line (the last line) with the ratio of (b) to
(a), the bytes per minute of call (WAV, and sealed Opus), and the volume per
day at the reference load (6,500 calls a day of about 240 s, README) and at
100 times that.  Figures, not assertions.
Usage: python bench/recordings.py [--rounds N] [--kbps K] [--comp C]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from switchboard.admin.recstore import LocalStore, key_for, seal, sha256_file

RATE = 8000
CALLS_PER_DAY = 6500
TALK_S = 240


def speechlike(seconds: float, seed: int) -> bytes:
    """Bursts of 120-300 ms (syllables) of three partials whose pitch moves,
    with pauses and a little noise: Opus sees something like a voice."""
    rnd = random.Random(seed)
    out = bytearray()
    n = int(seconds * RATE)
    i = 0
    while i < n:
        burst = int(rnd.uniform(0.12, 0.3) * RATE)
        pause = int(rnd.uniform(0.03, 0.25) * RATE)
        f0 = rnd.uniform(90, 220)
        for k in range(min(burst, n - i)):
            env = math.sin(math.pi * k / burst)
            f = f0 * (1 + 0.1 * k / burst)
            x = sum(a * math.sin(2 * math.pi * f * h * (i + k) / RATE)
                    for h, a in ((1, 0.5), (2, 0.3), (3, 0.15)))
            v = int(12000 * env * x + rnd.gauss(0, 300))
            out += struct.pack("<h", max(-32768, min(32767, v)))
        i += burst
        for _ in range(min(pause, n - i)):
            out += struct.pack("<h", int(rnd.gauss(0, 200)))
        i += pause
    return bytes(out)


def write_wav(path: Path, frames: bytes) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(frames)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--kbps", type=int, default=16)
    ap.add_argument("--comp", type=int, default=0, help="opusenc complexity (the "
                    "shipper's SB_REC_OPUS_COMPLEXITY, default 0)")
    args = ap.parse_args()
    for tool in ("age", "age-keygen", "opusenc"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (Debian packages age, opus-tools)")
            return 1
    tmp = Path(tempfile.mkdtemp(prefix="sb-bench-rec-"))
    try:
        key = tmp / "key.txt"
        subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
        recipients = tmp / "recipients.txt"
        recipients.write_text(subprocess.run(["age-keygen", "-y", str(key)], check=True,
                                             capture_output=True, text=True).stdout)
        rows = []
        for minutes in (1, 4, 10):
            audio = speechlike(minutes * 60, minutes)
            base, ship, wav_b, sealed_b = [], [], 0, 0
            for r in range(args.rounds):
                wav = tmp / "spool" / f"call{minutes}-{r}__leg{minutes}-{r}.wav"
                wav.parent.mkdir(exist_ok=True)
                write_wav(wav, audio)
                wav_b = wav.stat().st_size
                store = LocalStore(tmp / f"store-base-{r}")
                t0 = time.perf_counter()
                store.put(f"n/{wav.name}", wav, b"")  # (a): no digest to compare
                base.append(time.perf_counter() - t0)
                store = LocalStore(tmp / f"store-ship-{r}")
                t0 = time.perf_counter()
                s = seal(wav, tmp / "sealed", recipients, kbps=args.kbps,
                         complexity=args.comp)
                store.put(key_for("n", s), s.path, s.sha256)
                ship.append(time.perf_counter() - t0)
                sealed_b = s.size
                assert sha256_file(store.path(key_for("n", s))) == s.sha256
                s.path.unlink()
                wav.unlink()
            rows.append({"minutes": minutes, "wav_bytes": wav_b, "sealed_bytes": sealed_b,
                         "copy_ms": statistics.median(base) * 1000,
                         "seal_store_ms": statistics.median(ship) * 1000})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"{'minutes':>7} {'WAV bytes':>11} {'sealed bytes':>13} {'copy ms':>9} "
          f"{'seal+store ms':>14} {'ratio':>6}")
    for r in rows:
        print(f"{r['minutes']:>7} {r['wav_bytes']:>11} {r['sealed_bytes']:>13} "
              f"{r['copy_ms']:>9.1f} {r['seal_store_ms']:>14.1f} "
              f"{r['seal_store_ms'] / r['copy_ms']:>6.1f}")
    four = next(r for r in rows if r["minutes"] == 4)
    per_min_wav = four["wav_bytes"] / 4
    per_min_sealed = four["sealed_bytes"] / 4
    minutes_day = CALLS_PER_DAY * TALK_S / 60
    ms_per_audio_min = four["seal_store_ms"] / 4
    figures = {
        "kbps": args.kbps, "complexity": args.comp,
        "ratio_seal_store_to_copy": round(four["seal_store_ms"] / four["copy_ms"], 1),
        "seal_store_ms_4min_call": round(four["seal_store_ms"], 1),
        "copy_ms_4min_call": round(four["copy_ms"], 1),
        "cpu_s_per_audio_hour": round(ms_per_audio_min * 60 / 1000, 2),
        "bytes_per_min_wav": round(per_min_wav),
        "bytes_per_min_sealed": round(per_min_sealed),
        "gb_per_day_1x_sealed": round(minutes_day * per_min_sealed / 1e9, 2),
        "gb_per_day_100x_sealed": round(100 * minutes_day * per_min_sealed / 1e9, 1),
        "gb_per_day_1x_wav": round(minutes_day * per_min_wav / 1e9, 1),
        "cores_at_100x": round(100 * minutes_day * ms_per_audio_min / 1000 / 86400, 2),
    }
    print(f"per minute of call: WAV {per_min_wav / 1e3:.0f} kB, sealed Opus "
          f"{per_min_sealed / 1e3:.0f} kB; per day at 1x ({CALLS_PER_DAY} calls of "
          f"{TALK_S} s) {figures['gb_per_day_1x_sealed']} GB sealed "
          f"({figures['gb_per_day_1x_wav']} GB as WAV), at 100x "
          f"{figures['gb_per_day_100x_sealed']} GB; sealing at 100x keeps "
          f"{figures['cores_at_100x']} cores busy on average")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
