"""Derived state: one row per queued call, agent state intervals, listener gaps.

Pure: ``Deriver.apply(item)`` updates in-memory state and marks what changed;
the writer persists the changed rows in the same transaction as the raw rows.
Only events that were new to the database are applied, so a replay never
counts anything twice.

Timeout vs abandon (Asterisk 22 sends QueueCallerAbandon for both): a real
abandon is preceded by ``HangupRequest`` on the caller's channel; a ``Queue()``
timeout is not (the channel goes on in the dialplan).  The dialplan's
``SBQueueResult`` UserEvent (QUEUESTATUS) overrides when it arrives.

Shutdown and restart: Asterisk hangs every channel up with ``SoftHangupRequest``
``Cause: 4`` (AST_SOFTHANGUP_SHUTDOWN) and then reports a waiting caller with
``QueueCallerAbandon`` (no HangupRequest) and a talking one with
``AgentComplete``; the ``Shutdown`` event follows.  Such calls end as ``cut``.

Gaps (the listener was not connected): a gap runs from the last frame received
before the loss to the login that ended it.  Calls that were open then and are
not in the QueueStatus list after the login end as ``unknown`` (waiting) or
with an unknown end (talking, and the agent no longer in a call); they stay
tracked, so late events and the queue_log reconciler correct them.
"""

from __future__ import annotations

from switchboard.ami_listener import events as ev
from switchboard.ami_listener.derived import Call, Changes, Gap, Interval, Presence, member_state

MAX_TRACKED_CALLS = 500_000


