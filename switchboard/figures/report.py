"""``switchboard report`` and ``switchboard staffing``: the KPI functions as a
terminal table, CSV or JSON; a listener gap in the range is printed and makes
the exit status non-zero, so nobody trusts figures built on missing events."""

from __future__ import annotations

import csv
import json
import math
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import asyncpg

from switchboard.figures.staffing import agents_needed
from switchboard.sqlfile import queries

Q = queries("report.sql")


def reader_settings() -> dict[str, Any]:
    """Reports and the wall board log in as sb_reports (db.service_url): SELECT on
    the call and event tables, nothing else."""
    return {"server_settings": {"application_name": "switchboard-reports"}}
GAP_EXIT = 3
BUCKET_S = {"15min": 900, "hour": 3600, "day": 86400}
QUEUE_COLS = ("bucket", "queue", "offered", "answered", "abandoned", "short_abandoned",
              "timeouts", "overflowed", "callbacks", "in_progress", "asa_s", "avg_wait_s",
              "max_wait_s", "service_level", "abandon_rate", "aht_s", "max_waiting")
MIX_PARTS = ("verification", "caller_id", "callbacks", "dispositions", "transfers")
AGENT_COLS = ("bucket", "interface", "member_name", "logged_in_s", "available_s",
              "on_call_s", "ringing_s", "paused_s", "paused_by_reason", "calls_answered",
              "ring_no_answer", "aht_s", "occupancy")


@dataclass(frozen=True)
class Range:
    start: datetime
    end: datetime
    tz: str
    bucket: str

    @classmethod
    def parse(cls, day: str | None, start: str | None, end: str | None, tz: str,
              bucket: str) -> Range:
        try:
            zone = ZoneInfo(tz)
        except (KeyError, ValueError) as exc:
            raise ValueError(f"unknown time zone {tz!r}") from exc
        if bucket not in BUCKET_S:
            raise ValueError("bucket is 15min, hour or day")
        if day and (start or end):
            raise ValueError("give --day, or --from and --to, not both")
        if start or end:
            if not (start and end):
                raise ValueError("give both --from and --to")
            a, b = (datetime.fromisoformat(x) for x in (start, end))
        else:
            d = (datetime.fromisoformat(day).date() if day  # default: today so far
                 else datetime.now(zone).date())
            a = datetime(d.year, d.month, d.day)
            b = a + timedelta(days=1)
        a = a if a.tzinfo else a.replace(tzinfo=zone)
        b = b if b.tzinfo else b.replace(tzinfo=zone)
        if b <= a:
            raise ValueError("--to must be after --from")
        return cls(a, b, tz, bucket)


def bucket_seconds(start: datetime, bucket: str, tz: str) -> float:
    """How long the interval starting at ``start`` is: a day runs local midnight
    to local midnight (23 or 25 hours on daylight saving days)."""
    if bucket != "day":
        return float(BUCKET_S[bucket])
    local = start.astimezone(ZoneInfo(tz))
    d = local.date() + timedelta(days=1)
    nxt = datetime(d.year, d.month, d.day, tzinfo=ZoneInfo(tz))
    return (nxt.astimezone(UTC) - start.astimezone(UTC)).total_seconds()  # real seconds


def plain(v: Any) -> Any:
    """A database value as JSON: numbers, ISO times, parsed jsonb text."""
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, str) and v.startswith("{"):
        return json.loads(v)
    return v


def _cell(k: str, v: Any, tz: str) -> str:
    if v is None:
        return "-"
    if k == "bucket" and isinstance(v, str):
        v = datetime.fromisoformat(v)
    if isinstance(v, datetime):
        return v.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")
    if isinstance(v, dict):
        return ",".join(f"{r}={s:.0f}s" for r, s in v.items()) or "-"
    if k in ("service_level", "abandon_rate", "occupancy"):
        return f"{float(v) * 100:.1f}%"
    if isinstance(v, str) and v.startswith("{"):
        return ",".join(f"{r}={s:.0f}s" for r, s in json.loads(v).items()) or "-"
    return str(v)


