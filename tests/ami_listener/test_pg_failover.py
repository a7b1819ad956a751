"""PostgreSQL failover (issue 13): the services take a multi-host connection
string with target_session_attrs=read-write.  Two local clusters in streaming
replication; mid-burst the primary stops and the standby is promoted, as a
failover manager (Patroni, repmgr) would do; the listener keeps spooling,
reconnects to the new primary by itself, and nothing is lost or doubled; the
AGI service verifies a caller before and after, on the same host list."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import asyncpg

from switchboard import db
from switchboard.agi import fakecall
from switchboard.agi.app import AgiService
from switchboard.ami_listener.captures import Capture, Segment
from switchboard.ami_listener.replay import ReplayServer, ServerOptions
from switchboard.ami_listener.service import Listener
from switchboard.pgcluster import LocalCluster, find_bindir, free_port
from tests.agi.conftest import AGENCY, LINE, OFFICER, PIN, agi_settings, seed
from tests.ami_listener.test_faults import assert_whole_burst, counts, kept
from tests.conftest import make_cluster
from tests.helpers import listener_settings


def standby_of(primary: LocalCluster) -> LocalCluster:
    """A streaming replica of ``primary`` (pg_basebackup -R), on its own port."""
    root = Path(tempfile.mkdtemp(prefix="sb-ha-standby-", dir="/tmp"))
    root.chmod(0o755)
    standby = LocalCluster(root=root / "pg", port=free_port())
    standby.root.mkdir()
    standby.root.chmod(0o755)
    for f in primary.root.glob("*.password"):  # the roles (and passwords) replicate
        shutil.copy2(f, standby.root / f.name)
    standby.datadir.mkdir(mode=0o700)
    standby.rundir.mkdir()
    argv = [str(find_bindir() / "pg_basebackup"), "-D", str(standby.datadir), "-h",
            "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "-R", "-X", "stream",
            "-c", "fast"]  # a checkpoint now, not at the next scheduled one
    env = {**os.environ, "PGPASSWORD": primary.superuser_password}
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "postgres:postgres", str(standby.datadir),
                        str(standby.rundir)], check=True)
        argv = ["runuser", "-u", "postgres", "--", *argv]  # keeps PGPASSWORD from env
    subprocess.run(argv, env=env, check=True, capture_output=True, timeout=120)
    with (standby.datadir / "postgresql.conf").open("a") as fh:
        fh.write(f"\nport = {standby.port}\nunix_socket_directories = '{standby.rundir}'\n")
    standby.start()
    return standby


def promote(cluster: LocalCluster) -> None:
    argv = [str(find_bindir() / "pg_ctl"), "-D", str(cluster.datadir), "-w", "promote"]
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    subprocess.run(argv, check=True, capture_output=True, timeout=60)


def test_listener_follows_a_promoted_standby_and_loses_nothing(tmp_path: Path) -> None:
    primary = make_cluster("sb-ha-primary-")
    standby: LocalCluster | None = None
    try:
        async def prepare() -> None:
            conn = await asyncpg.connect(primary.superuser_url())
            await conn.execute(f'CREATE DATABASE ha OWNER "{primary.app_user}"')
            await conn.close()
            await db.migrate(primary.app_url().rsplit("/", 1)[0] + "/ha")
            await seed(primary.app_url().rsplit("/", 1)[0] + "/ha", agi_settings())
        asyncio.run(prepare())
        standby = standby_of(primary)
        hosts = f"127.0.0.1:{primary.port},127.0.0.1:{standby.port}"
        # what a node's SB_DATABASE_URL says; the listener's own login is derived
        # from it as for one host (db.service_url)
        owner = (f"postgresql://{primary.app_user}:{primary.app_password}@{hosts}/ha"
                 "?target_session_attrs=read-write")
        listener_url = db.derive_service_url(owner, "sb_listener", primary.root)
        password = (primary.root / "sb_listener.password").read_text().strip()
        assert listener_url == (f"postgresql://sb_listener:{password}@{hosts}/ha"
                                "?target_session_attrs=read-write")
        owner_new = standby.app_url().rsplit("/", 1)[0] + "/ha"
        burst = Capture.load("f_burst_50_calls").event_frames()
        third = len(burst) // 3

        async def scenario() -> None:
            # one AMI connection: a third now, the rest after the failover
            seg = Segment([(0.0, b"".join(burst[:third])), (6.0, b"".join(burst[third:]))],
                          close_at_end=False)
            server = ReplayServer([seg], ServerOptions(speed=1.0))
            port = await server.start()
            listener = Listener(listener_settings(tmp_path, port, backoff_max_s=0.5),
                                listener_url)
            await listener.start()
            # the AGI service on the same host list: a caller verified before and
            # one after the failover
            agi = AgiService(agi_settings(), db.derive_service_url(owner, "sb_agi",
                                                                   primary.root))
            agi_port = await agi.start()
            verdicts.append((await fakecall.play(fakecall.Call(
                "verify", "pbx-a-1795869500.1", LINE, [AGENCY, OFFICER, PIN],
                fakecall.attested(LINE)),
                agi_port)).variables.get("SB_VERIFIED"))
            try:
                async with asyncio.timeout(90):
                    await listener.wait_idle()
                    await asyncio.to_thread(primary.stop, "immediate")  # the primary dies
                    await asyncio.sleep(1.0)
                    await asyncio.to_thread(promote, standby)  # the failover manager
                    while server.stats.segments_done < 1:
                        await asyncio.sleep(0.05)
                    while (await counts(owner_new))[0] < kept(burst):
                        await asyncio.sleep(0.1)
                    await listener.wait_idle()
                    verdicts.append((await fakecall.play(fakecall.Call(
                        "verify", "pbx-a-1795869500.2", LINE, [AGENCY, OFFICER, PIN],
                fakecall.attested(LINE)),
                        agi_port)).variables.get("SB_VERIFIED"))
                assert server.stats.connections == 1  # the AMI side never noticed
            finally:
                await agi.stop()
                await listener.stop()
                await server.close()
        verdicts: list[str | None] = []
        asyncio.run(scenario())
        # the first verification: before the failover; the second: the AGI
        # service's pool reconnected to the promoted standby by itself
        assert verdicts == ["full", "full"]
        n, distinct = asyncio.run(counts(owner_new))
        assert n == distinct == kept(burst)
        assert_whole_burst(owner_new, burst)
    finally:
        if standby is not None:
            standby.destroy()
            shutil.rmtree(standby.root.parent, ignore_errors=True)
        primary.destroy()
        shutil.rmtree(primary.root.parent, ignore_errors=True)
