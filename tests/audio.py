"""Audio for the recording and monitoring tests: tones written as Asterisk's
MixMonitor writes (8 kHz, 16-bit, mono WAV) or as G.711 u-law RTP in a pcap
SIPp plays, and a Goertzel filter that says how strong a tone is in what came
back."""

from __future__ import annotations

import math
import struct
import subprocess
import wave
from pathlib import Path

RATE = 8000


def tone(freq: float, seconds: float, amplitude: float = 0.4) -> list[int]:
    n = int(RATE * seconds)
    return [int(amplitude * 32767 * math.sin(2 * math.pi * freq * i / RATE)) for i in range(n)]


def write_wav(path: Path, samples: list[int]) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(struct.pack(f"<{len(samples)}h", *samples))


def read_wav(path: Path) -> tuple[list[int], int]:
    with wave.open(str(path), "rb") as w:
        rate, width, ch = w.getframerate(), w.getsampwidth(), w.getnchannels()
        raw = w.readframes(w.getnframes())
    assert width == 2
    samples = list(struct.unpack(f"<{len(raw) // 2}h", raw))[::ch]
    return samples, rate


def strength(samples: list[int], rate: int, freq: float) -> float:
    """Goertzel power of ``freq`` relative to the signal's power (0..1-ish)."""
    if not samples:
        return 0.0
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - k * s1 * s2
    total = sum(x * x for x in samples) * len(samples) / 2
    return power / total if total else 0.0


def opus_to_wav(opus: Path, wav: Path) -> None:
    subprocess.run(["opusdec", "--quiet", "--rate", str(RATE), str(opus), str(wav)],
                   check=True, timeout=60)


_ULAW_BIAS = 0x84


def ulaw(sample: int) -> int:
    sign = 0x80 if sample < 0 else 0
    sample = min(abs(sample), 32635) + _ULAW_BIAS
    exponent = max(0, sample.bit_length() - 8)
    exponent = min(exponent, 7)
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def ulaw_decode(byte: int) -> int:
    byte = ~byte & 0xFF
    sign, exponent, mantissa = byte & 0x80, (byte >> 4) & 7, byte & 0x0F
    sample = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return -sample if sign else sample


def rtp_pcap(path: Path, samples: list[int], *, payload_type: int = 0) -> None:
    """A pcap of G.711 u-law RTP (20 ms packets, loopback addresses) for SIPp's
    play_pcap_audio, which rewrites the addresses and ports."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]  # Ethernet
    ssrc, seq, ts, t = 0x5B5B0001, 1, 0, 1_700_000_000.0
    for i in range(0, len(samples) - 159, 160):
        payload = bytes(ulaw(s) for s in samples[i:i + 160])
        rtp = struct.pack("!BBHII", 0x80, payload_type, seq & 0xFFFF, ts, ssrc) + payload
        udp = struct.pack("!HHHH", 6000, 6002, 8 + len(rtp), 0) + rtp
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), seq & 0xFFFF, 0, 64, 17, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])) + udp
        frame = b"\x00" * 12 + b"\x08\x00" + ip
        sec, usec = int(t), int((t % 1) * 1e6)
        out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
        seq, ts, t = seq + 1, ts + 160, t + 0.02
    path.write_bytes(b"".join(out))
