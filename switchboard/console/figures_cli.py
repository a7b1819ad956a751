"""``switchboard report|staffing``: the figures for a day or a range, and the
agents they need (switchboard/figures/)."""

from __future__ import annotations

import argparse
import asyncio
import os
from datetime import UTC, datetime
from typing import Any

from switchboard import db
from switchboard.figures import report
from switchboard.settings import (
    ConfigError,
    Settings,
    site_tz,
)


def add_parsers(sub: Any) -> None:
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


def run(settings: Settings, args: argparse.Namespace) -> int:
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


def when(value: str, name: str) -> datetime:
    try:
        t = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"{name} {value!r} is not an ISO time (2026-11-30T08:00)") from exc
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)
