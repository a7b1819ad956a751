"""A test STI-CA, an SHAKEN certificate, signed PASSporTs and the loopback
HTTP server Asterisk fetches the certificate from (the Identity header's x5u),
for the live tier's Identity path (res_stir_shaken).

Only the openssl command and the standard library: the CA and the service
provider's EC P-256 keys and certificates are made by ``openssl`` (the SP's
carries the TNAuthList extension with a service provider code, RFC 8226), and
a PASSporT is signed with ``openssl dgst`` (ES256; the DER signature is turned
into JOSE's r||s).  Everything is fake and lives in the test's folder.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import subprocess
import threading
import time
import uuid
from email.utils import formatdate
from pathlib import Path

SPC = "1234"  # the fake service provider code in the TNAuthList extension


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(folder: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, SP certificate, SP key) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sp.cnf").write_text(
        "[ext]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n"
        "1.3.6.1.5.5.7.1.26 = ASN1:SEQUENCE:tnauth\n\n"
        f"[tnauth]\nspc = EXP:0, IA5:{SPC}\n")
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key",
             cwd=folder)
    _openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=switchboard test STI-CA",
             "-days", "30", "-out", "ca.pem", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "sp.key",
             cwd=folder)
    _openssl("req", "-new", "-key", "sp.key", "-subj", f"/CN=SHAKEN {SPC}", "-out", "sp.csr",
             cwd=folder)
    _openssl("x509", "-req", "-in", "sp.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "30", "-out", "sp.pem", "-extfile", "sp.cnf",
             "-extensions", "ext", cwd=folder)
    for f in folder.glob("*.key"):
        f.chmod(0o600)
    return folder / "ca.pem", folder / "sp.pem", folder / "sp.key"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _der_to_jose(der: bytes) -> bytes:
    """An ECDSA DER signature (SEQUENCE of two INTEGERs) as JOSE's 64-byte r||s."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        out += der[i + 2:i + 2 + n].lstrip(b"\0").rjust(32, b"\0")
        i += 2 + n
    return out


def identity_header(key: Path, x5u: str, *, orig: str, dest: str, attest: str = "A",
                    iat: int | None = None) -> str:
    """A SHAKEN PASSporT signed with ``key``, as an Identity header value."""
    header = {"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": x5u}
    payload = {"attest": attest, "dest": {"tn": [dest]}, "iat": iat or int(time.time()),
               "orig": {"tn": orig}, "origid": str(uuid.uuid4())}
    signing = (_b64(json.dumps(header, separators=(",", ":")).encode()) + "."
               + _b64(json.dumps(payload, separators=(",", ":")).encode()))
    der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(key)],
                         input=signing.encode(), capture_output=True, check=True,
                         timeout=30).stdout
    return f"{signing}.{_b64(_der_to_jose(der))};info=<{x5u}>;alg=ES256;ppt=shaken"


def tampered(identity: str) -> str:
    """The same header with the PASSporT's payload changed after signing (another
    calling number claimed): the signature no longer verifies."""
    jwt, _, rest = identity.partition(";")
    head, payload, sig = jwt.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["orig"]["tn"] = claims["orig"]["tn"][:-1] + "9"
    return f"{head}.{_b64(json.dumps(claims, separators=(',', ':')).encode())}.{sig};{rest}"


def sip_date() -> str:
    return formatdate(usegmt=True)


class CertServer:
    """The SP certificate over HTTP on 127.0.0.1 (a free port)."""

    def __init__(self, cert: Path) -> None:
        body = cert.read_bytes()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200 if self.path == "/sp.pem" else 404)
                self.send_header("Content-Type", "application/x-pem-file")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.server.fetches += 1  # type: ignore[attr-defined]

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.fetches = 0  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/sp.pem"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def fetches(self) -> int:
        return int(self.httpd.fetches)  # type: ignore[attr-defined]

    def __enter__(self) -> CertServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.httpd.shutdown()
        self.httpd.server_close()
