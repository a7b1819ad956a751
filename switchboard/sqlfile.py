"""Named queries from plain SQL files in ``sql/queries``.

A file holds blocks that start with ``-- name: NAME``; the text up to the next
marker is the query.  Reviewed SQL stays in ``sql/``, code refers to it by name.
"""

from __future__ import annotations

import re
from functools import cache

from switchboard.db import SQL_DIR

_MARK = re.compile(r"^-- name: ([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


@cache
def queries(filename: str) -> dict[str, str]:
    source = (SQL_DIR / "queries" / filename).read_text()
    out: dict[str, str] = {}
    marks = list(_MARK.finditer(source))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(source)
        body = "\n".join(line for line in source[m.end():end].splitlines()
                         if not line.lstrip().startswith("--")).strip()
        if m.group(1) in out:
            raise ValueError(f"{filename}: query {m.group(1)} defined twice")
        out[m.group(1)] = body
    return out
