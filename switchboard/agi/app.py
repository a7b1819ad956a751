"""``switchboard agi-server``: the FastAGI service, wired together."""

from __future__ import annotations

import asyncio
import contextlib
import os

import asyncpg

from switchboard import log
from switchboard.agi.handlers import Flow, registry
from switchboard.agi.pins import PinHasher
from switchboard.agi.server import FastAgiServer, ServerConfig
from switchboard.agi.verification import PoolDatabase, ShedAudit, Verifier, connect_kwargs
from switchboard.auditlog import Anchorer, settings_key
from switchboard.loop import notify, stop_on_signals
from switchboard.settings import AgiSettings
from switchboard.sqlfile import queries


def make_hasher(s: AgiSettings) -> PinHasher:
    return PinHasher(s.require_pepper(), time_cost=s.argon2_time_cost,
                     memory_kib=s.argon2_memory_kib, parallelism=s.argon2_parallelism)


def make_flow(s: AgiSettings) -> Flow:
    return Flow(region=s.default_region, tries=s.tries, dtmf_timeout_ms=s.dtmf_timeout_ms)


async def open_pool(s: AgiSettings, database_url: str,
                    audit_key: bytes | None = None) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=s.pool_max,
                                     **connect_kwargs(audit_key))
    assert pool is not None
    role = await pool.fetchval(queries("agi.sql")["whoami"])
    if role != s.db_role:
        await pool.close()
        raise RuntimeError(f"the AGI service logs in as {role}, not {s.db_role}: give it "
                           "its own login (SB_AGI_DATABASE_URL, docs/security.md)")
    return pool


class AgiService:
    """Pool + verifier + server; ``start``/``stop`` for the CLI, the demo and tests."""

    def __init__(self, settings: AgiSettings, database_url: str) -> None:
        self.settings = settings
        self.database_url = database_url
        self.pool: asyncpg.Pool | None = None
        self.server: FastAgiServer | None = None
        self.shed: ShedAudit | None = None
        self.anchorer: Anchorer | None = None

    async def start(self) -> int:
        s = self.settings
        hasher = make_hasher(s)
        key = settings_key(s)
        self.pool = await open_pool(s, self.database_url, key)
        self.shed = ShedAudit(self.database_url, connect_kwargs(key))
        self.shed.start()
        if key is not None and s.audit_anchor_file is not None:
            self.anchorer = Anchorer(self.pool, key, s.audit_anchor_file,
                                     s.audit_anchor_interval_s)
            self.anchorer.start()
        else:
            log.get("agi").warning("audit_unsigned", detail="no audit key: audit rows are "
                                   "not signed and no checkpoints are written "
                                   "(SB_AUDIT_KEY_FILE)")
        verifier = Verifier(PoolDatabase(self.pool, s.pool_wait_s), hasher,
                            hash_workers=max(1, os.cpu_count() or 1), shed=self.shed)
        self.server = FastAgiServer(
            registry(verifier, make_flow(s)),
            ServerConfig(host=s.host, port=s.port, allow=s.allow,
                         shutdown_grace_s=s.shutdown_grace_s, session_max_s=s.session_max_s))
        log.get("agi").info("agi_pin_hashing", parameters=hasher.parameters)
        return await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
        if self.shed is not None:
            await self.shed.stop()
        if self.anchorer is not None:
            await self.anchorer.stop()
        if self.pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.pool.close(), 5)


async def run_agi_server(settings: AgiSettings, database_url: str, *,
                         stop: asyncio.Event | None = None) -> int:
    """Serve until SIGTERM/SIGINT (or ``stop``): then stop accepting, let calls in
    progress finish (SB_AGI_SHUTDOWN_GRACE_S), and exit 0."""
    service = AgiService(settings, database_url)
    with stop_on_signals(stop or asyncio.Event()) as stopping:
        try:
            await service.start()
            notify("READY=1")
            await stopping.wait()
            notify("STOPPING=1")
        finally:
            await service.stop()
    return 0
