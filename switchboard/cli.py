"""The ``switchboard`` command.

    switchboard db up|down|status|url|migrate
    switchboard ami-listener
    switchboard demo [--speed X] [--rounds N]
    switchboard summary [--since ISO]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from ami_listener.demo import run_demo
from ami_listener.service import run_listener
from switchboard import __version__, db, log
from switchboard.pgcluster import ClusterError
from switchboard.settings import ConfigError, Settings, load
from switchboard.summary import print_summary

ENV_HELP = """\
environment (all optional; defaults suit the local demo):
  SB_DATABASE_URL        PostgreSQL to use instead of the local cluster
  SB_STATE_DIR           local state: cluster, spool (default ./.local)
  SB_PG_PORT             local cluster port on 127.0.0.1 (default 54329)
  SB_AMI_NODES           name@host[:port],... one AMI connection per node
  SB_AMI_USER[_<NODE>]   AMI user (default listener)
  SB_AMI_SECRET[_<NODE>] AMI secret, or SB_AMI_SECRET[_<NODE>]_FILE=path
  SB_LOG_FORMAT          auto|json|console (auto: console on a terminal)
  SB_LOG_LEVEL           debug|info|warning|error (default info)
  see README.md for the listener's tuning variables
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="switchboard", description="Verified-caller call center on Asterisk 22.",
        epilog=ENV_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"switchboard {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    sub.add_parser("ami-listener", help="run the AMI listener against SB_AMI_NODES",
                   description="Connect to every node in SB_AMI_NODES and stream queue and "
                   "agent events into PostgreSQL. Stops on SIGTERM/SIGINT after flushing.",
                   epilog=ENV_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)

    demo = sub.add_parser("demo", help="replay recorded Asterisk traffic through the listener",
                          description="Start a loopback AMI server that replays the recorded "
                          "Asterisk 22 captures with fresh uniqueids, run the real listener "
                          "against it, then print what landed in PostgreSQL.")
    demo.add_argument("--speed", type=float, default=20.0,
                      help="replay pace, 1 = real time (default 20)")
    demo.add_argument("--rounds", type=int, default=2,
                      help="how many times to play the set of captures (default 2)")

    summ = sub.add_parser("summary", help="print calls per queue since a time")
    summ.add_argument("--since", default=None,
                      help="ISO time (default: the last 24 hours)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load()
    except ConfigError as exc:
        print(f"switchboard: configuration error: {exc}", file=sys.stderr)
        return 2
    log.configure(settings.log_format, settings.log_level)
    try:
        if args.command == "db":
            return _db(settings, args.db_command)
        if args.command == "ami-listener":
            return asyncio.run(run_listener(settings.listener, db.database_url(settings)))
        if args.command == "demo":
            return asyncio.run(run_demo(settings, speed=args.speed, rounds=args.rounds))
        if args.command == "summary":
            since = (datetime.fromisoformat(args.since) if args.since
                     else datetime.now(UTC) - timedelta(days=1))
            return asyncio.run(print_summary(db.database_url(settings), since))
    except (ClusterError, db.MigrationError, ConfigError) as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 1
    return 2


def _db(settings: Settings, action: str) -> int:
    cluster = db.local_cluster(settings)
    if action == "up":
        if settings.database_url:
            print("SB_DATABASE_URL is set: not starting a local cluster")
            return 0
        cluster.init()
        cluster.start()
        asyncio.run(db.ensure_app_database(cluster))
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
        print(db.database_url(settings))
        return 0
    if action == "migrate":
        applied = asyncio.run(db.migrate(db.database_url(settings)))
        print("migrations applied: " + (", ".join(applied) if applied else "none (up to date)"))
        return 0
    return 2


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
