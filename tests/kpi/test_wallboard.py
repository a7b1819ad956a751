"""The wall board in a real browser (Debian's Chromium driven by Playwright):
recorded traffic goes through the real listener into PostgreSQL, and the page
must show it within 1 second, without a reload; it must survive a restart of
the server; and a screenshot is kept in test-artifacts/."""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
from playwright.async_api import Page, async_playwright

from switchboard.ami_listener.captures import Capture, Refresher, Segment
from switchboard.ami_listener.replay import ServerOptions
from switchboard.pgcluster import free_port
from switchboard.web.wallboard import Board, BoardConfig
from tests.helpers import ARGS, ARTIFACTS, CHROMIUM, as_service, ingest

TOKEN = "wallboard-test-token"


REST_AT_S = 9.0  # when the rest of the call is sent


def stream() -> Segment:
    """b_abandon_ts with fresh uniqueids, the caller joining 5 s ago: up to the
    QueueCallerJoin (a caller waiting) at once, the rest (the caller gives up,
    after 23 s) REST_AT_S later, on the same AMI session."""
    frames = Capture.load("b_abandon_ts").event_frames()
    stamps = [float(f.split(b"Timestamp: ")[1].split(b"\r\n")[0]) for f in frames
              if b"\r\nTimestamp: " in f]
    join = next(i for i, f in enumerate(frames) if f.startswith(b"Event: QueueCallerJoin"))
    join_ts = float(frames[join].split(b"Timestamp: ")[1].split(b"\r\n")[0])
    fresh = Refresher().frames(frames, shift_to=time.time() - 5 - (join_ts - stamps[0]))
    return Segment([(0.0, b"".join(fresh[:join + 1])), (REST_AT_S, b"".join(fresh[join + 1:]))],
                   False)


async def committed(db_url: str, sql: str) -> float:
    """Wait until ``sql`` returns true; the moment it did."""
    conn = await asyncpg.connect(db_url)
    try:
        while not await conn.fetchval(sql):
            await asyncio.sleep(0.01)
        return time.monotonic()
    finally:
        await conn.close()


async def text(page: Page, selector: str) -> str:
    return (await page.locator(selector).first.text_content() or "").strip()


async def shown(page: Page, selector: str, want: str, since: float, seconds: float) -> float:
    """Seconds from ``since`` (the commit) until the page shows ``want``."""
    await page.wait_for_function(
        "([sel, want]) => { const e = document.querySelector(sel); "
        "return e && e.textContent.trim() === want; }", arg=[selector, want],
        timeout=max(1.0, seconds - (time.monotonic() - since)) * 1000)
    return time.monotonic() - since


