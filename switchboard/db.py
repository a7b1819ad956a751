"""Database access shared by the services: URL resolution, the pool, the
service logins; the schema's runner is switchboard/migrate.py (re-exported
here as ``db.migrate``)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from switchboard.configfiles import generated_secret, loose_mode

# the schema's runner, under the name the services know it by (db.migrate)
from switchboard.migrate import MIGRATIONS_DIR as MIGRATIONS_DIR  # noqa: PLC0414
from switchboard.migrate import SQL_DIR as SQL_DIR  # noqa: PLC0414
from switchboard.migrate import Migration as Migration  # noqa: PLC0414
from switchboard.migrate import MigrationError as MigrationError  # noqa: PLC0414
from switchboard.migrate import discover as discover  # noqa: PLC0414
from switchboard.migrate import migrate as migrate  # noqa: PLC0414
from switchboard.pgcluster import LocalCluster
from switchboard.settings import Settings


def local_cluster(settings: Settings) -> LocalCluster:
    """The project's cluster under ``SB_STATE_DIR/pg``.  As root the server runs as
    ``postgres``, which cannot enter e.g. ``/root/...``: then it lives under
    ``/var/lib/switchboard/<hash of the state dir>`` instead."""
    root = settings.state_dir / "pg"
    if os.geteuid() == 0 and not reachable_by_others(settings.state_dir):
        digest = hashlib.sha256(str(settings.state_dir).encode()).hexdigest()[:12]
        root = Path("/var/lib/switchboard") / digest / "pg"
    return LocalCluster(root=root, port=settings.pg_port)


def reachable_by_others(path: Path) -> bool:
    """Every existing ancestor of ``path`` can be entered by any user."""
    for folder in [path, *path.parents]:
        if folder.exists() and not folder.stat().st_mode & stat.S_IXOTH:
            return False
    return True


def database_url(settings: Settings) -> str:
    """``SB_DATABASE_URL`` if set, else the project's local cluster."""
    if settings.database_url:
        return settings.database_url
    cluster = local_cluster(settings)
    if not cluster.initialised():
        raise MigrationError("no SB_DATABASE_URL and no local cluster: run 'make setup' "
                             "(or 'switchboard db up')")
    return cluster.app_url()


# Each service logs in as its own role (sql/migrations/0003, 0005, 0006;
# docs/security.md): never as the owner, so no SET ROLE can give the owner back.
SERVICE_ROLES = {"agi": "sb_agi", "listener": "sb_listener", "reports": "sb_reports",
                 "panel": "sb_panel", "edge": "sb_edge", "recorder": "sb_recorder"}


def service_url(settings: Settings, service: str) -> str:
    """The database URL ``service`` (agi | listener | reports) logs in with:
    ``SB_<SERVICE>_DATABASE_URL`` if set, else SB_DATABASE_URL's (or the local
    cluster's) server and database with the service's role as the user and
    ``<role>.password`` from SB_DB_SECRETS_DIR (the local cluster: its own
    folder) as the password; no file: no password (peer or certificate
    authentication, or ~/.pgpass).  Refuses to hand out the owner's login."""
    role = SERVICE_ROLES[service]
    given = settings.service_urls.get(service)
    if given:
        return given
    secrets_dir = settings.db_secrets_dir
    if settings.database_url:
        base = settings.database_url
    else:
        cluster = local_cluster(settings)
        if not cluster.initialised():
            raise MigrationError("no SB_DATABASE_URL and no local cluster: run 'make setup' "
                                 "(or 'switchboard db up')")
        base = cluster.app_url()
        secrets_dir = secrets_dir or cluster.root
    return derive_service_url(base, role, secrets_dir)


def derive_service_url(base: str, role: str, secrets_dir: Path | None) -> str:
    parts = urlsplit(base)
    password = None
    if secrets_dir is not None and (secrets_dir / f"{role}.password").exists():
        password = read_secret_file(secrets_dir / f"{role}.password")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    if userinfo.split(":", 1)[0] == role:
        raise MigrationError(f"SB_DATABASE_URL already logs in as {role}: give the owner's "
                             "URL (for migrations and ops), or SB_*_DATABASE_URL per service")
    # the hosts as given: one, or several for a failover set-up
    # (host1:5432,host2:5432 with target_session_attrs=read-write in the query)
    netloc = quote(role, safe="")
    if password:
        netloc += ":" + quote(password, safe="")
    netloc += "@" + hosts
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def read_secret_file(path: Path) -> str:
    """A service's password file: refused when its group or others may read it."""
    if (problem := loose_mode(path)) is not None:
        raise MigrationError(f"{problem}: chmod 600 it")
    return path.read_text().strip()


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 8) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size,
                                     command_timeout=30,
                                     server_settings={"application_name": "switchboard"})
    assert pool is not None
    return pool


async def ensure_app_database(cluster: LocalCluster) -> None:
    """Create the application role and database in a local cluster (idempotent)."""
    conn = await asyncpg.connect(cluster.superuser_url())
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1",
                                     cluster.app_user)
        # Role and database names are our own constants; the password is quoted by
        # format('%L') on the server, so nothing here is built from outside input.
        pw_sql = await conn.fetchval("SELECT format('%L', $1::text)", cluster.app_password)
        if not exists:
            await conn.execute(f'CREATE ROLE "{cluster.app_user}" LOGIN PASSWORD {pw_sql}')
        else:
            await conn.execute(f'ALTER ROLE "{cluster.app_user}" PASSWORD {pw_sql}')
        # Each service's own login role, with its own password in a file beside the
        # cluster's (mode 600).  Not members of the owner, so no SET ROLE leads there.
        for role in SERVICE_ROLES.values():
            secret = generated_secret(cluster.root / f"{role}.password")[0]
            pw = await conn.fetchval("SELECT format('%L', $1::text)", secret)
            if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
                await conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD {pw}")
            else:
                await conn.execute(f"ALTER ROLE {role} LOGIN PASSWORD {pw}")
            await conn.execute(f'REVOKE "{cluster.app_user}" FROM {role}')
        # also for a cluster made before this was in its postgresql.conf
        await conn.execute("ALTER SYSTEM SET log_min_error_statement = 'panic'")
        await conn.execute("ALTER SYSTEM SET log_error_verbosity = 'terse'")
        await conn.execute("SELECT pg_reload_conf()")
        has_db = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1",
                                     cluster.database)
        if not has_db:
            await conn.execute(
                f'CREATE DATABASE "{cluster.database}" OWNER "{cluster.app_user}"')
    finally:
        await conn.close()
