"""The ops commands through the real ``switchboard`` CLI (subprocess), against
real PostgreSQL: PINs from a prompt or stdin (never argv), unlock, audit."""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import asyncpg

from switchboard.agi.validate import with_check_digit
from tests.agi.conftest import PEPPER
from tests.helpers import CLI, db_env

KEYS = Path(tempfile.mkdtemp(prefix="sb-ops-audit-"))  # the audit key and checkpoints
atexit.register(shutil.rmtree, KEYS, True)
(KEYS / "audit.key").write_text("ops test audit key 0123456789abcdefghijklmnop\n")
(KEYS / "audit.key").chmod(0o600)


def sb(db_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), **db_env(db_url),
           "SB_PIN_PEPPER": PEPPER, "SB_ARGON2_TIME_COST": "1",
           "SB_ARGON2_MEMORY_KIB": "8192", "SB_LOG_FORMAT": "json", "HOME": "/tmp",
           "SB_STATE_DIR": str(KEYS), "SB_AUDIT_KEY_FILE": str(KEYS / "audit.key"),
           "SB_AUDIT_ANCHOR_FILE": str(KEYS / f"anchors-{db_url.rsplit('/', 1)[1]}.log")}
    return subprocess.run([str(CLI), *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=60, check=False)


def fetch(db_url: str, sql: str) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(db_url)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()
    return asyncio.run(run())


def test_ops_commands_end_to_end(db_url: str) -> None:
    assert sb(db_url, "agency", "add", "42", "Demo County Sheriff's Office (FAKE)").returncode == 0
    r = sb(db_url, "line", "add", "42", "615-555-0100", "--label", "desk")
    assert r.returncode == 0 and "+16155550100 registered" in r.stdout
    r = sb(db_url, "officer", "add", "42", "1001", "Officer (FAKE)", "--pin-stdin",
           stdin="739184\n")
    assert r.returncode == 0 and "PIN set" in r.stdout
    assert "739184" not in r.stdout + r.stderr
    stored = fetch(db_url, "SELECT pin_hash FROM officer")[0]["pin_hash"]
    assert stored.startswith("$argon2id$v=19$m=8192,t=1,p=1$") and "739184" not in stored

    weak = sb(db_url, "officer", "set-pin", "42", "1001", "--pin-stdin", stdin="123456\n")
    assert weak.returncode == 1 and "run like 123456" in weak.stderr
    short = sb(db_url, "officer", "set-pin", "42", "1001", "--pin-stdin", stdin="9731\n")
    assert short.returncode == 1 and "6 to 12 digits" in short.stderr

    fetch(db_url, "UPDATE officer SET failed_count = 5, locked_until = now() + "
                  "interval '30 minutes'")
    assert "failures 5" in sb(db_url, "officer", "status", "42", "1001").stdout
    assert sb(db_url, "officer", "unlock", "42", "1001").returncode == 0
    assert "failures 0, locked until -" in sb(db_url, "officer", "status", "42",
                                               "1001").stdout

    case = with_check_digit("2026001")
    assert sb(db_url, "case", "add", case, "--priority", "high").returncode == 0
    bad = sb(db_url, "case", "add", case[:-1] + str((int(case[-1]) + 1) % 10))
    assert bad.returncode == 1 and "Luhn" in bad.stderr

    assert sb(db_url, "agency", "suspend", "42").returncode == 0
    assert "SUSPENDED" in sb(db_url, "agency", "list").stdout
    assert sb(db_url, "line", "remove", "+16155550100").returncode == 0

    shown = sb(db_url, "audit", "show", "--officer", "42", "1001").stdout
    for action in ("ops-officer-add", "ops-pin-set", "ops-unlock"):
        assert action in shown
    before = sb(db_url, "audit", "verify")  # no checkpoint yet
    assert before.returncode == 1 and "no checkpoint file" in before.stdout
    anchored = sb(db_url, "audit", "anchor")
    assert anchored.returncode == 0 and "16 checkpoints appended" in anchored.stdout
    ok = sb(db_url, "audit", "verify")
    assert ok.returncode == 0 and "audit log intact: 8 rows, every one signed" in ok.stdout


def test_ops_errors_are_clear(db_url: str) -> None:
    r = sb(db_url, "line", "add", "99", "+16155550100")
    assert r.returncode == 1 and "no agency 99" in r.stderr
    r = sb(db_url, "line", "add", "99", "'; DROP TABLE agency; --")
    assert r.returncode == 1 and "not a telephone number" in r.stderr
    r = sb(db_url, "agency", "add", "4x", "Bad")
    assert r.returncode == 1 and "2-6 digits" in r.stderr
    r = sb(db_url, "officer", "unlock", "42", "1")
    assert r.returncode == 1 and "no officer 42/1" in r.stderr
    r = sb(db_url, "officer", "set-pin", "--help")
    assert r.returncode == 0 and "--pin-stdin" in r.stdout
    assert "pin" not in sb(db_url, "officer", "add", "--help").stdout.split("positional")[1] \
        .split("options")[0].lower()  # the PIN is never an argument


def test_agent_accounts_end_to_end(db_url: str) -> None:
    """Agents are people: their own login and password, stored like PINs
    (argon2id of the peppered text), never shown, every change audited; no
    service may read the table."""
    password = "correct horse battery staple"
    added = sb(db_url, "agent", "add", "jdoe", "Jane Doe (FAKE)", "--interface", "PJSIP/2001",
               "--password-stdin", stdin=password + "\n")
    assert added.returncode == 0, added.stderr
    assert "agent jdoe added (agent, PJSIP/2001)" in added.stdout
    assert sb(db_url, "agent", "add", "boss", "Sam Lead (FAKE)", "--interface",
              "PJSIP/2002", "--role", "supervisor", "--no-password").returncode == 0
    short = sb(db_url, "agent", "set-password", "boss", "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "12 to 128 characters" in short.stderr
    again = sb(db_url, "agent", "add", "jdoe", "X", "--interface", "PJSIP/2009", "--no-password")
    assert again.returncode == 1 and "exists already" in again.stderr
    bad = sb(db_url, "agent", "add", "Robert'); DROP", "X", "--interface", "PJSIP/2010",
             "--no-password")
    assert bad.returncode == 1 and "a login is" in bad.stderr
    assert sb(db_url, "agent", "disable", "jdoe").returncode == 0
    listed = sb(db_url, "agent", "list").stdout
    assert "jdoe" in listed and "DISABLED" in listed and "NO PASSWORD" in listed
    rows = fetch(db_url, "SELECT login, password_hash FROM agent ORDER BY login")
    stored = {r["login"]: r["password_hash"] for r in rows}
    assert stored["boss"] is None and stored["jdoe"].startswith("$argon2id$")
    assert password not in repr(stored) and "$argon2" not in listed
    actions = [r["action"] for r in fetch(db_url, "SELECT action FROM audit_log WHERE action "
                                          "LIKE 'ops-agent-%' ORDER BY at")]
    assert actions == ["ops-agent-add", "ops-agent-password", "ops-agent-add",
                       "ops-agent-disable"]
