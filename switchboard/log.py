"""structlog set-up, done once per process.

JSON lines in production (or whenever stderr is not a terminal), readable
key=value output in a terminal.  A redaction processor drops anything that looks
like a secret, a PIN or case details before a line is rendered.
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
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )


def get(name: str) -> Any:
    return structlog.get_logger(name)
