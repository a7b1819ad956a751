"""The audit log against its own database's owner (issue 11): every tampering
the probes did with owner rights and the triggers off, each caught by
``switchboard audit verify`` (exit 1) through the row signatures and the
checkpoints kept outside the database.  Before: each said "intact", exit 0."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from switchboard import auditlog
from switchboard.admin import ops
from switchboard.pgcluster import LocalCluster
from tests.agi.conftest import (
    AGENCY,
    CASE_FOUND,
    OFFICER,
    PIN,
    Agi,
    agi_settings,
    uniqueid,
)
from tests.helpers import db_env

REHASH = """
DO $$
DECLARE r record; prev bytea := sb_audit_genesis(0::smallint); n bigint := 0;
BEGIN
    FOR r IN SELECT seq FROM audit_log WHERE chain = 0 ORDER BY seq LOOP
        n := n + 1;
        UPDATE audit_log SET seq = -n WHERE chain = 0 AND seq = r.seq;
    END LOOP;
    UPDATE audit_log SET seq = -seq WHERE chain = 0;
    FOR r IN SELECT seq FROM audit_log WHERE chain = 0 ORDER BY seq LOOP
        UPDATE audit_log SET prev_hash = prev,
               hash = sb_audit_digest(prev, chain, seq, at, actor, uniqueid, ani, agency,
                                      officer, action, result, detail)
         WHERE chain = 0 AND seq = r.seq RETURNING hash INTO prev;
    END LOOP;
    UPDATE audit_head SET seq = n, hash = prev WHERE chain = 0;
