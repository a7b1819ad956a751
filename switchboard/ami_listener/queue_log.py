"""Asterisk's queue_log: parse it, read it by position, fold it into calls.

The reconciler (``switchboard/ami_listener/reconcile.py``) treats it as the safety net: AMI
gives the exact times, queue_log what app_queue wrote about every call, also
while nobody listened.  Format: ``epoch|uniqueid|queue|agent|event|data...``, no
header, appended in time order (within a second or so: app_queue writes from
several threads).  The data fields, per app_queue.c of Asterisk 22:

    ENTERQUEUE        url|callerid|position
    CONNECT           holdtime|bridged channel uniqueid|ringtime
    COMPLETECALLER    holdtime|calltime|origposition   (and COMPLETEAGENT)
    ABANDON           position|origposition|waittime
    EXITWITHTIMEOUT   position|origposition|waittime   (and EXITEMPTY)
    RINGNOANSWER      ringtime (ms)
    BLINDTRANSFER     extension|context|holdtime|calltime|origposition
    ATTENDEDTRANSFER  BRIDGE|bridge or APP|app or LINK|chan|chan, then
                      holdtime|calltime|origposition
    TRANSFER          extension|context|holdtime|calltime|origposition (older)
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

MAX_LINE = 4096
SLACK_S = 5  # lines are in time order only to within a few seconds


@dataclass(frozen=True, slots=True)
class QueueLogLine:
    epoch: int
    uniqueid: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...]


@dataclass
class QueueLogCall:
    uniqueid: str
    queue: str
    entered_at: int | None = None
    caller_num: str | None = None
    outcome: str | None = None
    member_name: str | None = None
    hold_s: int | None = None
    ring_s: int | None = None
    talk_s: int | None = None
    rna_count: int = 0
    answered_at: int | None = None
    ended_at: int | None = None
    transfer_target: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """queue_log has the whole call: its entry and its end."""
        return self.entered_at is not None and self.ended_at is not None


def parse_line(line: str) -> QueueLogLine | None:
    if len(line) > MAX_LINE:
        return None
    parts = line.rstrip("\r\n").split("|")
    if len(parts) < 5 or not parts[0].isdigit() or len(parts[0]) > 12:
        return None
    return QueueLogLine(int(parts[0]), parts[1], parts[2], parts[3], parts[4], tuple(parts[5:]))


def _lines(fh: Iterable[bytes]) -> Iterator[QueueLogLine]:
    for raw in fh:
        line = parse_line(raw.decode("utf-8", "replace"))
        if line is not None:
            yield line


def _epoch_at(fh: BinaryIO, offset: int) -> tuple[int, int] | None:
    """The first whole line at or after ``offset``: (its epoch, its offset)."""
    fh.seek(offset)
    if offset:
        fh.readline()  # the rest of a line cut in the middle
    while True:
        start = fh.tell()
        raw = fh.readline()
        if not raw:
            return None
        line = parse_line(raw.decode("utf-8", "replace"))
        if line is not None:
            return line.epoch, start


def offset_for(path: Path, since: int) -> int:
    """A byte offset before every line with epoch >= ``since`` (bisection on the
    file, so a year-long queue_log is not read from the start)."""
    with path.open("rb") as fh:
        lo, hi = 0, path.stat().st_size
        while hi - lo > 4096:
            mid = (lo + hi) // 2
            found = _epoch_at(fh, mid)
            if found is None or found[0] >= since - SLACK_S:
                hi = mid
            else:
                lo = mid
        return lo


def read(path: Path, since: int, until: int) -> list[QueueLogLine]:
    """Lines with ``since <= epoch <= until`` (bad lines skipped), read from the
    position of ``since`` on and no further than ``until``."""
    out = []
    with path.open("rb") as fh:
        fh.seek(offset_for(path, since))
        for line in _lines(fh):
            if line.epoch > until + SLACK_S:
                break
            if since <= line.epoch <= until:
                out.append(line)
    return out


@dataclass
class Position:
    inode: int
    offset: int


def read_new(path: Path, pos: Position | None
             ) -> tuple[list[tuple[int, QueueLogLine]], Position]:
    """What was appended since ``pos`` (whole lines only), each with its byte
    offset in the current file (-1: from the rotated one).  A rotated file (the
    inode changed, or it shrank) is read from its start; the rest of the old one
    is read first if it is still beside it as ``NAME.1`` (logrotate)."""
    lines: list[tuple[int, QueueLogLine]] = []
    st = path.stat()
    if pos is not None and (pos.inode != st.st_ino or st.st_size < pos.offset):
        old = path.with_name(path.name + ".1")
        if pos.inode != st.st_ino and old.exists() and old.stat().st_ino == pos.inode:
            lines += [(-1, line) for _, line in _tail(old, pos.offset)[0]]
        pos = None
    got, offset = _tail(path, pos.offset if pos is not None else 0)
    return lines + got, Position(st.st_ino, offset)


def _tail(path: Path, offset: int) -> tuple[list[tuple[int, QueueLogLine]], int]:
    with path.open("rb") as fh:
        fh.seek(offset)
        data = fh.read()
    end = data.rfind(b"\n") + 1  # a line still being written waits for next time
    out = []
    at = offset
    for raw in data[:end].splitlines(keepends=True):
        line = parse_line(raw.decode("utf-8", "replace"))
        if line is not None:
            out.append((at, line))
        at += len(raw)
    return out, offset + end


def _int(values: tuple[str, ...], idx: int) -> int | None:
    if -len(values) <= idx < len(values) and values[idx].isdigit() and len(values[idx]) < 10:
        return int(values[idx])
    return None


def fold(lines: Iterable[QueueLogLine],
         into: dict[tuple[str, str], QueueLogCall] | None = None
         ) -> dict[tuple[str, str], QueueLogCall]:
    """Per (uniqueid, queue): what app_queue wrote about the call."""
    calls: dict[tuple[str, str], QueueLogCall] = {} if into is None else into
    for ln in lines:
        if ln.uniqueid in ("NONE", "") or ln.queue in ("NONE", ""):
            continue
        ev, d = ln.event, ln.data
        if ev not in _EVENTS:
            continue  # member events (ADDMEMBER, PAUSE...) carry a desk phone's uniqueid
        call = calls.setdefault((ln.uniqueid, ln.queue), QueueLogCall(ln.uniqueid, ln.queue))
        if ev == "ENTERQUEUE":
            call.entered_at = ln.epoch
            if len(d) > 1 and d[1]:
                call.caller_num = d[1][:80]
        elif ev == "CONNECT":
            call.outcome, call.member_name = "answered", ln.agent
            call.hold_s, call.ring_s, call.answered_at = _int(d, 0), _int(d, 2), ln.epoch
        elif ev in ("COMPLETECALLER", "COMPLETEAGENT"):
            call.outcome = call.outcome or "answered"
            call.member_name = call.member_name or ln.agent
            call.talk_s, call.ended_at = _int(d, 1), ln.epoch
            call.extra["completed_by"] = "caller" if ev == "COMPLETECALLER" else "agent"
        elif ev in ("BLINDTRANSFER", "TRANSFER"):
            call.outcome, call.ended_at = "transferred", ln.epoch
            call.member_name = call.member_name or ln.agent
            call.talk_s = _int(d, 3)
            if len(d) >= 2:
                call.transfer_target = f"{d[0]}@{d[1]}"[:160]
        elif ev == "ATTENDEDTRANSFER":
            call.outcome, call.ended_at = "transferred", ln.epoch
            call.member_name = call.member_name or ln.agent
            call.talk_s = _int(d, -2)
            if len(d) > 3:
                call.transfer_target = "|".join(d[:-3])[:160]
        elif ev == "ABANDON":
            call.outcome, call.hold_s, call.ended_at = "abandoned", _int(d, 2), ln.epoch
        elif ev == "EXITWITHTIMEOUT":
            call.outcome, call.hold_s, call.ended_at = "timeout", _int(d, 2), ln.epoch
        elif ev == "EXITEMPTY":
            call.outcome, call.hold_s, call.ended_at = "left-empty", _int(d, 2), ln.epoch
        elif ev == "RINGNOANSWER":
            call.rna_count += 1
    return calls


_EVENTS = frozenset({"ENTERQUEUE", "CONNECT", "COMPLETECALLER", "COMPLETEAGENT",
                     "BLINDTRANSFER", "TRANSFER", "ATTENDEDTRANSFER", "ABANDON",
                     "EXITWITHTIMEOUT", "EXITEMPTY", "RINGNOANSWER"})
