"""Call scenarios against the real FastAGI service and real PostgreSQL: the
scripted Asterisk (agi.fakecall, on the recorded bytes) plays the caller."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from switchboard.agi.fakecall import HANGUP
from tests.agi.conftest import (
    AGENCY,
    CASE_FOUND,
    CASE_MISSING,
    LINE,
    OFFICER,
    OTHER_NUMBER,
    PIN,
    Agi,
    RunAgi,
    uniqueid,
)
from tests.helpers import as_service

WRONG = "111999"
RIGHT = [AGENCY, OFFICER, PIN]


async def audit(agi: Agi, uid: str) -> list[tuple[str, str]]:
    """The call's audit rows after its caller-ID check, which comes first, once
    (tests/agi/test_attestation.py looks at it)."""
    rows = await agi.fetch("SELECT action, result FROM audit_log WHERE uniqueid = $1 "
                           "ORDER BY seq", uid)
    got = [(r["action"], r["result"]) for r in rows]
    if got and got[0][0] == "caller-id":
        assert [a for a, _ in got].count("caller-id") == 1
        return got[1:]
    return got


async def officer_state(agi: Agi, number: str = OFFICER) -> tuple[int, bool]:
    rows = await agi.fetch("SELECT failed_count, locked_until > now() AS locked "
                           "FROM officer WHERE number = $1", number)
    return rows[0]["failed_count"], bool(rows[0]["locked"])


# callerid, keys (per GET DATA), SB_VERIFIED, audit rows of the call, officer failures after
VERIFY_TABLE: list[tuple[str, str, list[str], str | None, list[tuple[str, str]], int]] = [
    ("registered line, right PIN", LINE, RIGHT, "full", [("verify", "full")], 0),
    ("national form of the line", "6155550100", RIGHT, "full", [("verify", "full")], 0),
    ("unknown number, right PIN", OTHER_NUMBER, RIGHT, "line-only",
     [("verify", "line-only")], 0),
    ("withheld, right PIN", "anonymous", RIGHT, "line-only", [("verify", "line-only")], 0),
    ("wrong then right", LINE, [AGENCY, OFFICER, WRONG, *RIGHT], "full",
     [("verify", "wrong-pin"), ("verify", "full")], 0),
    ("three wrong PINs", LINE, [AGENCY, OFFICER, WRONG] * 3, "failed",
     [("verify", "wrong-pin")] * 3, 3),
    ("unknown officer", LINE, [AGENCY, "9999", PIN] * 3, "failed",
     [("verify", "unknown")] * 3, 0),
    ("unknown agency", LINE, ["77", OFFICER, PIN] * 3, "failed",
     [("verify", "unknown")] * 3, 0),
    ("DTMF timeouts", LINE, ["", "", ""], "failed", [], 0),
    ("star, hash and letters", LINE, ["4*2", "42", "10#1", "42", OFFICER, "73A184"], "failed",
     [], 0),
    ("PIN too short", LINE, [AGENCY, OFFICER, "12345"] * 3, "failed", [], 0),
    ("hangup at the agency code", LINE, [HANGUP], None, [("verify", "hangup")], 0),
    ("hangup at the officer number", LINE, [AGENCY, HANGUP], None, [("verify", "hangup")], 0),
    ("hangup at the PIN", LINE, [AGENCY, OFFICER, HANGUP], None, [("verify", "hangup")], 0),
    ("hangup at the second try", LINE, [AGENCY, OFFICER, WRONG, AGENCY, HANGUP], None,
     [("verify", "wrong-pin"), ("verify", "hangup")], 1),
]


@pytest.mark.parametrize(("callerid", "keys", "verified", "rows", "failures"),
                         [t[1:] for t in VERIFY_TABLE], ids=[t[0] for t in VERIFY_TABLE])
def test_verify_scenarios(run_agi: RunAgi, callerid: str, keys: list[str],
                          verified: str | None, rows: list[tuple[str, str]],
                          failures: int) -> None:
    async def scenario(agi: Agi) -> Any:
        uid = uniqueid()
        out = await agi.call("verify", keys, callerid=callerid, uid=uid)
        return out, await audit(agi, uid), await officer_state(agi)
    out, audit_rows, (failed_count, locked) = run_agi(scenario)
    assert out.variables.get("SB_VERIFIED") == verified
    if verified in ("full", "line-only"):
        assert out.variables["SB_AGENCY"] == AGENCY
        assert out.variables["SB_OFFICER"] == OFFICER
    else:
        assert "SB_AGENCY" not in out.variables and "SB_OFFICER" not in out.variables
    assert audit_rows == rows
    assert failed_count == failures and not locked
    # never more than three tries in one call
    assert sum(c.startswith("GET DATA agent-pass") for c in out.commands) <= 3


def test_five_wrong_pins_lock_the_officer_and_the_right_pin_is_then_refused(
        run_agi: RunAgi) -> None:
    async def scenario(agi: Agi) -> Any:
        first = await agi.call("verify", [AGENCY, OFFICER, WRONG] * 3)
        uid = uniqueid()
        second = await agi.call("verify", [AGENCY, OFFICER, WRONG] * 2, uid=uid)
        second_audit = await audit(agi, uid)
        state = await officer_state(agi)
        uid3 = uniqueid()
        third = await agi.call("verify", RIGHT, uid=uid3)  # the 6th try, right PIN
        third_audit = await audit(agi, uid3)
        other = await agi.call("verify", [AGENCY, "1002", PIN])  # a colleague is unaffected
        return first, second, second_audit, state, third, third_audit, other
    first, second, second_audit, state, third, third_audit, other = run_agi(scenario)
    assert first.variables["SB_VERIFIED"] == "failed"
    assert second.variables["SB_VERIFIED"] == "locked"
    assert second_audit == [("verify", "wrong-pin"), ("verify", "wrong-pin"),
                            ("lockout", "5 failures")]
    assert state == (5, True)
    assert third.variables["SB_VERIFIED"] == "locked"
    assert third_audit == [("verify", "locked")]  # nothing said about the PIN
    assert other.variables["SB_VERIFIED"] == "full"


def test_locked_answer_is_the_same_for_a_right_and_a_wrong_pin(run_agi: RunAgi) -> None:
    async def scenario(agi: Agi) -> Any:
        await agi.fetch("UPDATE officer SET locked_until = now() + interval '1 hour' "
                        "WHERE number = $1", OFFICER)
        right = await agi.call("verify", RIGHT)
        wrong = await agi.call("verify", [AGENCY, OFFICER, WRONG])
        return right, wrong
    right, wrong = run_agi(scenario)
    assert right.commands == wrong.commands
    assert right.variables == wrong.variables == {"SB_VERIFIED": "locked",
                                                  "SB_CALLER_ID": "A-passed"}


def test_spraying_officer_numbers_from_one_number_blocks_that_number(run_agi: RunAgi) -> None:
    async def scenario(agi: Agi) -> Any:
        for start in range(0, 12, 3):  # 4 calls x 3 tries, each a different officer
            keys: list[str] = []
            for n in range(start, start + 3):
                keys += [AGENCY, str(2000 + n), PIN]
            await agi.call("verify", keys, callerid=OTHER_NUMBER)
        blocked = await agi.call("verify", RIGHT, callerid=OTHER_NUMBER)
        elsewhere = await agi.call("verify", RIGHT, callerid=LINE)
        rows = await agi.fetch("SELECT action, result FROM audit_log WHERE ani = $1 "
                               "AND action = 'throttle'", OTHER_NUMBER)
        state = await officer_state(agi)
        return blocked, elsewhere, rows, state
    blocked, elsewhere, rows, state = run_agi(scenario, SB_ANI_MAX_FAILURES="10")
    assert blocked.variables == {"SB_VERIFIED": "locked", "SB_CALLER_ID": "A-passed"}
    assert elsewhere.variables["SB_VERIFIED"] == "full"
    assert [r["result"] for r in rows] == ["10 failures in an hour"]
    assert state == (0, False)  # the officer whose number was right is not locked


HOSTILE_CALLER_IDS = [
    "'; DROP TABLE officer; --",
    '"5550001" OR 1=1',
    "5550001\rSET VARIABLE SB_VERIFIED full",
    "9" * 200,
    "Ωμέγα-۱۲۳",
    "\udcff\udcfe",  # bytes that are not UTF-8
    "",
]


@pytest.mark.parametrize("callerid", HOSTILE_CALLER_IDS)
def test_hostile_caller_ids_are_withheld_callers(run_agi: RunAgi, callerid: str) -> None:
    async def scenario(agi: Agi) -> Any:
        uid = uniqueid()
        out = await agi.call("verify", RIGHT, callerid=callerid, uid=uid)
        anis = await agi.fetch("SELECT ani FROM audit_log WHERE uniqueid = $1", uid)
        officers = await agi.fetch("SELECT count(*) AS n FROM officer")
        return out, [r["ani"] for r in anis], officers[0]["n"]
    out, anis, officers = run_agi(scenario)
    assert out.variables["SB_VERIFIED"] == "line-only"  # never "full" on a bad caller ID
    assert anis == ["withheld", "withheld"] and officers == 2  # caller-id and verify rows
    assert all("\r" not in c for c in out.commands)


# keys, SB_VERIFIED on the channel, SB_LOOKUP, priority, verified first in the database,
# the call's lookup audit rows (result; "ref" = the case's ref)
LOOKUP_TABLE: list[tuple[str, list[str], str | None, str, str, bool, list[str]]] = [
    ("found", [CASE_FOUND], "full", "found", "high", True, ["found"]),
    ("found, line-only", [CASE_FOUND], "line-only", "found", "high", True, ["found"]),
    ("not found", [CASE_MISSING], "full", "not-found", "normal", True, ["not-found"]),
    ("wrong check digit three times", [CASE_FOUND[:-1] + str((int(CASE_FOUND[-1]) + 1) % 10)]
     * 3, "full", "invalid", "normal", True, []),  # the database is never asked
    ("swapped digits, then right", [CASE_FOUND[1] + CASE_FOUND[0] + CASE_FOUND[2:],
                                    CASE_FOUND], "full", "found", "high", True, ["found"]),
    ("timeouts and stars", ["", "20*6001", "#"], "full", "invalid", "normal", True, []),
    ("not verified", [CASE_FOUND], "failed", "invalid", "normal", True, ["not-verified"]),
    ("no SB_VERIFIED", [CASE_FOUND], None, "invalid", "normal", True, ["not-verified"]),
    ("variable says full, database knows better", [CASE_FOUND], "full", "invalid", "normal",
     False, ["refused"]),
]


@pytest.mark.parametrize(("keys", "verified", "lookup", "priority", "verify_first", "rows"),
                         [t[1:] for t in LOOKUP_TABLE], ids=[t[0] for t in LOOKUP_TABLE])
def test_lookup_scenarios(run_agi: RunAgi, keys: list[str], verified: str | None,
                          lookup: str, priority: str, verify_first: bool,
                          rows: list[str]) -> None:
    async def scenario(agi: Agi) -> Any:
        uid = uniqueid()
        if verify_first:
            callerid = LINE if verified == "full" else OTHER_NUMBER
            await agi.call("verify", RIGHT if verified != "failed" else [], uid=uid,
                           callerid=callerid)
        variables = {"SB_VERIFIED": verified} if verified else {}
        # the same call: the same channel and calling number as its verification
        out = await agi.call("lookup", keys, uid=uid, variables=variables,
                             callerid=LINE if verified == "full" else OTHER_NUMBER)
        found = await agi.fetch("SELECT result, detail FROM audit_log WHERE uniqueid = $1 "
                                "AND action = 'lookup' ORDER BY seq", uid)
        return out, [(r["result"], r["detail"]) for r in found]
    out, audit_rows = run_agi(scenario)
    assert out.variables["SB_LOOKUP"] == lookup
    assert out.variables["SB_CASE_PRIORITY"] == priority
    ref = out.variables.get("SB_CASE_REF")
    if lookup == "found":
        assert ref is not None and ref.startswith("C") and CASE_FOUND not in ref
    else:
        assert ref is None
    assert [r for r, _ in audit_rows] == rows
    assert [d for r, d in audit_rows if r == "found"] == [ref] * rows.count("found")


def test_lookup_hangup_is_audited(run_agi: RunAgi) -> None:
    async def scenario(agi: Agi) -> Any:
        uid = uniqueid()
        await agi.call("verify", RIGHT, uid=uid)
        out = await agi.call("lookup", [HANGUP], uid=uid, variables={"SB_VERIFIED": "full"})
        return out, await audit(agi, uid)
    out, rows = run_agi(scenario)
    assert "SB_LOOKUP" not in out.variables  # SET after a hangup answers 511
    assert rows == [("verify", "full"), ("lookup", "hangup")]


def test_concurrent_attempts_on_one_officer_cannot_race_the_counter(run_agi: RunAgi) -> None:
    async def scenario(agi: Agi) -> Any:
        calls = [agi.call("verify", [AGENCY, OFFICER, WRONG], callerid=f"+16155550{n + 110:03d}")
                 for n in range(8)]
        outs = await asyncio.gather(*calls)
        return outs, await officer_state(agi)
    outs, (failed, locked) = run_agi(scenario, SB_VERIFY_TRIES="1")
    assert failed == 5 and locked  # exactly the limit: no lost updates
    results = sorted(o.variables["SB_VERIFIED"] for o in outs)
    assert results.count("failed") == 4 and results.count("locked") == 4


def test_asterisk_closing_mid_command_is_a_hangup_and_the_server_goes_on(
        run_agi: RunAgi) -> None:
    from switchboard.agi.fakecall import environment

    async def scenario(agi: Agi) -> Any:
        uid = uniqueid()
        reader, writer = await asyncio.open_connection("127.0.0.1", agi.port)
        writer.write(environment("verify", uid, LINE))
        assert await reader.readline() == b"GET VARIABLE SB_ATTEST\n"
        writer.write(b"200 result=0\n")  # not set: the carrier gives nothing
        assert (await reader.readline()).startswith(b"SET VARIABLE SB_CALLER_ID")
        writer.write(b"200 result=1\n")
        first = await reader.readline()  # GET DATA for the agency code...
        writer.close()  # ...and the channel is torn down without a reply
        await asyncio.sleep(0.3)
        rows = await audit(agi, uid)
        after = await agi.call("verify", RIGHT)
        server = agi.service.server
        assert server is not None
        return first, rows, after, server.failed
    first, rows, after, failed = run_agi(scenario)
    assert first.startswith(b"GET DATA agent-user")
    assert rows == [("verify", "hangup")]
    assert after.variables["SB_VERIFIED"] == "full" and failed == 0


def test_lockout_counters_survive_a_server_restart(run_agi: RunAgi) -> None:
    from switchboard.agi.app import AgiService
    from tests.agi.conftest import agi_settings

    async def scenario(agi: Agi) -> Any:
        await agi.call("verify", [AGENCY, OFFICER, WRONG] * 3)
        await agi.service.stop()
        # a new process, in effect
        fresh = AgiService(agi_settings(), as_service(agi.db_url, "agi"))
        port = await fresh.start()
        try:
            agi2 = Agi(fresh, port, agi.db_url)
            second = await agi2.call("verify", [AGENCY, OFFICER, WRONG] * 2)
            return second, await officer_state(agi2)
        finally:
            await fresh.stop()
    second, state = run_agi(scenario)
    assert second.variables["SB_VERIFIED"] == "locked" and state == (5, True)
