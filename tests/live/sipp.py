"""SIPp as the carrier's callers and as the agents' desk phones.

Scenarios are written per call from Python (digits, timings, patience are the
call's own), one SIPp process each, all on loopback: callers from 127.0.0.2
(the carrier, identified by address), phones from 127.0.0.3 and up (identified
by their REGISTER credentials).  DTMF is SIP INFO (``application/dtmf-relay``),
which the test site's carrier uses (``dtmf_mode = info``).  Every process is
stopped by its PID.

Each SIPp process writes every message it sends and receives to its own file
(``-message_file``): the tests read the agents' INVITEs (caller name, X-SB-*
headers) from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

SIPP = shutil.which("sipp")
_ports = itertools.count(20000 + os.getpid() % 500 * 20, 10)  # SIPp's SIP and media ports
ALLOW = "INVITE, ACK, CANCEL, OPTIONS, BYE, INFO, UPDATE"


def _udp_free(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((ip, port))
        except OSError:
            return False
        return True


def next_ports(ip: str) -> tuple[int, int]:
    """A SIP port and a media base port per process (SIPp's media uses the base
    and base+2, with their RTCP ports): ten ports a process, all free on ``ip``."""
    while True:
        base = next(_ports)
        if base > 60000:
            raise RuntimeError("no free SIPp ports left")
        if all(_udp_free(ip, base + i) for i in range(8)):
            return base, base + 2


def _msg(text: str) -> str:
    lines = [ln.strip() for ln in text.strip("\n").splitlines()]
    return "<![CDATA[\n" + "\n".join(lines) + "\n\n]]>"


def _sdp(media_port: int | None = None) -> str:
    """The offer or answer: PCMU and telephone-event.  ``media_port``: where the
    other side is to send the audio instead of SIPp's own (echoing) port, a
    test's receiver (tests/live/media.py)."""
    port = str(media_port) if media_port else "[media_port]"
    return ("v=0\no=- 1 1 IN IP4 [local_ip]\ns=-\nc=IN IP4 [media_ip]\nt=0 0\n"
            f"m=audio {port} RTP/AVP 0 101\na=rtpmap:0 PCMU/8000\n"
            "a=rtpmap:101 telephone-event/8000\na=fmtp:101 0-16\na=sendrecv")


def _play(pcap: str | None) -> str:
    """SIPp sends the RTP of ``pcap`` (tests/audio.rtp_pcap) from its media port."""
    return (f'<nop><action><exec play_pcap_audio="{escape(pcap)}"/></action></nop>'
            if pcap else "")


