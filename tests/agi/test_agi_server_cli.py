"""``switchboard agi-server`` as a process: it serves the real handlers, and on
SIGTERM stops accepting but lets the call in progress finish, then exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

from switchboard.agi import fakecall
from switchboard.pgcluster import free_port
from tests.agi.conftest import AGENCY, LINE, OFFICER, PEPPER, PIN, agi_settings, seed, uniqueid
from tests.helpers import CLI, db_env


def server_env(db_url: str, port: int, **extra: str) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", ""), **db_env(db_url),
           "SB_PIN_PEPPER": PEPPER, "SB_ARGON2_TIME_COST": "1",
           "SB_ARGON2_MEMORY_KIB": "8192", "SB_AGI_LISTEN": f"127.0.0.1:{port}",
           "SB_LOG_FORMAT": "json", "HOME": "/tmp"}
    env.update(extra)
    return env


def wait_listening(port: int, proc: subprocess.Popen[bytes], limit_s: float = 20) -> None:
    import socket
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "agi-server exited early"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("agi-server did not start listening")


def test_sigterm_lets_the_call_in_progress_finish(db_url: str) -> None:
    asyncio.run(seed(db_url, agi_settings()))
    port = free_port()
    proc = subprocess.Popen([str(CLI), "agi-server"], env=server_env(db_url, port),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_listening(port, proc)

        async def scenario() -> tuple[fakecall.Outcome, bool]:
            call = fakecall.Call("verify", uniqueid(), LINE, [AGENCY, OFFICER, PIN],
                                 fakecall.attested(LINE), key_delay_s=0.4)  # a caller keying slowly
            running = asyncio.ensure_future(fakecall.play(call, port))
            await asyncio.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)
            try:  # no new calls once stopping
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                refused = False
            except OSError:
                refused = True
            return await running, refused
        outcome, refused = asyncio.run(scenario())
        status = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert outcome.variables["SB_VERIFIED"] == "full"
    assert refused and status == 0
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert '"agi_stopped"' in err and PIN not in err


def test_agi_server_without_pepper_says_what_to_do(db_url: str, tmp_path: Path) -> None:
    env = server_env(db_url, free_port())
    del env["SB_PIN_PEPPER"]
    env["SB_STATE_DIR"] = str(tmp_path)  # no demo pepper there to fall back on
    r = subprocess.run([str(CLI), "agi-server"], env=env, capture_output=True, text=True,
                       timeout=30, check=False)
    # a missing setting is a configuration error, like a short pepper (README)
    assert r.returncode == 2 and "SB_PIN_PEPPER_FILE" in r.stderr
    env["SB_PIN_PEPPER"] = "short"
    r = subprocess.run([str(CLI), "agi-server"], env=env, capture_output=True, text=True,
                       timeout=30, check=False)
    assert r.returncode == 2 and "at least 32 characters" in r.stderr
