"""The recordings store in an S3-compatible bucket (docs/recordings.md), for
sites that outgrow one disk: SB_REC_STORE=s3://bucket/prefix, with
SB_REC_S3_ENDPOINT for a store that is not AWS (MinIO, Ceph's RADOS gateway,
...).  The keys are the folder store's (``node/YYYY/MM/DD/<call>__<leg>.opus.age``)
under the prefix; the files are the sealed ones, so the bucket, like the
folder, holds nothing a stolen copy could play.

boto3 (the AWS SDK, kept by AWS, optional extra ``switchboard[s3]``) signs the
requests, retries what S3 says may be retried and reads the credentials from
its own chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or
AWS_SHARED_CREDENTIALS_FILE): no signing code of ours.

As in the folder store, nothing is overwritten: a key already there with the
same SHA-256 is a retry (done), with another is refused; the upload itself
carries its SHA-256 (``ChecksumSHA256``), so the store refuses a body that
changed on the way, and ``If-None-Match: *`` so two shippers racing on one
key cannot replace each other's file.  ``digest`` reads the object back and
hashes it: ``audit verify`` trusts no metadata.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from pathlib import Path
from typing import Any

from switchboard.admin.recstore import MAX_SEALED_BYTES, RecordingError, checked_key
from switchboard.recsettings import S3Location

try:  # the optional extra: a folder store never imports this module
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # pragma: no cover - said at the first use, in words
    boto3 = None

MISSING = {"404", "NoSuchKey", "NotFound"}
RACED = {"412", "PreconditionFailed", "409", "ConditionalRequestConflict"}


class S3Store:
    def __init__(self, loc: S3Location) -> None:
        self.loc = loc
        self._client: Any = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        at = f" at {self.loc.endpoint}" if self.loc.endpoint else ""
        return f"s3://{self.loc.bucket}/{self.loc.prefix}{at}"

    def client(self) -> Any:
        """One client, shared by the threads (boto3's clients are thread-safe,
        its sessions are not)."""
        with self._lock:
            if self._client is None:
                if boto3 is None:
                    raise RecordingError("an s3:// store needs boto3 (pip install "
                                         "'switchboard[s3]')")
                self._client = boto3.session.Session().client(
                    "s3", endpoint_url=self.loc.endpoint, region_name=self.loc.region,
                    config=Config(connect_timeout=5, read_timeout=60,
                                  retries={"max_attempts": 4, "mode": "standard"},
                                  # MinIO and most self-hosted stores: path style
                                  s3={"addressing_style": "path" if self.loc.endpoint
                                      else "auto"}))
            return self._client

    def _key(self, key: str) -> str:
        return self.loc.prefix + checked_key(key)

    def _call(self, what: str, key: str, fn: Any, **kw: Any) -> Any:
        """One request; S3's and the network's errors become RecordingError
        (the shipper keeps the file and tries again), a missing object
        FileNotFoundError."""
        try:
            return fn(Bucket=self.loc.bucket, Key=self._key(key), **kw)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in MISSING:
                raise FileNotFoundError(key) from exc
            if code in RACED:
                raise _Raced(key) from exc
            raise RecordingError(f"{key}: {what} refused by the store ({code})") from exc
        except BotoCoreError as exc:
            raise RecordingError(f"{key}: {what} failed: {type(exc).__name__}: "
                                 f"{str(exc)[:200]}") from exc

    def _stored_sha(self, key: str) -> str | None:
        try:
            head = self._call("head", key, self.client().head_object)
        except FileNotFoundError:
            return None
        return str(head.get("Metadata", {}).get("sha256", ""))

    def put(self, key: str, src: Path, sha256: bytes) -> None:
        """Upload ``src`` under ``key``; the same file already there is fine,
        another one is refused (a store never overwrites a recording)."""
        have = self._stored_sha(key)
        if have is None:
            try:
                with src.open("rb") as body:
                    self._call("upload", key, self.client().put_object, Body=body,
                               Metadata={"sha256": sha256.hex()},
                               ChecksumSHA256=base64.b64encode(sha256).decode("ascii"),
                               IfNoneMatch="*")
                return
            except _Raced:
                have = self._stored_sha(key)   # another shipper's upload won
        if have != sha256.hex():
            raise RecordingError(f"{key}: another file is already stored under this key")

    def read(self, key: str) -> bytes:
        try:
            obj = self._call("read", key, self.client().get_object)
        except FileNotFoundError as exc:
            raise RecordingError(f"{key}: not in the store") from exc
        body = obj["Body"]
        try:
            if int(obj.get("ContentLength") or 0) > MAX_SEALED_BYTES:
                raise RecordingError(f"{key}: larger than {MAX_SEALED_BYTES} bytes")
            return bytes(body.read())
        finally:
            body.close()

    def digest(self, key: str) -> bytes:
        obj = self._call("read", key, self.client().get_object)   # FileNotFoundError
        h, body = hashlib.sha256(), obj["Body"]
        try:
            for chunk in body.iter_chunks(1 << 20):
                h.update(chunk)
        finally:
            body.close()
        return h.digest()

    def delete(self, key: str) -> bool:
        if self._stored_sha(key) is None:
            return False
        self._call("delete", key, self.client().delete_object)
        return True


class _Raced(RecordingError):
    """A conditional upload lost to another writer of the same key."""
