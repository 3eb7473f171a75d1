"""Every Python example of the documentation site runs: the pages under docs/pages, with the README sections they
include (``--8<-- "README.md:name"``) expanded, have their ```python blocks executed in order, one namespace per page,
in a scratch folder (examples may write files)."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted((REPO / "docs" / "pages").rglob("*.md"))
INCLUDE = re.compile(r'^--8<-- "([^":]+):([^"]+)"\s*$', re.MULTILINE)
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def expand(text: str) -> str:
    """The page's markdown with each included section in place (what pymdownx.snippets does for the site)."""

    def section(match: re.Match) -> str:
        source, name = (REPO / match.group(1)).read_text(), match.group(2)
        start, end = f"<!-- --8<-- [start:{name}] -->", f"<!-- --8<-- [end:{name}] -->"
        assert start in source and end in source, f"{match.group(1)} has no section {name!r}"
        return source.split(start, 1)[1].split(end, 1)[0]

    return INCLUDE.sub(section, text)


def test_pages_exist_and_hold_examples():
    assert len(PAGES) >= 15
    assert sum(len(BLOCK.findall(expand(page.read_text()))) for page in PAGES) >= 6


@pytest.mark.parametrize("page", [p for p in PAGES if BLOCK.search(expand(p.read_text()))],
                         ids=lambda p: str(p.relative_to(REPO / "docs" / "pages")))
def test_page_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for number, block in enumerate(BLOCK.findall(expand(page.read_text()))):
        exec(compile(block, f"{page.name} block {number}", "exec"), namespace)
