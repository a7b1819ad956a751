"""Replacing a file so that nobody ever reads half of it, with the owner, group
and mode it must have (configuration that Asterisk reads, the AGI fallback's
settings)."""

from __future__ import annotations

import os
from pathlib import Path


def replace_file(path: Path, data: bytes, *, uid: int, gid: int, mode: int,
                 strict_owner: bool = True) -> None:
    """Write ``data`` to a temporary file beside ``path`` (owner, group and mode
    set before it is visible), fsync it, rename it over ``path``, fsync the
    folder.  ``strict_owner`` false: when the owner cannot be given (not root),
    the file stays ours instead of failing (the caller checked beforehand)."""
    tmp = path.with_name(f".{path.name}.sb-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
        if (uid, gid) != (os.geteuid(), os.getegid()):
            try:
                os.fchown(fd, uid, gid)
            except PermissionError:
                if strict_owner:
                    raise
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
