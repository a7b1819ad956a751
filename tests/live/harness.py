"""The live tier's pieces: reference data, the services as child processes,
and the ``Live`` handle the scenarios work with (see conftest.py)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from switchboard.agi.validate import with_check_digit
from switchboard.pgcluster import LocalCluster
from tests.live import sipp
from tests.live.node import CLI, LiveNode, asterisk_version, find_asterisk, modules_dir
from tests.live.tap import Tap

PEPPER = "live-pepper-0123456789abcdefghijklmnopqrstuvwxyz"
AGENCY = "42"
PIN = "739184"
WRONG_PIN = "111222"
CASE_HIGH = with_check_digit("2026001")
CASE_NORMAL = with_check_digit("2026002")
CASE_MISSING = with_check_digit("2026999")
# NANP numbers reserved for fiction (555-0100..0199); area code 615 (Nashville)
REGISTERED = [f"+1615555{n:04d}" for n in range(101, 146)]  # the agency's lines
# (615, then 202 and 312: the scenarios together place more calls than 49)
UNREGISTERED = [f"+1{area}555{n:04d}" for area in (615, 202, 312) for n in range(150, 199)]
OFFICERS = [str(n) for n in range(1001, 1021)]
ANSWERING_PHONES = 4  # 2001..2004 answer; 2005 rings and is never answered
RING_MS = 800
TALK_MS = 3000



def skip_reason() -> str | None:
    try:
        binary = find_asterisk()
    except RuntimeError as exc:
        return f"live tier: {exc}"
    if binary is None:
        return ("live tier skipped: no Asterisk (set SB_ASTERISK=/path/to/sbin/asterisk or "
                "put asterisk on PATH)")
    if sipp.SIPP is None:
        return "live tier skipped: no SIPp (apt-get install sip-tester)"
    if os.geteuid() != 0:
        return ("live tier skipped: run as root (it installs the root-owned settings file "
                "of the process-AGI fallback, as on a node)")
    if not re.search(r"(^|[^0-9])22[.-]", asterisk_version(binary)):
        return f"live tier skipped: {binary} is {asterisk_version(binary)!r}, not Asterisk 22"
    missing = [m for m in ("res_srtp.so", "res_security_log.so")
               if not (modules_dir(binary) / m).is_file()]
    if missing:
        return (f"live tier skipped: {binary} was built without {', '.join(missing)} (the "
                "phones' SRTP needs libsrtp2 when Asterisk is built)")
    return None


@dataclass
class Service:
    """A production command (``switchboard agi-server`` ...) as a child process,
    stopped by its PID."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([str(CLI), *self.args], env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            os.kill(proc.pid, sig)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
        return proc.returncode

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Live:
    node: LiveNode
    cluster: LocalCluster
    db_url: str
    env: dict[str, str]
    tap: Tap
    agi: Service
    listener: Service
    sipp_dir: Path
    phones: list[sipp.Sipp] = field(default_factory=list)
    _numbers: Iterator[str] = field(default_factory=lambda: iter(UNREGISTERED))

    @property
    def target(self) -> str:
        """The carrier's transport (callers come from the carrier's address)."""
        return f"127.0.0.1:{self.node.sip_port}"

    @property
    def phone_target(self) -> str:
        """transport-clear: the SIPp desk phones (named legacy phones in clear)."""
        return f"127.0.0.1:{self.node.clear_port}"

    async def fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.db_url, timeout=10)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    def wait_port(self, port: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port),
                                                                         1):
                return
            time.sleep(0.1)
        raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")

    def wait_log(self, service: Service, needle: str, after: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in service.log_text()[after:]:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{service.name} never logged {needle}: "
                           f"{service.log_text()[-1500:]}")

    def start_agi(self) -> None:
        self.agi.start()
        self.wait_port(self.node.agi_port)

    def start_listener(self) -> None:
        mark = len(self.listener.log_text())
        self.listener.start()
        self.wait_log(self.listener, "ami_logged_in", mark)

    def carrier_available(self, timeout_s: float = 15) -> None:
        """Until the carrier's contact answers Asterisk's OPTIONS (qualify): Asterisk
        dials only a contact that does, and nobody listened on the carrier's
        address before a scenario started its SIPp there."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.node.rx("pjsip qualify carrier")
            if re.search(r"carrier/sip:127\.0\.0\.2:5060\s+\S+\s+Avail",
                         self.node.rx("pjsip show contacts")):
                return
            time.sleep(0.3)
        raise RuntimeError(f"the carrier contact never became available: "
                           f"{self.node.rx('pjsip show contacts')}")

    def unregistered_number(self) -> str:
        return next(self._numbers)

    def members(self, queue: str = "intake") -> dict[str, str]:
        """interface -> the rest of its line in ``queue show`` (paused, in use...)."""
        out = {}
        for line in self.node.rx(f"queue show {queue}").splitlines():
            m = re.search(r"\((PJSIP/\d+)\)(.*)$", line)
            if m:
                out[m.group(1)] = m.group(2)
        return out

    async def agents(self, logged_in: list[int]) -> None:
        """Log exactly these phones' agents in (``*11``), the others out (``*12``),
        and unpause them (``*20``), from the desk phones, as agents do."""
        members = self.members()
        for i, p in enumerate(self.node.clear_phones):
            member = f"PJSIP/{p.name}" in members
            if i in logged_in and not member:
                assert await self.feature(i, "*11") == 0
            elif i not in logged_in and member:
                assert await self.feature(i, "*12") == 0
            if i in logged_in and "paused" in members.get(f"PJSIP/{p.name}", ""):
                assert await self.feature(i, "*20") == 0
        want = {f"PJSIP/{self.node.clear_phones[i].name}" for i in logged_in}
        members = self.members()
        assert set(members) == want, members
        assert not any("paused" in v for v in members.values()), members

    async def feature(self, phone: int, code: str) -> int:
        p = self.node.phones[phone]
        proc = sipp.Sipp(f"feature-{p.name}-{code.strip('*')}-{time.monotonic_ns()}",
                         self.sipp_dir, p.ip, self.phone_target,
                         sipp.feature_call(p.name, p.password, code))
        proc.start()
        return await proc.wait(30)


