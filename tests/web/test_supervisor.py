"""The supervisor's side of the panel in a real browser (Debian's Chromium,
Playwright) against the real server and PostgreSQL: a recording sealed by the
real shipper (age, opus-tools) played back by a supervisor once, audited,
refused to agents, to a second request and to an altered file; the reports
page showing exactly what `switchboard report --json` prints for the same day
(screenshots at 1920x1080 and 1280x720 in test-artifacts/).  Listening in
and transfers with a real Asterisk: tests/live/test_live_supervisor.py."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from playwright.async_api import async_playwright

from switchboard.admin.recordings import Shipper
from switchboard.admin.recstore import LocalStore
from switchboard.ami_listener.captures import Capture, Refresher, Segment
from switchboard.recsettings import load_recordings
from switchboard.web.supervise import SuperviseConfig
from tests.agi.conftest import AGENCY, OFFICER, PIN
from tests.audio import tone, write_wav
from tests.helpers import ARGS, ARTIFACTS, CHROMIUM, CLI, as_service, db_env, fetch, ingest
from tests.web.conftest import (
    PASSWORD,
    agi_service,
    answered_call,
    call_segment,
    keyed,
    seed,
    verify,
)
from tests.web.test_panel import LIVE, log_in, panel_for

TOOLS = shutil.which("age") and shutil.which("opusenc")


def sealed_recording(db_url: str, tmp: Path, uid: str, env: dict[str, str],
                     *more: str) -> tuple[Path, Path]:
    """A 3-second call recording as MixMonitor leaves it (of ``uid`` and of each
    of ``more``), through the real shipper: (store, identity)."""
    identity = tmp / "playback.key"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipients = tmp / "recipients.txt"
    recipients.write_text(subprocess.run(["age-keygen", "-y", str(identity)], check=True,
                                         capture_output=True, text=True).stdout)
    cfg = load_recordings({"SB_REC_SPOOL": str(tmp / "spool"), "SB_REC_STORE": str(tmp / "store"),
                           "SB_REC_RECIPIENTS_FILE": str(recipients), "SB_REC_NODE": "pbx-a"})
    (tmp / "spool" / "done").mkdir(parents=True)
    for u in (uid, *more):
        write_wav(tmp / "spool" / "done" / f"{u}__{u}9.wav", tone(600, 3.0))
    from switchboard import auditlog
    from tests.agi.conftest import agi_settings
    key = auditlog.settings_key(agi_settings(**env))
    shipper = Shipper(cfg, as_service(db_url, "recorder"), auditlog.session_settings(key))

    async def ship() -> int:
        try:
            return await shipper.pass_once()
        finally:
            await shipper.close()
    assert asyncio.run(ship()) == 1 + len(more)
    return tmp / "store", identity


@pytest.mark.skipif(not TOOLS, reason="recordings: age and opus-tools not installed "
                    "(make test installs them)")
def test_a_supervisor_plays_a_recording_once_and_agents_never(db_url: str,
                                                              tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = keyed(tmp_path)
    asyncio.run(seed(db_url, env))
    uid, frames = answered_call()
    store, identity = sealed_recording(db_url, tmp_path, uid, env)

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        await ingest(db_url, tmp_path, [call_segment(frames, end=True)], node="pbx-a",
                     options=LIVE)
        panel = panel_for(db_url, env, supervise=SuperviseConfig(store=LocalStore(store),
                                                                  identity=identity))
        port = await panel.start()
        base = f"http://127.0.0.1:{port}"
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    alice = await log_in(browser, port, "alice")
                    out["alice_sees_section"] = await alice.locator("#sup-view").is_visible()
                    out["alice_list"] = await alice.evaluate(
                        "fetch('/api/recordings').then(r => r.status)")
                    out["alice_ticket"] = await alice.evaluate(
                        "fetch('/api/recordings/1/play', {method: 'POST', headers: "
                        "{'X-SB-Panel': '1'}}).then(r => r.status)")
                    sue = await log_in(browser, port, "sue")
                    await sue.wait_for_selector("#recordings tr[data-rid]")
                    out["row"] = await sue.locator("#recordings tbody tr").first.text_content()
                    await sue.locator("#recordings button.play").first.click()
                    # played to its end: the stream is the call's Opus, decoded by
                    # the browser (a streamed answer has no length until it ends)
                    await sue.wait_for_function(
                        "() => document.getElementById('player').ended", timeout=20000)
                    out["duration"] = await sue.evaluate(
                        "document.getElementById('player').currentTime")
                    src = await sue.evaluate("document.getElementById('player').src")
                    out["again"] = await sue.evaluate(
                        f"fetch({json.dumps(src)}).then(r => r.status)")
                    await sue.screenshot(path=str(ARTIFACTS / "panel-recordings.png"))
                    # a fresh ticket, but from outside any session
                    ticket = await sue.evaluate(
                        "fetch('/api/recordings/' + document.querySelector("
                        "'#recordings tr[data-rid]').dataset.rid + '/play', {method: 'POST', "
                        "headers: {'X-SB-Panel': '1'}}).then(r => r.json())")
                    async with aiohttp.ClientSession() as http, \
                            http.get(base + ticket["url"]) as r:
                        out["no_session"] = r.status
                    # someone swaps the stored file: never played, and audited
                    sealed = next(store.rglob("*.opus.age"))
                    sealed.write_bytes(sealed.read_bytes()[:-10] + b"0123456789")
                    ticket = await sue.evaluate(
                        "fetch('/api/recordings/' + document.querySelector("
                        "'#recordings tr[data-rid]').dataset.rid + '/play', {method: 'POST', "
                        "headers: {'X-SB-Panel': '1'}}).then(r => r.json())")
                    out["altered"] = await sue.evaluate(
                        f"fetch({json.dumps(ticket['url'])}).then(r => r.status)")
                finally:
                    await browser.close()
        finally:
            await panel.stop()
        return out

    out = asyncio.run(main())
    assert not out["alice_sees_section"]
    assert out["alice_list"] == 403 and out["alice_ticket"] == 403
    assert uid in out["row"] and "0:03" in out["row"]
    assert out["duration"] == pytest.approx(3.0, abs=0.2)  # Chromium decoded the Opus
    assert out["again"] == 403  # a ticket plays once
    assert out["no_session"] == 401
    assert out["altered"] == 409
    rows = asyncio.run(fetch(db_url, "SELECT actor, uniqueid, result, detail FROM audit_log "
                             "WHERE action = 'recording-played' ORDER BY at"))
    # the ticket asked for outside a session was never spent: no row; the
    # altered file's ticket was (ok), then the panel refused to play it (failed)
    assert [(r["actor"], r["result"]) for r in rows] == [
        ("agent:alice", "refused"), ("agent:sue", "ok"), ("agent:sue", "ok"),
        ("agent:sue", "failed")]
    assert rows[1]["uniqueid"] == uid
    assert "differs from the audited digest" in rows[-1]["detail"]


@pytest.mark.skipif(not TOOLS, reason="recordings: age and opus-tools not installed "
                    "(make test installs them)")
def test_the_panel_purges_the_store_daily_and_keeps_held_calls(db_url: str,
                                                               tmp_path: Path) -> None:
    """The service's daily housekeeping: the panel on the playback host deletes
    what is past the retention, audited under its own name, and keeps a call
    under a legal hold and a recent one; the index says purged."""
    env = keyed(tmp_path)
    asyncio.run(seed(db_url, env))
    old, held, recent = "1733500001.1", "1733500002.1", "1733500003.1"
    store, identity = sealed_recording(db_url, tmp_path, old, env, held, recent)
    asyncio.run(fetch(db_url, "UPDATE recording SET started_at = now() - interval '40 days' "
                      "WHERE uniqueid = ANY($1)", [old, held]))
    asyncio.run(fetch(db_url, "INSERT INTO legal_hold (uniqueid, reason, held_by) "
                      "VALUES ($1, 'order 24-9', 'ops:test')", held))

    async def main() -> list[Any]:
        panel = panel_for(db_url, env, supervise=SuperviseConfig(
            store=LocalStore(store), identity=identity, retention_days=30,
            purge_every_s=3600, purge_first_s=0.2))
        await panel.start()
        try:
            async with asyncio.timeout(20):
                while not await fetch(db_url, "SELECT 1 FROM recording "
                                      "WHERE purged_at IS NOT NULL"):
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # a second pass would have to wait an hour
        finally:
            await panel.stop()
        return await fetch(db_url, "SELECT uniqueid, purged_at IS NOT NULL AS purged "
                           "FROM recording ORDER BY uniqueid")

    got = asyncio.run(main())
    assert [(r["uniqueid"], r["purged"]) for r in got] == [
        (old, True), (held, False), (recent, False)]
    left = sorted(p.name.split("__")[0] for p in store.rglob("*.opus.age"))
    assert left == [held, recent]
    audit = asyncio.run(fetch(db_url, "SELECT uniqueid, actor, detail FROM audit_log "
                              "WHERE action = 'recording-purged'"))
    assert [(a["uniqueid"], a["actor"]) for a in audit] == [(old, "housekeeping:panel")]
    assert audit[0]["detail"].endswith("older than 30 days")


def test_listening_in_and_transfers_are_refused_where_they_must_be(
        db_url: str, tmp_path: Path) -> None:
    env = keyed(tmp_path)
    asyncio.run(seed(db_url, env))
    uid, frames = answered_call()  # alice (PJSIP/2001) talks to the caller

    async def main() -> dict[str, Any]:
        from switchboard.ami_listener.actions import AmiLogin
        out: dict[str, Any] = {}
        await ingest(db_url, tmp_path, [call_segment(frames, end=False)], node="pbx-a",
                     options=LIVE)
        # an AMI address nobody answers: a refused request never gets that far
        panel = panel_for(db_url, env, ami=AmiLogin("127.0.0.1", 9, "panel", "x"))
        port = await panel.start()
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                async def as_(login: str) -> dict[str, str]:
                    async with http.post(base + "/api/login", json={
                            "login": login, "password": PASSWORD[login]},
                            headers={"X-SB-Panel": "1"}) as r:
                        assert r.status == 200
                        return {"Cookie": f"sb_panel={r.cookies['sb_panel'].value}",
                                "X-SB-Panel": "1"}
                alice, bob, sue = await as_("alice"), await as_("bob"), await as_("sue")

                async def post(h: dict[str, str], path: str, body: Any) -> tuple[int, Any]:
                    async with http.post(base + path, json=body, headers=h) as r:
                        ctype = r.headers.get("Content-Type", "")
                        return r.status, (await r.json() if "json" in ctype
                                          else await r.text())
                out["agent_spies"] = await post(bob, f"/api/calls/{uid}/spy",
                                                {"mode": "listen"})
                out["bad_mode"] = await post(sue, f"/api/calls/{uid}/spy", {"mode": "steal"})
                out["no_call"] = await post(sue, "/api/calls/nosuch.1/spy", {"mode": "listen"})
                out["sue_spies"] = await post(sue, f"/api/calls/{uid}/spy",
                                              {"mode": "whisper"})
                out["bob_transfers"] = await post(bob, f"/api/calls/{uid}/transfer",
                                                  {"target": "intake"})
                out["bad_target"] = await post(alice, f"/api/calls/{uid}/transfer",
                                               {"target": "911"})
                out["alice_transfers"] = await post(alice, f"/api/calls/{uid}/transfer",
                                                    {"target": "supervisors"})
                async with http.get(base + "/api/reports?from=2026-11-28&to=2026-11-29",
                                    headers=alice) as r:
                    out["agent_reports"] = r.status
        finally:
            await panel.stop()
        return out

    out = asyncio.run(main())
    assert out["agent_spies"][0] == 403
    assert out["agent_spies"][1]["error"] == "only supervisors may listen in"
    assert out["bad_mode"][0] == 400
    assert out["no_call"][0] == 403
    assert out["no_call"][1]["error"] == "no agent is talking on this call"
    # allowed, but no node answered: the session ends 'failed', audited both ways
    assert out["sue_spies"][0] == 502 and out["sue_spies"][1]["result"] == "failed"
    assert out["bob_transfers"][0] == 403
    assert out["bob_transfers"][1]["error"] == "not your call in progress"
    assert out["bad_target"][0] == 400
    assert out["alice_transfers"][0] == 502  # the call is on no node that answers
    assert out["agent_reports"] == 403
    rows = asyncio.run(fetch(db_url, "SELECT actor, action, result FROM audit_log WHERE "
                             "action IN ('spy-start', 'spy-end', 'transfer') ORDER BY at"))
    assert [(r["actor"], r["action"], r["result"]) for r in rows] == [
        ("agent:bob", "spy-start", "refused"), ("agent:sue", "spy-start", "requested"),
        ("agent:sue", "spy-end", "failed"), ("agent:alice", "transfer", "requested")]
    sessions = asyncio.run(fetch(db_url, "SELECT mode, result, ended_at IS NOT NULL AS ended "
                                 "FROM spy_session"))
    assert [(s["mode"], s["result"], s["ended"]) for s in sessions] == [
        ("whisper", "failed", True)]


def burst_yesterday() -> tuple[Segment, list[str], str, float]:
    """f_burst_50_calls_ts as if it had run yesterday at noon (site time): a
    finished day, whose figures no longer change with the clock (agents still
    logged in count up to the day's end).  The segment, its callers'
    uniqueids, the day, and when it started."""
    frames = Capture.load("f_burst_50_calls_ts").event_frames()
    zone = ZoneInfo("America/Chicago")
    noon = datetime.now(zone).replace(hour=12, minute=0, second=0, microsecond=0)
    start = noon.timestamp() - 86400
    fresh = Refresher().frames(frames, shift_to=start)
    uids = [f.split(b"\r\nUniqueid: ")[1].split(b"\r\n")[0].decode()
            for f in fresh if f.startswith(b"Event: QueueCallerJoin")]
    day = datetime.fromtimestamp(start, zone).date().isoformat()
    return Segment([(0.0, b"".join(fresh))], False), uids, day, start


def test_the_reports_page_shows_what_report_json_prints(db_url: str, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = keyed(tmp_path)
    asyncio.run(seed(db_url, env))
    segment, uids, day, start = burst_yesterday()

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        await ingest(db_url, tmp_path, [segment], node="pbx-a")
        async with agi_service(db_url, env) as agi_port:  # a verification mix
            for uid in uids[:3]:
                await verify(agi_port, uid, [AGENCY, OFFICER, PIN], lookup=None)
            await verify(agi_port, uids[3], [AGENCY, OFFICER, "000000"], lookup=None)
        # verified when they called, yesterday
        await fetch(db_url, "UPDATE verify_attempt SET finished_at = to_timestamp($1)",
                    start + 60)
        await fetch(db_url, "UPDATE caller_id_check SET checked_at = to_timestamp($1)",
                    start + 60)
        panel = panel_for(db_url, env, reports_url=as_service(db_url, "reports"))
        port = await panel.start()
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    for w, h in ((1920, 1080), (1280, 720)):
                        page = await browser.new_page(viewport={"width": w, "height": h})
                        await page.goto(f"http://127.0.0.1:{port}/reports?day={day}"
                                        "&period=day&bucket=hour")
                        await page.fill("#login", "sue")
                        await page.fill("#password", PASSWORD["sue"])
                        await page.click("#login-btn")
                        await page.wait_for_selector("#t-queues td[data-k]")
                        await page.screenshot(path=str(ARTIFACTS / f"reports-{w}x{h}.png"))
                        out[w] = await page.evaluate("""() => ({
                          queues: [...document.querySelectorAll('#t-queues tbody tr')].map(tr =>
                            Object.fromEntries([...tr.querySelectorAll('td[data-k]')].map(td =>
                              [td.dataset.k, JSON.parse(td.dataset.v)]))),
                          agents: [...document.querySelectorAll('#t-agents tbody tr')].map(tr =>
                            Object.fromEntries([...tr.querySelectorAll('td[data-k]')].map(td =>
                              [td.dataset.k, JSON.parse(td.dataset.v)]))),
                          mix: [...document.querySelectorAll('.bars div[data-part]')].map(d =>
                            [d.dataset.part, d.dataset.kind,
                             Number(d.querySelector('.n').dataset.v)]),
                          bars: document.querySelectorAll('#chart-calls rect').length,
                          from: document.getElementById('range').dataset.from,
                          csv: document.getElementById('csv-queues').href})""")
                        await page.close()
                    async with aiohttp.ClientSession() as http:
                        async with http.post(f"http://127.0.0.1:{port}/api/login", json={
                                "login": "sue", "password": PASSWORD["sue"]},
                                headers={"X-SB-Panel": "1"}) as r:
                            cookie = r.cookies["sb_panel"].value
                        async with http.get(out[1920]["csv"],
                                            headers={"Cookie": f"sb_panel={cookie}"}) as r:
                            out["csv"] = (r.status, r.headers.get("Content-Disposition"),
                                          await r.text())
                finally:
                    await browser.close()
        finally:
            await panel.stop()
        return out

    out = asyncio.run(main())
    cli = subprocess.run([str(CLI), "report", "--day", day, "--bucket", "hour", "--json"],
                         env={**os.environ, **db_env(db_url), "SB_TZ": "America/Chicago"},
                         capture_output=True, text=True, timeout=120, check=False)
    assert cli.returncode == 0, cli.stderr
    want = json.loads(cli.stdout)
    assert sum(q["offered"] for q in want["queues"] if q["queue"] == "(all)") == 50
    for w in (1920, 1280):
        page = out[w]
        assert page["from"] == want["from"]
        cols = set(page["queues"][0])
        assert page["queues"] == [{k: q[k] for k in cols} for q in want["queues"]]
        acols = set(page["agents"][0])
        assert page["agents"] == [{k: a[k] for k in acols} for a in want["agents"]]
        mix = [[part, kind, n] for part, counts in want["mix"].items()
               for kind, n in counts.items()]
        assert sorted(page["mix"]) == sorted(mix)
        assert page["bars"] >= 3
    assert want["mix"]["verification"] == {"full": 3, "failed": 1}
    status, disposition, text = out["csv"]
    assert status == 200 and f"switchboard-queues-{day}" in (disposition or "")
    cli_csv = subprocess.run([str(CLI), "report", "--day", day, "--bucket", "hour", "--csv"],
                             env={**os.environ, **db_env(db_url), "SB_TZ": "America/Chicago"},
                             capture_output=True, text=True, timeout=120, check=True).stdout
    assert text.replace("\r\n", "\n") == cli_csv.replace("\r\n", "\n")
