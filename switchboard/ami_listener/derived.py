"""The rows the listener derives from events (switchboard/ami_listener/derive.py
makes them): one per queued call, agent state intervals, listener gaps, the
agents' presence on every node, and the set of what changed in a batch."""

from __future__ import annotations

from dataclasses import dataclass, field

# Asterisk device states (QueueMemberStatus' Status).
_STATUS_STATE = {0: "unknown", 1: "available", 2: "on_call", 3: "on_call", 4: "unavailable",
                 5: "unavailable", 6: "ringing", 7: "on_call", 8: "on_call"}

def member_state(status: int | None, paused: bool, in_call: bool) -> str:
    if paused:
        return "paused"
    if in_call:
        return "on_call"
    return _STATUS_STATE.get(status if status is not None else 0, "unknown")


@dataclass(slots=True)
class Call:
    call_id: bytes
    node: str
    uniqueid: str
    linkedid: str | None
    queue: str
    caller_num: str | None
    caller_name: str | None
    entered_at_us: int
    position: int | None
    outcome: str | None = None
    member_interface: str | None = None
    member_name: str | None = None
    hold_s: int | None = None
    ring_s: int | None = None
    talk_s: int | None = None
    rna_count: int = 0
    answered_at_us: int | None = None
    left_at_us: int | None = None
    caller_hangup_at_us: int | None = None
    ended_at_us: int | None = None
    complete_reason: str | None = None
    gap_key: bytes | None = None
    transfer_target: str | None = None
    reconciled_at_us: int | None = None
    shutdown_at_us: int | None = None  # Asterisk's shutdown hung the channel up
    # members whose phones ring for this caller now (AgentCalled until their
    # AgentRingNoAnswer, the answer or the end): the agent panel's screen pop
    ringing: tuple[str, ...] = ()

    def end(self, outcome: str, t: int) -> None:
        self.ringing = ()
        if self.shutdown_at_us is not None and outcome in ("answered", "transferred",
                                                           "abandoned", "timeout"):
            outcome = "cut"
            self.complete_reason = "shutdown"
        self.outcome = outcome
        self.ended_at_us = max(t, self.entered_at_us)


@dataclass(slots=True)
class Interval:
    node: str
    queue: str
    interface: str
    member_name: str | None
    state: str
    reason: str | None
    started_at_us: int
    start_key: bytes
    start_seq: int
    ended_at_us: int | None = None


@dataclass(frozen=True, slots=True)
class Gap:
    gap_key: bytes
    node: str
    started_at_us: int
    ended_at_us: int
    reason: str
    calls_closed: int = 0
    backfilled: int = 0


@dataclass(frozen=True, slots=True)
class Presence:
    """An agent logged in, out, paused or unpaused on this node (the desk
    phone's feature code, the panel, or the sync from another node): the
    state every node converges to (switchboard/ami_listener/presence.py)."""

    queue: str
    interface: str
    member_name: str | None
    logged_in: bool
    paused: bool
    reason: str | None
    at_us: int


@dataclass
class Changes:
    calls: dict[bytes, Call] = field(default_factory=dict)
    intervals: dict[tuple[str, str, bytes], Interval] = field(default_factory=dict)
    gaps: dict[bytes, Gap] = field(default_factory=dict)
    # the node's state when it changed in this batch: (up | lost, since, reason)
    node_state: tuple[str, int, str] | None = None
    # agents' own logins, logouts and pauses on this node, for every node
    presence: list[Presence] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.calls or self.intervals or self.gaps or self.node_state
                    or self.presence)
