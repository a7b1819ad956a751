"""Each function and view is defined once, in its own file (issue 25): numbered
migrations hold tables and data changes and are never edited; sql/functions
and sql/views are applied again by ``db migrate`` whenever their text changes
(switchboard/migrate.py)."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import asyncpg
import pytest

from switchboard import db, migrate
from tests.helpers import fetch

SQL = Path(__file__).resolve().parents[1] / "sql"


def test_every_function_and_view_has_one_file_and_no_migration_defines_one(
        db_url: str) -> None:
    rows = asyncio.run(fetch(db_url, """
        SELECT p.proname AS name, 'functions' AS kind FROM pg_proc p
          JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = 'public' AND NOT EXISTS (
               SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
        UNION ALL
        SELECT c.relname, 'views' FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind = 'v'"""))
    in_db = {(r["kind"], r["name"]) for r in rows}
    names = [r["name"] for r in rows]
    assert len(names) == len(set(names)), "an overloaded name: one file could not say which"
    files = {(d.name.split("/")[0], d.object) for d in migrate.definitions(SQL)}
    assert in_db == files, (in_db - files, files - in_db)
    for d in migrate.definitions(SQL):  # and each file defines what it is named after
        kind = "FUNCTION" if d.name.startswith("functions/") else "VIEW"
        defined = re.findall(rf"CREATE OR REPLACE {kind} (\w+)", d.sql)
        assert defined == [d.object], d.name
    for m in migrate.discover(SQL / "migrations"):
        code = re.sub(r"--[^\n]*", "", m.sql)
        assert not re.search(r"\bCREATE\s+(OR\s+REPLACE\s+)?(FUNCTION|VIEW|TRIGGER)\b",
                             code, re.I), m.name


def test_a_changed_function_file_is_applied_again_and_nothing_else(
        db_url: str, tmp_path: Path) -> None:
    sql = tmp_path / "sql"
    shutil.copytree(SQL, sql)
    migrations = sql / "migrations"
    assert asyncio.run(db.migrate(db_url, migrations)) == []  # the same text: nothing
    rank = sql / "functions" / "sb_verify_rank.sql"
    rank.write_text(rank.read_text().replace("WHEN 'full' THEN 4", "WHEN 'full' THEN 9"))
    assert asyncio.run(db.migrate(db_url, migrations)) == ["functions/sb_verify_rank.sql"]
    got = asyncio.run(fetch(db_url, "SELECT sb_verify_rank('full') AS r"))
    assert got[0]["r"] == 9
    assert asyncio.run(db.migrate(db_url, migrations)) == []
    # a new numbered migration that uses a new function gets the function first
    (sql / "functions" / "sb_test_twice.sql").write_text(
        "CREATE OR REPLACE FUNCTION sb_test_twice(x integer) RETURNS integer\n"
        "LANGUAGE sql IMMUTABLE AS $$ SELECT 2 * x $$;\n")
    (migrations / "9999_test_uses_it.sql").write_text(
        "CREATE TABLE test_twice (n integer CHECK (n = sb_test_twice(n) / 2));\n")
    assert asyncio.run(db.migrate(db_url, migrations)) == [
        "functions/sb_test_twice.sql", "9999_test_uses_it.sql"]


def test_a_database_migrated_before_the_functions_moved_is_accepted_once(
        db_url: str) -> None:
    """The 23 migrations issue 25 took the functions out of: a database that
    applied them as they were has their old checksums, accepted once (and then
    the new ones are recorded); any other change to an applied migration is
    still refused."""
    async def main() -> None:
        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute("UPDATE schema_migration SET checksum = $1 WHERE version = 5",
                               migrate.REBASED[5])
            await conn.execute("DELETE FROM schema_definition")
        finally:
            await conn.close()
        applied = await db.migrate(db_url)
        assert len(applied) == len(migrate.definitions(SQL))  # every file, once more
        checksum = (await fetch(db_url, "SELECT checksum FROM schema_migration"
                                " WHERE version = 5"))[0]["checksum"]
        assert checksum == next(m.checksum for m in migrate.discover() if m.version == 5)
        conn = await asyncpg.connect(db_url)
        try:
            await conn.execute("UPDATE schema_migration SET checksum = 'edited' WHERE version = 5")
        finally:
            await conn.close()
        with pytest.raises(db.MigrationError, match="changed after it was applied"):
            await db.migrate(db_url)
    asyncio.run(main())
