"""``switchboard agi install``: the process-AGI fallback put into an AGI folder
the way an operator does it, then run as Asterisk runs it (the installed script,
with an environment that is not ours), and its settings file refused whenever
it is missing, not root's, or readable by others: each time a log line and the
fail-closed answer."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from switchboard.agi import fakecall
from tests.agi.conftest import AGENCY, OFFICER, PEPPER, PIN, agi_settings, seed, uniqueid
from tests.helpers import CLI, as_service, db_env

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="installs root-owned files")


def install(tmp: Path, db_url: str, *extra: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    pepper = tmp / "pepper"
    if not pepper.exists():
        pepper.write_text(PEPPER + "\n")
        pepper.chmod(0o640)
    base = {"PATH": os.environ.get("PATH", ""), "HOME": "/tmp", **db_env(db_url),
            "SB_PIN_PEPPER_FILE": str(pepper), "SB_ARGON2_TIME_COST": "1",
            "SB_ARGON2_MEMORY_KIB": "8192"}
    (tmp / "agi-bin").mkdir(exist_ok=True)
    return subprocess.run([str(CLI), "agi", "install", "--agidir", str(tmp / "agi-bin"),
                           "--config", str(tmp / "etc" / "agi.conf"), "--group", "root",
                           *extra], env=env if env is not None else base,
                          capture_output=True, text=True, timeout=60, check=False)


def call(tmp: Path, db_url: str, *, seeded: bool = True) -> tuple[fakecall.Outcome, list[Any]]:
    """One verify call through the installed script, with Asterisk's environment:
    nothing of ours in it, and a decoy database URL that must not be used."""
    async def main() -> tuple[fakecall.Outcome, int, bytes]:
        if seeded:
            await seed(db_url, agi_settings())
        c = fakecall.Call("verify", uniqueid(), "+16155550100", [AGENCY, OFFICER, PIN],
                          fakecall.attested("+16155550100"))
        return await fakecall.play_process(
            c, [str(tmp / "agi-bin" / "switchboard-agi"), "verify"],
            {"PATH": "/usr/bin:/bin", "SB_DATABASE_URL": "postgresql://decoy@127.0.0.1:1/x"})
    outcome, status, err = asyncio.run(main())
    assert status == 0
    return outcome, [json.loads(x) for x in err.decode().splitlines() if x.startswith("{")]


def test_install_then_asterisk_runs_it_with_its_own_environment(tmp_path: Path,
                                                                db_url: str) -> None:
    done = install(tmp_path, db_url)
    assert done.returncode == 0, done.stderr
    script, config = tmp_path / "agi-bin" / "switchboard-agi", tmp_path / "etc" / "agi.conf"
    for path, mode in ((script, 0o750), (config, 0o640)):
        st = path.stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, mode), path
    assert f"wrote {config}" in done.stdout and f"wrote {script}" in done.stdout
    settings = config.read_text()
    # the fallback's own login, never the owner's
    assert f"SB_AGI_DATABASE_URL={as_service(db_url, 'agi')}" in settings
    assert "SB_DATABASE_URL" not in settings.replace("SB_AGI_DATABASE_URL", "")
    assert "SB_PIN_PEPPER_FILE=" in settings
    assert PEPPER not in settings  # the pepper stays in its own file
    outcome, events = call(tmp_path, db_url)
    assert outcome.variables["SB_VERIFIED"] == "full"
    assert {e.get("transport") for e in events if "script" in e} == {"process"}
    # a second install keeps the operator's settings file as it is
    config.write_text(settings + "SB_VERIFY_TRIES=2\n")
    again = install(tmp_path, db_url)
    assert again.returncode == 0 and f"kept {config}" in again.stdout
    assert config.read_text().endswith("SB_VERIFY_TRIES=2\n")


@pytest.mark.parametrize("fault", ["missing", "world-readable", "group-writable",
                                   "not root's", "garbage"])
def test_an_unusable_settings_file_fails_closed_with_a_log_line(tmp_path: Path, db_url: str,
                                                                fault: str) -> None:
    assert install(tmp_path, db_url).returncode == 0
    config = tmp_path / "etc" / "agi.conf"
    if fault == "missing":
        config.unlink()
    elif fault == "world-readable":
        config.chmod(0o644)
    elif fault == "group-writable":
        config.chmod(0o660)
    elif fault == "not root's":
        os.chown(config, 65534, 0)
    else:
        config.write_text(config.read_text() + "PATH=/tmp/evil\n")
    outcome, events = call(tmp_path, db_url)
    assert outcome.variables == {"SB_VERIFIED": "error"}
    assert outcome.commands == ["SET VARIABLE SB_VERIFIED error"]
    [event] = events
    assert event["event"] == "agi_process_cannot_start" and event["config"] == str(config)
    expected = {"missing": "does not exist", "world-readable": "mode 0644",
                "group-writable": "mode 0660", "not root's": "must be owned by root",
                "garbage": "not SB_NAME=value"}[fault]
    assert expected in event["detail"], event


def test_install_refuses_what_it_cannot_do_right(tmp_path: Path, db_url: str) -> None:
    no_pepper = install(tmp_path, db_url, env={"PATH": os.environ.get("PATH", ""),
                                               "HOME": "/tmp", **db_env(db_url)})
    assert no_pepper.returncode == 1 and "SB_PIN_PEPPER_FILE" in no_pepper.stderr
    no_group = install(tmp_path, db_url, "--group", "no-such-group-here")
    assert no_group.returncode == 1 and "no group 'no-such-group-here'" in no_group.stderr
    assert not (tmp_path / "agi-bin" / "switchboard-agi").exists()
    assert not (tmp_path / "etc" / "agi.conf").exists()
