"""Wiring: one reader (AmiClient) and one writer per node, a shared pool,
a fsync ticker and the metrics endpoint.  SIGTERM/SIGINT drain and flush."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass

import asyncpg
from prometheus_client import start_http_server

from ami_listener.client import AmiClient
from ami_listener.metrics import Metrics
from ami_listener.normalise import FrameNormaliser
from ami_listener.spool import Spool
from ami_listener.writer import Backoff, Writer
from switchboard import log
from switchboard.settings import ListenerSettings


@dataclass
class NodePipeline:
    client: AmiClient
    writer: Writer
    spool: Spool


def build_pipelines(settings: ListenerSettings, pool: asyncpg.Pool, metrics: Metrics,
                    *, max_skew_s: float = 86400.0) -> list[NodePipeline]:
    out = []
    for node in settings.nodes:
        spool = Spool(settings.spool_dir / node.name, max_bytes=settings.spool_max_bytes,
                      segment_bytes=settings.spool_segment_bytes)
        writer = Writer(node=node.name, pool=pool, spool=spool,
                        normaliser=FrameNormaliser(node.name, spool.spool_id,
                                                   max_skew_s=max_skew_s),
                        metrics=metrics, batch_max=settings.batch_max,
                        batch_delay_s=settings.batch_delay_s,
                        backoff=Backoff(settings.backoff_initial_s,
                                        min(settings.backoff_max_s, 5.0)))
        out.append(NodePipeline(AmiClient(node, spool, settings, metrics), writer, spool))
    return out


async def _fsync_ticker(spools: list[Spool], interval: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval or 0.2)
        for spool in spools:
            spool.sync()


async def run_listener(settings: ListenerSettings, database_url: str, *,
                       stop: asyncio.Event | None = None, max_skew_s: float = 86400.0,
                       metrics: Metrics | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop``); return a process exit status."""
    logger = log.get("ami_listener")
    if not settings.nodes:
        logger.error("no_nodes_configured", hint="set SB_AMI_NODES=name@host:port")
        return 2
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    metrics = metrics or Metrics()
    server = None
    if settings.metrics_port:
        server, _thread = start_http_server(settings.metrics_port, settings.metrics_host,
                                            registry=metrics.registry)
        logger.info("metrics_listening", host=settings.metrics_host, port=settings.metrics_port)
    # min_size=0: no connection is made here, so the listener starts (and spools)
    # while the database is down; the writers retry until it is back.
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=2 + len(settings.nodes),
                                     command_timeout=30,
                                     server_settings={"application_name": "sb-ami-listener"})
    pipelines = build_pipelines(settings, pool, metrics, max_skew_s=max_skew_s)
    writers_stop = asyncio.Event()
    try:
        tasks = [asyncio.ensure_future(p.writer.run(writers_stop)) for p in pipelines]
        readers = [asyncio.ensure_future(p.client.run(stop)) for p in pipelines]
        fsync = asyncio.ensure_future(_fsync_ticker([p.spool for p in pipelines],
                                                    settings.fsync_interval_s, writers_stop))
        logger.info("listener_started", nodes=[p.client.node.name for p in pipelines])
        await stop.wait()
        logger.info("listener_stopping")
        await asyncio.gather(*readers, return_exceptions=True)
        writers_stop.set()  # writers drain the spool, then return
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                logger.error("writer_crashed", error=repr(r))
        await fsync
        return 0
    finally:
        writers_stop.set()
        for p in pipelines:
            p.spool.close()
        await pool.close()
        if server is not None:
            server.shutdown()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)
        logger.info("listener_stopped")

