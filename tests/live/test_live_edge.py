"""The SIP edge on a real Asterisk 22 (issue 22), tried as an attacker and an
operator would: a stranger's INVITE, an INVITE with ``carrier`` as its From
user from another address, the carrier's address forged on another port,
calls to external numbers from a stranger, the carrier and a phone, user
enumeration, 911 from a desk phone, the toll-fraud caps, a TLS phone with SRTP
(pjsua), and, with the shipped firewall and fail2ban jail installed by
``switchboard edge install``, the stranger and a TLS phone on UDP refused and
200 password guesses banned until the ban's end.

pjsua (pjproject's, built with TLS and SRTP outside the repository) is found
through SB_PJSUA or PATH; nftables and fail2ban are Debian's.  Each test that
lacks one says so in one line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from switchboard.ami_listener.actions import AmiLogin, AmiSession
from tests.helpers import fail2ban
from tests.live import sipp
from tests.live.calls import caller, national, run_calls, steps, uniqueids
from tests.live.harness import REGISTERED, Live, skip_reason
from tests.live.node import AMI_PORT, CARRIER_IP, DID
from tests.live.probe import Answer, Probe

if (_reason := skip_reason()) is not None:  # one line for the whole tier
    pytest.skip(_reason, allow_module_level=True)

AGENTS = [0, 1, 2, 3]
STRANGER, CONTROL = "127.0.0.9", "127.0.0.10"
EXTERNAL = "12025550123"  # NANP fiction (555-01xx): a number of the attacker's choice
TLS_PHONE = 5  # 2006, the pjsua phone (node.tls_phones)


def pjsua_binary() -> str | None:
    given = os.environ.get("SB_PJSUA")
    return given if given and os.access(given, os.X_OK) else shutil.which("pjsua")


def need_pjsua() -> str:
    found = pjsua_binary()
    if found is None:
        pytest.skip("TLS phone: no pjsua (build pjproject with TLS and SRTP outside the "
                    "repository; SB_PJSUA=/path/to/pjsua)")
    return found


def need_edge_engines() -> None:
    missing = [t for t in ("nft", "fail2ban-client", "fail2ban-server") if not shutil.which(t)]
    if missing:
        pytest.skip(f"SIP edge firewall: {', '.join(missing)} not installed")


# --- helpers -------------------------------------------------------------------------

class CarrierEar:
    """A UDP socket on the carrier's address (127.0.0.2:5060): every request
    Asterisk sends to the carrier, answered 200 only when it is an OPTIONS."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((CARRIER_IP, 5060))
        self.sock.settimeout(0.2)
        self.requests: list[str] = []

    def drain(self, seconds: float) -> list[str]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            text = data.decode("utf-8", "replace")
            if text.startswith("OPTIONS "):
                self._ok(text, peer)
            elif not text.startswith("SIP/2.0"):
                self.requests.append(text)
        return [r for r in self.requests if not r.startswith("OPTIONS ")]

    def _ok(self, text: str, peer: tuple[str, int]) -> None:
        keep = [ln for ln in text.split("\r\n") if re.match(r"(?i)^(via|from|to|call-id|cseq):",
                                                           ln)]
        to = next((i for i, ln in enumerate(keep) if ln.lower().startswith("to:")), None)
        if to is not None:
            keep[to] += ";tag=ear"
        self.sock.sendto(("SIP/2.0 200 OK\r\n" + "\r\n".join(keep)
                          + "\r\nContent-Length: 0\r\n\r\n").encode(), peer)

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def carrier_ear() -> Iterator[CarrierEar]:
    ear = CarrierEar()
    try:
        yield ear
    finally:
        ear.close()


