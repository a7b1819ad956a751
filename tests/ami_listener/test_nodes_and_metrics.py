"""Several nodes at once, and the Prometheus endpoint."""

from __future__ import annotations

import asyncio
import dataclasses
import urllib.request
from pathlib import Path

from switchboard.ami_listener.captures import Capture, segment_from
from switchboard.ami_listener.replay import ReplayServer, ServerOptions
from switchboard.ami_listener.service import Listener
from switchboard.pgcluster import free_port
from switchboard.settings import AmiNode
from tests.helpers import as_service, calls, fetch, listener_settings


def test_a_dead_node_does_not_stall_the_others(db_url: str, tmp_path: Path) -> None:
    metrics_port = free_port()

    async def scenario() -> str:
        a = ReplayServer([segment_from(Capture.load("b_abandon"), close=False)],
                         ServerOptions(speed=None))
        b = ReplayServer([segment_from(Capture.load("d_queue_timeout"), close=False)],
                         ServerOptions(speed=None))
        port_a, port_b = await a.start(), await b.start()
        dead = free_port()  # nothing listens there: connection refused, again and again
        settings = dataclasses.replace(
            listener_settings(tmp_path, port_a, node="pbx-a"),
            nodes=(AmiNode("pbx-a", "127.0.0.1", port_a, "listener", "listenerpass"),
                   AmiNode("pbx-dead", "127.0.0.1", dead, "listener", "listenerpass"),
                   AmiNode("pbx-b", "127.0.0.1", port_b, "listener", "listenerpass")),
            metrics_port=metrics_port)
        listener = Listener(settings, as_service(db_url, "listener"))
        await listener.start()
        try:
            async with asyncio.timeout(30):
                while len(await fetch(db_url, "SELECT 1 FROM queue_call WHERE outcome IS NOT"
                                      " NULL")) < 2:
                    await asyncio.sleep(0.05)
            body = await asyncio.to_thread(
                lambda: urllib.request.urlopen(
                    f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode())
        finally:
            await listener.stop()
            await a.close()
            await b.close()
        return body

    body = asyncio.run(scenario())
    rows = asyncio.run(calls(db_url))
    assert sorted((r["queue"], r["outcome"]) for r in rows) == [("intake", "abandoned"),
                                                               ("overflow", "timeout")]
    nodes = {r["node"] for r in asyncio.run(fetch(db_url, "SELECT node FROM queue_call"))}
    assert nodes == {"pbx-a", "pbx-b"}
    assert 'sb_ami_connected{node="pbx-dead"} 0.0' in body
    assert 'sb_ami_events_written_total{node="pbx-a"}' in body
    assert "sb_spool_lag_frames" in body
