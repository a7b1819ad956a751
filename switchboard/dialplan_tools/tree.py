"""The configuration as deploy writes it: dialplan/*.conf plus a site's files
under ``site/`` (``switchboard dialplan check`` checks exactly this tree, and
``switchboard edge`` reads the edge from it)."""

from __future__ import annotations

from pathlib import Path

from switchboard.dialplan_tools.conf import INCLUDE_RE, SITE


def source_files(dialplan_dir: Path, site_dir: Path) -> dict[str, Path]:
    """What a deploy manages, by its name under the configuration folder:
    ``extensions.conf`` ... from dialplan/, ``site/dids.conf`` ... from the site's
    folder."""
    files = {f.name: f for f in sorted(dialplan_dir.glob("*.conf"))}
    if site_dir.is_dir():
        files.update({f"{SITE}/{f.name}": f for f in sorted(site_dir.glob("*.conf"))})
    return files


def render(name: str, text: str, confdir: Path) -> str:
    """The text deploy writes: as in the source, except that asterisk.conf's
    ``#include "site/..."`` becomes absolute under ``confdir`` (Asterisk resolves
    includes in asterisk.conf against its built-in folder)."""
    if name != "asterisk.conf":
        return text
    return INCLUDE_RE.sub(lambda m: f'{m.group(1)}"{confdir / m.group(2)}"'
                          if m.group(2).startswith(f"{SITE}/") else m.group(0), text)


def desired_files(dialplan_dir: Path, site_dir: Path, confdir: Path) -> dict[str, str]:
    return {name: render(name, path.read_text(encoding="utf-8"), confdir)
            for name, path in source_files(dialplan_dir, site_dir).items()}


def assemble(dialplan_dir: Path, site_dir: Path, into: Path) -> None:
    """dialplan/*.conf plus the site files as site/, as deploy writes them."""
    (into / SITE).mkdir(exist_ok=True)
    for name, text in desired_files(dialplan_dir, site_dir, into).items():
        (into / name).write_text(text, encoding="utf-8")
