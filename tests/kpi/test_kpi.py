"""The KPI functions (sql/migrations/0005_kpi.sql, defined in sql/kpi.md) over
the recorded runs, checked against figures computed here by hand from
Asterisk's own queue_log for the same calls (an independent record: app_queue
writes it, not our listener)."""

from __future__ import annotations

import asyncio
import statistics
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import fetch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "asterisk"
SINCE, UNTIL = 1795859370, 1795859520  # the queue_log lines of those runs


def oracle(short_s: int, sl_s: int, wrapup_s: int) -> dict[str, dict[str, Any]]:
    """Per queue and '(all)', from queue_log: ENTERQUEUE = offered; CONNECT
    holdtime = wait of an answered call; ABANDON waittime (3rd field) = wait of
    an abandon; EXITWITHTIMEOUT = timeout (its wait is the 3rd field);
    COMPLETE* calltime = talk."""
    calls: dict[tuple[str, str], dict[str, Any]] = {}
    for line in (FIXTURES / "queue_log_ts").read_text().splitlines():
        f = line.split("|")
        if not SINCE <= int(f[0]) <= UNTIL or f[4] not in (
                "ENTERQUEUE", "CONNECT", "ABANDON", "EXITWITHTIMEOUT", "COMPLETECALLER",
                "COMPLETEAGENT"):
            continue
        c = calls.setdefault((f[1], f[2]), {"queue": f[2]})
        if f[4] == "CONNECT":
            c.update(outcome="answered", wait=int(f[5]))
        elif f[4] == "ABANDON":
            c.update(outcome="abandoned", wait=int(f[7]))
        elif f[4] == "EXITWITHTIMEOUT":
            c.update(outcome="timeout", wait=int(f[7]))
        elif f[4].startswith("COMPLETE"):
            c["talk"] = int(f[6])
    out: dict[str, dict[str, Any]] = {}
    for q in {c["queue"] for c in calls.values()} | {"(all)"}:
        cs = [c for c in calls.values() if q in ("(all)", c["queue"])]
        ans = [c for c in cs if c["outcome"] == "answered"]
        short = [c for c in cs if c["outcome"] == "abandoned" and c["wait"] < short_s]
        ab = [c for c in cs if c["outcome"] == "abandoned" and c["wait"] >= short_s]
        within = [c for c in ans if c["wait"] <= sl_s]
        base = len(cs) - len(short)
        out[q] = {
            "offered": len(cs), "answered": len(ans), "abandoned": len(ab),
            "short_abandoned": len(short),
            "timeouts": sum(c["outcome"] == "timeout" for c in cs),
            "answered_within_sl": len(within),
            "asa_s": round(statistics.mean(c["wait"] for c in ans), 1) if ans else None,
            "max_wait_s": max(c["wait"] for c in cs),
            "service_level": round(len(within) / base, 4) if base else None,
            "abandon_rate": round(len(ab) / base, 4) if base else None,
            "aht_s": round(statistics.mean(c["talk"] for c in ans) + wrapup_s, 1)
            if ans else None,
        }
    return out


def kpi(url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in asyncio.run(fetch(url, sql, *args))]


@pytest.mark.parametrize(("short_s", "sl_s", "wrapup_s"), [(5, 20, 15), (25, 10, 0)])
def test_queue_figures_match_queue_log(recorded: str, short_s: int, sl_s: int,
                                       wrapup_s: int) -> None:
    rows = kpi(recorded, "SELECT * FROM sb_kpi_queue('2026-11-28', '2026-11-29', 'day', "
               "'UTC', $1, $2, 'offered_excl_short', $3)", short_s, sl_s, wrapup_s)
    expected = oracle(short_s, sl_s, wrapup_s)
    assert {r["queue"] for r in rows} == set(expected)
    for r in rows:
        got = {k: (float(v) if v is not None and k in ("asa_s", "max_wait_s", "service_level",
                                                         "abandon_rate", "aht_s") else v)
               for k, v in r.items() if k in expected[r["queue"]]}
        want = {k: (float(v) if isinstance(v, (int, float)) and k in (
            "asa_s", "max_wait_s", "service_level", "abandon_rate", "aht_s") else v)
                for k, v in expected[r["queue"]].items()}
        assert got == want, r["queue"]


