"""What the panel's parts share: the database-away signal, a call id checked,
a row as JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

_UID_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:@/+-")


class DatabaseDown(Exception):
    pass


def uid(value: str) -> str:
    if not value or len(value) > 150 or not set(value) <= _UID_OK:
        raise web.HTTPBadRequest(text="bad call id\n")
    return value


def plain(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if hasattr(v, "is_finite"):  # Decimal
        return float(v)
    return v


def row(r: Any) -> dict[str, Any]:
    return {k: plain(v) for k, v in dict(r).items()}
