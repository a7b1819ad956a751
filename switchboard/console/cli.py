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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from switchboard import __version__, auditlog, db, log, loop
from switchboard.admin import edge as admin_edge
from switchboard.admin import ops, systemd
from switchboard.admin.recstore import RecordingError, open_store
from switchboard.agi import install as agi_install
from switchboard.agi.app import make_hasher, run_agi_server
from switchboard.ami_listener.actions import AmiLogin
from switchboard.ami_listener.service import run_listener
from switchboard.configfiles import apply_config_file
from switchboard.console import (
    db_cli,
    dialplan_cli,
    doctor,
    edge_cli,
    figures_cli,
    front_cli,
    recordings_cli,
    records_cli,
)
from switchboard.console.demo import run_demo
from switchboard.dialplan_tools import deploy
from switchboard.figures import report
from switchboard.figures.summary import print_summary
from switchboard.pgcluster import ClusterError
from switchboard.recsettings import load_recordings
from switchboard.settings import (
    DEFAULT_AMI_USER,
    ConfigError,
    Settings,
    load,
    panel_ami_addresses,
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

    db_cli.add_parsers(sub)
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

    db_cli.add_reconcile_parser(sub)
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

    records_cli.add_parsers(sub)

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

    records_cli.add_site_lists(sub)
    figures_cli.add_parsers(sub)
    dialplan_cli.add_parsers(sub)
    edge_cli.add_parser(sub)
    recordings_cli.add_parser(sub)
    front_cli.add_parser(sub)

    dialplan_cli.add_agi_parser(sub)


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
            return db_cli.run_retention(settings, args)
        if args.command == "db" and args.db_command == "rebuild-figures":
            return db_cli.rebuild_figures(settings, args)
        if args.command == "db":
            return db_cli.db_command(settings, args.db_command)
        if args.command == "ami-listener":
            return asyncio.run(run_listener(settings.listener,
                                            db.service_url(settings, "listener")))
        if args.command == "demo":
            return asyncio.run(run_demo(settings, speed=args.speed, rounds=args.rounds,
                                        hold_s=args.hold))
        if args.command == "reconcile":
            return db_cli.run_reconcile(settings, args)
        if args.command == "summary":
            since = (figures_cli.when(args.since, "--since") if args.since
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
            return figures_cli.run(settings, args)
        if args.command == "dialplan":
            return dialplan_cli.run_dialplan(args, settings)
        if args.command == "agi":
            return dialplan_cli.run_agi(args, settings)
        if args.command == "edge":
            return edge_cli.run(args, settings)
        if args.command == "front":
            return front_cli.run(args)
        if args.command == "recordings":
            return recordings_cli.run(args, settings)
        if args.command in ("agency", "line", "officer", "agent", "case", "audit",
                            "disposition", "policy"):
            return asyncio.run(records_cli.run(settings, args))
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
                             supervise=SuperviseConfig(
                                 store=open_store(rec), identity=rec.identity_file,
                                 retention_days=rec.retention_days,
                                 # the playback host (it has the key) keeps the store
                                 purge_every_s=rec.purge_every_s if rec.identity_file
                                 else 0),
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


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
