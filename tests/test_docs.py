"""The README a newcomer reads (issue 25): short, and every page it and the
references link to exists; nothing moved out of it was lost on the way."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "sql" / "kpi.md"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """The text without code (Asterisk's `[name](template)` is not a link)."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def test_every_relative_link_resolves() -> None:
    checked = 0
    for page in PAGES:
        for target in LINK.findall(prose(page.read_text())):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            assert path.exists(), f"{page.relative_to(ROOT)}: {target} does not exist"
            assert ROOT in path.parents, f"{page.relative_to(ROOT)}: {target} leaves the repo"
            checked += 1
    assert checked >= 30


def test_the_readme_is_short_and_links_every_reference() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for heading in ("## Quick start", "## Layout", "## Read more"):
        assert heading in readme
    assert "make demo" in readme and "make test" in readme
    linked = {Path(t).name for t in LINK.findall(readme) if t.startswith("docs/")}
    assert linked == {p.name for p in (ROOT / "docs").glob("*.md")}


def test_what_moved_out_of_the_readme_is_still_there() -> None:
    """A few things a reader looks for, each in the page the README sends them to."""
    where = {
        "configuration.md": ["SB_AMI_NODES", "SB_PIN_PEPPER_FILE", "SB_DEFAULT_REGION"],
        "security.md": ["argon2id", "sb_agi", "audit"],
        "figures.md": ["wall board", "staffing"],
        "testing.md": ["bench/ami_ingest.py", "live tier"],
        "dependencies.md": ["pyst2", "panoramisk", "asyncpg", "structlog"],
    }
    for name, words in where.items():
        text = (ROOT / "docs" / name).read_text()
        for w in words:
            assert w in text, (name, w)
