"""The repository stands on its own: its links resolve inside it, and LICENSE is the declared licence.

Links are read from the rendered Markdown (python-markdown), so links inside code blocks and
code spans are not links, as on any Markdown viewer. A relative link must name a file or folder
of the repository (never one beside it), and an ``#anchor`` into a Markdown file must name one
of its headings (GitHub's heading ids).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import markdown
import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted({REPO / "README.md", REPO / "CHANGELOG.md", *REPO.glob("docs/*.md"), REPO / "bench" / "README.md"})

# SHA-256 of the licence text as the Free Software Foundation publishes it (gnu.org's
# agpl-3.0.txt, with https addresses), as shipped verbatim by the npm package
# @rexxars/choosealicense-list 1.1.2 (licenses.json, "AGPL-3.0" body); the SPDX list's
# AGPL-3.0-or-later text (npm spdx-license-list 6.12.0) has the same words.
AGPL_3_SHA256 = "8486a10c4393cee1c25392769ddd3b2d6c242d6ec7928e1414efff7dfb2f07ef"
LICENCES = {  # SPDX ids pyproject may declare -> the title lines of their text
    "AGPL-3.0-or-later": ("GNU AFFERO GENERAL PUBLIC LICENSE", "Version 3, 19 November 2007"),
    "AGPL-3.0-only": ("GNU AFFERO GENERAL PUBLIC LICENSE", "Version 3, 19 November 2007"),
}
# Text that ships (docs, messages, the library) must not send users to the developers' folder
# beside the repository.
SHIPPED = ["README.md", "CHANGELOG.md", ".env.example", "docs/*.md", "data/*.json", "data/*.csv",
           "geo_monitor/**/*.py", "geo_monitor/**/*.sql", "api/**/*.py", "maps/**/*.py", "cli/**/*.py"]


class _Links(HTMLParser):
    """Collect href and src attributes of rendered Markdown."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.targets += [value for name, value in attrs if name in ("href", "src") and value]


def links(page: Path) -> list[str]:
    """Return every link target of a Markdown page, in order."""
    parser = _Links()
    parser.feed(markdown.markdown(page.read_text(encoding="utf-8"), extensions=["tables", "fenced_code"]))
    return parser.targets


def slug(heading: str) -> str:
    """Return GitHub's id for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Return the heading ids of a Markdown page (a repeated heading gets -1, -2, ...)."""
    ids: set[str] = set()
    counts: dict[str, int] = {}
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        match = None if fenced else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            ids.add(base if base not in counts else f"{base}-{counts[base]}")
            counts[base] = counts.get(base, 0) + 1
    return ids


def broken_links(page: Path, root: Path = REPO) -> list[str]:
    """Return what is wrong with each relative link of a page of ``root`` (empty when all resolve)."""
    problems = []
    for target in links(page):
        parts = urlsplit(target)
        if parts.scheme or parts.netloc:
            continue  # a web address
        if target.startswith("/"):
            problems.append(f"{target}: an absolute path, not a file of the repository")
            continue
        path = (page.parent / unquote(parts.path)).resolve() if parts.path else page
        if not path.is_relative_to(root):
            problems.append(f"{target}: points outside the repository")
        elif not path.exists():
            problems.append(f"{target}: {path.relative_to(root)} does not exist")
        elif parts.fragment and path.suffix == ".md" and parts.fragment not in anchors(path):
            problems.append(f"{target}: no heading #{parts.fragment} in {path.relative_to(root)}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(REPO)) for p in PAGES])
def test_relative_links_resolve_inside_the_repository(page: Path) -> None:
    assert page.is_file(), f"{page.relative_to(REPO)} is missing"
    assert broken_links(page) == []


def test_link_checker_finds_what_it_must(tmp_path: Path) -> None:
    root = (tmp_path / "repo").resolve()
    (root / "docs").mkdir(parents=True)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "DESIGN.md").write_text("# Design\n", encoding="utf-8")  # exists, but beside the repo
    (root / "docs" / "methods.md").write_text("# Methods\n\n## 2. Hot spots: Gi*\n", encoding="utf-8")
    page = root / "docs" / "index.md"
    page.write_text(
        "# A title\n\n[up](../../shared/DESIGN.md) [gone](missing.md) [root](/etc/hosts)\n"
        "[ok](methods.md) [anchor](#a-title) [section](methods.md#2-hot-spots-gi) [bad anchor](methods.md#nowhere)\n"
        "[web](https://example.org) ![image](methods.md)\n\n"
        "```\n[in code](../../nowhere.md)\n```\n\n`[span](../../nowhere.md)`\n",
        encoding="utf-8")
    assert broken_links(page, root) == [
        "../../shared/DESIGN.md: points outside the repository",
        "missing.md: docs/missing.md does not exist",
        "/etc/hosts: an absolute path, not a file of the repository",
        "methods.md#nowhere: no heading #nowhere in docs/methods.md",
    ]


@pytest.mark.parametrize(("heading", "expected"), [
    ("2. Hot spots: Getis–Ord Gi* with a false discovery rate", "2-hot-spots-getisord-gi-with-a-false-discovery-rate"),
    ("Pitfalls the code avoids", "pitfalls-the-code-avoids"),
    ("What ingest accepts", "what-ingest-accepts"),
    ("Speed (bench/, figures in bench/README.md)", "speed-bench-figures-in-benchreadmemd"),
])
def test_slug_follows_github(heading: str, expected: str) -> None:
    assert slug(heading) == expected


def test_readme_first_screen_names_every_guide() -> None:
    first_screen = "\n".join((REPO / "README.md").read_text(encoding="utf-8").splitlines()[:40])
    for guide in ("guide-planner.md", "guide-coordinator.md", "guide-steward.md", "guide-resident.md"):
        assert f"(docs/{guide})" in first_screen, f"the README's first 40 lines do not link docs/{guide}"


def test_licence_file_is_the_declared_licence() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["license"]
    spdx = declared["text"] if isinstance(declared, dict) else declared
    assert spdx in LICENCES, f"pyproject declares {spdx!r}; LICENCES knows {sorted(LICENCES)}"
    text = (REPO / "LICENSE").read_bytes()
    title = [line.strip() for line in text.decode("utf-8").splitlines() if line.strip()][:2]
    assert tuple(title) == LICENCES[spdx]
    assert hashlib.sha256(text).hexdigest() == AGPL_3_SHA256, "LICENSE is not the exact published text"


def test_shipped_text_does_not_point_beside_the_repository() -> None:
    offenders = [f"{path.relative_to(REPO)}:{number}"
                 for pattern in SHIPPED for path in sorted(REPO.glob(pattern))
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
                 if "../shared" in line]
    assert offenders == []
