"""``switchboard dialplan deploy|rollback --node NAME:CONFDIR:SITE ...``: a
rolling deploy to several nodes behind the front (issue 23).

One node at a time, in the order given, each with the single-node deploy
(check, write, reload, confirm, or its own roll back: switchboard/dialplan_tools/deploy.py)
and each confirmed before the next starts.  The first node that refuses or
fails stops the rollout: the nodes before it run the new files, it and the
nodes after it keep the old ones.  One audit row says which node is which
(beside each node's own dialplan-deploy row).  Each node's AMI address is its
``ami`` in its site's cluster.conf; the ops user and secret are the same on
every node (SB_AMI_OPS_USER, SB_AMI_OPS_SECRET[_FILE]).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from switchboard.dialplan_tools.deploy import AmiOps, DeployError, deploy, record, rollback
from switchboard.dialplan_tools.front import CLUSTER_FILE, parse_cluster

_SPEC = re.compile(r"^([A-Za-z][A-Za-z0-9_-]{0,39}):([^:]+):([^:]+)$")


@dataclass(frozen=True)
class NodeTarget:
    name: str
    confdir: Path
    site: Path
    ami: AmiOps


def node_targets(specs: list[str], ops: AmiOps) -> list[NodeTarget]:
    """``NAME:CONFDIR:SITE`` each; the node's AMI from SITE/cluster.conf."""
    out: list[NodeTarget] = []
    for spec in specs:
        m = _SPEC.match(spec)
        if not m:
            raise DeployError(f"--node {spec!r}: say NAME:CONFDIR:SITE (the node's systemname, "
                              "its Asterisk configuration folder, its site files)")
        name, confdir, site = m.group(1), Path(m.group(2)), Path(m.group(3))
        if name in (t.name for t in out):
            raise DeployError(f"--node {name} given twice")
        if not confdir.is_dir() or not site.is_dir():
            raise DeployError(f"--node {name}: {confdir if not confdir.is_dir() else site} is "
                              "not a folder")
        cluster, findings = parse_cluster(site / CLUSTER_FILE)
        node = cluster.node(name) if cluster is not None else None
        if node is None:
            raise DeployError(f"--node {name}: its site's {CLUSTER_FILE} does not name it "
                              + "; ".join(str(f) for f in findings))
        out.append(NodeTarget(name, confdir.absolute(), site.absolute(),
                              dataclasses.replace(ops, host=node.ami_host, port=node.ami_port)))
    return out


async def rollout(dialplan_dir: Path, targets: list[NodeTarget], *, undo: bool,
                  database_url: str | None, say: Any = print) -> int:
    """Deploy (or, ``undo``, roll back) node by node; stop at the first refusal."""
    what = "rollback" if undo else "deploy"
    done: list[str] = []
    stopped: tuple[str, str] | None = None
    for i, t in enumerate(targets):
        say(f"== {what} {i + 1}/{len(targets)}: node {t.name} ({t.confdir}, AMI "
            f"{t.ami.host}:{t.ami.port})")
        try:
            if undo:
                await rollback(t.confdir, t.ami, dry_run=False, database_url=database_url,
                               say=say)
            else:
                await deploy(dialplan_dir, t.confdir, t.ami, dry_run=False,
                             database_url=database_url, site_dir=t.site, say=say)
        except DeployError as exc:
            stopped = (t.name, str(exc))
            break
        done.append(t.name)
    untouched = [t.name for t in targets[len(done) + (1 if stopped else 0):]]
    new, old = ("previous", "current") if undo else ("new", "old")
    detail = (f"{new} files: {','.join(done) or '-'}; refused: "
              f"{stopped[0] if stopped else '-'}; {old} files: "
              f"{','.join(([stopped[0]] if stopped else []) + untouched) or '-'}")
    await record(database_url, f"dialplan-roll{'back-all' if undo else 'out'}",
                 "stopped" if stopped else "ok", detail, say)
    say(f"{what}: {detail}")
    if stopped:
        raise DeployError(f"{what} stopped at node {stopped[0]}: {stopped[1]}")
    return 0
