"""Hostile and broken AMI input, end to end over a real socket into PostgreSQL:
each is logged and counted, the stream goes on, nothing else is lost."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg

from switchboard.ami_listener.captures import Capture, Segment, frames_segment
from tests.helpers import calls, fetch, ingest

FRAMES = Capture.load("d_queue_timeout").event_frames()
JOIN = next(f for f in FRAMES if f.startswith(b"Event: QueueCallerJoin"))


def metric(listener: object, name: str, **labels: str) -> float:
    value = listener.metrics.registry.get_sample_value(name, labels)  # type: ignore[attr-defined]
    return value or 0.0


def test_hostile_stream_is_counted_and_the_good_events_land(db_url: str,
                                                            tmp_path: Path) -> None:
    hostile = [
        b"Event: QueueCallerJoin\r\nQueue: intake\r\nPosition: 1\r\n\r\n",  # no Uniqueid
        b"Event: MadeUpEvent\r\nFoo: bar\r\n\r\n",  # unknown event
        b"Event: Hangup\r\nUniqueid: 1.1\r\nCallerIDName: \xff\xfe\x00evil\r\n\r\n",  # bad bytes
        b"Event: Hangup\r\nUniqueid: '; DROP TABLE ami_event; --\r\nTimestamp: soon\r\n"
        b"SystemName: ../../etc\r\n\r\n",
        b"Event: QueueCallerJoin\r\nUniqueid: 9.9\r\nQueue: " + b"q" * 5000
        + b"\r\nPosition: 99999999999999\r\nCallerIDNum: \x1b[31m5550000\r\n\r\n",
        b"Event: VarSet\r\nValue: " + b"x" * 200_000 + b"\r\n\r\n",  # over the frame limit
        b"no colon at all\r\n\r\n",
        b"\x00sb:connected\r\nSession: 99\r\n\r\n",  # forged synthetic frame
        b"Event: \r\n\r\n",
    ]
    asyncio.run(ingest(db_url, tmp_path, [frames_segment(hostile + FRAMES, per_chunk=3)],
                       frame_max_bytes=64 << 10))
    # the real call is intact
    [*others, timeout_call] = asyncio.run(calls(db_url))
    assert timeout_call["outcome"] == "timeout" and timeout_call["hold_s"] == 12
    # the hostile QueueCallerJoin with a valid uniqueid: bounded, not trusted
    [odd] = others
    assert len(odd["queue"]) == 256 and odd["position"] is None
    assert odd["caller_num"] == "\x1b[31m5550000"  # stored as data, bounded to 80 chars
    rows = asyncio.run(fetch(db_url, "SELECT event, uniqueid, node, fields FROM ami_event"
                             " WHERE event = 'Hangup' ORDER BY spool_seq"))
    first = json.loads(rows[0]["fields"])
    assert first["CallerIDName"] == "\ufffd\ufffd\ufffdevil"  # NUL and bad UTF-8 replaced
    assert rows[1]["uniqueid"] is None and rows[1]["node"] == "lab"  # rejected id/name
    events = {r["event"] for r in asyncio.run(fetch(db_url, "SELECT event FROM ami_event"))}
    assert "MadeUpEvent" not in events and "VarSet" not in events


def test_metrics_count_every_kind_of_bad_input(db_url: str, tmp_path: Path) -> None:
    frames = [
        b"Event: MadeUpEvent\r\n\r\n",
        b"Event: QueueCallerLeave\r\nQueue: intake\r\n\r\n",
        b"Event: Hangup\r\nUniqueid: 1.1\r\nName: \xff\r\n\r\n",
        b"Event: Hangup\r\nUniqueid: 1.2\r\nTimestamp: 1.0\r\n\r\n",  # 1970: skewed
        b"Event: VarSet\r\nValue: " + b"x" * 5000 + b"\r\n\r\n",
    ]
    listener, _ = asyncio.run(ingest(db_url, tmp_path, [frames_segment(frames)],
                                     frame_max_bytes=4096, max_skew_s=86400.0))
    assert metric(listener, "sb_ami_frames_dropped_total", node="lab",
                  reason="MadeUpEvent") == 1
    assert metric(listener, "sb_ami_fields_invalid_total", node="lab",
                  kind="QueueCallerLeave:fields") == 1
    assert metric(listener, "sb_ami_fields_invalid_total", node="lab", kind="non_utf8") == 1
    assert metric(listener, "sb_ami_fields_invalid_total", node="lab",
                  kind="timestamp_skew") == 1
    assert listener.pipelines[0].client.framer.stats.oversize == 1
    assert metric(listener, "sb_ami_frames_dropped_total", node="lab", reason="oversize") == 1
    # the skewed Timestamp fell back to the receive time
    [row] = asyncio.run(fetch(db_url, "SELECT event_time = received_at AS same FROM ami_event"
                              " WHERE uniqueid = '1.2'"))
    assert row["same"]


def test_frame_torn_by_a_dropped_connection_is_discarded(db_url: str, tmp_path: Path) -> None:
    """Half a frame, then the socket closes: the half is dropped, the next
    connection starts clean (it is not glued to the next frame)."""
    torn = Segment([(0.0, JOIN[: len(JOIN) // 2])], close_at_end=True)
    asyncio.run(ingest(db_url, tmp_path, [torn, frames_segment(FRAMES)]))
    [call] = asyncio.run(calls(db_url))
    assert call["outcome"] == "timeout"
    n = asyncio.run(fetch(db_url, "SELECT count(*) AS n FROM ami_event WHERE event ="
                          " 'QueueCallerJoin'"))[0]["n"]
    assert n == 1


def test_poison_row_is_skipped_alone(db_url: str, tmp_path: Path) -> None:
    """A row the database refuses (here a CHECK violation forced by a trigger on
    one uniqueid) costs that event only; the rest of its batch is written."""
    async def poison() -> None:
        c = await asyncpg.connect(db_url)
        await c.execute("""
            CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.event = 'Hangup' THEN RAISE check_violation USING MESSAGE = 'no';
            END IF; RETURN NEW; END $$;
            CREATE TRIGGER refuse BEFORE INSERT ON ami_event
            FOR EACH ROW EXECUTE FUNCTION refuse();""")
        await c.close()
    asyncio.run(poison())
    listener, _ = asyncio.run(ingest(db_url, tmp_path, [frames_segment(FRAMES, per_chunk=50)],
                                     max_skew_s=1.0))
    events = [r["event"] for r in asyncio.run(fetch(db_url, "SELECT event FROM ami_event"))]
    assert "Hangup" not in events and "QueueCallerAbandon" in events
    assert metric(listener, "sb_ami_frames_dropped_total", node="lab", reason="poison") == 1
    assert asyncio.run(calls(db_url))[0]["outcome"] == "timeout"


def _with(frame: bytes, **headers: bytes) -> bytes:
    lines = frame.split(b"\r\n")
    for key, value in headers.items():
        lines = [key.encode() + b": " + value if x.startswith(key.encode() + b": ") else x
                 for x in lines]
    return b"\r\n".join(lines)


def test_caller_names_are_stored_as_the_caller_sent_them(db_url: str, tmp_path: Path) -> None:
    """Asterisk 22 C-escapes CallerIDName in every channel snapshot (ast_escape_c:
    \\ ' " ? and the control characters) and writes <unknown> when there is
    none: the row keeps what the caller sent, and NULL for none."""
    names = {b"9.1": (rb"Robert\'); DROP TABLE officer;--", "Robert'); DROP TABLE officer;--"),
             b"9.2": ("王小明\\tTab".encode(), "王小明\tTab"),
             b"9.3": (rb"say \"hi\" \\o/ \?", 'say "hi" \\o/ ?'),
             b"9.4": (b"<unknown>", None)}
    frames = [_with(JOIN, Uniqueid=uid, CallerIDName=name,
                    **({"CallerIDNum": b"<unknown>"} if uid == b"9.4" else {}))
              for uid, (name, _) in names.items()]
    asyncio.run(ingest(db_url, tmp_path, [frames_segment(frames)]))
    rows = asyncio.run(fetch(db_url, "SELECT uniqueid, caller_name, caller_num FROM queue_call"))
    got = {r["uniqueid"]: r["caller_name"] for r in rows}
    assert got == {uid.decode(): want for uid, (_, want) in names.items()}
    assert {r["uniqueid"]: r["caller_num"] for r in rows}["9.4"] is None


def test_unknown_event_names_cannot_blow_up_the_metrics(db_url: str, tmp_path: Path) -> None:
    """50,000 invented event names: every frame counted, in a bounded number of
    series; a valid SBStep UserEvent is not counted as invalid."""
    frames = [b"Event: Made%dUp\r\n\r\n" % i for i in range(50_000)]
    step = (b"Event: UserEvent\r\nPrivilege: user,all\r\nChannel: PJSIP/pstn-00000002\r\n"
            b"Uniqueid: 9.9\r\nUserEvent: SBStep\r\nStep: verify\r\nStatus: full\r\n\r\n")
    listener, _ = asyncio.run(ingest(db_url, tmp_path, [frames_segment([*frames, step],
                                                                       per_chunk=500)]))
    samples = [s for m in listener.metrics.registry.collect()
               if m.name == "sb_ami_frames_dropped" for s in m.samples
               if s.name.endswith("_total")]
    assert sum(s.value for s in samples) == 50_000
    assert len(samples) <= 65 and any(s.labels["reason"] == "other" for s in samples)
    invalid = [s for m in listener.metrics.registry.collect()
               if m.name == "sb_ami_fields_invalid" for s in m.samples]
    assert not [s for s in invalid if s.value], invalid
    [row] = asyncio.run(fetch(db_url, "SELECT fields->>'Step' AS step FROM ami_event"))
    assert row["step"] == "verify"