def test_the_burst_in_numbers(recorded: str) -> None:
    """The 50-call burst: 13 answered, 37 abandoned; none gave up within 5 s (the
    shortest abandon waited 23 s), so short abandons change nothing here."""
    rows = kpi(recorded, "SELECT * FROM sb_kpi_queue($1, $2, 'day', 'UTC')",
               *asyncio.run(_burst_window(recorded)))
    total = next(r for r in rows if r["queue"] == "(all)")
    assert (total["offered"], total["answered"], total["abandoned"],
            total["short_abandoned"]) == (50, 13, 37, 0)
    assert total["max_waiting"] >= 40  # most of the burst waited at the same time


async def _burst_window(url: str) -> tuple[Any, Any]:
    rows = await fetch(url, "SELECT min(entered_at) AS a, max(entered_at) AS b FROM queue_call"
                       " WHERE uniqueid LIKE 'pbx-a-17958594%' AND entered_at >= "
                       "to_timestamp(1795859450)")
    from datetime import timedelta
    return rows[0]["a"], rows[0]["b"] + timedelta(seconds=1)


def test_service_level_variants_and_intervals(recorded: str) -> None:
    by = {r["queue"]: r for r in kpi(
        recorded, "SELECT * FROM sb_kpi_queue('2026-11-28', '2026-11-29', 'day', 'UTC', 5, "
        "20, 'answered')")}
    assert float(by["(all)"]["service_level"]) == round(
        by["(all)"]["answered_within_sl"] / by["(all)"]["answered"], 4)
    buckets = kpi(recorded, "SELECT * FROM sb_kpi_queue('2026-11-28', '2026-11-29', '15min', "
                  "'Europe/Paris')")
    assert all(r["bucket"].minute % 15 == 0 for r in buckets)
    assert sum(r["offered"] for r in buckets if r["queue"] == "(all)") == 53
    hours = kpi(recorded, "SELECT * FROM sb_kpi_queue('2026-11-28', '2026-11-29', 'hour', "
                "'Asia/Kolkata')")
    # Kolkata is UTC+05:30: its hours start at :30 UTC
    assert {r["bucket"].minute for r in hours} == {30}


def test_agent_figures(recorded: str) -> None:
    rows = {r["member_name"]: r for r in kpi(
        recorded, "SELECT * FROM sb_kpi_agent(to_timestamp(1795859370), "
        "to_timestamp(1795859520), 'day', 'UTC', 15)")}
    answered = {n: r["calls_answered"] for n, r in rows.items()}
    # queue_log: CONNECTs per agent
    want: dict[str, int] = {}
    for line in (FIXTURES / "queue_log_ts").read_text().splitlines():
        f = line.split("|")
        if SINCE <= int(f[0]) <= UNTIL and f[4] == "CONNECT":
            want[f[3]] = want.get(f[3], 0) + 1
    assert {n: c for n, c in answered.items() if c} == want
    rna = sum(1 for line in (FIXTURES / "queue_log_ts").read_text().splitlines()
              if line.split("|")[4] == "RINGNOANSWER" and SINCE <= int(line.split("|")[0])
              <= UNTIL)
    assert sum(r["ring_no_answer"] for r in rows.values()) == rna
    for r in rows.values():
        parts = r["available_s"] + r["on_call_s"] + r["ringing_s"] + r["paused_s"]
        assert abs(parts - r["logged_in_s"]) < 1  # the states partition logged-in time
        assert r["logged_in_s"] <= 150
        if r["on_call_s"]:
            assert 0 < r["occupancy"] <= 1


def test_live_waiting_and_agents(recorded: str) -> None:
    rows = {r["queue"]: r for r in kpi(recorded, "SELECT * FROM sb_live_queues()")}
    assert all(r["waiting"] == 0 for r in rows.values())  # every recorded call ended
    assert rows["intake"]["agents_available"] >= 1


