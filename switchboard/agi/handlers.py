"""The call handlers: ``verify`` and ``lookup``.  They see only the ``Channel``
interface, so FastAGI and the pyst2 process-AGI fallback run the same code.

What the dialplan gets (channel variables):

    SB_VERIFIED       full | line-only | failed | locked | error   (always set)
    SB_CALLER_ID      the caller ID's attestation check (verify): A-passed |
                      B-passed | C-passed | passed | failed | not-validated |
                      absent | not-provided | error (switchboard/agi/attest.py)
    SB_AGENCY         agency code       (full / line-only only)
    SB_OFFICER        officer number    (full / line-only only)
    SB_LOOKUP         found | not-found | invalid | error          (always set)
    SB_CASE_REF       the case's opaque reference (found only)
    SB_CASE_PRIORITY  high | normal | low (normal unless found)
    SB_CALLBACK       stored | duplicate | no-number | error       (callback)
    SB_OUTBOUND       granted | refused | error (outbound: the toll-fraud gate before
                      every call to the carrier but 911), with SB_OUTBOUND_GRANT_S,
                      SB_OUTBOUND_ID and SB_OUTBOUND_REASON (legs | minutes | number)
    SB_OUTBOUND_END   recorded | unknown | error  (outbound-end, at hangup)
    SB_E911           recorded | error            (emergency: a 911 call's audit row)

``line-only``: the credentials were right but the caller ID is not a registered
line of that agency, or it is one and its caller ID was not validated with
attestation A (SB_ATTEST, read by verify; the database applies the site's
policy); the agent calls back before disclosing anything.
``locked`` also covers a calling number blocked by the per-number throttle.
``invalid`` (lookup): no valid case number in the tries allowed (check digit
wrong, not digits, timeout), or the call was never verified.

Nothing here logs a PIN, a case number or anything about a case.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from switchboard import log
from switchboard.agi import attest
from switchboard.agi.channel import Channel, ChannelHangup
from switchboard.agi.server import Registration
from switchboard.agi.validate import WITHHELD, case_number_ok, digits, normalise_ani
from switchboard.agi.verification import VERIFIED, Verifier

DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError,
             TimeoutError)


@dataclass(frozen=True)
class Prompts:
    """Sound files played (Asterisk core sounds by default; a site can record its
    own and name them here).  The IVR never says anything about a case."""

    agency: str = "agent-user"
    officer: str = "dir-pls-enter"
    pin: str = "agent-pass"
    wrong: str = "auth-incorrect"
    verified: str = "auth-thankyou"
    locked: str = "auth-incorrect"
    case_number: str = "vm-enter-num-to-call"
    case_invalid: str = "pbx-invalid"
    # the desk phone's call back (*30): after the agency's call, "if correct,
    # press 1" (2: not confirmed); "cannot complete as dialed" when unreachable
    oob_confirm: str = "if-correct-press"
    oob_key: str = "digits/1"
    oob_unreachable: str = "cannot-complete-as-dialed"


@dataclass(frozen=True)
class Flow:
    region: str = "US"
    tries: int = 3
    dtmf_timeout_ms: int = 6000
    pin_timeout_ms: int = 8000
    prompts: Prompts = Prompts()


def caller_ani(channel: Channel, region: str) -> str:
    """The caller ID as E.164, or 'withheld' for none or an unusable one."""
    return normalise_ani(channel.env.get("agi_callerid"), region) or WITHHELD


async def _set(channel: Channel, **values: str) -> None:
    for name, value in values.items():
        await channel.set_variable(name, value)


# What the dialplan gets when a handler cannot do its job (fail closed): used by
# each handler on a database failure, by the server when a handler raises, and by
# the process-AGI entry point when it cannot start.
FAIL_CLOSED: dict[str, dict[str, str]] = {
    "verify": {"SB_VERIFIED": "error"},
    "lookup": {"SB_LOOKUP": "error", "SB_CASE_PRIORITY": "normal"},
    "callback": {"SB_CALLBACK": "error"},
    "oob": {"SB_OOB": "error"},
    "oob-confirm": {"SB_OOB_CONFIRM": "error"},
    # nothing goes out without the database's grant
    "outbound": {"SB_OUTBOUND": "error", "SB_OUTBOUND_GRANT_S": "0"},
    "outbound-end": {"SB_OUTBOUND_END": "error"},
    "emergency": {"SB_E911": "error"},
}


@contextlib.asynccontextmanager
async def _guarded(channel: Channel, verifier: Verifier, ani: str, step: str, *,
                   audit_hangup: bool = True) -> AsyncIterator[Any]:
    """The handler's logger.  A hang-up is logged and audited (then re-raised);
    a database failure is logged and the call gets the step's fail-closed
    variables."""
    logger = log.get(f"agi.{step}")
    try:
        yield logger
    except ChannelHangup:
        if audit_hangup:
            logger.info(f"{step}_caller_hung_up", ani=ani)
            with contextlib.suppress(*DB_ERRORS):
                await verifier.audit(channel.uniqueid, ani, step, "hangup")
        raise
    except DB_ERRORS as exc:
        logger.error(f"{step}_database_unavailable", error=type(exc).__name__,
                     fail_closed="error")
        await _set(channel, **FAIL_CLOSED[step])


def channel_name(channel: Channel) -> str:
    """The channel's name as Asterisk gave it (a lookup is bound to it)."""
    return channel.env.get("agi_channel", "")[:80]


