"""The recordings' settings (docs/recordings.md): where Asterisk's MixMonitor
writes on a node, where the encrypted files are kept, the keys, the
retention.  The node holds only the public key (SB_REC_RECIPIENTS_FILE); the
private key (SB_REC_IDENTITY_FILE) lives only on the host that plays
recordings back."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from switchboard.settings import NODE_NAME_RE, ConfigError, default_state_dir

DEFAULT_SPOOL = Path("/var/spool/asterisk/monitor/sb")
_KBPS = re.compile(r"^[0-9]{1,3}$")


@dataclass(frozen=True)
class S3Location:
    """An S3-compatible recordings store (SB_REC_STORE=s3://bucket/prefix).
    The credentials are boto3's own chain, never a setting of ours:
    AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the environment, or
    AWS_SHARED_CREDENTIALS_FILE (a file outside git, 0600)."""
    bucket: str
    prefix: str               # "" or "some/folder/" (with its slash)
    endpoint: str | None      # SB_REC_S3_ENDPOINT: MinIO, Ceph, ...; None: AWS
    region: str               # SB_REC_S3_REGION


@dataclass(frozen=True)
class RecordingSettings:
    spool: Path               # MixMonitor's folder on the node (done/ below it)
    store: str                # SB_REC_STORE as given: a folder or s3://bucket/prefix
    s3: S3Location | None     # set when the store is S3-compatible
    recipients_file: Path | None   # age public keys the node encrypts to
    identity_file: Path | None     # age private key (the playback host only)
    retention_days: int
    purge_every_s: int        # the panel's housekeeping (the playback host); 0: off
    node: str
    opus_kbps: int
    opus_complexity: int      # opusenc --comp: 0 (cheapest) to 10
    stale_s: float            # a file untouched this long is finished (Asterisk died)
    poll_s: float
    metrics_host: str
    metrics_port: int


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw) or not lo <= int(raw) <= hi:
        raise ConfigError(f"{name}={raw!r} must be a whole number from {lo} to {hi}")
    return int(raw)


def load_recordings(env: Mapping[str, str] | None = None) -> RecordingSettings:
    env = os.environ if env is None else env
    state = Path(env.get("SB_STATE_DIR") or default_state_dir()).resolve()
    node = env.get("SB_REC_NODE") or socket.gethostname().split(".")[0]
    if not NODE_NAME_RE.match(node):
        raise ConfigError(f"SB_REC_NODE={node!r}: letters, digits, . _ - (at most 63)")
    rec, ident = env.get("SB_REC_RECIPIENTS_FILE"), env.get("SB_REC_IDENTITY_FILE")
    metrics = env.get("SB_REC_METRICS_ADDR", "127.0.0.1:9471")
    host, _, port = metrics.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"SB_REC_METRICS_ADDR={metrics!r} must be host:port (port 0 = off)")
    store = env.get("SB_REC_STORE") or str(state / "recordings")
    return RecordingSettings(
        spool=Path(env.get("SB_REC_SPOOL") or DEFAULT_SPOOL),
        store=store,
        s3=_s3(env, store) if store.startswith("s3://") else None,
        recipients_file=Path(rec) if rec else None,
        identity_file=Path(ident) if ident else None,
        retention_days=_int(env, "SB_REC_RETENTION_DAYS", 180, 1, 36500),
        purge_every_s=_int(env, "SB_REC_PURGE_EVERY_S", 86400, 0, 7 * 86400),
        node=node,
        opus_kbps=_int(env, "SB_REC_OPUS_KBPS", 16, 6, 64),
        # 0: a third of the CPU of opusenc's default 10 for speech at 16 kbit/s
        # (bench/recordings.py); the nodes pay it for every minute recorded
        opus_complexity=_int(env, "SB_REC_OPUS_COMPLEXITY", 0, 0, 10),
        stale_s=_int(env, "SB_REC_STALE_S", 120, 5, 86400),
        poll_s=_int(env, "SB_REC_POLL_MS", 1000, 50, 60000) / 1000,
        metrics_host=host or "127.0.0.1",
        metrics_port=int(port),
    )


_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")   # S3's own bucket rule
_PREFIX = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
_REGION = re.compile(r"^[a-z0-9-]{1,40}$")
_LOOPBACK = re.compile(r"^http://(127\.[0-9.]+|\[::1\]|localhost)(:[0-9]{1,5})?/?$")


def _s3(env: Mapping[str, str], store: str) -> S3Location:
    bucket, _, prefix = store.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise ConfigError(f"SB_REC_STORE={store[:80]!r}: s3://BUCKET[/PREFIX], the bucket "
                          "3-63 lower-case letters, digits, . and -")
    if prefix and (not _PREFIX.match(prefix) or any(p in (".", "..") for p in prefix.split("/"))):
        raise ConfigError(f"SB_REC_STORE={store[:80]!r}: the prefix takes letters, digits, "
                          "_ . - and /")
    endpoint = env.get("SB_REC_S3_ENDPOINT") or None
    # the files are sealed, but the requests name calls: TLS, but on loopback
    if endpoint is not None and not (endpoint.startswith("https://") or _LOOPBACK.match(endpoint)):
        raise ConfigError(f"SB_REC_S3_ENDPOINT={endpoint[:80]!r} must be https://HOST[:PORT] "
                          "(plain http only on loopback)")
    region = env.get("SB_REC_S3_REGION") or "us-east-1"
    if not _REGION.match(region):
        raise ConfigError(f"SB_REC_S3_REGION={region[:40]!r}: letters, digits and -")
    return S3Location(bucket, prefix + "/" if prefix else "", endpoint, region)
