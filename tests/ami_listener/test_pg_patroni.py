"""PostgreSQL under Patroni with etcd (issue 23): three etcd members and two
PostgreSQL members managed by Patroni, all on loopback.  Mid-burst the
primary's PostgreSQL and its Patroni are SIGKILLed; Patroni promotes the other
member by itself (nobody runs pg_ctl promote).  The listener keeps spooling,
follows the new primary on its multi-host URL (target_session_attrs=
read-write) and stores every frame once; every call is right; the AGI service
verifies a caller before and after the failover.

The hand-made failover (test_pg_failover.py) stays as the fast one.  Skipped
with one line when Patroni or etcd is not installed (Debian packages patroni,
etcd-server)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from switchboard import db
from switchboard.agi import fakecall
from switchboard.agi.app import AgiService
from switchboard.ami_listener.captures import Capture, Segment
from switchboard.ami_listener.replay import ReplayServer, ServerOptions
from switchboard.ami_listener.service import Listener
from switchboard.pgcluster import LocalCluster, find_bindir, free_port
from tests.agi.conftest import AGENCY, LINE, OFFICER, PIN, agi_settings, seed
from tests.ami_listener.test_faults import assert_whole_burst, counts, kept
from tests.helpers import listener_settings

PATRONI = shutil.which("patroni")
ETCD = shutil.which("etcd")
pytestmark = pytest.mark.skipif(
    PATRONI is None or ETCD is None or os.geteuid() != 0,
    reason="Patroni failover test skipped: needs Patroni and etcd (apt-get install patroni "
           "etcd-server) and root (PostgreSQL runs as 'postgres')")


@dataclass
class Proc:
    name: str
    proc: subprocess.Popen[bytes]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def _start(name: str, argv: list[str], log: Path, *, as_postgres: bool = False) -> Proc:
    if as_postgres:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return Proc(name, proc)


def _until(what: str, check: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(what)
        time.sleep(0.3)


def _rest(port: int, path: str = "/patroni") -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
        return dict(json.load(r))


@pytest.fixture
def patroni_pair() -> Iterator[tuple[LocalCluster, list[dict], list[Proc], Path]]:
    root = Path(tempfile.mkdtemp(prefix="sb-patroni-", dir="/tmp"))
    root.chmod(0o755)
    procs: list[Proc] = []
    members: list[dict] = []
    try:
        # three etcd members
        peers = [(free_port(), free_port()) for _ in range(3)]
        initial = ",".join(f"e{i}=http://127.0.0.1:{p}" for i, (_, p) in enumerate(peers))
        for i, (client, peer) in enumerate(peers):
            data = root / f"etcd{i}"
            procs.append(_start(f"etcd{i}", [
                str(ETCD), "--name", f"e{i}", "--data-dir", str(data),
                "--listen-client-urls", f"http://127.0.0.1:{client}",
                "--advertise-client-urls", f"http://127.0.0.1:{client}",
                "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--initial-cluster-token", "sb-test"], root / f"etcd{i}.log"))
        hosts = [f"127.0.0.1:{c}" for c, _ in peers]

        def etcd_healthy() -> bool:
            r = subprocess.run(["etcdctl", "--endpoints", ",".join(hosts), "endpoint",
                                "health"], capture_output=True, text=True, timeout=10,
                               check=False, env={**os.environ, "ETCDCTL_API": "3"})
            return r.returncode == 0
        _until("etcd never became healthy", etcd_healthy, 60)
        # two PostgreSQL members under Patroni; the passwords as a LocalCluster
        # keeps them (the services' own are added by ensure_app_database)
        keeper = LocalCluster(root=root / "secrets", port=0)
        keeper.root.mkdir()
        replicator = keeper._secret("replicator.password")
        subprocess.run(["chown", "postgres:postgres", str(root)], check=True)
        for i in range(2):
            pg_port, api_port = free_port(), free_port()
            home = root / f"pg{i}"
            home.mkdir(mode=0o700)
            (home / "run").mkdir()
            subprocess.run(["chown", "-R", "postgres:postgres", str(home)], check=True)
            config = {
                "scope": "sbtest", "namespace": "/sb/", "name": f"pg{i}",
                "restapi": {"listen": f"127.0.0.1:{api_port}",
                            "connect_address": f"127.0.0.1:{api_port}"},
                "etcd3": {"hosts": hosts},
                "bootstrap": {
                    # synchronous_mode: a commit is on both members before the
                    # listener forgets its frame (an asynchronous standby loses the
                    # last commits on failover; CI caught it lagging by seconds)
                    "dcs": {"ttl": 8, "loop_wait": 1, "retry_timeout": 3,
                            "synchronous_mode": True,
                            "maximum_lag_on_failover": 16 * 1024 * 1024,
                            "postgresql": {"use_pg_rewind": False,
                                           "parameters": {"wal_level": "replica",
                                                          "max_wal_senders": 5,
                                                          "hot_standby": "on"}}},
                    "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}],
                    "pg_hba": ["local all all trust",
                               "host replication replicator 127.0.0.1/32 scram-sha-256",
                               "host all all 127.0.0.1/32 scram-sha-256"]},
                "postgresql": {
                    "listen": f"127.0.0.1:{pg_port}",
                    "connect_address": f"127.0.0.1:{pg_port}",
                    "data_dir": str(home / "data"), "bin_dir": str(find_bindir()),
                    "pgpass": str(home / "pgpass"),
                    "authentication": {
                        "superuser": {"username": "postgres",
                                      "password": keeper.superuser_password},
                        "replication": {"username": "replicator", "password": replicator}},
                    "parameters": {"unix_socket_directories": str(home / "run")}},
            }
            (home / "patroni.yml").write_text(json.dumps(config))
            subprocess.run(["chown", "postgres:postgres", str(home / "patroni.yml")],
                           check=True)
            members.append({"name": f"pg{i}", "pg_port": pg_port, "api_port": api_port})
            procs.append(_start(f"patroni{i}", [str(PATRONI), str(home / "patroni.yml")],
                                root / f"patroni{i}.log", as_postgres=True))
            if i == 0:  # the first one bootstraps the cluster and leads
                _until("Patroni never made pg0 the primary",
                       lambda port=api_port: _rest(port).get("role") in ("master", "primary"),
                       90)
        _until("pg1 never became pg0's synchronous standby", lambda: any(
            r.get("application_name") == "pg1" and r.get("state") == "streaming"
            and r.get("sync_state") == "sync"
            for r in _rest(members[0]["api_port"]).get("replication") or []), 90)
        keeper = dataclasses.replace(keeper, port=members[0]["pg_port"])
        asyncio.run(db.ensure_app_database(keeper))
        yield keeper, members, procs, root
    finally:
        for p in reversed(procs):
            p.kill(signal.SIGTERM)
        # Patroni stops its PostgreSQL with itself; a SIGKILLed one leaves it
        for home in root.glob("pg*/data"):
            subprocess.run(["runuser", "-u", "postgres", "--", str(find_bindir() / "pg_ctl"),
                            "-D", str(home), "-m", "immediate", "stop"], capture_output=True,
                           check=False, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def _postmaster_pid(home: Path) -> int:
    return int((home / "data" / "postmaster.pid").read_text().split()[0])


def test_patroni_promotes_and_the_services_follow(
        patroni_pair: tuple[LocalCluster, list[dict], list[Proc], Path], tmp_path: Path
) -> None:
    keeper, members, procs, root = patroni_pair
    hosts = ",".join(f"127.0.0.1:{m['pg_port']}" for m in members)
    owner = (f"postgresql://{keeper.app_user}:{keeper.app_password}@{hosts}/"
             f"{keeper.database}?target_session_attrs=read-write")
    asyncio.run(db.migrate(owner))
    asyncio.run(seed(owner, agi_settings()))
    listener_url = db.derive_service_url(owner, "sb_listener", keeper.root)
    burst = Capture.load("f_burst_50_calls").event_frames()
    third = len(burst) // 3
    verdicts: list[str | None] = []
    failover_s: list[float] = []

    async def scenario() -> None:
        seg = Segment([(0.0, b"".join(burst[:third])), (12.0, b"".join(burst[third:]))],
                      close_at_end=False)
        server = ReplayServer([seg], ServerOptions(speed=1.0))
        port = await server.start()
        listener = Listener(listener_settings(tmp_path, port, backoff_max_s=0.5), listener_url)
        await listener.start()
        agi = AgiService(agi_settings(), db.derive_service_url(owner, "sb_agi", keeper.root))
        agi_port = await agi.start()
        verdicts.append((await fakecall.play(fakecall.Call(
            "verify", "pbx-a-1795869600.1", LINE, [AGENCY, OFFICER, PIN],
            fakecall.attested(LINE)), agi_port)).variables.get("SB_VERIFIED"))
        try:
            async with asyncio.timeout(120):
                await listener.wait_idle()
                # the primary dies: its Patroni and its PostgreSQL, SIGKILL
                killed = time.monotonic()
                procs[3].kill()
                os.kill(_postmaster_pid(root / "pg0"), signal.SIGKILL)
                while True:  # Patroni, not us, promotes the other member
                    try:
                        role = await asyncio.to_thread(_rest, members[1]["api_port"])
                    except OSError:
                        role = {}
                    if role.get("role") in ("master", "primary"):
                        failover_s.append(time.monotonic() - killed)
                        break
                    await asyncio.sleep(0.2)
                while server.stats.segments_done < 1:
                    await asyncio.sleep(0.05)
                while (await counts(owner))[0] < kept(burst):
                    await asyncio.sleep(0.1)
                await listener.wait_idle()
                verdicts.append((await fakecall.play(fakecall.Call(
                    "verify", "pbx-a-1795869600.2", LINE, [AGENCY, OFFICER, PIN],
                    fakecall.attested(LINE)), agi_port)).variables.get("SB_VERIFIED"))
            assert server.stats.connections == 1
        finally:
            await agi.stop()
            await listener.stop()
            await server.close()
    asyncio.run(scenario())
    print(f"Patroni promoted pg1 {failover_s[0]:.1f} s after the primary was killed")
    assert verdicts == ["full", "full"]
    n, distinct = asyncio.run(counts(owner))
    assert n == distinct == kept(burst)
    assert_whole_burst(owner, burst)

    async def primary_port() -> int:
        conn = await asyncpg.connect(owner)
        try:
            return int(await conn.fetchval("SHOW port"))
        finally:
            await conn.close()
    assert asyncio.run(primary_port()) == members[1]["pg_port"]
