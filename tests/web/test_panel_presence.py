"""The agent's own queues from the panel (issue 23), in a real browser: take
calls, pause for lunch, resume, stop; each change is applied to every node by
the listener (QueueAdd, QueuePause, QueueRemove over real sockets to two
nodes that answer as Asterisk does), refused when it makes no sense, and
audited."""

from __future__ import annotations

import asyncio
from pathlib import Path

from playwright.async_api import async_playwright

from switchboard.ami_listener.captures import frames_segment
from switchboard.ami_listener.replay import ReplayServer, ServerOptions
from switchboard.ami_listener.service import Listener
from tests.helpers import ARGS, CHROMIUM, as_service, fetch, nodes_settings
from tests.web.conftest import keyed, seed
from tests.web.test_panel import log_in, panel_for


def test_take_calls_pause_resume_stop_on_every_node(db_url: str, tmp_path: Path) -> None:
    env = keyed(tmp_path)
    asyncio.run(seed(db_url, env))

    async def main() -> tuple[dict[str, list[dict[str, str]]], list[str], str]:
        # each node answers a member action with Asterisk's event for it
        nodes = {name: ReplayServer([frames_segment([])], ServerOptions(
            speed=None, member_events=True)) for name in ("pbx-a", "pbx-b")}
        ports = {name: await s.start() for name, s in nodes.items()}
        settings = nodes_settings(tmp_path, ports)
        listener = Listener(settings, as_service(db_url, "listener"))
        await listener.start()
        panel = panel_for(db_url, env)
        port = await panel.start()
        shown: list[str] = []

        async def sent(n: int) -> None:
            async with asyncio.timeout(15):
                while any(len(s.stats.member_actions) < n for s in nodes.values()):
                    await asyncio.sleep(0.05)
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    page = await log_in(browser, port, "alice")
                    await page.wait_for_selector("#presence-state:text('not taking calls')")
                    await page.click("#q-pause")  # nothing to pause yet
                    await page.wait_for_selector("#presence-msg:text('log in first')")
                    await page.click("#q-login")
                    await page.wait_for_selector("#presence-state:text('taking calls in')")
                    shown.append(await page.locator("#presence-state").text_content() or "")
                    await sent(3)  # intake, priority, overflow: on both nodes
                    await page.select_option("#q-reason", "lunch")
                    await page.click("#q-pause")
                    await page.wait_for_selector("#presence-state:text('paused (lunch)')")
                    shown.append(await page.locator("#presence-state").text_content() or "")
                    await sent(6)
                    await page.click("#q-resume")
                    await page.wait_for_selector("#presence-state:text('taking calls')")
                    await sent(9)
                    await page.click("#q-logout")
                    await page.wait_for_selector("#presence-state:text('not taking calls')")
                    # a pause with a reason of the caller's own making is refused
                    refused = await page.evaluate(
                        "async () => (await fetch('/api/presence', {method: 'POST', headers:"
                        " {'X-SB-Panel': '1', 'Content-Type': 'application/json'}, body:"
                        " JSON.stringify({action: 'pause', reason: 'gone fishing'})})).status")
                finally:
                    await browser.close()
            await sent(12)
            await asyncio.sleep(0.5)  # and nothing more: each node reported back the same
        finally:
            await panel.stop()
            await listener.stop()
            for s in nodes.values():
                await s.close()
        return ({name: s.stats.member_actions for name, s in nodes.items()}, shown,
                str(refused))
    actions, shown, refused = asyncio.run(main())
    assert shown[0] == "taking calls in intake, overflow, priority"
    assert shown[1].startswith("paused (lunch)")
    assert refused == "403"
    # each node was sent the agent's four changes, once each, in every queue
    for name, sent_ in actions.items():
        kinds = [(a["Action"], a["Queue"], a.get("Paused"), a.get("Reason")) for a in sent_]
        queues = ("intake", "overflow", "priority")
        assert sorted(kinds[0:3]) == [("QueueAdd", q, "false", None) for q in queues], name
        assert sorted(kinds[3:6]) == [("QueuePause", q, "true", "lunch") for q in queues], name
        assert sorted(kinds[6:9]) == [("QueuePause", q, "false", None) for q in queues], name
        assert sorted(kinds[9:]) == [("QueueRemove", q, None, None) for q in queues], name
        assert all(a["Interface"] == "PJSIP/2001" for a in sent_)
    audit = asyncio.run(fetch(db_url, "SELECT action, result FROM audit_log WHERE action LIKE"
                              " 'agent-%' ORDER BY seq"))
    assert {(r["action"], r["result"]) for r in audit} >= {
        ("agent-login", "ok"), ("agent-pause", "ok"), ("agent-resume", "ok"),
        ("agent-logout", "ok"), ("agent-pause", "refused")}


def test_calling_an_agency_back_goes_through_a_node_that_answers(db_url: str,
                                                                  tmp_path: Path) -> None:
    """SB_PANEL_AMI_ADDR names two nodes; the first is down (nothing listens):
    the panel's Originate goes to the second, over a real socket."""
    from switchboard.ami_listener.actions import AmiLogin
    from switchboard.pgcluster import free_port
    from switchboard.settings import panel_ami_addresses
    from tests.web.conftest import FakeAmi

    assert panel_ami_addresses({"SB_PANEL_AMI_ADDR": "127.0.0.10:5038, 127.0.0.11"}) == [
        ("127.0.0.10", 5038), ("127.0.0.11", 5038)]
    env = keyed(tmp_path)

    async def main() -> tuple[str, list]:
        fake = FakeAmi()
        port = await fake.start()
        down = AmiLogin("127.0.0.1", free_port(), "panel", fake.secret, timeout_s=2)
        up = AmiLogin("127.0.0.1", port, "panel", fake.secret, timeout_s=5)
        panel = panel_for(db_url, env, ami=down, ami_others=(up,))
        try:
            result = await panel.callout.originate(7, "PJSIP/2001", "+16155550101", "Call back")
        finally:
            await fake.close()
        return result, fake.originates
    result, originates = asyncio.run(main())
    assert result == "accepted"
    assert [o["fields"].get("Channel") for o in originates] == ["PJSIP/2001"]
