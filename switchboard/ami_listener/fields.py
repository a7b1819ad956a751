"""What the listener keeps of Asterisk's events and how each field is checked:
the kept and security event sets, the field checks (text bounded, identifiers
charset-checked, integers range-checked, Asterisk's timestamps, caller IDs
unescaped), and the dispatch table from an event's name to the function that
makes its typed record (switchboard/ami_listener/events.py).  Every field is
hostile until checked here; switchboard/ami_listener/normalise.py applies it
frame by frame."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from switchboard.ami_listener import events as ev
from switchboard.ami_listener.framing import Message

_ID_RE = re.compile(r"^[A-Za-z0-9_.:@/+\-]{1,150}$")
MAX_TEXT = 256
MAX_INT = 10**9

# Asterisk's security events (class security): each says someone failed to
# prove who they are or was refused.  ChallengeSent and SuccessfulAuth (every
# phone's every registration) are excluded on the AMI user (manager-users.conf).
SECURITY_EVENTS: frozenset[str] = frozenset({
    "InvalidAccountID", "ChallengeResponseFailed", "InvalidPassword", "FailedACL",
    "UnexpectedAddress", "RequestBadFormat", "RequestNotAllowed", "AuthMethodNotAllowed",
    "RequestNotSupported", "InvalidTransport", "SessionLimit", "MemoryLimit", "LoadAverage",
})

# Events stored raw.  Everything else is dropped at the edge (and should be
# excluded in manager.conf with eventfilter so Asterisk never sends it).
KEPT_EVENTS: frozenset[str] = frozenset({
    "QueueCallerJoin", "QueueCallerLeave", "QueueCallerAbandon",
    "AgentCalled", "AgentConnect", "AgentComplete", "AgentRingNoAnswer", "AgentDump",
    "QueueMemberStatus", "QueueMemberAdded", "QueueMemberRemoved", "QueueMemberPause",
    "QueueMemberPenalty", "QueueMemberRinginuse",
    "Newchannel", "HangupRequest", "SoftHangupRequest", "Hangup",
    "DialBegin", "DialEnd", "BridgeEnter", "BridgeLeave", "BlindTransfer",
    "AttendedTransfer", "Cdr", "UserEvent",
    "FullyBooted", "Shutdown", "Reload",
}) | SECURITY_EVENTS


def text(value: str | None, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    return value[:limit]


# identifiers already found valid: a call's Uniqueid and Linkedid come back in
# each of its events, and the regex is a measurable share of the hot path
_VALID_IDS: set[str] = set()
_MAX_VALID_IDS = 1 << 16


def ident(value: str | None) -> str | None:
    if value is None:
        return None
    if value in _VALID_IDS:
        return value
    if not _ID_RE.match(value):
        return None
    if len(_VALID_IDS) >= _MAX_VALID_IDS:  # bounded: a flood of new ids only clears it
        _VALID_IDS.clear()
    _VALID_IDS.add(value)
    return value


def integer(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > 10:
        return None
    number = int(value)
    return number if number <= MAX_INT else None


def parse_timestamp_us(value: str | None) -> int | None:
    """``Timestamp: 1795859365.581120`` in microseconds: 1-12 decimal digits,
    then optionally a dot and 1-9 more (string methods, not a regex: this runs
    for every event; the test checks it against the regex it replaced)."""
    if value is None:
        return None
    whole, dot, frac = value.strip().partition(".")
    if not (0 < len(whole) <= 12 and whole.isdecimal()):
        return None
    if dot and not (0 < len(frac) <= 9 and frac.isdecimal()):
        return None
    return int(whole) * 1_000_000 + int(frac[:6].ljust(6, "0"))


# ast_escape_c (main/utils.c), applied by Asterisk 22 to every channel snapshot's
# CallerIDName and ConnectedLineName: \a \b \f \n \r \t \v \\ \' \" \?
_C_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
              "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}
_C_ESCAPE_RE = re.compile(r"\\([abfnrtv\\'\"?])")
NO_VALUE = "<unknown>"  # what a snapshot says for an empty caller ID number or name


def unescape_c(value: str) -> str:
    """Undo ast_escape_c: the caller's name as the caller sent it."""
    if "\\" not in value:
        return value
    return _C_ESCAPE_RE.sub(lambda m: _C_ESCAPES[m.group(1)], value)


def caller_id(value: str | None, *, escaped: bool, missing: str = NO_VALUE,
              limit: int = 80) -> str | None:
    """A caller ID number or name from a snapshot: None when the caller sent none
    (Asterisk writes ``<unknown>``; QueueStatus' QueueEntry writes ``unknown``)."""
    if value is None or value in ("", missing):
        return None
    return text(unescape_c(value) if escaped else value, limit)


def _caller_join(m: Message) -> ev.Domain | None:
    uid, queue = ident(m.get("Uniqueid")), text(m.get("Queue"))
    if uid is None or not queue:
        return None
    return ev.CallerJoin(uid, ident(m.get("Linkedid")), queue,
                         caller_id(m.get("CallerIDNum"), escaped=False),
                         caller_id(m.get("CallerIDName"), escaped=True),
                         integer(m.get("Position")))


def _caller_leave(m: Message) -> ev.Domain | None:
    uid, queue = ident(m.get("Uniqueid")), text(m.get("Queue"))
    return ev.CallerLeave(uid, queue) if uid and queue else None


def _caller_abandon(m: Message) -> ev.Domain | None:
    uid, queue = ident(m.get("Uniqueid")), text(m.get("Queue"))
    return ev.CallerAbandon(uid, queue, integer(m.get("HoldTime"))) if uid and queue else None