@dataclass(frozen=True)
class Caller:
    """One PSTN caller: keys ``groups`` of digits (each after a pause), then
    waits ``patience_ms`` for Asterisk to end the call before hanging up."""

    callerid: str
    groups: tuple[tuple[int, str], ...]  # (pause before the group in ms, digits)
    patience_ms: int
    did: str
    name: str = ""
    digit_gap_ms: int = 120
    # the terminating carrier's verdict on the caller ID (STIR/SHAKEN): a verstat
    # parameter in the From URI's user part, and/or on a P-Asserted-Identity
    verstat: str | None = None
    pai_verstat: str | None = None
    invite_headers: tuple[str, ...] = ()  # more INVITE headers (Identity, Date)
    media_port: int | None = None  # the audio to a receiver of the test's (_sdp)
    pcap: str | None = None  # audio the caller sends from the moment it is answered

    def scenario(self) -> str:
        user = self.callerid + (f";verstat={self.verstat}" if self.verstat else "")
        frm = (f'"{escape(self.name)}" ' if self.name else "") + \
              f"<sip:{user}@[local_ip]:[local_port];user=phone>;tag=[pid]SIPpTag00[call_number]"
        more = "".join(f"{h}\n" for h in self.invite_headers)
        if self.pai_verstat:
            more += (f"P-Asserted-Identity: <sip:{self.callerid};verstat={self.pai_verstat}"
                     f"@[local_ip];user=phone>\n")
        to = f"<sip:{self.did}@[remote_ip]:[remote_port]>"
        uri = f"sip:{self.did}@[remote_ip]:[remote_port]"
        common = (f"Call-ID: [call_id]\nContact: <sip:{self.callerid}@[local_ip]:[local_port]>\n"
                  "Max-Forwards: 70")
        parts = ['<?xml version="1.0" encoding="ISO-8859-1" ?>',
                 '<scenario name="switchboard caller">',
                 '<send retrans="500" start_txn="invite">' + _msg(
                     f"INVITE {uri} SIP/2.0\n"
                     "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
                     f"From: {frm}\nTo: {to}\nCSeq: 1 INVITE\n{common}\nAllow: {ALLOW}\n"
                     f"{more}Content-Type: application/sdp\nContent-Length: [len]\n\n"
                     + _sdp(self.media_port))
                 + "</send>",
                 '<recv response="100" optional="true" response_txn="invite"/>',
                 '<recv response="180" optional="true" response_txn="invite"/>',
                 '<recv response="183" optional="true" response_txn="invite"/>',
                 '<recv response="200" rrs="true" response_txn="invite"/>',
                 '<send ack_txn="invite">' + _msg(
                     f"ACK [next_url] SIP/2.0\n"
                     "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n[routes]\n"
                     f"From: {frm}\nTo: {to}[peer_tag_param]\nCSeq: 1 ACK\n{common}\n"
                     "Content-Length: 0") + "</send>"]
        if self.pcap:
            parts.append(_play(self.pcap))
        cseq = 2
        for pause, digits in self.groups:
            first = True
            for d in digits:
                gap = pause if first else self.digit_gap_ms
                first = False
                parts.append(f'<pause milliseconds="{gap}"/>')
                parts.append('<send retrans="500">' + _msg(
                    f"INFO [next_url] SIP/2.0\n"
                    "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n[routes]\n"
                    f"From: {frm}\nTo: {to}[peer_tag_param]\nCSeq: {cseq} INFO\n{common}\n"
                    "Content-Type: application/dtmf-relay\nContent-Length: [len]\n\n"
                    f"Signal={d}\nDuration=100") + "</send>")
                parts.append('<recv response="200"/>')
                cseq += 1
        parts += [f'<recv request="BYE" timeout="{self.patience_ms}" ontimeout="hangup"/>',
                  '<send next="end">' + _msg(
                      "SIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:]\n"
                      "[last_Call-ID:]\n[last_CSeq:]\nContent-Length: 0") + "</send>",
                  '<label id="hangup"/>',
                  '<send retrans="500">' + _msg(
                      f"BYE [next_url] SIP/2.0\n"
                      "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n[routes]\n"
                      f"From: {frm}\nTo: {to}[peer_tag_param]\nCSeq: {cseq} BYE\n{common}\n"
                      "Content-Length: 0") + "</send>",
                  '<recv response="200" timeout="8000"/>',
                  '<label id="end"/>',
                  "</scenario>"]
        return "\n".join(parts) + "\n"


def register_and_answer(phone: str, password: str, ring_ms: int, talk_ms: int, *,
                        media_port: int | None = None, pcap: str | None = None
                        ) -> tuple[str, str]:
    """(main scenario, out-of-call scenario) of a desk phone: REGISTER with its
    credentials, then stay up; every INVITE Asterisk sends rings ``ring_ms``, is
    answered, and hung up by the agent after ``talk_ms`` unless the caller hangs
    up first.  The phone's tag and its BYE's branch come from the call's Call-ID:
    SIPp numbers out-of-call instances alike, and a BYE whose branch repeats an
    earlier one is answered by Asterisk as a retransmission of that one."""
    reg_common = (f"From: <sip:{phone}@[remote_ip]>;tag=[pid]SIPpTag00[call_number]\n"
                  f"To: <sip:{phone}@[remote_ip]>\nCall-ID: [call_id]\n"
                  f"Contact: <sip:{phone}@[local_ip]:[local_port]>\nMax-Forwards: 70\n"
                  "Expires: 3600")
    main = "\n".join([
        '<?xml version="1.0" encoding="ISO-8859-1" ?>',
        '<scenario name="desk phone">',
        '<send retrans="500">' + _msg(
            "REGISTER sip:[remote_ip]:[remote_port] SIP/2.0\n"
            "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
            f"{reg_common}\nCSeq: 1 REGISTER\nContent-Length: 0") + "</send>",
        '<recv response="401" auth="true"/>',
        '<send retrans="500">' + _msg(
            "REGISTER sip:[remote_ip]:[remote_port] SIP/2.0\n"
            "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
            f"{reg_common}\nCSeq: 2 REGISTER\n"
            f"[authentication username={phone} password={password}]\nContent-Length: 0")
        + "</send>",
        '<recv response="200"/>',
        '<pause milliseconds="86400000"/>',
        "</scenario>", ""])
    ooc = answering("desk phone rings", phone, "sb", ring_ms, talk_ms, "agent_hangs_up",
                    media_port=media_port, pcap=pcap)
    return main, ooc


