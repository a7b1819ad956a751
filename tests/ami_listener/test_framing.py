"""The framer and header parser on real capture bytes and on hostile bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.ami_listener.captures import FIXTURES
from switchboard.ami_listener.framing import Framer, parse_frame, render_action

BURST = (FIXTURES / "ami" / "f_burst_50_calls.ami").read_bytes()


def frames_of(data: bytes, chunks: list[int], max_frame: int = 64 << 10) -> list[bytes]:
    framer = Framer(max_frame)
    out: list[bytes] = []
    pos = 0
    for size in chunks:
        out += framer.feed(data[pos:pos + size])
        pos += size
    out += framer.feed(data[pos:])
    return out


def test_banner_then_frames_with_real_chunking() -> None:
    framer = Framer()
    frames = framer.feed(BURST)
    assert framer.banner == b"Asterisk Call Manager/11.0.0"
    assert frames[0].startswith(b"Response: Success\r\n")
    assert sum(f.startswith(b"Event:") for f in frames) == 1546 + 0  # README: 1546 events
    assert framer.pending == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=4000), max_size=80))
def test_any_chunking_gives_the_same_frames(chunks: list[int]) -> None:
    data = BURST[:120_000]
    assert frames_of(data, chunks) == Framer().feed(data)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=30), st.integers(min_value=16, max_value=512))
def test_arbitrary_bytes_never_crash_the_framer_or_parser(parts: list[bytes],
                                                          limit: int) -> None:
    framer = Framer(limit)
    for part in parts:
        for frame in framer.feed(part):
            assert len(frame) <= limit
            msg = parse_frame(frame)
            assert msg.kind in {"event", "response", "unknown"}
    assert framer.pending <= max(limit, 256) + 4


def test_utf8_character_split_across_two_reads_survives() -> None:
    frame = "Event: QueueCallerJoin\r\nCallerIDName: José Müller\r\n\r\n".encode()
    cut = frame.index("é".encode()) + 1  # between the two bytes of é
    framer = Framer(expect_banner=False)
    assert framer.feed(frame[:cut]) == []
    [whole] = framer.feed(frame[cut:])
    assert parse_frame(whole).get("CallerIDName") == "José Müller"


def test_invalid_utf8_is_replaced_and_counted() -> None:
    msg = parse_frame(b"Event: Hangup\r\nCallerIDName: \xff\xfe bad\r\nUniqueid: 1.2")
    assert msg.get("CallerIDName") == "\ufffd\ufffd bad"
    assert msg.replaced_chars == 2 and msg.get("Uniqueid") == "1.2"


def test_last_header_with_empty_value_is_kept() -> None:
    frame = b"Event: QueueMemberStatus\r\nQueue: intake\r\nPausedReason: "
    msg = parse_frame(frame)
    assert msg.fields == {"Event": "QueueMemberStatus", "Queue": "intake", "PausedReason": ""}


def test_missing_header_is_none_not_empty_string() -> None:
    assert parse_frame(b"Event: Hangup").get("Uniqueid") is None


def test_repeated_header_becomes_a_list_and_junk_lines_are_counted() -> None:
    msg = parse_frame(b"Response: Success\r\nOutput: a\r\nOutput: b\r\nno colon here\r\n"
                      b"bad key!: x")
    assert msg.fields["Output"] == ["a", "b"]
    assert msg.malformed_lines == 2 and msg.kind == "response"


def test_oversized_frame_is_dropped_whole_and_the_stream_goes_on() -> None:
    framer = Framer(1024, expect_banner=False)
    huge = b"Event: VarSet\r\nValue: " + b"x" * 5000 + b"\r\n\r\n"
    good = b"Event: Hangup\r\nUniqueid: 1.1\r\n\r\n"
    out = []
    for i in range(0, len(huge), 700):  # the big frame arrives in pieces
        out += framer.feed(huge[i:i + 700])
    out += framer.feed(good)
    assert out == [good[:-4]]
    assert framer.stats.oversize == 1


def test_torn_frame_waits_for_its_end() -> None:
    framer = Framer(expect_banner=False)
    assert framer.feed(b"Event: Hangup\r\nUniqueid: 1.1\r\n") == []
    assert framer.feed(b"\r\n") == [b"Event: Hangup\r\nUniqueid: 1.1"]


def test_stray_blank_lines_are_not_frames() -> None:
    framer = Framer(expect_banner=False)
    assert framer.feed(b"\r\n\r\n\r\nEvent: Ping\r\n\r\n") == [b"Event: Ping"]


def test_actions_refuse_control_characters() -> None:
    assert render_action("Ping", {"ActionID": "a-1"}) == b"Action: Ping\r\nActionID: a-1\r\n\r\n"
    with pytest.raises(ValueError, match="control character"):
        render_action("Login", {"Username": "x\r\nAction: Originate"})
    with pytest.raises(ValueError, match="header name"):
        render_action("Login", {"Bad: name": "x"})
