"""The files of a deploy: what changes between the configuration to deploy
and the folder Asterisk reads (``plan``), what each change needs reloaded,
the checks before anything is written, atomic writes that keep owner, group
and mode, the previous files kept for a rollback, and the lock that makes one
deploy at a time per folder.  switchboard/dialplan_tools/deploy.py carries a
deploy out and confirms it against the running Asterisk."""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from switchboard.ami_listener.actions import AmiActionError
from switchboard.dialplan_tools import dialcheck
from switchboard.files import replace_file

DeployError = AmiActionError  # (deploy's name for it)
STATE = ".switchboard"
# what to reload when a file changed (None: only a restart applies it)
RELOADS: dict[str, str | None] = {
    "extensions.conf": "dialplan reload",
    "pjsip.conf": "module reload res_pjsip.so",
    "queues.conf": "queue reload all",
    "manager.conf": "manager reload",
    "logger.conf": "logger reload",
    "musiconhold.conf": "moh reload",
    "cdr.conf": "module reload cdr",
    "cdr_manager.conf": "module reload cdr_manager.so",
    "cel.conf": "module reload cel",
    "features.conf": "module reload features",
    "acl.conf": "module reload acl",
    "udptl.conf": "module reload udptl",
    "ccss.conf": "module reload ccss",
    "indications.conf": "module reload indications",
    "pjproject.conf": "module reload res_pjproject.so",
    "modules.conf": None,
    "asterisk.conf": None,
}


@dataclass(frozen=True)
class Change:
    name: str  # under the configuration folder: "extensions.conf", "site/dids.conf"
    old: str | None  # None: the file does not exist there
    new: str | None  # None: the file goes away (rollback to "did not exist")


def plan(desired: dict[str, str], confdir: Path) -> list[Change]:
    changes = []
    for name, new in sorted(desired.items()):
        target = confdir / name
        old = target.read_text(encoding="utf-8") if target.exists() else None
        if old != new:
            changes.append(Change(name, old, new))
    return changes


def short_diff(changes: Iterable[Change], limit: int = 40) -> list[str]:
    out: list[str] = []
    for c in changes:
        lines = list(difflib.unified_diff((c.old or "").splitlines(),
                                          (c.new or "").splitlines(),
                                          f"live/{c.name}", f"new/{c.name}", lineterm="", n=1))
        added = sum(1 for x in lines if x.startswith("+") and not x.startswith("+++"))
        removed = sum(1 for x in lines if x.startswith("-") and not x.startswith("---"))
        out.append(f"{c.name}: +{added} -{removed}"
                   + (" (new file)" if c.old is None else "")
                   + (" (removed)" if c.new is None else ""))
        body = [x for x in lines if not x.startswith(("---", "+++"))]
        out += ["    " + x for x in body[:limit]]
        if len(body) > limit:
            out.append(f"    ... {len(body) - limit} more lines")
    return out


def includers(confdir_texts: dict[str, str]) -> dict[str, str]:
    """site file -> the configuration file that #includes it."""
    out: dict[str, str] = {}
    for name, text in confdir_texts.items():
        if name.startswith(f"{dialcheck.SITE}/"):
            continue
        for m in dialcheck.INCLUDE_RE.finditer(text):
            target = m.group(2)
            rel = target.split(f"/{dialcheck.SITE}/")[-1] if os.path.isabs(target) else None
            key = f"{dialcheck.SITE}/{rel}" if rel else target
            out.setdefault(key, name)
    return out


def includers_for(changes: Iterable[Change], confdir: Path) -> dict[str, str]:
    """Who includes each site file, from the new texts and the live ones."""
    return includers({f.name: f.read_text(encoding="utf-8", errors="replace")
                      for f in confdir.glob("*.conf")} | {c.name: c.new or "" for c in changes})


def same_folder(a: str, b: Path) -> bool:
    return Path(a).resolve() == b.resolve()


