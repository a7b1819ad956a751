"""Where recordings are kept and how they are sealed (docs/recordings.md).

- ``seal``: a finished WAV from MixMonitor becomes Opus (``opusenc``, Debian
  package opus-tools) and is encrypted to the site's public key (``age``,
  Debian package age) in one pipe: the clear audio is never written again.
- ``open_sealed``: the playback host decrypts with its private key, streaming.
- ``LocalStore``: a folder of ``node/YYYY/MM/DD/<call>__<leg>.opus.age`` files,
  each written to a temporary name, fsynced and renamed, so a reader never
  sees half a file and a retry of the same file is harmless.
- ``S3Store`` (switchboard/admin/s3store.py): the same keys in a bucket of an
  S3-compatible store, for sites that outgrow one disk.
- ``open_store``: the one the settings name (SB_REC_STORE).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from switchboard.recsettings import RecordingSettings

NAME_RE = re.compile(r"^([A-Za-z0-9.-]{1,150})__([A-Za-z0-9.-]{1,150})\.wav$")
KEY_RE = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
SEALED_SUFFIX = ".opus.age"
MAX_SEALED_BYTES = 512 << 20


class RecordingError(RuntimeError):
    """A recording could not be sealed, stored or opened; the message says why."""


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        package = {"age": "age", "opusenc": "opus-tools"}.get(name, name)
        raise RecordingError(f"{name} is not installed (Debian package {package})")
    return found


@dataclass(frozen=True)
class Sealed:
    path: Path
    uniqueid: str
    leg: str
    seconds: float
    started: datetime
    size: int
    sha256: bytes


def wav_seconds(path: Path) -> float:
    """The WAV's length; from its size when its header was never finished
    (Asterisk stopped while recording: the header still says 0 frames)."""
    try:
        with wave.open(str(path), "rb") as w:
            frames, rate, width = w.getnframes(), w.getframerate(), w.getsampwidth()
            if frames > 0 and rate > 0:
                return frames / rate
            size = path.stat().st_size
            return max(0, size - 44) / (rate * width * w.getnchannels() or 16000)
    except (wave.Error, EOFError) as exc:
        size = path.stat().st_size
        if size <= 44:
            raise RecordingError(f"{path.name}: not a WAV file ({exc})") from exc
        return (size - 44) / 16000  # MixMonitor's wav: 8 kHz, 16 bits, mono


def sha256_file(path: Path) -> bytes:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.digest()


def _fsync(path: Path) -> None:
    """A file's data (or a folder's entries) on disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def seal(wav: Path, out_dir: Path, recipients: Path, *, kbps: int,
         complexity: int = 0) -> Sealed:
    """Encode ``wav`` to Opus and encrypt it to ``recipients``, into
    ``out_dir/<name>.opus.age`` (written under a temporary name, fsynced,
    renamed).  The WAV itself is left for the caller to remove."""
    m = NAME_RE.match(wav.name)
    if m is None:
        raise RecordingError(f"{wav.name}: not a recording's name (<call>__<leg>.wav)")
    seconds = wav_seconds(wav)
    started = datetime.fromtimestamp(wav.stat().st_mtime - seconds, UTC)
    final = out_dir / (wav.name[:-4] + SEALED_SUFFIX)
    tmp = out_dir / ("." + final.name + ".tmp")
    out_dir.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen(
            [tool("opusenc"), "--quiet", "--bitrate", str(kbps), "--speech",
             "--comp", str(complexity), str(wav), "-"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE) as enc:
        assert enc.stdout is not None
        age = subprocess.run([tool("age"), "--encrypt", "-R", str(recipients), "-o", str(tmp)],
                             stdin=enc.stdout, capture_output=True, timeout=600, check=False)
        enc.stdout.close()
        enc_err = enc.stderr.read() if enc.stderr else b""
        enc.wait(timeout=600)
    if enc.returncode != 0 or age.returncode != 0:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        why = (enc_err or age.stderr).decode("utf-8", "replace").strip()[:300]
        raise RecordingError(f"{wav.name}: sealing failed: {why}")
    _fsync(tmp)
    os.replace(tmp, final)
    _fsync(out_dir)
    return Sealed(final, m.group(1), m.group(2), seconds, started, final.stat().st_size,
                  sha256_file(final))


def key_for(node: str, sealed: Sealed) -> str:
    """Where a sealed recording is kept, in any store."""
    day = sealed.started.strftime("%Y/%m/%d")
    return f"{node}/{day}/{sealed.uniqueid}__{sealed.leg}{SEALED_SUFFIX}"


def checked_key(key: str) -> str:
    """A key read back from the index (hostile until checked): no absolute
    path, no ``..``, only the characters ``key_for`` writes."""
    if not KEY_RE.match(key) or any(p in ("", ".", "..") for p in key.split("/")):
        raise RecordingError(f"not a store key: {key[:80]!r}")
    return key


class Store(Protocol):
    """What the shipper, the playback and the purge need of a store.  Blocking
    calls: the callers run them in a thread."""

    def put(self, key: str, src: Path, sha256: bytes) -> None: ...
    def read(self, key: str) -> bytes: ...
    def delete(self, key: str) -> bool: ...
    def digest(self, key: str) -> bytes:  # raises FileNotFoundError when missing
        ...
    def describe(self) -> str: ...


def open_store(cfg: RecordingSettings) -> Store:
    """The store SB_REC_STORE names: a folder, or ``s3://bucket[/prefix]`` with
    the SB_REC_S3_* settings (switchboard/admin/s3store.py)."""
    if cfg.s3 is not None:
        from switchboard.admin.s3store import S3Store  # noqa: PLC0415 - boto3 only if asked
        return S3Store(cfg.s3)
    return LocalStore(Path(cfg.store))


class LocalStore:
    """The recordings store as a folder (the default)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return str(self.root)

    def path(self, key: str) -> Path:
        return self.root / checked_key(key)

    def digest(self, key: str) -> bytes:
        return sha256_file(self.path(key))

    def put(self, key: str, src: Path, sha256: bytes) -> None:
        """Copy ``src`` in under ``key``; the same file already there is fine,
        another one is refused (a store never overwrites a recording)."""
        dest = self.path(key)
        if dest.exists():
            if sha256_file(dest) == sha256:
                return
            raise RecordingError(f"{key}: another file is already stored under this key")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name("." + dest.name + ".tmp")
        shutil.copyfile(src, tmp)
        _fsync(tmp)
        os.replace(tmp, dest)
        _fsync(dest.parent)

    def read(self, key: str) -> bytes:
        p = self.path(key)
        try:
            if p.stat().st_size > MAX_SEALED_BYTES:
                raise RecordingError(f"{key}: larger than {MAX_SEALED_BYTES} bytes")
            return p.read_bytes()
        except FileNotFoundError as exc:
            raise RecordingError(f"{key}: not in the store") from exc

    def delete(self, key: str) -> bool:
        try:
            self.path(key).unlink()
        except FileNotFoundError:
            return False
        return True


async def open_sealed(data: bytes, identity: Path) -> AsyncIterator[bytes]:
    """Decrypt a sealed recording with the private key, as it comes out of
    ``age`` (Ogg Opus)."""
    proc = await asyncio.create_subprocess_exec(
        tool("age"), "--decrypt", "-i", str(identity), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None

    async def feed() -> None:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(data)
            await proc.stdin.drain()
        proc.stdin.close()

    feeder = asyncio.create_task(feed())
    try:
        while chunk := await proc.stdout.read(64 << 10):
            yield chunk
        await feeder
        err = await proc.stderr.read()
        if await proc.wait() != 0:
            raise RecordingError("decryption failed: "
                                 + err.decode("utf-8", "replace").strip()[:200])
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        feeder.cancel()
