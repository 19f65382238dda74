"""Every relative link and #anchor in README.md and docs/*.md resolves.

The README is a front page that points into docs/, and the docs point at each other and
into the tree: a moved section or a renamed file must not leave a dead link behind. Links
are checked as GitHub renders them: outside code, relative to the file, anchors against
the target's headings with GitHub's slug rules (lower case, punctuation dropped, spaces to
hyphens, a repeated heading gets -1, -2, ...).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^()\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)"
)
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
HTML_ID = re.compile(r"<a\s[^>]*(?:name|id)=\"([^\"]+)\"", re.IGNORECASE)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # http:, https:, mailto:, ...


def prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    fence = ""
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = ""
            continue
        if match:
            fence = match.group(1)
            continue
        yield number, line


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (github-slugger, on the rendered text)."""
    text = CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link renders as its text
    text = re.sub(r"<[^>]+>", "", text).replace("*", "")
    kept = "".join(c for c in text.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every #anchor the rendered file has: its headings' slugs and explicit HTML ids."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        found.update(HTML_ID.findall(line))
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, target) of every link outside code."""
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        line = CODE_SPAN.sub(lambda m: "c" * len(m.group(2)), line)
        for match in INLINE_LINK.finditer(line):
            yield number, match.group(1)
        match = REFERENCE.match(line)
        if match:
            yield number, match.group(1)


def broken_links(path: Path, root: Path) -> list[str]:
    """One line per link in `path` whose file or anchor does not exist under `root`."""
    problems = []
    for number, target in links(path):
        if not target or EXTERNAL.match(target):
            continue
        where = f"{path.relative_to(root)}:{number}: {target}"
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.is_relative_to(root):
            problems.append(f"{where}: points outside the repository")
        elif not dest.exists():
            problems.append(f"{where}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(
                f"{where}: no heading with anchor #{anchor} in {dest.relative_to(root)}"
            )
    return problems


def documents() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path, REPO) == []


def test_the_front_page_links_into_docs() -> None:
    """The README points at every page under docs/ (and the check above has links to check)."""
    targets = {target.partition("#")[0] for _, target in links(REPO / "README.md")}
    pages = {f"docs/{page.name}" for page in (REPO / "docs").glob("*.md")}
    assert pages - targets == set()


def test_slugs_follow_github() -> None:
    assert slug("`make test` from a clean clone") == "make-test-from-a-clean-clone"
    assert (
        slug("The local environment end to end (`make e2e`): site.yml, releases, rollback")
        == "the-local-environment-end-to-end-make-e2e-siteyml-releases-rollback"
    )
    assert slug("The service on a host: the model_api and nginx roles") == (
        "the-service-on-a-host-the-model_api-and-nginx-roles"
    )
    assert slug("Python 3.12 — and [a link](x.md)") == "python-312--and-a-link"


def test_broken_links_are_reported(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text(
        "# Title\n\n## Same\n\n## Same\n\n```\n# not a heading\n```\n"
    )
    (tmp_path / "README.md").write_text(
        "[ok](docs/a.md) [ok](docs/a.md#same-1) [ok](#here) [ok](https://example.com/x.md)\n"
        "`[in code](missing.md)`\n"
        "```sh\n[in a fence](missing.md)\n```\n"
        "## Here\n"
        "[gone](docs/b.md) [bad anchor](docs/a.md#not-a-heading) [bad](#nowhere)\n"
        "[outside](../x.md)\n"
        "[ref]: docs/c.md\n"
    )
    assert broken_links(tmp_path / "README.md", tmp_path) == [
        "README.md:7: docs/b.md: no such file",
        "README.md:7: docs/a.md#not-a-heading: no heading with anchor #not-a-heading in docs/a.md",
        "README.md:7: #nowhere: no heading with anchor #nowhere in README.md",
        "README.md:8: ../x.md: points outside the repository",
        "README.md:9: docs/c.md: no such file",
    ]
