"""Each service logs in as its own role, never as the database owner, and no
SET ROLE / RESET ROLE / SET SESSION AUTHORIZATION gives it more.

Before (issue 11): every service logged in as the owner and took its role with
the ``role`` startup setting; ``SET ROLE NONE`` gave the owner back and every
PIN hash was readable."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
import pytest

from switchboard import db
from switchboard.settings import load
from tests.helpers import as_service, db_env

ESCAPES = ("SET ROLE switchboard", "SET ROLE NONE", "RESET ROLE",
           "SET SESSION AUTHORIZATION switchboard", "SET SESSION AUTHORIZATION DEFAULT",
           "SET ROLE postgres", "RESET ALL")


@pytest.mark.parametrize("service", ["agi", "listener", "reports"])
def test_no_service_can_become_the_owner(service: str, db_url: str) -> None:
    async def attempt() -> tuple[str, list[str], list[str]]:
        conn = await asyncpg.connect(as_service(db_url, service))
        try:
            me = await conn.fetchval("SELECT current_user")
            became = []
            for statement in ESCAPES:
                try:
                    await conn.execute(statement)
                except asyncpg.PostgresError:
                    continue  # refused, as it should be
                # allowed (RESET ROLE, SET ROLE NONE): it must still be the service
                became.append(await conn.fetchval("SELECT current_user"))
            denied = []
            for probe in ("SELECT pin_hash FROM officer", "SELECT * FROM audit_head",
                          "UPDATE officer SET locked_until = NULL", "TRUNCATE audit_log",
                          "SELECT password_hash FROM agent"):
                try:
                    await conn.execute(probe)
                except asyncpg.InsufficientPrivilegeError:
                    denied.append(probe)
            owner_member = await conn.fetchval(
                "SELECT pg_has_role(current_user, d.datdba, 'MEMBER') OR r.rolsuper "
                "FROM pg_database d, pg_roles r WHERE d.datname = current_database() "
                "AND r.rolname = current_user")
            assert owner_member is False
        finally:
            await conn.close()
        return me, became, denied
    me, became, denied = asyncio.run(attempt())
    assert me == db.SERVICE_ROLES[service]
    assert set(became) <= {me}
    assert len(denied) == 5


def test_service_urls_never_hand_out_the_owners_login(db_url: str, tmp_path: Path) -> None:
    settings = load({**db_env(db_url), "SB_STATE_DIR": str(tmp_path)})
    for service, role in db.SERVICE_ROLES.items():
        url = db.service_url(settings, service)
        assert url.startswith(f"postgresql://{role}:") and "switchboard:" not in url
    secrets = Path(os.environ["SB_DB_SECRETS_DIR"])
    assert all((secrets / f"{role}.password").stat().st_mode & 0o077 == 0
               for role in db.SERVICE_ROLES.values())
    # a password file others may read is refused, as the pepper's is
    loose = tmp_path / "sb_agi.password"
    loose.write_text("x\n")
    loose.chmod(0o644)
    with pytest.raises(db.MigrationError, match="readable by others"):
        db.derive_service_url(db_url, "sb_agi", tmp_path)
    # a URL that already is a service's login is not the owner's: refused as a base
    with pytest.raises(db.MigrationError, match="already logs in as sb_agi"):
        db.derive_service_url(as_service(db_url, "agi"), "sb_agi", None)
