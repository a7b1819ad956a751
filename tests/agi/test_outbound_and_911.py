"""The outbound gate (toll fraud bounded) and the 911 audit: the handlers
``outbound``, ``outbound-end`` and ``emergency`` over real FastAGI against the
real service and PostgreSQL, as the dialplan's [sb-outbound], its hangup
handler and [sb-emergency-end] call them (issue 22)."""

from __future__ import annotations

from typing import Any

import asyncpg

from switchboard.admin import ops
from switchboard.agi.handlers import node_of
from tests.agi.conftest import LINE, OTHER_NUMBER, Agi, RunAgi, uniqueid


def gate(number: str = LINE, *, purpose: str = "panel", legs: str = "1",
         max_legs: str = "4") -> dict[str, str]:
    """What [sb-outbound] sets before its AGI."""
    return {"SB_OUTBOUND_PURPOSE": purpose, "SB_OUTBOUND_NUMBER": number,
            "SB_OUTBOUND_LEGS": legs, "SB_OUTBOUND_MAX_LEGS": max_legs}


async def set_budget(db_url: str, per_hour: int | None, per_call: int | None = None) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await ops.policy_set_outbound(conn, per_hour, per_call)
    finally:
        await conn.close()


def test_a_call_to_a_registered_line_is_granted_and_its_use_recorded(run_agi: RunAgi) -> None:
    async def scenario(agi: Agi) -> Any:
        uid = uniqueid()
        begin = await agi.call("outbound", [], uid=uid, variables=gate())
        end = await agi.call("outbound-end", [], uid=uid, variables={
            "SB_OUTBOUND_ID": begin.variables["SB_OUTBOUND_ID"],
            "SB_OUTBOUND_ANSWERED_S": "95"})
        again = await agi.call("outbound-end", [], uid=uid, variables={
            "SB_OUTBOUND_ID": begin.variables["SB_OUTBOUND_ID"],
            "SB_OUTBOUND_ANSWERED_S": "95"})
        other_call = await agi.call("outbound-end", [], variables={
            "SB_OUTBOUND_ID": begin.variables["SB_OUTBOUND_ID"],
            "SB_OUTBOUND_ANSWERED_S": "1"})
        legs = await agi.fetch("SELECT node, purpose, number, outcome, granted_s, used_s "
                               "FROM outbound_leg")
        audit = await agi.fetch("SELECT result, detail FROM audit_log WHERE uniqueid = $1 "
                                "AND action = 'outbound'", uid)
        return begin, end, again, other_call, legs, audit
    begin, end, again, other_call, legs, audit = run_agi(scenario)
    # 30 minutes a call at most (the default policy: 120 a hour)
    assert begin.variables == {"SB_OUTBOUND": "granted", "SB_OUTBOUND_GRANT_S": "1800",
                               "SB_OUTBOUND_ID": begin.variables["SB_OUTBOUND_ID"],
                               "SB_OUTBOUND_REASON": ""}
    assert end.variables == {"SB_OUTBOUND_END": "recorded"}
    # once only, and only by the call the grant was for
    assert again.variables == other_call.variables == {"SB_OUTBOUND_END": "unknown"}
    assert [tuple(r) for r in legs] == [("pbx-t", "panel", LINE, "granted", 1800, 95)]
    assert [r["result"] for r in audit] == ["granted"]
    assert "panel to +16155550100" in audit[0]["detail"]


