"""Checking the audit log against its key and its checkpoints (migration 0009;
the writing side is switchboard/auditlog.py).

Threat model (docs/security.md): whoever holds only the database, even as its
owner with the triggers off, cannot edit, remove, reorder, forge, cut or
truncate rows unnoticed; whoever holds the database and the audit key can
rewrite rows, but not past the last checkpoint kept where they cannot write.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from switchboard.admin import ops
from switchboard.auditlog import parse_anchors


@dataclass
class Verdict:
    rows: int = 0
    heads: str = ""
    anchors: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify(conn: Any, key: bytes | None, anchor_path: Path | None) -> Verdict:
    chain = await ops.audit_verify(conn)
    v = Verdict(chain.rows, chain.heads)
    if not chain.ok:
        v.problems.append(f"chain {chain.broken_chain}, row {chain.broken_at}: "
                          f"{chain.problem}")
    if key is None:
        v.problems.append("no audit key (SB_AUDIT_KEY_FILE): the rows' signatures could "
                          "not be checked")
        return v
    unsigned = await conn.fetch(
        "SELECT chain, seq, mac IS NULL AS missing FROM audit_log "
        "WHERE mac IS DISTINCT FROM hmac(hash, $1::bytea, 'sha256') "
        "ORDER BY chain, seq LIMIT 5", key)
    for r in unsigned:
        v.problems.append(f"chain {r['chain']}, row {r['seq']}: "
                          + ("not signed (written without the audit key)" if r["missing"]
                             else "its signature does not match (forged or edited)"))
    if anchor_path is None:
        v.problems.append("no checkpoint file given (SB_AUDIT_ANCHOR_FILE)")
        return v
    anchors, problems = parse_anchors(anchor_path, key)
    v.problems += problems
    v.anchors = len(anchors)
    heads = {r["chain"]: (r["seq"], bytes(r["hash"]), bytes(r["genesis"]))
             for r in await conn.fetch("SELECT chain, seq, hash, sb_audit_genesis(chain) "
                                       "AS genesis FROM audit_head")}
    highest: dict[int, int] = {}
    for a in anchors:
        if a.chain not in heads:
            v.problems.append(f"checkpoint for chain {a.chain}, which has no head")
            continue
        head_seq, _, genesis = heads[a.chain]
        if a.seq < highest.get(a.chain, 0):
            v.problems.append(f"chain {a.chain}: checkpoint at row {a.seq} after one at row "
                              f"{highest[a.chain]} (the checkpoint file was reordered)")
        highest[a.chain] = max(highest.get(a.chain, 0), a.seq)
        if a.seq > head_seq:
            v.problems.append(f"chain {a.chain}: checkpointed at row {a.seq} ({a.at}) but "
                              f"the head says row {head_seq} (rows were cut or the log "
                              "truncated)")
            continue
        if a.seq == 0:
            found: bytes | None = genesis
        else:
            got = await conn.fetchval("SELECT hash FROM audit_log WHERE chain = $1 AND "
                                      "seq = $2", a.chain, a.seq)
            found = bytes(got) if got is not None else None
        if found != a.digest:
            v.problems.append(f"chain {a.chain}, row {a.seq}: differs from its checkpoint "
                              f"of {a.at} (history was rewritten)")
    return v




def write_metrics(path: Path, ok: bool) -> None:
    """The verdict for node_exporter's textfile collector (written whole, then
    renamed): the alert fires on a failed check, and on no check for a day."""
    text = ("# HELP sb_audit_verify_ok 1 when the last audit verify found the log and "
            "the recordings intact\n# TYPE sb_audit_verify_ok gauge\n"
            f"sb_audit_verify_ok {1 if ok else 0}\n"
            "# HELP sb_audit_verify_timestamp_seconds when the last audit verify ran\n"
            "# TYPE sb_audit_verify_timestamp_seconds gauge\n"
            f"sb_audit_verify_timestamp_seconds {time.time():.0f}\n")
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