async def verify(channel: Channel, verifier: Verifier, flow: Flow) -> None:
    ani = caller_ani(channel, flow.region)
    p = flow.prompts
    async with _guarded(channel, verifier, ani, "verify") as logger:
        check = attest.parse(await channel.get_variable("SB_ATTEST"), ani)
        await verifier.caller_id(channel.uniqueid, ani, check)
        logger.info("caller_id_checked", ani=ani, source=check.source, attest=check.attest,
                    result=check.result, reason=check.reason)
        if check.result == "failed":
            logger.warning("caller_id_validation_failed", ani=ani, reason=check.reason)
        await _set(channel, SB_CALLER_ID=check.label)
        for attempt in range(1, flow.tries + 1):
            agency = digits(await channel.get_data(p.agency, flow.dtmf_timeout_ms, 6), 2, 6)
            officer = (digits(await channel.get_data(p.officer, flow.dtmf_timeout_ms, 10),
                              3, 10) if agency else None)
            pin = (digits(await channel.get_data(p.pin, flow.pin_timeout_ms, 12), 6, 12)
                   if officer else None)
            if agency is None or officer is None or pin is None:
                logger.info("verify_input_rejected", attempt=attempt, ani=ani,
                            step="agency" if agency is None else
                            "officer" if officer is None else "pin")
                await channel.stream_file(p.wrong)
                continue
            outcome = await verifier.verify(channel.uniqueid, channel=channel_name(channel),
                                            ani=ani, agency=agency, officer=officer, pin=pin)
            logger.info("verify_attempt", attempt=attempt, ani=ani, agency=agency,
                        officer=officer, outcome=outcome)
            if outcome in VERIFIED:
                await _set(channel, SB_AGENCY=agency, SB_OFFICER=officer,
                           SB_VERIFIED=outcome)
                await channel.stream_file(p.verified)
                return
            if outcome == "locked":
                # an alert for ops: the officer (or this number) is locked now; the
                # audit row says which, and whether this attempt locked it
                logger.warning("verify_locked", ani=ani, agency=agency, officer=officer)
                await _set(channel, SB_VERIFIED="locked")
                await channel.stream_file(p.locked)
                return
            await channel.stream_file(p.wrong)
        await _set(channel, SB_VERIFIED="failed")


async def lookup(channel: Channel, verifier: Verifier, flow: Flow) -> None:
    ani = caller_ani(channel, flow.region)
    p = flow.prompts
    async with _guarded(channel, verifier, ani, "lookup") as logger:
        verified = await channel.get_variable("SB_VERIFIED")
        if verified not in VERIFIED:
            logger.warning("lookup_refused_not_verified", verified=(verified or "")[:20])
            await verifier.audit(channel.uniqueid, ani, "lookup", "not-verified")
            await _set(channel, SB_LOOKUP="invalid", SB_CASE_PRIORITY="normal")
            return
        for attempt in range(1, flow.tries + 1):
            number = digits(await channel.get_data(p.case_number, flow.dtmf_timeout_ms, 12),
                            6, 12)
            if number is None or not case_number_ok(number):
                logger.info("lookup_input_rejected", attempt=attempt)  # never the digits
                await channel.stream_file(p.case_invalid)
                continue
            result = await verifier.lookup(channel.uniqueid, channel_name(channel), ani,
                                           number)
            logger.info("lookup_done", attempt=attempt, outcome=result.outcome,
                        case_ref=result.case_ref)
            if result.outcome == "found" and result.case_ref and result.priority:
                await _set(channel, SB_CASE_REF=result.case_ref,
                           SB_CASE_PRIORITY=result.priority, SB_LOOKUP="found")
            elif result.outcome == "not-found":
                await _set(channel, SB_CASE_PRIORITY="normal", SB_LOOKUP="not-found")
            else:  # refused: this call has no verification on record
                logger.warning("lookup_refused_by_database", outcome=result.outcome)
                await _set(channel, SB_CASE_PRIORITY="normal", SB_LOOKUP="invalid")
            return
        await _set(channel, SB_CASE_PRIORITY="normal", SB_LOOKUP="invalid")