END $$;
"""

# name, what the owner does (then the chain is re-hashed so it checks itself)
TAMPERING = [
    ("edit a field, re-hash the rest",
     "UPDATE audit_log SET result = 'ok-edited' WHERE chain = 0 AND seq = 2", True),
    ("delete a row, renumber, re-hash",
     "DELETE FROM audit_log WHERE chain = 0 AND seq = 3", True),
    ("swap two rows, re-hash",
     "UPDATE audit_log SET seq = -seq WHERE chain = 0 AND seq IN (2, 3); "
     "UPDATE audit_log SET seq = CASE seq WHEN -2 THEN 3 ELSE 2 END "
     "WHERE chain = 0 AND seq IN (-2, -3)", True),
    ("cut the last 3 rows, roll the head back",
     "DELETE FROM audit_log WHERE chain = 0 AND seq > (SELECT seq - 3 FROM audit_head "
     "WHERE chain = 0)", True),
    ("truncate everything, reset the heads",
     "DELETE FROM audit_log; UPDATE audit_head SET seq = 0, "
     "hash = sb_audit_genesis(chain)", False),
    ("append a forged 'verify full' row",
     "SELECT sb_audit_append('agi', 'forged-1', '+16155550100', '42', '1001', 'verify', "
     "'full')", False),
]


def _keyed(tmp: Path) -> dict[str, str]:
    key = tmp / "audit.key"
    key.write_text("an audit key kept outside the database 0123456789\n")
    key.chmod(0o600)
    return {"SB_AUDIT_KEY_FILE": str(key), "SB_AUDIT_ANCHOR_FILE": str(tmp / "anchors.log"),
            "SB_AUDIT_ANCHOR_INTERVAL_S": "0.2"}


def _verify_cli(db_url: str, keyed: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "switchboard.console.cli", "audit", "verify"],
                          env={**os.environ, **db_env(db_url), **keyed}, capture_output=True,
                          text=True, timeout=60, check=False)


def _traffic_then_anchor(db_url: str, tmp: Path, keyed: dict[str, str]) -> None:
    """Seeding through the ops functions with the key (as the ops CLI does),
    calls through the AGI service with the key, checkpoints by the service."""
    from switchboard.agi.app import AgiService
    from tests.helpers import as_service

    async def main() -> None:
        settings = agi_settings(**keyed)
        key = auditlog.settings_key(settings)
        conn = await asyncpg.connect(db_url, server_settings=auditlog.session_settings(key))
        try:
            await seed_with(conn, settings)
        finally:
            await conn.close()
        service = AgiService(settings, as_service(db_url, "agi"))
        port = await service.start()
        try:
            agi = Agi(service, port, db_url)
            for _ in range(2):
                uid = uniqueid()
                await agi.call("verify", [AGENCY, OFFICER, PIN], uid=uid)
                await agi.call("lookup", [CASE_FOUND], uid=uid,
                               variables={"SB_VERIFIED": "full"})
            await asyncio.sleep(0.5)  # a checkpoint or two by the service
        finally:
            await service.stop()  # and one more on the way out
    asyncio.run(main())


async def seed_with(conn: asyncpg.Connection, settings: Any) -> None:
    from switchboard.agi.app import make_hasher
    from tests.agi.conftest import LINE
    hasher = make_hasher(settings)
    await ops.agency_add(conn, AGENCY, "Demo County (FAKE)")
    await ops.line_add(conn, AGENCY, LINE, "US", "desk")
    await ops.officer_add(conn, AGENCY, OFFICER, "Deputy (FAKE)")
    await ops.officer_set_pin(conn, hasher, AGENCY, OFFICER, PIN)
    await ops.case_add(conn, CASE_FOUND, "high", "desk")


async def _tamper(cluster: LocalCluster, db_url: str, sql: str, rehash: bool) -> None:
    conn = await asyncpg.connect(cluster.superuser_url().rsplit("/", 1)[0] + "/"
                                 + db_url.rsplit("/", 1)[1])
    try:
        await conn.execute("SET session_replication_role = replica")  # triggers off
        await conn.execute(sql)
        if rehash:
            await conn.execute(REHASH)
    finally:
        await conn.close()


def test_an_untouched_log_verifies(db_url: str, tmp_path: Path) -> None:
    keyed = _keyed(tmp_path)
    _traffic_then_anchor(db_url, tmp_path, keyed)
    out = _verify_cli(db_url, keyed)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "every one signed" in out.stdout
    assert (tmp_path / "anchors.log").stat().st_mode & 0o077 == 0
    # without the checkpoints a truncated log could not be told from a short one
    gone = _verify_cli(db_url, {**keyed, "SB_AUDIT_ANCHOR_FILE": str(tmp_path / "none")})
    assert gone.returncode == 1 and "no checkpoint file" in gone.stdout


@pytest.mark.parametrize(("sql", "rehash"), [t[1:] for t in TAMPERING],
                         ids=[t[0] for t in TAMPERING])
def test_every_tampering_by_the_owner_is_caught(pg_cluster: LocalCluster, db_url: str,
                                                tmp_path: Path, sql: str,
                                                rehash: bool) -> None:
    keyed = _keyed(tmp_path)
    _traffic_then_anchor(db_url, tmp_path, keyed)
    # the chain alone (what verify checked before) is fooled by the re-hash
    asyncio.run(_tamper(pg_cluster, db_url, sql, rehash))

    async def chain_only() -> bool:
        conn = await asyncpg.connect(db_url)
        try:
            return (await ops.audit_verify(conn)).ok
        finally:
            await conn.close()
    assert asyncio.run(chain_only())
    out = _verify_cli(db_url, keyed)
    assert out.returncode == 1, out.stdout
    assert "NOT intact" in out.stdout


def test_a_forged_checkpoint_is_caught(db_url: str, tmp_path: Path) -> None:
    keyed = _keyed(tmp_path)
    _traffic_then_anchor(db_url, tmp_path, keyed)
    anchors = tmp_path / "anchors.log"
    lines = anchors.read_text().splitlines()
    forged = lines[-1].rsplit(" ", 2)[0] + " " + "00" * 32 + " " + "ab" * 32
    anchors.write_text("\n".join([*lines, forged]) + "\n")
    out = _verify_cli(db_url, keyed)
    assert out.returncode == 1 and "not signed with the audit key" in out.stdout
