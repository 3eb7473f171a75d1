"""The documentation site: a strict mkdocs build, no broken internal links, and pages that render in a browser.

Run by `make docs` (not by `make test`: it needs the docs extra and a browser). The browser is Debian's `chromium`
package driven headless from the command line (a browser downloaded at install time does not work offline)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "docs" / "_build"
SITE = BUILD / "site"


@pytest.fixture(scope="session")
def site() -> Path:
    """Build the site once per session, strictly (a warning, such as a missing page or snippet, fails it)."""
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    assert (SITE / "index.html").is_file()
    return SITE


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)
            if name == "id" and value:
                self.ids.add(value)


def _parse(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(errors="replace"))
    return parser


def test_no_broken_internal_links(site):
    pages = sorted(site.rglob("*.html"))
    assert len(pages) >= 15
    parsed = {page: _parse(page) for page in pages}
    broken = []
    for page, links in parsed.items():
        for link in links.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:", "data:")):
                continue
            if not parts.path:
                target = page
            elif parts.path.startswith("/"):  # absolute links (the 404 page's) are relative to the site root
                target = (site / unquote(parts.path).lstrip("/")).resolve()
            else:
                target = (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {link} (no file)")
            elif parts.fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else _parse(target).ids
                if parts.fragment not in ids:
                    broken.append(f"{page.relative_to(site)}: {link} (no anchor)")
    assert not broken, "\n".join(broken[:30])


def test_pages_hold_what_they_should(site):
    start = (site / "index.html").read_text()
    assert "Two commands" in start and "fivefold.meshes" in start and "Not yet tested" in start
    api = (site / "api" / "graphs.html").read_text()
    for name in ("GCNConv", "GATConv", "Graph", "Batch"):
        assert name in api, name
    assert "experiments/results/adrenal3d.png" in (site / "results.html").read_text()
    assert (site / "experiments" / "results" / "adrenal3d.png").is_file()


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("Debian's chromium package is not installed (apt-get install chromium); `make docs` installs it "
                "when it may")


@pytest.mark.parametrize("page, expected", [("index.html", "Two commands"), ("api/graphs.html", "GCNConv")])
def test_page_renders_in_headless_chromium(site, page, expected):
    browser = _chromium()
    url = (site / page).as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,900"]
    dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert expected in dom.stdout and 'class="md-header' in dom.stdout  # the theme's header was rendered
    shot = BUILD / f"screenshot-{page.replace('/', '-').replace('.html', '')}.png"
    shot.unlink(missing_ok=True)
    done = subprocess.run([browser, *flags, f"--screenshot={shot}", url], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (900, 1280)
    colours = {tuple(p) for p in (pixels[::20, ::20, :3] * 255).astype(int).reshape(-1, 3).tolist()}
    assert len(colours) > 20, "the screenshot is nearly blank"
