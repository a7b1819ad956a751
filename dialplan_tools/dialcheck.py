"""``switchboard dialplan check``: the Asterisk configuration in ``dialplan/``,
checked before it can reach Asterisk (whose own ``dialplan reload`` skips a bad
line with a warning, loads the rest live and still says "Dialplan reloaded.").

The generic part is asterisklint-jjs (``--asterisk-version 22``): syntax,
unbalanced ``${}``/``$[]``, unknown applications and functions, priorities.
The checks here are the project's own, each a small function over the parsed
files, each reporting ``file:line: CODE: message``:

    SB-APP      application not in Asterisk 22.10.1's ``core show applications``
    SB-FUNC     function not in its ``core show functions``
    SB-TARGET   Goto/GotoIf/Gosub (and hangup handlers, Queue b()) to a missing
                context, extension or label
    SB-QUEUE    a queue not defined in queues.conf
    SB-AGI      AGI(agi://.../NAME) or AGI(switchboard-agi,NAME) with no handler
    SB-VAR      an SB_* variable unknown to the code, or one the code sets that
                the dialplan never reads (agi/contract.py)
    SB-PROMPT   a prompt the sounds list (core sounds en + dialplan/sounds) lacks
    SB-ENDPOINT PJSIP/NAME that pjsip.conf does not define
    SB-AMI      AMI bound to anything but loopback
    SB-SECRET   a secret written inline instead of #included from outside git
    SB-MODULE   modules.conf (autoload=no) loads a module Asterisk 22.10.1 does
                not have, misses one the dialplan needs, or misses one that a
                loaded module requires (lint/asterisk22-module-deps.txt)
    SB-ONCE     an option Asterisk reads once (the first one wins), set twice
                in a section, e.g. a queue's strategy in its template and itself
    SB-ASTCONF  asterisk.conf: a template section (Asterisk ignores it), or an
                #include Asterisk will not find (it resolves them against its
                built-in folder, not the one given with -C)
    SB-CONF     a file that cannot be read or parsed, or an #include that does
                not resolve (Asterisk then ignores the whole file)
"""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from agi import contract
from agi.handlers import Prompts
from ami_listener.normalise import KEPT_EVENTS

ROOT = Path(__file__).resolve().parent.parent
DIALPLAN_DIR = ROOT / "dialplan"
LINT_DIR_NAME = "lint"
SITE = "site"
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


def _strip_comment(line: str) -> str:
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
        line = _strip_comment(line)
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


# --- the dialplan model -------------------------------------------------------------

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


def _has_var(s: str) -> bool:
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
        if any(_has_var(x) for x in (context, exten, prio)):
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


def _target(parts: list[str], here: tuple[str, str]) -> tuple[str, str, str]:
    if len(parts) >= 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return here[0], parts[0], parts[1]
    return here[0], here[1], parts[0] if parts else ""


# --- the checks ------------------------------------------------------------------------

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


def _listed(path: Path, rx: str) -> set[str]:
    out = set()
    for line in path.read_text().splitlines():
        m = re.match(rx, line)
        if m:
            out.add(m.group(1))
    return out


def check_apps(p: Project) -> Iterator[Finding]:
    known = {a.lower() for a in _listed(p.lint_dir / "asterisk22-applications.txt",
                                         r"^\s*([A-Za-z][A-Za-z0-9_]*):")}
    for s in p.dialplan.steps:
        if s.app.lower() not in known:
            why = " (removed: use Gosub)" if s.app.lower() == "macro" else ""
            yield Finding(s.file, s.line, "SB-APP",
                          f"application {s.app} does not exist in Asterisk 22{why}")


def check_functions(p: Project) -> Iterator[Finding]:
    known = _listed(p.lint_dir / "asterisk22-functions.txt", r"^([A-Z][A-Z0-9_]*)\s")
    for s in p.dialplan.steps:
        for name in re.findall(r"(?<![A-Za-z0-9_$])([A-Z][A-Z0-9_]*)\(", s.args):
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
            if name and not _has_var(name) and name not in defined:
                yield Finding(s.file, s.line, "SB-QUEUE",
                              f"queue '{name}' is not defined in queues.conf "
                              f"(defined: {', '.join(sorted(defined))})")


