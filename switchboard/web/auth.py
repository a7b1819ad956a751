"""The web's one session and auth layer (the wall board now; the agent panel
next): login secrets compared in constant time on bytes, signed random session
cookies with an expiry (never the secret itself), known host names only, and
the same safe headers (CSP without inline script) on every answer."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable
from typing import Any

from aiohttp import web

CSP = ("default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self'; "
       "media-src 'self'; "
       "style-src 'self' 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
_SESSION_RE = re.compile(r"^([A-Za-z0-9_-]{16,64})\.([0-9]{1,12})\.([0-9a-f]{64})$")


def same_secret(given: str, expected: str) -> bool:
    """Constant-time, on bytes: any text (non-ASCII, lone surrogates) is just wrong."""
    if not expected or not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                               expected.encode("utf-8", "surrogatepass"))


class Sessions:
    """Session cookies ``nonce.expires.signature``: random, signed with a key
    derived from the site's secret (so they survive a restart and say nothing
    about the secret), and refused once expired or altered."""

    def __init__(self, secret: str, *, cookie: str, lifetime_s: int,
                 purpose: bytes = b"switchboard web session") -> None:
        self.key = hmac.new(secret.encode("utf-8", "surrogatepass"), purpose,
                            hashlib.sha256).digest()
        self.cookie = cookie
        self.lifetime_s = lifetime_s

    def sign(self, nonce: str, expires: int) -> str:
        return hmac.new(self.key, f"{nonce}.{expires}".encode(), hashlib.sha256).hexdigest()

    def new(self) -> str:
        nonce = secrets.token_urlsafe(24)
        expires = int(time.time()) + self.lifetime_s
        return f"{nonce}.{expires}.{self.sign(nonce, expires)}"

    def valid(self, request: web.Request) -> bool:
        m = _SESSION_RE.match(request.cookies.get(self.cookie, ""))
        if m is None or int(m.group(2)) < time.time():
            return False
        return hmac.compare_digest(self.sign(m.group(1), int(m.group(2))), m.group(3))

    def set_cookie(self, request: web.Request, resp: web.StreamResponse) -> None:
        resp.set_cookie(self.cookie, self.new(), httponly=True, samesite="Strict",
                        secure=request.secure, max_age=self.lifetime_s, path="/")


def host_name(host: str) -> str:
    """The name in a Host header: ``name``, ``name:port``, ``[v6]``, ``[v6]:port``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def known_hosts(listen_host: str, extra: Iterable[str]) -> set[str]:
    return {h.lower().strip("[]") for h in (listen_host, "127.0.0.1", "localhost", "::1",
                                             *extra)
            if h and h not in ("0.0.0.0", "::")}  # noqa: S104 - names, not binds


def host_guard(hosts: set[str]) -> Any:
    """Middleware: only our own host names (a page another site's DNS points
    here cannot read it)."""
    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        if host_name(request.host or "") not in hosts:
            return web.Response(status=421, text="unknown host\n")
        resp: web.StreamResponse = await handler(request)
        return resp
    return guard


async def safe_headers(_request: web.Request, resp: web.StreamResponse) -> None:
    """``on_response_prepare``: on every answer, before it is sent (streams too)."""
    resp.headers.setdefault("Cache-Control", "no-store")
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
