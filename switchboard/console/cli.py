"""The ``switchboard`` command: ``switchboard --help`` lists every command, and
``switchboard COMMAND --help`` its options, both generated from the parser
below; the environment it reads is summarised from the settings' own defaults
(``env_help``) and described in full in docs/configuration.md."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import asyncpg

from switchboard import __version__, auditlog, db, log, loop
from switchboard.admin import agents, ops, recordings, retention, systemd
from switchboard.admin import audit as admin_audit
from switchboard.admin import edge as admin_edge
from switchboard.admin import figures as figures_admin
from switchboard.admin.recstore import LocalStore, RecordingError
from switchboard.agi import install as agi_install
from switchboard.agi.app import make_hasher, run_agi_server
from switchboard.ami_listener import reconcile
from switchboard.ami_listener.actions import AmiLogin
from switchboard.ami_listener.service import run_listener
from switchboard.console import doctor, edge_cli, front_cli, recordings_cli
from switchboard.console.demo import run_demo
from switchboard.dialplan_tools import deploy, dialcheck, rollout
from switchboard.figures import report
from switchboard.figures.summary import print_summary
from switchboard.pgcluster import ClusterError
from switchboard.recsettings import load_recordings
from switchboard.settings import (
    DEFAULT_AMI_USER,
    ConfigError,
    Settings,
    apply_config_file,
    load,
    panel_ami_addresses,
    parse_ami_ops,
    parse_ami_panel,
    site_tz,
)
from switchboard.web import panel, wallboard
from switchboard.web.supervise import SuperviseConfig

# The variables most sites set, with what load() gives when none is set (so the
# help cannot state a default the code does not have); the rest are in
# docs/configuration.md.
ENV_SUMMARY: tuple[tuple[str, str, Callable[[Settings], object] | None], ...] = (
    ("SB_CONFIG", "a settings file (KEY=value lines, mode 600 or 640)", None),
    ("SB_DATABASE_URL", "PostgreSQL to use instead of the local cluster", None),
    ("SB_STATE_DIR", "local state: cluster, spool", lambda s: s.state_dir),
    ("SB_PG_PORT", "local cluster port on 127.0.0.1", lambda s: s.pg_port),
    ("SB_AMI_NODES", "name@host[:port],... one AMI connection per node",
     None),
    ("SB_AMI_USER[_<NODE>]", "AMI user", lambda _: DEFAULT_AMI_USER),
    ("SB_AMI_SECRET[_<NODE>]", "AMI secret, or SB_AMI_SECRET[_<NODE>]_FILE=path", None),
    ("SB_LOG_FORMAT", "auto|json|console (auto: console on a terminal)",
     lambda s: s.log_format),
    ("SB_LOG_LEVEL", "debug|info|warning|error", lambda s: s.log_level),
    ("SB_AGI_LISTEN", "FastAGI address", lambda s: f"{s.agi.host}:{s.agi.port}"),
    ("SB_AGI_ALLOW", "client addresses allowed besides loopback (a,b,...)", None),
    ("SB_PIN_PEPPER_FILE", "file (outside git) holding the PIN pepper", None),
    ("SB_DEFAULT_REGION", "country for national caller IDs", lambda s: s.agi.default_region),
    ("SB_TZ", "the site's time zone (figures, wall board)", lambda _: site_tz({})),
)


def env_help(env: dict[str, str] | None = None) -> str:
    """The environment part of ``switchboard --help``, defaults read from load()."""
    try:
        defaults: Settings | None = load(env or {})
    except ConfigError:
        defaults = None
    lines = ["environment (all optional; defaults suit the local demo):"]
    for name, meaning, default in ENV_SUMMARY:
        shown = default(defaults) if default is not None and defaults is not None else None
        lines.append(f"  {name:<23}{meaning}" + (f" (default {shown})" if shown else ""))
    lines.append("every variable, and the files: docs/configuration.md; how to run it: "
                 "README.md")
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="switchboard", description="Verified-caller call center on Asterisk 22.",
        epilog=env_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
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

    sub.add_parser("ami-listener", help="run the AMI listener against SB_AMI_NODES",
                   description="Connect to every node in SB_AMI_NODES and stream queue and "
                   "agent events into PostgreSQL. Stops on SIGTERM/SIGINT after flushing.",
                   epilog=env_help(), formatter_class=argparse.RawDescriptionHelpFormatter)

    demo = sub.add_parser("demo", help="replay recorded Asterisk traffic through the listener",
                          description="Start a loopback AMI server that replays the recorded "
                          "Asterisk 22 captures with fresh uniqueids, run the real listener "
                          "against it, then print what landed in PostgreSQL.")
    demo.add_argument("--speed", type=float, default=20.0,
                      help="replay pace, 1 = real time (default 20)")
    demo.add_argument("--rounds", type=int, default=2,
                      help="how many times to play the set of captures (default 2)")
    demo.add_argument("--hold", type=float, default=0.0,
                      help="keep the wall board up this many seconds after the replay "
                      "(default 0)")

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

    summ = sub.add_parser("summary", help="print calls per queue since a time")
    summ.add_argument("--since", default=None,
                      help="ISO time (default: the last 24 hours)")
    _ops_parsers(sub)
    return p


def _ops_parsers(sub: Any) -> None:
    sub.add_parser("agi-server", help="run the FastAGI server (verify, lookup)",
                   description="Serve AGI(agi://HOST/verify) and AGI(agi://HOST/lookup) on "
                   "SB_AGI_LISTEN. Needs the PIN pepper. Stops on SIGTERM/SIGINT, letting "
                   "calls in progress finish.",
                   epilog=env_help(), formatter_class=argparse.RawDescriptionHelpFormatter)

    ag = sub.add_parser("agency", help="partner agencies").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    a = ag.add_parser("add", help="add an agency")
    a.add_argument("code", help="agency code the officers key (2-6 digits)")
    a.add_argument("name")
    ag.add_parser("suspend", help="suspend an agency (its officers can no longer be "
                  "verified)").add_argument("code")
    ag.add_parser("list", help="list agencies")

    ln = sub.add_parser("line", help="registered lines of agencies").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    a = ln.add_parser("add", help="register a number as an agency's line")
    a.add_argument("code")
    a.add_argument("number", help="E.164 (+1615...) or national in SB_DEFAULT_REGION "
                   "(US: 10 digits)")
    a.add_argument("--label", default=None)
    ln.add_parser("remove", help="unregister a number").add_argument("number")

    of = sub.add_parser("officer", help="officers and their PINs").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    a = of.add_parser("add", help="add an officer (then asks for the PIN)")
    a.add_argument("code")
    a.add_argument("number", help="officer number (3-10 digits)")
    a.add_argument("name")
    a.add_argument("--no-pin", action="store_true", help="set the PIN later")
    a.add_argument("--pin-stdin", action="store_true",
                   help="read the PIN as one line from stdin instead of asking")
    for action, text in (("set-pin", "set or reset a PIN (clears a lock); asks for it"),
                         ("unlock", "clear the failure counter and the lock"),
                         ("status", "show failures, lock and whether a PIN is set")):
        a = of.add_parser(action, help=text)
        a.add_argument("code")
        a.add_argument("number")
        if action == "set-pin":
            a.add_argument("--pin-stdin", action="store_true",
                           help="read the PIN as one line from stdin instead of asking")

    ag = sub.add_parser("agent", help="agents' own accounts (for the agent panel)"
                        ).add_subparsers(dest="action", required=True, metavar="ACTION")
    a = ag.add_parser("add", help="add an agent (then asks for the password)")
    a.add_argument("login", help="2-32 lower-case letters, digits, '.', '_', '-'")
    a.add_argument("name")
    a.add_argument("--interface", required=True, help="the desk phone, e.g. PJSIP/2001")
    a.add_argument("--role", default="agent", choices=("agent", "supervisor"))
    a.add_argument("--no-password", action="store_true", help="set it later")
    a.add_argument("--password-stdin", action="store_true",
                   help="read the password as one line from stdin instead of asking")
    a = ag.add_parser("set-password", help="a new password (also re-enables the account)")
    a.add_argument("login")
    a.add_argument("--password-stdin", action="store_true",
                   help="read the password as one line from stdin instead of asking")
    ag.add_parser("disable", help="disable an account").add_argument("login")
    ag.add_parser("list", help="list the accounts (never a password)")

    cs = sub.add_parser("case", help="case records").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    a = cs.add_parser("add", help="add a case (number with its Luhn check digit)")
    a.add_argument("number")
    a.add_argument("--priority", choices=("high", "normal", "low"), default="normal")
    a.add_argument("--office", default="national desk")
    a = cs.add_parser("set", help="change a case's priority, status or office (audited)")
    a.add_argument("number")
    a.add_argument("--priority", choices=("high", "normal", "low"), default=None)
    a.add_argument("--status", choices=("open", "closed"), default=None)
    a.add_argument("--office", default=None)

    au = sub.add_parser("audit", help="the hash-chained audit log").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    a = au.add_parser("show", help="recent audit rows, for a call or an officer")
    g = a.add_mutually_exclusive_group()
    g.add_argument("--call", metavar="UNIQUEID")
    g.add_argument("--officer", nargs=2, metavar=("AGENCY", "NUMBER"))
    a.add_argument("--limit", type=int, default=50)
    a = au.add_parser("verify", help="check the chain, every row's signature "
                      "(SB_AUDIT_KEY_FILE), every checkpoint (SB_AUDIT_ANCHOR_FILE) and every "
                      "kept recording against its audited SHA-256 (SB_REC_STORE, when this "
                      "host has it); exit 1 on any problem")
    a.add_argument("--metrics-file", default=None, help="also write the verdict as "
                   "Prometheus text (node_exporter's textfile collector): "
                   "sb_audit_verify_ok and sb_audit_verify_timestamp_seconds, for the alert "
                   "SwitchboardAuditVerifyFailed")
    au.add_parser("anchor", help="write a signed checkpoint of every chain head to "
                  "SB_AUDIT_ANCHOR_FILE and the log (the AGI service also does, every "
                  "SB_AUDIT_ANCHOR_INTERVAL_S)")

    wb = sub.add_parser("wallboard", help="serve the live wall board",
                        description="Serve the wall board on SB_WALLBOARD_LISTEN (default "
                        "127.0.0.1:8088), behind SB_WALLBOARD_TOKEN[_FILE] (made once in "
                        "the state directory when unset; the login URL is printed). Live "
                        "figures also as Prometheus gauges on SB_WALLBOARD_METRICS_ADDR "
                        "(127.0.0.1:9469).")
    wb.add_argument("--tz", default=None, help="time zone of 'today' (SB_TZ, default "
                    "America/Chicago)")

    sub.add_parser("panel", help="serve the agent panel",
                   description="Serve the agent panel on SB_PANEL_LISTEN (default "
                   "127.0.0.1:8089): agents log in with their own accounts (switchboard "
                   "agent add). Sessions last SB_PANEL_SESSION_S (8 h) and end after "
                   "SB_PANEL_IDLE_S (30 min) without the page open. Calling agencies back "
                   "needs an AMI user with originate rights: SB_PANEL_AMI_USER, "
                   "SB_PANEL_AMI_SECRET[_FILE], SB_PANEL_AMI_ADDR (127.0.0.1:5038).")

    sub.add_parser("doctor", help="check this node end to end (exit 0 OK, 1 warnings, "
                   "2 failures)",
                   description="Checks, without changing anything: the database (the "
                   "owner, migrations, each service's login), the pepper and the audit key, "
                   "AMI (each node's login, clock skew; with SB_AMI_OPS_SECRET also the "
                   "listener's read classes and the modules the dialplan needs), FastAGI "
                   "and the process-AGI fallback (SB_AGI_DIR), queue_log, spool room.")

    sd = sub.add_parser("systemd", help="systemd units for the services",
                        description="Units for agi-server, ami-listener, wallboard and "
                        "panel: their own users, Type=notify, restart on failure, "
                        "hardened (docs/ops.md 'Running as services').")
    sds = sd.add_subparsers(dest="action", required=True)
    a = sds.add_parser("install", help="make the users, write the units, reload systemd")
    a.add_argument("--bin", default=None, help="where the switchboard command is "
                   "(default: beside this Python)")
    a.add_argument("--unit-dir", default="/etc/systemd/system")
    a.add_argument("--dry-run", action="store_true", help="print the units, change nothing")
    a.add_argument("--no-users", action="store_true", help="the users exist already")
    a = sds.add_parser("remove", help="stop, disable and delete the units")
    a.add_argument("--unit-dir", default="/etc/systemd/system")
    a = sds.add_parser("show", help="print one unit as install would write it")
    a.add_argument("name", choices=[u.name for u in systemd.UNITS])

    dp = sub.add_parser("disposition", help="the site's list of call outcomes",
                        description="The outcomes agents choose from at the end of a "
                        "call (each change audited).")
    dps = dp.add_subparsers(dest="action", required=True)
    d_set = dps.add_parser("set", help="add an outcome or change its label")
    d_set.add_argument("code", help="lower-case letters, digits and '-', e.g. referred")
    d_set.add_argument("label", help="what agents see")
    d_set.add_argument("--sort", type=int, default=100, help="position in the list (100)")
    d_ret = dps.add_parser("retire", help="take an outcome off the list (calls keep it)")
    d_ret.add_argument("code")
    dps.add_parser("list", help="the outcomes, retired ones marked")

    po = sub.add_parser("policy", help="the verification policy",
                        description="What a verification needs.  A registered line counts "
                        "toward a full verification only when the caller ID was validated "
                        "with STIR/SHAKEN attestation A, unless the site says its carrier "
                        "sends nothing (docs/ops.md).  Each change is audited.")
    pos = po.add_subparsers(dest="action", required=True)
    pos.add_parser("show", help="print the policy")
    p_set = pos.add_parser("set", help="change the policy (one setting or more)")
    p_set.add_argument("--unattested-line-counts", choices=("yes", "no"),
                       help="yes: a registered line counts without an A attestation "
                       "(only for a carrier that gives none; a failed validation never "
                       "counts); no: the default")
    p_set.add_argument("--outbound-minutes-per-hour", type=int, metavar="N",
                       help="the line's outbound minutes per hour, over every node (calls "
                       "to agencies' registered numbers; 911 is never counted): a call "
                       "over it is refused, audited and alerted (default 120)")
    p_set.add_argument("--outbound-call-max-minutes", type=int, metavar="M",
                       help="the most one outbound call may last (default 30)")

    rp = sub.add_parser("report", help="call-center figures for a day or a range",
                        description="Queue and agent figures (definitions: sql/kpi.md). "
                        "Exit status 3 when a listener gap overlaps the range (printed on "
                        "stderr): the figures may miss events.")
    _range_args(rp)
    fmt = rp.add_mutually_exclusive_group()
    fmt.add_argument("--csv", action="store_true", help="CSV instead of a table (one "
                     "table per stream: --table)")
    fmt.add_argument("--json", action="store_true", help="JSON instead of a table")
    rp.add_argument("--table", choices=("queues", "agents"), default="queues",
                    help="which figures --csv writes (queues)")
    rp.add_argument("--short-s", type=int, default=5, help="short abandon threshold (5)")
    rp.add_argument("--variant", default="offered_excl_short",
                    choices=("offered_excl_short", "offered", "answered",
                             "offered_excl_abandoned_within_t"),
                    help="service-level denominator (sql/kpi.md)")

    st = sub.add_parser("staffing", help="agents needed per interval (Erlang C) against "
                        "agents logged in",
                        description="From measured calls and handle time per interval, "
                        "the agents needed for the service-level target (Erlang C), with "
                        "shrinkage, against the agents actually logged in. With "
                        "--calls-per-hour and --aht-s: a what-if, no database.")
    _range_args(st)
    st.add_argument("--target", type=float, default=0.8, help="share answered within "
                    "--sl-s (0.8)")
    st.add_argument("--shrinkage", type=float, default=0.3, help="share of paid time not "
                    "on the phones (0.3)")
    st.add_argument("--aht-s", type=float, default=None, help="handle time when an interval "
                    "has no answered calls, or for the what-if")
    st.add_argument("--calls-per-hour", type=float, default=None, help="what-if")

    dp = sub.add_parser("dialplan", help="check, deploy and roll back the Asterisk "
                        "configuration in dialplan/").add_subparsers(
        dest="action", required=True, metavar="ACTION")
    a = dp.add_parser("check", help="check dialplan/ before it may be deployed",
                      description="Run asterisklint (Asterisk 22) and the project's own "
                      "checks on dialplan/ with a site's files; print file:line: CODE: "
                      "message for each problem; exit 1 if there is any.")
    a.add_argument("--dir", default=None, help="configuration to check (default: dialplan/)")
    a.add_argument("--site", default=None,
                   help="the site's files (default: dialplan/site.example)")
    for action, text in (("deploy", "check, write dialplan/ and the site's files into the "
                          "Asterisk configuration folder, reload what changed over AMI, "
                          "confirm; put the previous version back on any error"),
                         ("rollback", "put the previous version back, reload, confirm"),
                         ("confirm", "compare the running Asterisk with the files in the "
                          "configuration folder (after a first install or a restart)")):
        a = dp.add_parser(action, help=text, description=text + ". AMI ops user from "
                          "SB_AMI_OPS_ADDR, SB_AMI_OPS_USER, SB_AMI_OPS_SECRET[_FILE].")
        a.add_argument("--confdir", default="/etc/asterisk",
                       help="Asterisk's configuration folder (default /etc/asterisk)")
        if action == "deploy":
            a.add_argument("--dir", default=None, help="configuration to deploy "
                           "(default: dialplan/)")
            a.add_argument("--site", default=None,
                           help="the site's own files, deployed into CONFDIR/site (default: "
                           "SB_SITE_DIR, else /etc/switchboard/site)")
            a.add_argument("--first-install", action="store_true",
                           help="Asterisk is stopped (a new node): write the files only; "
                           "then start Asterisk and run 'switchboard dialplan confirm'")
        if action != "confirm":
            a.add_argument("--node", action="append", default=[], metavar="NAME:CONFDIR:SITE",
                           help=f"a rolling {action} over several nodes, one at a time in the "
                           "order given, each confirmed before the next; the first refusal "
                           "stops it (docs/ops.md \"Nodes behind the front\"). The node's AMI "
                           "address is its ami in SITE/cluster.conf")
            a.add_argument("--dry-run", action="store_true",
                           help="show the diff and the actions; touch nothing")

    edge_cli.add_parser(sub)
    recordings_cli.add_parser(sub)
    front_cli.add_parser(sub)

    ag = sub.add_parser("agi", help="the process-AGI fallback on an Asterisk node"
                        ).add_subparsers(dest="action", required=True, metavar="ACTION")
    a = ag.add_parser("install", help="install switchboard-agi into Asterisk's AGI folder",
                      description="Write the process-AGI fallback (AGI(switchboard-agi,...)) "
                      "into Asterisk's AGI folder as a small script that runs this "
                      "installation's switchboard-agi with --config FILE. FILE holds the "
                      "settings (SB_DATABASE_URL, SB_PIN_PEPPER_FILE, ...), is owned by root, "
                      "group GROUP, mode 0640; when it does not exist it is written from the "
                      "current environment. Asterisk's own environment is never used.")
    a.add_argument("--agidir", default="/var/lib/asterisk/agi-bin",
                   help="Asterisk's astagidir (default /var/lib/asterisk/agi-bin)")
    a.add_argument("--config", default=str(agi_install.DEFAULT_CONFIG),
                   help=f"settings file (default {agi_install.DEFAULT_CONFIG})")
    a.add_argument("--group", default="asterisk",
                   help="group Asterisk runs as (default asterisk)")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        apply_config_file(os.environ)  # SB_CONFIG or /etc/switchboard/switchboard.env
        settings = load()
    except ConfigError as exc:
        print(f"switchboard: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "demo" and not sys.stderr.isatty():
        # the demo's summary on stdout; its ~150 log lines in a file, not mixed in
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        demo_log = (settings.state_dir / "demo.log").open("a", encoding="utf-8")
        log.configure("json", settings.log_level, stream=demo_log)
        print(f"switchboard demo: logs in {settings.state_dir / 'demo.log'}", file=sys.stderr)
    else:
        log.configure(settings.log_format, settings.log_level)
    try:
        if args.command == "db" and args.db_command == "retention":
            return _retention(settings, args)
        if args.command == "db" and args.db_command == "rebuild-figures":
            return _rebuild_figures(settings, args)
        if args.command == "db":
            return _db(settings, args.db_command)
        if args.command == "ami-listener":
            return asyncio.run(run_listener(settings.listener,
                                            db.service_url(settings, "listener")))
        if args.command == "demo":
            return asyncio.run(run_demo(settings, speed=args.speed, rounds=args.rounds,
                                        hold_s=args.hold))
        if args.command == "reconcile":
            return _reconcile(settings, args)
        if args.command == "summary":
            since = (_when(args.since, "--since") if args.since
                     else datetime.now(UTC) - timedelta(days=1))
            return asyncio.run(print_summary(db.service_url(settings, "reports"), since,
                                             tz=site_tz(os.environ)))
        if args.command == "agi-server":
            settings.agi.require_pepper()
            return loop.run(run_agi_server(settings.agi, db.service_url(settings, "agi")),
                            settings.agi.event_loop)
        if args.command == "wallboard":
            return loop.run(wallboard.run_wallboard(db.service_url(settings, "reports"),
                                                    board_config(settings, args.tz)),
                            settings.agi.event_loop)
        if args.command == "panel":
            settings.agi.require_pepper()
            return loop.run(panel.run_panel(db.service_url(settings, "panel"),
                                            panel_config(settings), make_hasher(settings.agi),
                                            auditlog.session_settings(
                                                auditlog.settings_key(settings.agi))),
                            settings.agi.event_loop)
        if args.command == "systemd":
            return _systemd(args)
        if args.command == "doctor":
            return doctor.report(asyncio.run(doctor.run(settings, dict(os.environ))))
        if args.command in ("report", "staffing"):
            return _report(settings, args)
        if args.command == "dialplan":
            return _dialplan(args, settings)
        if args.command == "agi":
            return _agi(args, settings)
        if args.command == "edge":
            return edge_cli.run(args, settings)
        if args.command == "front":
            return front_cli.run(args)
        if args.command == "recordings":
            return recordings_cli.run(args, settings)
        if args.command in ("agency", "line", "officer", "agent", "case", "audit",
                            "disposition", "policy"):
            return asyncio.run(_ops(settings, args))
    except ConfigError as exc:
        print(f"switchboard: configuration error: {exc}", file=sys.stderr)
        return 2
    except (ClusterError, db.MigrationError, ops.OpsError,
            deploy.DeployError, agi_install.InstallError, systemd.SystemdError,
            admin_edge.EdgeError, RecordingError) as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `... | head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except socket.gaierror as exc:
        print(f"switchboard: an address in the settings is not known ({exc.strerror}): "
              "check SB_AGI_LISTEN, SB_WALLBOARD_LISTEN, SB_PANEL_LISTEN and the database "
              "URL", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"switchboard: {exc.filename or exc}: no such file or folder", file=sys.stderr)
        return 1
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        print(f"switchboard: database: {type(exc).__name__}: {str(exc)[:300]}",
              file=sys.stderr)
        return 1
    return 2


def _systemd(args: argparse.Namespace) -> int:
    unit_dir = Path(args.unit_dir) if getattr(args, "unit_dir", None) else systemd.UNIT_DIR
    if args.action == "show":
        unit = next(u for u in systemd.UNITS if u.name == args.name)
        print(systemd.render(unit, Path(sys.executable).parent), end="")
        return 0
    if args.action == "remove":
        return systemd.remove(unit_dir=unit_dir)
    return systemd.install(bin_dir=Path(args.bin) if args.bin else None, unit_dir=unit_dir,
                           dry_run=args.dry_run, users=not args.no_users)


def panel_config(settings: Settings) -> panel.PanelConfig:
    env = dict(os.environ)
    host, _, port = env.get("SB_PANEL_LISTEN", "127.0.0.1:8089").rpartition(":")
    hosts = tuple(h.strip() for h in env.get("SB_PANEL_HOSTS", "").split(",") if h.strip())
    try:
        session_s = int(env.get("SB_PANEL_SESSION_S", str(8 * 3600)))
        idle_s = int(env.get("SB_PANEL_IDLE_S", "1800"))
        port_n = int(port)
    except ValueError as exc:
        raise ConfigError("SB_PANEL_LISTEN is host:port; SB_PANEL_SESSION_S and "
                          "SB_PANEL_IDLE_S are whole seconds") from exc
    if not (10 <= session_s <= 86400 and 10 <= idle_s <= 86400):
        raise ConfigError("SB_PANEL_SESSION_S and SB_PANEL_IDLE_S are 10 to 86400 seconds")
    ami = parse_ami_panel(env)
    others = tuple(AmiLogin(h, p, ami[2], ami[3]) for h, p in panel_ami_addresses(env)[1:]
                   ) if ami else ()
    rec = load_recordings(env)
    reports_url = None
    with contextlib.suppress(db.MigrationError):
        reports_url = db.service_url(settings, "reports")
    return panel.PanelConfig(host=host or "127.0.0.1", port=port_n, session_s=session_s,
                             idle_s=idle_s, hosts=hosts,
                             ami=AmiLogin(*ami) if ami else None, ami_others=others,
                             oob_context=env.get("SB_PANEL_OOB_CONTEXT", "sb-oob"),
                             supervise=SuperviseConfig(store=rec.store,
                                                       identity=rec.identity_file),
                             reports_url=reports_url)


def board_config(settings: Settings, tz: str | None) -> wallboard.BoardConfig:
    env = dict(os.environ)
    host, _, port = env.get("SB_WALLBOARD_LISTEN", "127.0.0.1:8088").rpartition(":")
    m_host, _, m_port = env.get("SB_WALLBOARD_METRICS_ADDR", "127.0.0.1:9469").rpartition(":")
    token, created = wallboard.token_from(env, settings.state_dir)
    if created:  # the one time the login link is printed
        print(f"wall board token created in {settings.state_dir / 'wallboard-token'}; log "
              f"in once with http://{host or '127.0.0.1'}:{port}/?token={token}")
    hosts = tuple(h.strip() for h in env.get("SB_WALLBOARD_HOSTS", "").split(",") if h.strip())
    try:
        idle_s = float(env.get("SB_WALLBOARD_IDLE_S", "10"))
        stale_min = int(env.get("SB_CALLBACK_STALE_MIN", "15"))
        wait_alert_s = int(env.get("SB_WAIT_ALERT_S", "60"))
    except ValueError as exc:
        raise ConfigError("SB_WALLBOARD_IDLE_S must be seconds, SB_CALLBACK_STALE_MIN "
                          "whole minutes, SB_WAIT_ALERT_S whole seconds") from exc
    zone = site_tz(env, tz)
    try:
        report.Range.parse(None, None, None, zone, "day")
        return wallboard.BoardConfig(host=host or "127.0.0.1", port=int(port), token=token,
                                     tz=zone, metrics_host=m_host or "127.0.0.1",
                                     metrics_port=int(m_port), hosts=hosts,
                                     idle_s=min(max(idle_s, 1.0), 600.0),
                                     callback_stale_min=min(max(stale_min, 1), 1440),
                                     wait_alert_s=min(max(wait_alert_s, 5), 3600))
    except ValueError as exc:
        raise ConfigError(f"wall board settings: {exc}") from exc


def _range_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--day", default=None, help="YYYY-MM-DD (default: today so far)")
    p.add_argument("--from", dest="start", default=None, help="ISO time (with --to)")
    p.add_argument("--to", dest="end", default=None, help="ISO time")
    p.add_argument("--tz", default=None, help="time zone of the intervals (SB_TZ, default "
                   "America/Chicago; daylight saving days have 23 or 25 hours)")
    p.add_argument("--bucket", default="hour", choices=("15min", "hour", "day"))
    p.add_argument("--sl-s", type=int, default=20, help="service-level threshold T (20)")
    p.add_argument("--wrapup-s", type=int, default=15, help="wrap-up added to talk time "
                   "in AHT for calls with no disposition saved in the agent panel (15, the "
                   "queues' wrapuptime; a saved disposition gives the call's own)")


def _report(settings: Settings, args: argparse.Namespace) -> int:
    try:
        if args.command == "staffing" and not (0 <= args.shrinkage < 1
                                               and 0 < args.target < 1):
            raise ValueError("--shrinkage is in [0, 1) and --target in (0, 1)")
        if args.sl_s <= 0 or args.wrapup_s < 0:
            raise ValueError("--sl-s is more than 0 seconds, --wrapup-s 0 or more")
        if args.command == "staffing" and (
                (args.aht_s is not None and not 0 < args.aht_s <= 86400)
                or (args.calls_per_hour is not None
                    and not 0 < args.calls_per_hour <= 1_000_000)):
            raise ValueError("--aht-s and --calls-per-hour are more than 0")
        if args.command == "staffing" and args.calls_per_hour is not None:
            if args.aht_s is None:
                raise ValueError("--calls-per-hour needs --aht-s")
            return report.what_if(args.calls_per_hour, args.aht_s, sl_target=args.target,
                                  sl_s=args.sl_s, shrinkage=args.shrinkage)
        rng = report.Range.parse(args.day, args.start, args.end,
                                 site_tz(os.environ, args.tz), args.bucket)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    url = db.service_url(settings, "reports")
    if args.command == "staffing":
        return asyncio.run(report.staffing(
            url, rng, sl_target=args.target, sl_s=args.sl_s, shrinkage=args.shrinkage,
            default_aht_s=args.aht_s or 240, wrapup_s=args.wrapup_s))
    fmt = "csv" if args.csv else "json" if args.json else "table"
    return asyncio.run(report.report(url, rng, fmt=fmt, short_s=args.short_s, sl_s=args.sl_s,
                                     variant=args.variant, wrapup_s=args.wrapup_s,
                                     csv_table=args.table))


def _when(value: str, name: str) -> datetime:
    try:
        t = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"{name} {value!r} is not an ISO time (2026-11-30T08:00)") from exc
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _reconcile(settings: Settings, args: argparse.Namespace) -> int:
    try:
        start = _when(args.start, "--from")
        end = _when(args.end, "--to") if args.end else datetime.now(UTC)
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


def _dialplan(args: argparse.Namespace, settings: Settings) -> int:
    if args.action in ("deploy", "rollback") and args.node:
        if args.dry_run:
            raise ConfigError("--dry-run with --node: dry-run each node on its own")
        host, port, user, secret = parse_ami_ops(os.environ)
        url = None
        with contextlib.suppress(ConfigError, ClusterError, db.MigrationError):
            url = db.database_url(settings)
        targets = rollout.node_targets(args.node, deploy.AmiOps(host, port, user, secret))
        source = Path(getattr(args, "dir", None) or dialcheck.DIALPLAN_DIR)
        return asyncio.run(rollout.rollout(source, targets, undo=args.action == "rollback",
                                           database_url=url))
    if args.action in ("deploy", "rollback", "confirm"):
        confdir = Path(args.confdir).absolute()
        if not confdir.is_dir():
            raise deploy.DeployError(f"{confdir} is not a directory")
        dry_run = getattr(args, "dry_run", False)
        host, port, user, secret = parse_ami_ops(os.environ) if not dry_run else (
            "127.0.0.1", 0, "", "")
        ami = deploy.AmiOps(host, port, user, secret)
        url = None
        with contextlib.suppress(ConfigError, ClusterError, db.MigrationError):
            url = db.database_url(settings)
        if args.action == "deploy":
            source = Path(args.dir) if args.dir else dialcheck.DIALPLAN_DIR
            site = args.site or os.environ.get("SB_SITE_DIR")
            return asyncio.run(deploy.deploy(source, confdir, ami, dry_run=dry_run,
                                             database_url=url,
                                             site_dir=Path(site) if site else None,
                                             first_install=args.first_install))
        if args.action == "confirm":
            return asyncio.run(deploy.confirm(confdir, ami, database_url=url))
        return asyncio.run(deploy.rollback(confdir, ami, dry_run=dry_run, database_url=url))
    directory = Path(args.dir) if args.dir else dialcheck.DIALPLAN_DIR
    site = Path(args.site) if args.site else None
    for given, what in ((directory, "--dir"), (site, "--site")):
        if given is not None and not given.is_dir():
            raise ConfigError(f"{what} {given}: no such folder")
    findings = dialcheck.check(directory, site)
    for f in findings:
        print(f)
    if findings:
        print(f"dialplan check: {len(findings)} problem(s) in {directory}", file=sys.stderr)
        return 1
    print(f"dialplan check: {directory} is fine")
    return 0


def _agi(args: argparse.Namespace, settings: Settings) -> int:
    for line in agi_install.install(Path(args.agidir), Path(args.config), args.group,
                                    os.environ, settings):
        print(line)
    return 0


async def _ops(settings: Settings, args: argparse.Namespace) -> int:
    region = settings.agi.default_region
    key = auditlog.settings_key(settings.agi)  # ops' audit rows are signed too
    conn = await asyncpg.connect(db.database_url(settings), timeout=10,
                                 server_settings=auditlog.session_settings(key))
    try:
        cmd, action = args.command, args.action
        if cmd == "agency" and action == "add":
            await ops.agency_add(conn, args.code, args.name)
            print(f"agency {args.code} added")
        elif cmd == "agency" and action == "suspend":
            await ops.agency_suspend(conn, args.code)
            print(f"agency {args.code} suspended")
        elif cmd == "agency":
            for r in await conn.fetch(ops.Q["agency_list"]):
                print(f"{r['code']:>6}  {r['name']}  lines={r['lines']} "
                      f"officers={r['officers']}{'  SUSPENDED' if r['suspended'] else ''}")
        elif cmd == "line" and action == "add":
            number = await ops.line_add(conn, args.code, args.number, region, args.label)
            print(f"{number} registered to agency {args.code}")
        elif cmd == "line":
            print(f"{await ops.line_remove(conn, args.number, region)} unregistered")
        elif cmd == "officer" and action in ("add", "set-pin"):
            with_pin = not (action == "add" and args.no_pin)
            # the pepper and the PIN first: nothing is created that a missing pepper,
            # a closed stdin or a bad PIN would leave half done
            hasher = make_hasher(settings.agi) if with_pin else None
            pin = ops.read_pin(sys.stdin if args.pin_stdin else None) if with_pin else None
            async with conn.transaction():
                if action == "add":
                    await ops.officer_add(conn, args.code, args.number, args.name)
                if hasher is not None and pin is not None:
                    await ops.officer_set_pin(conn, hasher, args.code, args.number, pin)
            if action == "add":
                print(f"officer {args.code}/{args.number} added")
            if pin is not None:
                print(f"PIN set for officer {args.code}/{args.number}")
        elif cmd == "officer" and action == "unlock":
            await ops.officer_unlock(conn, args.code, args.number)
            print(f"officer {args.code}/{args.number} unlocked")
        elif cmd == "officer":
            st = await conn.fetchrow(ops.Q["officer_status"], args.code, args.number)
            if st is None:
                raise ops.OpsError(f"no officer {args.code}/{args.number}")
            print(f"{st['name']}: PIN {'set' if st['has_pin'] else 'NOT SET'}, "
                  f"failures {st['failed_count']}, locked until {st['locked_until'] or '-'}"
                  f"{', SUSPENDED' if st['suspended_at'] else ''}")
        elif cmd == "agent" and action in ("add", "set-password"):
            with_password = not (action == "add" and args.no_password)
            hasher = make_hasher(settings.agi) if with_password else None
            password = (agents.read_password(sys.stdin if args.password_stdin else None)
                        if with_password else None)
            async with conn.transaction():
                if action == "add":
                    await agents.agent_add(conn, args.login, args.name, args.interface,
                                           args.role)
                if hasher is not None and password is not None:
                    await agents.agent_set_password(conn, hasher, args.login, password)
            if action == "add":
                print(f"agent {args.login} added ({args.role}, {args.interface})")
            if password is not None:
                print(f"password set for agent {args.login}")
        elif cmd == "agent" and action == "disable":
            await agents.agent_disable(conn, args.login)
            print(f"agent {args.login} disabled")
        elif cmd == "agent":
            for r in await agents.agent_list(conn):
                print(f"{r['login']:<20} {r['role']:<10} {r['interface']:<14} {r['name']}"
                      f"{'' if r['has_password'] else '  NO PASSWORD'}"
                      f"{'  DISABLED' if r['disabled'] else ''}")
        elif cmd == "disposition" and action == "set":
            await agents.disposition_set(conn, args.code, args.label, args.sort)
            print(f"disposition {args.code} set")
        elif cmd == "disposition" and action == "retire":
            await agents.disposition_retire(conn, args.code)
            print(f"disposition {args.code} retired")
        elif cmd == "disposition":
            for r in await conn.fetch(ops.Q["disposition_list"]):
                print(f"{r['code']:<20} {r['label']}{'  RETIRED' if r['retired'] else ''}")
        elif cmd == "policy" and action == "set":
            outbound = (args.outbound_minutes_per_hour, args.outbound_call_max_minutes)
            if args.unattested_line_counts is None and outbound == (None, None):
                raise ConfigError("policy set: give at least one setting (--help)")
            if args.unattested_line_counts is not None:
                await ops.policy_set_unattested(conn, args.unattested_line_counts == "yes")
                print(f"unattested_line_counts set to {args.unattested_line_counts}")
            if outbound != (None, None):
                per_hour, per_call = await ops.policy_set_outbound(conn, *outbound)
                print(f"outbound: {per_hour} min per hour, at most {per_call} min a call")
        elif cmd == "policy":
            pol = await conn.fetchrow(ops.Q["policy_show"])
            out = await conn.fetchrow(ops.Q["outbound_policy_show"])
            if pol is None or out is None:
                raise ops.OpsError("no verification policy: run switchboard db migrate")
            print(f"officer lock after {pol['max_failures']} failures for "
                  f"{pol['lock_minutes']} min; calling number blocked after "
                  f"{pol['ani_max_failures']} failures for {pol['ani_block_minutes']} min\n"
                  f"registered line counts without an A attestation: "
                  f"{'yes' if pol['unattested_line_counts'] else 'no'}\n"
                  f"outbound calls: {out['minutes_per_hour']} min per hour over the line, "
                  f"at most {out['call_max_minutes']} min a call")
        elif cmd == "case" and action == "set":
            ref = await ops.case_set(conn, args.number, args.priority, args.status,
                                     args.office)
            print(f"case changed: ref {ref}")
        elif cmd == "case":
            ref = await ops.case_add(conn, args.number, args.priority, args.office)
            print(f"case added: ref {ref}")
        elif cmd == "audit" and action == "show" and not 1 <= args.limit <= 10000:
            raise ConfigError("--limit is 1 to 10000 rows")
        elif cmd == "audit" and action == "show":
            ops.print_audit(await ops.audit_rows(conn, call=args.call,
                                                 officer=args.officer or (),
                                                 limit=args.limit))
        elif cmd == "audit" and action == "anchor":
            path = settings.agi.audit_anchor_file
            if key is None or path is None:
                raise ConfigError("audit anchor needs SB_AUDIT_KEY_FILE and "
                                  "SB_AUDIT_ANCHOR_FILE")
            lines = await auditlog.anchor(conn, key, path)
            print(f"{len(lines)} checkpoints appended to {path}")
        elif cmd == "audit":
            verdict = await admin_audit.verify(conn, key, settings.agi.audit_anchor_file)
            store = load_recordings().store
            recorded = None
            if store.is_dir():
                recorded, problems = await recordings.verify_store(conn, LocalStore(store))
                verdict.problems += problems
            if args.metrics_file:
                admin_audit.write_metrics(Path(args.metrics_file), verdict.ok)
            print(f"recordings: {recorded} kept in the store" if recorded is not None
                  else f"recordings: not checked (no store at {store} on this host)")
            if not verdict.ok:
                print(f"audit log NOT intact ({verdict.rows} rows, {verdict.anchors} "
                      "checkpoints):")
                for problem in verdict.problems:
                    print(f"  {problem}")
                return 1
            print(f"audit log intact: {verdict.rows} rows, every one signed; "
                  f"{verdict.anchors} checkpoints agree; heads {verdict.heads}"
                  + ("; every recording as audited" if recorded else ""))
        return 0
    finally:
        await conn.close()


def _retention(settings: Settings, args: argparse.Namespace) -> int:
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


def _rebuild_figures(settings: Settings, args: argparse.Namespace) -> int:
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


def _db(settings: Settings, action: str) -> int:
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


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
