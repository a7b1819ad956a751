"""structlog set-up, done once per process.

JSON lines in production (or whenever stderr is not a terminal), readable
key=value output in a terminal.  A redaction processor drops anything that looks
like a secret, a PIN or case details before a line is rendered.  Libraries that
log through the standard ``logging`` module (asyncpg's pool, aiohttp, asyncio)
are rendered the same way, so a production log is JSON from end to end.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "[redacted]"
_SENSITIVE = ("pin", "secret", "password", "passwd", "pepper", "case_detail", "case_notes")


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]
           ) -> MutableMapping[str, Any]:
    for key in list(event):
        lowered = key.lower()
        if any(s in lowered for s in _SENSITIVE):
            event[key] = REDACTED
    return event


def configure(log_format: str = "auto", level: str = "info", *,
              stream: TextIO | None = None) -> None:
    """``stream`` defaults to the current ``sys.stderr``."""
    out = stream or sys.stderr
    if log_format == "auto":
        log_format = "console" if out.isatty() else "json"
    renderer: Any
    if log_format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    else:
        renderer = structlog.processors.JSONRenderer()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    numeric = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    # the standard library's loggers: same processors, same renderer, same stream
    handler = logging.StreamHandler(out)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer]))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_switchboard", False):
            root.removeHandler(old)
    handler._switchboard = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    # libraries speak up from WARNING (asyncio's debug mode chatters at INFO), or
    # everything when debug is asked for
    root.setLevel(numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING))


def get(name: str) -> Any:
    return structlog.get_logger(name)
