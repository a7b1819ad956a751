"""Logging in: MD5 challenge (the default: the secret never crosses the wire),
plain, and a refused login."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from switchboard.ami_listener.captures import FIXTURES, Capture, segment_from
from switchboard.ami_listener.replay import ReplayServer, ServerOptions
from switchboard.ami_listener.service import Listener
from tests.helpers import as_service, calls, ingest, listener_settings


def test_md5_key_matches_the_recorded_exchange() -> None:
    """The recorded client answered Challenge 214342439 with this key, and Asterisk
    accepted it: our formula gives the same bytes."""
    client = (FIXTURES / "ami" / "i_login_md5.client").read_bytes().decode()
    server = (FIXTURES / "ami" / "i_login_md5.ami").read_bytes().decode()
    nonce = server.split("Challenge: ")[1].split("\r\n")[0]
    key = client.split("Key: ")[1].split("\r\n")[0]
    assert hashlib.md5((nonce + "listenerpass").encode(),
                       usedforsecurity=False).hexdigest() == key
    assert "Authentication accepted" in server


def test_md5_and_plain_login_both_work(db_url: str, tmp_path: Path) -> None:
    for auth in ("md5", "plain"):
        _, server = asyncio.run(ingest(
            db_url, tmp_path / auth,
            [segment_from(Capture.load("d_queue_timeout"), close=False)], auth=auth))
        assert server.stats.actions[0] == ("challenge" if auth == "md5" else "login")
    # one call per session: this capture has no Timestamps, so two sessions are two streams
    assert [c["outcome"] for c in asyncio.run(calls(db_url))] == ["timeout", "timeout"]


def test_wrong_secret_is_retried_with_backoff_not_hammered(db_url: str, tmp_path: Path) -> None:
    async def scenario() -> int:
        server = ReplayServer([], ServerOptions(secret="something-else"))
        port = await server.start()
        listener = Listener(listener_settings(tmp_path, port, backoff_initial_s=0.2,
                                              backoff_max_s=0.4),
                            as_service(db_url, "listener"))
        await listener.start()
        await asyncio.sleep(1.5)
        await listener.stop()
        await server.close()
        assert listener.pipelines[0].client.session == 0  # never logged in
        return server.stats.connections
    assert 2 <= asyncio.run(scenario()) <= 10
