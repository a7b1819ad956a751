"""Caller-ID attestation on the real Asterisk 22: SIPp callers whose caller ID
the carrier validated (or not), each attestation outcome followed to the
verify handler (the dialplan's SBStep event), the agent's phone (the INVITE's
caller name and X-SB-Caller-ID) and the audit log.

First the site's CALLER_ID_ATTEST=verstat: the terminating carrier's verdict
in the From URI's user part or on a P-Asserted-Identity.  Then, where
res_stir_shaken was built (it needs libjwt >= 1.15.3), CALLER_ID_ATTEST=identity:
Asterisk verifies signed Identity headers itself, against a test STI-CA, the
certificate fetched from a loopback HTTP server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.live import stir
from tests.live.calls import (
    agent_invites,
    caller,
    header,
    national,
    run_calls,
    shown,
    steps,
    uniqueids,
)
from tests.live.harness import CASE_NORMAL, REGISTERED, Live, skip_reason
from tests.live.node import DID

if (_reason := skip_reason()) is not None:
    pytest.skip(_reason, allow_module_level=True)

AGENTS = [0, 1, 2, 3]
WRAPUP_S = 16  # queues.conf wrapuptime (15 s): an agent takes no call meanwhile


def run_in_batches(live: Live, callers: list[Any], tag: str) -> list[int | None]:
    """At most one call per agent at a time, the next batch after the wrap-up."""
    rcs: list[int | None] = []
    for start in range(0, len(callers), len(AGENTS)):
        if start:
            time.sleep(WRAPUP_S)
        placed = asyncio.run(run_calls(live, callers[start:start + len(AGENTS)],
                                       tag=f"{tag}{start}"))
        rcs += [p.rc for p in placed]
    return rcs


async def evidence(live: Live, uid: str) -> tuple[list[tuple[str, str]], list[Any], str]:
    """(SBStep events, the call's audit rows, SB_CALLER_ID as the dialplan saw it)."""
    rows = await live.fetch("SELECT action, result, detail FROM audit_log WHERE uniqueid = $1 "
                            "ORDER BY seq", uid)
    cid = await live.fetch("SELECT fields->>'CallerID' AS c FROM ami_event WHERE uniqueid = $1 "
                           "AND event = 'UserEvent' AND fields->>'Step' = 'verify'", uid)
    return await steps(live, uid), list(rows), cid[0]["c"] if cid else ""


def check_calls(live: Live, since: float, cases: list[tuple[Any, ...]]) -> dict[str, Any]:
    """Each case's call: the verify step, the dialplan's SB_CALLER_ID, the audit
    rows (caller-id first, verify carrying the same evidence) and what the
    agent's phone showed.  Returns the caller-id audit details by case."""
    ids = asyncio.run(uniqueids(live, since))
    details = {}
    for name, number, verified, label, result, phone_name, *_ in cases:
        uid = ids[national(number)]
        got_steps, rows, cid = asyncio.run(evidence(live, uid))
        assert dict(got_steps).get("verify") == verified, (name, got_steps, cid,
                                                           [tuple(r) for r in rows])
        assert cid == label, (name, cid)
        assert (rows[0]["action"], rows[0]["result"]) == ("caller-id", result), (name, rows)
        verify_rows = [r for r in rows if r["action"] == "verify"]
        assert [r["result"] for r in verify_rows] == [verified], (name, rows)
        assert verify_rows[0]["detail"] == rows[0]["detail"], name
        invites = agent_invites(live, number)
        assert invites, name
        latest = invites[-1]  # the number may have called in an earlier scenario
        shown_name, shown_verified, ref = shown(latest)
        assert (shown_name, shown_verified) == (f"{phone_name} {ref}".strip(), verified), \
            (name, latest)
        assert header(latest, "X-SB-Caller-ID") == label, name
        details[name] = rows[0]["detail"]
    return details


# name, number, From verstat, PAI verstat, SB_VERIFIED, SB_CALLER_ID, caller-id result,
# the caller name on the agent's phone (before the case reference)
VERSTAT = [
    ("A on From", REGISTERED[30], "TN-Validation-Passed-A", None,
     "full", "A-passed", "passed", "V 42/1011"),
    ("B on PAI only", REGISTERED[31], None, "TN-Validation-Passed-B",
     "line-only", "B-passed", "passed", "CB 42/1012"),
    ("failed", REGISTERED[32], "TN-Validation-Failed", None,
     "line-only", "failed", "failed", "CB CID-FAIL 42/1013"),
    ("not validated", REGISTERED[33], "No-TN-Validation", None,
     "line-only", "not-validated", "not-validated", "CB 42/1014"),
    ("no verstat at all", REGISTERED[34], None, None,
     "line-only", "absent", "absent", "CB 42/1015"),
]


def test_verstat_outcomes_reach_the_handler_the_phone_and_the_audit(live: Live) -> None:
    asyncio.run(live.agents(AGENTS))
    since = time.time()
    callers = [caller(number, phone.split("/")[-1], case=CASE_NORMAL, verstat=v, pai_verstat=p)
               for _, number, v, p, _, _, _, phone in VERSTAT]
    assert run_in_batches(live, callers, "stir-v") == [0] * len(VERSTAT)
    cases = [(n, num, ver, lab, res, ph) for n, num, _, _, ver, lab, res, ph in VERSTAT]
    details = check_calls(live, since, cases)
    assert details["A on From"] == ("caller-id passed attest=A source=verstat "
                                    "reason=TN-Validation-Passed-A")
    assert details["B on PAI only"].startswith("caller-id passed attest=B source=verstat")
    assert details["no verstat at all"] == "caller-id absent attest=- source=verstat"


def test_identity_headers_verified_by_asterisk(live: Live) -> None:
    if not live.node.stir:
        pytest.skip("res_stir_shaken is not built on this Asterisk (it needs libjwt >= "
                    "1.15.3; Debian 12 has 1.10.2): the Identity path is covered by the "
                    "parser's unit tests only")
    asyncio.run(live.agents(AGENTS))
    time.sleep(WRAPUP_S)  # the agents' wrap-up after the calls before
    loaded = live.node.rx("module show like stir_shaken")
    assert "res_stir_shaken.so" in loaded and "Running" in loaded, loaded
    live.node.rx("dialplan set global CALLER_ID_ATTEST identity")
    try:
        with stir.CertServer(live.node.stir_cert) as certs:
            since = time.time()
            key, url = live.node.stir_key, certs.url
            signed, forged, stale, unsigned = REGISTERED[35:39]

            def identity(number: str, **kw: Any) -> tuple[str, ...]:
                value = stir.identity_header(key, url, orig=national(number), dest=DID, **kw)
                return f"Identity: {value}", f"Date: {stir.sip_date()}"
            callers = [
                caller(signed, "1016", case=CASE_NORMAL, verstat=None,
                       invite_headers=identity(signed)),
                caller(forged, "1017", case=CASE_NORMAL, verstat=None, invite_headers=(
                    f"Identity: {stir.tampered(identity(forged)[0].removeprefix('Identity: '))}",
                    f"Date: {stir.sip_date()}")),
                caller(stale, "1018", case=CASE_NORMAL, verstat=None,
                       invite_headers=identity(stale, iat=int(time.time()) - 3600)),
                caller(unsigned, "1019", case=CASE_NORMAL, verstat=None),
            ]
            placed = asyncio.run(run_calls(live, callers, tag="stir-i"))
            fetched = certs.fetches
    finally:
        live.node.rx("dialplan set global CALLER_ID_ATTEST verstat")
    assert [p.rc for p in placed] == [0] * 4
    cases = [
        ("signed A", signed, "full", "A-passed", "passed", "V 42/1016"),
        ("tampered", forged, "line-only", "failed", "failed", "CB CID-FAIL 42/1017"),
        ("stale iat", stale, "line-only", "failed", "failed", "CB CID-FAIL 42/1018"),
        ("unsigned", unsigned, "line-only", "not-validated", "not-validated", "CB 42/1019"),
    ]
    details = check_calls(live, since, cases)
    assert fetched >= 1  # Asterisk fetched the certificate from the x5u
    assert details["signed A"] == "caller-id passed attest=A source=identity reason=success"
    assert details["tampered"].startswith("caller-id failed ")
    assert "reason=iat_range_error" in details["stale iat"]
    assert details["unsigned"] == ("caller-id not-validated attest=- source=identity "
                                   "reason=missing_identity_hdr")
