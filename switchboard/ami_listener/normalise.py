"""Frames to typed records: a dispatch table from event name to normaliser.

Every field is treated as hostile: lengths are bounded, integers range-checked,
identifiers charset-checked, NUL bytes replaced (PostgreSQL refuses them).
Unknown or unneeded events are dropped here and counted by name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson

from switchboard import log
from switchboard.ami_listener import events as ev
from switchboard.ami_listener.framing import Message, parse_frame
from switchboard.ami_listener.spool import Record

_log = log.get("ami_listener.normalise")
SYNTHETIC_PREFIX = b"\x00sb:"
RESYNC_ACTION_PREFIX = "sb-resync-"
_ID_RE = re.compile(r"^[A-Za-z0-9_.:@/+\-]{1,150}$")
_NODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
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


_KEPT_B = frozenset(n.encode() for n in KEPT_EVENTS)
_RESYNC_ITEMS_B = frozenset({b"QueueMember", b"QueueEntry", b"QueueStatusComplete",
                             b"QueueParams"})
# What the reader lets into the spool: kept events and the QueueStatus list items.
SPOOLED_EVENTS_B = _KEPT_B | _RESYNC_ITEMS_B


def session_filter_regex() -> str:
    """Legacy AMI ``Filter`` whitelist (POSIX ERE) matching exactly the kept events."""
    return "Event: (" + "|".join(sorted(KEPT_EVENTS)) + ")[[:space:]]"


@dataclass
class NormaliseStats:
    dropped: Counter[str] = field(default_factory=Counter)
    invalid: Counter[str] = field(default_factory=Counter)
    security: Counter[str] = field(default_factory=Counter)  # kept security events
    kept: int = 0


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


def _blind_transfer(m: Message) -> ev.Domain | _NotOurs | None:
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


def _member(m: Message, *, snapshot: bool = False) -> ev.Domain | None:
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
    d = _member(m)
    return dataclasses.replace(d, change="added") if isinstance(d, ev.MemberState) else d


def _member_pause(m: Message) -> ev.Domain | None:
    d = _member(m)
    return dataclasses.replace(d, change="pause") if isinstance(d, ev.MemberState) else d


def _member_removed(m: Message) -> ev.Domain | None:
    queue, interface = text(m.get("Queue")), text(m.get("Interface"))
    return ev.MemberRemoved(queue, interface) if queue and interface else None


class _NotOurs:
    """A valid event the listener stores raw and derives nothing from."""


NOT_OURS = _NotOurs()


_EMERGENCY = ev.EdgeAlert("emergency")
_SECURITY = ev.EdgeAlert("security")


def _security(m: Message) -> ev.Domain:
    return _SECURITY


def _user_event(m: Message) -> ev.Domain | _NotOurs | None:
    name = m.get("UserEvent")
    if name == "SBEmergency":
        return _EMERGENCY  # a 911 call: the wall board is told at once
    if name != "SBQueueResult":
        return NOT_OURS  # SBStep and other dialplan events: stored, nothing derived
    uid, queue, status = ident(m.get("Uniqueid")), text(m.get("Queue")), m.get("Status")
    if not uid or not queue or not status:
        return None
    return ev.QueueResult(uid, queue, status.strip().upper()[:32], text(m.get("CallerIDNum"), 80))


Normaliser = Callable[[Message], "ev.Domain | _NotOurs | None"]

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
    "QueueMemberStatus": _member,
    "QueueMemberPause": _member_pause,
    "QueueMemberAdded": _member_added,
    "QueueMemberRemoved": _member_removed,
    "UserEvent": _user_event,
    **dict.fromkeys(SECURITY_EVENTS, _security),
}


def synthetic_frame(kind: str, **values: str) -> bytes:
    body = "\r\n".join(f"{k}: {v}" for k, v in values.items())
    return SYNTHETIC_PREFIX + f"{kind}\r\n{body}".encode()


class FrameNormaliser:
    """Turns spool records of one node into ``Item``s."""

    def __init__(self, node: str, spool_id: str, *, max_skew_s: float = 86400.0) -> None:
        self.node = node
        self.spool_id = spool_id.encode()
        self.max_skew_us = int(max_skew_s * 1_000_000)
        self.stats = NormaliseStats()
        self._node_b = node.encode()
        self._system_name = ""  # the last valid SystemName

    def _synthetic(self, rec: Record) -> ev.Item | None:
        kind, _, rest = rec.frame[len(SYNTHETIC_PREFIX):].partition(b"\r\n")
        values = parse_frame(rest).fields
        domain: ev.Domain
        if kind == b"connected":
            domain = ev.Connected(int(str(values.get("Session", "0"))))
        elif kind == b"disconnected":
            last = str(values.get("LastFrame", ""))
            domain = ev.Disconnected(str(values.get("Reason", "")),
                                     int(last) if last.isdigit() else None)
        elif kind == b"nodelost":
            last = str(values.get("LastFrame", ""))
            domain = ev.NodeLost(str(values.get("Reason", ""))[:200],
                                 int(last) if last.isdigit() else None)
        elif kind == b"alive":
            domain = ev.Alive()
        elif kind == b"resync-failed":
            domain = ev.ResyncComplete(False)
        else:
            self.stats.invalid["synthetic"] += 1
            return None
        key = hashlib.sha256(b"sb\0" + self._node_b + b"\0" + self.spool_id + b"\0"
                             + str(rec.seq).encode()).digest()[:16]
        return ev.Item(rec.seq, rec.received_at_us, key, None, domain)

    def _resync(self, rec: Record, m: Message) -> ev.Item | None:
        key = hashlib.sha256(b"rs\0" + self._node_b + b"\0" + self.spool_id + b"\0"
                             + str(rec.seq).encode()).digest()[:16]
        domain: ev.Domain | None = None
        if m.name == "QueueMember":
            domain = _member(m, snapshot=True)
        elif m.name == "QueueEntry":
            uid, queue = ident(m.get("Uniqueid")), text(m.get("Queue"))
            # QueueEntry writes the caller ID as it is (no escaping), "unknown" if none
            domain = ev.QueueEntrySnapshot(
                uid, queue, integer(m.get("Position")),
                caller_id(m.get("CallerIDNum"), escaped=False, missing="unknown"),
                caller_id(m.get("CallerIDName"), escaped=False, missing="unknown"),
                integer(m.get("Wait"))) if uid and queue else None
        elif m.name == "QueueStatusComplete":
            domain = ev.ResyncComplete(True)
        if domain is None:
            return None
        return ev.Item(rec.seq, rec.received_at_us, key, None, domain)

    def item(self, rec: Record) -> ev.Item | None:
        frame = rec.frame
        if frame.startswith(SYNTHETIC_PREFIX):
            return self._synthetic(rec)
        if frame.startswith(b"Event: "):
            # cheap early drop of unneeded events, before any parsing
            end = frame.find(b"\r\n")
            name_b = frame[7:end] if end > 0 else frame[7:]
            if name_b not in _KEPT_B and name_b not in _RESYNC_ITEMS_B:
                name = name_b[:64].decode("utf-8", "replace")
                self.stats.dropped[name] += 1
                return None
        m = parse_frame(frame)
        if m.replaced_chars:
            self.stats.invalid["non_utf8"] += 1
        if m.malformed_lines:
            self.stats.invalid["malformed_line"] += 1
        if m.kind != "event":
            self.stats.dropped["not_an_event" if m.kind == "unknown" else "response"] += 1
            return None
        action_id = m.get("ActionID")
        if action_id is not None and action_id.startswith(RESYNC_ACTION_PREFIX):
            return self._resync(rec, m)
        name = m.name
        if name not in KEPT_EVENTS:
            self.stats.dropped[name[:64]] += 1
            return None
        node = self.node
        system_name = m.get("SystemName")
        if system_name is not None:
            if system_name == self._system_name or _NODE_RE.match(system_name):
                node = self._system_name = system_name  # the same on every event
            else:
                self.stats.invalid["systemname"] += 1
        ts = parse_timestamp_us(m.get("Timestamp"))
        if ts is not None and abs(ts - rec.received_at_us) > self.max_skew_us:
            self.stats.invalid["timestamp_skew"] += 1
            ts = None
        node_b = node.encode()
        if ts is not None:
            key = hashlib.sha256(node_b + b"\0" + rec.frame).digest()[:16]
            event_time = ts
        else:
            key = hashlib.sha256(node_b + b"\0" + self.spool_id + b"\0"
                                 + str(rec.seq).encode()).digest()[:16]
            event_time = rec.received_at_us
        fields_json = orjson.dumps(m.fields).decode()
        if "\\u0000" in fields_json:
            fields_json = fields_json.replace("\\u0000", "\\ufffd")
            self.stats.invalid["nul"] += 1
        interface = m.get("Interface")
        raw = ev.RawRow(  # positional (the hot path): event_time_us, dedupe_key, node,
            # received_at_us, event, uniqueid, linkedid, queue, interface, spool_seq, fields_json
            event_time, key, node, rec.received_at_us, name[:64], ident(m.get("Uniqueid")),
            ident(m.get("Linkedid")), _clean(text(m.get("Queue"))), _clean(text(interface)),
            rec.seq, fields_json)
        if name in SECURITY_EVENTS:
            self.stats.security[name] += 1
        normaliser = DISPATCH.get(name)
        domain = None
        if normaliser is not None:
            result = normaliser(m)
            if isinstance(result, _NotOurs):
                pass
            elif result is None:
                self.stats.invalid[f"{name}:fields"] += 1
            else:
                domain = _clean_domain(result) if b"\x00" in rec.frame else result
        self.stats.kept += 1
        return ev.Item(rec.seq, event_time, key, raw, domain)

    def items(self, records: Iterable[Record]) -> list[ev.Item]:
        out = []
        for rec in records:
            try:
                item = self.item(rec)
            except Exception as exc:  # a bug here must cost one frame, not the stream
                self.stats.invalid["normalise_error"] += 1
                _log.error("frame_not_normalised", seq=rec.seq, error=repr(exc)[:300],
                           excerpt=rec.frame[:500].decode("utf-8", "replace"))
                continue
            if item is not None:
                out.append(item)
        return out


def _clean(value: str | None) -> str | None:
    if value is None or "\x00" not in value:
        return value
    return value.replace("\x00", "\ufffd")


def _clean_domain(domain: ev.Domain) -> ev.Domain:
    # Only free-text fields can carry NUL; identifiers were charset-checked.
    values = {k: _clean(v) if isinstance(v, str) else v
              for k, v in ((s, getattr(domain, s)) for s in domain.__slots__)}
    return type(domain)(**values)  # type: ignore[arg-type]
