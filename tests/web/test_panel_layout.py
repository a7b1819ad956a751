"""The agent panel looked at (issue 25), in a real browser at 1920x1080 and
1280x720: alice's call in progress on top and prominent, her finished call
waiting for a disposition folded to one line (its disposition form still on
that line; a click unfolds it), and 25 callback requests oldest first, ten a
page, with their count.  Screenshots kept in test-artifacts/."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
from playwright.async_api import async_playwright

from switchboard.ami_listener.replay import ServerOptions
from tests.helpers import ARGS, ARTIFACTS, CHROMIUM, ingest
from tests.web.conftest import answered_call, call_segment, keyed, seed
from tests.web.test_panel import log_in, panel_for

SIZES = ((1920, 1080), (1280, 720))


async def _callbacks(db_url: str, n: int) -> list[int]:
    conn = await asyncpg.connect(db_url)
    try:
        ids = []
        for i in range(n):  # the oldest first: 25 minutes ago, then a minute apart
            ids.append(await conn.fetchval(
                "INSERT INTO callback_request (uniqueid, ani, requested_at) VALUES"
                " ($1, $2, now() - make_interval(mins => $3)) RETURNING request_id",
                f"pbx-a-1795869000.{100 + i}", f"+161555501{i:02d}", n - i))
        return ids
    finally:
        await conn.close()


def test_call_in_progress_on_top_finished_calls_folded_callbacks_paged(
        db_url: str, tmp_path: Path) -> None:
    env = keyed(tmp_path)
    asyncio.run(seed(db_url, env))
    ended_uid, ended = answered_call()
    time.sleep(1.1)  # a fresh uniqueid (the Refresher counts from the current second)
    live_uid, live = answered_call()
    assert live_uid != ended_uid
    ids = asyncio.run(_callbacks(db_url, 25))

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        panel = panel_for(db_url, env)
        port = await panel.start()
        # alice's earlier call (ended, no disposition yet), then her call now
        await ingest(db_url, tmp_path, [call_segment(ended, end=True)], node="pbx-a",
                     options=ServerOptions(speed=None, stamp_on_send=True))
        await ingest(db_url, tmp_path, [call_segment(live, end=False)], node="pbx-a",
                     options=ServerOptions(speed=None, stamp_on_send=True))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    for w, h in SIZES:
                        page = await log_in(browser, port, "alice")
                        await page.set_viewport_size({"width": w, "height": h})
                        await page.locator(f'article[data-uid="{ended_uid}"]').wait_for()
                        await page.locator(f'article[data-uid="{live_uid}"]').wait_for()
                        await page.locator("#callbacks tbody tr").first.wait_for()
                        order = await page.eval_on_selector_all(
                            "#calls article", "els => els.map(e => [e.dataset.uid, "
                            "e.className, e.getBoundingClientRect().height])")
                        rows = await page.eval_on_selector_all(
                            "#callbacks tbody tr", "els => els.map(e => +e.dataset.request)")
                        out[w] = {"order": order, "rows": rows,
                                  "count": await page.locator("#cb-count").text_content(),
                                  "page": await page.locator("#cb-page").text_content(),
                                  "form": await page.locator(
                                      f'article[data-uid="{ended_uid}"] select.disposition'
                                  ).is_visible()}
                        await page.screenshot(path=str(ARTIFACTS / f"panel-{w}x{h}.png"))
                        await page.click("#cb-next")
                        await page.wait_for_function(
                            "() => document.querySelector('#cb-page').textContent"
                            ".startsWith('11')")
                        out[w]["next"] = await page.eval_on_selector_all(
                            "#callbacks tbody tr", "els => els.map(e => +e.dataset.request)")
                        # a click on the folded line unfolds it
                        await page.click(f'article[data-uid="{ended_uid}"] .line')
                        out[w]["unfolded"] = await page.locator(
                            f'article[data-uid="{ended_uid}"] dl').is_visible()
                        await page.close()
                finally:
                    await browser.close()
        finally:
            await panel.stop()
        return out
    out = asyncio.run(main())
    for w, _ in SIZES:
        got = out[w]
        (first_uid, first_class, first_h), (second_uid, second_class, second_h) = got["order"]
        assert first_uid == live_uid and "now" in first_class and "folded" not in first_class
        assert second_uid == ended_uid and "folded" in second_class
        assert second_h < 70 < first_h, got["order"]  # one line against a whole card
        assert got["form"]  # the disposition is still one click away
        assert got["rows"] == ids[:10] and got["next"] == ids[10:20]
        assert got["count"] == "25 open, oldest first" and got["page"] == "1\u201310 of 25"
        assert got["unfolded"]
