"""Typed records produced at the edge from AMI frames.

Times are integer microseconds since the epoch (UTC), so nothing is lost to
float rounding of Asterisk's ``Timestamp: 1795859365.581120``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class RawRow(NamedTuple):
    """One row of ``ami_event`` (a NamedTuple: built once per event, on the hot path)."""

    event_time_us: int
    dedupe_key: bytes
    node: str
    received_at_us: int
    event: str
    uniqueid: str | None
    linkedid: str | None
    queue: str | None
    interface: str | None
    spool_seq: int
    fields_json: str


@dataclass(frozen=True, slots=True)
class CallerJoin:
    uniqueid: str
    linkedid: str | None
    queue: str
    caller_num: str | None
    caller_name: str | None
    position: int | None


@dataclass(frozen=True, slots=True)
class CallerLeave:
    uniqueid: str
    queue: str


@dataclass(frozen=True, slots=True)
class AgentCalled:
    """A member's phone starts ringing for this caller (the agent panel's screen pop)."""
    uniqueid: str
    queue: str
    interface: str


@dataclass(frozen=True, slots=True)
class CallerAbandon:
    uniqueid: str
    queue: str
    hold_s: int | None


@dataclass(frozen=True, slots=True)
class AgentConnect:
    uniqueid: str
    queue: str
    interface: str | None
    member_name: str | None
    hold_s: int | None
    ring_s: int | None  # AgentConnect's RingTime is in seconds


@dataclass(frozen=True, slots=True)
class AgentComplete:
    uniqueid: str
    queue: str
    interface: str | None
    member_name: str | None
    hold_s: int | None
    talk_s: int | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class AgentRingNoAnswer:
    uniqueid: str
    queue: str
    interface: str | None
    ring_ms: int | None  # AgentRingNoAnswer's RingTime is in milliseconds


@dataclass(frozen=True, slots=True)
class HangupRequest:
    uniqueid: str


@dataclass(frozen=True, slots=True)
class Hangup:
    uniqueid: str


@dataclass(frozen=True, slots=True)
class SoftHangup:
    """SoftHangupRequest: Asterisk itself asked the channel to hang up; Cause is
    a bit mask of AST_SOFTHANGUP_* (4 = shutdown, as on ``core restart``)."""

    uniqueid: str
    cause: int | None

    @property
    def shutdown(self) -> bool:
        return self.cause is not None and bool(self.cause & 4)


@dataclass(frozen=True, slots=True)
class Transfer:
    """BlindTransfer (Result: Success): the caller (the transferee) was sent to
    ``target`` (extension@context)."""

    uniqueid: str
    target: str


@dataclass(frozen=True, slots=True)
class AsteriskShutdown:
    """The Shutdown event: Asterisk is going down (``restart``: and coming back)."""

    restart: bool


@dataclass(frozen=True, slots=True)
class MemberState:
    """QueueMember{Status,Pause,Added} events and QueueStatus' QueueMember items."""

    queue: str
    interface: str
    member_name: str | None
    status: int | None
    paused: bool
    reason: str | None
    in_call: bool
    snapshot: bool = False
    # an agent's own change, shared with every node (issue 23): "added"
    # (QueueMemberAdded) or "pause" (QueueMemberPause); None for a state report
    change: str | None = None


@dataclass(frozen=True, slots=True)
class MemberRemoved:
    queue: str
    interface: str


@dataclass(frozen=True, slots=True)
class QueueResult:
    """The dialplan's ``UserEvent(SBQueueResult,...)`` after ``Queue()`` returns."""

    uniqueid: str
    queue: str
    status: str
    caller_num: str | None


@dataclass(frozen=True, slots=True)
class QueueEntrySnapshot:
    """A caller still waiting, from QueueStatus (resync)."""

    uniqueid: str
    queue: str
    position: int | None = None
    caller_num: str | None = None
    caller_name: str | None = None
    wait_s: int | None = None


@dataclass(frozen=True, slots=True)
class ResyncComplete:
    complete: bool  # False when Asterisk refused or the list was cut


@dataclass(frozen=True, slots=True)
class Connected:
    """Synthetic: the listener logged in to its node (written by the client)."""

    session: int


@dataclass(frozen=True, slots=True)
class Disconnected:
    """Synthetic: the connection was lost.  ``last_rx_us``: when the last bytes
    arrived from Asterisk before the loss (a Ping reply counts)."""

    reason: str
    last_rx_us: int | None = None


@dataclass(frozen=True, slots=True)
class NodeLost:
    """Synthetic: the node has not answered for SB_NODE_LOST_S since the last
    bytes it sent (``last_rx_us``): it is taken as dead (issue 23).  Its calls
    end as ``cut``; the front already sends new calls to the other nodes."""

    reason: str
    last_rx_us: int | None = None


@dataclass(frozen=True, slots=True)
class Alive:
    """Synthetic: Asterisk answered a Ping (the connection was alive then)."""


@dataclass(frozen=True, slots=True)
class EdgeAlert:
    """Something the wall board shows at once: a security event (someone failed
    to authenticate) or a 911 call (the dialplan's SBEmergency).  Nothing is
    derived from it; the writer notifies the board when a batch holds one."""
    kind: str  # security | emergency


Domain = (CallerJoin | CallerLeave | CallerAbandon | AgentCalled | AgentConnect | AgentComplete
          | AgentRingNoAnswer | HangupRequest | Hangup | MemberState | MemberRemoved
          | QueueResult | QueueEntrySnapshot | ResyncComplete | Connected | Disconnected
          | SoftHangup | AsteriskShutdown | Alive | NodeLost | Transfer | EdgeAlert)


class Item(NamedTuple):
    """What one spool record turned into: an optional raw row and an optional
    domain record, both stamped with the event's time and key."""

    seq: int
    event_time_us: int
    key: bytes
    raw: RawRow | None
    domain: Domain | None
