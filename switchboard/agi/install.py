"""``switchboard agi install``: put the process-AGI fallback on an Asterisk node.

The dialplan runs ``AGI(switchboard-agi,verify)`` when the FastAGI server cannot
answer.  Asterisk looks for ``switchboard-agi`` in its AGI folder and starts it
with its own environment, which carries none of the settings the handlers need.
So the installed file is a two-line script that starts this installation's
``switchboard-agi`` with an empty environment and ``--config FILE``; the
settings come from that one file only.

The file is owned by root, group of the Asterisk user, mode 0640: Asterisk can
read it, not change it, nobody else can read it (it holds the database URL).
``switchboard-agi`` refuses a file with any other owner or looser mode, and a
missing file, each with a log line and the fail-closed answer (``error``).
"""

from __future__ import annotations

import contextlib
import grp
import os
import re
import stat
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from switchboard import db
from switchboard.files import replace_file
from switchboard.settings import ConfigError, Settings

DEFAULT_CONFIG = Path("/etc/switchboard/agi.conf")
SCRIPT_NAME = "switchboard-agi"
# settings the handlers use, copied into a new config file when set here
COPIED = ("SB_AGI_DB_ROLE", "SB_DEFAULT_REGION", "SB_VERIFY_TRIES", "SB_DTMF_TIMEOUT_MS",
          "SB_ARGON2_TIME_COST", "SB_ARGON2_MEMORY_KIB", "SB_ARGON2_PARALLELISM",
          "SB_LOG_LEVEL")
_LINE_RE = re.compile(r"^(SB_[A-Z0-9_]{1,60})=(.*)$")
MAX_CONFIG_BYTES = 64 << 10


class InstallError(RuntimeError):
    """The fallback cannot be installed as asked; the message says why."""


def read_config(path: Path) -> dict[str, str]:
    """``KEY=value`` lines (``SB_*`` only; ``#`` comments; values may be quoted).
    Raises ConfigError when the file is missing, not root's, writable by its
    group, readable by others, too large, or holds anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} does not exist: install it with 'switchboard agi "
                          f"install'") from exc
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read: {exc.strerror}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{path} is not a regular file")
        if st.st_uid != 0:
            raise ConfigError(f"{path} must be owned by root (it is uid {st.st_uid})")
        if st.st_mode & 0o027:
            raise ConfigError(f"{path} has mode {stat.S_IMODE(st.st_mode):04o}: it must "
                              f"not be writable by its group nor readable by others (0640)")
        if st.st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path} is larger than {MAX_CONFIG_BYTES} bytes")
        text = os.read(fd, MAX_CONFIG_BYTES + 1).decode("utf-8", "replace")
    finally:
        os.close(fd)
    values: dict[str, str] = {}
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE_RE.match(line)
        if not m:
            raise ConfigError(f"{path}:{no}: not SB_NAME=value")
        value = m.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[m.group(1)] = value
    return values


def _render_config(env: Mapping[str, str], settings: Settings) -> str:
    pepper = env.get("SB_PIN_PEPPER_FILE", "")
    if not pepper or not os.path.isabs(pepper):
        raise InstallError("set SB_PIN_PEPPER_FILE to the pepper file's absolute path (the "
                           "same file the agi-server uses) before installing")
    try:
        url = db.service_url(settings, "agi")  # sb_agi's login, never the owner's
    except (db.MigrationError, ConfigError) as exc:
        raise InstallError(f"no database to point the fallback at: {exc}") from exc
    lines = [f"# switchboard process-AGI fallback settings, written "
             f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC by 'switchboard agi install'.",
             "# Read by switchboard-agi --config; root-owned, mode 0640, group of the "
             "Asterisk user.",
             f"SB_AGI_DATABASE_URL={url}", f"SB_PIN_PEPPER_FILE={pepper}",
             "SB_LOG_FORMAT=json"]
    if env.get("SB_AUDIT_KEY_FILE"):  # the same key as the agi-server's: rows signed
        lines.append(f"SB_AUDIT_KEY_FILE={env['SB_AUDIT_KEY_FILE']}")
    lines += [f"{k}={env[k]}" for k in COPIED if env.get(k)]
    return "\n".join(lines) + "\n"


def install(agidir: Path, config: Path, group: str, env: Mapping[str, str],
            settings: Settings) -> list[str]:
    """Write the script (and the config file when it does not exist yet); return
    what was done, one line each."""
    if os.geteuid() != 0:
        raise InstallError("run as root: the files must belong to root")
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError as exc:
        raise InstallError(f"no group {group!r}: give the group Asterisk runs as with "
                           f"--group") from exc
    if not agidir.is_dir():
        raise InstallError(f"{agidir} is not a folder: give Asterisk's astagidir with "
                           f"--agidir")
    if not config.is_absolute():
        raise InstallError(f"--config {config} must be an absolute path")
    entry = Path(sys.executable).parent / SCRIPT_NAME
    if not entry.is_file():
        raise InstallError(f"{entry} not found: install switchboard into this environment "
                           f"first")
    done: list[str] = []
    if config.exists():
        try:
            read_config(config)
        except ConfigError as exc:
            raise InstallError(f"the existing settings file is refused: {exc}") from exc
        done.append(f"kept {config} (existing settings)")
    else:
        config.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        replace_file(config, _render_config(env, settings).encode(), uid=0, gid=gid,
                     mode=0o640)
        done.append(f"wrote {config} (root:{group} 0640)")
    script = (f"#!/bin/sh\n"
              f"# switchboard process-AGI fallback, written by 'switchboard agi install'.\n"
              f"# Settings come from {config} only, never from Asterisk's environment.\n"
              f"exec /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "
              f"{entry} --config {config} \"$@\"\n")
    target = agidir / SCRIPT_NAME
    replace_file(target, script.encode(), uid=0, gid=gid, mode=0o750)
    done.append(f"wrote {target} (root:{group} 0750) -> {entry}")
    pepper = read_config(config).get("SB_PIN_PEPPER_FILE", "")
    with contextlib.suppress(OSError):
        st = os.stat(pepper)
        if not (st.st_gid == gid and st.st_mode & 0o040) and not st.st_mode & 0o004:
            done.append(f"warning: {pepper} is not readable by group {group}: the fallback "
                        f"will answer 'error' until it is (chgrp {group}, chmod 0640)")
    return done
