"""A node lost, on the wall board in Debian's Chromium (issue 23): the
listener reads a node whose AMI drops and never answers again (recorded bytes
over a real socket); after SB_NODE_LOST_S the board says plainly that the node
is down and counts none of its agents."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from switchboard.ami_listener.captures import Capture, frames_segment
from switchboard.ami_listener.replay import ServerOptions
from switchboard.pgcluster import free_port
from switchboard.web.wallboard import Board, BoardConfig
from tests.helpers import ARTIFACTS, as_service, fetch, ingest
from tests.kpi.test_wallboard import board_page

TOKEN = "wallboard-nodes-token"
MEMBER = Capture.load("e_member_actions").event_frames()
ADDED = next(f for f in MEMBER if f.startswith(b"Event: QueueMemberAdded"))


def test_a_lost_node_is_said_plainly(db_url: str, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = BoardConfig(port=port, token=TOKEN, metrics_port=free_port())

    async def lost() -> bool:
        rows = await fetch(db_url, "SELECT state FROM node_status WHERE node = 'pbx-a'")
        return bool(rows) and rows[0]["state"] == "lost"

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        board = Board(as_service(db_url, "reports"), config)
        await board.start()
        try:
            async with board_page(port, TOKEN, 1280, 720) as page:
                # an agent logs in on pbx-a, then pbx-a dies
                await ingest(db_url, tmp_path, [frames_segment([ADDED], close=True)],
                    options=ServerOptions(speed=None, refuse_after=True), node="pbx-a",
                    until=lost, node_lost_s=0.6, backoff_max_s=0.2)
                t = time.monotonic()
                await page.wait_for_function(
                    "() => document.querySelector('#alerts').textContent"
                    ".includes('NODE pbx-a IS DOWN')", polling=50, timeout=5000)
                out["shown_s"] = time.monotonic() - t
                out["alerts"] = await page.locator("#alerts").text_content()
                await page.screenshot(path=str(ARTIFACTS / "wallboard-node-down.png"))
        finally:
            await board.stop()
        return out
    out = asyncio.run(main())
    print(f"node down shown {out['shown_s']:.3f} s after the commit")
    assert "its calls were cut, new calls go to the other nodes, its agents are not " \
           "counted" in out["alerts"]
    agents = asyncio.run(fetch(db_url, "SELECT sb_agents_logged_in() AS n"))
    assert agents[0]["n"] == 0