def invite_body(source: str) -> str:
    return (f"v=0\r\no=- 1 1 IN IP4 {source}\r\ns=-\r\nc=IN IP4 {source}\r\nt=0 0\r\n"
            "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


def forged_invite(probe: Probe, to: str, *, from_user: str = "carrier") -> Answer:
    """An INVITE claiming to be the carrier, with a verdict of attestation A for
    a registered line in a forged P-Asserted-Identity."""
    line = national(REGISTERED[0])
    return probe.request(
        "INVITE", f"sip:{to}@127.0.0.1:{probe.port}", from_user=from_user, to_user=to,
        headers=(f"P-Asserted-Identity: <sip:{line};verstat=TN-Validation-Passed-A"
                 f"@{CARRIER_IP};user=phone>",), body=invite_body(probe.source))


def wait(what: str, check: Any, timeout_s: float = 20) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (got := check()):
            return got
        time.sleep(0.2)
    raise AssertionError(f"never: {what}")


def at_least(live: Live, n: int, sql: str, *args: Any) -> list[Any] | None:
    """The rows of ``sql`` once there are ``n`` of them (for ``wait``)."""
    got = asyncio.run(live.fetch(sql, *args))
    return got if len(got) >= n else None


def channels(live: Live) -> list[str]:
    return [ln for ln in live.node.rx("core show channels concise").splitlines() if "!" in ln]


# --- before the firewall: what Asterisk itself holds --------------------------------

def test_every_answer_hides_the_version_and_strangers_are_challenged(live: Live) -> None:
    """A stranger's OPTIONS, INVITE and REGISTER on every port: nobody is told
    the product or its version; an INVITE is challenged (401) and no channel is
    made, not even for a From user of ``carrier`` with a forged verdict."""
    since = time.time()
    answers: list[Answer] = []
    for port, transport in ((live.node.sip_port, "udp"), (live.node.clear_port, "udp"),
                            (live.node.tls_port, "tls")):
        with Probe(STRANGER, "127.0.0.1", port, transport) as p:
            answers.append(p.request("OPTIONS", f"sip:127.0.0.1:{port}", from_user="scan"))
            invite = p.request("INVITE", f"sip:{DID}@127.0.0.1:{port}", from_user="100",
                               to_user=DID, body=invite_body(STRANGER))
            forged = forged_invite(p, DID)
            answers += [invite, forged]
            assert (invite.status, forged.status) == (401, 401), (port, invite, forged)
    for a in answers:
        assert a.status, a
        assert a.header("server") in ("", "switchboard"), a.text
        assert "asterisk" not in a.text.lower(), a.text
        assert not re.search(r"\b22\.\d+\.\d+\b", a.text), a.text
    assert channels(live) == []
    # the dialplan never ran for any of them
    rows = asyncio.run(live.fetch(
        "SELECT count(*) AS n FROM ami_event WHERE event = 'UserEvent' AND event_time >= "
        "to_timestamp($1)", since))
    assert rows[0]["n"] == 0


def test_user_enumeration_learns_nothing(live: Live) -> None:
    """An existing phone (2006) and a name that is no phone (9999), a wrong
    password each, over TLS: the same answers, the same challenge."""
    seen = {}
    for user in ("2006", "9999"):
        with Probe(STRANGER, "127.0.0.1", live.node.tls_port, "tls") as p:
            first, second = p.register(user, "not-the-password")
        params = sorted(re.findall(r'(\w+)=', first.header("www-authenticate")))
        realm = re.search(r'realm="([^"]*)"', first.header("www-authenticate"))
        seen[user] = (first.status, second.status, params, realm.group(1) if realm else "")
    assert seen["2006"] == seen["9999"]
    assert seen["2006"][:2] == (401, 401)


def test_nothing_dials_out_but_what_the_database_decided(live: Live) -> None:
    """External numbers from a stranger (challenged), from the carrier's own
    address (the unknown-DID message, then hung up) and from a desk phone
    (feature not available): the carrier never receives an INVITE."""
    asyncio.run(live.agents(AGENTS))
    with carrier_ear() as ear:
        with Probe(STRANGER, "127.0.0.1", live.node.tls_port, "tls") as p:
            assert p.request("INVITE", f"sip:+{EXTERNAL}@127.0.0.1", from_user="2006",
                             to_user=f"+{EXTERNAL}", body=invite_body(STRANGER)).status == 401
        from_carrier = sipp.Caller(national(REGISTERED[2]), (), 15_000, EXTERNAL)
        placed = asyncio.run(run_calls(live, [from_carrier], tag="edge-ext", limit_s=30))
        assert placed[0].rc == 0
        for code in (EXTERNAL, "9" + EXTERNAL, "011442079460123"):
            assert asyncio.run(live.feature(0, code)) == 0, code
        assert ear.drain(2) == []


def test_a_forged_carrier_call_off_the_carriers_port_counts_as_unproven(live: Live) -> None:
    """UDP with the carrier's address, sent to the legacy phones' port: Asterisk
    matches the carrier by address, but the call did not arrive on the
    carrier's port.  Its verdict of attestation A is not believed: the right
    PIN on a registered line gives line-only (CB), not full.  With
    CARRIER_UNPROVEN=reject it is refused before it is answered."""
    asyncio.run(live.agents(AGENTS))
    since = time.time()
    number = REGISTERED[3]
    forged = caller(number, "1004", case=None)
    proc = sipp.Sipp(f"edge-forged-{national(number)}", live.sipp_dir, CARRIER_IP,
                     live.phone_target, forged.scenario())
    proc.start()
    assert asyncio.run(proc.wait(90)) == 0
    uid = asyncio.run(uniqueids(live, since))[national(number)]
    assert ("carrier-unproven", "unattested") in asyncio.run(steps(live, uid))
    assert dict(asyncio.run(steps(live, uid)))["verify"] == "line-only"
    check = asyncio.run(live.fetch("SELECT source, result FROM caller_id_check WHERE "
                                   "uniqueid = $1", uid))
    assert [tuple(r) for r in check] == [("unproven", "unproven")]
    # the same caller on the carrier's own port is believed
    placed = asyncio.run(run_calls(live, [caller(number, "1004")], tag="edge-proven"))
    assert placed[0].rc == 0
    # the site's other mode: refused (403) before anything runs
    live.node.rx("dialplan set global CARRIER_UNPROVEN reject")
    try:
        with Probe(CARRIER_IP, "127.0.0.1", live.node.clear_port) as p:
            answer = p.request("INVITE", f"sip:{DID}@127.0.0.1:{live.node.clear_port}",
                               from_user=national(number), to_user=DID,
                               body=invite_body(CARRIER_IP))
        assert answer.status == 403, answer
    finally:
        live.node.rx("dialplan set global CARRIER_UNPROVEN unattested")


# --- 911 and the toll-fraud caps ---------------------------------------------------------

def test_911_from_a_desk_phone_reaches_the_carrier_with_its_location(live: Live) -> None:
    """Even with the outbound budget spent (0 minutes an hour), a desk phone's
    911 and 9911 go straight to the carrier with the place's emergency caller
    ID as calling number and P-Asserted-Identity; the wall board's figures and
    Asterisk's log tell the site at once, the audit has the call at its end."""
    set_outbound(live, 0)
    since = time.time()
    agency = sipp.Sipp("edge-911-carrier", live.sipp_dir, CARRIER_IP, live.target,
                       sipp.answering("psap", "911", "psap", 300, 2500, "psap_hangs_up"),
                       port=5060, calls=40)
    agency.start()
    try:
        time.sleep(0.5)
        for code in ("911", "9911"):
            assert asyncio.run(live.feature(2, code)) == 0, code
        invites = wait("both 911 calls at the carrier",
                       lambda: got if len(got := agency.received("INVITE")) >= 2 else None)
    finally:
        agency.kill()
    for inv in invites:
        assert re.search(r"^INVITE sip:911@", inv, re.M), inv
        assert re.search(r'^From: "SWITCHBOARD HQ" <sip:\+16155550190@', inv, re.M), inv
        assert re.search(r"^P-Asserted-Identity: .*<sip:\+16155550190@", inv, re.M), inv
    def ended() -> list[Any] | None:
        got = asyncio.run(live.fetch("SELECT * FROM sb_edge_emergencies(to_timestamp($1))",
                                     since - 1))
        return got if len(got) == 2 and all(r["ended_at"] for r in got) else None
    calls = wait("both 911 calls ended on the wall board's list", ended)
    phone = live.node.phones[2].name
    assert {(r["phone"], r["place"], r["elin"], r["status"]) for r in calls} == {
        (phone, "HQ 100 Main St Nashville TN floor 3 room 301", "+16155550190", "ANSWER")}
    audit = wait("the audit rows", lambda: at_least(live, 2, (
        "SELECT result, detail FROM audit_log WHERE action = 'emergency-911' AND at >= "
        "to_timestamp($1)"), since - 1))
    assert len(audit) == 2 and {r["result"] for r in audit} == {"answer"}
    assert all(f"phone {phone} on sb-live" in r["detail"] for r in audit)
    log = (live.node.logdir / "messages.log").read_text(errors="replace")
    assert f"911 call from phone {phone} at HQ 100 Main St" in log
    figures = asyncio.run(live.fetch("SELECT * FROM sb_edge_figures(to_timestamp($1))",
                                     since - 1))[0]
    assert figures["emergency_calls"] == 2


def set_outbound(live: Live, per_hour: int) -> None:
    """As ops do (the command, so its audit row is signed like every other)."""
    out = live.node.switchboard("policy", "set", "--outbound-minutes-per-hour",
                                str(per_hour), env=live.env)
    assert out.returncode == 0, out.stderr


async def originate(live: Live, phone: int, number: str, oob_id: int) -> str:
    """What the agent panel does to call an agency back (its AMI user): ring the
    agent's phone, then [sb-oob] dials ``number``."""
    login = AmiLogin("127.0.0.1", AMI_PORT, "panel", live.node.panel_secret)
    async with AmiSession(login, events="call", purpose="panel") as s:
        resp = await s.action("Originate", {
            "Channel": f"PJSIP/{live.node.phones[phone].name}", "Context": "sb-oob",
            "Exten": "s", "Priority": "1", "Timeout": "20000", "Async": "true",
            "CallerID": f'"Agency" <{number}>',
            "Variable": [f"IVR_OOB_ID={oob_id}", f"IVR_OOB_NUMBER={number}"]})
        return str(resp.get("Response"))


def test_outbound_calls_are_capped_audited_and_alerted(live: Live) -> None:
    """The agent panel's calls to agencies (AMI Originate into sb-oob): with no
    minutes left this hour, refused (nothing reaches the carrier); with
    minutes, at most OUTBOUND_MAX_LEGS (2 on the test node) at once; each
    decision an outbound_leg row and an audit row, each refusal on the wall
    board's figures; a granted call's use recorded at its end."""
    since = time.time()
    line = REGISTERED[5]
    agency = sipp.Sipp("edge-out-carrier", live.sipp_dir, CARRIER_IP, live.target,
                       sipp.agency_answers(6000), port=5060, calls=60)
    agency.start()
    try:
        live.carrier_available()
        set_outbound(live, 0)
        assert asyncio.run(originate(live, 0, line, 9001)) == "Success"
        wait("the refusal", lambda: asyncio.run(live.fetch(
            "SELECT 1 FROM outbound_leg WHERE reason = 'minutes' AND started_at >= "
            "to_timestamp($1)", since - 1)))
        time.sleep(3)
        assert agency.received("INVITE") == []
        set_outbound(live, 120)
        for i, phone in enumerate((0, 1, 2)):
            assert asyncio.run(originate(live, phone, line, 9002 + i)) == "Success"
            # each phone answers after 0.8 s and talks 3 s: the third reaches the
            # gate while the first two are out
            time.sleep(0.7)
        wait("two calls at the carrier", lambda: len(agency.received("INVITE")) >= 2)
        legs = wait("four decisions", lambda: at_least(live, 4, (
            "SELECT outcome, reason, granted_s, used_s FROM outbound_leg WHERE started_at >= "
            "to_timestamp($1) ORDER BY leg_id"), since - 1))
        time.sleep(2)
        assert len(agency.received("INVITE")) == 2
        assert [(r["outcome"], r["reason"]) for r in legs] == [
            ("refused", "minutes"), ("granted", None), ("granted", None), ("refused", "legs")]
        assert legs[1]["granted_s"] == 1800
        # the granted calls end (the agency hangs up after 6 s): what they used
        ended = wait("the granted calls' use", lambda: at_least(live, 2, (
            "SELECT used_s FROM outbound_leg WHERE outcome = 'granted' AND used_s IS NOT NULL"
            " AND started_at >= to_timestamp($1)"), since - 1), timeout_s=40)
        assert all(0 <= r["used_s"] <= 10 for r in ended), ended
    finally:
        agency.kill()
        set_outbound(live, 600)  # the panel's scenarios call agencies back
    audit = asyncio.run(live.fetch("SELECT result FROM audit_log WHERE action = 'outbound' "
                                   "AND at >= to_timestamp($1) ORDER BY at", since - 1))
    assert [r["result"] for r in audit] == ["refused", "granted", "granted", "refused"]
    refused = asyncio.run(live.fetch(
        "SELECT fields->>'Reason' AS reason FROM ami_event WHERE event = 'UserEvent' AND "
        "fields->>'UserEvent' = 'SBOutbound' AND fields->>'Step' = 'refused' AND "
        "event_time >= to_timestamp($1) ORDER BY event_time", since - 1))
    assert [r["reason"] for r in refused] == ["minutes", "legs"]
    figures = asyncio.run(live.fetch("SELECT * FROM sb_edge_figures(to_timestamp($1))",
                                     since - 1))[0]
    assert (figures["outbound_granted"], figures["outbound_refused"]) == (2, 2)


# --- a desk phone over TLS with SRTP ------------------------------------------------------

class Pjsua:
    """pjsua as desk phone 2006: TLS only, SRTP mandatory, answers every call;
    stopped by its PID."""

    def __init__(self, live: Live, *, call: str | None = None) -> None:
        p = live.node.tls_phones[0]
        self.log = live.sipp_dir / f"pjsua-{time.monotonic_ns()}.log"
        target = f"127.0.0.1:{live.node.tls_port};transport=tls"
        self.args = [need_pjsua(), f"--id=sip:{p.name}@127.0.0.1",
                     f"--registrar=sip:{target}", f"--proxy=sip:{target};lr",
                     "--realm=*", f"--username={p.name}", f"--password={p.password}",
                     "--use-tls", "--no-udp", "--no-tcp", f"--bound-addr={p.ip}",
                     f"--ip-addr={p.ip}", "--null-audio", "--use-srtp=2", "--srtp-secure=1",
                     "--auto-answer=200", f"--tls-ca-file={live.node.tls_dir / 'sip.crt'}",
                     "--tls-verify-server", "--reg-timeout=120", f"--log-file={self.log}",
                     "--log-level=5", "--app-log-level=0", "--duration=20"]
        if call:
            self.args.append(f"sip:{call}@{target}")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"q\n")
            self.proc.stdin.flush()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def test_a_tls_phone_registers_and_takes_a_queue_call_with_srtp(live: Live) -> None:
    """2006 registers over TLS, logs in with *11 (over TLS), takes a queue call:
    the SDP both ways is RTP/SAVP with an SDES key, offered only over TLS."""
    need_pjsua()
    asyncio.run(live.agents([]))  # only the TLS phone may take the call
    phone = live.node.tls_phones[0]
    login = Pjsua(live, call="*11")
    login.start()
    try:
        wait("2006 registered over TLS",
             lambda: f"{phone.name}/sip:{phone.name}@{phone.ip}" in live.node.rx(
                 "pjsip show contacts") and "transport=TLS" in live.node.rx(
                 "pjsip show contacts"), timeout_s=20)
        wait("2006 logged in", lambda: f"PJSIP/{phone.name}" in live.members(), timeout_s=20)
        since = time.time()
        placed = asyncio.run(run_calls(live, [caller(REGISTERED[6], "1006")], tag="edge-tls",
                                       limit_s=90))
        assert placed[0].rc == 0
    finally:
        login.stop()
        for q in ("intake", "priority", "overflow"):
            live.node.rx(f"queue remove member PJSIP/{phone.name} from {q}")
    rows = asyncio.run(live.fetch(
        "SELECT outcome, member_interface FROM queue_call WHERE entered_at >= "
        "to_timestamp($1)", since - 1))
    assert [tuple(r) for r in rows] == [("answered", f"PJSIP/{phone.name}")]
    text = login.text()
    offers = re.findall(r"^m=audio \d+ (RTP/\S+)", text, re.M)
    assert offers and set(offers) == {"RTP/SAVP"}, offers
    assert len(re.findall(r"^a=crypto:\d+ AES_CM_128_HMAC_SHA1_80 inline:", text, re.M)) >= 2
    assert "RTP/AVP " not in text


