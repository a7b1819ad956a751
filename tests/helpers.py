"""Shared test helpers: listener settings, running the listener against a
replay server, reading rows back."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from switchboard import db
from switchboard.ami_listener.captures import Segment
from switchboard.ami_listener.queue_log import QueueLogCall
from switchboard.ami_listener.replay import ReplayServer, ServerOptions
from switchboard.ami_listener.service import Listener
from switchboard.dialplan_tools.edge import EDGE_DIR
from switchboard.pgcluster import free_port
from switchboard.settings import AmiNode, load

CLI = Path(sys.executable).parent / "switchboard"  # the installed command
TEN_YEARS = 10 * 365 * 86400.0  # the captures' Timestamps are from 2026-11-28
CLUSTER_ROOTS: dict[int, Path] = {}  # test clusters by port (tests/conftest.make_cluster)


def db_env(owner_url: str) -> dict[str, str]:
    """The environment of a command run against a test cluster: the owner's URL
    (ops commands, migrations) and where each service's password is."""
    port = urlsplit(owner_url).port
    assert port is not None
    return {"SB_DATABASE_URL": owner_url, "SB_DB_SECRETS_DIR": str(CLUSTER_ROOTS[port])}


def as_service(owner_url: str, service: str) -> str:
    """The login ``service`` (agi | listener | reports) has on the test cluster of
    ``owner_url``: what db.service_url gives a real deployment."""
    port = urlsplit(owner_url).port
    assert port is not None
    return db.derive_service_url(owner_url, db.SERVICE_ROLES[service], CLUSTER_ROOTS[port])