def test_overflow_callbacks_short_abandons_and_in_progress(db_url: str) -> None:
    """Hand-made rows for what the recordings lack: a caller who times out of
    intake into overflow and then asks for a callback, a short abandon, and a
    caller still waiting."""
    asyncio.run(fetch(db_url, """
        INSERT INTO queue_call (call_id, node, uniqueid, queue, entered_at, outcome, hold_s,
                                left_at, ended_at)
        VALUES ('\\x01', 'n', 'u1', 'intake',   '2026-11-28 10:00:00+00', 'timeout', 120,
                '2026-11-28 10:02:00+00', '2026-11-28 10:02:00+00'),
               ('\\x02', 'n', 'u1', 'overflow', '2026-11-28 10:02:01+00', 'timeout', 180,
                '2026-11-28 10:05:01+00', '2026-11-28 10:05:01+00'),
               ('\\x03', 'n', 'u2', 'intake',   '2026-11-28 10:01:00+00', 'abandoned', 3,
                '2026-11-28 10:01:03+00', '2026-11-28 10:01:03+00'),
               ('\\x04', 'n', 'u3', 'intake',   '2026-11-28 10:01:30+00', NULL, NULL,
                NULL, NULL)
        RETURNING 1"""))
    asyncio.run(fetch(db_url, "INSERT INTO callback_request (uniqueid, ani, requested_at) "
                      "VALUES ('u1', '+16155550100', '2026-11-28 10:05:05+00') RETURNING 1"))
    rows = {r["queue"]: r for r in kpi(
        db_url, "SELECT * FROM sb_kpi_queue('2026-11-28', '2026-11-29', 'day', 'UTC')")}
    intake, overflow, total = rows["intake"], rows["overflow"], rows["(all)"]
    assert (intake["offered"], intake["timeouts"], intake["overflowed"]) == (3, 1, 1)
    assert (intake["short_abandoned"], intake["abandoned"], intake["in_progress"]) == (1, 0, 1)
    assert intake["abandon_rate"] == 0  # the short abandon is not in it
    assert intake["service_level"] == 0  # 0 answered / (3 - 1 in progress - 1 short)
    assert (overflow["overflowed"], overflow["callbacks"]) == (0, 1)
    assert (total["offered"], total["callbacks"], total["max_waiting"]) == (4, 1, 2)


def test_calls_cut_by_an_asterisk_restart(db_url: str) -> None:
    """sql/kpi.md: a call talking when Asterisk restarted counts as answered; a
    caller still waiting is not offered and in no rate (never a timeout)."""
    asyncio.run(fetch(db_url, """
        INSERT INTO queue_call (call_id, node, uniqueid, queue, entered_at, outcome, hold_s,
                                talk_s, answered_at, ended_at, complete_reason)
        VALUES ('\\x01', 'n', 'u1', 'intake', '2026-11-28 10:00:00+00', 'answered', 10, 60,
                '2026-11-28 10:00:10+00', '2026-11-28 10:01:10+00', 'agent'),
               ('\\x02', 'n', 'u2', 'intake', '2026-11-28 10:00:05+00', 'cut', 8, 30,
                '2026-11-28 10:00:13+00', '2026-11-28 10:00:43+00', 'restart'),
               ('\\x03', 'n', 'u3', 'intake', '2026-11-28 10:00:20+00', 'cut', 23, NULL,
                NULL, '2026-11-28 10:00:43+00', 'restart')
        RETURNING 1"""))
    [row] = [r for r in kpi(db_url, "SELECT * FROM sb_kpi_queue('2026-11-28', '2026-11-29',"
                                    " 'day', 'UTC')") if r["queue"] == "intake"]
    assert (row["offered"], row["answered"], row["abandoned"], row["timeouts"]) == (2, 2, 0, 0)
    assert row["service_level"] == 1 and row["abandon_rate"] == 0
    agents = kpi(db_url, "SELECT * FROM sb_call_fact ORDER BY uniqueid")
    assert [(a["uniqueid"], a["outcome"]) for a in agents] == [("u1", "answered"),
                                                              ("u2", "answered")]
