"""The agent panel's answers to hostile requests (no browser: raw HTTP on
loopback), and the site's dispositions from the command line."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import db_env, fetch
from tests.web.conftest import PASSWORD, keyed, seed
from tests.web.test_panel import CLI, panel_for

H = {"X-SB-Panel": "1", "Content-Type": "application/json"}


def test_hostile_requests_get_clear_refusals(db_url: str, tmp_path: Path) -> None:
    env = keyed(tmp_path)
    asyncio.run(seed(db_url, env))

    async def main() -> dict[str, Any]:
        out: dict[str, Any] = {}
        panel = panel_for(db_url, env)
        port = await panel.start()
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
                async def status(method: str, path: str, **kw: Any) -> int:
                    async with s.request(method, base + path, **kw) as r:
                        await r.read()
                        return r.status
                out["no_session"] = await status("GET", "/api/calls")
                out["forged_cookie"] = await status("GET", "/api/calls",
                                                    cookies={"sb_panel": "x" * 43})
                out["no_header"] = await status("POST", "/api/login",
                                                json={"login": "alice", "password": "x"})
                out["cross_site"] = await status("POST", "/api/login", headers={
                    **H, "Origin": "https://evil.example"}, data=b"{}")
                out["not_json"] = await status("POST", "/api/login", headers=H, data=b"\xff{")
                out["huge"] = await status("POST", "/api/login", headers=H,
                                           data=b'{"login": "' + b"a" * 20000 + b'"}')
                out["bad_types"] = await status("POST", "/api/login", headers=H,
                                                json={"login": ["alice"], "password": 1})
                out["bad_host"] = await status("GET", "/", headers={"Host": "evil.example"})
                async with s.post(base + "/api/login", headers=H,
                                  json={"login": "alice", "password": PASSWORD["alice"]}) as r:
                    out["login"] = r.status
                    out["cookie_flags"] = r.headers.get("Set-Cookie", "")
                out["bad_uid"] = await status("POST", "/api/calls/a%20b%3Bc/case", headers=H)
                out["long_uid"] = await status("POST", "/api/calls/" + "1" * 200 + "/case",
                                               headers=H)
                out["typed_number"] = await status(
                    "POST", "/api/calls/pbx-a-1.1/oob", headers=H,
                    json={"agency": "+15555550100"})
                out["bad_case_number"] = await status(
                    "POST", "/api/calls/pbx-a-1.1/lookup", headers=H,
                    json={"case_number": "12'; DROP TABLE case_record;--"})
                out["note_too_long"] = await status(
                    "POST", "/api/calls/pbx-a-1.1/disposition", headers=H,
                    json={"code": "info-given", "note": "x" * 2001})
                out["not_my_call"] = await status(
                    "POST", "/api/calls/pbx-a-1.1/disposition", headers=H,
                    json={"code": "info-given"})
                async with s.get(base + "/") as r:
                    out["csp"] = r.headers.get("Content-Security-Policy", "")
        finally:
            await panel.stop()
        return out

    out = asyncio.run(main())
    assert out["no_session"] == 401 and out["forged_cookie"] == 401
    assert out["no_header"] == 403 and out["cross_site"] == 403
    assert out["not_json"] == 400 and out["huge"] == 413 and out["bad_types"] == 400
    assert out["bad_host"] == 421
    assert out["login"] == 200
    assert "HttpOnly" in out["cookie_flags"] and "SameSite=Strict" in out["cookie_flags"]
    assert out["bad_uid"] == 400 and out["long_uid"] == 400
    assert out["typed_number"] == 400 and out["bad_case_number"] == 400
    assert out["note_too_long"] == 400 and out["not_my_call"] == 403
    assert "script-src 'self'" in out["csp"]
    assert asyncio.run(fetch(db_url, "SELECT count(*) AS n FROM case_record"))[0]["n"] == 1


def test_dispositions_are_the_sites_and_each_change_is_audited(db_url: str,
                                                               tmp_path: Path) -> None:
    env = {**os.environ, **db_env(db_url), **keyed(tmp_path)}

    def sb(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True,
                              check=False)
    assert sb("disposition", "set", "welfare-check", "Welfare check requested",
              "--sort", "25").returncode == 0
    assert sb("disposition", "retire", "hoax").returncode == 0
    again = sb("disposition", "retire", "hoax")
    assert again.returncode == 1 and "no disposition hoax in use" in again.stderr
    bad = sb("disposition", "set", "Bad Code!", "x")
    assert bad.returncode == 1 and "lower-case" in bad.stderr
    listed = sb("disposition", "list").stdout.splitlines()
    assert listed[2].startswith("welfare-check") and listed[-1].endswith("RETIRED")
    rows = asyncio.run(fetch(db_url, "SELECT action, detail FROM audit_log WHERE action LIKE "
                             "'ops-disposition%' ORDER BY at"))
    assert [(r["action"], r["detail"]) for r in rows] == [
        ("ops-disposition-set", "welfare-check"), ("ops-disposition-retire", "hoax")]
    panel = asyncio.run(fetch(db_url, "SELECT code FROM sb_panel_dispositions()"))
    assert "hoax" not in [r["code"] for r in panel]


def test_session_idle_clock_moves_at_most_every_5_s(db_url: str, tmp_path: Path) -> None:
    """A page's checks are reads; the idle clock is written when it moves by
    5 s or more; a session idle past its limit is over."""
    import hashlib

    import asyncpg

    from tests.helpers import as_service
    env = keyed(tmp_path)
    asyncio.run(seed(db_url, env))
    token = hashlib.sha256(b"a panel session token").digest()

    async def main() -> list[Any]:
        owner = await asyncpg.connect(db_url)
        await owner.execute(
            "INSERT INTO panel_session (token_hash, agent_id, expires_at, idle_s) "
            "SELECT $1, agent_id, now() + interval '1 hour', 10 FROM agent "
            "WHERE login = 'alice'", token)
        panel = await asyncpg.connect(as_service(db_url, "panel"))
        seen = lambda: owner.fetchval(  # noqa: E731
            "SELECT last_seen_at FROM panel_session WHERE token_hash = $1", token)
        out: list[Any] = []
        try:
            first = await seen()
            out.append(await panel.fetchval("SELECT login FROM sb_panel_session($1)", token))
            out.append(await seen() == first)  # checked within 5 s: not rewritten
            await owner.execute("UPDATE panel_session SET last_seen_at = now() - "
                                "interval '6 seconds' WHERE token_hash = $1", token)
            out.append(await panel.fetchval("SELECT login FROM sb_panel_session($1)", token))
            out.append(await owner.fetchval("SELECT last_seen_at > now() - interval '1 second'"
                                            " FROM panel_session WHERE token_hash = $1",
                                            token))
            await owner.execute("UPDATE panel_session SET last_seen_at = now() - "
                                "interval '11 seconds' WHERE token_hash = $1", token)
            out.append(await panel.fetchval("SELECT login FROM sb_panel_session($1)", token))
        finally:
            await panel.close()
            await owner.close()
        return out

    assert asyncio.run(main()) == ["alice", True, "alice", True, None]
