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
                the dialplan never reads (switchboard/agi/contract.py)
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
    SB-TLS, SB-IDENTIFY, SB-EDGE, SB-E911
                the SIP edge (switchboard/dialplan_tools/checks_edge.py): phones in clear,
                certificates, SRTP, who can be the carrier, the firewall's
                inputs, 911 locations
    SB-CLUSTER, SB-FRONT
                a node behind the SIP front (switchboard/dialplan_tools/checks_cluster.py):
                site/cluster.conf against the node's own files, the device
                states shared with the other nodes, ``kamailio -c``
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from switchboard.dialplan_tools.checks_cluster import check_cluster
from switchboard.dialplan_tools.checks_config import (
    check_ami,
    check_asterisk_conf,
    check_attestation,
    check_endpoints,
    check_module_deps,
    check_modules,
    check_once,
    check_outside_includes,
    check_secrets,
    check_site_files_used,
    endpoints,
)
from switchboard.dialplan_tools.checks_edge import check_e911, check_edge, check_identify, check_tls
from switchboard.dialplan_tools.checks_flow import (
    check_agi,
    check_apps,
    check_functions,
    check_prompts,
    check_queues,
    check_targets,
    check_variables,
)
from switchboard.dialplan_tools.checks_recording import check_recording
from switchboard.dialplan_tools.conf import (
    DIALPLAN_DIR,
    INCLUDE_RE,
    LINT_DIR_NAME,
    SITE,
    Finding,
    load_conf,
)
from switchboard.dialplan_tools.model import (
    Dialplan,
    dialplan_steps,
)
from switchboard.dialplan_tools.project import (
    Project,
    explicit_loads,
    queue_strategies,
)
from switchboard.dialplan_tools.tree import assemble, desired_files, render, source_files

__all__ = ["DIALPLAN_DIR", "INCLUDE_RE", "SITE", "assemble", "check", "desired_files",
           "endpoints", "explicit_loads", "load_conf", "queue_strategies", "render",
           "source_files"]

CHECKS = (check_modules, check_module_deps, check_once, check_asterisk_conf,
          check_outside_includes, check_site_files_used, check_apps, check_functions,
          check_targets, check_queues, check_agi, check_variables, check_prompts,
          check_endpoints, check_ami, check_secrets, check_attestation, check_edge,
          check_tls, check_identify, check_e911, check_cluster, check_recording)




# asterisklint's own entry point, run by this interpreter: wherever the package
# is installed, whether or not its console script is on PATH
_LINT = ("import os, sys; from asterisklint.main import main; "
         "sys.exit(main(sys.argv[1:], os.environ))")


def run_asterisklint(tree: Path) -> list[Finding]:
    try:
        proc = subprocess.run([sys.executable, "-c", _LINT, "dialplan-check",
                               "--asterisk-version", "22",
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