# --- with the shipped firewall and fail2ban ----------------------------------------------

@pytest.fixture(scope="module")
def edge_installed(live: Live) -> Iterator[Path]:
    """`switchboard edge install` with the node's site files, and a fail2ban of
    the test's own reading the node's security log; the table is deleted and
    fail2ban stopped afterwards."""
    need_edge_engines()
    root = live.sipp_dir.parent / "edge"
    table = f"sblive{os.getpid()}"
    env = {**live.env, "SB_LOG_FORMAT": "json"}
    out = live.node.switchboard("edge", "install", "--site", str(live.node.site_src),
                                "--fail2ban-dir", str(root / "f2b"),
                                "--nft-file", str(root / "edge.nft"),
                                "--security-log", str(live.node.logdir / "security.log"),
                                env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    try:
        with fail2ban(root / "f2b", env) as sock:
            yield sock
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True,
                       check=False)


def test_the_firewall_refuses_strangers_and_a_tls_phone_on_udp(live: Live,
                                                              edge_installed: Path) -> None:
    """With the shipped ruleset: a stranger gets no answer on the carrier's and
    the legacy phones' ports (the TLS port still challenges it), the TLS phone
    trying UDP gets none either; the carrier and the legacy phones go on."""
    with Probe(STRANGER, "127.0.0.1", live.node.sip_port) as p:
        assert forged_invite(p, DID).status == 0
    with Probe(STRANGER, "127.0.0.1", live.node.clear_port) as p:
        assert p.register("2001", "guess")[0].status == 0
    phone = live.node.tls_phones[0]
    for port in (live.node.clear_port, live.node.sip_port):
        with Probe(phone.ip, "127.0.0.1", port) as p:
            assert p.register(phone.name, phone.password)[0].status == 0, port
    with Probe(phone.ip, "127.0.0.1", live.node.tls_port, "tls") as p:
        assert p.register(phone.name, phone.password)[1].status == 200
    with Probe(CARRIER_IP, "127.0.0.1", live.node.sip_port) as p:
        assert p.request("OPTIONS", f"sip:127.0.0.1:{live.node.sip_port}",
                         from_user="carrier").status == 200
    assert asyncio.run(live.feature(1, "*20")) == 0  # a legacy phone, from its address


