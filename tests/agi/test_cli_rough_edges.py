"""The operator's command line without rough edges (issue 13): no traceback for
a bad input, errors labelled for what they are, nothing half done, no silent
surprise; exit status 2 for what the operator must fix in a setting or an
option, 1 for what went wrong at run time, 3 for figures a gap may spoil."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from switchboard.agi.validate import with_check_digit
from tests.agi.test_ops_cli import CLI, KEYS, fetch, sb
from tests.helpers import db_env

CASE = with_check_digit("2026001")


def bare(*args: str, env: dict[str, str], stdin: str | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=60, check=False,
                          stdin=subprocess.DEVNULL if stdin is None else None)


def no_traceback(r: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in r.stderr + r.stdout, r.stderr


def test_bad_inputs_get_clear_messages_and_exit_2(db_url: str) -> None:
    r = sb(db_url, "summary", "--since", "notadate")
    no_traceback(r)
    assert r.returncode == 2 and "not an ISO time" in r.stderr
    for url in ("mysql://root@127.0.0.1/x", "garbage"):
        r = subprocess.run([str(CLI), "agency", "list"], capture_output=True, text=True,
                           env={"PATH": os.environ["PATH"], "SB_DATABASE_URL": url},
                           timeout=60, check=False)
        no_traceback(r)
        assert r.returncode == 2 and "postgresql://" in r.stderr
    r = sb(db_url, "dialplan", "check", "--site", "/nonexistent")
    assert r.returncode == 2 and "no such folder" in r.stderr and "database" not in r.stderr
    r = sb(db_url, "audit", "show", "--limit", "0")
    assert r.returncode == 2 and "--limit is 1 to 10000" in r.stderr
    r = sb(db_url, "report", "--day", "2026-11-30", "--from", "2026-11-30T00:00",
           "--to", "2026-11-30T06:00")
    assert r.returncode == 2 and "not both" in r.stderr
    for bad in (["--calls-per-hour", "-5", "--aht-s", "240"],
                ["--calls-per-hour", "100", "--aht-s", "0"], ["--sl-s", "0"]):
        r = sb(db_url, "staffing", *bad)
        no_traceback(r)
        assert r.returncode == 2, (bad, r.stderr)


def test_listen_address_not_known_is_not_a_database_error(db_url: str) -> None:
    env = {**dict(os.environ), **db_env(db_url), "SB_PIN_PEPPER": "p" * 40,
           "SB_AGI_LISTEN": "no-such-host.invalid:4573", "SB_STATE_DIR": str(KEYS)}
    r = bare("agi-server", env=env)
    no_traceback(r)
    assert r.returncode == 2 and "not known" in r.stderr and "database:" not in r.stderr


def test_broken_pipe_is_quiet(db_url: str) -> None:
    sb(db_url, "agency", "add", "42", "Demo (FAKE)")
    for n in range(3):
        sb(db_url, "agency", "add", str(50 + n), f"Other {n} (FAKE)")
    env = {"PATH": os.environ["PATH"], **db_env(db_url), "SB_STATE_DIR": str(KEYS)}
    r = subprocess.run(f"'{CLI}' audit show | head -1", shell=True, env=env,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 1
    assert r.stderr == "", r.stderr


def test_officer_and_pin_are_one_step(db_url: str, tmp_path: Path) -> None:
    assert sb(db_url, "agency", "add", "42", "Demo (FAKE)").returncode == 0
    env = {"PATH": os.environ["PATH"], **db_env(db_url), "SB_STATE_DIR": str(tmp_path),
           "SB_PIN_PEPPER": "p" * 40, "SB_ARGON2_TIME_COST": "1",
           "SB_ARGON2_MEMORY_KIB": "8192"}
    # no terminal and no --pin-stdin: refused before anything is created
    r = bare("officer", "add", "42", "1001", "Officer (FAKE)", env=env)
    no_traceback(r)
    assert r.returncode == 1 and "no terminal" in r.stderr and "--pin-stdin" in r.stderr
    assert fetch(db_url, "SELECT count(*) AS n FROM officer")[0]["n"] == 0
    # no pepper: refused before anything is created
    nopepper = {k: v for k, v in env.items() if k != "SB_PIN_PEPPER"}
    r = bare("officer", "add", "42", "1001", "Officer (FAKE)", "--pin-stdin", env=nopepper,
             stdin="739184\n")
    assert r.returncode == 2 and "pepper" in r.stderr and "added" not in r.stdout
    assert fetch(db_url, "SELECT count(*) AS n FROM officer")[0]["n"] == 0
    # a bad PIN: nothing created either
    r = bare("officer", "add", "42", "1001", "Officer (FAKE)", "--pin-stdin", env=env,
             stdin="123456\n")
    assert r.returncode == 1 and fetch(db_url, "SELECT count(*) AS n FROM officer")[0]["n"] == 0
    # the demo's pepper file in the state directory is used when nothing else is set
    (tmp_path / "pin-pepper").write_text("q" * 48 + "\n")
    (tmp_path / "pin-pepper").chmod(0o600)
    r = bare("officer", "add", "42", "1001", "Officer (FAKE)", "--pin-stdin", env=nopepper,
             stdin="739184\n")
    assert r.returncode == 0 and "PIN set" in r.stdout, r.stderr


def test_case_add_never_changes_a_case_silently(db_url: str) -> None:
    r = sb(db_url, "case", "add", CASE, "--office", "")
    no_traceback(r)
    assert r.returncode == 1 and "office" in r.stderr and CASE not in r.stderr
    assert sb(db_url, "case", "add", CASE, "--priority", "high").returncode == 0
    again = sb(db_url, "case", "add", CASE, "--priority", "normal")
    assert again.returncode == 1 and "exists already" in again.stderr
    assert fetch(db_url, "SELECT priority FROM case_record")[0]["priority"] == "high"
    changed = sb(db_url, "case", "set", CASE, "--priority", "low", "--status", "closed")
    assert changed.returncode == 0 and "case changed" in changed.stdout
    row = fetch(db_url, "SELECT priority, status FROM case_record")[0]
    assert (row["priority"], row["status"]) == ("low", "closed")
    audit = fetch(db_url, "SELECT action, detail FROM audit_log WHERE action LIKE "
                          "'ops-case-%' ORDER BY at")
    assert [a["action"] for a in audit] == ["ops-case-add", "ops-case-set"]
    assert audit[1]["detail"].endswith("priority,status") and CASE not in audit[1]["detail"]
    assert sb(db_url, "case", "set", CASE).returncode == 1  # nothing to change: said so


@pytest.mark.parametrize("table", ["queues", "agents"])
def test_report_csv_is_one_table_and_staffing_tells_of_gaps(db_url: str, table: str) -> None:
    fetch(db_url, "INSERT INTO listener_gap (gap_key, node, started_at, ended_at, reason) "
                  "VALUES ('\\x01', 'pbx-a', now() - interval '1 hour', "
                  "now() - interval '50 minutes', 'test')")
    r = sb(db_url, "report", "--csv", "--table", table)
    assert r.returncode == 3 and "GAP" in r.stderr  # today by default, and the gap in it
    header = r.stdout.splitlines()[0]
    assert header.startswith("bucket,queue" if table == "queues" else "bucket,interface")
    assert sum(1 for line in r.stdout.splitlines() if line == header) == 1
    st = sb(db_url, "staffing")
    assert st.returncode == 3 and "GAP" in st.stderr
