"""``switchboard dialplan ...`` and ``switchboard agi ...``: check, deploy and
roll back the Asterisk configuration (switchboard/dialplan_tools/), and the
process-AGI fallback on a node."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from switchboard import db
from switchboard.agi import install as agi_install
from switchboard.dialplan_tools import deploy, dialcheck, rollout
from switchboard.pgcluster import ClusterError
from switchboard.settings import (
    ConfigError,
    Settings,
    parse_ami_ops,
)


def add_parsers(sub: Any) -> None:
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


def add_agi_parser(sub: Any) -> None:
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


def run_dialplan(args: argparse.Namespace, settings: Settings) -> int:
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


def run_agi(args: argparse.Namespace, settings: Settings) -> int:
    for line in agi_install.install(Path(args.agidir), Path(args.config), args.group,
                                    os.environ, settings):
        print(line)
    return 0