def table(rows: list[dict[str, Any]], cols: tuple[str, ...], tz: str, out: TextIO) -> None:
    cells = [[_cell(c, r[c], tz) for c in cols] for r in rows]
    widths = [max([len(c), *(len(x[i]) for x in cells)]) for i, c in enumerate(cols)]
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True)), file=out)
    for x in cells:
        print("  ".join(v.rjust(w) for v, w in zip(x, widths, strict=True)), file=out)


async def gather(conn: Any, rng: Range, *, short_s: int, sl_s: int, variant: str,
                 wrapup_s: int) -> dict[str, Any]:
    """Every figure of a range, as ``report --json`` prints it and the reports
    page shows it (one function, so the two cannot differ)."""
    qrows = [dict(r) for r in await conn.fetch(
        Q["queue_figures"], rng.start, rng.end, rng.bucket, rng.tz, short_s, sl_s,
        variant, wrapup_s)]
    arows = [dict(r) for r in await conn.fetch(
        Q["agent_figures"], rng.start, rng.end, rng.bucket, rng.tz, wrapup_s)]
    gaps = [dict(r) for r in await conn.fetch(Q["gaps"], rng.start, rng.end)]
    cut = [dict(r) for r in await conn.fetch(Q["cut_calls"], rng.start, rng.end)]
    mix: dict[str, dict[str, int]] = {k: {} for k in MIX_PARTS}
    for r in await conn.fetch(Q["mix"], rng.start, rng.end):
        mix.setdefault(r["part"], {})[r["kind"]] = r["n"]
    return {"from": rng.start.isoformat(), "to": rng.end.isoformat(), "tz": rng.tz,
            "bucket": rng.bucket, "short_s": short_s, "sl_s": sl_s, "variant": variant,
            "queues": [{k: plain(v) for k, v in r.items()} for r in qrows],
            "agents": [{k: plain(v) for k, v in r.items()} for r in arows],
            "gaps": [{k: plain(v) for k, v in g.items()} for g in gaps],
            "cut_by_asterisk_restart": [{k: plain(v) for k, v in c.items()} for c in cut],
            "mix": mix}


def write_csv(data: dict[str, Any], out: TextIO, csv_table: str = "queues") -> None:
    """One table per stream: one header row (queues, or agents)."""
    w = csv.writer(out)
    if csv_table == "agents":
        w.writerow(AGENT_COLS)
        for r in data["agents"]:
            w.writerow([json.dumps(r[c]) if c == "paused_by_reason" else r[c]
                        for c in AGENT_COLS])
    else:
        w.writerow(QUEUE_COLS)
        for r in data["queues"]:
            w.writerow([r[c] for c in QUEUE_COLS])


async def report(url: str, rng: Range, *, fmt: str, short_s: int, sl_s: int, variant: str,
                 wrapup_s: int, out: TextIO = sys.stdout, err: TextIO = sys.stderr,
                 csv_table: str = "queues") -> int:
    conn = await asyncpg.connect(url, timeout=10, **reader_settings())
    try:
        data = await gather(conn, rng, short_s=short_s, sl_s=sl_s, variant=variant,
                            wrapup_s=wrapup_s)
    finally:
        await conn.close()
    gaps = data["gaps"]
    if fmt == "json":
        json.dump(data, out, indent=1)
        print(file=out)
    elif fmt == "csv":
        write_csv(data, out, csv_table)
    else:
        print(f"{rng.start:%Y-%m-%d %H:%M} to {rng.end:%Y-%m-%d %H:%M} ({rng.tz}), "
              f"per {rng.bucket}; short abandon < {short_s} s, service level: answered "
              f"within {sl_s} s ({variant}); definitions: sql/kpi.md", file=out)
        qrows, arows, cut = data["queues"], data["agents"], data["cut_by_asterisk_restart"]
        print("\nqueues", file=out)
        table(qrows, QUEUE_COLS, rng.tz, out) if qrows else print("(no calls)", file=out)
        print("\nagents", file=out)
        table(arows, AGENT_COLS, rng.tz, out) if arows else print("(no agents)", file=out)
        for c in cut:
            print(f"\ncut by an Asterisk shutdown or restart, {c['queue']}: {c['talking']} "
                  f"talking (counted as answered), {c['waiting']} waiting (in no figure)",
                  file=out)
    return GAP_EXIT if say_gaps(gaps, err) else 0


