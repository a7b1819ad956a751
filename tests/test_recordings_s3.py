"""The recordings store in an S3-compatible bucket, over real HTTP on
loopback: moto's S3 server (a stand-in that speaks the S3 protocol, signed
requests and all; no MinIO or AWS here) behind boto3, the shipper and the ops
commands run as the installed `switchboard`, a real PostgreSQL.  The folder
store's guarantees must hold for the bucket too: only ciphertext, nothing
overwritten, nothing lost while the store is away, `audit verify` reads every
object back, the purge keeps what a legal hold keeps."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from switchboard.admin.recstore import RecordingError, open_sealed
from switchboard.admin.s3store import S3Store
from switchboard.recsettings import load_recordings
from switchboard.settings import ConfigError
from tests.audio import opus_to_wav, read_wav, strength, tone, write_wav
from tests.helpers import fetch, free_port
from tests.test_recordings import cli, env, keys

boto3 = pytest.importorskip("boto3", reason="the s3 store: boto3 not installed "
                            "(pip install -e '.[dev]')")
pytest.importorskip("moto.server", reason="the s3 store: moto[server] not installed "
                    "(pip install -e '.[dev]')")
pytestmark = pytest.mark.skipif(
    shutil.which("age") is None or shutil.which("opusenc") is None,
    reason="recordings: age and opus-tools not installed (make test installs them)")

BUCKET, PREFIX = "sb-recordings", "site-a"
CREDS = {"AWS_ACCESS_KEY_ID": "switchboard-test", "AWS_SECRET_ACCESS_KEY": "not-a-secret-0123",
         "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


@pytest.fixture()
def s3() -> Iterator[str]:
    """moto's S3 server on a loopback port, stopped by its PID."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, **CREDS})
    url = f"http://127.0.0.1:{port}"
    try:
        client = bucket_client(url)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.create_bucket(Bucket=BUCKET)
                break
            except Exception:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def bucket_client(url: str) -> Any:
    return boto3.session.Session(aws_access_key_id=CREDS["AWS_ACCESS_KEY_ID"],
                                 aws_secret_access_key=CREDS["AWS_SECRET_ACCESS_KEY"]
                                 ).client("s3", endpoint_url=url, region_name="us-east-1")


def s3_env(base: dict[str, str], url: str) -> dict[str, str]:
    return {**base, **CREDS, "SB_REC_STORE": f"s3://{BUCKET}/{PREFIX}",
            "SB_REC_S3_ENDPOINT": url}