async def callback(channel: Channel, verifier: Verifier, flow: Flow) -> None:
    """Store a callback request: the caller's number and, when the lookup found
    one, the case reference.  SB_CALLBACK = stored | duplicate | no-number | error."""
    ani = caller_ani(channel, flow.region)
    async with _guarded(channel, verifier, ani, "callback", audit_hangup=False) as logger:
        case_ref = await channel.get_variable("SB_CASE_REF")
        outcome = await verifier.callback(channel.uniqueid, ani, case_ref or None)
        logger.info("callback_request", outcome=outcome, ani=ani)
        await _set(channel, SB_CALLBACK=outcome)


_PHONE_RE = re.compile(r"^(PJSIP/[A-Za-z0-9_.-]{1,40})-[0-9a-f]{8}$")


def agent_phone(channel: Channel) -> str | None:
    """The desk phone a feature code was dialled from (``PJSIP/2004-0000001a``
    gives PJSIP/2004): Asterisk's channel name, never anything dialled."""
    m = _PHONE_RE.match(channel.env.get("agi_channel", ""))
    return m.group(1) if m else None


async def oob(channel: Channel, verifier: Verifier, flow: Flow) -> None:
    """*30 from a desk phone: call the agency of the caller this agent is
    talking to back, on its registered number (from the database).
    SB_OOB = started (with SB_OOB_ID, SB_OOB_NUMBER) | refused | error."""
    phone = agent_phone(channel)
    async with _guarded(channel, verifier, "", "oob", audit_hangup=False) as logger:
        if phone is None:
            logger.warning("oob_not_a_desk_phone")
            await _set(channel, SB_OOB="refused")
            return
        outcome, why, oob_id, e164 = await verifier.oob_begin(phone)
        logger.info("oob_begin", phone=phone, outcome=outcome, why=why, oob_id=oob_id)
        if outcome == "started" and oob_id is not None and e164:
            await _set(channel, SB_OOB_ID=str(oob_id), SB_OOB_NUMBER=e164, SB_OOB="started")
        else:
            await _set(channel, SB_OOB="refused")


async def oob_confirm(channel: Channel, verifier: Verifier, flow: Flow) -> None:
    """After the agency's call: did it answer (SB_OOB_DIAL), then the agent's
    key: 1 the officer is confirmed, 2 not.  SB_OOB_CONFIRM = callback |
    callback-denied | not-reached | no-answer-given | refused | error."""
    phone = agent_phone(channel)
    p = flow.prompts
    async with _guarded(channel, verifier, "", "oob-confirm", audit_hangup=False) as logger:
        oob_id = digits(await channel.get_variable("SB_OOB_ID"), 1, 18)
        answered = await channel.get_variable("SB_OOB_DIAL") == "ANSWER"
        if phone is None or oob_id is None:
            await _set(channel, SB_OOB_CONFIRM="refused")
            return
        confirmed: bool | None = None
        if answered:
            for _ in range(flow.tries):
                await channel.stream_file(p.oob_confirm)
                key = await channel.get_data(p.oob_key, flow.dtmf_timeout_ms, 1)
                if key in ("1", "2"):
                    confirmed = key == "1"
                    break
        outcome = await verifier.oob_confirm(phone, int(oob_id), answered, confirmed)
        logger.info("oob_confirm", phone=phone, oob_id=oob_id, answered=answered,
                    outcome=outcome)
        await _set(channel, SB_OOB_CONFIRM=outcome)
        await channel.stream_file(p.verified if outcome in ("callback", "callback-denied")
                                  else p.oob_unreachable)


_NODE_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,62})-[0-9]+\.[0-9]+$")
OUTBOUND_PURPOSES = ("panel", "desk-phone")


def node_of(uniqueid: str) -> str:
    """The node a call is on: its uniqueid's systemname prefix (``pbx-a`` of
    ``pbx-a-1795859365.0``), ``local`` for a node without one."""
    m = _NODE_RE.match(uniqueid)
    return m.group(1) if m else "local"


