"""``switchboard agency|line|officer|agent|case|audit|disposition|policy``:
the reference data, the agents' accounts, the site's lists and the audit log
(switchboard/admin/ops.py, agents.py, audit.py)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import asyncpg

from switchboard import auditlog, db
from switchboard.admin import agents, ops, recordings
from switchboard.admin import audit as admin_audit
from switchboard.admin.recstore import open_store
from switchboard.agi.app import make_hasher
from switchboard.recsettings import load_recordings
from switchboard.settings import (
    ConfigError,
    Settings,
)


def add_parsers(sub: Any) -> None:
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


def add_site_lists(sub: Any) -> None:
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


async def run(settings: Settings, args: argparse.Namespace) -> int:
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
            rec = load_recordings()
            recorded = None
            if rec.s3 is not None or await asyncio.to_thread(Path(rec.store).is_dir):
                recorded, problems = await recordings.verify_store(conn, open_store(rec))
                verdict.problems += problems
            if args.metrics_file:
                admin_audit.write_metrics(Path(args.metrics_file), verdict.ok)
            print(f"recordings: {recorded} kept in the store" if recorded is not None
                  else f"recordings: not checked (no store at {rec.store} on this host)")
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
