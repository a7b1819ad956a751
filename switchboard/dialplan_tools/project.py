"""What every check looks at: the parsed files of one project and Asterisk
22.10.1's own lists (dialplan/lint/)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from switchboard.dialplan_tools.conf import (
    Conf,
    Item,
)
from switchboard.dialplan_tools.model import (
    Dialplan,
    effective_items,
)


@dataclass
class Project:
    tree: Path  # the assembled configuration (dialplan/ + site/), as deploy writes it
    source_dir: Path  # dialplan/ itself
    lint_dir: Path
    sounds_dir: Path
    extensions: Conf
    queues: Conf
    pjsip: Conf
    manager: Conf
    others: list[Conf]
    dialplan: Dialplan
    strict: bool = False  # on a node: files outside the tree must exist

    @property
    def confs(self) -> tuple[Conf, ...]:
        """Every configuration file read (each with what it #includes)."""
        return (self.extensions, self.queues, self.pjsip, self.manager, *self.others)

    @property
    def modules(self) -> Conf | None:
        return next((c for c in self.others if c.name == "modules.conf"), None)


def explicit_loads(modules: Conf) -> dict[str, Item] | None:
    """modules.conf's ``load =`` lines by module, or None with ``autoload = yes``
    (then Asterisk loads everything it has, and no list is to be checked)."""
    if any(i.key == "autoload" and i.value.lower() in ("yes", "true", "1")
           for i in modules.items):
        return None
    return {i.value: i for i in modules.items if i.key == "load"}


def queue_strategies(queues: Conf) -> dict[str, str]:
    """queue -> the strategy Asterisk runs it with: the first ``strategy`` in the
    section with its templates' options first (app_queue reads it once), else
    ringall."""
    out = {}
    for q, (_, _, tpl) in queues.sections.items():
        if q != "general" and not tpl:
            given = [i.value for i in effective_items(queues, q) if i.key == "strategy"]
            out[q] = given[0] if given else "ringall"
    return out


def listed(path: Path, rx: str) -> set[str]:
    out = set()
    for line in path.read_text().splitlines():
        m = re.match(rx, line)
        if m:
            out.add(m.group(1))
    return out


