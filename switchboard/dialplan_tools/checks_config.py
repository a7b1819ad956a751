"""Checks of the rest of the configuration: endpoints, AMI, secrets, modules
and their dependencies, options read once, asterisk.conf, includes, site files."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from switchboard.ami_listener.fields import KEPT_EVENTS
from switchboard.dialplan_tools.conf import (
    INCLUDE_RE,
    PRODUCT_SITE_FILES,
    SECRET_KEYS,
    SITE,
    Conf,
    Finding,
    Item,
    strip_comment,
)
from switchboard.dialplan_tools.model import (
    effective_items,
    pjsip_objects,
)
from switchboard.dialplan_tools.project import (
    Project,
    explicit_loads,
    listed,
)


def endpoints(pjsip: Conf) -> set[str]:
    """Sections of type endpoint, directly or through their templates; a name
    that is re-opened for other types ([2001] endpoint and [2001] aor) counts."""
    return {name for name, _, _, _ in pjsip_objects(pjsip, "endpoint")}


def check_endpoints(p: Project) -> Iterator[Finding]:
    known = endpoints(p.pjsip)
    refs: list[tuple[str, int, str]] = []
    for s in p.dialplan.steps:
        # PJSIP/endpoint, or PJSIP/number@endpoint
        refs += [(s.file, s.line, n) for n in
                 re.findall(r"PJSIP/(?:[^@,)&/]+@)?([A-Za-z0-9_.-]+)", s.args)]
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
    known = listed(p.lint_dir / "asterisk22-modules.txt", r"^(\S+\.so)\s")
    for item in modules.items:
        if item.key == "load" and item.value not in known:
            yield Finding(item.file, item.line, "SB-MODULE",
                          f"{item.value} is not a module of Asterisk 22.10.1")
    loads = explicit_loads(modules)
    if loads is not None:
        # STIR_SHAKEN() runs only on the identity branch of [sb-attest]: its
        # modules are needed when the site says so (check_attestation)
        for name in sorted(needed_modules(p.tree) - set(loads) - set(STIR_MODULES)):
            yield Finding("modules.conf", 1, "SB-MODULE",
                          f"the dialplan needs {name} but modules.conf does not load it "
                          f"(autoload = no)")
        for name, why in sorted(config_needs(p).items()):
            if name not in loads:
                yield Finding("modules.conf", 1, "SB-MODULE",
                              f"{why} needs {name}, but modules.conf does not load it "
                              f"(autoload = no)")


ATTEST_SOURCES = ("verstat", "verstat-a", "identity", "none")
STIR_MODULES = ("res_stir_shaken.so", "res_pjsip_stir_shaken.so")


def check_attestation(p: Project) -> Iterator[Finding]:
    """CALLER_ID_ATTEST (site/globals.conf) says what the carrier gives about the
    caller ID's attestation; `identity` needs Asterisk's STIR/SHAKEN modules and
    a verification profile on the trunk."""
    given = [i for i in p.extensions.items if i.section == "globals"
             and i.key == "CALLER_ID_ATTEST"]
    if not given:
        yield Finding(p.extensions.name, 1, "SB-ATTEST",
                      "CALLER_ID_ATTEST is not set in site/globals.conf: say what the carrier "
                      f"gives about caller-ID attestation ({', '.join(ATTEST_SOURCES)}; "
                      f"docs/ops.md)")
        return
    item = given[-1]
    if item.value not in ATTEST_SOURCES:
        yield Finding(item.file, item.line, "SB-ATTEST",
                      f"CALLER_ID_ATTEST={item.value!r} is not one of "
                      f"{', '.join(ATTEST_SOURCES)}")
        return
    if item.value != "identity":
        return
    loads = explicit_loads(p.modules) if p.modules is not None else None
    if loads is not None:
        for name in STIR_MODULES:
            if name not in loads:
                yield Finding(item.file, item.line, "SB-ATTEST",
                              f"CALLER_ID_ATTEST=identity needs {name}, but modules.conf "
                              f"does not load it (add it to site/modules.conf)")
    profiled = [s for s in endpoints(p.pjsip) if any(
        i.key == "stir_shaken_profile" and i.value.strip()
        for i in effective_items(p.pjsip, s))]
    if not profiled:
        yield Finding(item.file, item.line, "SB-ATTEST",
                      "CALLER_ID_ATTEST=identity, but no PJSIP endpoint has "
                      "stir_shaken_profile set: Asterisk verifies no Identity header "
                      "(set it on the carrier's endpoint in site/trunk.conf)")


def config_needs(p: Project) -> dict[str, str]:
    """Modules the configuration (not the dialplan) needs, and why."""
    def objects(kind: str) -> list[str]:
        return [name for name, _, _, _ in pjsip_objects(p.pjsip, kind)]

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
        line = strip_comment(raw)
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


# asterisklint names one module, func_pjsip.so, for every PJSIP_* function;
# Asterisk 22 has one module per function
PJSIP_FUNCTION_MODULES = {"PJSIP_AOR": "func_pjsip_aor.so",
                          "PJSIP_CONTACT": "func_pjsip_contact.so",
                          "PJSIP_ENDPOINT": "func_pjsip_endpoint.so"}


def needed_modules(tree: Path) -> set[str]:
    exe = Path(sys.executable).parent / "asterisklint"
    try:
        proc = subprocess.run([str(exe), "modules-show", "--asterisk-version", "22",
                               "extensions.conf"], cwd=tree, capture_output=True, text=True,
                              timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return set()
    needed = set(re.findall(r"^load => (\S+\.so)$", proc.stdout, re.M))
    if "func_pjsip.so" in needed:
        needed.discard("func_pjsip.so")
        text = "\n".join(f.read_text(errors="replace") for f in tree.rglob("*.conf"))
        needed |= {module for name, module in PJSIP_FUNCTION_MODULES.items()
                   if f"{name}(" in text}
    return needed


def check_site_files_used(p: Project) -> Iterator[Finding]:
    included = {name for conf in p.confs for name in conf.included}
    for f in sorted((p.tree / SITE).glob("*.conf")):
        name = f"{SITE}/{f.name}"
        if name not in included and f.name not in PRODUCT_SITE_FILES:
            yield Finding(name, 1, "SB-CONF", f"no file #includes {name}: Asterisk never "
                          f"reads it (a typo in its name?)")