def check_agi(p: Project) -> Iterator[Finding]:
    for s in p.dialplan.steps:
        if s.app.lower() not in ("agi", "eagi", "deadagi"):
            continue
        script = split_args(s.args)[0]
        m = re.match(r"^h?agi://[^/]+/([^?,/]+)", script)
        if m:
            name = m.group(1)
        elif script == "switchboard-agi":
            args = split_args(s.args)
            name = args[1] if len(args) > 1 else ""
        else:
            yield Finding(s.file, s.line, "SB-AGI",
                          f"AGI script {script!r} is neither agi://HOST/NAME nor "
                          f"switchboard-agi")
            continue
        if name not in contract.HANDLERS:
            yield Finding(s.file, s.line, "SB-AGI",
                          f"no AGI handler '{name}' in agi/ (handlers: "
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
                              f"(agi/contract.py; the dialplan's own variables are IVR_*)")
        read.update(re.findall(r"\$\{(SB_[A-Z0-9_]+)", text))
        if s.app.lower() == "set":
            m = re.match(r"(SB_[A-Z0-9_]+)=", s.args)
            if m:
                set_here.add(m.group(1))
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
                if name and not _has_var(name) and name not in sounds:
                    yield Finding(s.file, s.line, "SB-PROMPT",
                                  f"prompt '{name}' is not in the sounds list "
                                  f"({LINT_DIR_NAME}/sounds-en-core.txt or dialplan/sounds/)")
    for name in Prompts().__dict__.values():
        if name not in sounds:
            yield Finding("agi/handlers.py", 0, "SB-PROMPT",
                          f"the AGI handlers play '{name}', which is not in the sounds list")


