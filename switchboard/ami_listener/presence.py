"""Agents on every node (issue 23): each listener makes its own node's queue
members what ``agent_presence`` says (sql/migrations/0025_nodes.sql).

An agent logs in, out, pauses or unpauses on one node (a feature code on the
desk phone, or the panel); that node's listener records the change in the
same transaction as the events (writer.py); the database notifies
``sb_presence``; every listener then compares its node's members (as its
deriver knows them, after the QueueStatus of its latest login) with what is
wanted, and sends ``QueueAdd``, ``QueueRemove`` or ``QueuePause`` for each
difference.  The node that applied one reports the same state back, which
changes nothing.  A node that was down is brought up to date after its next
login; members nobody ever changed through a node are left alone.

The listener's AMI user needs ``write = agent`` for these three actions (and
nothing else): dialplan/site.example/manager-users.conf.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from switchboard import log
from switchboard.sqlfile import queries

Q = queries("ami_listener.sql")
DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)
RETRY_S = 5.0  # an action sent is not sent again for this long (its event is on the way)
EVERY_S = 5.0  # and the comparison runs this often without a notification


def wanted_actions(wanted: Sequence[Any], members: dict[tuple[str, str], Any]
                   ) -> list[tuple[str, dict[str, str]]]:
    """The AMI actions that make ``members`` (the deriver's, (queue, interface)
    -> its interval) what ``wanted`` (agent_presence rows) says."""
    out: list[tuple[str, dict[str, str]]] = []
    for w in wanted:
        key = (w["queue"], w["interface"])
        cur = members.get(key)
        if not w["logged_in"]:
            if cur is not None:
                out.append(("QueueRemove", {"Queue": w["queue"], "Interface": w["interface"]}))
            continue
        paused = "true" if w["paused"] else "false"
        if cur is None:
            headers = {"Queue": w["queue"], "Interface": w["interface"], "Paused": paused}
            if w["member_name"]:
                headers["MemberName"] = w["member_name"]
            if w["paused"] and w["reason"]:
                headers["Reason"] = w["reason"]
            out.append(("QueueAdd", headers))
            continue
        is_paused = cur.state == "paused"
        if is_paused != bool(w["paused"]) or (w["paused"] and (cur.reason or None)
                                               != (w["reason"] or None)):
            headers = {"Queue": w["queue"], "Interface": w["interface"], "Paused": paused}
            if w["paused"] and w["reason"]:
                headers["Reason"] = w["reason"]
            out.append(("QueuePause", headers))
    return out


@dataclass(frozen=True, slots=True)
class Applied:
    """What a node said yes to, before its event reached the deriver: a member
    (``state`` "available" or "paused") or its absence (``state`` None)."""

    state: str | None
    reason: str | None
    at: float


def as_applied(action: str, headers: dict[str, str], now: float) -> Applied:
    if action == "QueueRemove":
        return Applied(None, None, now)
    paused = headers.get("Paused") == "true"
    return Applied("paused" if paused else "available",
                   headers.get("Reason") if paused else None, now)


def members_seen(members: dict[tuple[str, str], Any],
                 applied: dict[tuple[str, str], Applied], now: float
                 ) -> dict[tuple[str, str], Any]:
    """The deriver's members, with what the node accepted in the last RETRY_S
    put over them: its event may still be on its way (a pause asked for right
    after a login must be a QueuePause, not a second QueueAdd that Asterisk
    refuses as "Already there")."""
    seen = dict(members)
    for key, a in applied.items():
        if now - a.at >= RETRY_S:
            continue
        if a.state is None:
            seen.pop(key, None)
        else:
            seen[key] = a
    return seen


class PresenceSync:
    """One per listener process: every pipeline's node follows agent_presence."""

    def __init__(self, database_url: str, pool: asyncpg.Pool, pipelines: list[Any]) -> None:
        self.database_url = database_url  # the LISTEN connection's (a pool's is shared)
        self.pool = pool
        self.pipelines = pipelines
        self.wake = asyncio.Event()
        self.log = log.get("ami_listener")
        self._sent: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._applied: dict[str, dict[tuple[str, str], Applied]] = {}
        self.actions_sent = 0

    async def run(self, stop: asyncio.Event) -> None:
        listen = asyncio.ensure_future(self._listen(stop))
        try:
            while not stop.is_set():
                waits = [asyncio.ensure_future(self.wake.wait()),
                         asyncio.ensure_future(stop.wait())]
                await asyncio.wait(waits, timeout=EVERY_S,
                                   return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    w.cancel()
                self.wake.clear()
                if stop.is_set():
                    break
                try:
                    await self.converge()
                except DB_ERRORS as exc:
                    self.log.warning("presence_unavailable", error=type(exc).__name__)
        finally:
            listen.cancel()
            with contextlib.suppress(BaseException):
                await listen

    async def _listen(self, stop: asyncio.Event) -> None:
        """LISTEN sb_presence on a connection of its own, again after a loss."""
        while not stop.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.database_url, timeout=10)
                await conn.add_listener("sb_presence", lambda *_: self.wake.set())
                self.wake.set()  # what changed while we were not listening
                while not stop.is_set() and not conn.is_closed():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 5)
                    if not conn.is_closed():
                        await conn.execute("SELECT 1")
            except DB_ERRORS:
                pass
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2)

    async def converge(self) -> int:
        """Send what each ready node lacks; returns the number of actions sent."""
        ready = [p for p in self.pipelines
                 if p.client.connected.is_set() and p.writer.deriver.synced]
        if not ready:
            return 0
        async with self.pool.acquire(timeout=10) as conn:
            wanted = list(await conn.fetch(Q["presence_wanted"]))
        sent = 0
        now = time.monotonic()
        for p in ready:
            node = p.client.node.name
            applied = self._applied.setdefault(node, {})
            for key_ in [k for k, a in applied.items() if now - a.at >= RETRY_S]:
                del applied[key_]
            seen = members_seen(p.writer.deriver.members, applied, now)
            for action, headers in wanted_actions(wanted, seen):
                key = (node, headers["Queue"], headers["Interface"])
                what = f"{action}:{headers.get('Paused', '')}:{headers.get('Reason', '')}"
                last = self._sent.get(key)
                if last is not None and last[0] == what and now - last[1] < RETRY_S:
                    continue
                self._sent[key] = (what, now)
                try:
                    reply = await asyncio.wait_for(p.client.action(action, headers), 5)
                except Exception as exc:  # the node went away: the next login retries
                    self.log.warning("presence_action_failed", node=node, action=action,
                                     interface=headers["Interface"], error=type(exc).__name__)
                    continue
                sent += 1
                self.actions_sent += 1
                ok = reply.get("Response") == "Success"
                if ok:
                    applied[(headers["Queue"], headers["Interface"])] = as_applied(
                        action, headers, now)
                self.log.info("presence_applied" if ok else "presence_refused", node=node,
                              action=action, queue=headers["Queue"],
                              interface=headers["Interface"],
                              paused=headers.get("Paused"),
                              message=None if ok else str(reply.get("Message"))[:120])
        return sent
