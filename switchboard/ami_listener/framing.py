"""AMI framing and header parsing, on bytes.

AMI is ``Key: Value\\r\\n`` lines, a blank line ends a message, and the session
starts with one banner line.  We split on bytes and decode a *whole* frame, so a
multi-byte UTF-8 character split across two TCP reads survives (panoramisk
decodes each read on its own and drops it).  Invalid UTF-8 becomes U+FFFD and is
counted.  A frame larger than ``max_frame`` is dropped whole, up to its end, and
counted; the stream goes on.

``parse_frame`` tries the C fast path first (``_fastframe``, built with Cython
at install), which answers for well-formed frames, and otherwise, or where it
was not built, or with ``SB_PURE_PYTHON=1``, parses in Python.  Both give the
same message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

SEP = b"\r\n\r\n"
BANNER_PREFIX = b"Asterisk Call Manager/"
MAX_BANNER = 256
MAX_HEADERS = 512
_KEY_RE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
# "Key: value" (one optional space after the colon); the value may be empty.
_LINE_RE = re.compile(r"^([A-Za-z0-9_\-]{1,64}): ?([^\r\n]*)\r?$", re.MULTILINE)

FieldValue = str | list[str]


@dataclass
class FramerStats:
    frames: int = 0
    oversize: int = 0
    bytes_discarded: int = 0


class Framer:
    """Incremental splitter: ``feed(bytes)`` returns complete frames (without the
    terminating blank line).  Never raises on any input."""

    def __init__(self, max_frame: int = 64 << 10, *, expect_banner: bool = True) -> None:
        self.max_frame = max_frame
        self.banner: bytes | None = None
        self._expect_banner = expect_banner
        self._buf = b""
        self._discarding = False
        self.stats = FramerStats()

    def reset(self) -> None:
        """Forget any partial frame (new connection)."""
        self._buf = b""
        self._discarding = False
        self.banner = None

    @property
    def pending(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf + data if self._buf else data
        if self._expect_banner and self.banner is None:
            nl = buf.find(b"\r\n")
            if nl < 0:
                if len(buf) > MAX_BANNER:  # no banner line: treat everything as frames
                    self.banner = b""
                else:
                    self._buf = buf
                    return []
            elif buf.startswith(BANNER_PREFIX):
                self.banner = buf[:nl]
                buf = buf[nl + 2:]
            else:
                self.banner = b""
        parts = buf.split(SEP)
        tail = parts.pop()
        out: list[bytes] = []
        for part in parts:
            if self._discarding:
                self._discarding = False
                self.stats.bytes_discarded += len(part)
                continue
            if len(part) > self.max_frame:
                self.stats.oversize += 1
                self.stats.bytes_discarded += len(part)
                continue
            # Stray blank lines between frames are not frames.
            if not part.strip(b"\r\n"):
                continue
            out.append(part.lstrip(b"\r\n"))
        if len(tail) > self.max_frame:
            # Keep the last 3 bytes: the terminator may straddle this read and the next.
            if not self._discarding:
                self.stats.oversize += 1
            self._discarding = True
            self.stats.bytes_discarded += len(tail) - 3
            tail = tail[-3:]
        self._buf = tail
        self.stats.frames += len(out)
        return out


@dataclass
class Message:
    """One parsed frame. ``fields`` keeps the order Asterisk sent and every header,
    including empty values; a repeated header becomes a list."""

    fields: dict[str, FieldValue]
    malformed_lines: int = 0
    replaced_chars: int = 0
    truncated_headers: bool = False
    # True: every value is one string (no repeated header), as the parsers know
    single: bool = False
    kind: str = field(init=False)
    name: str = field(init=False)

    def __post_init__(self) -> None:
        if self.single:
            # the dict's own get, in C: a dozen calls per event on the hot path
            self.get = self.fields.get  # type: ignore[method-assign, assignment]
        event = self.fields.get("Event")
        response = self.fields.get("Response")
        if isinstance(event, str) and event:
            self.kind, self.name = "event", event
        elif isinstance(response, str) and response:
            self.kind, self.name = "response", response
        else:
            self.kind, self.name = "unknown", ""

    def get(self, key: str) -> str | None:
        """First value of a header, or None when absent (never a silent '')."""
        value = self.fields.get(key)
        if value is None or value.__class__ is str:
            return value
        return value[0]


FastFields = Callable[[bytes, int], "dict[str, FieldValue] | None"]


def _fast_parser() -> FastFields | None:
    if os.environ.get("SB_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        from switchboard.ami_listener._fastframe import fields  # noqa: PLC0415 (optional: may be unbuilt)
    except ImportError:  # not built (no C compiler at install): the pure path
        return None
    return fields


_fast_fields: FastFields | None = _fast_parser()


def parser_name() -> str:
    """Which frame parser runs: ``c`` (the fast path) or ``python``."""
    return "python" if _fast_fields is None else "c"


def parse_frame(frame: bytes, max_headers: int = MAX_HEADERS) -> Message:
    """Parse one frame. Never raises: bad lines are counted, not fatal.
    ``max_headers``: more are dropped and the message says so
    (``truncated_headers``); an ops command's long output may ask for more."""
    if _fast_fields is not None:
        fields = _fast_fields(frame, max_headers)
        if fields is not None:
            return Message(fields=fields, single=True)
    return parse_frame_py(frame, max_headers)


def parse_frame_py(frame: bytes, max_headers: int = MAX_HEADERS) -> Message:
    """The general parser, in Python (and the reference for the fast path).

    One C-level ``findall`` over the frame does the work; lines it does not
    match are counted as malformed.
    """
    try:
        text = frame.decode("utf-8")
        replaced = 0
    except UnicodeDecodeError:
        text = frame.decode("utf-8", errors="replace")
        replaced = max(text.count("\ufffd") - frame.count(b"\xef\xbf\xbd"), 0)
    pairs = _LINE_RE.findall(text)
    # frames hold no blank line (that ends a frame), so lines = newlines + 1
    lines = text.count("\n") + 1
    truncated = False
    if len(pairs) > max_headers:
        pairs, truncated = pairs[:max_headers], True
    fields: dict[str, FieldValue] = dict(pairs)
    single = len(fields) == len(pairs)
    if not single:  # a repeated header: keep every value, in order
        fields = {}
        for key, value in pairs:
            old = fields.get(key)
            if old is None:
                fields[key] = value
            elif isinstance(old, list):
                old.append(value)
            else:
                fields[key] = [old, value]
    malformed = max(lines - len(pairs), 0) if not truncated else 0
    return Message(fields=fields, malformed_lines=malformed, replaced_chars=replaced,
                   truncated_headers=truncated, single=single)


def render_action(action: str, headers: dict[str, str] | dict[str, str | list[str]]) -> bytes:
    """Serialise an action (a list value: the header repeated, as Originate's
    ``Variable``).  Values come from our configuration; CR, LF and other
    control characters are refused so nothing can smuggle in a second action."""
    lines = [f"Action: {action}"]
    for key, values in headers.items():
        if not _KEY_RE.match(key):
            raise ValueError(f"bad AMI header name {key!r}")
        for value in [values] if isinstance(values, str) else values:
            if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
                raise ValueError(f"control character in AMI header {key}")
            lines.append(f"{key}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