@contextlib.asynccontextmanager
async def board_page(port: int, token: str, width: int, height: int) -> AsyncIterator[Page]:
    """The wall board in Chromium, logged in with its token and live."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": width, "height": height})
            await page.goto(f"http://127.0.0.1:{port}/?token={token}")
            await page.wait_for_selector("#status:not(.down)")
            yield page
        finally:
            await browser.close()


def test_the_wall_board_shows_recorded_traffic_live(db_url: str, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = BoardConfig(port=port, token=TOKEN, metrics_port=free_port(), wait_alert_s=8)

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        # what supervisors of a verified line watch: today's verifications (audit
        # rows as the AGI service writes them), and a node gone silent whose
        # agent must not be counted
        owner = await asyncpg.connect(db_url)
        for n, result in enumerate(["full", "full", "line-only", "wrong-pin", "locked"]):
            await owner.execute("SELECT sb_audit_append('agi', $1, '+16155550100', '42', "
                                "'1001', 'verify', $2)", f"pbx-a-1795869000.{n}", result)
        await owner.execute("SELECT sb_audit_append('agi', 'pbx-a-1795869000.3', NULL, "
                            "'42', '1001', 'lockout', '5 failures')")
        # their caller IDs' STIR/SHAKEN checks: 3 attested A of 5
        for n, (att, result) in enumerate([("A", "passed"), ("A", "passed"), ("B", "passed"),
                                           (None, "failed"), ("A", "passed")]):
            await owner.execute("INSERT INTO caller_id_check (uniqueid, ani, source, attest, "
                                "result) VALUES ($1, '+16155550100', 'verstat', $2, $3)",
                                f"pbx-a-1795869000.{n}", att, result)
        await owner.execute(
            "INSERT INTO listener_checkpoint (node, spool_id, seq, last_seen_at) VALUES "
            "('pbx-z', 's', 1, now() - interval '10 minutes');"
            "INSERT INTO agent_state (node, queue, interface, state, started_at, start_key, "
            "start_seq) VALUES ('pbx-z', 'intake', 'PJSIP/2999', 'available', "
            "now() - interval '1 hour', '\\x01', 1)")
        await owner.close()
        board = Board(as_service(db_url, "reports"), config)
        await board.start()
        try:
            async with board_page(port, TOKEN, 1600, 900) as page:
                out["before"] = await text(page, "#status")

                # a caller joins the intake queue and waits
                feed = asyncio.ensure_future(ingest(
                    db_url, tmp_path, [stream()], node="pbx-a",
                    options=ServerOptions(speed=1.0)))
                t = await committed(db_url, "SELECT count(*) = 1 FROM queue_call")
                out["waiting_s"] = await shown(page, "[data-queue=intake] .waiting", "1", t, 1.0)
                out["available_with_silent_node"] = await text(
                    page, "[data-queue=intake] .available")
                await page.wait_for_selector("[data-queue=intake].alert", timeout=8000)
                out["alerts"] = await page.locator("#alerts").text_content()
                out["verified"] = {k: await text(page, f'#verified [data-k="{k}"]')
                                   for k in ("full", "line only", "unverified",
                                             "officers locked")}
                out["caller_id"] = {k: await text(page, f'#caller-id [data-k="{k}"]')
                                    for k in ("attested A", "attested B/C", "not attested",
                                              "validation failed")}
                out["cid_share"] = await text(page, "#caller-id .cid-share")
                for w, h in ((1920, 1080), (1280, 720)):
                    await page.set_viewport_size({"width": w, "height": h})
                    await asyncio.sleep(0.3)
                    await page.screenshot(path=str(ARTIFACTS / f"wallboard-{w}x{h}.png"))
                    out[f"fits_{w}"] = await page.evaluate(
                        "() => [...document.querySelectorAll('.queue, .panel')].every("
                        "e => e.getBoundingClientRect().bottom <= window.innerHeight + 1 "
                        "&& e.scrollHeight <= e.clientHeight + 1)")  # nothing clipped
                    # each panel its own card, and the lower half used (issue 25)
                    out[f"cards_{w}"] = await page.evaluate(
                        "() => [[...document.querySelectorAll('section.lower > .panel')]"
                        ".map(e => e.querySelectorAll('.kv, svg, ul').length), "
                        "Math.min(...[...document.querySelectorAll('section.lower > .panel')]"
                        ".map(e => e.getBoundingClientRect().bottom)) / window.innerHeight]")
                await page.set_viewport_size({"width": 1600, "height": 900})
                first_wait = await text(page, "[data-queue=intake] .longest")
                await asyncio.sleep(2.2)  # the longest wait ticks between snapshots
                out["longest"] = (first_wait, await text(page, "[data-queue=intake] .longest"))

                # the server goes away and comes back: the page reconnects by itself
                await board.stop()
                await page.wait_for_selector("#status.down", timeout=5000)
                board = Board(as_service(db_url, "reports"), config)
                await board.start()
                await page.wait_for_selector("#status:not(.down)", timeout=10000)

                # the caller gives up
                t = await committed(db_url, "SELECT count(*) = 1 FROM queue_call "
                                    "WHERE outcome = 'abandoned'")
                out["abandoned_s"] = await shown(page, "[data-queue=intake] .abandoned", "1",
                                                 t, 1.0)
                await feed
                out["waiting_after"] = await text(page, "[data-queue=intake] .waiting")
                out["offered"] = await text(page, "[data-queue=intake] .offered")
                out["list"] = await text(page, "#abandoned li")
                out["sl"] = await text(page, "[data-queue=intake] .sl")
                out["sl_class"] = await page.get_attribute("[data-queue=intake] .sl", "class")
                await page.screenshot(path=str(ARTIFACTS / "wallboard.png"), full_page=True)
                out["metrics"] = await asyncio.to_thread(
                    lambda: urllib.request.urlopen(
                        f"http://127.0.0.1:{config.metrics_port}/metrics", timeout=5)
                    .read().decode())
                def without_token() -> int:  # in a thread: the server runs on this loop
                    try:
                        urllib.request.urlopen(f"http://127.0.0.1:{port}/",
                                               timeout=5)
                        return 200
                    except urllib.error.HTTPError as exc:
                        return exc.code
                out["no_token"] = await asyncio.to_thread(without_token)

                def favicon() -> tuple[int, str]:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/favicon.ico",
                                                timeout=5) as r:
                        return r.status, r.headers.get("Content-Type", "")
                out["favicon"] = await asyncio.to_thread(favicon)
        finally:
            await board.stop()
        return out

    out = asyncio.run(main())
    print(f"wallboard latency: waiting {out['waiting_s']:.3f} s, "
          f"abandoned {out['abandoned_s']:.3f} s")
    assert out["before"].startswith("live")
    assert out["waiting_s"] <= 1.0
    assert out["longest"][0] != out["longest"][1]  # ticking
    assert out["abandoned_s"] <= 1.0
    assert out["waiting_after"] == "0" and out["offered"] == "1"
    assert "intake" in out["list"] and "waited 23s" in out["list"]
    assert out["sl"] == "0%" and "bad" in (out["sl_class"] or "")
    assert 'sb_queue_offered_today{queue="intake"} 1.0' in out["metrics"]
    assert out["no_token"] == 401
    assert out["available_with_silent_node"] == "0"  # pbx-z's agent is not counted
    assert "node pbx-z: nothing heard since" in out["alerts"]
    assert "intake: a caller has waited" in out["alerts"]
    assert out["verified"] == {"full": "2", "line only": "1", "unverified": "2",
                               "officers locked": "1"}
    assert out["caller_id"] == {"attested A": "3", "attested B/C": "1", "not attested": "0",
                                "validation failed": "1"}
    assert out["cid_share"] == "60%"
    assert out["fits_1920"] and out["fits_1280"]  # nothing cut at 1280x720
    for w in (1920, 1280):
        per_card, lowest_bottom = out[f"cards_{w}"]
        assert per_card == [1] * 6, per_card  # chart, abandoned, verified, caller ID,
        assert lowest_bottom > 0.7  # callbacks, edge: one each; and down the screen
    assert out["favicon"] == (200, "image/svg+xml")
    assert (ARTIFACTS / "wallboard.png").stat().st_size > 10_000