def _agent_called(m: Message) -> ev.Domain | None:
    uid, queue, interface = ident(m.get("Uniqueid")), text(m.get("Queue")), ident(
        m.get("Interface"))
    if not uid or not queue or not interface:
        return None
    return ev.AgentCalled(uid, queue, interface)


def _agent_connect(m: Message) -> ev.Domain | None:
    uid, queue = ident(m.get("Uniqueid")), text(m.get("Queue"))
    if not uid or not queue:
        return None
    return ev.AgentConnect(uid, queue, text(m.get("Interface")), text(m.get("MemberName"), 80),
                           integer(m.get("HoldTime")), integer(m.get("RingTime")))


def _agent_complete(m: Message) -> ev.Domain | None:
    uid, queue = ident(m.get("Uniqueid")), text(m.get("Queue"))
    if not uid or not queue:
        return None
    return ev.AgentComplete(uid, queue, text(m.get("Interface")), text(m.get("MemberName"), 80),
                            integer(m.get("HoldTime")), integer(m.get("TalkTime")),
                            text(m.get("Reason"), 32))


def _agent_rna(m: Message) -> ev.Domain | None:
    uid, queue = ident(m.get("Uniqueid")), text(m.get("Queue"))
    if not uid or not queue:
        return None
    return ev.AgentRingNoAnswer(uid, queue, text(m.get("Interface")), integer(m.get("RingTime")))


def _hangup_request(m: Message) -> ev.Domain | None:
    uid = ident(m.get("Uniqueid"))
    return ev.HangupRequest(uid) if uid else None


def _hangup(m: Message) -> ev.Domain | None:
    uid = ident(m.get("Uniqueid"))
    return ev.Hangup(uid) if uid else None


def _soft_hangup(m: Message) -> ev.Domain | None:
    uid = ident(m.get("Uniqueid"))
    return ev.SoftHangup(uid, integer(m.get("Cause"))) if uid else None


def _blind_transfer(m: Message) -> ev.Domain | NotOurs | None:
    if m.get("Result") != "Success":
        return NOT_OURS  # a failed transfer changes nothing
    if m.get("TransfereeUniqueid") is None:
        return NOT_OURS  # nobody was bridged to the transferer: no queued caller moved
    uid = ident(m.get("TransfereeUniqueid"))
    exten, context = text(m.get("Extension"), 80), text(m.get("Context"), 80)
    if not uid or not exten or not context:
        return None
    return ev.Transfer(uid, f"{exten}@{context}")


def _shutdown(m: Message) -> ev.Domain | None:
    restart = (m.get("Restart") or "").strip().lower()
    if restart not in ("true", "false"):
        return None
    return ev.AsteriskShutdown(restart == "true")


def member(m: Message, *, snapshot: bool = False) -> ev.Domain | None:
    queue = text(m.get("Queue"))
    # QueueMember* events say Interface/MemberName; QueueStatus' QueueMember says Location/Name.
    interface = text(m.get("Interface") if m.get("Interface") is not None else m.get("Location"))
    if not queue or not interface:
        return None
    name = m.get("MemberName") if m.get("MemberName") is not None else m.get("Name")
    paused = m.get("Paused") == "1"
    reason = text(m.get("PausedReason"), 80) if paused else None
    return ev.MemberState(queue, interface, text(name, 80), integer(m.get("Status")), paused,
                          reason or None, m.get("InCall") == "1", snapshot)


def _member_added(m: Message) -> ev.Domain | None:
    d = member(m)
    return dataclasses.replace(d, change="added") if isinstance(d, ev.MemberState) else d


def _member_pause(m: Message) -> ev.Domain | None:
    d = member(m)
    return dataclasses.replace(d, change="pause") if isinstance(d, ev.MemberState) else d


def _member_removed(m: Message) -> ev.Domain | None:
    queue, interface = text(m.get("Queue")), text(m.get("Interface"))
    return ev.MemberRemoved(queue, interface) if queue and interface else None


class NotOurs:
    """A valid event the listener stores raw and derives nothing from."""


NOT_OURS = NotOurs()


_EMERGENCY = ev.EdgeAlert("emergency")
_SECURITY = ev.EdgeAlert("security")


def _security(m: Message) -> ev.Domain:
    return _SECURITY


def _user_event(m: Message) -> ev.Domain | NotOurs | None:
    name = m.get("UserEvent")
    if name == "SBEmergency":
        return _EMERGENCY  # a 911 call: the wall board is told at once
    if name != "SBQueueResult":
        return NOT_OURS  # SBStep and other dialplan events: stored, nothing derived
    uid, queue, status = ident(m.get("Uniqueid")), text(m.get("Queue")), m.get("Status")
    if not uid or not queue or not status:
        return None
    return ev.QueueResult(uid, queue, status.strip().upper()[:32], text(m.get("CallerIDNum"), 80))


Normaliser = Callable[[Message], "ev.Domain | NotOurs | None"]

DISPATCH: dict[str, Normaliser] = {
    "QueueCallerJoin": _caller_join,
    "QueueCallerLeave": _caller_leave,
    "QueueCallerAbandon": _caller_abandon,
    "AgentCalled": _agent_called,
    "AgentConnect": _agent_connect,
    "AgentComplete": _agent_complete,
    "AgentRingNoAnswer": _agent_rna,
    "HangupRequest": _hangup_request,
    "Hangup": _hangup,
    "SoftHangupRequest": _soft_hangup,
    "Shutdown": _shutdown,
    "BlindTransfer": _blind_transfer,
    "QueueMemberStatus": member,
    "QueueMemberPause": _member_pause,
    "QueueMemberAdded": _member_added,
    "QueueMemberRemoved": _member_removed,
    "UserEvent": _user_event,
    **dict.fromkeys(SECURITY_EVENTS, _security),
}