class Deriver:
    """State for one node.  Build it empty, or from the open rows in the database."""

    def __init__(self, node: str, *, last_seen_us: int | None = None) -> None:
        self.node = node
        self.calls: dict[str, Call] = {}  # by caller uniqueid: the channel's latest call
        self.members: dict[tuple[str, str], Interval] = {}
        self.last_seen_us = last_seen_us
        self.changes = Changes()
        self._disconnect_reason: str | None = None
        self._disconnect_last_rx: int | None = None
        self._cut: list[Call] = []  # cut since the last Shutdown event
        # the members are known as Asterisk has them (QueueStatus since the login)
        self.synced = False
        # talking across a gap, their agent in a call at the resync: by interface
        self._talking_after_gap: dict[str, Call] = {}
        self._resync_gap: Gap | None = None
        self._resync_entries: set[tuple[str, str]] | None = None  # (uniqueid, queue)
        self._resync_members: dict[tuple[str, str], bool] = {}  # -> in a call
        self.anomalies = 0

    # -- loading -------------------------------------------------------------
    def load_call(self, call: Call) -> None:
        self.calls[call.uniqueid] = call

    def load_interval(self, interval: Interval) -> None:
        self.members[(interval.queue, interval.interface)] = interval

    def take_changes(self) -> Changes:
        changes, self.changes = self.changes, Changes()
        return changes

    # -- helpers ---------------------------------------------------------------
    def _touch(self, call: Call) -> None:
        self.changes.calls[call.call_id] = call

    def _call(self, uniqueid: str, queue: str | None = None) -> Call | None:
        call = self.calls.get(uniqueid)
        if call is None or (queue is not None and call.queue != queue):
            return None
        return call

    def _observe(self, d: ev.MemberState, t: int, key: bytes, seq: int) -> None:
        queue, interface = d.queue, d.interface
        state, reason = member_state(d.status, d.paused, d.in_call), d.reason
        cur = self.members.get((queue, interface))
        if cur is not None and cur.state == state and cur.reason == reason:
            return
        if cur is not None:
            cur.ended_at_us = max(t, cur.started_at_us)
            self.changes.intervals[(queue, interface, cur.start_key)] = cur
        new = Interval(self.node, queue, interface, d.member_name, state, reason, t, key, seq)
        self.members[(queue, interface)] = new
        self.changes.intervals[(queue, interface, key)] = new

    def _evict(self) -> None:
        if len(self.calls) <= MAX_TRACKED_CALLS:
            return
        ended = [uid for uid, c in self.calls.items() if c.ended_at_us is not None]
        for uid in ended[: len(self.calls) - MAX_TRACKED_CALLS]:
            del self.calls[uid]
        while len(self.calls) > MAX_TRACKED_CALLS:  # still too many: oldest first
            self.anomalies += 1
            del self.calls[next(iter(self.calls))]

    # -- the state machine -------------------------------------------------------
    def apply(self, item: ev.Item) -> None:
        d, t = item.domain, item.event_time_us
        if item.raw is not None:
            self.last_seen_us = item.raw.received_at_us
        if d is None:
            return
        if isinstance(d, ev.Alive):
            self.last_seen_us = t
            return
        call: Call | None
        if isinstance(d, ev.CallerJoin):
            call = Call(item.key, self.node, d.uniqueid, d.linkedid, d.queue, d.caller_num,
                        d.caller_name, t, d.position)
            self.calls.pop(d.uniqueid, None)
            self.calls[d.uniqueid] = call
            self._touch(call)
            self._evict()
        elif isinstance(d, ev.AgentCalled):
            call = self._call(d.uniqueid, d.queue)
            if call is not None and call.ended_at_us is None and (
                    d.interface not in call.ringing):
                call.ringing = (*call.ringing, d.interface)[-16:]
                self._touch(call)
        elif isinstance(d, ev.AgentRingNoAnswer):
            if (call := self._call(d.uniqueid, d.queue)) is not None:
                call.rna_count += 1
                call.ringing = tuple(i for i in call.ringing if i != d.interface)
                self._touch(call)
        elif isinstance(d, ev.AgentConnect):
            if d.interface is not None:
                self._agent_moved_on(d.interface, d.uniqueid, t)
            if (call := self._call(d.uniqueid, d.queue)) is not None:
                if call.outcome == "unknown":  # closed by a gap, still going: open again
                    call.ended_at_us = None
                call.outcome = "answered"
                call.ringing = ()
                call.member_interface, call.member_name = d.interface, d.member_name
                call.hold_s, call.ring_s = d.hold_s, d.ring_s
                call.answered_at_us = t
                self._touch(call)
        elif isinstance(d, ev.AgentComplete):
            if (call := self._call(d.uniqueid, d.queue)) is not None:
                call.member_interface = call.member_interface or d.interface
                call.member_name = call.member_name or d.member_name
                if call.hold_s is None:
                    call.hold_s = d.hold_s
                call.talk_s = d.talk_s
                call.complete_reason = d.reason
                call.end("transferred" if d.reason == "transfer" else "answered", t)
                self._touch(call)
        elif isinstance(d, ev.CallerAbandon):
            if (call := self._call(d.uniqueid, d.queue)) is not None:
                call.hold_s = d.hold_s
                call.end("abandoned" if call.caller_hangup_at_us is not None else "timeout", t)
                self._touch(call)
        elif isinstance(d, ev.CallerLeave):
            if (call := self._call(d.uniqueid, d.queue)) is not None:
                call.left_at_us = t
                call.ringing = ()
                self._touch(call)
        elif isinstance(d, ev.HangupRequest):
            call = self._call(d.uniqueid)
            if (call is not None and call.outcome in (None, "unknown")
                    and call.caller_hangup_at_us is None):
                call.caller_hangup_at_us = t
                self._touch(call)
        elif isinstance(d, ev.SoftHangup):
            call = self._call(d.uniqueid)
            if d.shutdown and call is not None and call.shutdown_at_us is None and (
                    call.ended_at_us is None or call.outcome == "unknown"):
                call.shutdown_at_us = t
                self._cut.append(call)
        elif isinstance(d, ev.AsteriskShutdown):
            self._shutdown(d, t)
        elif isinstance(d, ev.Transfer):
            if (call := self.calls.get(d.uniqueid)) is not None:
                call.transfer_target = d.target
                self._touch(call)
        elif isinstance(d, ev.Hangup):
            call = self.calls.get(d.uniqueid)
            if call is not None:
                if call.outcome is None and call.left_at_us is not None:
                    # left the queue with no agent and no abandon/timeout: emptied queue
                    call.end("left-empty", call.left_at_us)
                    self._touch(call)
                if call.ended_at_us is not None:
                    del self.calls[d.uniqueid]
        elif isinstance(d, ev.QueueResult):
            self._queue_result(d, t, item.key)
        elif isinstance(d, ev.MemberState):
            self._observe(d, t, item.key, item.seq)
            if d.change is not None and not d.snapshot:
                self.changes.presence.append(Presence(d.queue, d.interface, d.member_name,
                                                      True, d.paused, d.reason, t))
            if d.snapshot:
                self._resync_members[(d.queue, d.interface)] = d.in_call
        elif isinstance(d, ev.MemberRemoved):
            self.changes.presence.append(Presence(d.queue, d.interface, None, False, False,
                                                  None, t))
            cur = self.members.pop((d.queue, d.interface), None)
            if cur is not None:
                cur.ended_at_us = max(t, cur.started_at_us)
                self.changes.intervals[(d.queue, d.interface, cur.start_key)] = cur
        elif isinstance(d, ev.Disconnected):
            self._disconnect_reason = d.reason or "connection lost"
            # the last bytes before the loss, or the moment it was noticed
            self._disconnect_last_rx = min(d.last_rx_us or t, t)
        elif isinstance(d, ev.Connected):
            self.synced = False
            self._connected(item)
            self.changes.node_state = ("up", t, "")
        elif isinstance(d, ev.NodeLost):
            self.synced = False
            self._node_lost(d, t)
        elif isinstance(d, ev.QueueEntrySnapshot):
            if self._resync_entries is not None:
                self._resync_entries.add((d.uniqueid, d.queue))
            known = self.calls.get(d.uniqueid)
            gap_key = self._resync_gap.gap_key if self._resync_gap else None
            if known is not None and known.queue != d.queue and known.ended_at_us is None \
                    and known.outcome is None:
                # it left that queue while nobody listened (a timeout into overflow...)
                known.gap_key = gap_key
                known.end("unknown", t)
                self._touch(known)
            elif known is not None and known.queue == d.queue and (
                    known.outcome == "unknown" or (known.outcome == "cut" and (
                        known.complete_reason or "").endswith(" lost"))):
                known.outcome, known.ended_at_us = None, None  # still waiting after all
                known.complete_reason = None
                self._touch(known)
                return
            if known is None or known.queue != d.queue or known.ended_at_us is not None:
                # joined while nobody listened: Asterisk says since when it waits
                entered = t - (d.wait_s or 0) * 1_000_000
                call = Call(item.key, self.node, d.uniqueid, None, d.queue, d.caller_num,
                            d.caller_name, entered, d.position)
                call.gap_key = gap_key
                self.calls[d.uniqueid] = call
                self._touch(call)
        elif isinstance(d, ev.ResyncComplete):
            self._reconcile(d.complete, t)
            self.synced = d.complete

    def _agent_moved_on(self, interface: str, uniqueid: str, t: int) -> None:
        """An agent answers another call: the call it was talking to across a gap
        is over (one queue call at a time, ringinuse=no), though its end was
        missed; it ended before now."""
        call = self._talking_after_gap.pop(interface, None)
        if call is None or call.uniqueid == uniqueid or call.ended_at_us is not None:
            return
        call.ended_at_us = max(t, call.entered_at_us)
        call.complete_reason = "gap"
        self._touch(call)

    def _shutdown(self, d: ev.AsteriskShutdown, t: int) -> None:
        """Asterisk is going down: every call still open is cut now (its channel is
        being hung up); the ones cut before this event learn whether it was a
        restart."""
        reason = "restart" if d.restart else "shutdown"
        for call in list(self.calls.values()):
            if call.ended_at_us is None:
                if call.shutdown_at_us is None:
                    call.shutdown_at_us = t
                    self._cut.append(call)
                call.end("cut", t)
        for call in self._cut:
            if call.outcome == "cut":
                call.complete_reason = reason
            self._touch(call)
        self._cut = []

    def _node_lost(self, d: ev.NodeLost, t: int) -> None:
        """The node is dead (SB_NODE_LOST_S without an answer): every call still
        open on it is cut now, with a reason that names the node, and its agents
        are no longer counted.  When the node comes back, its queue_log corrects
        the times (the outcome stays cut); a call still in its queue then was not
        lost after all and is open again (QueueStatus)."""
        at = min(d.last_rx_us or t, t)
        reason = f"node {self.node} lost"
        for call in list(self.calls.values()):
            if call.ended_at_us is None:
                call.ringing = ()
                call.outcome = "cut"
                call.complete_reason = reason
                call.ended_at_us = max(at, call.entered_at_us)
                self._touch(call)
        for key, cur in list(self.members.items()):
            cur.ended_at_us = max(at, cur.started_at_us)
            self.changes.intervals[(cur.queue, cur.interface, cur.start_key)] = cur
            del self.members[key]
        self.changes.node_state = ("lost", at, d.reason or "no answer")

    def _queue_result(self, d: ev.QueueResult, t: int, key: bytes) -> None:
        status = d.status
        call = self._call(d.uniqueid, d.queue)
        if status == "JOINEMPTY":
            empty = Call(key, self.node, d.uniqueid, None, d.queue, d.caller_num, None, t, None)
            empty.end("joined-empty", t)
            self._touch(empty)
        elif call is not None and status == "TIMEOUT":
            if call.outcome in (None, "abandoned"):
                call.end("timeout", call.ended_at_us or t)
                self._touch(call)
        elif call is not None and status == "LEAVEEMPTY" and call.outcome is None:
            call.end("left-empty", call.left_at_us or t)
            self._touch(call)

    def _connected(self, item: ev.Item) -> None:
        """Logged in: if we were connected before (in this process or, by the
        checkpoint, in an earlier one), events were missed from the last frame
        received before the loss until this login.  A first start is no gap."""
        t = item.event_time_us
        self._resync_entries = set()
        self._resync_members = {}
        self._resync_gap = None
        start = (self._disconnect_last_rx if self._disconnect_last_rx is not None
                 else self.last_seen_us)  # no goodbye (the listener was killed): the checkpoint
        if start is not None:
            gap = Gap(item.key, self.node, min(start, t), t,
                      self._disconnect_reason or "listener restarted")
            self._resync_gap = gap
            self.changes.gaps[gap.gap_key] = gap
        self._disconnect_reason = None
        self._disconnect_last_rx = None
        self.last_seen_us = t

    def _reconcile(self, complete: bool, t: int) -> None:
        gap, entries = self._resync_gap, self._resync_entries
        self._resync_entries = None
        if not complete or entries is None:
            return  # nothing can be concluded without a full list
        closed = 0
        if gap is not None:
            for uid, call in list(self.calls.items()):
                if call.ended_at_us is not None or (uid, call.queue) in entries:
                    continue
                if call.outcome is None:
                    # gone from the queue meanwhile: answered, abandoned or timed out
                    call.gap_key = gap.gap_key
                    call.end("unknown", gap.ended_at_us)
                    closed += 1
                elif not self._resync_members.get((call.queue, call.member_interface or "")):
                    # talking at the loss, and its agent is in no call now: it ended
                    # in the gap, when exactly only queue_log can say
                    call.gap_key = gap.gap_key
                    call.ended_at_us = max(gap.ended_at_us, call.entered_at_us)
                    call.complete_reason = "gap"
                    closed += 1
                else:
                    call.gap_key = gap.gap_key  # still talking: its end will come
                    if call.member_interface:
                        self._talking_after_gap[call.member_interface] = call
                self._touch(call)
            gap = Gap(gap.gap_key, gap.node, gap.started_at_us, gap.ended_at_us, gap.reason,
                      closed)
            self.changes.gaps[gap.gap_key] = gap
        for key, cur in list(self.members.items()):
            if key not in self._resync_members:
                # removed while we were away: we last knew it at the start of the gap
                end = gap.started_at_us if gap is not None else t
                cur.ended_at_us = max(end, cur.started_at_us)
                self.changes.intervals[(cur.queue, cur.interface, cur.start_key)] = cur
                del self.members[key]
        self._resync_members = {}
        self._resync_gap = None
