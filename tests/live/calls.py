"""Calls through the live node, and the comparison of every call the database
holds with Asterisk's own ``queue_log``."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any

from switchboard.ami_listener import queue_log
from tests.helpers import judge_calls
from tests.live import sipp
from tests.live.harness import AGENCY, PIN, Live
from tests.live.node import DID, SYSTEMNAME

FIRST_PAUSE_MS = 2500  # answer, greeting, FastAGI connect (a process AGI: about 1 s more)
GROUP_PAUSE_MS = 1000  # between the entries of one verification
LOOKUP_PAUSE_MS = 2200  # PIN check, "thank you", the lookup's own AGI


def national(e164: str) -> str:
    """The caller ID as a U.S. carrier sends it: 10 digits."""
    return e164.removeprefix("+1")


def verify_keys(officer: str, pins: list[str], *, first_ms: int = FIRST_PAUSE_MS
                ) -> list[tuple[int, str]]:
    groups: list[tuple[int, str]] = []
    for i, pin in enumerate(pins):
        groups += [(first_ms if i == 0 else GROUP_PAUSE_MS, f"{AGENCY}#"),
                   (GROUP_PAUSE_MS, f"{officer}#"), (GROUP_PAUSE_MS, f"{pin}#")]
    return groups


ATTESTED_A = "TN-Validation-Passed-A"


def caller(number: str, officer: str, *, pins: list[str] | None = None,
           case: str | None = None, patience_ms: int = 60_000,
           first_ms: int = FIRST_PAUSE_MS, verstat: str | None = ATTESTED_A,
           pai_verstat: str | None = None, invite_headers: tuple[str, ...] = ()
           ) -> sipp.Caller:
    """An officer's call.  Unless the test says otherwise the carrier validated
    its caller ID with attestation A (``verstat`` on the From URI, as the test
    site's CALLER_ID_ATTEST=verstat expects)."""
    groups = verify_keys(officer, pins or [PIN], first_ms=first_ms)
    if case is not None:
        groups.append((LOOKUP_PAUSE_MS, f"{case}#"))
    return sipp.Caller(national(number), tuple(groups), patience_ms, DID,
                       name="SPOOFED NAME", verstat=verstat, pai_verstat=pai_verstat,
                       invite_headers=invite_headers)


@dataclass
class Placed:
    caller: sipp.Caller
    proc: sipp.Sipp
    rc: int | None = None


async def start_calls(live: Live, callers: list[sipp.Caller], *, tag: str,
                      stagger_s: float = 0.05) -> list[Placed]:
    placed = []
    for i, c in enumerate(callers):
        proc = sipp.Sipp(f"{tag}-{i}-{c.callerid}", live.sipp_dir, "127.0.0.2", live.target,
                         c.scenario())
        proc.start()
        placed.append(Placed(c, proc))
        await asyncio.sleep(stagger_s)
    return placed


async def finish(placed: list[Placed], limit_s: float = 120) -> None:
    results = await asyncio.gather(*(p.proc.wait(limit_s) for p in placed))
    for p, rc in zip(placed, results, strict=True):
        p.rc = rc


async def run_calls(live: Live, callers: list[sipp.Caller], *, tag: str,
                    limit_s: float = 120) -> list[Placed]:
    placed = await start_calls(live, callers, tag=tag)
    await finish(placed, limit_s)
    return placed


# --- what the database and Asterisk say ------------------------------------------------

def agent_invites(live: Live, number: str) -> list[str]:
    """The INVITEs desk phones received for the call from ``number``."""
    user = national(number)
    found = [i for p in live.phones for i in p.received("INVITE")
             if re.search(rf"^From: .*<sip:{user}@", i, re.M)]
    return sorted(found)  # each block starts with its time: in the order they rang


def shown(invite: str) -> tuple[str, str, str]:
    """(caller name on the phone, X-SB-Verified, X-SB-Case) of an agent's INVITE."""
    name = re.search(r'^From: "([^"]*)"', invite, re.M)
    return (name.group(1) if name else "", header(invite, "X-SB-Verified"),
            header(invite, "X-SB-Case"))


def header(message: str, name: str) -> str:
    m = re.search(rf"^{re.escape(name)}: *(\S*)", message, re.M)
    return m.group(1) if m else ""


async def uniqueids_all(live: Live, since: float) -> dict[str, list[str]]:
    """caller ID as sent (without the URI parameters, ``;verstat=``) -> the
    uniqueids of its calls, in order (Newchannel)."""
    rows = await live.fetch(
        "SELECT uniqueid, split_part(fields->>'CallerIDNum', ';', 1) AS num FROM ami_event"
        " WHERE event = 'Newchannel' AND node = $1 AND event_time >= to_timestamp($2)"
        " AND fields->>'Channel' LIKE 'PJSIP/carrier-%' ORDER BY event_time", SYSTEMNAME,
        since - 1)
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r["num"], []).append(r["uniqueid"])
    return out


