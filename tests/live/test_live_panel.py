"""The agent panel on the live Asterisk 22: the production ``switchboard panel``
command, a real browser, SIPp callers, SIPp desk phones and SIPp as the
agency's switchboard taking the calls back on the carrier's address.

One agent (dana, desk phone 2004) is logged in; her phone answers after a ring
and talks 25 s, so that she has time to work the panel during the call."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.async_api import Page, async_playwright

from tests.helpers import ARGS, ARTIFACTS, CHROMIUM
from tests.live import sipp
from tests.live.calls import caller, finish, national, start_calls, uniqueids
from tests.live.harness import (
    CASE_HIGH,
    REGISTERED,
    RING_MS,
    WRONG_PIN,
    Live,
    Service,
    skip_reason,
)
from tests.live.node import AMI_PORT, CARRIER_IP, CLI

if (_reason := skip_reason()) is not None:
    pytest.skip(_reason, allow_module_level=True)

DANA = 3  # phone index: 2004
PASSWORD = "dana-desk-password-1"
TALK_MS = 25_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def panel(live: Live) -> Iterator[tuple[Service, int]]:
    """dana's account, her phone talking long, the panel as its unit runs it."""
    proc = subprocess.run(
        [str(CLI), "agent", "add", "dana", "Dana Desk", "--interface", "PJSIP/2004",
         "--password-stdin"], input=PASSWORD + "\n", text=True, capture_output=True,
        env=live.env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    phone = live.node.phones[DANA]
    old = live.phones[DANA]
    old.kill()
    main, ooc = sipp.register_and_answer(phone.name, phone.password, RING_MS, TALK_MS)
    long_talker = sipp.Sipp(f"phone-{phone.name}-long", live.sipp_dir, phone.ip, live.phone_target,
                            main, ooc)
    long_talker.start()
    live.phones[DANA] = long_talker
    port = _free_port()
    env = live.env | {"SB_PANEL_LISTEN": f"127.0.0.1:{port}", "SB_PANEL_AMI_USER": "panel",
                      "SB_PANEL_AMI_SECRET": live.node.panel_secret,
                      "SB_PANEL_AMI_ADDR": f"127.0.0.1:{AMI_PORT}"}
    service = Service("panel", ["panel"], env, live.sipp_dir.parent / "panel.log")
    service.start()
    try:
        live.wait_port(port)
        _registered(live, phone.name, phone.ip)
        asyncio.run(live.agents([DANA]))
        yield service, port
    finally:
        service.stop()
        long_talker.kill()
        main, ooc = sipp.register_and_answer(phone.name, phone.password, RING_MS, 3000)
        back = sipp.Sipp(f"phone-{phone.name}-again", live.sipp_dir, phone.ip,
                         live.phone_target,
                         main, ooc)
        back.start()
        live.phones[DANA] = back


def _registered(live: Live, name: str, ip: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if f"{name}/sip:{name}@{ip}" in live.node.rx("pjsip show contacts"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not register")


def agency(live: Live, tag: str) -> sipp.Sipp:
    """The agency's switchboard on the carrier's address and port: answers one call."""
    proc = sipp.Sipp(f"agency-{tag}", live.sipp_dir, CARRIER_IP, live.target,
                     sipp.agency_answers(3000), port=5060, calls=1000)
    proc.start()
    live.carrier_available()
    return proc


async def agency_call_done(sw: sipp.Sipp, timeout_s: float = 30) -> list[str]:
    """The INVITEs the agency answered, once its call is over (a BYE either way);
    then the agency's SIPp is stopped."""
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if sw.received("BYE") or any("BYE sip:" in b for b in sw.sent_requests()):
                return sw.received("INVITE")
            await asyncio.sleep(0.2)
        raise AssertionError("the agency's call never ended")
    finally:
        sw.kill()


async def log_in(page: Page, port: int) -> None:
    await page.goto(f"http://127.0.0.1:{port}/")
    await page.fill("#login", "dana")
    await page.fill("#password", PASSWORD)
    await page.click("#login-btn")
    await page.wait_for_selector("#status.ok")


async def until_card(page: Page, uid: str, text: str, timeout_s: float) -> float:
    start = time.monotonic()
    await page.wait_for_function(
        "([uid, t]) => { const e = document.querySelector(`article[data-uid=\"${uid}\"]`);"
        " return e && e.textContent.includes(t); }", arg=[uid, text], polling=20,
        timeout=timeout_s * 1000)
    return time.monotonic() - start


async def uid_of(live: Live, number: str, since: float, timeout_s: float = 30) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = (await uniqueids(live, since)).get(national(number))
        if found:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"no call from {number}")


async def answered_at_commit(live: Live, uid: str, timeout_s: float = 60) -> float:
    """The moment the listener committed the agent's answer of this call."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = await live.fetch("SELECT 1 FROM queue_call WHERE uniqueid = $1 AND "
                                "member_interface = 'PJSIP/2004' AND answered_at IS NOT NULL",
                                uid)
        if rows:
            return time.monotonic()
        await asyncio.sleep(0.01)
    raise AssertionError(f"{uid} was never answered by 2004")


def test_agent_works_verified_unverified_and_callback_calls(live: Live,
                                                             panel: tuple[Service, int]
                                                             ) -> None:
    _, port = panel
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}

    async def main() -> None:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1200, "height": 1000})
                await log_in(page, port)

                # 1. a verified caller: the screen pop, case details, the outcome
                since = time.time()
                number = REGISTERED[20]
                placed = await start_calls(live, [caller(number, "1015", case=CASE_HIGH,
                                                         patience_ms=90_000)], tag="p1")
                uid = await uid_of(live, number, since)
                t = await answered_at_commit(live, uid)
                await until_card(page, uid, "connected", 1.0)
                out["pop_s"] = time.monotonic() - t
                card = page.locator(f'article[data-uid="{uid}"]')
                out["verified_card"] = await card.text_content()
                await card.locator(".show-case").click()
                await card.locator(".case:not(.hidden)").wait_for()
                out["case"] = await card.locator(".case").text_content()
                await page.screenshot(path=str(ARTIFACTS / "live-panel-verified.png"),
                                      full_page=True)
                await finish(placed, 90)
                await until_card(page, uid, "ended", 15)
                await card.locator("select.disposition").select_option("info-given")
                await card.locator(".save-disposition").click()
                await page.wait_for_function(
                    "(uid) => !document.querySelector(`article[data-uid=\"${uid}\"]`)",
                    arg=uid, polling=50, timeout=5000)
                out["uid1"] = uid

                # 2. an UNVERIFIED caller (wrong PINs): verified by calling the agency
                # back on its registered number, then the case is looked up
                since = time.time()
                number = live.unregistered_number()
                placed = await start_calls(live, [caller(number, "1016",
                                                         pins=[WRONG_PIN] * 3,
                                                         patience_ms=90_000)], tag="p2")
                uid = await uid_of(live, number, since)
                await answered_at_commit(live, uid)
                card = page.locator(f'article[data-uid="{uid}"]')
                await until_card(page, uid, "UNVERIFIED", 2)
                out["unverified_card"] = await card.text_content()
                sw = agency(live, "verify")
                await card.locator(".oob").click()
                await card.locator(".confirm-yes").wait_for(timeout=30_000)
                out["calling"] = await card.locator(".msg").text_content()
                out["agency_invite"] = await agency_call_done(sw)
                await card.locator(".confirm-yes").click()
                await until_card(page, uid, "VERIFIED by calling the agency back", 5)
                await card.locator("input.case-number").fill(CASE_HIGH)
                await card.locator(".lookup").click()
                await card.locator(".show-case").wait_for(timeout=5000)
                await card.locator(".show-case").click()
                await card.locator(".case:not(.hidden)").wait_for()
                out["case2"] = await card.locator(".case").text_content()
                await page.screenshot(path=str(ARTIFACTS / "live-panel-callback-verified.png"),
                                      full_page=True)
                await finish(placed, 90)
                await until_card(page, uid, "ended", 15)
                await card.locator("select.disposition").select_option("referred")
                await card.locator("input.note").fill("referred to the regional desk")
                await card.locator(".save-disposition").click()
                await page.wait_for_function(
                    "(uid) => !document.querySelector(`article[data-uid=\"${uid}\"]`)",
                    arg=uid, polling=50, timeout=5000)
                out["uid2"] = uid

                # 3. a callback request: nobody logged in, the caller leaves one;
                # dana claims it, calls the registered number back and closes it
                await live.agents([])
                since = time.time()
                number = REGISTERED[21]
                placed = await start_calls(live, [caller(number, "1015", case=CASE_HIGH,
                                                         patience_ms=90_000)], tag="p3")
                await finish(placed, 90)
                uid = await uid_of(live, number, since)
                await live.agents([DANA])
                await page.click("#cb-refresh")
                # this call's request (earlier tests left requests from the same lines)
                rid = (await live.fetch("SELECT request_id FROM callback_request "
                                        "WHERE uniqueid = $1", uid))[0]["request_id"]
                row = page.locator(f'#callbacks tbody tr[data-request="{rid}"]')
                await page.locator("#callbacks tbody tr").first.wait_for(timeout=10_000)
                # oldest first, ten a page: earlier tests' requests come before it
                for _ in range(100):
                    if await row.count() or await page.locator("#cb-next").is_disabled():
                        break
                    shown = await page.locator("#cb-page").text_content()
                    await page.click("#cb-next")
                    await page.wait_for_function(
                        "(b) => document.querySelector('#cb-page').textContent !== b",
                        arg=shown, polling=50, timeout=5000)
                await row.wait_for(timeout=10_000)
                await row.locator(".claim").click()
                row = page.locator(f'#callbacks tbody tr[data-request="{rid}"]')
                await row.locator(".dial").wait_for()
                sw = agency(live, "callback")
                await row.locator(".dial").click()
                await page.wait_for_function("() => document.querySelector('#cb-msg')"
                                             ".textContent.startsWith('Calling')",
                                             polling=50, timeout=30_000)
                out["cb_msg"] = await page.locator("#cb-msg").text_content()
                out["callback_invite"] = await agency_call_done(sw)
                await page.screenshot(path=str(ARTIFACTS / "live-panel-callback.png"),
                                      full_page=True)
                await row.locator("select.disposition").select_option("info-given")
                await row.locator(".close").click()
                await page.wait_for_function(
                    f"() => !document.querySelector('#callbacks tbody "
                    f"tr[data-request=\"{rid}\"]')", polling=50, timeout=5000)
                out["uid3"] = uid

                # 4. the same from the desk phone, for an agent without a screen:
                # on a call with an UNVERIFIED caller she dials *30 (the caller on
                # hold); the agency's registered number is dialled; no key pressed
                # afterwards, so no mark
                since = time.time()
                out["t4"] = since
                number = live.unregistered_number()
                placed = await start_calls(live, [caller(number, "1017",
                                                         pins=[WRONG_PIN] * 3,
                                                         patience_ms=90_000)], tag="p4")
                uid = await uid_of(live, number, since)
                await answered_at_commit(live, uid)
                sw = agency(live, "desk")
                phone = live.node.phones[DANA]
                star30 = sipp.Sipp(f"star30-{phone.name}", live.sipp_dir, phone.ip,
                                   live.phone_target,
                                   sipp.feature_call(phone.name, phone.password, "*30",
                                                     60_000))
                star30.start()
                out["desk_invite"] = await agency_call_done(sw)
                out["star30_rc"] = await star30.wait(60)
                await finish(placed, 90)
                out["uid4"] = uid
            finally:
                await browser.close()

    asyncio.run(main())
    print(f"live panel: screen pop {out['pop_s']:.3f} s after the answer's commit")
    assert out["pop_s"] <= 1.0
    assert "VERIFIED (full)" in out["verified_card"]
    assert "Deputy 1015 (FAKE) (1015)" in out["verified_card"]
    assert "yes, the agency's registered line" in out["verified_card"]
    assert "national desk" in out["case"]
    assert "UNVERIFIED" in out["unverified_card"] and "wrong PIN" in out["unverified_card"]
    assert "Case number" not in out["unverified_card"]
    first_line = REGISTERED[0]  # the agency's first registered line, from the database
    assert first_line in out["calling"]
    [invite] = out["agency_invite"]
    assert re.search(rf"^INVITE sip:{re.escape(first_line)}@", invite, re.M), invite
    assert "national desk" in out["case2"]
    [invite] = out["callback_invite"]
    assert re.search(rf"^INVITE sip:{re.escape(REGISTERED[21])}@", invite, re.M), invite
    assert out["cb_msg"] == f"Calling {REGISTERED[21]}."

    story = asyncio.run(live.fetch(
        "SELECT uniqueid, actor, action, result FROM audit_log WHERE uniqueid = ANY($1) "
        "ORDER BY at", [out["uid1"], out["uid2"], out["uid3"], out["uid4"]]))
    by_call: dict[str, list[tuple[str, str, str]]] = {}
    for r in story:
        by_call.setdefault(r["uniqueid"], []).append((r["actor"], r["action"], r["result"]))
    assert by_call[out["uid1"]] == [
        ("agi", "caller-id", "passed"), ("agi", "verify", "full"), ("agi", "lookup", "found"),
        ("agent:dana", "disclose", "shown"), ("agent:dana", "disposition", "info-given")]
    assert [(a, r) for _, a, r in by_call[out["uid2"]] if _ == "agent:dana"] == [
        ("oob-dial", "started"), ("oob-call", "accepted"), ("verify", "callback"),
        ("lookup", "found"), ("disclose", "shown"), ("disposition", "referred")]
    assert [(a, r) for _, a, r in by_call[out["uid3"]] if _ == "agent:dana"] == [
        ("callback-claim", "claimed"), ("callback-dial", "started"),
        ("oob-call", "accepted"), ("callback-close", "info-given")]
    [invite] = out["desk_invite"]
    assert re.search(rf"^INVITE sip:{re.escape(first_line)}@", invite, re.M), invite
    assert out["star30_rc"] == 0
    assert [(a, r) for _, a, r in by_call[out["uid4"]] if _ == "agent:dana"] == [
        ("oob-dial", "started"), ("oob-call", "accepted")]
    marks = asyncio.run(live.fetch(
        "SELECT fields->>'Step' AS step, fields->>'Status' AS status FROM ami_event "
        "WHERE event = 'UserEvent' AND fields->>'UserEvent' = 'SBOob' "
        "AND event_time >= to_timestamp($1) ORDER BY event_time", out["t4"]))
    assert [(m["step"], m["status"]) for m in marks][-3:] == [
        ("dial", None), ("done", "ANSWER"), ("mark", "no-answer-given")]
    anchored = live.node.switchboard("audit", "anchor", env=live.env)
    assert anchored.returncode == 0, anchored.stderr
    verified = live.node.switchboard("audit", "verify", env=live.env)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_doctor_on_the_live_node(live: Live) -> None:
    """`switchboard doctor` against the real Asterisk 22: the listener's read
    classes and every module the dialplan needs, as Asterisk itself reports them."""
    env = {**live.env, **live.node.ops_env(), "SB_AGI_DIR": str(live.node.agidir),
           "SB_AGI_CONFIG": str(live.node.root.parent / "agi.conf"),
           "SB_AMI_NODES": f"sb-live@127.0.0.1:{AMI_PORT}"}
    r = subprocess.run([str(CLI), "doctor"], env=env, capture_output=True, text=True,
                       timeout=120, check=False)
    lines = r.stdout.splitlines()
    assert not [line for line in lines if line.startswith("FAIL")], r.stdout
    assert any(line.startswith("OK") and "the listener" not in line
               and "modules the dialplan needs are running" in line for line in lines)
    assert any("listener reads agent, call, cdr, reporting, security, system, user" in line
               for line in lines), r.stdout
    assert any(line.startswith("OK") and "clock" in line for line in lines)
    assert r.returncode in (0, 1), r.stdout + r.stderr
