"""Frames to typed records: each kept event's raw row (its dedupe key, its
fields as JSON, identifiers and time) and, through the dispatch table of
switchboard/ami_listener/fields.py, its typed record.

Every field is treated as hostile: lengths are bounded, integers range-checked,
identifiers charset-checked, NUL bytes replaced (PostgreSQL refuses them).
Unknown or unneeded events are dropped here and counted by name.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from switchboard import log
from switchboard.ami_listener import events as ev
from switchboard.ami_listener.fields import (
    DISPATCH,
    KEPT_EVENTS,
    SECURITY_EVENTS,
    NotOurs,
    caller_id,
    ident,
    integer,
    member,
    parse_timestamp_us,
    text,
)
from switchboard.ami_listener.framing import Message, parse_frame
from switchboard.ami_listener.spool import Record

_log = log.get("ami_listener.normalise")
SYNTHETIC_PREFIX = b"\x00sb:"
RESYNC_ACTION_PREFIX = "sb-resync-"
_NODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

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
            domain = member(m, snapshot=True)
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
            if isinstance(result, NotOurs):
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
