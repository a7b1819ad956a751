"""The systemd units: their syntax (systemd-analyze verify), and each service
started exactly as its unit's ExecStart does, with the unit's environment and a
notify socket of ours in place of systemd's: READY=1 once it serves, STOPPING=1
and exit 0 on SIGTERM (Type=notify; systemd itself does not run in the test
machine)."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from switchboard.admin import systemd
from switchboard.pgcluster import free_port
from tests.helpers import db_env

BIN = Path(sys.executable).parent
PEPPER = "systemd-test-pepper-0123456789abcdefghijklmn"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_units_verify_clean(tmp_path: Path) -> None:
    for unit in systemd.UNITS:
        path = tmp_path / f"{unit.name}.service"
        path.write_text(systemd.render(unit, BIN))
        r = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                           text=True, timeout=60, check=False)
        assert r.returncode == 0 and r.stderr.strip() == "", (unit.name, r.stderr)
        text = path.read_text()
        for must in ("Type=notify", "NoNewPrivileges=yes", "ProtectSystem=strict",
                     "PrivateTmp=yes", "Restart=on-failure", f"User={unit.user}",
                     "CapabilityBoundingSet=\n"):
            assert must in text, (unit.name, must)


def unit_command(text: str) -> tuple[list[str], dict[str, str]]:
    argv: list[str] = []
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ExecStart="):
            argv = shlex.split(line.split("=", 1)[1])
        elif line.startswith("Environment="):
            key, _, value = line.split("=", 1)[1].partition("=")
            env[key] = value
    return argv, env


@pytest.mark.parametrize("unit", systemd.UNITS, ids=[u.name for u in systemd.UNITS])
def test_each_service_starts_as_its_unit_does_and_says_ready(
        unit: systemd.Unit, db_url: str, tmp_path: Path) -> None:
    argv, unit_env = unit_command(systemd.render(unit, BIN))
    assert argv[0] == str(BIN / "switchboard")
    conf = tmp_path / "switchboard.env"
    settings = {**db_env(db_url), "SB_PIN_PEPPER": PEPPER,
                "SB_AGI_LISTEN": f"127.0.0.1:{free_port()}",
                "SB_AMI_NODES": f"pbx-a@127.0.0.1:{free_port()}", "SB_AMI_SECRET": "x",
                "SB_METRICS_ADDR": "127.0.0.1:0", "SB_WALLBOARD_METRICS_ADDR": "127.0.0.1:0",
                "SB_WALLBOARD_LISTEN": f"127.0.0.1:{free_port()}",
                "SB_WALLBOARD_TOKEN": "t" * 24,
                "SB_PANEL_LISTEN": f"127.0.0.1:{free_port()}",
                "SB_ARGON2_TIME_COST": "1", "SB_ARGON2_MEMORY_KIB": "8192"}
    conf.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    conf.chmod(0o640)
    notify = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify))
        sock.settimeout(30)
        env = {"PATH": os.environ.get("PATH", ""), **unit_env,
               # what systemd would give: its notify socket; the state directory it
               # makes; the configuration file (here a test's own)
               "NOTIFY_SOCKET": str(notify), "SB_STATE_DIR": str(tmp_path / "state"),
               "SB_CONFIG": str(conf)}
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            t0 = time.monotonic()
            ready = sock.recv(256)
            ready_s = time.monotonic() - t0
            os.kill(proc.pid, signal.SIGTERM)
            stopping = sock.recv(256)
            status = proc.wait(40)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    assert ready == b"READY=1", err
    assert stopping == b"STOPPING=1" and status == 0, err
    assert ready_s < 30


@pytest.mark.skipif(os.geteuid() != 0, reason="install writes as root")
def test_install_and_remove_into_a_folder(tmp_path: Path) -> None:
    unit_dir = tmp_path / "units"
    r = subprocess.run([str(BIN / "switchboard"), "systemd", "install", "--unit-dir",
                        str(unit_dir), "--no-users"], capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in unit_dir.iterdir())
    assert files == sorted(f"{u.name}.service" for u in systemd.UNITS)
    assert all((unit_dir / f).stat().st_mode & 0o777 == 0o644 for f in files)
    dry = subprocess.run([str(BIN / "switchboard"), "systemd", "install", "--dry-run"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert dry.returncode == 0 and dry.stdout.count("[Service]") == 4
    gone = subprocess.run([str(BIN / "switchboard"), "systemd", "remove", "--unit-dir",
                           str(unit_dir)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert gone.returncode == 0 and list(unit_dir.iterdir()) == []
