"""``switchboard recordings ...``: the shipper on each Asterisk node, and the
store's housekeeping (switchboard/admin/recordings.py).  docs/recordings.md."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import re
import signal
from typing import Any

import asyncpg
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from switchboard import auditlog, db
from switchboard.admin import recordings
from switchboard.admin.recstore import RecordingError, open_store
from switchboard.recsettings import RecordingSettings, load_recordings
from switchboard.settings import ConfigError, Settings

UID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,150}$")

DESCRIPTION = """\
Recordings of answered queue calls.  On each Asterisk node, `ship` seals every
finished MixMonitor file (Opus, encrypted with age to SB_REC_RECIPIENTS_FILE,
the clear file removed), copies it to the store (SB_REC_STORE) and indexes it
with its SHA-256 in the call's audit chain (database role sb_recorder).  On the
store's host, `purge` deletes what is older than SB_REC_RETENTION_DAYS unless
the call is under a legal hold (`hold`, `release`); every deletion and hold is
audited (the panel on the playback host also purges daily).  SB_REC_STORE is a
folder or s3://BUCKET[/PREFIX] (SB_REC_S3_ENDPOINT, SB_REC_S3_REGION; boto3's
credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or
AWS_SHARED_CREDENTIALS_FILE).  `switchboard audit verify` checks each kept file against its
audited digest.  Playback: the agent panel, supervisors only."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rc = sub.add_parser("recordings", help="call recordings: ship, purge, legal holds",
                        description=DESCRIPTION).add_subparsers(
        dest="action", required=True, metavar="ACTION")
    a = rc.add_parser("ship", help="(on each Asterisk node) seal, store and index finished "
                      "recordings; runs until stopped",
                      description="Watches SB_REC_SPOOL (MixMonitor's folder; finished "
                      "files in done/) every SB_REC_POLL_MS.  Metrics on "
                      "SB_REC_METRICS_ADDR: sb_recordings_waiting, "
                      "sb_recordings_oldest_waiting_seconds (the alert "
                      "SwitchboardRecordingNotMoved).")
    a.add_argument("--once", action="store_true", help="one pass, then exit (0: nothing "
                   "left waiting)")
    a = rc.add_parser("purge", help="delete recordings older than the retention (audited; "
                      "a legal hold keeps a call's)")
    a.add_argument("--days", type=int, default=None,
                   help="override SB_REC_RETENTION_DAYS (at least 1)")
    a.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    a = rc.add_parser("hold", help="put a call's recordings under a legal hold (audited)")
    a.add_argument("uniqueid")
    a.add_argument("--reason", required=True, help="why (a case or order reference)")
    a = rc.add_parser("release", help="lift a call's legal hold (audited)")
    a.add_argument("uniqueid")
    rc.add_parser("list", help="the newest kept recordings (no content)")


def _uid(value: str) -> str:
    if not UID_RE.match(value):
        raise ConfigError(f"{value[:40]!r} is not a call's uniqueid")
    return value


def run(args: argparse.Namespace, settings: Settings) -> int:
    cfg = load_recordings()
    if args.action == "ship":
        return asyncio.run(_ship(cfg, settings, once=args.once))
    return asyncio.run(_ops(args, settings, cfg))


async def _ship(cfg: RecordingSettings, settings: Settings, *, once: bool) -> int:
    try:
        shipper = recordings.Shipper(cfg, db.service_url(settings, "recorder"),
                                     auditlog.session_settings(
                                         auditlog.settings_key(settings.agi)))
    except RecordingError as exc:
        raise ConfigError(str(exc)) from exc
    if once:
        shipper.prepare()
        try:
            n = await shipper.pass_once()
        finally:
            await shipper.close()
        waiting, oldest = shipper.waiting()
        print(f"{n} stored, {waiting} waiting (oldest {oldest:.0f} s), "
              f"{shipper.stats.failed} failed")
        return 0 if waiting == 0 and shipper.stats.failed == 0 else 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    metrics = _metrics(shipper, cfg.metrics_host, cfg.metrics_port)
    try:
        await shipper.run(stop)
    finally:
        if metrics is not None:
            metrics.shutdown()
    return 0


def _metrics(shipper: recordings.Shipper, host: str, port: int) -> Any:
    if port == 0:
        return None
    reg = CollectorRegistry()
    Gauge("sb_recordings_waiting", "recordings on this node not yet in the store",
          registry=reg).set_function(lambda: shipper.waiting()[0])
    Gauge("sb_recordings_oldest_waiting_seconds", "age of the oldest recording on this "
          "node not yet in the store", registry=reg).set_function(
        lambda: shipper.waiting()[1])
    Gauge("sb_recordings_stored", "recordings this shipper stored since it started",
          registry=reg).set_function(lambda: shipper.stats.stored)
    Gauge("sb_recordings_failed", "seal or store failures since it started",
          registry=reg).set_function(lambda: shipper.stats.failed)
    server, _thread = start_http_server(port, host, registry=reg)
    return server


async def _ops(args: argparse.Namespace, settings: Settings, cfg: RecordingSettings) -> int:
    key = auditlog.settings_key(settings.agi)
    actor = f"ops:{getpass.getuser()}"
    conn = await asyncpg.connect(db.database_url(settings), timeout=10,
                                 server_settings=auditlog.session_settings(key))
    try:
        if args.action == "purge":
            days = cfg.retention_days if args.days is None else args.days
            if days < 1:
                raise ConfigError("--days must be at least 1")
            out = await recordings.purge(conn, open_store(cfg), days, actor,
                                         dry_run=args.dry_run)
            verb = "would delete" if args.dry_run else "deleted"
            print(f"{verb} {out.deleted} recordings older than {days} days "
                  f"({out.missing} already gone from the store); "
                  f"{out.kept_by_hold} kept by legal holds"
                  + (f"; {out.failed} the store would not delete (kept, tried next time)"
                     if out.failed else ""))
            if out.failed:
                return 1
        elif args.action == "hold":
            print(await recordings.hold(conn, _uid(args.uniqueid), args.reason, actor))
        elif args.action == "release":
            print(await recordings.release(conn, _uid(args.uniqueid), actor))
        else:
            rows = await conn.fetch(recordings.Q["newest"])
            for r in rows:
                print(f"{r['recording_id']:>8}  {r['started_at']:%Y-%m-%d %H:%M:%S}  "
                      f"{r['uniqueid']:<28} {r['node']:<12} {r['seconds']:>8} s "
                      f"{r['bytes']:>9} B{'  HELD' if r['held'] else ''}")
            print(f"{len(rows)} shown (newest first)")
    finally:
        with contextlib.suppress(Exception):
            await conn.close()
    return 0
