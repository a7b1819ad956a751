"""The SIP edge on the wall board, in Debian's Chromium (issue 22): a 911 call
dialled from a desk phone shows at once as a flashing alert with its phone and
place, a ban recorded by fail2ban's action (`switchboard edge record`, the
real command) is a line while it lasts, failed logins and refused outbound
calls are counted, and the Prometheus gauges the alert rules read follow.

The events are the ones a real Asterisk 22.10.1 sent during the live tier's
edge scenarios (tests/fixtures/asterisk/security/edge_guessing.c1), given
fresh uniqueids and today's time."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg

from switchboard.ami_listener.captures import FIXTURES, Capture, Refresher, Segment
from switchboard.ami_listener.replay import ServerOptions
from switchboard.pgcluster import free_port
from switchboard.web.wallboard import Board, BoardConfig
from tests.helpers import ARTIFACTS, CLI, as_service, db_env, ingest
from tests.kpi.test_wallboard import board_page, committed, shown

TOKEN = "wallboard-edge-token"


def edge_frames() -> list[bytes]:
    """The recording's failed logins and the first 911 call's dial (not its end:
    the call is in progress), at today's time."""
    frames = Capture.load("edge_guessing.c1", FIXTURES / "security").event_frames()
    keep, seen_dial = [], False
    for f in frames:
        if f.startswith((b"Event: ChallengeResponseFailed", b"Event: InvalidAccountID")):
            keep.append(f)
        elif b"UserEvent: SBEmergency\r\nStep: dial" in f and not seen_dial:
            keep.append(f)
            seen_dial = True
    stamps = [float(f.split(b"Timestamp: ")[1].split(b"\r\n")[0]) for f in keep]
    # the last of them (the 911 dial) a few seconds ago
    return Refresher().frames(keep, shift_to=time.time() - 5 - (stamps[-1] - stamps[0]))


def record(db_url: str, *args: str) -> None:
    env = {**os.environ, **db_env(db_url), "SB_LOG_FORMAT": "json"}
    out = subprocess.run([str(CLI), "edge", "record", *args], capture_output=True, text=True,
                         timeout=60, env=env, check=False)
    assert out.returncode == 0, out.stderr


def test_911_bans_and_refusals_on_the_wall_board(db_url: str, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = BoardConfig(port=port, token=TOKEN, metrics_port=free_port())

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        board = Board(as_service(db_url, "reports"), config)
        await board.start()
        try:
            async with board_page(port, TOKEN, 1280, 720) as page:
                await ingest(db_url, tmp_path, [Segment([(0.0, b"".join(edge_frames()))],
                                                        False)],
                             node="sb-live", options=ServerOptions(speed=None))
                t = await committed(db_url, "SELECT count(*) > 0 FROM ami_event WHERE "
                                    "fields->>'UserEvent' = 'SBEmergency'")
                out["e911_s"] = await shown(page, '#edge [data-k="911 today"]', "1", t, 1.0)
                out["e911_alert"] = await page.locator("#alerts .e911").text_content()
                out["failed"] = await page.locator(
                    '#edge [data-k="failed logins (1 h)"]').text_content()
                # fail2ban's action records a ban, then its end
                await asyncio.to_thread(record, db_url, "ban", "127.0.0.9", "--jail",
                                        "switchboard-sip", "--seconds", "3600",
                                        "--failures", "25")
                t = time.monotonic()
                out["ban_s"] = await shown(page, '#edge [data-k="banned now"]', "1", t, 1.0)
                out["ban_alert"] = await page.locator("#alerts .info").all_text_contents()
                # a refused outbound call (as the AGI service asks the database)
                owner = await asyncpg.connect(db_url)
                await owner.fetch("SELECT * FROM sb_agi_outbound_begin('sb-live', "
                                  "'sb-live-1.1', 'panel', '+16155550100', 9, 4)")
                await owner.close()
                t = time.monotonic()
                out["refused_s"] = await shown(page, '#edge [data-k="out refused"]', "1", t,
                                               1.0)
                out["alerts"] = await page.locator("#alerts").text_content()
                await page.screenshot(path=str(ARTIFACTS / "wallboard-edge.png"))
                out["metrics"] = await asyncio.to_thread(
                    lambda: urllib.request.urlopen(
                        f"http://127.0.0.1:{config.metrics_port}/metrics", timeout=5)
                    .read().decode())
                await asyncio.to_thread(record, db_url, "unban", "127.0.0.9", "--jail",
                                        "switchboard-sip")
                t = time.monotonic()
                out["unban_s"] = await shown(page, '#edge [data-k="banned now"]', "0", t, 1.0)
                out["after"] = await page.locator("#alerts").text_content()
        finally:
            await board.stop()
        return out
    out = asyncio.run(main())
    print(f"shown after commit: 911 {out['e911_s']:.3f} s, ban {out['ban_s']:.3f} s, "
          f"refusal {out['refused_s']:.3f} s, unban {out['unban_s']:.3f} s")
    assert out["e911_s"] <= 1.0 and out["ban_s"] <= 1.0 and out["refused_s"] <= 1.0
    assert "911 CALL IN PROGRESS from phone 2003, HQ 100 Main St Nashville TN floor 3 " \
           "room 301" in out["e911_alert"]
    assert "callback +16155550190" in out["e911_alert"]
    assert int(out["failed"]) == 38  # every recorded failure, within the hour
    assert any("SIP: 127.0.0.9 banned until" in a and "after 25 failed logins" in a
               for a in out["ban_alert"])
    assert "outbound call refused by the toll-fraud caps" in out["alerts"]
    m = out["metrics"]
    for line in ("sb_sip_bans_active 1.0", "sb_emergency_calls_active 1.0",
                 "sb_emergency_calls_today 1.0", "sb_outbound_refused_today 1.0",
                 "sb_sip_auth_failures_hour 38.0"):
        assert line in m, line
    assert "banned until" not in out["after"]