def objects(url: str) -> dict[str, bytes]:
    c = bucket_client(url)
    keys_ = [o["Key"] for o in c.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    return {k: c.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in sorted(keys_)}


def test_ship_verify_and_purge_with_an_s3_store(db_url: str, tmp_path: Path, s3: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CREDS.items():  # the playback read below, in this process
        monkeypatch.setenv(name, value)
    identity, recipients = keys(tmp_path)
    e = s3_env(env(db_url, tmp_path, recipients), s3)
    spool = tmp_path / "node" / "spool"
    (spool / "done").mkdir(parents=True)
    for n in (1, 2, 3):
        write_wav(spool / "done" / f"17335000{n}0.1__17335000{n}0.2.wav", tone(600, 1.0 + n))

    # the store is away: the clear audio is sealed anyway, the ciphertext waits
    away = {**e, "SB_REC_S3_ENDPOINT": f"http://127.0.0.1:{free_port()}"}
    out = cli(away, "recordings", "ship", "--once")
    assert out.returncode == 1 and "0 stored, 3 waiting" in out.stdout, out.stdout + out.stderr
    assert not list(spool.rglob("*.wav")) and objects(s3) == {}
    out = cli(e, "recordings", "ship", "--once")
    assert out.returncode == 0 and "3 stored, 0 waiting" in out.stdout, out.stdout + out.stderr

    stored = objects(s3)
    day = time.strftime("%Y/%m/%d", time.gmtime())
    assert sorted(stored) == [f"{PREFIX}/node-a/{day}/17335000{n}0.1__17335000{n}0.2.opus.age"
                              for n in (1, 2, 3)]
    for body in stored.values():  # ciphertext only
        assert body.startswith(b"age-encryption.org/v1") and b"OggS" not in body
    rows = asyncio.run(fetch(db_url, "SELECT uniqueid, store_key, sha256 FROM recording "
                             "ORDER BY uniqueid"))
    for r in rows:  # the index names the object and its digest
        assert hashlib.sha256(stored[f"{PREFIX}/{r['store_key']}"]).digest() == bytes(r["sha256"])

    # the playback host reads it back and opens it with the private key
    async def play(key: str) -> bytes:
        store = S3Store(load_recordings(e).s3)  # type: ignore[arg-type]
        data = await asyncio.to_thread(store.read, key)
        return b"".join([c async for c in open_sealed(data, identity)])
    opus = tmp_path / "back.opus"
    opus.write_bytes(asyncio.run(play(rows[0]["store_key"])))
    opus_to_wav(opus, tmp_path / "back.wav")
    samples, rate = read_wav(tmp_path / "back.wav")
    assert len(samples) / rate == pytest.approx(2.0, abs=0.1)
    assert strength(samples, rate, 600) > 0.5

    assert cli(e, "recordings", "ship", "--once").stdout.startswith("0 stored, 0 waiting")
    # the doctor on this node: the store answers; and when it does not, it says so
    doc = cli(e, "doctor").stdout
    assert f"OK    recording  the store answers (s3://{BUCKET}/{PREFIX}/ at {s3})" in doc, doc
    assert "OK    recording  node: seals to 1 public key(s)" in doc
    doc = cli(away, "doctor").stdout
    assert "FAIL  recording  the store does not answer" in doc, doc
    assert cli(e, "audit", "anchor").returncode == 0
    intact = cli(e, "audit", "verify")
    assert intact.returncode == 0 and "recordings: 3 kept in the store" in intact.stdout, \
        intact.stdout + intact.stderr

    # someone with the bucket's keys swaps one object for another sealed one
    keys_ = sorted(stored)
    bucket_client(s3).put_object(Bucket=BUCKET, Key=keys_[1], Body=stored[keys_[2]])
    out = cli(e, "audit", "verify")
    assert out.returncode == 1
    assert "call 1733500020.1): the stored file was replaced or edited" in out.stdout
    bucket_client(s3).delete_object(Bucket=BUCKET, Key=keys_[1])
    assert "call 1733500020.1): missing from the store" in cli(e, "audit", "verify").stdout

    # retention: all old, one held
    asyncio.run(fetch(db_url, "UPDATE recording SET started_at = now() - interval '200 days'"))
    assert cli(e, "recordings", "hold", "1733500010.1", "--reason", "order 7").returncode == 0
    out = cli(e, "recordings", "purge")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "deleted 2 recordings older than 180 days (1 already gone from the store); " \
           "1 kept by legal holds" in out.stdout
    assert sorted(objects(s3)) == [keys_[0]]


def test_the_s3_store_never_overwrites_a_recording(
        tmp_path: Path, s3: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CREDS.items():  # boto3's own chain, as in production
        monkeypatch.setenv(name, value)
    store = S3Store(load_recordings({"SB_REC_STORE": f"s3://{BUCKET}/{PREFIX}",
                                     "SB_REC_S3_ENDPOINT": s3,
                                     "SB_STATE_DIR": str(tmp_path)}).s3)  # type: ignore[arg-type]
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"age-encryption.org/v1 first")
    b.write_bytes(b"age-encryption.org/v1 second")
    sha_a, sha_b = (hashlib.sha256(p.read_bytes()).digest() for p in (a, b))
    key = "node-a/2026/12/05/1.1__1.2.opus.age"
    store.put(key, a, sha_a)
    store.put(key, a, sha_a)  # a retry: done
    with pytest.raises(RecordingError, match="another file is already stored"):
        store.put(key, b, sha_b)
    assert store.read(key) == a.read_bytes() and store.digest(key) == sha_a
    # the digest beside the object (the retry's comparison); the upload's own
    # ChecksumSHA256 is checked by S3 and MinIO (BadDigest), not by moto
    head = bucket_client(s3).head_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}")
    assert head["Metadata"] == {"sha256": sha_a.hex()}
    assert store.delete(key) and not store.delete(key)
    with pytest.raises(FileNotFoundError):
        store.digest(key)
    with pytest.raises(RecordingError, match="not in the store"):
        store.read(key)
    with pytest.raises(RecordingError, match="not a store key"):
        store.read("../etc/passwd")


@pytest.mark.parametrize("store,endpoint,why", [
    ("s3://A_bucket/x", None, "the bucket"),
    ("s3://bucket/../x", None, "the prefix"),
    ("s3://bucket/x", "http://s3.example.net", "plain http only on loopback"),
    ("s3://bucket/x", "ftp://127.0.0.1", "https://"),
])
def test_s3_settings_are_checked(tmp_path: Path, store: str, endpoint: str | None,
                                 why: str) -> None:
    e = {"SB_REC_STORE": store, "SB_STATE_DIR": str(tmp_path)}
    if endpoint:
        e["SB_REC_S3_ENDPOINT"] = endpoint
    with pytest.raises(ConfigError, match=why):
        load_recordings(e)
