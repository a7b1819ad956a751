"""``switchboard report`` and ``switchboard staffing`` end to end (the CLI as a
process, real PostgreSQL with the recorded runs), and Erlang C itself."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess

import pytest

from switchboard.figures.staffing import agents_needed, erlang_c, service_level
from tests.helpers import CLI, as_service, db_env, fetch, refused
from tests.kpi.test_kpi import oracle


def sb(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/tmp", **db_env(url)}
    return subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_report_json_csv_and_table_agree_with_the_definitions(recorded: str) -> None:
    day = ("--day", "2026-11-28", "--bucket", "day", "--tz", "UTC")
    js = sb(recorded, "report", *day, "--json")
    assert js.returncode == 0, js.stderr
    data = json.loads(js.stdout)
    want = oracle(5, 20, 15)
    for q in data["queues"]:
        assert (q["offered"], q["answered"], q["abandoned"]) == (
            want[q["queue"]]["offered"], want[q["queue"]]["answered"],
            want[q["queue"]]["abandoned"])
    assert {a["member_name"] for a in data["agents"]} >= {"Agent Alice", "Agent Bob"}
    rows = list(csv.reader(io.StringIO(sb(recorded, "report", *day, "--csv").stdout)))
    assert rows[0][:2] == ["bucket", "queue"]  # one table, one header row
    total = next(r for r in rows if r[1] == "(all)")
    assert total[2:5] == ["53", "14", "38"]
    text = sb(recorded, "report", *day)
    assert "(all)" in text.stdout and "18.9%" in text.stdout and "Agent Alice" in text.stdout


def test_a_listener_gap_makes_the_report_fail_loudly(recorded: str) -> None:
    asyncio.run(fetch(recorded, "INSERT INTO listener_gap (gap_key, node, started_at, "
                      "ended_at, reason) VALUES ('\\x01', 'pbx-a', '2026-11-28 03:00+00', "
                      "'2026-11-28 03:05+00', 'test') RETURNING 1"))
    try:
        r = sb(recorded, "report", "--day", "2026-11-28", "--tz", "UTC")
        assert r.returncode == 3
        assert "GAP: listener on pbx-a missed events" in r.stderr
        other = sb(recorded, "report", "--day", "2026-11-27", "--tz", "UTC")
        assert other.returncode == 0 and "GAP" not in other.stderr
        # once the reconciler has made its calls agree with queue_log, it is said,
        # and the figures are trusted
        asyncio.run(fetch(recorded, "UPDATE listener_gap SET reconciled_at = now(), "
                          "backfilled = 2 WHERE gap_key = '\\x01' RETURNING 1"))
        r = sb(recorded, "report", "--day", "2026-11-28", "--tz", "UTC")
        assert r.returncode == 0, r.stderr
        assert "reconciled with queue_log" in r.stderr and "(2 made or corrected)" in r.stderr
    finally:
        asyncio.run(fetch(recorded, "DELETE FROM listener_gap WHERE gap_key = '\\x01' "
                          "RETURNING 1"))


def test_report_refuses_bad_ranges(recorded: str) -> None:
    assert sb(recorded, "report", "--tz", "Mars/Olympus").returncode == 2
    r = sb(recorded, "report", "--from", "2026-11-28T10:00")
    assert r.returncode == 2 and "both --from and --to" in r.stderr


def test_erlang_c_against_known_values() -> None:
    # the example: 700 calls in the peak hour, 4-minute handle time
    need = agents_needed(700, 3600, 240, sl_target=0.8, target_s=20, shrinkage=0)
    assert need.agents == 53 and need.traffic_erlangs == pytest.approx(46.67, abs=0.01)
    assert service_level(52, 700 * 240 / 3600, 240, 20) < 0.8 <= need.service_level
    # textbook: A = 2 Erlangs, 3 agents -> P(wait) = 4/9
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9)
    assert agents_needed(700, 3600, 240, shrinkage=0.3).scheduled == 76
    assert agents_needed(0, 3600, 240).agents == 0


def test_staffing_cli_over_the_recorded_day(recorded: str) -> None:
    r = sb(recorded, "staffing", "--day", "2026-11-28", "--tz", "UTC", "--bucket", "hour")
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.strip().startswith("2026-11-28 09:00"))
    fields = line.split()
    assert fields[2] == "53"  # offered in that hour
    assert int(fields[5]) >= 1  # agents needed
    what_if = sb(recorded, "staffing", "--calls-per-hour", "700", "--aht-s", "240")
    assert "53 agents on the phones" in what_if.stdout
    bad = sb(recorded, "staffing", "--shrinkage", "1.5", "--calls-per-hour", "1",
             "--aht-s", "1")
    assert bad.returncode == 2


def test_reports_read_as_a_role_that_sees_no_pins_or_audit(recorded: str) -> None:
    import asyncpg

    from switchboard.figures.report import reader_settings

    async def probe() -> tuple[str, list[str]]:
        conn = await asyncpg.connect(as_service(recorded, "reports"), **reader_settings())
        try:
            who = await conn.fetchval("SELECT current_user")
            await conn.fetch("SELECT * FROM sb_kpi_queue('2026-11-28', '2026-11-29')")
            not_allowed = await refused(conn, (
                "SELECT pin_hash FROM officer", "SELECT * FROM audit_log",
                "SELECT * FROM case_record", "DELETE FROM queue_call"))
        finally:
            await conn.close()
        return who, not_allowed
    who, not_allowed = asyncio.run(probe())
    assert who == "sb_reports" and len(not_allowed) == 4
