"""``switchboard db ...`` and ``switchboard reconcile``: the local cluster, the
schema, event retention, the figures' bins, and the queue_log reconciler."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import asyncpg

from switchboard import auditlog, db
from switchboard.admin import figures as figures_admin
from switchboard.admin import retention
from switchboard.ami_listener import reconcile
from switchboard.console.figures_cli import when
from switchboard.settings import (
    ConfigError,
    Settings,
)


def add_parsers(sub: Any) -> None:
    dbp = sub.add_parser("db", help="local PostgreSQL cluster and migrations",
                         description="Manage the project's local PostgreSQL cluster "
                         "(under SB_STATE_DIR/pg) and apply migrations.")
    dbsub = dbp.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    dbsub.add_parser("up", help="create (once) and start the local cluster, create the "
                     "application database")
    dbsub.add_parser("down", help="stop the local cluster")
    dbsub.add_parser("status", help="say whether the local cluster runs")
    dbsub.add_parser("url", help="print the database URL the services use")
    dbsub.add_parser("migrate", help="apply pending migrations from sql/migrations")
    ret = dbsub.add_parser(
        "retention", help="drop (or archive, then drop) raw AMI event days past an age",
        description="Raw AMI events are kept one table per UTC day; days older than "
        "--keep-days are dropped, after being written to --archive DIR as CSV (gzip) if "
        "given.  Calls, agent states, the figures and the audit log are other tables and "
        "stay.  Each drop waits at most --lock-timeout-ms for its moment of exclusive lock "
        "(the listener waits that long at worst) and tries again later when it does not get "
        "it.  Run it daily (cron or a systemd timer).")
    ret.add_argument("--keep-days", type=int,
                     default=int(os.environ.get("SB_EVENT_KEEP_DAYS", "90")),
                     help="days of raw events kept (SB_EVENT_KEEP_DAYS, default 90; at "
                     "least 2)")
    ret.add_argument("--archive", type=Path, default=None, metavar="DIR",
                     help="write each day to DIR/ami_event_YYYYMMDD.csv.gz before dropping it")
    ret.add_argument("--dry-run", action="store_true", help="list what would go")
    ret.add_argument("--lock-timeout-ms", type=int, default=200)

    rb = dbsub.add_parser(
        "rebuild-figures", help="recompute the figures' 15-minute bins from the call rows",
        description="The figures (report, staffing, the wall board) read per-interval bins "
        "that the listener keeps up to date.  After restoring queue_call with triggers off, "
        "or after changing the site's thresholds (kpi_agg_config), recompute them: a UTC day "
        "per transaction, with its progress; stop it and run it again from any day.  "
        "Readers are not blocked meanwhile.")
    rb.add_argument("--from", dest="first", type=_day, default=None, metavar="YYYY-MM-DD",
                    help="first UTC day (default: the first call's)")
    rb.add_argument("--to", dest="last", type=_day, default=None, metavar="YYYY-MM-DD",
                    help="last UTC day, included (default: the last call's)")


def add_reconcile_parser(sub: Any) -> None:
    rc = sub.add_parser(
        "reconcile", help="make the calls in the database agree with Asterisk's queue_log",
        description="Read Asterisk's queue_log for the period (by position: only the part "
        "that covers it) and make every queued call in the database agree with it: rows "
        "for calls the listener never saw, outcome, hold, talk, ring-no-answers, agent and "
        "transfer target corrected; a call Asterisk's shutdown or restart cut keeps "
        "'cut'.  Prints every difference.  Exit status: 0 the database agreed, 1 "
        "differences were found (and fixed, unless --dry-run), 2 bad arguments or no "
        "readable queue_log.  The running listener does the same on a schedule "
        "(SB_RECONCILE_INTERVAL_S) when SB_QUEUE_LOG is set.")
    rc.add_argument("--from", dest="start", required=True,
                    help="ISO time: calls that entered a queue from then on")
    rc.add_argument("--to", dest="end", default=None, help="ISO time (default: now)")
    rc.add_argument("--node", default=None,
                    help="the node's name (its SystemName); default: the one in SB_AMI_NODES")
    rc.add_argument("--queue-log", type=Path, default=None,
                    help="the node's queue_log (default: SB_QUEUE_LOG)")
    rc.add_argument("--dry-run", action="store_true", help="report, change nothing")


def run_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    try:
        start = when(args.start, "--from")
        end = when(args.end, "--to") if args.end else datetime.now(UTC)
    except ConfigError as exc:
        print(f"switchboard reconcile: {exc}", file=sys.stderr)
        return 2
    if end <= start:
        print("switchboard reconcile: --to must be after --from", file=sys.stderr)
        return 2
    nodes = [n.name for n in settings.listener.nodes]
    node = args.node or (nodes[0] if len(nodes) == 1 else None)
    if node is None:
        print(f"switchboard reconcile: say which node (--node; SB_AMI_NODES has "
              f"{', '.join(nodes) or 'none'})", file=sys.stderr)
        return 2
    path = args.queue_log or settings.listener.queue_log(node)
    if path is None or not path.is_file():
        print(f"switchboard reconcile: no readable queue_log for {node} "
              f"({path or 'set SB_QUEUE_LOG or pass --queue-log'})", file=sys.stderr)
        return 2

    async def run() -> int:
        conn = await asyncpg.connect(db.database_url(settings))
        try:
            result = await reconcile.reconcile_period(conn, node, path, start, end,
                                                      dry_run=args.dry_run)
        finally:
            await conn.close()
        for d in result.differences:
            print(d)
        verb = "would fix" if args.dry_run else "fixed"
        print(f"{node} {start.isoformat()} .. {end.isoformat()}: {result.calls_checked} "
              f"calls in queue_log checked; {verb} {result.rows_fixed} rows, "
              f"{'would make' if args.dry_run else 'made'} {result.rows_made}; "
              f"{len(result.differences)} differences"
              + (f"; {result.not_settled} calls too recent (the listener has not "
                 "caught up with them yet)" if result.not_settled else ""))
        return 1 if result.off else 0
    return asyncio.run(run())



def run_retention(settings: Settings, args: argparse.Namespace) -> int:
    if args.keep_days < 2 or not 10 <= args.lock_timeout_ms <= 10_000:
        raise ConfigError("--keep-days is at least 2 (today's and yesterday's events are "
                          "still arriving); --lock-timeout-ms is 10 to 10000")
    try:
        done = asyncio.run(retention.run(db.database_url(settings), args.keep_days,
                                         archive_dir=args.archive, dry_run=args.dry_run,
                                         lock_timeout_ms=args.lock_timeout_ms))
    except TimeoutError as exc:
        print(f"switchboard db retention: {exc}; try again later", file=sys.stderr)
        return 1
    if not done:
        print(f"nothing older than {args.keep_days} days")
    for d in done:
        what = "would drop" if args.dry_run else "dropped"
        print(f"{what} {d.partition} ({d.rows} events)"
              + (f", archived to {d.archive}" if d.archive else ""))
    return 0


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day (YYYY-MM-DD): {text!r}") from None


def rebuild_figures(settings: Settings, args: argparse.Namespace) -> int:
    url = db.database_url(settings)
    first, last = args.first, args.last
    if first is None or last is None:
        covered = asyncio.run(figures_admin.span(url))
        if covered is None:
            print("no calls stored: nothing to rebuild")
            return 0
        first, last = first or covered[0], last or covered[1]
    if last < first:
        raise ConfigError(f"--to {last} is before --from {first}")

    def progress(day: date, bins: int, seconds: float) -> None:
        print(f"{day}: {bins} bins ({seconds:.1f} s)", flush=True)

    total = asyncio.run(figures_admin.rebuild(url, first, last, progress))
    print(f"rebuilt {total} bins, {first} to {last} (UTC days)")
    return 0


def db_command(settings: Settings, action: str) -> int:
    cluster = db.local_cluster(settings)
    if action == "up":
        if settings.database_url:
            print("SB_DATABASE_URL is set: not starting a local cluster")
            return 0
        cluster.init()
        cluster.start()
        asyncio.run(db.ensure_app_database(cluster))
        key_file = settings.agi.audit_key_file
        if key_file is not None and not settings.agi.audit_key_explicit:
            auditlog.load_key(key_file, create=True)  # the local demo's audit key, once
        print(f"local PostgreSQL running on 127.0.0.1:{cluster.port} ({cluster.root})")
        return 0
    if action == "down":
        cluster.stop()
        print("local PostgreSQL stopped")
        return 0
    if action == "status":
        running = cluster.running()
        print(f"local PostgreSQL {'running' if running else 'not running'} ({cluster.root})")
        return 0 if running else 3
    if action == "url":
        # the owner's URL without its password (which stays in its file)
        url = db.database_url(settings)
        parts = urlsplit(url)
        if parts.password:
            url = url.replace(":" + quote(parts.password, safe="") + "@", ":***@", 1)
        print(url)
        return 0
    if action == "migrate":
        applied = asyncio.run(db.migrate(db.database_url(settings)))
        print("migrations applied: " + (", ".join(applied) if applied else "none (up to date)"))
        return 0
    return 2
