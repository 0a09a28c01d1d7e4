"""The documentation's shape: README.md stays a short front door, and no relative link is dead.

Inputs: README.md and docs/*.md of this checkout. Outputs: none. Files: read only.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README_MAX_LINES = 160  # a front door: what it is, two commands, the cart, commands, status, links
# [text](target) and [text](target "title"); images too. Targets with a scheme are not relative.
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
FENCE = re.compile(r"^(```|~~~)")


def markdown_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def relative_links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every relative link outside fenced code blocks."""
    links, in_code = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line.strip()):
            in_code = not in_code
            continue
        if in_code:
            continue
        for target in LINK.findall(line):
            if not SCHEME.match(target) and not target.startswith("#"):
                links.append((number, target))
    return links


def test_readme_is_a_front_door():
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"


def test_every_relative_link_points_to_an_existing_file():
    dead = []
    for path in markdown_files():
        for number, target in relative_links(path):
            file_part = target.split("#", 1)[0]
            if not (path.parent / file_part).exists():
                dead.append(f"{path.relative_to(REPO)}:{number}: {target}")
    assert not dead, "dead links:\n" + "\n".join(dead)


def test_the_link_checker_sees_links_and_skips_code(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "See [a](a.md#x), [web](https://example.org), [here](#top) and ![img](pics/p.png).\n"
        "```\n[not a link](inside-code.md)\n```\n"
    )
    assert relative_links(page) == [(1, "a.md#x"), (1, "pics/p.png")]
