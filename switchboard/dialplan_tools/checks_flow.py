"""Checks of the call flow: applications, functions, targets, queues, AGI
handlers, the SB_ contract, prompts."""

from __future__ import annotations

import re
from collections.abc import Iterator

from switchboard.agi import contract
from switchboard.agi.handlers import Prompts
from switchboard.dialplan_tools.conf import (
    LINT_DIR_NAME,
    Finding,
)
from switchboard.dialplan_tools.model import (
    Step,
    gosub_calls,
    goto_targets,
    has_var,
    split_args,
)
from switchboard.dialplan_tools.project import (
    Project,
    listed,
)


def check_apps(p: Project) -> Iterator[Finding]:
    known = {a.lower() for a in listed(p.lint_dir / "asterisk22-applications.txt",
                                         r"^\s*([A-Za-z][A-Za-z0-9_]*):")}
    for s in p.dialplan.steps:
        if s.app.lower() not in known:
            why = " (removed: use Gosub)" if s.app.lower() == "macro" else ""
            yield Finding(s.file, s.line, "SB-APP",
                          f"application {s.app} does not exist in Asterisk 22{why}")


# a function call: inside ${...}, or written to by Set (also a Set inside
# ExecIf); anything else in capitals before a parenthesis is an application's
# option (Dial's S(...))
_FUNCTION_RE = re.compile(r"(?:\$\{|\bSet\()\s*([A-Z][A-Z0-9_]*)\(")
_SET_TARGET_RE = re.compile(r"^\s*([A-Z][A-Z0-9_]*)\(")


def check_functions(p: Project) -> Iterator[Finding]:
    known = listed(p.lint_dir / "asterisk22-functions.txt", r"^([A-Z][A-Z0-9_]*)\s")
    for s in p.dialplan.steps:
        names = _FUNCTION_RE.findall(s.args)
        if s.app.lower() == "set":
            names += _SET_TARGET_RE.findall(s.args)
        for name in names:
            if name not in known and name.upper() == name:
                yield Finding(s.file, s.line, "SB-FUNC",
                              f"function {name} does not exist in Asterisk 22")


def check_targets(p: Project) -> Iterator[Finding]:
    for s in p.dialplan.steps:
        for ctx, ext, prio in goto_targets(s):
            missing = p.dialplan.resolve(ctx, ext, prio)
            if missing:
                yield Finding(s.file, s.line, "SB-TARGET", f"{s.app} target: {missing}")


def check_queues(p: Project) -> Iterator[Finding]:
    defined = {n for n, (_, _, tpl) in p.queues.sections.items()
               if not tpl and n != "general"}
    for s in p.dialplan.steps:
        if s.app.lower() in ("queue", "addqueuemember", "removequeuemember",
                             "pausequeuemember", "unpausequeuemember"):
            name = split_args(s.args)[0] if s.args else ""
            if name and not has_var(name) and name not in defined:
                yield Finding(s.file, s.line, "SB-QUEUE",
                              f"queue '{name}' is not defined in queues.conf "
                              f"(defined: {', '.join(sorted(defined))})")


def check_agi(p: Project) -> Iterator[Finding]:
    """Every AGI step names a handler.  A step that takes the handler's name
    from its Gosub's first argument (``AGI(agi://.../${ARG1})`` in [sb-agi]) is
    checked at each Gosub into its context instead."""
    generic: set[str] = set()
    for s in p.dialplan.steps:
        if s.app.lower() not in ("agi", "eagi", "deadagi"):
            continue
        name = _agi_handler(s)
        if name is None:
            yield Finding(s.file, s.line, "SB-AGI",
                          f"AGI script {split_args(s.args)[0]!r} is neither agi://HOST/NAME "
                          f"nor switchboard-agi")
        elif name == "${ARG1}":
            generic.add(s.context)
        elif name not in contract.HANDLERS:
            yield _no_handler(s, name)
    for context in sorted(generic):
        for s, args in gosub_calls(p.dialplan.steps, context):
            if not args or args[0] not in contract.HANDLERS:
                yield _no_handler(s, args[0] if args else "")


def _agi_handler(s: Step) -> str | None:
    """The handler an AGI step runs (``${ARG1}`` when its Gosub says), or None
    when it is not one of ours."""
    args = split_args(s.args)
    m = re.match(r"^h?agi://[^/]+/([^?,/]+)", args[0])
    if m:
        return m.group(1)
    if args[0] == "switchboard-agi":
        return args[1] if len(args) > 1 else ""
    return None


def _no_handler(s: Step, name: str) -> Finding:
    return Finding(s.file, s.line, "SB-AGI", f"no AGI handler '{name}' in agi/ (handlers: "
                   f"{', '.join(sorted(contract.HANDLERS))})")


def check_variables(p: Project) -> Iterator[Finding]:
    read: set[str] = set()
    set_here: set[str] = set()
    for s in p.dialplan.steps:
        text = f"{s.app}({s.args})"
        for name in re.findall(r"\bSB_[A-Z0-9_]+", text):
            if name not in contract.ALL:
                yield Finding(s.file, s.line, "SB-VAR",
                              f"{name} is not a variable the AGI code knows "
                              f"(switchboard/agi/contract.py; the dialplan's own are IVR_*)")
        read.update(re.findall(r"\$\{(SB_[A-Z0-9_]+)", text))
        if s.app.lower() == "gosub":  # Gosub(sb-agi,s,1(HANDLER,STATUS)) reads STATUS
            read.update(re.findall(r"\(\s*[a-z-]+\s*,\s*(SB_[A-Z0-9_]+)\s*\)", s.args))
        if s.app.lower() == "set":
            m = re.match(r"(SB_[A-Z0-9_]+)=", s.args)
            if m:
                set_here.add(m.group(1))
    for handler, names in sorted(contract.READS.items()):
        for name in sorted(names - set_here - set().union(*contract.SETS.values())):
            yield Finding(p.extensions.name, 1, "SB-VAR",
                          f"the {handler} handler reads {name} but the dialplan never "
                          f"sets it")
    # a handler's variable that another handler reads (SB_OUTBOUND_ID) is read too
    read |= set().union(*contract.READS.values())
    for handler, names in sorted(contract.SETS.items()):
        for name in sorted(names - read):
            yield Finding(p.extensions.name, 1, "SB-VAR",
                          f"{name} is set by the {handler} handler but the dialplan never "
                          f"reads it")


def check_prompts(p: Project) -> Iterator[Finding]:
    sounds = {x.strip() for x in (p.lint_dir / "sounds-en-core.txt").read_text().splitlines()}
    if p.sounds_dir.is_dir():
        sounds |= {str(f.relative_to(p.sounds_dir).with_suffix(""))
                   for f in p.sounds_dir.rglob("*") if f.is_file()}
    for s in p.dialplan.steps:
        if s.app.lower() in ("playback", "background", "controlplayback", "read"):
            args = split_args(s.args)
            files = args[1] if s.app.lower() == "read" and len(args) > 1 else args[0]
            for name in files.split("&"):
                if name and not has_var(name) and name not in sounds:
                    yield Finding(s.file, s.line, "SB-PROMPT",
                                  f"prompt '{name}' is not in the sounds list "
                                  f"({LINT_DIR_NAME}/sounds-en-core.txt or dialplan/sounds/)")
    for name in Prompts().__dict__.values():
        if name not in sounds:
            yield Finding("switchboard/agi/handlers.py", 0, "SB-PROMPT",
                          f"the AGI handlers play '{name}', which is not in the sounds list")


