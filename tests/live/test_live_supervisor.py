"""The supervisor's side on the live Asterisk 22 (issue 24): the production
``switchboard panel`` and ``switchboard recordings ship`` commands, SIPp
callers and desk phones, receivers of the test's own as the parties' ears.

1. An officer's call is recorded from the moment ann (2001) answers; ann hands
   it to the priority queue from the panel; ben (2002) gets it with the same
   verified context (phone and panel); both legs are sealed, stored, indexed
   and audited, and ann's leg, decrypted, holds the caller's voice.
2. sam (supervisor, 2005) coaches cal (2003) on a call: his phone rings into ChanSpy;
   his voice reaches cal's ear and not the caller's; then he joins, and both
   hear him.  Every start and end is audited."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.audio import opus_to_wav, read_wav, rtp_pcap, strength, tone
from tests.live import sipp
from tests.live.calls import caller, header, national, start_calls
from tests.live.harness import REGISTERED, RING_MS, Live, Service, skip_reason
from tests.live.media import RtpSink, sdp_media
from tests.live.node import AMI_PORT, CARRIER_IP, CLI, SYSTEMNAME

if (_reason := skip_reason()) is not None:
    pytest.skip(_reason, allow_module_level=True)

ANN, BEN, CAL, SAM = 0, 1, 2, 4  # phone indexes: 2001, 2002, 2003, 2005
PASSWORDS = {"ann": "ann-desk-password-1", "ben": "ben-desk-password-1",
             "cal": "cal-desk-password-1", "sam": "sam-supervises-pass-1"}
CALLER_HZ, SUPERVISOR_HZ = 600, 1000


@dataclass
class Rig:
    live: Live
    port: int
    identity: Path
    store: Path
    ann_ear: RtpSink
    cal_ear: RtpSink
    pcaps: dict[str, str]


def _add(live: Live, login: str, name: str, phone: int, role: str) -> None:
    iface = f"PJSIP/{live.node.clear_phones[phone].name}"
    proc = subprocess.run([str(CLI), "agent", "add", login, name, "--interface", iface,
                           "--role", role, "--password-stdin"], input=PASSWORDS[login] + "\n",
                          text=True, capture_output=True, env=live.env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _phone(live: Live, i: int, tag: str, **kw: Any) -> None:
    p = live.node.clear_phones[i]
    live.phones[i].kill()
    main, ooc = sipp.register_and_answer(p.name, p.password, kw.pop("ring_ms", RING_MS),
                                         kw.pop("talk_ms"), **kw)
    proc = sipp.Sipp(f"phone-{p.name}-{tag}", live.sipp_dir, p.ip, live.phone_target, main,
                     ooc)
    proc.start()
    live.phones[i] = proc
    deadline = time.monotonic() + 20
    while f"{p.name}/sip:{p.name}@{p.ip}" not in live.node.rx("pjsip show contacts"):
        assert time.monotonic() < deadline, f"{p.name} did not register"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def rig(live: Live, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    tmp = tmp_path_factory.mktemp("supervisor")
    identity = tmp / "playback.key"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipients = tmp / "recipients.txt"
    recipients.write_text(subprocess.run(["age-keygen", "-y", str(identity)], check=True,
                                         capture_output=True, text=True).stdout)
    pcaps = {}
    for name, hz, seconds in (("caller", CALLER_HZ, 45.0), ("supervisor", SUPERVISOR_HZ,
                                                            8.0)):
        path = tmp / f"{name}.pcap"
        rtp_pcap(path, tone(hz, seconds))
        pcaps[name] = str(path)
    for login, name, phone, role in (("ann", "Ann Agent", ANN, "agent"),
                                     ("ben", "Ben Agent", BEN, "agent"),
                                     ("cal", "Cal Agent", CAL, "agent"),
                                     ("sam", "Sam Supervisor", SAM, "supervisor")):
        _add(live, login, name, phone, role)
    store = tmp / "store"
    rec_env = {"SB_REC_SPOOL": str(live.node.folders["astspooldir"] / "monitor" / "sb"),
               "SB_REC_STORE": str(store), "SB_REC_NODE": SYSTEMNAME}
    shipper = Service("recordings", ["recordings", "ship"], live.env | rec_env | {
        "SB_REC_RECIPIENTS_FILE": str(recipients), "SB_REC_POLL_MS": "200",
        "SB_REC_METRICS_ADDR": "127.0.0.1:0"}, tmp / "recordings.log")
    port = sipp.next_ports("127.0.0.1")[0]
    panel = Service("panel", ["panel"], live.env | rec_env | {
        "SB_PANEL_LISTEN": f"127.0.0.1:{port}", "SB_PANEL_AMI_USER": "panel",
        "SB_PANEL_AMI_SECRET": live.node.panel_secret,
        "SB_PANEL_AMI_ADDR": f"127.0.0.1:{AMI_PORT}",
        "SB_REC_IDENTITY_FILE": str(identity)}, tmp / "panel.log")
    ann_ear = RtpSink(live.node.clear_phones[ANN].ip)
    # ben's audio goes nowhere that echoes it (SIPp's -rtp_echo against the
    # caller's would loop every packet back and forth)
    ben_ear = RtpSink(live.node.clear_phones[BEN].ip)
    cal_ear = RtpSink(live.node.clear_phones[CAL].ip)
    shipper.start()
    panel.start()
    try:
        live.wait_port(port)
        _phone(live, ANN, "ann", talk_ms=22_000, media_port=ann_ear.port)
        _phone(live, BEN, "ben", talk_ms=3_000, media_port=ben_ear.port)
        _phone(live, CAL, "cal", talk_ms=22_000, media_port=cal_ear.port)
        _phone(live, SAM, "sam", ring_ms=300, talk_ms=3_500, pcap=pcaps["supervisor"])
        asyncio.run(live.agents([ANN]))
        yield Rig(live, port, identity, store, ann_ear, cal_ear, pcaps)
    finally:
        panel.stop()
        shipper.stop()
        ann_ear.close()
        ben_ear.close()
        cal_ear.close()
        for i in (ANN, BEN, CAL, SAM):  # the phones as the other scenarios know them
            _phone(live, i, "again", ring_ms=RING_MS if i != SAM else 600_000,
                   talk_ms=3000)


async def _session(http: aiohttp.ClientSession, port: int, login: str) -> dict[str, str]:
    async with http.post(f"http://127.0.0.1:{port}/api/login", headers={"X-SB-Panel": "1"},
                         json={"login": login, "password": PASSWORDS[login]}) as r:
        assert r.status == 200, await r.text()
        return {"Cookie": f"sb_panel={r.cookies['sb_panel'].value}", "X-SB-Panel": "1"}


async def _until(live: Live, sql: str, *args: Any, limit_s: float = 40) -> Any:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        rows = await live.fetch(sql, *args)
        if rows and rows[0][0]:
            return rows[0][0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"never true: {sql} {args}")


def _answer(proc: sipp.Sipp) -> str:
    """The 200 OK (with Asterisk's SDP) a caller's SIPp received to its INVITE."""
    text = proc.messages.read_text(errors="replace")
    blocks = re.split(r"\n(?=-{10,} )", text)
    return next(b for b in blocks if "message received" in b and "SIP/2.0 200 OK" in b
                and re.search(r"^CSeq: 1 INVITE", b, re.M))


def test_recorded_then_transferred_to_the_priority_queue(rig: Rig) -> None:
    live = rig.live
    ann = f"PJSIP/{live.node.clear_phones[ANN].name}"
    ben = f"PJSIP/{live.node.clear_phones[BEN].name}"
    number = REGISTERED[30]

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        since = time.time()
        c = caller(number, "1003", patience_ms=90_000)
        placed = await start_calls(live, [replace(c, pcap=rig.pcaps["caller"])],
                                   tag="recorded")
        uid = await _until(live, "SELECT uniqueid FROM queue_call WHERE caller_num = $1 AND "
                           "answered_at IS NOT NULL AND member_interface = $2 AND "
                           "entered_at > to_timestamp($3)", national(number), ann, since)
        out["uid"] = uid
        assert await live.feature(BEN, "*11") == 0  # ben takes calls now
        await asyncio.sleep(3)  # ann and the caller talk (the caller's tone)
        async with aiohttp.ClientSession() as http:
            h = await _session(http, rig.port, "ann")
            async with http.post(f"http://127.0.0.1:{rig.port}/api/calls/{uid}/transfer",
                                 json={"target": "priority"}, headers=h) as r:
                out["transfer"] = (r.status, await r.json())
            await _until(live, "SELECT true FROM queue_call WHERE uniqueid = $1 AND queue = "
                         "'priority' AND answered_at IS NOT NULL AND member_interface = $2",
                         uid, ben)
            # the intake row ends when Asterisk reports the agent's part complete
            # (AgentComplete, Reason: transfer), which may come after ben answers
            await _until(live, "SELECT true FROM queue_call WHERE uniqueid = $1 AND queue = "
                         "'intake' AND outcome = 'transferred'", uid)
            hb = await _session(http, rig.port, "ben")
            async with http.get(f"http://127.0.0.1:{rig.port}/api/calls", headers=hb) as r:
                out["ben_panel"] = [x for x in await r.json() if x["uniqueid"] == uid]
        out["rows"] = [dict(r) for r in await live.fetch(
            "SELECT queue, outcome, member_interface, transfer_target FROM queue_call "
            "WHERE uniqueid = $1 ORDER BY entered_at", uid)]
        # ben talks 3 s and hangs up; both legs reach the store
        await _until(live, "SELECT count(*) = 2 FROM recording WHERE uniqueid = $1", uid,
                     limit_s=60)
        out["recordings"] = [dict(r) for r in await live.fetch(
            "SELECT leg, store_key, seconds, node FROM recording WHERE uniqueid = $1 "
            "ORDER BY started_at", uid)]
        out["audit"] = [(r["action"], r["result"], r["actor"]) for r in await live.fetch(
            "SELECT action, result, actor FROM audit_log WHERE uniqueid = $1 AND action IN "
            "('transfer', 'recording-stored') ORDER BY at", uid)]
        for p in placed:
            p.proc.kill()
        return out

    out = asyncio.run(main())
    uid = out["uid"]
    assert out["transfer"] == (200, {"result": "transferred"})
    assert all(r["leg"] and float(r["seconds"]) < 60 for r in out["recordings"])
    assert [(r["queue"], r["outcome"], r["member_interface"]) for r in out["rows"]] == [
        ("intake", "transferred", ann), ("priority", "answered", ben)]
    assert out["rows"][0]["transfer_target"] == "701@sb-transfer"
    # ben sees the call as ann did: verified in full, from the agency's line
    assert out["ben_panel"] and out["ben_panel"][0]["level"] == "full"
    assert out["ben_panel"][0]["registered_line"] is True
    invites = [i for i in live.phones[BEN].received("INVITE") if f"X-SB-Call: {uid}" in i]
    assert invites and header(invites[-1], "X-SB-Verified") == "full"
    assert [a[:2] for a in out["audit"]] == [("transfer", "requested"),
                                            ("recording-stored", "ok"),
                                            ("recording-stored", "ok")]
    assert out["audit"][0][2] == "agent:ann"
    # ann's leg, opened with the playback host's key: the caller's voice
    first = out["recordings"][0]
    assert first["node"] == SYSTEMNAME and float(first["seconds"]) >= 2.5
    sealed = rig.store / first["store_key"]
    assert sealed.read_bytes().startswith(b"age-encryption.org/v1")
    opus, wav = sealed.with_suffix(".opus"), sealed.with_suffix(".wav")
    subprocess.run(["age", "-d", "-i", str(rig.identity), "-o", str(opus), str(sealed)],
                   check=True)
    opus_to_wav(opus, wav)
    samples, rate = read_wav(wav)
    assert strength(samples, rate, CALLER_HZ) > 0.3
    # nothing clear of this call is left on the node (the tier's other calls are
    # recorded too, with no shipper running for them)
    spool = live.node.folders["astspooldir"] / "monitor" / "sb"
    left = [f for f in spool.rglob("*.wav") if uid in f.name]
    assert not left, left


def test_a_supervisor_coaches_then_joins(rig: Rig) -> None:
    live = rig.live
    number = REGISTERED[31]
    caller_ear = RtpSink(CARRIER_IP)

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        await live.agents([CAL])  # only cal takes this call (ann and ben in wrap-up)
        since = time.time()
        c = caller(number, "1004", patience_ms=90_000)
        placed = await start_calls(live, [replace(c, media_port=caller_ear.port)],
                                   tag="coached")
        uid = await _until(live, "SELECT uniqueid FROM queue_call WHERE caller_num = $1 AND "
                           "answered_at IS NOT NULL AND entered_at > to_timestamp($2)",
                           national(number), since)
        out["uid"] = uid
        # both parties talk (near-silence) as phones do, from their ears' ports
        caller_ear.talk(sdp_media(_answer(placed[0].proc)), 40)
        cal_invite = [i for i in live.phones[CAL].received("INVITE")
                      if f"X-SB-Call: {uid}" in i]
        rig.cal_ear.talk(sdp_media(cal_invite[-1]), 40)
        await asyncio.sleep(1)
        async with aiohttp.ClientSession() as http:
            h = await _session(http, rig.port, "sam")
            for mode in ("whisper", "barge"):
                async with http.post(f"http://127.0.0.1:{rig.port}/api/calls/{uid}/spy",
                                     json={"mode": mode}, headers=h) as r:
                    answered = time.monotonic()
                    out[mode] = (r.status, await r.json())
                assert r.status == 200, (mode, out[mode], out)
                await asyncio.sleep(3.6)  # sam's phone talks 3.5 s (his tone), hangs up
                out[f"{mode}_agent"] = rig.cal_ear.heard(SUPERVISOR_HZ, answered,
                                                       answered + 3.3)
                out[f"{mode}_caller"] = caller_ear.heard(SUPERVISOR_HZ, answered,
                                                         answered + 3.3)
                await _until(live, "SELECT ended_at IS NOT NULL FROM spy_session WHERE "
                             "spy_id = $1", out[mode][1]["spy_id"])
        out["audit"] = [(r["action"], r["result"], r["actor"], r["detail"])
                        for r in await live.fetch(
            "SELECT action, result, actor, detail FROM audit_log WHERE uniqueid = $1 AND "
            "action LIKE 'spy-%' ORDER BY at", uid)]
        out["sam_invites"] = live.phones[SAM].received("INVITE")
        for p in placed:
            p.proc.kill()
        return out

    try:
        out = asyncio.run(main())
    finally:
        caller_ear.close()
    assert out["whisper"][0] == 200 and out["whisper"][1]["result"] == "started"
    assert out["barge"][0] == 200
    # coaching: cal hears sam; the caller hears cal (packets flow) but nothing of sam
    packets, agent_heard = out["whisper_agent"]
    assert packets > 100 and agent_heard > 0.3, out["whisper_agent"]
    assert out["whisper_caller"][0] > 100, out["whisper_caller"]
    assert out["whisper_caller"][1] < 0.05, out["whisper_caller"]
    # joining: both do
    assert out["barge_agent"][1] > 0.3 and out["barge_caller"][1] > 0.3, out
    assert any('"Listen: whisper"' in i for i in out["sam_invites"])
    assert [(a, r) for a, r, _, _ in out["audit"]] == [
        ("spy-start", "requested"), ("spy-start", "ok"), ("spy-end", "ended"),
        ("spy-start", "requested"), ("spy-start", "ok"), ("spy-end", "ended")]
    assert all(actor == "agent:sam" for _, _, actor, _ in out["audit"])
    assert "whisper cal" in out["audit"][0][3]
