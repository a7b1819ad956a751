"""Test infrastructure: a throw-away PostgreSQL cluster for the session (never
the demo's), a migrated template database, and a fresh database per test."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from switchboard import db, log
from switchboard.pgcluster import LocalCluster, free_port
from tests.helpers import CLUSTER_ROOTS

TEST_LOG_LEVEL = os.environ.get("SB_TEST_LOG_LEVEL", "warning")
log.configure("console", TEST_LOG_LEVEL, stream=sys.__stderr__)


@pytest.fixture
def json_log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """JSON logs at info level into a buffer of the test's own; afterwards the
    suite's usual logging again."""
    buffer = io.StringIO()
    log.configure("json", "info", stream=buffer)

    def read() -> list[dict[str, Any]]:
        return [json.loads(x) for x in buffer.getvalue().splitlines() if x.startswith("{")]
    try:
        yield read
    finally:
        log.configure("console", TEST_LOG_LEVEL, stream=sys.__stderr__)


TEMPLATE = "sb_template"
_counter = itertools.count()


def make_cluster(prefix: str) -> LocalCluster:
    # /tmp itself, not pytest's 0700 tmp folder: the server runs as 'postgres' under root.
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    root.chmod(0o755)
    cluster = LocalCluster(root=root / "pg", port=free_port())
    cluster.init()
    cluster.start()
    asyncio.run(db.ensure_app_database(cluster))
    CLUSTER_ROOTS[cluster.port] = cluster.root  # where its services' passwords are
    return cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[LocalCluster]:
    cluster = make_cluster("sb-test-pg-")
    # the commands the tests run derive each service's login from the owner's URL
    os.environ["SB_DB_SECRETS_DIR"] = str(cluster.root)
    async def prepare() -> None:
        conn = await asyncpg.connect(cluster.superuser_url())
        try:
            await conn.execute(f'CREATE DATABASE {TEMPLATE} OWNER "{cluster.app_user}"')
        finally:
            await conn.close()
        await db.migrate(cluster.app_url().rsplit("/", 1)[0] + f"/{TEMPLATE}")
    try:
        asyncio.run(prepare())  # a migration that fails must not leave the cluster running
        yield cluster
    finally:
        cluster.destroy()
        shutil.rmtree(cluster.root.parent, ignore_errors=True)


def fresh_database(cluster: LocalCluster) -> str:
    name = f"t_{os.getpid()}_{next(_counter)}"
    async def create() -> None:
        conn = await asyncpg.connect(cluster.superuser_url())
        try:
            await conn.execute(
                f'CREATE DATABASE {name} TEMPLATE {TEMPLATE} OWNER "{cluster.app_user}"')
        finally:
            await conn.close()
    asyncio.run(create())
    return cluster.app_url().rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
def db_url(pg_cluster: LocalCluster) -> str:
    return fresh_database(pg_cluster)