async def uniqueids(live: Live, since: float) -> dict[str, str]:
    """caller ID as sent -> the uniqueid of its (last) call."""
    return {num: uids[-1] for num, uids in (await uniqueids_all(live, since)).items()}


async def steps(live: Live, uniqueid: str) -> list[tuple[str, str]]:
    """The dialplan's SBStep UserEvents of one call: (step, status), in order."""
    rows = await live.fetch(
        "SELECT fields->>'Step' AS step, coalesce(fields->>'Status', '') AS status"
        " FROM ami_event WHERE event = 'UserEvent' AND uniqueid = $1"
        " AND fields->>'UserEvent' = 'SBStep' ORDER BY event_time, spool_seq", uniqueid)
    return [(r["step"], r["status"]) for r in rows]


def _queue_log_calls(live: Live, since: float) -> dict[tuple[str, str], queue_log.QueueLogCall]:
    """Calls that entered a queue (member logins from a desk phone also carry
    that channel's uniqueid in queue_log: ADDMEMBER, PAUSE...)."""
    lines = queue_log.read(live.node.queue_log, int(since) - 1, 2**40)
    return {k: c for k, c in queue_log.fold(lines).items() if c.entered_at is not None}


async def db_calls(live: Live, since: float) -> dict[tuple[str, str], dict[str, Any]]:
    rows = await live.fetch(
        "SELECT * FROM queue_call WHERE node = $1 AND entered_at >= to_timestamp($2)",
        SYSTEMNAME, since - 1)
    return {(r["uniqueid"], r["queue"]): dict(r) for r in rows}


async def settle(live: Live, since: float, limit_s: float = 30, *,
                 cut_at: float | None = None) -> None:
    """Until the database agrees with queue_log on every call, or ``limit_s``
    passed (the listener commits well under a second after an event arrives; a
    fault takes longer).  The comparison then says what still differs."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        _, problems = judge_calls(_queue_log_calls(live, since), await db_calls(live, since),
                                  cut_at=cut_at)
        if not problems:
            return
        await asyncio.sleep(0.3)


async def score(live: Live, since: float, *, limit_s: float = 30,
                cut_at: float | None = None
                ) -> tuple[dict[tuple[str, str], dict[str, Any]], int, int, list[str]]:
    """Every queued call in the database against queue_log (``judge_calls``):
    returns (rows, calls right, calls in all, every difference)."""
    await settle(live, since, limit_s, cut_at=cut_at)
    db = await db_calls(live, since)
    right, problems = judge_calls(_queue_log_calls(live, since), db, cut_at=cut_at)
    total = right + len(problems)
    print(f"calls right: {right}/{total}")
    return db, right, total, problems


async def compare_with_queue_log(live: Live, since: float, *, limit_s: float = 30,
                                 cut_at: float | None = None
                                 ) -> dict[tuple[str, str], dict[str, Any]]:
    """``score``, raising AssertionError that lists every difference; returns
    the database rows."""
    db, _, _, problems = await score(live, since, limit_s=limit_s, cut_at=cut_at)
    assert not problems, "\n".join(problems)
    return db