def _count(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() and len(value) <= 6 else None


async def outbound(channel: Channel, verifier: Verifier, flow: Flow) -> None:
    """The gate before every call the line places to the carrier ([sb-outbound]):
    the database grants seconds from the line's hourly budget, or refuses (over
    this node's leg cap, a number that is no agency's registered line, the
    budget spent).  SB_OUTBOUND = granted | refused, SB_OUTBOUND_GRANT_S,
    SB_OUTBOUND_ID, SB_OUTBOUND_REASON."""
    async with _guarded(channel, verifier, "", "outbound", audit_hangup=False) as logger:
        purpose = await channel.get_variable("SB_OUTBOUND_PURPOSE")
        number = (await channel.get_variable("SB_OUTBOUND_NUMBER") or "")[:20]
        legs = _count(await channel.get_variable("SB_OUTBOUND_LEGS"))
        max_legs = _count(await channel.get_variable("SB_OUTBOUND_MAX_LEGS"))
        if purpose not in OUTBOUND_PURPOSES:
            logger.warning("outbound_refused_unknown_purpose", purpose=(purpose or "")[:20])
            await _set(channel, SB_OUTBOUND_GRANT_S="0", SB_OUTBOUND_REASON="purpose",
                       SB_OUTBOUND="refused")
            return
        outcome, reason, leg_id, grant_s = await verifier.outbound_begin(
            channel.uniqueid, node=node_of(channel.uniqueid), purpose=purpose, number=number,
            legs=legs, max_legs=max_legs)
        if outcome == "granted":
            logger.info("outbound_granted", purpose=purpose, leg=leg_id, grant_s=grant_s,
                        legs=legs, max_legs=max_legs)
        else:  # an alert for ops (the audit row and the wall board say it too)
            logger.warning("outbound_refused", purpose=purpose, reason=reason, leg=leg_id,
                           legs=legs, max_legs=max_legs)
        await _set(channel, SB_OUTBOUND_ID=str(leg_id or ""), SB_OUTBOUND_GRANT_S=str(grant_s),
                   SB_OUTBOUND_REASON=reason or "", SB_OUTBOUND=outcome)


async def outbound_end(channel: Channel, verifier: Verifier, flow: Flow) -> None:
    """At the hangup of a granted outbound call: what it used of its grant."""
    async with _guarded(channel, verifier, "", "outbound-end", audit_hangup=False) as logger:
        leg_id = digits(await channel.get_variable("SB_OUTBOUND_ID"), 1, 18)
        answered = _count(await channel.get_variable("SB_OUTBOUND_ANSWERED_S"))
        if leg_id is None:
            await _set(channel, SB_OUTBOUND_END="unknown")
            return
        outcome = await verifier.outbound_end(int(leg_id), channel.uniqueid, answered)
        logger.info("outbound_ended", leg=leg_id, answered_s=answered, outcome=outcome)
        await _set(channel, SB_OUTBOUND_END=outcome)


def _printable(value: str | None, limit: int) -> str:
    return "".join(c for c in (value or "") if c.isprintable())[:limit]


async def emergency(channel: Channel, verifier: Verifier, flow: Flow) -> None:
    """The audit row of a 911 call, at its end ([sb-emergency-end]): which phone,
    its emergency caller ID and place, how the call went.  The call itself never
    waited for this."""
    async with _guarded(channel, verifier, "", "emergency", audit_hangup=False) as logger:
        phone = _printable(await channel.get_variable("SB_E911_PHONE"), 40)
        elin = _printable(await channel.get_variable("SB_E911_ELIN"), 20)
        place = _printable(await channel.get_variable("SB_E911_PLACE"), 200)
        status = _printable(await channel.get_variable("SB_E911_STATUS"), 20)
        answered = _count(await channel.get_variable("SB_E911_ANSWERED_S"))
        outcome = await verifier.emergency(channel.uniqueid, node=node_of(channel.uniqueid),
                                           phone=phone, elin=elin, place=place, status=status,
                                           answered_s=answered)
        logger.warning("emergency_call_ended", phone=phone, elin=elin, place=place,
                       status=status, answered_s=answered)
        await _set(channel, SB_E911=outcome)


Handler = Callable[[Channel, Verifier, Flow], Awaitable[None]]

# the handlers by script name (``agi://host/verify``): the names in dialplan/
HANDLERS: dict[str, Handler] = {
    "verify": verify, "lookup": lookup, "callback": callback, "oob": oob,
    "oob-confirm": oob_confirm, "outbound": outbound, "outbound-end": outbound_end,
    "emergency": emergency,
}


def registry(verifier: Verifier, flow: Flow) -> dict[str, Registration]:
    """Handlers by script name, each bound to the verifier and the flow, with
    what the dialplan gets when it fails unexpectedly (fail closed)."""
    def bound(handler: Handler) -> Callable[[Channel], Awaitable[None]]:
        async def run(channel: Channel) -> None:
            await handler(channel, verifier, flow)
        return run
    return {name: Registration(bound(handler), on_error=FAIL_CLOSED[name])
            for name, handler in HANDLERS.items()}
