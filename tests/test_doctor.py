"""``switchboard doctor`` against the fakes: a loopback AMI server that speaks
the recorded login, Ping and Command bytes, a real database, a real FastAGI
server or none; every check's words and the exit status per severity."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from switchboard.ami_listener.replay import ReplayServer, ServerOptions
from switchboard.console.doctor import required_modules
from switchboard.pgcluster import free_port
from tests.helpers import CLI, db_env

SECRET = "doctor-ami-secret-0123456789"
PEPPER = "doctor-test-pepper-0123456789abcdefghijk"


def fake_asterisk(read: str, down: set[str]) -> Callable[[str], tuple[bool, list[str]]]:
    def command(cli: str) -> tuple[bool, list[str]]:
        if cli == "manager show user ops":
            return True, ["          username: ops", "         read perm: " + read,
                          "        write perm: system,command,config"]
        if cli == "module show":
            return True, [f"{m:<40} Some module   0 "
                          f"{'Not Running' if m in down else 'Running'}  core"
                          for m in required_modules()]
        return True, []
    return command


def doctor(db_url: str, tmp: Path, ami_port: int, agi_port: int,
           **extra: str) -> subprocess.CompletedProcess[str]:
    key = tmp / "audit.key"
    key.write_text("doctor audit key 0123456789abcdefghijklmnop\n")
    key.chmod(0o600)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp), **db_env(db_url),
           "SB_STATE_DIR": str(tmp / "state"), "SB_PIN_PEPPER": PEPPER,
           "SB_AUDIT_KEY_FILE": str(key),
           "SB_AMI_NODES": f"pbx-a@127.0.0.1:{ami_port}", "SB_AMI_USER": "ops",
           "SB_AMI_SECRET": SECRET, "SB_AMI_OPS_ADDR": f"127.0.0.1:{ami_port}",
           "SB_AMI_OPS_SECRET": SECRET, "SB_AGI_LISTEN": f"127.0.0.1:{agi_port}",
           "SB_AGI_DIR": str(tmp / "agi-bin"), "SB_SITE_DIR": str(tmp / "no-site"), **extra}
    return subprocess.run([str(CLI), "doctor"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.parametrize(("case", "status"), [("healthy", 1), ("broken", 2)])
def test_doctor_says_what_is_wrong(db_url: str, tmp_path: Path, case: str,
                                   status: int) -> None:
    queue_log = tmp_path / "queue_log"
    queue_log.write_text("")

    async def main() -> subprocess.CompletedProcess[str]:
        healthy = case == "healthy"
        read = "system,call,agent,user,reporting,security,cdr" if healthy else "system,call"
        server = ReplayServer([], ServerOptions(
            username="ops", secret=SECRET, command=fake_asterisk(
                read, set() if healthy else {"app_queue.so"})))
        ami_port = await server.start()
        agi = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        agi_port = agi.sockets[0].getsockname()[1] if healthy else free_port()
        try:
            return await asyncio.to_thread(
                doctor, db_url, tmp_path, ami_port, agi_port,
                **({"SB_QUEUE_LOG": str(queue_log)} if healthy else {}))
        finally:
            agi.close()
            await server.close()

    r = asyncio.run(main())
    lines = r.stdout.splitlines()
    assert r.returncode == status, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    def has(level: str, area: str, words: str) -> bool:
        return any(line.startswith(level) and f" {area} " in f" {line} " and words in line
                   for line in lines)
    assert has("OK", "database", "functions and views applied")
    for svc, role in (("agi", "sb_agi"), ("listener", "sb_listener"), ("panel", "sb_panel")):
        assert has("OK", "database", f"{svc} logs in as {role}")
    assert has("OK", "ami", "logged in as ops")
    assert has("OK", "clock", "from this host's")
    assert has("OK", "secrets", "PIN pepper present") and has("OK", "secrets", "audit key")
    assert has("WARN", "fastagi", "no process-AGI fallback")  # not installed in the test
    assert has("WARN", "edge", "no site files")  # tests/test_edge.py checks the edge
    if case == "healthy":
        assert has("OK", "modules", "modules the dialplan needs are running")
        assert has("OK", "ami", "reads agent, call, cdr, reporting, security, system, user")
        assert has("OK", "fastagi", "FastAGI answers")
        assert has("OK", "queue_log", "readable")
        assert lines[-1] == "doctor: works, with warnings"
    else:
        assert has("FAIL", "modules", "not running: app_queue.so")
        assert has("FAIL", "ami", "may not read agent, cdr, reporting, security, user")
        assert has("FAIL", "fastagi", "nothing answers")
        assert has("WARN", "queue_log", "no SB_QUEUE_LOG")
        assert lines[-1] == "doctor: FAILED: see the FAIL lines"


def test_doctor_with_nothing_there(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path),
           "SB_DATABASE_URL": f"postgresql://x@127.0.0.1:{free_port()}/none",
           "SB_STATE_DIR": str(tmp_path), "SB_AGI_LISTEN": f"127.0.0.1:{free_port()}",
           "SB_AMI_NODES": f"pbx-a@127.0.0.1:{free_port()}", "SB_AMI_SECRET": "x"}
    r = subprocess.run([str(CLI), "doctor"], env=env, capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "FAIL  database   cannot connect as the owner" in r.stdout
    assert "FAIL  secrets    no PIN pepper" in r.stdout
    assert "FAIL  ami        pbx-a:" in r.stdout
