"""The frame parser's C fast path (switchboard/ami_listener/_fastframe.pyx, issue 15) and
the pure-Python parser it stands in for: the same message for every frame, the
same rows end to end, and the pure path still selectable."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from switchboard.ami_listener import fields, framing
from switchboard.ami_listener.captures import (
    FIXTURES,
    Capture,
    Refresher,
    concat,
    frames_segment,
    segment_from,
)
from switchboard.ami_listener.fields import _ID_RE, ident, parse_timestamp_us
from switchboard.ami_listener.framing import (
    MAX_HEADERS,
    Framer,
    Message,
    parse_frame,
    parse_frame_py,
)
from switchboard.pgcluster import LocalCluster
from tests.conftest import fresh_database
from tests.helpers import calls, fetch, ingest, intervals

ROOT = Path(__file__).resolve().parents[2]


def seen(m: Message) -> tuple[Any, ...]:
    """Everything a parsed message tells its readers."""
    return (m.fields, list(m.fields), m.malformed_lines, m.replaced_chars,
            m.truncated_headers, m.kind, m.name,
            [m.get(k) for k in (*m.fields, "Event", "Uniqueid", "Nope")])


def test_the_c_parser_is_built_and_used() -> None:
    """`pip install` built it (a C compiler is there on every supported
    machine): the listener is not quietly on the slow path."""
    if os.environ.get("SB_PURE_PYTHON"):
        pytest.skip("SB_PURE_PYTHON is set: the pure-Python parser is asked for")
    assert framing.parser_name() == "c"


def test_sb_pure_python_selects_the_pure_parser() -> None:
    code = "import switchboard.ami_listener.framing as f; print(f.parser_name())"
    for value, want in (("1", "python"), ("0", "c"), ("", "c")):
        env = {**os.environ, "SB_PURE_PYTHON": value}
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.strip()
        assert out == want, (value, out)


def test_every_recorded_frame_parses_the_same_both_ways() -> None:
    frames = [f for path in sorted((FIXTURES / "ami").glob("*.ami"))
              + sorted((FIXTURES / "faults").glob("*.ami"))
              for f in Framer().feed(path.read_bytes())]
    assert len(frames) > 5000
    fast = 0
    for frame in frames:
        assert seen(parse_frame(frame)) == seen(parse_frame_py(frame)), frame[:200]
        fast += framing._fast_fields is not None and framing._fast_fields(
            frame, MAX_HEADERS) is not None
    # and the fast path answers for what Asterisk sends (all but a few)
    assert framing._fast_fields is None or fast >= 0.99 * len(frames)


NAMES = st.sampled_from(["Event", "Uniqueid", "Queue", "CallerIDName", "X", "a-b_9",
                         "k" * 64, "k" * 65, "", "Bad Key", "Ké", "Key\x00", "Ti:me"])
VALUES = st.text(st.sampled_from("ab :\r\n\t\x00é王\\\"\ufffd"), max_size=12)
SEPS = st.sampled_from([": ", ":", ":  ", " : ", "", ": \r"])
ENDS = st.sampled_from(["\r\n", "\r\n", "\r\n", "\n", "\r", "\r\r\n", ""])
LINE = st.tuples(NAMES, SEPS, VALUES, ENDS).map(lambda t: "".join(t))


@settings(max_examples=1500, deadline=None)
@given(st.lists(LINE, min_size=1, max_size=8), st.sampled_from([b"", b"\xff", b"\xe2\x82",
                                                               b"\xc3\xa9", b"\x00"]))
@example(["Event: A\r\n", "Event: B"], b"")        # a repeated header
@example(["Key: v\r\n", "Key2:v2\r\n", "K: "], b"")  # no space, an empty last value
@example(["Key: a\rb"], b"")                         # a CR inside a value
def test_generated_frames_parse_the_same_both_ways(lines: list[str], tail: bytes) -> None:
    frame = "".join(lines).encode() + tail
    assert seen(parse_frame(frame)) == seen(parse_frame_py(frame))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_parse_the_same_both_ways(frame: bytes) -> None:
    assert seen(parse_frame(frame)) == seen(parse_frame_py(frame))


def test_too_many_headers_parse_the_same_both_ways() -> None:
    for n in (MAX_HEADERS, MAX_HEADERS + 1):
        frame = b"\r\n".join(b"H%d: v" % i for i in range(n))
        assert seen(parse_frame(frame)) == seen(parse_frame_py(frame))
    assert parse_frame(frame).truncated_headers


# the Timestamp form parse_timestamp_us accepted with a regex before issue 15
_TS_RE = re.compile(r"^(\d{1,12})(?:\.(\d{1,9}))?$")


def reference_timestamp_us(value: str | None) -> int | None:
    """What parse_timestamp_us did with its regex, before issue 15."""
    if value is None:
        return None
    m = _TS_RE.match(value.strip())
    if not m:
        return None
    return int(m.group(1)) * 1_000_000 + int((m.group(2) or "").ljust(6, "0")[:6])


@settings(max_examples=2000, deadline=None)
@given(st.one_of(st.none(), st.text(st.sampled_from("0123456789. \t\n+-e٣²"), max_size=24)))
@example("1795859365.581120")
@example("1795859365")
@example("1795859365.")
@example(" 1.5\n")
@example("1234567890123.1")
@example("1.1234567891")
def test_timestamps_parse_as_the_regex_did(value: str | None) -> None:
    assert parse_timestamp_us(value) == reference_timestamp_us(value)


@settings(max_examples=1000, deadline=None)
@given(st.text(st.sampled_from("1795.-_:@/+aZ; \x00é'"), max_size=20))
@example("1795859427.3")
@example("'; DROP TABLE ami_event; --")
def test_identifiers_are_checked_as_the_regex_says_cached_or_not(value: str) -> None:
    want = value if _ID_RE.match(value) else None
    assert ident(value) == want
    assert ident(value) == want  # the second time from the cache of valid ones
    assert (value in fields._VALID_IDS) == (want is not None)


def test_the_cache_of_identifiers_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fields, "_MAX_VALID_IDS", 100)
    monkeypatch.setattr(fields, "_VALID_IDS", set())
    for i in range(1000):
        assert ident(f"pbx-a-{i}.1") == f"pbx-a-{i}.1"
        assert len(fields._VALID_IDS) <= 100
    assert ident("bad id") is None


# --- end to end: the same rows from the real listener, either parser ---------------
HOSTILE = [
    b"Event: Hangup\r\nUniqueid: 7.1\r\nCallerIDName: \xff\xfe\x00evil\r\n\r\n",
    b"Event: Hangup\r\nUniqueid: 7.2\r\nChannel: a\r\nChannel: b\r\n\r\n",  # repeated
    b"Event: Hangup\r\nUniqueid: 7.3\r\nbroken line\r\nCause: 16\r\n\r\n",
    b"Event: Hangup\r\nUniqueid: 7.4\nCause:16\r\nText: a\rb\r\n\r\n",
    b"Event: QueueCallerJoin\r\nUniqueid: 7.5\r\nQueue: intake\r\nCallerIDName: \\t\"x\"\r\n"
    b"Position: 1\r\n\r\n",
]


def rows_of(db_url: str) -> dict[str, Any]:
    raw = asyncio.run(fetch(db_url, """
        SELECT spool_seq, node, event, uniqueid, linkedid, queue, interface, fields::text,
               CASE WHEN fields ? 'Timestamp' THEN event_time END AS event_time,
               CASE WHEN fields ? 'Timestamp' THEN dedupe_key END AS dedupe_key
          FROM ami_event ORDER BY spool_seq"""))
    return {"events": [tuple(r) for r in raw], "calls": asyncio.run(calls(db_url)),
            "intervals": asyncio.run(intervals(db_url))}


def test_the_listener_writes_the_same_rows_with_either_parser(
        pg_cluster: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recorded bursts (fresh timestamps, as the benchmark sends them) and
    hostile frames through the real listener into PostgreSQL, once with the C
    parser and once with the pure-Python one: every event row, call and agent
    interval is the same."""
    burst = list(Refresher().frames(Capture.load("f_burst_50_calls_ts").event_frames(),
                               shift_to=time.time() - 600))
    def segments() -> list[Any]:
        return [concat([segment_from(Capture.load("d_queue_timeout_ts")),
                        frames_segment([*HOSTILE, *burst], per_chunk=7)])]
    got = {}
    for parser in ("c", "python"):
        if parser == "python":
            monkeypatch.setattr(framing, "_fast_fields", None)
        assert framing.parser_name() == parser or framing._fast_parser() is None
        url = fresh_database(pg_cluster)
        asyncio.run(ingest(url, tmp_path / parser, segments()))
        got[parser] = rows_of(url)
    assert len(got["c"]["events"]) > 500 and len(got["c"]["calls"]) >= 50
    assert got["c"] == got["python"]
