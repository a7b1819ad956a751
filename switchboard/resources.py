"""Where the project's data is: ``sql/``, ``dialplan/`` and the recorded
Asterisk captures the demo replays.  In a checkout they are the repository's
own folders (``sql/``, ``dialplan/``, ``tests/fixtures/asterisk/``); an
installed wheel carries the same folders inside the package, as
``switchboard/sql``, ``switchboard/dialplan`` and ``switchboard/captures``
(pyproject.toml maps them at build time), so every command works from any
directory and the install adds one import name."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parent
_IN_CHECKOUT = {"sql": "sql", "dialplan": "dialplan", "captures": "tests/fixtures/asterisk"}


def data_dir(name: str) -> Path:
    """The folder ``name`` (sql | dialplan | captures): the installed package's,
    else the checkout's."""
    installed = PACKAGE / name
    if installed.is_dir():
        return installed
    folder = CHECKOUT / _IN_CHECKOUT[name]
    if folder.is_dir():
        return folder
    raise FileNotFoundError(f"switchboard's {name} folder is missing: reinstall the package")


def in_checkout() -> bool:
    """Running from a clone of the repository (editable install or not)?"""
    return (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "sql").is_dir()
