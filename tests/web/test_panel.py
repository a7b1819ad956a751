"""The agent panel in a real browser (Debian's Chromium driven by Playwright)
against the real server, the real AGI service verifying the callers and the real
listener storing recorded AMI streams; Originate against a fake AMI server that
answers as Asterisk does.  Screenshots go to test-artifacts/."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser, Page, async_playwright

from switchboard import auditlog
from switchboard.agi import contract, fakecall
from switchboard.agi.app import make_hasher
from switchboard.ami_listener.actions import AmiLogin
from switchboard.ami_listener.replay import ServerOptions
from switchboard.pgcluster import free_port
from switchboard.web.panel import Panel, PanelConfig
from switchboard.web.wallboard import Board, BoardConfig
from tests.agi.conftest import AGENCY, CASE_FOUND, LINE, OFFICER, PIN, agi_settings
from tests.helpers import ARGS, ARTIFACTS, CHROMIUM, as_service, db_env, fetch, ingest
from tests.web.conftest import (
    PASSWORD,
    FakeAmi,
    PgProxy,
    agi_service,
    answered_call,
    call_segment,
    keyed,
    seed,
    verify,
)

CLI = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "switchboard"
WRONG = "000000"
LIVE = ServerOptions(speed=1.0, stamp_on_send=True)  # as Asterisk sends it, now


def panel_for(db_url: str, env: dict[str, str], **cfg: Any) -> Panel:
    settings = agi_settings(**env)
    key = auditlog.settings_key(settings)
    url = cfg.pop("url", None) or as_service(db_url, "panel")
    config = PanelConfig(port=free_port(), **{"recheck_s": 0.5, **cfg})
    return Panel(url, config, make_hasher(settings), auditlog.session_settings(key))


async def committed(db_url: str, sql: str, *args: Any) -> float:
    """Wait (up to 20 s) until ``sql`` is true; the moment it was."""
    conn = await asyncpg.connect(db_url)
    try:
        async with asyncio.timeout(20):
            while not await conn.fetchval(sql, *args):
                await asyncio.sleep(0.01)
        return time.monotonic()
    finally:
        await conn.close()


async def log_in(browser: Browser, port: int, login: str) -> Page:
    page = await browser.new_page(viewport={"width": 1200, "height": 900})
    await page.goto(f"http://127.0.0.1:{port}/")
    await page.fill("#login", login)
    await page.fill("#password", PASSWORD[login])
    await page.click("#login-btn")
    await page.wait_for_selector("#panel-view:not(.hidden)")
    await page.wait_for_selector("#status.ok")
    return page


async def card_text(page: Page, uid: str) -> str:
    loc = page.locator(f'article[data-uid="{uid}"]')
    return (await loc.text_content() or "") if await loc.count() else ""


async def shown(page: Page, uid: str, want: str, since: float, seconds: float) -> float:
    await page.wait_for_function(
        "([uid, want]) => { const e = document.querySelector(`article[data-uid=\"${uid}\"]`);"
        " return e && e.textContent.includes(want); }", arg=[uid, want], polling=20,
        timeout=max(1.0, seconds - (time.monotonic() - since)) * 1000)
    return time.monotonic() - since


def audit_verify(db_url: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **db_env(db_url), **env}
    subprocess.run([str(CLI), "audit", "anchor"], env=full, check=True, capture_output=True)
    return subprocess.run([str(CLI), "audit", "verify"], env=full, capture_output=True,
                          text=True, check=False)


def test_screen_pop_case_details_and_disposition(db_url: str, tmp_path: Path) -> None:
    """A verified caller rings alice's phone: her panel shows the call's context
    within a second of AgentCalled and of AgentConnect; bob's shows nothing;
    case details only to alice, audited; the disposition closes the chain."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = keyed(tmp_path)
    asyncio.run(seed(db_url, env))
    uid, frames = answered_call()

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with agi_service(db_url, env) as agi_port:
            out["ivr"] = await verify(agi_port, uid, [AGENCY, OFFICER, PIN])
        panel = panel_for(db_url, env)
        port = await panel.start()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                alice = await log_in(browser, port, "alice")
                bob = await log_in(browser, port, "bob")
                sue = await log_in(browser, port, "sue")
                feed = asyncio.ensure_future(ingest(
                    db_url, tmp_path, [call_segment(frames, end=True)], node="pbx-a",
                    options=LIVE))
                t = await committed(db_url, "SELECT 'PJSIP/2001' = ANY(ringing) FROM "
                                    "queue_call WHERE uniqueid = $1", uid)
                out["ringing_s"] = await shown(alice, uid, "ringing", t, 1.0)
                out["ringing_text"] = await card_text(alice, uid)
                t = await committed(db_url, "SELECT answered_at IS NOT NULL FROM queue_call "
                                    "WHERE uniqueid = $1", uid)
                out["connect_s"] = await shown(alice, uid, "connected", t, 1.0)
                out["connected_text"] = await card_text(alice, uid)
                out["bob_text"] = await card_text(bob, uid)
                out["bob_empty"] = await bob.locator("#no-calls").is_visible()
                out["sue_text"] = await card_text(sue, uid)

                await alice.click(f'article[data-uid="{uid}"] .show-case')
                await alice.wait_for_selector(f'article[data-uid="{uid}"] .case:not(.hidden)')
                out["case_text"] = await alice.locator(
                    f'article[data-uid="{uid}"] .case').text_content()
                await alice.screenshot(path=str(ARTIFACTS / "panel-screen-pop.png"),
                                       full_page=True)
                # bob asks for the case of a call that is not his: refused
                out["bob_case"] = await bob.evaluate(
                    "async (uid) => (await fetch(`/api/calls/${uid}/case`, {method: 'POST', "
                    "headers: {'X-SB-Panel': '1'}})).status", uid)
                # the caller hangs up; alice saves the outcome in wrap-up
                await feed
                await alice.wait_for_function(
                    "(uid) => document.querySelector(`article[data-uid=\"${uid}\"]`)"
                    ".textContent.includes('ended')", arg=uid, timeout=5000, polling=50)
                await asyncio.sleep(0.5)
                card = alice.locator(f'article[data-uid="{uid}"]')
                await card.locator("select.disposition").select_option("info-given")
                await card.locator("input.note").fill("Gave the desk's number (FAKE)")
                await card.locator(".save-disposition").click()
                await alice.wait_for_function(
                    "(uid) => !document.querySelector(`article[data-uid=\"${uid}\"]`)",
                    arg=uid, timeout=5000, polling=50)  # disposed: no longer waiting on her
                await alice.screenshot(path=str(ARTIFACTS / "panel-after-disposition.png"),
                                       full_page=True)
            finally:
                await browser.close()
                await panel.stop()
        return out

    out = asyncio.run(main())
    print(f"panel screen pop: ringing {out['ringing_s']:.3f} s, "
          f"connected {out['connect_s']:.3f} s after the commit")
    assert out["ivr"]["SB_VERIFIED"] == "full" and out["ivr"]["SB_LOOKUP"] == "found"
    assert out["ringing_s"] <= 1.0 and out["connect_s"] <= 1.0
    for text in (out["ringing_text"], out["connected_text"]):
        assert "VERIFIED (full)" in text and "Demo County Sheriff's Office (FAKE) (42)" in text
        assert "Officer 1001 (FAKE) (1001)" in text and LINE in text
        assert "yes, the agency's registered line" in text and "high priority" in text
    assert "Child last seen" not in out["connected_text"]  # details only on request
    assert out["bob_text"] == "" and out["bob_empty"]
    assert "not yours" in out["sue_text"]  # a supervisor sees every live call
    assert "Child last seen at the station (FAKE)" in out["case_text"]
    assert "Family court order" not in out["case_text"]  # supervisors only
    assert out["bob_case"] == 403

    rows = asyncio.run(fetch(db_url, "SELECT actor, action, result, detail FROM audit_log "
                             "WHERE uniqueid = $1 ORDER BY at", uid))
    story = [(r["actor"], r["action"], r["result"]) for r in rows]
    assert story == [("agi", "caller-id", "passed"), ("agi", "verify", "full"),
                     ("agi", "lookup", "found"),
                     ("agent:alice", "disclose", "shown"), ("agent:bob", "disclose", "refused"),
                     ("agent:alice", "disposition", "info-given")]
    assert "note sha256" in rows[-1]["detail"] and "FAKE" not in rows[-1]["detail"]
    dispo = asyncio.run(fetch(db_url, "SELECT d.wrapup_s, d.call_ended_at, q.ended_at "
                              "FROM call_disposition d JOIN queue_call q USING (uniqueid) "
                              "WHERE d.uniqueid = $1", uid))[0]
    assert dispo["call_ended_at"] == dispo["ended_at"] and dispo["wrapup_s"] >= 0.4
    # AHT (sql/kpi.md): talk + the disposition's wrap-up, not + W (15 s)
    fig = asyncio.run(fetch(as_service(db_url, "reports"),
                            "SELECT q.aht_s, c.talk_s FROM sb_kpi_queue(now() - interval "
                            "'1 day', now() + interval '1 day', 'day', 'UTC', 5, 20, "
                            "'offered_excl_short', 15) q, queue_call c "
                            "WHERE q.queue = c.queue AND c.uniqueid = $1", uid))[0]
    assert fig["aht_s"] == round(fig["talk_s"] + dispo["wrapup_s"], 1)
    agent_fig = asyncio.run(fetch(as_service(db_url, "reports"),
                                  "SELECT aht_s FROM sb_kpi_agent(now() - interval '1 day', "
                                  "now() + interval '1 day', 'day', 'UTC', 15) "
                                  "WHERE interface = 'PJSIP/2001'"))[0]
    assert agent_fig["aht_s"] == fig["aht_s"]
    result = audit_verify(db_url, env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unverified_caller_verified_by_calling_the_agency_back(db_url: str,
                                                               tmp_path: Path) -> None:
    """A caller whose PIN was wrong reaches alice UNVERIFIED: nothing disclosed;
    she has the system call the agency's registered number (the Originate rings
    her phone, then sb-oob dials the number from the database), marks the
    officer confirmed, looks the case up and sees it."""
    env = keyed(tmp_path)
    asyncio.run(seed(db_url, env))
    uid, frames = answered_call()

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with agi_service(db_url, env) as agi_port:
            out["ivr"] = await verify(agi_port, uid, [AGENCY, OFFICER, WRONG] * 3,
                                      callerid="+16155550199")
        ami = FakeAmi()
        await ami.start()
        panel = panel_for(db_url, env, ami=AmiLogin("127.0.0.1", ami.port, "panel",
                                                    ami.secret))
        port = await panel.start()
        await ingest(db_url, tmp_path, [call_segment(frames, end=False)], node="pbx-a",
                     options=LIVE)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                alice = await log_in(browser, port, "alice")
                card = alice.locator(f'article[data-uid="{uid}"]')
                await card.wait_for()
                out["before"] = await card.text_content()
                out["show_case_buttons"] = await card.locator(".show-case").count()
                # a number typed into the request is not a thing the panel reads
                out["typed"] = await alice.evaluate(
                    "async (uid) => { const r = await fetch(`/api/calls/${uid}/oob`, "
                    "{method: 'POST', headers: {'X-SB-Panel': '1', 'Content-Type': "
                    "'application/json'}, body: JSON.stringify({agency: '77', number: "
                    "'+15555550100'})}); return [r.status, await r.json()]; }", uid)
                await card.locator(".oob").click()
                await card.locator(".confirm-yes").wait_for()
                out["calling"] = await card.locator(".msg").text_content()
                await card.locator(".confirm-yes").click()
                await alice.wait_for_function(
                    "(uid) => document.querySelector(`article[data-uid=\"${uid}\"]`)"
                    ".textContent.includes('VERIFIED by calling the agency back')",
                    arg=uid, timeout=5000, polling=50)
                await card.locator("input.case-number").fill(CASE_FOUND)
                await card.locator(".lookup").click()
                await card.locator(".show-case").wait_for(timeout=5000)
                await card.locator(".show-case").click()
                await card.locator(".case:not(.hidden)").wait_for()
                out["case_text"] = await card.locator(".case").text_content()
                await alice.screenshot(path=str(ARTIFACTS / "panel-verified-by-callback.png"),
                                       full_page=True)
            finally:
                await browser.close()
                await panel.stop()
                await ami.close()
        out["originates"] = ami.originates
        return out

    out = asyncio.run(main())
    assert out["ivr"]["SB_VERIFIED"] in ("failed", "locked")
    assert "UNVERIFIED" in out["before"] and "wrong PIN" in out["before"]
    assert out["show_case_buttons"] == 0
    # the agency the caller claimed (42) wins over anything in the request, and
    # the number is the one registered for it, never the one sent
    assert len(out["originates"]) == 2
    for o in out["originates"]:
        f = o["fields"]
        assert f["Channel"] == "PJSIP/2001" and f["Context"] == "sb-oob"
        assert f["Exten"] == "s" and f["Async"] == "true"
        assert f["Variable"][1] == f"IVR_OOB_NUMBER={LINE}"
        assert b"+15555550100" not in o["raw"]
    assert out["typed"][0] == 200 and out["typed"][1]["e164"] == LINE
    assert LINE in out["calling"]
    assert "Child last seen at the station (FAKE)" in out["case_text"]
    rows = asyncio.run(fetch(db_url, "SELECT actor, action, result, detail FROM audit_log "
                             "WHERE uniqueid = $1 AND actor LIKE 'agent:%' ORDER BY at", uid))
    story = [(r["action"], r["result"]) for r in rows]
    assert story == [("oob-dial", "started"), ("oob-call", "accepted"),
                     ("oob-dial", "started"), ("oob-call", "accepted"),
                     ("verify", "callback"), ("lookup", "found"), ("disclose", "shown")]
    assert rows[4]["detail"].endswith(f"dialled {LINE}")
    result = audit_verify(db_url, env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_callback_requests_worked_to_the_end(db_url: str, tmp_path: Path) -> None:
    """Callback requests from the overflow path: claimed by one agent at a time,
    dialled to the registered number only, closed with a disposition; one left
    unstarted shows on the wall board's count."""
    env = keyed(tmp_path)
    asyncio.run(seed(db_url, env))

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        key = auditlog.settings_key(agi_settings(**env))
        agi = await asyncpg.connect(as_service(db_url, "agi"),
                                    server_settings=auditlog.session_settings(key))
        for uid, ani in (("pbx-a-1795860001.1", LINE), ("pbx-a-1795860001.2",
                                                        "+16155550199")):
            await agi.fetchval("SELECT sb_agi_callback($1, $2, NULL)", uid, ani)
        await agi.close()
        ami = FakeAmi()
        await ami.start()
        panel = panel_for(db_url, env, ami=AmiLogin("127.0.0.1", ami.port, "panel",
                                                    ami.secret))
        port = await panel.start()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                alice = await log_in(browser, port, "alice")
                bob = await log_in(browser, port, "bob")
                rows = alice.locator("#callbacks tbody tr")
                await rows.first.wait_for()
                out["listed"] = [await r.text_content() for r in await rows.all()]
                first = alice.locator("#callbacks tbody tr").first
                rid = await first.get_attribute("data-request")
                await first.locator(".claim").click()
                await alice.locator("#callbacks tbody tr .dial").wait_for()
                # bob: the list says who has it, and the API refuses him
                await bob.click("#cb-refresh")
                await bob.wait_for_function("() => document.querySelector('#callbacks "
                                            "tbody tr').textContent.includes('Alice')",
                                            polling=50)
                out["bob_claim"] = await bob.evaluate(
                    "async (rid) => (await fetch(`/api/callbacks/${rid}/claim`, {method: "
                    "'POST', headers: {'X-SB-Panel': '1'}})).status", rid)
                out["bob_dial"] = await bob.evaluate(
                    "async (rid) => (await fetch(`/api/callbacks/${rid}/dial`, {method: "
                    "'POST', headers: {'X-SB-Panel': '1'}})).status", rid)
                await alice.locator("#callbacks tbody tr .dial").click()
                await alice.wait_for_function("() => document.querySelector('#cb-msg')"
                                              ".textContent.startsWith('Calling')", polling=50)
                out["cb_msg"] = await alice.locator("#cb-msg").text_content()
                row = alice.locator(f'#callbacks tbody tr[data-request="{rid}"]')
                await row.locator("select.disposition").select_option("info-given")
                await row.locator(".close").click()
                await alice.wait_for_function(
                    f"() => !document.querySelector('#callbacks tbody tr[data-request=\"{rid}\"]')",
                    polling=50)
                await alice.screenshot(path=str(ARTIFACTS / "panel-callbacks.png"),
                                       full_page=True)
                # the unregistered caller's request: no number to dial
                second = alice.locator("#callbacks tbody tr").first
                out["second"] = await second.text_content()
            finally:
                await browser.close()
                await panel.stop()
                await ami.close()
        out["originates"] = ami.originates
        return out

    out = asyncio.run(main())
    assert len(out["listed"]) == 2 and LINE in out["listed"][0]
    assert "no registered number" in out["listed"][1]
    assert out["bob_claim"] == 409 and out["bob_dial"] == 403
    assert [o["fields"]["Variable"][1] for o in out["originates"]] == [
        f"IVR_OOB_NUMBER={LINE}"]
    assert out["cb_msg"] == f"Calling {LINE}."
    assert "no registered number" in out["second"]
    done = asyncio.run(fetch(db_url, "SELECT status, disposition, claimed_by IS NOT NULL AS c,"
                             " started_at IS NOT NULL AS s FROM callback_request "
                             "ORDER BY request_id"))
    assert [tuple(r) for r in done] == [("done", "info-given", True, True),
                                        ("open", None, False, False)]
    # the wall board: the request nobody started, once older than the threshold
    async def board() -> tuple[dict[str, Any], dict[str, Any]]:
        b = Board(as_service(db_url, "reports"), BoardConfig(port=free_port(), token="t" * 20,
                                                              metrics_port=0,
                                                              callback_stale_min=15))
        await b.start()
        try:
            fresh = (await b.compute())["callbacks_stale"]
            owner = await asyncpg.connect(db_url)
            await owner.execute("UPDATE callback_request SET requested_at = now() - "
                                "interval '20 minutes'")
            await owner.close()
            return fresh, (await b.compute())["callbacks_stale"]
        finally:
            await b.stop()
    fresh, old = asyncio.run(board())
    assert fresh["n"] == 0 and old["n"] == 1 and old["oldest_s"] >= 1200
    result = audit_verify(db_url, env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_session_expiry_logout_and_lockout(db_url: str, tmp_path: Path) -> None:
    env = keyed(tmp_path)
    asyncio.run(seed(db_url, env))

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        panel = panel_for(db_url, env, session_s=12)
        port = await panel.start()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = await log_in(browser, port, "alice")
                t0 = time.monotonic()
                await page.wait_for_selector("#login-view:not(.hidden)", timeout=20000)
                out["expired_after_s"] = time.monotonic() - t0
                out["msg"] = await page.locator("#login-msg").text_content()
                out["after"] = await page.evaluate(
                    "async () => (await fetch('/api/calls')).status")
                page = await log_in(browser, port, "bob")
                await page.click("#logout")
                await page.wait_for_selector("#login-view:not(.hidden)")
                out["after_logout"] = await page.evaluate(
                    "async () => (await fetch('/api/calls')).status")
                # eight wrong passwords lock the account; then even the right one fails
                out["logged_out"] = await page.locator("#login-msg").text_content()
                await page.evaluate("() => { document.querySelector('#login-msg')"
                                    ".textContent = ''; }")
                for _ in range(8):
                    await page.fill("#login", "sue")
                    await page.fill("#password", "not-her-password")
                    await page.click("#login-btn")
                    await page.wait_for_function("() => document.querySelector("
                                                 "'#login-msg').textContent !== ''",
                                                 polling=50)
                    out.setdefault("wrong", []).append(
                        await page.locator("#login-msg").text_content())
                    await page.evaluate("() => { document.querySelector('#login-msg')"
                                        ".textContent = ''; }")
                await page.fill("#login", "sue")
                await page.fill("#password", PASSWORD["sue"])
                await page.click("#login-btn")
                await page.wait_for_function("() => document.querySelector('#login-msg')"
                                             ".textContent !== ''", polling=50)
                out["locked"] = await page.locator("#login-msg").text_content()
                out["cross_site"] = await page.evaluate(
                    "async () => (await fetch('/api/login', {method: 'POST', body: "
                    "JSON.stringify({login: 'sue', password: 'x'})})).status")
            finally:
                await browser.close()
                await panel.stop()
        return out

    out = asyncio.run(main())
    assert out["expired_after_s"] < 14 and "session ended" in out["msg"]
    assert out["after"] == 401 and out["after_logout"] == 401
    assert out["logged_out"] == "Logged out."
    assert out["wrong"][:7] == ["wrong login or password"] * 7
    assert out["wrong"][7].startswith("account locked")  # the 8th locks
    assert out["locked"].startswith("account locked")
    assert out["cross_site"] == 403
    rows = asyncio.run(fetch(db_url, "SELECT actor, result FROM audit_log WHERE action = "
                             "'panel-login' ORDER BY at"))
    assert [r["result"] for r in rows].count("ok") == 2
    assert rows[-1]["actor"] == "agent:sue" and rows[-1]["result"] == "refused"


def test_fail_closed_when_the_database_goes_away(db_url: str, tmp_path: Path,
                                                 pg_cluster: Any) -> None:
    """Alice's panel shows her connected call; the database goes away: the page
    clears it and says so plainly, the API answers 503; it comes back: the page
    says so and shows the call again."""
    env = keyed(tmp_path)
    asyncio.run(seed(db_url, env))
    uid, frames = answered_call()

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with agi_service(db_url, env) as agi_port:
            await verify(agi_port, uid, [AGENCY, OFFICER, PIN])
        await ingest(db_url, tmp_path, [call_segment(frames, end=False)], node="pbx-a",
                     options=LIVE)
        proxy = PgProxy(pg_cluster.port)
        await proxy.start()
        url = as_service(db_url, "panel").replace(f":{pg_cluster.port}/", f":{proxy.port}/")
        panel = panel_for(db_url, env, url=url)
        port = await panel.start()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = await log_in(browser, port, "alice")
                await page.locator(f'article[data-uid="{uid}"]').wait_for()
                proxy.cut()
                if panel.pool is not None:  # the pool's links went with the proxy
                    panel.pool.terminate()
                    panel.pool = None
                await page.wait_for_selector("#status.down", timeout=10000)
                out["down"] = await page.locator("#status").text_content()
                out["cards_down"] = await page.locator("article.call").count()
                out["api_down"] = await page.evaluate(
                    "async () => (await fetch('/api/calls')).status")
                await page.screenshot(path=str(ARTIFACTS / "panel-database-down.png"))
                proxy.restore()
                await page.wait_for_function("() => document.querySelector('#status')"
                                             ".textContent.startsWith('Connected again')",
                                             timeout=15000, polling=50)
                await page.locator(f'article[data-uid="{uid}"]').wait_for()
                out["back"] = await page.locator("#status").text_content()
            finally:
                await browser.close()
                await panel.stop()
                await proxy.close()
        return out

    out = asyncio.run(main())
    assert "cannot reach the database" in out["down"] and out["cards_down"] == 0
    assert out["api_down"] == 503
    assert out["back"].startswith("Connected again")


@pytest.mark.parametrize("who", ["bob", "nobody"])
def test_originate_only_for_your_own_call_and_rate_limited(db_url: str, tmp_path: Path,
                                                           who: str) -> None:
    """In the database itself (sb_panel can call nothing else): another agent's
    call is refused; per call at most oob_per_call tries; each refusal audited."""
    env = keyed(tmp_path)
    asyncio.run(seed(db_url, env))
    uid, frames = answered_call()

    async def main() -> list[Any]:
        async with agi_service(db_url, env) as agi_port:
            await verify(agi_port, uid, [AGENCY, OFFICER, WRONG] * 3)
        await ingest(db_url, tmp_path, [call_segment(frames, end=False)], node="pbx-a",
                     options=LIVE)
        conn = await asyncpg.connect(as_service(db_url, "panel"))
        try:
            owner = await asyncpg.connect(db_url)
            ids = {r["login"]: r["agent_id"] for r in await owner.fetch(
                "SELECT login, agent_id FROM agent")}
            await owner.close()
            who_id = ids.get(who, 9999)
            got = [await conn.fetchrow("SELECT * FROM sb_panel_oob_begin($1, $2, NULL)",
                                       who_id, uid)]
            for _ in range(4):
                got.append(await conn.fetchrow("SELECT * FROM sb_panel_oob_begin($1, $2, "
                                               "NULL)", ids["alice"], uid))
            for table in ("agent", "audit_log", "oob_call", "case_record"):
                try:
                    await conn.fetch(f"SELECT * FROM {table} LIMIT 1")
                    got.append(f"{table} readable")
                except asyncpg.InsufficientPrivilegeError:
                    got.append(f"{table} refused")
            return got
        finally:
            await conn.close()

    got = asyncio.run(main())
    assert got[0]["outcome"] == "refused"
    assert got[0]["why"] == ("not your call" if who == "bob" else "no agent")
    assert [g["outcome"] for g in got[1:5]] == ["started", "started", "started", "refused"]
    assert got[4]["why"] == "too many calls back for this call"
    assert all(g["e164"] == LINE for g in got[1:4])
    assert got[5:] == ["agent refused", "audit_log refused", "oob_call refused",
                       "case_record refused"]


def desk_phone_env(script: str, phone: str) -> bytes:
    """The AGI environment of a feature code dialled from ``phone``'s desk phone."""
    env = fakecall.environment(script, f"pbx-a-1795869999.{phone[-4:]}", phone[-4:])
    return env.replace(b"agi_channel: PJSIP/pstn-00000002",
                       f"agi_channel: {phone}-0000001a".encode())


def test_desk_phone_calls_the_agency_back_with_star_30(db_url: str, tmp_path: Path) -> None:
    """For an agent without a screen: *30 runs the oob handler (the registered
    number of the caller's agency, for the call this phone is on), the dialplan
    dials it, and oob-confirm takes the agent's key; the same audit rows as the
    panel's.  Other phones and unknown ones are refused."""
    env = keyed(tmp_path)
    asyncio.run(seed(db_url, env))
    uid, frames = answered_call()

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with agi_service(db_url, env) as port:
            await verify(port, uid, [AGENCY, OFFICER, WRONG] * 3)
            await ingest(db_url, tmp_path, [call_segment(frames, end=False)], node="pbx-a",
                         options=LIVE)
            for phone in ("PJSIP/2002", "PJSIP/2999"):
                got = await fakecall.play(fakecall.Call("oob", "x", "2002"), port,
                                          env=desk_phone_env("oob", phone))
                out[phone] = got.variables
            begin = await fakecall.play(fakecall.Call("oob", "x", "2001"), port,
                                        env=desk_phone_env("oob", "PJSIP/2001"))
            out["begin"] = begin
            mark = await fakecall.play(
                fakecall.Call("oob-confirm", "x", "2001", ["1"],
                              {"SB_OOB_ID": begin.variables.get("SB_OOB_ID", ""),
                               "SB_OOB_DIAL": "ANSWER"}), port,
                env=desk_phone_env("oob-confirm", "PJSIP/2001"))
            out["mark"] = mark
            unreached = await fakecall.play(fakecall.Call("oob", "x", "2001"), port,
                                            env=desk_phone_env("oob", "PJSIP/2001"))
            out["again"] = unreached.variables
        return out

    out = asyncio.run(main())
    assert out["PJSIP/2002"] == {"SB_OOB": "refused"}  # bob is on no call
    assert out["PJSIP/2999"] == {"SB_OOB": "refused"}  # nobody's phone
    begin, mark = out["begin"], out["mark"]
    assert begin.variables["SB_OOB"] == "started"
    assert begin.variables["SB_OOB_NUMBER"] == LINE
    assert mark.variables == {"SB_OOB_CONFIRM": "callback"}
    assert out["again"] == {"SB_OOB": "refused"}  # verified now: nothing to call back for
    # the contract (switchboard/agi/contract.py) for the two desk-phone handlers
    assert {c.split(" ")[2] for c in begin.commands if c.startswith("SET VARIABLE")} == \
        contract.SETS["oob"]
    assert {c.split(" ")[2] for c in mark.commands if c.startswith("SET VARIABLE")} == \
        contract.SETS["oob-confirm"]
    assert {c.split(" ")[2] for c in mark.commands if c.startswith("GET VARIABLE")} == \
        contract.READS["oob-confirm"]
    rows = asyncio.run(fetch(db_url, "SELECT actor, action, result, detail FROM audit_log "
                             "WHERE uniqueid = $1 AND actor = 'agent:alice' ORDER BY at", uid))
    assert [(r["action"], r["result"]) for r in rows] == [
        ("oob-dial", "started"), ("oob-call", "accepted"), ("verify", "callback"),
        ("oob-dial", "refused")]
    level = asyncio.run(fetch(db_url, "SELECT level FROM sb_panel_verification($1)", uid))
    assert level[0]["level"] == "callback"
    result = audit_verify(db_url, env)
    assert result.returncode == 0, result.stdout + result.stderr
