"""Asterisk's queue_log: parse it, and fold it into per-call outcomes.

Used to backfill calls that ended while the listener was disconnected (when
the listener runs on the Asterisk host and ``SB_QUEUE_LOG`` names the file).
Format: ``epoch|uniqueid|queue|agent|event|data1|data2|...``, no header.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

MAX_LINE = 4096


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
    outcome: str | None = None
    member_name: str | None = None
    hold_s: int | None = None
    ring_s: int | None = None
    talk_s: int | None = None
    rna_count: int = 0
    ended_at: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


def parse_line(line: str) -> QueueLogLine | None:
    if len(line) > MAX_LINE:
        return None
    parts = line.rstrip("\r\n").split("|")
    if len(parts) < 5 or not parts[0].isdigit():
        return None
    return QueueLogLine(int(parts[0]), parts[1], parts[2], parts[3], parts[4], tuple(parts[5:]))


def read(path: Path, since: int, until: int) -> list[QueueLogLine]:
    """Lines with ``since <= epoch <= until`` (bad lines skipped)."""
    out = []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            line = parse_line(raw)
            if line is not None and since <= line.epoch <= until:
                out.append(line)
    return out


def _int(values: tuple[str, ...], idx: int) -> int | None:
    if idx < len(values) and values[idx].isdigit():
        return int(values[idx])
    return None


def fold(lines: Iterable[QueueLogLine]) -> dict[tuple[str, str], QueueLogCall]:
    """Per (uniqueid, queue): what app_queue wrote about the call."""
    calls: dict[tuple[str, str], QueueLogCall] = {}
    for ln in lines:
        if ln.uniqueid in ("NONE", "") or ln.queue in ("NONE", ""):
            continue
        call = calls.setdefault((ln.uniqueid, ln.queue), QueueLogCall(ln.uniqueid, ln.queue))
        ev, d = ln.event, ln.data
        if ev == "ENTERQUEUE":
            call.entered_at = ln.epoch
        elif ev == "CONNECT":  # holdtime|bridged uniqueid|ringtime (s)
            call.outcome, call.member_name = "answered", ln.agent
            call.hold_s, call.ring_s = _int(d, 0), _int(d, 2)
        elif ev in ("COMPLETECALLER", "COMPLETEAGENT"):  # holdtime|calltime|origposition
            call.outcome = call.outcome or "answered"
            call.member_name = call.member_name or ln.agent
            call.talk_s, call.ended_at = _int(d, 1), ln.epoch
        elif ev == "TRANSFER":
            call.outcome, call.ended_at = "transferred", ln.epoch
        elif ev == "ABANDON":  # position|origposition|waittime
            call.outcome, call.hold_s, call.ended_at = "abandoned", _int(d, 2), ln.epoch
        elif ev == "EXITWITHTIMEOUT":  # position|origposition|waittime
            call.outcome, call.hold_s, call.ended_at = "timeout", _int(d, 2), ln.epoch
        elif ev == "EXITEMPTY":  # position|origposition|waittime
            call.outcome, call.hold_s, call.ended_at = "left-empty", _int(d, 2), ln.epoch
        elif ev == "RINGNOANSWER":
            call.rna_count += 1
    return calls
