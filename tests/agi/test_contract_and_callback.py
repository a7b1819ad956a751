"""The callback handler, and the variable contract (switchboard/agi/contract.py) checked
against what every handler really sets and reads on the channel."""

from __future__ import annotations

from typing import Any

from switchboard.agi import contract
from switchboard.agi.fakecall import Outcome
from tests.agi.conftest import AGENCY, CASE_FOUND, LINE, OFFICER, PIN, Agi, RunAgi, uniqueid


def names(out: Outcome, command: str) -> set[str]:
    return {c.split(" ")[2] for c in out.commands if c.startswith(command + " ")}


def test_every_handler_sets_and_reads_what_the_contract_says(run_agi: RunAgi) -> None:
    async def scenario(agi: Agi) -> dict[str, list[Outcome]]:
        uid = uniqueid()
        v = await agi.call("verify", [AGENCY, OFFICER, PIN], uid=uid)
        lk = await agi.call("lookup", [CASE_FOUND], uid=uid, variables=v.variables)
        cb = await agi.call("callback", [], uid=uid, variables=lk.variables)
        failed = await agi.call("verify", ["", "", ""])
        out = await agi.call("outbound", [], uid=uid, variables={
            "SB_OUTBOUND_PURPOSE": "panel", "SB_OUTBOUND_NUMBER": LINE,
            "SB_OUTBOUND_LEGS": "1", "SB_OUTBOUND_MAX_LEGS": "4"})
        end = await agi.call("outbound-end", [], uid=uid, variables={
            "SB_OUTBOUND_ID": out.variables["SB_OUTBOUND_ID"], "SB_OUTBOUND_ANSWERED_S": "3"})
        e911 = await agi.call("emergency", [], uid=uid, variables={
            "SB_E911_PHONE": "2001", "SB_E911_ELIN": "+16155550190", "SB_E911_PLACE": "HQ",
            "SB_E911_STATUS": "ANSWER", "SB_E911_ANSWERED_S": "9"})
        return {"verify": [v, failed], "lookup": [lk], "callback": [cb], "outbound": [out],
                "outbound-end": [end], "emergency": [e911]}
    runs = run_agi(scenario)
    # the desk phone's oob and oob-confirm need an agent on a call: checked in
    # tests/web/test_panel.py (test_desk_phone_calls_the_agency_back_with_star_30)
    assert set(runs) == contract.HANDLERS - {"oob", "oob-confirm"}
    for handler, outs in runs.items():
        sets = set().union(*(names(o, "SET VARIABLE") for o in outs))
        reads = set().union(*(names(o, "GET VARIABLE") for o in outs))
        assert sets == contract.SETS[handler], handler
        assert reads == contract.READS[handler], handler


def test_callback_request_is_a_row_with_the_number_and_the_case_ref(run_agi: RunAgi) -> None:
    async def scenario(agi: Agi) -> Any:
        uid = uniqueid()
        first = await agi.call("callback", [], uid=uid, callerid="(615) 555-0155",
                               variables={"SB_CASE_REF": "C0123456789AB"})
        again = await agi.call("callback", [], uid=uid, callerid="(615) 555-0155")
        withheld = await agi.call("callback", [], callerid="anonymous")
        forged = await agi.call("callback", [], callerid=LINE,
                                variables={"SB_CASE_REF": "'; DROP TABLE x; --"})
        rows = await agi.fetch("SELECT ani, case_ref, status FROM callback_request "
                               "ORDER BY request_id")
        audit = await agi.fetch("SELECT result, detail FROM audit_log WHERE action = "
                                "'callback' ORDER BY at")
        return first, again, withheld, forged, rows, audit
    first, again, withheld, forged, rows, audit = run_agi(scenario)
    assert first.variables == {"SB_CALLBACK": "stored"}
    assert again.variables == {"SB_CALLBACK": "duplicate"}
    assert withheld.variables == {"SB_CALLBACK": "no-number"}
    assert forged.variables == {"SB_CALLBACK": "stored"}
    assert [tuple(r) for r in rows] == [("+16155550155", "C0123456789AB", "open"),
                                        (LINE, None, "open")]
    assert [r["result"] for r in audit] == ["stored", "duplicate", "no-number", "stored"]
