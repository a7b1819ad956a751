"""The schema, applied by ``switchboard db migrate``.

Two kinds of plain SQL file (docs/architecture.md, "SQL: numbered and
repeatable"):

- ``sql/migrations/NNNN_name.sql``: tables, indexes, roles and data changes.
  Each is applied once, in its own transaction, and its checksum recorded in
  ``schema_migration``; a changed file that was already applied is an error.
- ``sql/functions/NAME.sql`` and ``sql/views/NAME.sql``: one function or view
  each (its definition, its settings, its triggers, who may run it), as
  ``CREATE OR REPLACE``.  A file is applied again whenever its text changes
  (``schema_definition`` keeps the checksum of what was applied), so changing
  a function is a diff of that one file -- the pattern of Flyway's repeatable
  ``R__`` scripts.  They are applied after the pending migrations, except that
  a migration that names a function or view gets it first (an index on
  ``sb_wait_span``, a backfill that calls ``sb_kpi_binof``), with
  ``check_function_bodies`` off as pg_dump does, so their order does not
  matter.  Changing a function's arguments or result type (which ``CREATE OR
  REPLACE`` refuses) takes a numbered migration that drops the old one.

Everything runs under one advisory lock, so nodes migrating at once wait.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from switchboard.resources import data_dir

SQL_DIR = data_dir("sql")
MIGRATIONS_DIR = SQL_DIR / "migrations"
DEFINITION_DIRS = ("functions", "views")  # under sql/, applied in this order
_MIGRATION_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_DEFINITION_RE = re.compile(r"^([a-z][a-z0-9_]*)\.sql$")
_LOCK_KEY = 0x5B_4D_16  # advisory lock id for the migration runner

# Issue 25 took every function and view out of migrations 0001-0026 into
# sql/functions and sql/views.  A database that applied them before has
# these checksums recorded; they are accepted once and replaced by the new
# ones (the schema they built is the same: tests/test_sql_definitions.py
# compares pg_dump of both).
REBASED = {
    1: "6a8d7ef76e8b7afb9532cbd74738c89f4e6cdeb8c7093263b7b5d309d66494f3",
    3: "9f9d455c6648819c49a8ab627e16a41f57ee7369dc3726569ae15ad6c0398b6e",
    4: "ecd2cc0833b9080a5a413e23064b8d2b8b01d18a9be865115459b28764d7257e",
    5: "9edc0c563fb3926d8fd96adc5486f4944838995b47097508d98645f088b1f114",
    6: "40be86dd6fd4483a007f437bd9ec1099e9f0270d565aed300300295b71ec63b0",
    7: "991dea3ebd0116e6ef7f769b45c603c70f54ddbcf3128e24ff4b6f6b674cef3a",
    8: "f970c3552dbc1daffaf1bec40ab224df74252d292eb1e68ac049cfa3ead23c86",
    9: "d55a276689337d2e94868d790264cbc55e2e71e3568b3893526ccd0877758eb5",
    10: "409becd23959322796e5cdad48ba5c1f47e1dafc0cc6bc92385785332f8171a7",
    12: "d6058ee1b7cc07528ce0b481d5b6c7d901eaf0da6562605dede0f949dbc8b426",
    13: "468e1208f16fc591c27fe6e2a122633b9900fdbae7dd1a6524e245dd72edb271",
    14: "1612c5206a30e77440ec020f89eaa47f06bd3cd7e4a89f56077f8d5e6bbe6a92",
    15: "f162d71171235a7d9fa05847c75adf17cebc08c476e39033c02e87b1b3398ec4",
    17: "7349404cdd888f7ac65257d5bda998ec1aa7384d2c2db2f8c0ac4cffd0015beb",
    18: "2d0f3c9d6ba0842a82d293998d7fd47c6451e191a16aac35e06fb4674b780706",
    19: "cb404428efb81313474c077fab3ec5746eff3dd0dd5b785f24fd2a4ab89e9415",
    20: "0469697a8ca0e79d91ace8d3df4a30ff285cc1dfda5b2ea0aab1b6f88a722642",
    21: "0f934af71b17baf0305fc990a977df13d27ebc3290a816323580cd7bd80b67c1",
    22: "08672895f689114d4a83f957de7d12c1b82f751dfc1e499fd3c317250c6d8cd4",
    23: "58f20b8d7cb5cbcaaad83d22823a0e7f9f65f6e810db0189d2b2a6c693181fa6",
    24: "49984f3c5a6b1066a2e9276afa58c0ed8bfa4a231f92e1d31c50443652dd2385",
    25: "7334e72f8b73359687db19b77585e4442782329e21016f38a5d5dd1dc859ecb6",
    26: "a81f573a0bfeeeb39dace3465882a84770feb1ca0a34bf4a62bfaa6ed84c8fc1",
}


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class Definition:
    """One function or view: ``name`` is its file under sql/ (functions/x.sql),
    ``object`` the function's or view's own name (the file's stem)."""

    name: str
    object: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        m = _MIGRATION_RE.match(path.name)
        if not m:
            raise MigrationError(f"{path}: migration files are named NNNN_lower_snake.sql")
        found.append(Migration(int(m.group(1)), path.name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a number in {directory}")
    return found


def definitions(sql_dir: Path = SQL_DIR) -> list[Definition]:
    """The function and view files, functions first, each folder by name."""
    found: list[Definition] = []
    for folder in DEFINITION_DIRS:
        for path in sorted((sql_dir / folder).glob("*.sql")):
            m = _DEFINITION_RE.match(path.name)
            if not m:
                raise MigrationError(f"{path}: a definition file is named after its "
                                     "function or view (lower_snake.sql)")
            found.append(Definition(f"{folder}/{path.name}", m.group(1), path.read_text()))
    return found


def _code(sql: str) -> str:
    """The SQL without its ``--`` comments."""
    return re.sub(r"--[^\n]*", "", sql)


def _names(sql: str, pending: list[Definition]) -> list[Definition]:
    """The pending definitions a migration names (so it gets them first)."""
    words = set(re.findall(r"[a-z_][a-z0-9_]*", _code(sql).lower()))  # not its comments
    return [d for d in pending if d.object in words]


async def _define(conn: asyncpg.Connection, d: Definition) -> None:
    await conn.execute("SET LOCAL check_function_bodies = off")
    try:
        await conn.execute(d.sql)
    except asyncpg.PostgresError as exc:
        raise MigrationError(f"sql/{d.name}: {exc}") from exc
    await conn.execute("SET LOCAL check_function_bodies = on")
    await conn.execute(
        "INSERT INTO schema_definition (name, checksum) VALUES ($1, $2)"
        " ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, applied_at = now()",
        d.name, d.checksum)


async def migrate(url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations and every changed function or view; return the
    files applied (empty when up to date)."""
    applied_now: list[str] = []
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migration ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_definition ("
            " name text PRIMARY KEY, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())")
        done = {r["version"]: r for r in await conn.fetch(
            "SELECT version, name, checksum FROM schema_migration")}
        defined = {r["name"]: r["checksum"] for r in await conn.fetch(
            "SELECT name, checksum FROM schema_definition")}
        pending = [d for d in definitions(directory.parent)
                   if defined.get(d.name) != d.checksum]
        for mig in discover(directory):
            row = done.get(mig.version)
            if row is not None:
                if row["checksum"] == mig.checksum:
                    continue
                if REBASED.get(mig.version) == row["checksum"]:
                    await conn.execute("UPDATE schema_migration SET checksum = $2"
                                       " WHERE version = $1", mig.version, mig.checksum)
                    continue
                raise MigrationError(
                    f"{mig.name} was changed after it was applied (checksum differs); "
                    "add a new migration instead of editing an applied one")
            async with conn.transaction():
                for d in _names(mig.sql, pending):
                    await _define(conn, d)
                    pending.remove(d)
                    applied_now.append(d.name)
                if _code(mig.sql).strip():  # (asyncpg fails on an empty statement)
                    await conn.execute(mig.sql)
                await conn.execute(
                    "INSERT INTO schema_migration (version, name, checksum) VALUES ($1,$2,$3)",
                    mig.version, mig.name, mig.checksum)
            applied_now.append(mig.name)
        if pending:
            async with conn.transaction():
                for d in pending:
                    await _define(conn, d)
                    applied_now.append(d.name)
    finally:
        try:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
        finally:
            await conn.close()
    return applied_now
