"""SB-RECORDING: the site's recording and listening-in settings
(site/recording.conf, included in extensions.conf's [globals]; docs/recordings.md).

- RECORD_QUEUES: all, none, or queue names that queues.conf defines (and
  ``supervisors``, the transfer to the supervisors' phones);
- RECORD_ANNOUNCE yes needs RECORD_ANNOUNCE_PROMPT, a prompt the node has;
- SPY_TONE yes or no;
- SUPERVISOR_PHONES: PJSIP endpoints pjsip.conf defines, joined by ``&``;
- recording needs app_mixmonitor, listening in app_chanspy and app_originate,
  a phone's transfer res_pjsip_refer (modules.conf).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from switchboard.dialplan_tools.checks_config import endpoints
from switchboard.dialplan_tools.conf import Finding, Item
from switchboard.dialplan_tools.project import Project, explicit_loads

SETTINGS = ("RECORD_QUEUES", "RECORD_ANNOUNCE", "RECORD_ANNOUNCE_PROMPT", "SPY_TONE",
            "SUPERVISOR_PHONES")
MODULES = ("app_mixmonitor.so", "app_chanspy.so", "app_originate.so", "res_pjsip_refer.so")
PROMPT_RE = re.compile(r"^[A-Za-z0-9_/-]{1,80}$")


def _given(p: Project) -> dict[str, Item]:
    out: dict[str, Item] = {}
    for i in p.extensions.items:
        if i.section == "globals" and i.key in SETTINGS:
            out[i.key] = i  # the last one wins, as in Asterisk
    return out


def _sounds(p: Project) -> set[str]:
    sounds = {x.strip() for x in (p.lint_dir / "sounds-en-core.txt").read_text().splitlines()}
    if p.sounds_dir.is_dir():
        sounds |= {str(f.relative_to(p.sounds_dir).with_suffix(""))
                   for f in p.sounds_dir.rglob("*") if f.is_file()}
    return sounds


def check_recording(p: Project) -> Iterator[Finding]:
    given = _given(p)
    if not any(i.file.endswith("recording.conf") for i in given.values()):
        yield Finding(p.extensions.name, 1, "SB-RECORDING",
                      "no site/recording.conf: say which queue calls are recorded "
                      "(RECORD_QUEUES = all, none or queue names; docs/recordings.md)")
        return
    queues = {n for n, (_, _, tpl) in p.queues.sections.items()
              if not tpl and n != "general"} | {"supervisors"}
    rq = given.get("RECORD_QUEUES")
    if rq is not None and rq.value not in ("all", "none"):
        names = [q.strip() for q in rq.value.split(",")]
        bad = [q for q in names if q not in queues]
        if bad or not names:
            yield Finding(rq.file, rq.line, "SB-RECORDING",
                          f"RECORD_QUEUES={rq.value!r}: {', '.join(bad) or 'empty'} is not a "
                          f"queue (all, none, or some of {', '.join(sorted(queues))})")
    for key in ("RECORD_ANNOUNCE", "SPY_TONE"):
        item = given.get(key)
        if item is not None and item.value not in ("yes", "no"):
            yield Finding(item.file, item.line, "SB-RECORDING",
                          f"{key}={item.value!r} must be yes or no")
    ann, prompt = given.get("RECORD_ANNOUNCE"), given.get("RECORD_ANNOUNCE_PROMPT")
    if ann is not None and ann.value == "yes":
        name = prompt.value if prompt is not None else ""
        if not PROMPT_RE.match(name):
            yield Finding(ann.file, ann.line, "SB-RECORDING",
                          "RECORD_ANNOUNCE=yes needs RECORD_ANNOUNCE_PROMPT, a prompt's name "
                          "(custom/this-call-may-be-recorded, without extension)")
        elif name not in _sounds(p):
            where = prompt or ann
            yield Finding(where.file, where.line, "SB-RECORDING",
                          f"RECORD_ANNOUNCE_PROMPT={name!r} is not a prompt this node has "
                          "(the core sounds, or dialplan/sounds/; a site's own recording "
                          "goes in sounds/en/custom/)")
    phones = given.get("SUPERVISOR_PHONES")
    if phones is not None and phones.value:
        known = endpoints(p.pjsip)
        for part in phones.value.split("&"):
            m = re.fullmatch(r"PJSIP/([A-Za-z0-9_.-]{1,40})", part.strip())
            if m is None or m.group(1) not in known:
                yield Finding(phones.file, phones.line, "SB-RECORDING",
                              f"SUPERVISOR_PHONES: {part.strip()!r} is not a phone pjsip.conf "
                              "defines (PJSIP/NNNN&PJSIP/NNNN)")
    loads = explicit_loads(p.modules) if p.modules is not None else None
    if loads is not None:
        for name in MODULES:
            if name not in loads:
                yield Finding("modules.conf", 1, "SB-RECORDING",
                              f"{name} is not loaded: recording, listening in and transfers "
                              "need it")
