"""The wall board under attack (issue 11): odd tokens, stolen or forged cookies,
a foreign Host header, inline script, and connections that never finish."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.pgcluster import free_port
from switchboard.web.auth import same_secret
from switchboard.web.wallboard import COOKIE, Board, BoardConfig
from tests.helpers import as_service

TOKEN = "wallboard-security-token-0123456789"


def with_board(db_url: str, scenario: Callable[[str, Board], Awaitable[Any]],
               **config: Any) -> Any:
    async def main() -> Any:
        board = Board(as_service(db_url, "reports"),
                      BoardConfig(port=free_port(), token=TOKEN, metrics_port=0, **config))
        await board.start()
        try:
            return await scenario(f"http://127.0.0.1:{board.port}", board)
        finally:
            await board.stop()
    return asyncio.run(main())


async def get(url: str, *, cookie: str | None = None,
              headers: dict[str, str] | None = None) -> tuple[int, Any, str]:
    jar = aiohttp.DummyCookieJar()  # cookies only as the test gives them
    async with aiohttp.ClientSession(cookie_jar=jar) as s, s.get(
            url, allow_redirects=False, headers={**(headers or {}), **(
                {"Cookie": f"{COOKIE}={cookie}"} if cookie else {})}) as r:
        return r.status, r.headers, await r.text()


def test_tokens_cookies_hosts_and_the_page(db_url: str) -> None:
    async def scenario(base: str, board: Board) -> dict[str, Any]:
        out: dict[str, Any] = {}
        out["non_ascii"] = (await get(base + "/?token=%C3%A9"))[0]  # before: 500, traceback
        out["surrogate"] = (await get(base + "/?token=%ED%A0%80"))[0]
        status, headers, _ = await get(base + f"/?token={TOKEN}")
        out["login"] = (status, headers.get("Location"))
        cookie = headers.get("Set-Cookie", "")
        out["cookie_flags"] = cookie
        session = cookie.split(";", 1)[0].split("=", 1)[1]
        out["page"] = await get(base + "/", cookie=session)
        out["script"] = (await get(base + "/wallboard.js", cookie=session))[0]
        out["events_no_cookie"] = (await get(base + "/snapshot.json"))[0]
        out["token_as_cookie"] = (await get(base + "/", cookie=TOKEN))[0]  # the old cookie
        nonce, expires, sig = session.split(".")
        longer = f"{nonce}.{int(expires) + 10**6}.{sig}"  # a forged later expiry
        out["forged"] = (await get(base + "/", cookie=longer))[0]
        old = f"{nonce}.{int(time.time()) - 1}"  # signed right, but expired
        old_sig = board.sessions.sign(nonce, int(time.time()) - 1)
        out["expired"] = (await get(base + "/", cookie=f"{old}.{old_sig}"))[0]
        out["fresh"] = (await get(base + "/snapshot.json", cookie=board.sessions.new()))[0]
        out["evil_host"] = (await get(base + "/", cookie=session,
                                      headers={"Host": "evil.example"}))[0]
        out["listed_host"] = (await get(base + "/", cookie=session,
                                        headers={"Host": "board.lab.example:8088"}))[0]
        return out
    out = with_board(db_url, scenario, hosts=("board.lab.example",))
    assert out["non_ascii"] == 401 and out["surrogate"] == 401
    assert out["login"] == (303, "/")  # the token leaves the address bar at once
    flags = out["cookie_flags"].lower()
    assert "httponly" in flags and "samesite=strict" in flags and "max-age=43200" in flags
    assert TOKEN not in out["cookie_flags"]  # a random session id, not the token
    status, headers, body = out["page"]
    assert status == 200 and "<script>" not in body and 'src="/wallboard.js"' in body
    csp = headers["Content-Security-Policy"]
    script_src = next(p for p in csp.split(";") if p.strip().startswith("script-src"))
    assert "unsafe-inline" not in script_src and "frame-ancestors 'none'" in csp
    assert out["script"] == 200 and out["fresh"] == 200
    assert (out["events_no_cookie"], out["token_as_cookie"], out["forged"],
            out["expired"]) == (401, 401, 401, 401)
    assert out["evil_host"] == 421 and out["listed_host"] == 200


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_any_wrong_token_is_401_never_an_error(token: str) -> None:
    assert same_secret(token, TOKEN) == (token == TOKEN)


def test_idle_and_slow_connections_are_closed(db_url: str) -> None:
    """300 connections that send nothing or never finish their request (more
    than a 256-file limit): all closed after the idle time, and the supervisor's
    own request still answered."""
    async def scenario(base: str, board: Board) -> tuple[int, float, int]:
        port = board.port
        conns = []
        for i in range(300):
            r, w = await asyncio.open_connection("127.0.0.1", port)
            if i % 2:
                w.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never finished
            conns.append((r, w))
        started = time.monotonic()
        closed = 0
        for r, w in conns:
            try:
                await asyncio.wait_for(r.read(), 10)  # returns at end of stream: closed
                closed += 1
            except (TimeoutError, ConnectionError):
                pass
            w.close()
        took = time.monotonic() - started
        status = (await get(base + f"/?token={TOKEN}"))[0]
        return closed, took, status
    closed, took, status = with_board(db_url, scenario, idle_s=1.0)
    assert closed == 300 and took < 8
    assert status == 303


def test_the_token_is_not_printed_at_every_start(tmp_path: Path) -> None:
    cli = [sys.executable, "-c", "from switchboard.console.cli import board_config; "
           "from switchboard.settings import load; import os; "
           "board_config(load(), None)"]
    env = {"PATH": "/usr/bin:/bin", "SB_STATE_DIR": str(tmp_path), "HOME": str(tmp_path)}
    first = subprocess.run(cli, env=env, capture_output=True, text=True, check=True)
    second = subprocess.run(cli, env=env, capture_output=True, text=True, check=True)
    token = (Path(tmp_path) / "wallboard-token").read_text().strip()
    assert token in first.stdout and token not in second.stdout + second.stderr