def endpoints(pjsip: Conf) -> set[str]:
    """Sections of type endpoint, directly or through their templates; a name
    that is re-opened for other types ([2001] endpoint and [2001] aor) counts."""
    def types(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        own = {i.value for i in pjsip.items if i.section == name and i.key == "type"}
        for parent in pjsip.parents.get(name, ()):
            if parent not in seen:
                own |= types(parent, seen | {name})
        return own
    return {name for name, (_, _, tpl) in pjsip.sections.items()
            if not tpl and "endpoint" in types(name)}


def check_endpoints(p: Project) -> Iterator[Finding]:
    known = endpoints(p.pjsip)
    refs: list[tuple[str, int, str]] = []
    for s in p.dialplan.steps:
        refs += [(s.file, s.line, n) for n in re.findall(r"PJSIP/([A-Za-z0-9_.-]+)", s.args)]
    for it in p.queues.items:
        if it.key == "member":
            refs += [(it.file, it.line, n) for n in re.findall(r"PJSIP/([A-Za-z0-9_.-]+)",
                                                               it.value)]
    for file, line, name in refs:
        if name not in known:
            yield Finding(file, line, "SB-ENDPOINT",
                          f"endpoint PJSIP/{name} is not defined in pjsip.conf")


def check_ami(p: Project) -> Iterator[Finding]:
    general = p.manager.section_items("general")
    enabled = any(i.key == "enabled" and i.value.lower() in ("yes", "true", "1")
                  for i in general)
    bind = [i for i in general if i.key == "bindaddr"]
    if enabled and not bind:
        yield Finding("manager.conf", 1, "SB-AMI",
                      "AMI enabled without bindaddr: Asterisk would listen on every "
                      "address; set bindaddr = 127.0.0.1")
    for i in bind:
        try:
            loopback = ipaddress.ip_address(i.value).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            yield Finding(i.file, i.line, "SB-AMI",
                          f"AMI bound to {i.value}: only loopback (127.0.0.1) is allowed")
    for i in p.manager.items:
        if i.key in ("webenabled",) and i.value.lower() in ("yes", "true", "1"):
            yield Finding(i.file, i.line, "SB-AMI", "AMI over HTTP is not allowed")


def check_secrets(p: Project) -> Iterator[Finding]:
    for conf in p.confs:
        for i in conf.items:
            if i.key.lower() in SECRET_KEYS and i.value:
                yield Finding(i.file, i.line, "SB-SECRET",
                              f"{i.key} written inline: put it in a file outside git and "
                              f"#include it (e.g. /etc/asterisk/secrets/)")
        for i in conf.items:
            secret_like = re.search(r"(SECRET|PASSWORD|PASS|TOKEN|KEY)$", i.key.upper())
            if i.section == "globals" and secret_like and i.value:
                yield Finding(i.file, i.line, "SB-SECRET",
                              f"global {i.key} looks like a secret written inline")


def check_modules(p: Project) -> Iterator[Finding]:
    modules = p.modules
    if modules is None:
        return
    known = _listed(p.lint_dir / "asterisk22-modules.txt", r"^(\S+\.so)\s")
    for item in modules.items:
        if item.key == "load" and item.value not in known:
            yield Finding(item.file, item.line, "SB-MODULE",
                          f"{item.value} is not a module of Asterisk 22.10.1")
    loads = explicit_loads(modules)
    if loads is not None:
        for name in sorted(needed_modules(p.tree) - set(loads)):
            yield Finding("modules.conf", 1, "SB-MODULE",
                          f"the dialplan needs {name} but modules.conf does not load it "
                          f"(autoload = no)")
        for name, why in sorted(config_needs(p).items()):
            if name not in loads:
                yield Finding("modules.conf", 1, "SB-MODULE",
                              f"{why} needs {name}, but modules.conf does not load it "
                              f"(autoload = no)")


def config_needs(p: Project) -> dict[str, str]:
    """Modules the configuration (not the dialplan) needs, and why."""
    def objects(kind: str) -> list[str]:
        return [s for s, (_, _, tpl) in p.pjsip.sections.items() if not tpl and any(
            i.key == "type" and i.value == kind for i in effective_items(p.pjsip, s))]

    needs: dict[str, str] = {}
    if objects("endpoint"):
        needs["chan_pjsip.so"] = "a PJSIP endpoint in pjsip.conf"
    if objects("identify"):
        needs["res_pjsip_endpoint_identifier_ip.so"] = "a PJSIP identify section"
    if objects("registration"):
        needs["res_pjsip_outbound_registration.so"] = "a PJSIP registration section"
    registering = [s for s in objects("aor") if any(
        i.key == "max_contacts" and i.value.strip() not in ("", "0")
        for i in effective_items(p.pjsip, s))]
    if registering:
        needs["res_pjsip_registrar.so"] = (f"the phones that register (aor {registering[0]} "
                                           f"has max_contacts)")
    if p.queues.sections:
        needs["app_queue.so"] = "queues.conf"
    if "Cdr" in KEPT_EVENTS:
        needs["cdr_manager.so"] = "the AMI listener (it keeps the Cdr event)"
    return needs


# Asterisk's built-in modules (no .so file; always loaded).
BUILTIN_MODULES = frozenset({"acl", "ccss", "cdr", "cel", "dnsmgr", "dsp", "enum", "extconfig",
                             "features", "http", "indications", "logger", "manager", "plc",
                             "sounds", "udptl"})


def module_deps(lint_dir: Path) -> dict[str, set[str]]:
    """module -> the modules it requires or enhances (both must run first), from
    lint/asterisk22-module-deps.txt (recorded from a real Asterisk 22.10.1)."""
    out: dict[str, set[str]] = {}
    path = lint_dir / "asterisk22-module-deps.txt"
    for line in path.read_text().splitlines():
        m = re.match(r"^(\S+\.so): (.*)$", line)
        if not m:
            continue
        fields = dict(f.split("=", 1) for f in m.group(2).split() if "=" in f)
        out[m.group(1)] = {d for key in ("requires", "enhances")
                           for d in fields.get(key, "-").split(",") if d not in ("-", "")}
    return out


def check_module_deps(p: Project) -> Iterator[Finding]:
    """With autoload = no Asterisk refuses to start a module whose dependencies
    are not loaded too ("missing dependency: res_speech")."""
    loads = explicit_loads(p.modules) if p.modules is not None else None
    if loads is None:
        return
    deps = module_deps(p.lint_dir)
    for name, item in sorted(loads.items()):
        for dep in sorted(deps.get(name, set())):
            if dep not in loads and dep.removesuffix(".so") not in BUILTIN_MODULES:
                yield Finding(item.file, item.line, "SB-MODULE",
                              f"{name} requires {dep}, which modules.conf does not load "
                              f"(autoload = no): Asterisk would not start {name}")


# Options Asterisk 22 reads once, taking the first occurrence in a section (read
# from its source: app_queue.c reads a static queue's strategy with
# ast_variable_retrieve, and a template's options come before the section's own);
# every other option is applied in order, so the last one wins.
FIRST_WINS: dict[str, frozenset[str]] = {"queues.conf": frozenset({"strategy"})}


def check_once(p: Project) -> Iterator[Finding]:
    for conf in p.confs:
        once = FIRST_WINS.get(conf.name, frozenset())
        for section, (_, _, template) in conf.sections.items():
            if template:
                continue
            seen: dict[str, Item] = {}
            for item in effective_items(conf, section):
                key = item.key.lower()
                if key not in once:
                    continue
                if key in seen:
                    first = seen[key]
                    origin = (f", from template {first.section}"
                              if first.section != section else "")
                    yield Finding(item.file, item.line, "SB-ONCE",
                                  f"{item.key} of [{section}] is set twice: Asterisk uses the "
                                  f"first, '{first.value}' ({first.file}:{first.line}"
                                  f"{origin}), and ignores '{item.value}'")
                else:
                    seen[key] = item


def check_asterisk_conf(p: Project) -> Iterator[Finding]:
    """asterisk.conf is read before Asterisk knows its folders: templates there
    are never used, and a relative #include is looked up in the folder Asterisk
    was built with (not the -C one); deploy writes ``site/`` includes absolute."""
    path = p.source_dir / "asterisk.conf"
    if not path.is_file():
        return
    for no, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = _strip_comment(raw)
        m = re.match(r"^\[([^\]]+)\]\(([^)]*)\)", line)
        if m and "!" in [o.strip() for o in m.group(2).split(",")]:
            yield Finding("asterisk.conf", no, "SB-ASTCONF",
                          f"[{m.group(1)}] is a template: Asterisk ignores it here and uses "
                          f"its built-in values; make it a plain section")
        m = INCLUDE_RE.match(line)
        if m and not os.path.isabs(m.group(2)) and not m.group(2).startswith(f"{SITE}/"):
            yield Finding("asterisk.conf", no, "SB-ASTCONF",
                          f"#include \"{m.group(2)}\" would be looked up in the folder Asterisk "
                          f"was built with, not the configuration folder; only {SITE}/ files "
                          f"can be included here (deploy writes their path absolute)")


def check_outside_includes(p: Project) -> Iterator[Finding]:
    """On a node (deploy): every #include of a file outside the configuration
    (secrets) must exist, or Asterisk ignores the whole including file."""
    if not p.strict:
        return
    for conf in p.confs:
        for file, line, target in conf.includes_outside:
            if not os.path.exists(target):
                yield Finding(file, line, "SB-CONF",
                              f"#include \"{target}\": no such file on this node; Asterisk "
                              f"would ignore all of {conf.name}")


def needed_modules(tree: Path) -> set[str]:
    exe = Path(sys.executable).parent / "asterisklint"
    try:
        proc = subprocess.run([str(exe), "modules-show", "--asterisk-version", "22",
                               "extensions.conf"], cwd=tree, capture_output=True, text=True,
                              timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return set(re.findall(r"^load => (\S+\.so)$", proc.stdout, re.M))


def check_site_files_used(p: Project) -> Iterator[Finding]:
    included = {name for conf in p.confs for name in conf.included}
    for f in sorted((p.tree / SITE).glob("*.conf")):
        name = f"{SITE}/{f.name}"
        if name not in included:
            yield Finding(name, 1, "SB-CONF", f"no file #includes {name}: Asterisk never "
                          f"reads it (a typo in its name?)")


CHECKS = (check_modules, check_module_deps, check_once, check_asterisk_conf,
          check_outside_includes, check_site_files_used, check_apps, check_functions,
          check_targets, check_queues, check_agi, check_variables, check_prompts,
          check_endpoints, check_ami, check_secrets)


# --- assembling and running ----------------------------------------------------------

def source_files(dialplan_dir: Path, site_dir: Path) -> dict[str, Path]:
    """What a deploy manages, by its name under the configuration folder:
    ``extensions.conf`` ... from dialplan/, ``site/dids.conf`` ... from the site's
    folder."""
    files = {f.name: f for f in sorted(dialplan_dir.glob("*.conf"))}
    if site_dir.is_dir():
        files.update({f"{SITE}/{f.name}": f for f in sorted(site_dir.glob("*.conf"))})
    return files


def render(name: str, text: str, confdir: Path) -> str:
    """The text deploy writes: as in the source, except that asterisk.conf's
    ``#include "site/..."`` becomes absolute under ``confdir`` (Asterisk resolves
    includes in asterisk.conf against its built-in folder)."""
    if name != "asterisk.conf":
        return text
    return INCLUDE_RE.sub(lambda m: f'{m.group(1)}"{confdir / m.group(2)}"'
                          if m.group(2).startswith(f"{SITE}/") else m.group(0), text)


def desired_files(dialplan_dir: Path, site_dir: Path, confdir: Path) -> dict[str, str]:
    return {name: render(name, path.read_text(encoding="utf-8"), confdir)
            for name, path in source_files(dialplan_dir, site_dir).items()}


def assemble(dialplan_dir: Path, site_dir: Path, into: Path) -> None:
    """dialplan/*.conf plus the site files as site/, as deploy writes them."""
    (into / SITE).mkdir(exist_ok=True)
    for name, text in desired_files(dialplan_dir, site_dir, into).items():
        (into / name).write_text(text, encoding="utf-8")


def run_asterisklint(tree: Path) -> list[Finding]:
    exe = Path(sys.executable).parent / "asterisklint"
    try:
        proc = subprocess.run([str(exe), "dialplan-check", "--asterisk-version", "22",
                               "--func-odbc", "", "extensions.conf"], cwd=tree,
                              capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [Finding("extensions.conf", 0, "LINT", f"asterisklint could not run: {exc}")]
    findings = []
    for line in (proc.stdout + proc.stderr).splitlines():
        m = re.match(r"^(\S+?):(\d+) ([EW]_[A-Z_]+): (.*)$", line.strip())
        if m:
            findings.append(Finding(m.group(1), int(m.group(2)), m.group(3), m.group(4)))
    if proc.returncode != 0 and not findings:
        findings.append(Finding("extensions.conf", 0, "LINT",
                                f"asterisklint failed: {(proc.stderr or proc.stdout)[:200]}"))
    return findings


def check(dialplan_dir: Path = DIALPLAN_DIR, site_dir: Path | None = None, *,
          strict: bool = False) -> list[Finding]:
    """Every finding for ``dialplan_dir`` with the site files of ``site_dir``
    (default: its site.example).  ``strict`` (deploy, on a node): files included
    from outside the configuration (secrets) must exist too."""
    site_dir = site_dir or dialplan_dir / "site.example"
    findings: list[Finding] = []
    for required in ("extensions.conf", "queues.conf", "pjsip.conf", "manager.conf"):
        if not (dialplan_dir / required).is_file():
            findings.append(Finding(required, 0, "SB-CONF", "missing"))
    if not site_dir.is_dir():
        findings.append(Finding(f"{SITE}/", 0, "SB-CONF",
                                f"no site files at {site_dir} (start from dialplan/site.example)"))
    if findings:
        return findings
    with tempfile.TemporaryDirectory(prefix="sb-dialplan-") as tmp:
        tree = Path(tmp)
        assemble(dialplan_dir, site_dir, tree)
        confs = {name: load_conf(tree / name, tree) for name in
                 ("extensions.conf", "queues.conf", "pjsip.conf", "manager.conf")}
        others = [load_conf(f, tree) for f in sorted(tree.glob("*.conf"))
                  if f.name not in confs]
        steps = dialplan_steps(confs["extensions.conf"])
        project = Project(tree, dialplan_dir, dialplan_dir / LINT_DIR_NAME,
                          dialplan_dir / "sounds", confs["extensions.conf"],
                          confs["queues.conf"], confs["pjsip.conf"], confs["manager.conf"],
                          others, Dialplan(steps, confs["extensions.conf"].sections),
                          strict=strict)
        for conf in (*confs.values(), *others):
            findings += conf.findings
        findings += run_asterisklint(tree)
        for fn in CHECKS:
            findings += fn(project)
    return sorted(set(findings))
