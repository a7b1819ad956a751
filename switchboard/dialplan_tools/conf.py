"""Asterisk configuration files as Asterisk reads them: sections, templates,
#include, comments, and a finding's ``file:line`` (``switchboard dialplan check``)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from switchboard.resources import data_dir

DIALPLAN_DIR = data_dir("dialplan")
LINT_DIR_NAME = "lint"
SITE = "site"
# site files the product reads and Asterisk does not (`switchboard edge`,
# `switchboard front`)
PRODUCT_SITE_FILES = frozenset({"edge.conf", "cluster.conf"})
# an #include / #tryinclude line: group 1 the directive's start, group 2 the file
INCLUDE_RE = re.compile(r'^(\s*#(?:try)?include\s+)"?([^"\s]+)"?', re.M)
SECRET_KEYS = {"secret", "password", "md5_cred", "auth_password", "pin"}


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    line: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.code}: {self.message}"


@dataclass(frozen=True)
class Item:
    """One ``key = value`` / ``key => value`` line of a config file."""

    file: str
    line: int
    section: str
    template: bool
    key: str
    value: str


@dataclass
class Conf:
    name: str
    items: list[Item] = field(default_factory=list)
    sections: dict[str, tuple[str, int, bool]] = field(default_factory=dict)  # name -> where
    parents: dict[str, list[str]] = field(default_factory=dict)  # [x](tpl1,tpl2), in order
    includes_outside: list[tuple[str, int, str]] = field(default_factory=list)
    included: list[str] = field(default_factory=list)  # files read through #include
    findings: list[Finding] = field(default_factory=list)

    def section_items(self, section: str) -> list[Item]:
        return [i for i in self.items if i.section == section]


def strip_comment(line: str) -> str:
    out = []
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line) and line[i + 1] == ";":
            out.append(";")
            i += 2
            continue
        if ch == ";":
            break
        out.append(ch)
        i += 1
    return "".join(out).strip()


def load_conf(path: Path, tree: Path, *, display: str | None = None,
              conf: Conf | None = None, depth: int = 0,
              where: tuple[str, bool] = ("", False)) -> Conf:
    """Parse an Asterisk config file with its #includes (relative to ``tree``;
    absolute paths outside the tree are recorded, not read: secrets live there)."""
    conf = conf or Conf(path.name)
    shown = display or path.name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        conf.findings.append(Finding(shown, 0, "SB-CONF", f"cannot read: {exc}"))
        return conf
    section, template = where  # an #included file continues the including section
    in_block = False
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw
        if in_block:
            if "--;" not in line:
                continue
            line, in_block = line.split("--;", 1)[1], False
        if ";--" in line:
            before, _, after = line.partition(";--")
            if "--;" in after:
                line = before + after.split("--;", 1)[1]
            else:
                line, in_block = before, True
        line = strip_comment(line)
        if not line:
            continue
        if line.startswith("#include") or line.startswith("#tryinclude"):
            target = line.split(None, 1)[1].strip().strip('"<>') if " " in line else ""
            if not target:
                conf.findings.append(Finding(shown, no, "SB-CONF", "#include without a file"))
                continue
            if os.path.isabs(target) and not target.startswith(f"{tree}{os.sep}"):
                conf.includes_outside.append((shown, no, target))
                continue
            sub = tree / target
            if os.path.isabs(target):  # written absolute by deploy (asterisk.conf)
                target = os.path.relpath(target, tree)
            if not sub.is_file():
                if line.startswith("#include"):
                    conf.findings.append(Finding(
                        shown, no, "SB-CONF", f"#include \"{target}\": no such file; Asterisk "
                        f"would ignore all of {conf.name}"))
                continue
            if depth > 8:
                conf.findings.append(Finding(shown, no, "SB-CONF", "#include nested too deep"))
                continue
            conf.included.append(target)
            load_conf(sub, tree, display=target, conf=conf, depth=depth + 1,
                      where=(section, template))
            continue
        if line.startswith("#"):
            conf.findings.append(Finding(shown, no, "SB-CONF",
                                         f"directive {line.split()[0]} not allowed"))
            continue
        m = re.match(r"^\[([^\]]+)\](?:\(([^)]*)\))?$", line)
        if m:
            section = m.group(1).strip()
            opts = [o.strip() for o in (m.group(2) or "").split(",") if o.strip()]
            template = "!" in opts
            conf.sections.setdefault(section, (shown, no, template))
            named = conf.parents.setdefault(section, [])
            named += [o for o in opts if o not in ("!", "+") and o not in named]
            continue
        m = re.match(r"^([^=]+?)\s*=>?\s*(.*)$", line)
        if not m:
            conf.findings.append(Finding(shown, no, "SB-CONF", f"not key = value: {line[:40]!r}"))
            continue
        conf.items.append(Item(shown, no, section, template, m.group(1).strip(),
                               m.group(2).strip()))
    return conf


