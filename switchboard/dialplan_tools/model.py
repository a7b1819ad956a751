"""The dialplan as Asterisk runs it: steps, patterns, Goto targets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from switchboard.dialplan_tools.conf import (
    Conf,
    Item,
)


@dataclass(frozen=True)
class Step:
    file: str
    line: int
    context: str
    exten: str
    label: str | None
    app: str
    args: str


def effective_items(conf: Conf, section: str, seen: frozenset[str] = frozenset()
                    ) -> list[Item]:
    """A section's options in the order Asterisk sees them: its templates' first
    (in the order named, each with its own templates first), then its own."""
    out: list[Item] = []
    for parent in conf.parents.get(section, ()):
        if parent not in seen and parent in conf.sections:
            out += effective_items(conf, parent, seen | {section})
    return out + conf.section_items(section)


def pjsip_objects(pjsip: Conf, kind: str) -> Iterator[tuple[str, str, int, list[Item]]]:
    """The (non-template) sections of ``type = kind``, directly or through their
    templates, each with where it starts and its options in Asterisk's order; a
    name re-opened for another type ([2001] endpoint, [2001] aor) counts."""
    for name, (file, line, tpl) in pjsip.sections.items():
        if tpl:
            continue
        items = effective_items(pjsip, name)
        if any(i.key == "type" and i.value == kind for i in items):
            yield name, file, line, items


def dialplan_steps(conf: Conf) -> list[Step]:
    """``exten => EXT,PRIO[(label)],App(args)`` and ``same => PRIO[(label)],App(args)``."""
    steps: list[Step] = []
    last_exten = ""
    for it in conf.items:
        if it.key == "exten":
            exten, _, rest = it.value.partition(",")
            last_exten = exten.strip()
        elif it.key == "same":
            rest = it.value
        else:
            continue
        prio, _, app_part = rest.partition(",")
        lm = re.search(r"\(([^)]*)\)", prio)
        label = lm.group(1).strip() if lm else None
        am = re.match(r"^\s*([A-Za-z][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$", app_part, re.S)
        app, args = (am.group(1), am.group(2) or "") if am else (app_part.strip(), "")
        steps.append(Step(it.file, it.line, it.section, last_exten, label, app, args))
    return steps


def split_args(args: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside ${...}, $[...] and (...)."""
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in args:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [a.strip() for a in out]


def pattern_matches(pattern: str, exten: str) -> bool:
    if not pattern.startswith("_"):
        return pattern == exten
    rx = ""
    p = pattern[1:]
    i = 0
    while i < len(p):
        ch = p[i]
        if ch == "X":
            rx += "[0-9]"
        elif ch == "Z":
            rx += "[1-9]"
        elif ch == "N":
            rx += "[2-9]"
        elif ch == ".":
            rx += ".+"
        elif ch == "!":
            rx += ".*"
        elif ch == "[":
            j = p.index("]", i)
            rx += "[" + p[i + 1:j] + "]"
            i = j
        else:
            rx += re.escape(ch)
        i += 1
    return re.fullmatch(rx, exten) is not None


def has_var(s: str) -> bool:
    return "${" in s or "$[" in s


class Dialplan:
    def __init__(self, steps: list[Step], contexts: dict[str, tuple[str, int, bool]]) -> None:
        self.steps = steps
        self.contexts = set(contexts) - {"general", "globals"}
        self.extens: dict[str, set[str]] = {}
        self.labels: dict[tuple[str, str], set[str]] = {}
        for s in steps:
            self.extens.setdefault(s.context, set()).add(s.exten)
            if s.label:
                self.labels.setdefault((s.context, s.exten), set()).add(s.label)

    def resolve(self, context: str, exten: str, prio: str) -> str | None:
        """None when the target exists, else what is missing."""
        if any(has_var(x) for x in (context, exten, prio)):
            return None
        if context not in self.contexts:
            return f"context '{context}' does not exist"
        matches = [e for e in self.extens.get(context, ()) if pattern_matches(e, exten)]
        if not matches:
            return f"extension '{exten}' does not exist in context '{context}'"
        if prio.isdigit() or prio in ("n", ""):
            return None
        if not any(prio in self.labels.get((context, e), set()) for e in matches):
            return f"label '{prio}' does not exist in {context},{exten}"
        return None


def goto_targets(step: Step) -> Iterator[tuple[str, str, str]]:
    """(context, exten, priority-or-label) targets of one step."""
    app = step.app.lower()
    here = (step.context, step.exten)
    if app in ("goto", "gosub"):
        yield _target(split_args(re.sub(r"\(.*\)$", "", step.args)), here)
    elif app in ("gotoif", "gosubif"):
        _, _, branches = step.args.partition("?")
        for branch in branches.split(":"):
            if branch.strip():
                yield _target(split_args(re.sub(r"\(.*\)$", "", branch.strip())), here)
    elif app == "set":
        m = re.match(r"CHANNEL\(hangup_handler_push\)=(.*)", step.args)
        if m:
            yield _target(split_args(re.sub(r"\(.*\)$", "", m.group(1))), here)
    elif app == "queue":
        opts = split_args(step.args)[1] if len(split_args(step.args)) > 1 else ""
        for m in re.finditer(r"b\(([^)]*)\)", opts):
            yield _target(split_args(m.group(1), "^"), here)


def gosub_calls(steps: list[Step], context: str) -> Iterator[tuple[Step, list[str]]]:
    """Each ``Gosub(context,...(ARG1,ARG2...))`` step into ``context``, with its
    arguments (an empty list when it passes none)."""
    for s in steps:
        if s.app.lower() != "gosub":
            continue
        m = re.match(r"^([^,(]+),[^(]*?(?:\((.*)\))?$", s.args.strip())
        if m and m.group(1).strip() == context:
            yield s, split_args(m.group(2)) if m.group(2) else []


def _target(parts: list[str], here: tuple[str, str]) -> tuple[str, str, str]:
    if len(parts) >= 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return here[0], parts[0], parts[1]
    return here[0], here[1], parts[0] if parts else ""


