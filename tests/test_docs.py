"""The Markdown docs: every relative link points at a file that exists, every
`#anchor` at a heading, and the README stays short enough for a newcomer."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PAGES = DOCS + sorted((ROOT / "bench").glob("*.md"))

# [text](target) and ![alt](target), with an optional "title"; <img src="target">.
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IMG = re.compile(r"<img\s[^>]*\bsrc=[\"']([^\"']+)[\"']")
FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,}).*?^[ \t]*\1", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
EXTERNAL = ("http://", "https://", "mailto:")


def prose(page: Path) -> str:
    """The page without its fenced code blocks (their `[x](y)` and `# …` are code)."""
    return FENCE.sub("", page.read_text(encoding="utf-8"))


def relative_targets(page: Path) -> list[str]:
    text = prose(page)
    found = LINK.findall(text) + IMG.findall(text)
    return [target for target in found if not target.startswith(EXTERNAL)]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor; GitHub numbers repeats: name, name-1, name-2…"""
    seen: Counter[str] = Counter()
    result = set()
    for heading in HEADING.findall(prose(page)):
        name = slug(heading)
        result.add(f"{name}-{seen[name]}" if seen[name] else name)
        seen[name] += 1
    return result


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_relative_links_point_at_files_that_exist(page):
    missing = [
        target
        for target in relative_targets(page)
        if not target.startswith("#") and not (page.parent / target.split("#")[0]).exists()
    ]
    assert not missing, f"{page_id(page)} links to files that do not exist: {missing}"


@pytest.mark.parametrize("page", DOCS, ids=page_id)
def test_anchors_name_headings(page):
    unknown = []
    for target in relative_targets(page):
        path, _, anchor = target.partition("#")
        linked = page.parent / path if path else page
        checkable = anchor and linked.suffix == ".md" and linked.exists()
        if checkable and anchor not in anchors(linked):
            unknown.append(target)
    assert not unknown, f"{page_id(page)} links to headings that do not exist: {unknown}"


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) < 200, f"README.md has {len(lines)} lines; the reference goes in docs/"
