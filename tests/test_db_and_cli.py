"""Migrations, the command line and log redaction."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from switchboard import db, log
from switchboard.log import REDACTED, redact
from tests.helpers import fetch


def test_migrate_twice_is_a_no_op(db_url: str) -> None:
    # the template was migrated already: nothing is pending
    assert asyncio.run(db.migrate(db_url)) == []
    rows = asyncio.run(fetch(db_url, "SELECT name FROM schema_migration ORDER BY version"))
    assert [r["name"] for r in rows] == [p.name for p in sorted(db.MIGRATIONS_DIR.glob("*.sql"))]


def test_an_edited_applied_migration_is_refused(db_url: str, tmp_path: Path) -> None:
    for p in db.MIGRATIONS_DIR.glob("*.sql"):
        shutil.copy(p, tmp_path / p.name)
    first = sorted(tmp_path.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(db.MigrationError, match="changed after it was applied"):
        asyncio.run(db.migrate(db_url, tmp_path))


def test_a_new_migration_is_applied_once(db_url: str, tmp_path: Path) -> None:
    for p in db.MIGRATIONS_DIR.glob("*.sql"):
        shutil.copy(p, tmp_path / p.name)
    (tmp_path / "9999_extra.sql").write_text("CREATE TABLE extra (id int);")
    assert asyncio.run(db.migrate(db_url, tmp_path)) == ["9999_extra.sql"]
    assert asyncio.run(db.migrate(db_url, tmp_path)) == []


def test_badly_named_migration_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_x.sql").write_text("")
    with pytest.raises(db.MigrationError, match="NNNN_lower_snake"):
        db.discover(tmp_path)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "switchboard.console.cli", *args],
                          capture_output=True, text=True, timeout=60, env=env, check=False)


def test_help_texts() -> None:
    out = run_cli("--help")
    assert out.returncode == 0
    for word in ("ami-listener", "demo", "db", "SB_DATABASE_URL", "SB_AMI_NODES"):
        assert word in out.stdout


def test_the_help_is_generated_from_the_parser_and_the_settings() -> None:
    """Issue 25: every command the parser has is in ``--help`` with its help
    line, and every default the help states is what load() gives (it once
    said SB_DEFAULT_REGION defaulted to GB when the code said US)."""
    import argparse
    import re

    from switchboard.console.cli import _parser
    from switchboard.settings import load, site_tz
    out = run_cli("--help", env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert len(sub._choices_actions) >= 25
    for choice in sub._choices_actions:
        assert re.search(rf"\b{re.escape(choice.dest)} {re.escape(choice.help or '')}", text), \
            choice.dest
    stated = dict(re.findall(r"\b(SB_[A-Z_]+)(?:\[_<NODE>\])? [^\n]*?\(default ([^)]+)\)",
                             out.stdout))
    s = load({})
    assert stated["SB_DEFAULT_REGION"] == s.agi.default_region == "US"
    assert stated["SB_PG_PORT"] == str(s.pg_port)
    assert stated["SB_AGI_LISTEN"] == f"{s.agi.host}:{s.agi.port}"
    assert stated["SB_LOG_LEVEL"] == s.log_level
    assert stated["SB_TZ"] == site_tz({})
    assert "docs/configuration.md" in out.stdout
    sub = run_cli("db", "--help")
    assert "migrate" in sub.stdout and sub.returncode == 0


def test_configuration_error_is_clear_and_non_zero(tmp_path: Path) -> None:
    out = run_cli("ami-listener", env={"SB_AMI_NODES": "pbx-a@127.0.0.1",
                                       "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2
    assert "configuration error: no AMI secret for node 'pbx-a'" in out.stderr


def test_listener_without_database_says_what_to_do(tmp_path: Path) -> None:
    out = run_cli("ami-listener", env={"SB_STATE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 1 and "make setup" in out.stderr


def test_redaction_drops_secrets_and_pins() -> None:
    event = {"event": "x", "pin": "123456", "pin_hash": "h", "ami_secret": "s",
             "db_password": "p", "uniqueid": "1.2"}
    assert redact(None, "info", event) == {"event": "x", "pin": REDACTED, "pin_hash": REDACTED,
                                           "ami_secret": REDACTED, "db_password": REDACTED,
                                           "uniqueid": "1.2"}


def test_json_log_lines_never_carry_a_pin(
        json_log_lines: Callable[[], list[dict[str, Any]]]) -> None:
    log.get("test").bind(uniqueid="pbx-a-1.2").info("verify_attempt", pin="987654",
                                                    officer="42")
    line = json_log_lines()[-1]
    assert line["uniqueid"] == "pbx-a-1.2" and line["pin"] == REDACTED
    assert "987654" not in json.dumps(line)


def test_library_loggers_render_as_json_lines_too(
        json_log_lines: Callable[[], list[dict[str, Any]]]) -> None:
    """asyncpg's pool logs through the standard library (with a traceback) when
    PostgreSQL goes away: that line is JSON like ours, with the call's uniqueid."""
    import logging

    import structlog

    with structlog.contextvars.bound_contextvars(uniqueid="pbx-a-1.3"):
        try:
            raise ConnectionRefusedError("refused")
        except ConnectionRefusedError:
            logging.getLogger("asyncpg.pool").warning(
                "Failed to restore the pool connection floor; retrying", exc_info=True)
    line = json_log_lines()[-1]
    assert line["logger"] == "asyncpg.pool" and line["level"] == "warning"
    assert line["uniqueid"] == "pbx-a-1.3"
    assert "ConnectionRefusedError" in line["exception"]


def test_db_url_never_prints_a_password(db_url: str) -> None:
    """``switchboard db url`` is for humans: the owner's password stays in its file."""
    from urllib.parse import urlsplit
    password = urlsplit(db_url).password
    assert password
    out = run_cli("db", "url", env={"PATH": "/usr/bin:/bin", "SB_DATABASE_URL": db_url})
    assert out.returncode == 0 and password not in out.stdout and ":***@" in out.stdout
