"""Where the project's data is: ``sql/``, ``dialplan/`` and the recorded
Asterisk captures the demo replays.  In a checkout they are the repository's
folders; an installed wheel carries the same folders as the packages
``switchboard_sql``, ``switchboard_dialplan`` and ``switchboard_captures``
(pyproject.toml), so every command works from any directory."""

from __future__ import annotations

import importlib.util
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
_PACKAGES = {"sql": "switchboard_sql", "dialplan": "switchboard_dialplan",
             "captures": "switchboard_captures"}
_IN_CHECKOUT = {"sql": "sql", "dialplan": "dialplan", "captures": "tests/fixtures/asterisk"}


def data_dir(name: str) -> Path:
    """The folder ``name`` (sql | dialplan | captures): the installed package's,
    else the checkout's."""
    spec = importlib.util.find_spec(_PACKAGES[name])
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            if Path(location).is_dir():
                return Path(location)
    folder = CHECKOUT / _IN_CHECKOUT[name]
    if folder.is_dir():
        return folder
    raise FileNotFoundError(f"switchboard's {name} folder is missing: reinstall the package")


def in_checkout() -> bool:
    """Running from a clone of the repository (editable install or not)?"""
    return (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "sql").is_dir()