def feature_call(phone: str, password: str, code: str, bye_timeout_ms: int = 15000) -> str:
    """The phone dials a feature code (``*11`` log in, ``*21`` pause...):
    challenged INVITE, authenticated INVITE, Asterisk plays a prompt and hangs up."""
    frm = f"<sip:{phone}@[remote_ip]>;tag=[pid]SIPpTag00[call_number]"
    to = f"<sip:{code}@[remote_ip]:[remote_port]>"
    uri = f"sip:{code}@[remote_ip]:[remote_port]"
    common = (f"Call-ID: [call_id]\nContact: <sip:{phone}@[local_ip]:[local_port]>\n"
              "Max-Forwards: 70")
    invite = (f"INVITE {uri} SIP/2.0\n"
              "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
              f"From: {frm}\nTo: {to}\n{{cseq}}\n{common}\nAllow: {ALLOW}\n{{auth}}"
              "Content-Type: application/sdp\nContent-Length: [len]\n\n" + _sdp())
    return "\n".join([
        '<?xml version="1.0" encoding="ISO-8859-1" ?>',
        '<scenario name="feature code">',
        '<send retrans="500" start_txn="first">' + _msg(
            invite.replace("{cseq}", "CSeq: 1 INVITE").replace("{auth}", "")) + "</send>",
        '<recv response="100" optional="true" response_txn="first"/>',
        '<recv response="401" auth="true" response_txn="first"/>',
        '<send ack_txn="first">' + _msg(
            f"ACK {uri} SIP/2.0\n"
            "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
            f"From: {frm}\nTo: {to}[peer_tag_param]\nCSeq: 1 ACK\n{common}\n"
            "Content-Length: 0") + "</send>",
        '<send retrans="500" start_txn="second">' + _msg(
            invite.replace("{cseq}", "CSeq: 2 INVITE").replace(
                "{auth}", f"[authentication username={phone} password={password}]\n"))
        + "</send>",
        '<recv response="100" optional="true" response_txn="second"/>',
        '<recv response="180" optional="true" response_txn="second"/>',
        '<recv response="183" optional="true" response_txn="second"/>',
        '<recv response="200" response_txn="second"/>',
        '<send ack_txn="second">' + _msg(
            f"ACK {uri} SIP/2.0\n"
            "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
            f"From: {frm}\nTo: {to}[peer_tag_param]\nCSeq: 2 ACK\n{common}\n"
            "Content-Length: 0") + "</send>",
        f'<recv request="BYE" timeout="{bye_timeout_ms}"/>',
        "<send>" + _msg(
            "SIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\n"
            "[last_CSeq:]\nContent-Length: 0") + "</send>",
        "</scenario>", ""])


def answering(name: str, user: str, tag: str, ring_ms: int, talk_ms: int,
              hangs_up: str, *, media_port: int | None = None, pcap: str | None = None
              ) -> str:
    """A scenario that takes an INVITE: rings ``ring_ms``, answers, talks
    ``talk_ms`` and hangs up (label ``hangs_up``), unless the caller hangs up
    first.  Its tag and its BYE's branch come from the call's Call-ID (``tag``
    before it): SIPp numbers out-of-call instances alike, and a BYE whose
    branch repeats an earlier one is answered as a retransmission of that one."""
    return "\n".join([
        '<?xml version="1.0" encoding="ISO-8859-1" ?>',
        f'<scenario name="{name}">',
        '<recv request="INVITE"><action>'
        '<ereg regexp=".*" search_in="hdr" header="From:" assign_to="rfrom"/>'
        '<ereg regexp=".*" search_in="hdr" header="To:" assign_to="rto"/>'
        '<ereg regexp="&lt;(sip:[^&gt;]*)&gt;" search_in="hdr" header="Contact:" '
        'assign_to="all,rcontact"/>'
        "</action></recv>",
        "<Reference variables=\"all\"/>",
        "<send>" + _msg(
            "SIP/2.0 180 Ringing\n[last_Via:]\n[last_From:]\n"
            f"[last_To:];tag={tag}-[call_id]\n[last_Call-ID:]\n[last_CSeq:]\n"
            f"Contact: <sip:{user}@[local_ip]:[local_port]>\nContent-Length: 0") + "</send>",
        f'<pause milliseconds="{ring_ms}"/>',
        '<send retrans="500">' + _msg(
            "SIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n"
            f"[last_To:];tag={tag}-[call_id]\n[last_Call-ID:]\n[last_CSeq:]\n"
            f"Contact: <sip:{user}@[local_ip]:[local_port]>\nAllow: {ALLOW}\n"
            "Content-Type: application/sdp\nContent-Length: [len]\n\n" + _sdp(media_port))
        + "</send>",
        '<recv request="ACK"/>',
        _play(pcap),
        f'<recv request="BYE" timeout="{talk_ms}" ontimeout="{hangs_up}"/>',
        '<send next="end">' + _msg(
            "SIP/2.0 200 OK\n[last_Via:]\n[last_From:]\n[last_To:]\n[last_Call-ID:]\n"
            "[last_CSeq:]\nContent-Length: 0") + "</send>",
        f'<label id="{hangs_up}"/>',
        '<send retrans="500">' + _msg(
            "BYE [$rcontact] SIP/2.0\n"
            "Via: SIP/2.0/[transport] [local_ip]:[local_port];"
            f"branch=z9hG4bK-{tag}-[call_id]-bye\n"
            f"From: [$rto];tag={tag}-[call_id]\nTo: [$rfrom]\n"
            "Call-ID: [call_id]\nCSeq: 1 BYE\nMax-Forwards: 70\nContent-Length: 0")
        + "</send>",
        '<recv response="200" timeout="8000"/>',
        '<label id="end"/>',
        "</scenario>", ""])