def listener_process_env(db_url: str, tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of ``switchboard ami-listener`` run as a process (to be
    SIGKILLed) against a replay server: quick reconnects, JSON logs."""
    return {**os.environ, "SB_DATABASE_URL": db_url, "SB_STATE_DIR": str(tmp),
            "SB_AMI_SECRET": "listenerpass", "SB_METRICS_ADDR": "127.0.0.1:0",
            "SB_BACKOFF_INITIAL": "0.05", "SB_BACKOFF_MAX": "0.3", "SB_LOG_FORMAT": "json",
            **extra}


def listener_settings(tmp: Path, port: int, *, node: str = "lab", **overrides: Any) -> Any:
    base = load({"SB_STATE_DIR": str(tmp), "SB_METRICS_ADDR": "127.0.0.1:0"}).listener
    values: dict[str, Any] = {
        "nodes": (AmiNode(node, "127.0.0.1", port, "listener", "listenerpass"),),
        "spool_dir": tmp / "spool", "batch_delay_s": 0.01, "ping_interval_s": 2.0,
        "ping_timeout_s": 2.0, "backoff_initial_s": 0.05, "backoff_max_s": 0.3,
        "connect_timeout_s": 2.0, "max_skew_s": TEN_YEARS,
    }
    values.update(overrides)
    return dataclasses.replace(base, **values)


def nodes_settings(tmp: Path, ports: dict[str, int], **overrides: Any) -> Any:
    """listener_settings for one listener reading several nodes (name -> AMI port)."""
    return listener_settings(tmp, 0, nodes=tuple(
        AmiNode(name, "127.0.0.1", port, "listener", "listenerpass")
        for name, port in ports.items()), **overrides)


async def ingest(db_url: str, tmp: Path, segments: list[Segment], *,
                 options: ServerOptions | None = None, node: str = "lab",
                 until: Callable[[], Awaitable[bool]] | None = None,
                 **overrides: Any) -> tuple[Listener, ReplayServer]:
    """Replay ``segments`` (one per connection) into the real listener and wait
    until everything that arrived is committed (and ``until`` says yes: what
    the listener does on a schedule, the reconciler, comes later)."""
    server = ReplayServer(segments, options or ServerOptions(speed=None))
    port = await server.start()
    listener = Listener(listener_settings(tmp, port, node=node, **overrides),
                        as_service(db_url, "listener"))
    await listener.start()
    try:
        async with asyncio.timeout(60):
            while server.stats.segments_done < len(segments):
                await asyncio.sleep(0.02)
            await listener.wait_idle(settle_s=0.3)
            while until is not None and not await until():
                await asyncio.sleep(0.05)
    finally:
        await listener.stop()
        await server.close()
    return listener, server


async def fetch(db_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(db_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


CALL_COLUMNS = ("queue", "uniqueid", "caller_num", "position", "outcome", "member_interface",
                "hold_s", "ring_s", "talk_s", "rna_count", "complete_reason")


async def calls(db_url: str) -> list[dict[str, Any]]:
    rows = await fetch(db_url, "SELECT * FROM queue_call ORDER BY entered_at, uniqueid")
    return [{k: r[k] for k in CALL_COLUMNS} for r in rows]


async def intervals(db_url: str) -> list[tuple[Any, ...]]:
    rows = await fetch(db_url, "SELECT queue, interface, state, reason, ended_at IS NULL AS open"
                       " FROM agent_state ORDER BY start_seq, started_at, queue, interface")
    return [tuple(r) for r in rows]


async def refused(conn: asyncpg.Connection, statements: list[str] | tuple[str, ...]
                  ) -> list[str]:
    """The statements the connection's role may not run (InsufficientPrivilege)."""
    out = []
    for sql in statements:
        try:
            await conn.execute(sql)
        except asyncpg.InsufficientPrivilegeError:
            out.append(sql)
    return out


def want_of(q: QueueLogCall, cut_at: float | None = None) -> dict[str, Any]:
    """What the database row of a queue_log call must say.  ``cut_at``: when
    Asterisk was told to shut down or restart; a call still queued or talking
    then must say ``cut`` (queue_log writes an ordinary ABANDON or
    COMPLETEAGENT: AMI knows better)."""
    outcome: str | tuple[str | None, ...] | None = q.outcome
    if (cut_at is not None and q.outcome in ("abandoned", "answered", "transferred")
            and q.entered_at is not None and q.entered_at <= cut_at + 1
            and q.ended_at is not None and q.ended_at >= int(cut_at)):
        # a real timeout in the same second stays a timeout; a call that ended in
        # the very second of the restart (queue_log counts whole seconds) may have
        # ended just before it: either is right
        outcome = "cut" if q.ended_at > int(cut_at) else ("cut", q.outcome)
    return {"outcome": outcome, "hold_s": q.hold_s, "talk_s": q.talk_s,
            "rna_count": q.rna_count, "member_name": q.member_name}


def _agrees(got: dict[str, Any], want: dict[str, Any]) -> bool:
    return all(got[k] in w if isinstance(w, tuple) else got[k] == w for k, w in want.items())


def judge_calls(logged: dict[tuple[str, str], QueueLogCall],
                rows: dict[tuple[str, str], dict[str, Any]], *, cut_at: float | None = None
                ) -> tuple[int, list[str]]:
    """Every queued call in the database against queue_log: the same calls, the
    same outcome, hold time, talk time, ring-no-answers and agent, and closed.
    A call the queue refused at the door (joined-empty) is in the database
    only (app_queue logs nothing for it).  Returns (calls right, every
    difference); the calls in all are their sum."""
    logged = {k: q for k, q in logged.items() if q.entered_at is not None}
    problems: list[str] = []
    right = 0
    for key, row in sorted(rows.items()):
        q = logged.get(key)
        if row["outcome"] == "joined-empty":
            if q is None:
                right += 1
            else:
                problems.append(f"{key}: joined-empty in the database but queue_log has it")
            continue
        if q is None:
            problems.append(f"{key}: in the database ({row['outcome']}) but not in queue_log")
            continue
        want = want_of(q, cut_at)
        got = {k: row[k] for k in want}
        if not _agrees(got, want):
            problems.append(f"{key}: database {got} != queue_log {want}")
        elif row["ended_at"] is None:
            problems.append(f"{key}: still open in the database")
        else:
            right += 1
    problems += [f"{key}: in queue_log ({q.outcome}) but not in the database"
                 for key, q in sorted(logged.items()) if key not in rows]
    return right, problems


# Browser tests: Debian's Chromium driven by Playwright (no browser download),
# with the flags this machine's closed network needs; screenshots kept here.
ARTIFACTS = Path(os.environ.get("SB_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[1] / "test-artifacts"))
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextlib.contextmanager
def fail2ban(confdir: Path, env: dict[str, str]) -> Iterator[Path]:
    """A fail2ban server of the test's own (its folder, socket, pid file and
    database), stopped by its PID."""
    sock, pid = confdir / "f2b.sock", confdir / "f2b.pid"
    (confdir / "fail2ban.conf").write_text(
        f"[Definition]\nloglevel = INFO\nlogtarget = {confdir / 'fail2ban.log'}\n"
        f"socket = {sock}\npidfile = {pid}\ndbfile = {confdir / 'f2b.sqlite3'}\n")
    (confdir / "jail.conf").write_text("[DEFAULT]\n")
    started = subprocess.run(["fail2ban-client", "-c", str(confdir), "-s", str(sock), "-p",
                              str(pid), "start"], capture_output=True, text=True, timeout=60,
                             env=env, check=False)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield sock
    finally:
        subprocess.run(["fail2ban-client", "-s", str(sock), "stop"], capture_output=True,
                       timeout=30, check=False)
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
            os.kill(int(pid.read_text().strip()), signal.SIGKILL)


# --- the SIP edge (tests/test_edge.py, tests/test_doctor.py) ----------------------------
EDGE_CARRIER, EDGE_PHONE = "127.0.0.2", "127.0.0.3"


def udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_site(tmp: Path, **edge: str) -> tuple[Path, dict[str, int]]:
    """The example site on loopback: the carrier at 127.0.0.2, a legacy phone in
    clear at 127.0.0.3 (2009), TLS phones from anywhere; free ports; a table of
    the test's own."""
    site = tmp / "site"
    shutil.copytree(EDGE_DIR.parent / "site.example", site)
    ports = {"carrier": udp_port(), "clear": udp_port(), "tls": free_port()}
    (site / "transports.conf").write_text(
        f"[transport-tls]\ntype = transport\nprotocol = tls\nbind = 127.0.0.1:{ports['tls']}\n"
        "cert_file = /etc/asterisk/secrets/tls/sip.crt\n"
        "priv_key_file = /etc/asterisk/secrets/tls/sip.key\n\n"
        f"[transport-carrier]\ntype = transport\nprotocol = udp\n"
        f"bind = 127.0.0.1:{ports['carrier']}\n\n"
        f"[transport-clear]\ntype = transport\nprotocol = udp\n"
        f"bind = 127.0.0.1:{ports['clear']}\n")
    trunk = (site / "trunk.conf").read_text().replace("192.0.2.10", EDGE_CARRIER)
    (site / "trunk.conf").write_text(trunk)
    globals_ = (site / "globals.conf").read_text().replace(
        "CARRIER_PORT=5060", f"CARRIER_PORT={ports['carrier']}")
    (site / "globals.conf").write_text(globals_)
    (site / "phones.conf").write_text(
        (site / "phones.conf").read_text().replace(
            '#include "/etc/asterisk/secrets/phones.conf"',
            '[2009](sb-phone-clear,loc-hq-3)\nauth = 2009-auth\naors = 2009\n'
            f"deny = 0.0.0.0/0.0.0.0\npermit = {EDGE_PHONE}/255.255.255.255\n\n"
            '[2009](sb-phone-aor)\n\n#include "/etc/asterisk/secrets/phones.conf"'))
    values = {"carrier_link": "firewall", "site_networks": "127.0.0.64/26",
              "phones_from": "any", "ban_after": "3", "ban_window_min": "1",
              "ban_minutes": "1", "nft_table": f"sbtest{os.getpid()}_{ports['carrier']}",
              "clear_phones": "2009", **edge}
    (site / "edge.conf").write_text("[edge]\n" + "".join(f"{k} = {v}\n"
                                                        for k, v in values.items()))
    return site, ports


def delete_table(name: str) -> None:
    subprocess.run(["nft", "delete", "table", "inet", name], capture_output=True, check=False)
