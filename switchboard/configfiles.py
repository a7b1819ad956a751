"""The files settings come from, and the errors they give: the settings file
(SB_CONFIG, else /etc/switchboard/switchboard.env) under the environment, and
credential files (a secret in ``NAME_FILE``, refused when others may read
it; secrets generated once into a file of mode 600).  switchboard/settings.py
builds the settings from what these return."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
from collections.abc import Mapping, MutableMapping
from pathlib import Path


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


def secret_value(env: Mapping[str, str], name: str) -> str | None:
    """``NAME`` or the first line of the file named by ``NAME_FILE`` (refused
    when others may read it)."""
    value = env.get(name)
    if value:
        return value
    path = env.get(name + "_FILE")
    if path:
        try:
            problem = loose_mode(Path(path), group_may_read=True)
            text = Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE={path!r} cannot be read: {exc.strerror}") from exc
        if problem is not None:
            raise ConfigError(f"{name}_FILE: {problem}: chmod 600 (or 640 for a group)")
        if not text:
            raise ConfigError(f"{name}_FILE={path!r} is empty")
        return text.splitlines()[0]
    return None


def loose_mode(path: Path, *, group_may_read: bool = False) -> str | None:
    """Why a credential file is too open to use (others, or also its group, may
    read it), or None.  Raises FileNotFoundError when it is missing."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXO if group_may_read else stat.S_IRWXG | stat.S_IRWXO):
        return f"{path} is readable by others (mode {mode & 0o777:o})"
    return None


def generated_secret(path: Path, nbytes: int = 24) -> tuple[str, bool]:
    """The secret in ``path``, made once (random, mode 600 from the start) when
    the file does not exist yet; (secret, created)."""
    created = False
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(nbytes) + "\n")
            created = True
    return path.read_text().strip(), created


CONFIG_FILE = Path("/etc/switchboard/switchboard.env")
_CONFIG_LINE = re.compile(r"^(SB_[A-Z0-9_]{1,60})=(.*)$")


def config_file_values(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of the configuration file (``#`` comments, blank
    lines, optional quotes around a value); only SB_* keys.  Refused when
    anyone but its owner may change it, or when a line is not understood."""
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"configuration file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not UTF-8 text") from exc
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(f"configuration file {path} may be changed by others (mode "
                          f"{st.st_mode & 0o777:o}): chmod 644 or 640")
    values: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _CONFIG_LINE.match(line.removeprefix("export ").strip())
        if m is None:
            raise ConfigError(f"{path}:{n}: expected SB_NAME=value")
        value = m.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[m.group(1)] = value
    return values


def apply_config_file(environ: MutableMapping[str, str]) -> Path | None:
    """Settings from the configuration file (SB_CONFIG, else
    /etc/switchboard/switchboard.env when it exists) under the environment:
    a variable already set wins.  Returns the file read, or None."""
    named = environ.get("SB_CONFIG")
    path = Path(named) if named else CONFIG_FILE
    if not named and not path.exists():
        return None
    for key, value in config_file_values(path).items():
        environ.setdefault(key, value)
    return path
