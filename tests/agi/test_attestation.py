"""Caller-ID attestation through the real FastAGI service and PostgreSQL: what
the dialplan's SB_ATTEST says reaches the verify handler, decides whether the
registered line counts, and is in the audit row, the panel's words and the
wall board's split.  The policy switch for carriers that send nothing is the
ops command (`switchboard policy set`)."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import pytest

from switchboard.agi import fakecall
from tests.agi.conftest import AGENCY, LINE, OFFICER, OTHER_NUMBER, PIN, Agi, RunAgi, uniqueid
from tests.helpers import CLI, db_env

RIGHT = [AGENCY, OFFICER, PIN]


def verstat(value: str, number: str = LINE) -> dict[str, str]:
    return fakecall.attested(number, value)


# what the carrier gave, from which number -> SB_VERIFIED, SB_CALLER_ID, the
# caller-id audit row's result, with the default policy and with a site that
# lets unattested registered lines count
CASES: list[tuple[str, dict[str, str], str, str, str, str, str]] = [
    ("A attested", verstat("TN-Validation-Passed-A"), LINE,
     "full", "A-passed", "passed", "full"),
    ("B attested", verstat("TN-Validation-Passed-B"), LINE,
     "line-only", "B-passed", "passed", "full"),
    ("C attested", verstat("TN-Validation-Passed-C"), LINE,
     "line-only", "C-passed", "passed", "full"),
    ("passed without a level", verstat("TN-Validation-Passed"), LINE,
     "line-only", "passed", "passed", "full"),
    ("verstat-a carrier, passed", {"SB_ATTEST": f"verstat-a sip:{LINE};"
                                                f"verstat=TN-Validation-Passed@h"}, LINE,
     "full", "A-passed", "passed", "full"),
    ("validation failed", verstat("TN-Validation-Failed"), LINE,
     "line-only", "failed", "failed", "line-only"),
    ("validation failed, A", verstat("TN-Validation-Failed-A"), LINE,
     "line-only", "failed", "failed", "line-only"),
    ("not validated", verstat("No-TN-Validation"), LINE,
     "line-only", "not-validated", "not-validated", "full"),
    ("verdict missing", {"SB_ATTEST": f"verstat sip:{LINE}@h"}, LINE,
     "line-only", "absent", "absent", "full"),
    ("carrier gives nothing", {"SB_ATTEST": "none"}, LINE,
     "line-only", "not-provided", "not-provided", "full"),
    ("identity A", {"SB_ATTEST": "identity 1 A success"}, LINE,
     "full", "A-passed", "passed", "full"),
    ("identity bad signature", {"SB_ATTEST": "identity 1 A signature_validation"}, LINE,
     "line-only", "failed", "failed", "line-only"),
    ("identity unsigned", {"SB_ATTEST": "identity 0"}, LINE,
     "line-only", "not-validated", "not-validated", "full"),
    ("A attested, not a registered line", verstat("TN-Validation-Passed-A", OTHER_NUMBER),
     OTHER_NUMBER, "line-only", "A-passed", "passed", "line-only"),
    ("A verdict on another number", verstat("TN-Validation-Passed-A", OTHER_NUMBER), LINE,
     "line-only", "absent", "absent", "full"),
    ("hostile SB_ATTEST", {"SB_ATTEST": "verstat '; DROP TABLE officer; --"}, LINE,
     "line-only", "absent", "absent", "full"),
    # matched to the carrier but not on its own transport (a forged address):
    # its verdict is not read, it counts as not attested (issue 22)
    ("unproven carrier call", {"SB_ATTEST": "unproven"}, LINE,
     "line-only", "unproven", "unproven", "full"),
]


def set_policy(db_url: str, value: str) -> None:
    out = subprocess.run([str(CLI), "policy", "set", "--unattested-line-counts", value],
                         env={**os.environ, **db_env(db_url)}, capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert f"unattested_line_counts set to {value}" in out.stdout


async def one_call(agi: Agi, variables: dict[str, str], callerid: str
                   ) -> tuple[dict[str, str], list[Any], Any]:
    uid = uniqueid()
    out = await agi.call("verify", RIGHT, callerid=callerid, uid=uid, variables=variables)
    rows = await agi.fetch("SELECT action, result, detail FROM audit_log WHERE uniqueid = $1 "
                           "ORDER BY seq", uid)
    panel = (await agi.fetch("SELECT * FROM sb_panel_verification($1)", uid))[0]
    return out.variables, rows, panel


@pytest.mark.parametrize("trusting", [False, True], ids=["default policy", "unattested counts"])
def test_each_attestation_case_reaches_the_verdict_audit_and_panel(
        run_agi: RunAgi, db_url: str, trusting: bool) -> None:
    if trusting:
        set_policy(db_url, "yes")

    async def scenario(agi: Agi) -> Any:
        return [await one_call(agi, v, n) for _, v, n, *_ in CASES]
    results = run_agi(scenario)
    for case, (got, rows, panel) in zip(CASES, results, strict=True):
        name, _, _, verified, label, result, verified_trusting = case
        want = verified_trusting if trusting else verified
        assert (got["SB_VERIFIED"], got["SB_CALLER_ID"]) == (want, label), name
        # the call's first row is its caller-ID check; every verification row
        # repeats what it found
        assert (rows[0]["action"], rows[0]["result"]) == ("caller-id", result), name
        assert [(r["action"], r["result"]) for r in rows[1:]] == [("verify", want)], name
        for r in rows:
            assert r["detail"].startswith(f"caller-id {result} "), (name, r["detail"])
        # what the agent reads
        assert panel["level"] == want, name
        if result == "failed":
            assert panel["caller_id_failed"] and "FAILED" in panel["caller_id"], name
            assert "FAILED validation" in panel["why"], name
        elif want == "line-only" and got["SB_CALLER_ID"] != "A-passed":
            assert "not attested" in panel["why"], name
        if got["SB_CALLER_ID"] == "A-passed":
            assert panel["caller_id"] == "validated, attestation A", name


def test_a_second_transport_keeps_the_first_check_and_the_board_counts_calls(
        run_agi: RunAgi, db_url: str) -> None:
    """The process-AGI fallback re-runs verify on the same call: the call keeps
    one caller-ID row.  The wall board's split counts calls, not attempts."""
    async def scenario(agi: Agi) -> Any:
        uid = uniqueid()
        first = await agi.call("verify", [AGENCY, fakecall.HANGUP], uid=uid,
                               variables=verstat("TN-Validation-Failed"))
        again = await agi.call("verify", RIGHT, uid=uid,
                               variables=verstat("TN-Validation-Passed-A"))
        for v in ("TN-Validation-Passed-A", "TN-Validation-Passed-B", "No-TN-Validation"):
            await agi.call("verify", RIGHT, variables=verstat(v))
        checks = await agi.fetch("SELECT result FROM caller_id_check WHERE uniqueid = $1", uid)
        split = await agi.fetch("SELECT kind, calls FROM sb_caller_id_split(now() - "
                                "interval '1 hour')")
        return first, again, checks, {r["kind"]: r["calls"] for r in split}
    first, again, checks, split = run_agi(scenario)
    assert first.variables["SB_CALLER_ID"] == "failed"
    # the handler reports what it read, the database keeps the call's first check
    # and decides on it: a failed validation stays failed for the call
    assert [r["result"] for r in checks] == ["failed"]
    assert again.variables["SB_VERIFIED"] == "line-only"
    assert split == {"attested-a": 1, "attested-bc": 1, "not-attested": 1, "failed": 1}


def test_the_policy_is_shown_and_its_change_audited(db_url: str) -> None:
    env = {**os.environ, **db_env(db_url)}
    out = subprocess.run([str(CLI), "policy", "show"], env=env, capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0 and "without an A attestation: no" in out.stdout
    set_policy(db_url, "yes")
    out = subprocess.run([str(CLI), "policy", "show"], env=env, capture_output=True,
                         text=True, check=False)
    assert "without an A attestation: yes" in out.stdout
    out = subprocess.run([str(CLI), "audit", "show", "--limit", "5"], env=env,
                         capture_output=True, text=True, check=False)
    assert "ops-policy-set" in out.stdout and "unattested_line_counts=yes" in out.stdout
    bad = subprocess.run([str(CLI), "policy", "set", "--unattested-line-counts", "maybe"],
                         env=env, capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
