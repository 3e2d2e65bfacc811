"""The baked project's docs are complete and whole: every make target and every setting is
documented in README.md or docs/, and every link between them leads somewhere."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.helpers import OLDEST, bake

# The defaults, and the answers that change what the README and docs render.
ANSWERS = {
    "defaults": {},
    "bucket-airflow-2": {"s3_bucket": "acme-mwaa", "airflow_version": OLDEST},
}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


@pytest.fixture(scope="module", params=ANSWERS, ids=list(ANSWERS))
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bake(tmp_path_factory.mktemp("baked"), **ANSWERS[request.param])


def pages(project: Path) -> list[Path]:
    return [project / "README.md", *sorted((project / "docs").glob("*.md"))]


def all_text(project: Path) -> str:
    return "\n".join(page.read_text() for page in pages(project))


def phony_targets(project: Path) -> list[str]:
    makefile = (project / "Makefile").read_text().replace("\\\n", " ")
    [line] = [line for line in makefile.splitlines() if line.startswith(".PHONY:")]
    return line.removeprefix(".PHONY:").split()


def prose(page: Path) -> list[str]:
    """The page's lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in page.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings: lowercased, punctuation but - and _
    dropped, spaces made hyphens, a repeated one numbered."""
    found: set[str] = set()
    repeats: dict[str, int] = {}
    for line in prose(page):
        if heading := re.match(r"#{1,6} (.+)", line):
            slug = re.sub(r"[^\w\- ]", "", heading[1].strip().lower()).replace(" ", "-")
            found.add(f"{slug}-{repeats[slug]}" if slug in repeats else slug)
            repeats[slug] = repeats.get(slug, 0) + 1
    return found


def test_the_docs_name_every_make_target(project: Path) -> None:
    text = all_text(project)
    missing = [t for t in phony_targets(project) if not re.search(rf"\bmake {t}(?![\w-])", text)]
    assert not missing, f"write `make <target>` for these in README.md or docs/: {missing}"


def test_the_docs_name_every_setting_of_tool_mwaa_deploy(project: Path) -> None:
    text = all_text(project)
    settings = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["mwaa_deploy"]
    missing = [name for name in settings if not re.search(rf"`{name}\b[^`]*`", text)]
    assert not missing, f"document these settings in README.md or docs/: {missing}"


def test_every_relative_link_in_the_readme_and_docs_leads_to_a_file_and_heading(
    project: Path,
) -> None:
    broken = []
    for page in pages(project):
        for n, line in enumerate(page.read_text().splitlines(), start=1):
            for target in LINK.findall(line):
                if re.match(r"[a-z]+:", target):
                    continue
                path, _, anchor = target.partition("#")
                linked = (page.parent / path).resolve() if path else page
                where = f"{page.relative_to(project)}:{n}: {target}"
                if not linked.exists() or project.resolve() not in linked.parents:
                    broken.append(f"{where} (no such file)")
                elif anchor and (linked.suffix != ".md" or anchor not in anchors(linked)):
                    broken.append(f"{where} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_readme_is_a_five_minute_read(project: Path) -> None:
    """What it is, the first hour, daily commands and where to read more; the rest is in
    docs/."""
    words = len((project / "README.md").read_text().split())
    assert words <= 1600, f"README.md has {words} words: move detail into docs/"
