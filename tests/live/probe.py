"""A small SIP client for the attacks of the live tier: one request at a time
over UDP, TCP or TLS from a chosen loopback address, with digest
authentication, reading the status line and headers of each answer.  SIPp
(Debian's has no TLS) plays callers and phones; this plays a scanner and a
password guesser, which need to count answers, time silences and speak TLS.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import socket
import ssl
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no answer in time
    reason: str
    headers: dict[str, str]  # first value of each header, names lower-case
    text: str

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


SILENCE = Answer(0, "no answer", {}, "")


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()  # SIP digest


@dataclass
class Probe:
    """Requests to ``host:port`` from ``source`` over ``transport``."""

    source: str
    host: str
    port: int
    transport: str = "udp"  # udp | tcp | tls
    timeout_s: float = 2.0
    _sock: socket.socket | None = None
    _buffer: bytes = b""
    local_port: int = 0
    cseq: int = field(default=1)

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
            self._buffer = b""

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        kind = socket.SOCK_DGRAM if self.transport == "udp" else socket.SOCK_STREAM
        raw = socket.socket(socket.AF_INET, kind)
        raw.settimeout(self.timeout_s)
        raw.bind((self.source, 0))
        self.local_port = raw.getsockname()[1]
        if self.transport != "udp":
            raw.connect((self.host, self.port))
        if self.transport == "tls":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # the node's self-signed test certificate
            raw = ctx.wrap_socket(raw)
        self._sock = raw
        return raw

    def _read(self) -> bytes:
        sock = self._connect()
        if self.transport == "udp":
            data, _ = sock.recvfrom(65535)
            return data
        while b"\r\n\r\n" not in self._buffer:
            chunk = sock.recv(65535)
            if not chunk:
                raise ConnectionError("closed")
            self._buffer += chunk
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        length = int(m.group(1)) if m else 0
        while len(rest) < length:
            chunk = sock.recv(65535)
            if not chunk:
                raise ConnectionError("closed")
            rest += chunk
        self._buffer = rest[length:]
        return head + b"\r\n\r\n" + rest[:length]

    def request(self, method: str, uri: str, *, from_user: str, to_user: str | None = None,
                headers: tuple[str, ...] = (), body: str = "", call_id: str | None = None,
                authorization: str | None = None, cseq: int | None = None) -> Answer:
        """Send one request; the first final answer (1xx skipped), or SILENCE."""
        try:
            sock = self._connect()
        except (OSError, ssl.SSLError):
            return SILENCE
        tport = {"udp": "UDP", "tcp": "TCP", "tls": "TLS"}[self.transport]
        branch = "z9hG4bK-" + secrets.token_hex(8)
        tag = secrets.token_hex(4)
        self.cseq = cseq if cseq is not None else self.cseq + 1
        lines = [f"{method} {uri} SIP/2.0",
                 f"Via: SIP/2.0/{tport} {self.source}:{self.local_port};branch={branch};rport",
                 f"From: <sip:{from_user}@{self.host}>;tag={tag}",
                 f"To: <sip:{to_user or from_user}@{self.host}>",
                 f"Call-ID: {call_id or secrets.token_hex(10)}",
                 f"CSeq: {self.cseq} {method}",
                 f"Contact: <sip:{from_user}@{self.source}:{self.local_port};"
                 f"transport={self.transport}>",
                 "Max-Forwards: 70", "User-Agent: friendly-scanner", *headers]
        if authorization:
            lines.append(f"Authorization: {authorization}")
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        data = ("\r\n".join(lines) + "\r\n\r\n" + body).encode()
        deadline = time.monotonic() + self.timeout_s
        try:
            if self.transport == "udp":
                sock.sendto(data, (self.host, self.port))
            else:
                sock.sendall(data)
            while time.monotonic() < deadline:
                answer = _parse(self._read())
                if answer.status >= 200 and branch in answer.header("via"):
                    if method == "INVITE":  # end the transaction as a client does
                        self._ack(answer, uri, branch)
                    return answer
        except (OSError, ssl.SSLError, ConnectionError):
            self.close()
        return SILENCE

    def _ack(self, answer: Answer, uri: str, branch: str) -> None:
        tport = {"udp": "UDP", "tcp": "TCP", "tls": "TLS"}[self.transport]
        ack = "\r\n".join([
            f"ACK {uri} SIP/2.0", f"Via: SIP/2.0/{tport} {self.source}:{self.local_port};"
            f"branch={branch};rport", f"From: {answer.header('from')}",
            f"To: {answer.header('to')}", f"Call-ID: {answer.header('call-id')}",
            f"CSeq: {answer.header('cseq').split()[0]} ACK", "Max-Forwards: 70",
            "Content-Length: 0"]) + "\r\n\r\n"
        with contextlib.suppress(OSError, ssl.SSLError):
            sock = self._connect()
            if self.transport == "udp":
                sock.sendto(ack.encode(), (self.host, self.port))
            else:
                sock.sendall(ack.encode())

    def register(self, user: str, password: str) -> tuple[Answer, Answer]:
        """REGISTER, then again with the digest for ``password``: (challenge,
        answer to the credentials).  One call id for both, as a phone does."""
        uri = f"sip:{self.host}:{self.port}"
        call_id = secrets.token_hex(10)
        first = self.request("REGISTER", uri, from_user=user, call_id=call_id,
                             headers=("Expires: 60",))
        if first.status != 401:
            return first, SILENCE
        auth = digest(first.header("www-authenticate"), "REGISTER", uri, user, password)
        second = self.request("REGISTER", uri, from_user=user, call_id=call_id,
                              headers=("Expires: 60",), authorization=auth)
        return first, second


def digest(challenge: str, method: str, uri: str, user: str, password: str) -> str:
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
    realm, nonce = fields.get("realm", ""), fields.get("nonce", "")
    ha1 = _md5(f"{user}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    cnonce, nc = secrets.token_hex(4), "00000001"
    if "auth" in fields.get("qop", ""):
        response = _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        extra = f', qop=auth, nc={nc}, cnonce="{cnonce}"'
    else:
        response, extra = _md5(f"{ha1}:{nonce}:{ha2}"), ""
    opaque = f', opaque="{fields["opaque"]}"' if "opaque" in fields else ""
    return (f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
            f'response="{response}", algorithm=MD5{extra}{opaque}')


def _parse(data: bytes) -> Answer:
    text = data.decode("utf-8", "replace")
    head = text.split("\r\n\r\n", 1)[0].split("\r\n")
    m = re.match(r"^SIP/2\.0 (\d{3}) ?(.*)$", head[0]) if head else None
    headers: dict[str, str] = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    if m is None:
        return Answer(0, "not an answer", headers, text)
    return Answer(int(m.group(1)), m.group(2), headers, text)