def agency_answers(talk_ms: int) -> str:
    """An agency's switchboard taking the line's call back (a server scenario:
    run it with ``calls`` > 1, since each of Asterisk's qualify OPTIONS counts as
    a call, answered by SIPp's automatic answers): the carrier's leg from
    Asterisk, answered after a ring."""
    return answering("agency answers", "agency", "ag", 500, talk_ms, "agency_hangs_up")


@dataclass
class Sipp:
    """One SIPp process (started by ``start``, stopped by PID)."""

    name: str
    workdir: Path
    ip: str
    target: str  # host:port of Asterisk
    scenario: str
    ooc: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0  # 0: a free one; else this SIP port (the carrier's 5060)
    calls: int = 1  # SIPp's -m
    limit: int = 1  # SIPp's -l: calls at once
    extra: tuple[str, ...] = ()  # more of SIPp's options (-inf FILE, -r RATE...)
    messages: Path = field(init=False)

    def __post_init__(self) -> None:
        self.messages = self.workdir / f"{self.name}.messages.log"

    def start(self) -> None:
        assert SIPP is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        sf = self.workdir / f"{self.name}.xml"
        sf.write_text(self.scenario)
        free, media = next_ports(self.ip)
        self.port = self.port or free
        args = [SIPP, self.target, "-sf", str(sf), "-i", self.ip, "-p", str(self.port),
                "-mi", self.ip, "-mp", str(media), "-rtp_echo", "-m", str(self.calls),
                "-l", str(self.limit),
                "-aa", "-nostdin", "-trace_msg",
                "-message_file", str(self.messages),
                "-trace_err", "-error_file", str(self.workdir / f"{self.name}.errors.log"),
                "-timeout_error", "-max_recv_loops", "1000"]
        args += list(self.extra)
        if self.ooc is not None:
            of = self.workdir / f"{self.name}.ooc.xml"
            of.write_text(self.ooc)
            args += ["-oocsf", str(of)]
        # a plain Popen (not asyncio's): phones outlive the event loop that started them
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)

    async def wait(self, limit_s: float) -> int:
        assert self.proc is not None
        deadline = time.monotonic() + limit_s
        while (rc := self.proc.poll()) is None:
            if time.monotonic() > deadline:
                self.kill()
                return -1
            await asyncio.sleep(0.05)
        return rc

    def kill(self) -> None:
        """SIGTERM to the process group, then SIGKILL after 5 s."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)

    def received(self, method: str) -> list[str]:
        """The requests of ``method`` this process received, each as its text."""
        if not self.messages.exists():
            return []
        text = self.messages.read_text(errors="replace")
        blocks = re.split(r"\n(?=-{10,} )", text)
        return [b for b in blocks if "message received" in b
                and re.search(rf"^{method} sip:", b, re.M)]

    def sent_requests(self) -> list[str]:
        """The requests this process sent, each as its text."""
        if not self.messages.exists():
            return []
        text = self.messages.read_text(errors="replace")
        blocks = re.split(r"\n(?=-{10,} )", text)
        return [b for b in blocks if "message sent" in b
                and re.search(r"^[A-Z]+ sip:", b, re.M)]