def test_refusals_legs_numbers_and_the_hourly_budget_over_every_node(
        run_agi: RunAgi, db_url: str) -> None:
    async def scenario(agi: Agi) -> Any:
        out: dict[str, Any] = {}
        out["legs"] = await agi.call("outbound", [], variables=gate(legs="5", max_legs="4"))
        out["no legs given"] = await agi.call("outbound", [], variables=gate(legs="x"))
        out["not registered"] = await agi.call("outbound", [], variables=gate(OTHER_NUMBER))
        out["hostile number"] = await agi.call("outbound", [], variables=gate(
            "'; DROP TABLE outbound_leg; --"))
        out["purpose"] = await agi.call("outbound", [], variables=gate(purpose="anything"))
        # three minutes an hour: a first call gets all of them (and reports 95 s
        # used), a second the 85 s left, a third nothing; a call on another node
        # spends the same budget
        await set_budget(db_url, 3)
        first = await agi.call("outbound", [], uid="pbx-a-1795860000.1", variables=gate())
        await agi.call("outbound-end", [], uid="pbx-a-1795860000.1", variables={
            "SB_OUTBOUND_ID": first.variables["SB_OUTBOUND_ID"],
            "SB_OUTBOUND_ANSWERED_S": "95"})
        out["first"] = first
        out["second"] = await agi.call("outbound", [], uid="pbx-b-1795860000.2",
                                       variables=gate(purpose="desk-phone"))
        out["third"] = await agi.call("outbound", [], uid="pbx-a-1795860000.3",
                                      variables=gate())
        out["rows"] = await agi.fetch("SELECT node, outcome, reason, granted_s FROM "
                                      "outbound_leg ORDER BY leg_id")
        out["audit"] = await agi.fetch("SELECT result FROM audit_log WHERE action = "
                                       "'outbound' ORDER BY at, seq")
        out["figures"] = (await agi.fetch("SELECT * FROM sb_edge_figures(now() - interval "
                                          "'1 hour')"))[0]
        return out
    out = run_agi(scenario)

    def said(name: str) -> tuple[str, str]:
        v = out[name].variables
        return v["SB_OUTBOUND"], v["SB_OUTBOUND_REASON"]
    assert said("legs") == ("refused", "legs")
    assert said("no legs given") == ("refused", "legs")
    assert said("not registered") == ("refused", "number")
    assert said("hostile number") == ("refused", "number")
    assert said("purpose") == ("refused", "purpose")
    assert out["first"].variables["SB_OUTBOUND_GRANT_S"] == "180"
    assert said("second") == ("granted", "")
    assert out["second"].variables["SB_OUTBOUND_GRANT_S"] == "85"
    assert said("third") == ("refused", "minutes")
    assert out["third"].variables["SB_OUTBOUND_GRANT_S"] == "0"
    # every decision of the database is a row and an audit row (the unknown
    # purpose never reached it)
    assert [tuple(r) for r in out["rows"]] == [
        ("pbx-t", "refused", "legs", 0), ("pbx-t", "refused", "legs", 0),
        ("pbx-t", "refused", "number", 0), ("pbx-t", "refused", "number", 0),
        ("pbx-a", "granted", None, 180), ("pbx-b", "granted", None, 85),
        ("pbx-a", "refused", "minutes", 0)]
    assert [r["result"] for r in out["audit"]] == ["refused"] * 4 + ["granted"] * 2 + [
        "refused"]
    f = out["figures"]
    assert (f["outbound_granted"], f["outbound_refused"], f["minutes_per_hour"]) == (2, 5, 3)


def test_without_the_database_nothing_goes_out(run_agi: RunAgi) -> None:
    """The AGI role cannot run the gate (as if the database refused): the call
    is told error, which the dialplan treats as refused (fail closed)."""
    async def scenario(agi: Agi) -> Any:
        conn = await asyncpg.connect(agi.db_url)
        try:
            await conn.execute("REVOKE EXECUTE ON FUNCTION sb_agi_outbound_begin(text, text, "
                               "text, text, integer, integer) FROM sb_agi")
            return await agi.call("outbound", [], variables=gate())
        finally:
            await conn.execute("GRANT EXECUTE ON FUNCTION sb_agi_outbound_begin(text, text, "
                               "text, text, integer, integer) TO sb_agi")
            await conn.close()
    out = run_agi(scenario)
    assert out.variables["SB_OUTBOUND"] == "error"
    assert out.variables["SB_OUTBOUND_GRANT_S"] == "0"


def test_a_911_call_is_audited_at_its_end(run_agi: RunAgi) -> None:
    async def scenario(agi: Agi) -> Any:
        uid = uniqueid()
        out = await agi.call("emergency", [], uid=uid, variables={
            "SB_E911_PHONE": "2001", "SB_E911_ELIN": "+16155550190",
            "SB_E911_PLACE": "HQ 100 Main St floor 3 room 301\x07",
            "SB_E911_STATUS": "ANSWER", "SB_E911_ANSWERED_S": "42"})
        audit = await agi.fetch("SELECT actor, action, result, detail FROM audit_log "
                                "WHERE uniqueid = $1", uid)
        return out, audit
    out, audit = run_agi(scenario)
    assert out.variables == {"SB_E911": "recorded"}
    assert [tuple(r) for r in audit] == [
        ("agi", "emergency-911", "answer", "phone 2001 on pbx-t, callback +16155550190, "
         "place HQ 100 Main St floor 3 room 301, answered 42 s")]


def test_the_node_is_the_uniqueids_systemname() -> None:
    assert node_of("pbx-a-1795859365.0") == "pbx-a"
    assert node_of("sb-live-1795859365.12") == "sb-live"
    assert node_of("1795859365.0") == "local"
    assert node_of("'; DROP-1.2") == "local"