def test_200_guesses_get_the_address_banned_until_the_ban_ends(live: Live,
                                                              edge_installed: Path) -> None:
    """200 REGISTERs with wrong passwords for a real phone, over TLS from one
    address: fail2ban bans it (5 failures, site/edge.conf) into the product's
    table; then the right password from that address gets no answer while a
    control address registers; the listener stored the failures and the ban
    is recorded; after the ban's minute the right password works again."""
    phone = live.node.tls_phones[0]
    since = time.time()
    answered = silent = 0
    with Probe(STRANGER, "127.0.0.1", live.node.tls_port, "tls", timeout_s=1.0) as p:
        for _ in range(200):  # 20 a second; a guesser that hears nothing 3 times stops
            if p.register(phone.name, "guess-" + os.urandom(4).hex())[1].status:
                answered, silent = answered + 1, 0
            else:
                silent += 1
                if silent == 3:
                    break
            time.sleep(0.05)
    print(f"guesses answered before the ban: {answered} of 200")
    ban = wait("the ban recorded", lambda: asyncio.run(live.fetch(
        "SELECT * FROM sb_edge_bans()")), timeout_s=20)
    banned_at = time.time()
    assert [(r["address"], r["jail"]) for r in ban] == [(STRANGER, "switchboard-sip")]
    assert answered < 200
    with Probe(STRANGER, "127.0.0.1", live.node.tls_port, "tls", timeout_s=2.0) as p:
        assert p.register(phone.name, phone.password)[1].status == 0
    with Probe(CONTROL, "127.0.0.1", live.node.tls_port, "tls") as p:
        assert p.register(phone.name, phone.password)[1].status == 200
    figures = asyncio.run(live.fetch("SELECT * FROM sb_edge_figures(to_timestamp($1))",
                                     since - 1))[0]
    assert figures["bans_now"] == 1
    assert figures["auth_failures"] >= 5  # what the listener stored (AMI security class)
    failing = asyncio.run(live.fetch("SELECT * FROM sb_edge_failing(to_timestamp($1))",
                                     since - 1))
    assert failing[0]["address"] == STRANGER
    keep_recordings(live, since)
    # the ban's minute (ban_minutes = 1 on the test site)
    lifted = wait("the ban's end", lambda: asyncio.run(live.fetch(
        "SELECT lifted_at, lifted_by FROM sip_ban WHERE lifted_at IS NOT NULL")),
        timeout_s=90)
    took = time.time() - banned_at
    print(f"ban lifted after {took:.1f} s ({lifted[0]['lifted_by']})")
    assert lifted[0]["lifted_by"] == "expiry"
    with Probe(STRANGER, "127.0.0.1", live.node.tls_port, "tls") as p:
        assert p.register(phone.name, phone.password)[1].status == 200


def keep_recordings(live: Live, since: float) -> None:
    """With SB_LIVE_RECORD=DIR: the security log and the listener's AMI stream
    of the attack, for tests/fixtures/asterisk/security."""
    directory = os.environ.get("SB_LIVE_RECORD")
    if not directory:
        return
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(live.node.logdir / "security.log", out / "security.log")
    live.tap.save(live.tap.mark() - 1, out, "edge_guessing")  # the listener's connection