def actions_for(changes: Iterable[Change], includer: dict[str, str]
                ) -> tuple[list[str], list[str]]:
    """(AMI commands to run, files that only a restart applies).  A site file is
    reloaded like the file that includes it."""
    reloads: list[str] = []
    restart: list[str] = []
    for c in changes:
        owner = includer.get(c.name, c.name) if c.name.startswith(f"{dialcheck.SITE}/") \
            else c.name
        cmd = RELOADS.get(owner, f"module reload {owner}")
        if cmd is None:
            restart.append(c.name)
        elif cmd not in reloads:
            reloads.append(cmd)
    return reloads, restart


def preflight(changes: Iterable[Change], confdir: Path) -> None:
    """Refuse before anything is written when a file could not keep its owner
    (only root may give a file to someone else) or its folder is not writable."""
    euid = os.geteuid()
    for c in changes:
        target = confdir / c.name
        folder = target.parent if target.parent.exists() else confdir
        if not os.access(folder, os.W_OK):
            raise DeployError(f"cannot write into {folder}: run as its owner or as root")
        if euid != 0 and target.exists() and target.stat().st_uid != euid:
            raise DeployError(f"{target} belongs to uid {target.stat().st_uid}: only root "
                              f"can replace it and keep its owner")


def write_atomic(path: Path, text: str | None, confdir: Path) -> None:
    """Write through a temporary file, fsync, rename: a half-written file is
    never live.  The file keeps its owner, group and mode; a new one gets the
    configuration folder's owner and group, mode 640."""
    if text is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    folder = confdir.stat()
    if not path.parent.exists():
        path.parent.mkdir(mode=folder.st_mode & 0o7777)
        if os.geteuid() == 0:
            os.chown(path.parent, folder.st_uid, folder.st_gid)
    st = path.stat() if path.exists() else None
    # a file Asterisk reads: keep its owner (preflight refused what we may not
    # give back); a new one gets the folder's owner and group, mode 640
    replace_file(path, text.encode("utf-8"), uid=st.st_uid if st else folder.st_uid,
                 gid=st.st_gid if st else folder.st_gid,
                 mode=st.st_mode & 0o7777 if st else 0o640, strict_owner=False)


def previous_dir(confdir: Path) -> Path:
    return confdir / STATE / "previous"


def keep_previous(confdir: Path, changes: list[Change]) -> None:
    """Remember the live version of every file about to change (absent: null)."""
    prev = previous_dir(confdir)
    if prev.exists():
        shutil.rmtree(prev)
    prev.mkdir(parents=True, mode=0o700)
    manifest = {}
    for c in changes:
        manifest[c.name] = c.old is not None
        if c.old is not None:
            (prev / c.name).parent.mkdir(parents=True, exist_ok=True)
            (prev / c.name).write_text(c.old, encoding="utf-8")
    (prev / "manifest.json").write_text(json.dumps(manifest, indent=1))


def previous_changes(confdir: Path) -> list[Change]:
    prev = previous_dir(confdir)
    try:
        manifest = json.loads((prev / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise DeployError(f"no previous version kept in {prev}") from exc
    changes = []
    for name, existed in sorted(manifest.items()):
        if ".." in Path(name).parts or os.path.isabs(name):
            raise DeployError(f"{prev / 'manifest.json'} names {name!r}: not a file of "
                              f"the configuration folder")
        live = confdir / name
        changes.append(Change(name, live.read_text() if live.exists() else None,
                              (prev / name).read_text() if existed else None))
    return changes


@contextlib.contextmanager
def deploy_lock(confdir: Path) -> Iterator[None]:
    """One deploy or rollback at a time per configuration folder."""
    state = confdir / STATE
    state.mkdir(mode=0o700, exist_ok=True)
    with open(state / "lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise DeployError(f"another deploy or rollback is running on {confdir}") from exc
        yield


def write_all(changes: list[Change], confdir: Path, attr: str) -> None:
    """Write ``c.new`` (or ``c.old``) of every change; on an OS error put back
    what was already written, then raise DeployError."""
    done: list[Change] = []
    try:
        for c in changes:
            write_atomic(confdir / c.name, getattr(c, attr), confdir)
            done.append(c)
    except OSError as exc:
        back = "old" if attr == "new" else "new"
        for c in done:
            with contextlib.suppress(OSError):
                write_atomic(confdir / c.name, getattr(c, back), confdir)
        raise DeployError(f"writing {confdir}: {exc}") from exc
