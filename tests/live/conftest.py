"""The live tier: a real Asterisk 22, the project's own dialplan/, SIPp callers
and desk phones, the production ``agi-server`` and ``ami-listener`` commands,
and a PostgreSQL cluster of its own (scenario 7 stops it).

It runs when an Asterisk is installed (``SB_ASTERISK=/path/to/sbin/asterisk``,
or ``asterisk`` on PATH) and SIPp is there (Debian's ``sip-tester``); anywhere
else every test here is skipped with one line that says why.

Set-up, in the order an operator follows (docs/ops.md): reference data in the
database, ``switchboard agi install`` (the process-AGI fallback and its settings
file), ``switchboard dialplan deploy --first-install`` into the node's folder,
Asterisk started, ``switchboard dialplan confirm``; then the services, the
phones REGISTER and log their agents in with ``*11``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from switchboard import auditlog, db
from switchboard.admin import ops
from switchboard.agi.app import make_hasher
from switchboard.pgcluster import free_port
from switchboard.settings import parse_agi
from tests.conftest import make_cluster
from tests.live import sipp
from tests.live.harness import (
    AGENCY,
    ANSWERING_PHONES,
    CASE_HIGH,
    CASE_NORMAL,
    OFFICERS,
    PEPPER,
    PIN,
    REGISTERED,
    RING_MS,
    TALK_MS,
    Live,
    Service,
    skip_reason,
)
from tests.live.node import (
    AMI_PORT,
    SYSTEMNAME,
    LiveNode,
    find_asterisk,
    free_udp_port,
)
from tests.live.tap import Tap


def _seed(db_url: str, audit_key: Path) -> None:
    async def main() -> None:
        settings = parse_agi({"SB_PIN_PEPPER": PEPPER, "SB_ARGON2_TIME_COST": "1",
                              "SB_ARGON2_MEMORY_KIB": "8192",
                              "SB_AUDIT_KEY_FILE": str(audit_key)})
        hasher = make_hasher(settings)
        # as the ops commands do: their audit rows signed with the audit key
        conn = await asyncpg.connect(db_url, server_settings=auditlog.session_settings(
            auditlog.settings_key(settings)))
        try:
            await ops.agency_add(conn, AGENCY, "Demo County Sheriff (FAKE)")
            for number in REGISTERED:
                await ops.line_add(conn, AGENCY, number, "US", "dispatch (fake)")
            for officer in OFFICERS:
                await ops.officer_add(conn, AGENCY, officer, f"Deputy {officer} (FAKE)")
                await ops.officer_set_pin(conn, hasher, AGENCY, officer, PIN)
            await ops.case_add(conn, CASE_HIGH, "high", "national desk")
            await ops.case_add(conn, CASE_NORMAL, "normal", "national desk")
        finally:
            await conn.close()
    asyncio.run(main())


@pytest.fixture(scope="session")
def live() -> Iterator[Live]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    binary = find_asterisk()
    assert binary is not None
    root = Path(tempfile.mkdtemp(prefix="sb-live-", dir="/tmp"))
    root.chmod(0o755)
    cluster = make_cluster("sb-live-pg-")
    db_url = cluster.app_url()
    asyncio.run(db.migrate(db_url))
    node = LiveNode(binary, root / "node", free_udp_port(), free_port())
    node.prepare(n_phones=5)
    tap = Tap(AMI_PORT)  # the listener reaches AMI through it (recorded, can be cut)
    tap.start()
    pepper = root / "pepper"
    pepper.write_text(PEPPER + "\n")
    pepper.chmod(0o600)
    audit_key = root / "audit.key"  # signs the audit rows (outside the database)
    audit_key.write_text("live audit key 0123456789abcdefghijklmnopqrstuvwxyz\n")
    audit_key.chmod(0o600)
    _seed(db_url, audit_key)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root),
           "LANG": "C.UTF-8", "SB_DATABASE_URL": db_url, "SB_DB_SECRETS_DIR": str(cluster.root),
           "SB_STATE_DIR": str(root / "state"),
           "SB_PIN_PEPPER_FILE": str(pepper), "SB_DEFAULT_REGION": "US",
           "SB_AUDIT_KEY_FILE": str(audit_key),
           "SB_AUDIT_ANCHOR_FILE": str(root / "audit-anchors.log"),
           "SB_ARGON2_TIME_COST": "1", "SB_ARGON2_MEMORY_KIB": "8192",
           "SB_LOG_FORMAT": "json", "SB_AGI_LISTEN": f"127.0.0.1:{node.agi_port}",
           "SB_AGI_SHUTDOWN_GRACE_S": "2",
           "SB_AMI_NODES": f"{SYSTEMNAME}@127.0.0.1:{tap.port}", "SB_AMI_USER": "listener",
           "SB_AMI_SECRET": node.listener_secret, "SB_METRICS_ADDR": "127.0.0.1:0",
           "SB_QUEUE_LOG": str(node.queue_log), "SB_RECONCILE_INTERVAL_S": "2",
           "SB_PING_INTERVAL": "1",
           "SB_PING_TIMEOUT": "1", "SB_BACKOFF_INITIAL": "0.2", "SB_BACKOFF_MAX": "1",
           "SB_BATCH_DELAY_MS": "20", "SB_NODE_LOST_S": "30"}
    live = Live(node, cluster, db_url, env, tap,
                Service("agi-server", ["agi-server"], env, root / "agi-server.log"),
                Service("ami-listener", ["ami-listener"], env, root / "ami-listener.log"),
                root / "sipp")
    try:
        installed = node.switchboard("agi", "install", "--agidir", str(node.agidir),
                                     "--config", str(root / "agi.conf"), "--group", "root",
                                     env=env)
        assert installed.returncode == 0, installed.stderr
        deployed = node.switchboard("dialplan", "deploy", "--first-install", "--confdir",
                                    str(node.etc), "--site", str(node.site_src), env=env)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        node.start()
        confirmed = node.switchboard("dialplan", "confirm", "--confdir", str(node.etc),
                                     env=env)
        assert confirmed.returncode == 0, confirmed.stdout + confirmed.stderr
        live.start_agi()
        live.start_listener()
        asyncio.run(_phones_up(live))
        yield live
    finally:
        # every process this tier started, by PID, whatever failed before
        for proc in live.phones:
            proc.kill()
        for stop in (live.listener.stop, live.agi.stop, tap.stop, node.stop, cluster.destroy):
            try:
                stop()
            except Exception as exc:
                print(f"live tier teardown: {stop}: {exc!r}")
        if os.environ.get("SB_LIVE_KEEP"):
            print(f"live tier: files kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
            shutil.rmtree(cluster.root.parent, ignore_errors=True)


async def _phones_up(live: Live) -> None:
    """The SIPp desk phones (legacy phones in clear) register and stay up; the
    TLS phone (pjsua) registers in the edge scenarios that use it."""
    for i, p in enumerate(live.node.clear_phones):
        # the last phone rings and is never answered (an agent away from the desk)
        ring = RING_MS if i < ANSWERING_PHONES else 600_000
        main, ooc = sipp.register_and_answer(p.name, p.password, ring, TALK_MS)
        proc = sipp.Sipp(f"phone-{p.name}", live.sipp_dir, p.ip, live.phone_target, main,
                         ooc)
        proc.start()
        live.phones.append(proc)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        shown = live.node.rx("pjsip show contacts")
        if all(f"{p.name}/sip:{p.name}@{p.ip}" in shown for p in live.node.clear_phones):
            break
        await asyncio.sleep(0.2)
    else:
        raise RuntimeError(f"phones did not register: {live.node.rx('pjsip show contacts')}")