def say_gaps(gaps: list[dict[str, Any]], err: TextIO) -> bool:
    """Tell about the listener's gaps in the range; True when one is not yet
    reconciled with queue_log (the figures may be incomplete)."""
    open_gaps = [g for g in gaps if g["reconciled_at"] is None]
    for g in gaps:
        if g["reconciled_at"] is not None:
            print(f"gap: listener on {g['node']} missed events from {g['started_at']} to "
                  f"{g['ended_at']} ({g['reason']}); its calls were reconciled with "
                  f"queue_log at {g['reconciled_at']} ({g['backfilled']} made or corrected)",
                  file=err)
            continue
        print(f"GAP: listener on {g['node']} missed events from {g['started_at']} to "
              f"{g['ended_at'] or 'now'} ({g['reason']}; {g['calls_closed']} calls closed "
              f"as unknown, not yet reconciled with queue_log): figures in this range may "
              f"be incomplete", file=err)
    return bool(open_gaps)


async def staffing(url: str, rng: Range, *, sl_target: float, sl_s: int, shrinkage: float,
                   default_aht_s: float, wrapup_s: int, out: TextIO = sys.stdout,
                   err: TextIO = sys.stderr) -> int:
    conn = await asyncpg.connect(url, timeout=10, **reader_settings())
    try:
        qrows = [dict(r) for r in await conn.fetch(
            Q["queue_figures"], rng.start, rng.end, rng.bucket, rng.tz, 5, sl_s,
            "offered_excl_short", wrapup_s)]
        logged = {r["bucket"]: float(r["logged_in_s"] or 0) for r in await conn.fetch(
            Q["agents_logged_in"], rng.start, rng.end, rng.bucket, rng.tz)}
        gaps = [dict(r) for r in await conn.fetch(Q["gaps"], rng.start, rng.end)]
    finally:
        await conn.close()
    print(f"Erlang C: {sl_target:.0%} answered within {sl_s} s, shrinkage {shrinkage:.0%}, "
          f"per {rng.bucket} ({rng.tz})", file=out)
    cols = ("interval", "offered", "aht_s", "erlangs", "needed", "scheduled", "logged_in",
            "short")
    print("  ".join(f"{c:>16}" if c == "interval" else f"{c:>9}" for c in cols), file=out)
    short_any = False
    for r in (r for r in qrows if r["queue"] == "(all)"):
        aht = float(r["aht_s"]) if r["aht_s"] is not None else default_aht_s
        period = bucket_seconds(r["bucket"], rng.bucket, rng.tz)
        need = agents_needed(r["offered"], period, aht, sl_target=sl_target, target_s=sl_s,
                             shrinkage=shrinkage)
        have = logged.get(r["bucket"], 0.0) / period
        short = max(0, math.ceil(need.agents - have))
        short_any = short_any or short > 0
        when = r["bucket"].astimezone(ZoneInfo(rng.tz)).strftime("%Y-%m-%d %H:%M")
        print(f"{when:>16}  {r['offered']:>9}  {aht:>9.0f}  {need.traffic_erlangs:>9.2f}  "
              f"{need.agents:>9}  {need.scheduled:>9}  {have:>9.1f}  {short:>9}", file=out)
    return GAP_EXIT if say_gaps(gaps, err) else 0


def what_if(calls_per_hour: float, aht_s: float, *, sl_target: float, sl_s: int,
            shrinkage: float, out: TextIO = sys.stdout) -> int:
    need = agents_needed(calls_per_hour, 3600, aht_s, sl_target=sl_target, target_s=sl_s,
                         shrinkage=shrinkage)
    print(f"{calls_per_hour:g} calls/hour x {aht_s:g} s = {need.traffic_erlangs} Erlangs: "
          f"{need.agents} agents on the phones for {sl_target:.0%} within {sl_s} s "
          f"(they achieve {need.service_level:.1%}, ASA {need.asa_s} s); "
          f"{need.scheduled} scheduled with {shrinkage:.0%} shrinkage", file=out)
    return 0

