"""Ops commands on the reference data and the audit log.

They run as the database owner (not the AGI role).  PINs are read from a prompt
(getpass, twice) or, for automation, one line on stdin with ``--pin-stdin``;
never from argv, which other users can see in the process list.  Every change
appends an audit row with the operator's login as actor.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import asyncpg

from switchboard.agi.pins import PinHasher, PinPolicyError, check_new_pin
from switchboard.agi.validate import case_number_ok, normalise_ani
from switchboard.auditlog import append_ops_row
from switchboard.sqlfile import queries

Q = queries("ops.sql")
CHAIN_BATCH = 5000


class OpsError(Exception):
    """A request ops can fix (unknown agency, bad number...): printed, exit 1."""


async def _audit(conn: Any, agency: str | None, officer: str | None, action: str, *,
                 result: str = "ok", detail: str | None = None) -> None:
    await append_ops_row(conn, agency, officer, action, result=result, detail=detail)


async def agency_add(conn: Any, code: str, name: str) -> None:
    async with conn.transaction():
        try:
            await conn.fetchval(Q["agency_add"], code, name)
        except asyncpg.UniqueViolationError as exc:
            raise OpsError(f"agency {code} exists already") from exc
        except asyncpg.CheckViolationError as exc:
            raise OpsError("an agency code is 2-6 digits; a name 1-200 characters") from exc
        await _audit(conn, code, None, "ops-agency-add")


async def agency_suspend(conn: Any, code: str) -> None:
    async with conn.transaction():
        if await conn.fetchval(Q["agency_suspend"], code) is None:
            raise OpsError(f"no agency {code}")
        await _audit(conn, code, None, "ops-agency-suspend")


async def policy_set_unattested(conn: Any, counts: bool) -> None:
    """Whether a registered line counts toward a full verification when its
    caller ID carries no A attestation (carriers that send nothing); a failed
    validation never counts either way (sql/migrations/0018)."""
    async with conn.transaction():
        await conn.fetchval(Q["policy_set_unattested"], counts)
        await _audit(conn, None, None, "ops-policy-set",
                     detail=f"unattested_line_counts={'yes' if counts else 'no'}")


async def policy_set_outbound(conn: Any, minutes_per_hour: int | None,
                              call_max_minutes: int | None) -> tuple[int, int]:
    """The line's outbound budget (toll fraud's bound, sql/migrations/0024): minutes
    per hour over every node, and the most one call may be granted."""
    if minutes_per_hour is not None and not 0 <= minutes_per_hour <= 1_000_000:
        raise OpsError("--outbound-minutes-per-hour is 0 (nothing goes out) to 1000000")
    if call_max_minutes is not None and not 1 <= call_max_minutes <= 600:
        raise OpsError("--outbound-call-max-minutes is 1 to 600")
    async with conn.transaction():
        row = await conn.fetchrow(Q["outbound_policy_set"], minutes_per_hour,
                                  call_max_minutes)
        if row is None:
            raise OpsError("no outbound policy: run switchboard db migrate")
        await _audit(conn, None, None, "ops-policy-set",
                     detail=f"outbound_minutes_per_hour={row['minutes_per_hour']} "
                     f"outbound_call_max_minutes={row['call_max_minutes']}")
    return int(row["minutes_per_hour"]), int(row["call_max_minutes"])


def e164(number: str, region: str) -> str:
    value = normalise_ani(number, region)
    if value is None:
        raise OpsError(f"{number!r} is not a telephone number (give it as +<country><number>)")
    return value


async def line_add(conn: Any, code: str, number: str, region: str,
                   label: str | None = None) -> str:
    value = e164(number, region)
    async with conn.transaction():
        try:
            if await conn.fetchval(Q["line_add"], code, value, label) is None:
                raise OpsError(f"no agency {code}")
        except asyncpg.UniqueViolationError as exc:
            raise OpsError(f"{value} is registered already") from exc
        await _audit(conn, code, None, "ops-line-add", detail=value)
    return value


async def line_remove(conn: Any, number: str, region: str) -> str:
    value = e164(number, region)
    async with conn.transaction():
        if await conn.fetchval(Q["line_remove"], value) is None:
            raise OpsError(f"{value} is not a registered line")
        await _audit(conn, None, None, "ops-line-remove", detail=value)
    return value


async def officer_add(conn: Any, code: str, number: str, name: str) -> None:
    async with conn.transaction():
        try:
            if await conn.fetchval(Q["officer_add"], code, number, name) is None:
                raise OpsError(f"no agency {code}")
        except asyncpg.UniqueViolationError as exc:
            raise OpsError(f"officer {code}/{number} exists already") from exc
        except asyncpg.CheckViolationError as exc:
            raise OpsError("an officer number is 3-10 digits; a name 1-200 characters") from exc
        await _audit(conn, code, number, "ops-officer-add")


async def officer_set_pin(conn: Any, hasher: PinHasher, code: str, number: str,
                          pin: str) -> None:
    try:
        pin_hash = hasher.hash(pin)
    except PinPolicyError as exc:
        raise OpsError(str(exc)) from exc
    async with conn.transaction():
        if await conn.fetchval(Q["officer_set_pin"], code, number, pin_hash) is None:
            raise OpsError(f"no officer {code}/{number}")
        await _audit(conn, code, number, "ops-pin-set")


async def officer_unlock(conn: Any, code: str, number: str) -> None:
    async with conn.transaction():
        if await conn.fetchval(Q["officer_unlock"], code, number) is None:
            raise OpsError(f"no officer {code}/{number}")
        await _audit(conn, code, number, "ops-unlock")


async def case_add(conn: Any, number: str, priority: str, office: str) -> str:
    if not (number.isascii() and number.isdigit() and 6 <= len(number) <= 12
            and case_number_ok(number)):
        raise OpsError("a case number is 6-12 digits ending in its Luhn check digit")
    if not 1 <= len(office.strip()) <= 200:
        raise OpsError("an office is 1-200 characters")
    async with conn.transaction():
        try:
            ref: str | None = await conn.fetchval(Q["case_add"], number, priority, office)
        except asyncpg.CheckViolationError as exc:  # never echo the case number
            raise OpsError("the case was refused by the database's checks") from exc
        if ref is None:
            raise OpsError("that case exists already: change it with 'switchboard case set'")
        await _audit(conn, None, None, "ops-case-add", detail=ref)  # the ref, not the number
    return ref


async def case_set(conn: Any, number: str, priority: str | None, status: str | None,
                   office: str | None) -> str:
    """Change a case explicitly (priority, status, office); audited with what changed."""
    if priority is None and status is None and office is None:
        raise OpsError("say what to change: --priority, --status or --office")
    if office is not None and not 1 <= len(office.strip()) <= 200:
        raise OpsError("an office is 1-200 characters")
    async with conn.transaction():
        row = await conn.fetchrow(Q["case_set"], number, priority, status, office)
        if row is None:
            raise OpsError("no such case")
        changed = ",".join(k for k, v in (("priority", priority), ("status", status),
                                          ("office", office)) if v is not None)
        await _audit(conn, None, None, "ops-case-set", detail=f"{row['ref']} {changed}")
    return str(row["ref"])


def read_secret(stream: TextIO | None, what: str, hint: str,
                check: Callable[[str], None]) -> str:
    """A new PIN or password: one line from ``stream`` (``--pin-stdin``,
    ``--password-stdin``), or asked twice without echo; then ``check``ed."""
    if stream is not None:
        secret = stream.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():
        flag = "--pin-stdin" if what == "PIN" else "--password-stdin"
        raise OpsError(f"no terminal to ask for the {what} on: give it as one line on "
                       f"stdin with {flag}")
    else:
        secret = getpass.getpass(f"new {what} ({hint}): ")
        if getpass.getpass(f"the same {what} again: ") != secret:
            raise OpsError(f"the two {what}s differ")
    try:
        check(secret)
    except PinPolicyError as exc:
        raise OpsError(str(exc)) from exc
    return secret


def read_pin(stream: TextIO | None = None) -> str:
    return read_secret(stream, "PIN", "6-12 digits", check_new_pin)


@dataclass(frozen=True)
class ChainReport:
    rows: int
    heads: str  # chain:seq of every chain, for the record
    broken_chain: int | None = None
    broken_at: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


async def audit_verify(conn: Any) -> ChainReport:
    """Walk every chain from its genesis hash: every row's prev_hash must be the
    hash before it, every hash must match the row's recomputed digest, seq must
    have no gap, and the last row must be audit_head's.  Reports the first break."""
    rows = 0
    heads = await conn.fetch(Q["audit_heads"])
    summary = " ".join(f"{h['chain']}:{h['seq']}" for h in heads)
    if await conn.fetchval(Q["audit_orphans"]):
        return ChainReport(rows, summary, None, None, "rows in a chain that has no head")
    for head in heads:
        chain = head["chain"]
        prev: bytes = bytes(head["genesis"])
        last = 0
        while True:
            batch = await conn.fetch(Q["audit_chain"], chain, last, CHAIN_BATCH)
            for r in batch:
                seq, problem = r["seq"], None
                if seq != last + 1:
                    problem = f"rows {last + 1}..{seq - 1} are missing"
                    seq = last + 1
                elif bytes(r["prev_hash"]) != prev:
                    problem = ("its link to the row before does not match (a row was "
                               "removed or replaced)")
                elif bytes(r["hash"]) != bytes(r["expected"]):
                    problem = "its content does not match its hash (the row was edited)"
                if problem:
                    return ChainReport(rows, summary, chain, seq, problem)
                prev, last = bytes(r["hash"]), r["seq"]
                rows += 1
            if len(batch) < CHAIN_BATCH:
                break
        if last != head["seq"] or prev != bytes(head["hash"]):
            return ChainReport(rows, summary, chain, last + 1,
                               f"the chain ends at row {last} but its head says row "
                               f"{head['seq']} (rows were removed from the end)")
    return ChainReport(rows, summary)


async def audit_rows(conn: Any, *, call: str | None = None, officer: Sequence[str] = (),
                     limit: int = 50) -> list[Any]:
    if call:
        rows: list[Any] = await conn.fetch(Q["audit_by_call"], call, limit)
    elif officer:
        rows = await conn.fetch(Q["audit_by_officer"], officer[0], officer[1], limit)
    else:
        rows = await conn.fetch(Q["audit_recent"], limit)
    return rows


def print_audit(rows: Sequence[Any], out: TextIO = sys.stdout) -> None:
    cols = ("chain", "seq", "at", "actor", "uniqueid", "ani", "agency", "officer", "action",
            "result", "detail")
    table = [[("" if r[c] is None else
               r[c].isoformat(timespec="seconds") if c == "at" else str(r[c])) for c in cols]
             for r in reversed(rows)]
    widths = [max([len(c), *(len(row[i]) for row in table)]) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip(), file=out)
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip(),
              file=out)
