"""mkdocs hooks: the README's figures (``experiments/results/**/*.png``, ``benchmarks/results/*.png``) become files
of the site at the same path, so the README's image links work unchanged in the pages that include its sections."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

REPO = Path(__file__).resolve().parents[1]


def on_files(files, config):
    figures = [*(REPO / "experiments" / "results").rglob("*.png"), *(REPO / "benchmarks" / "results").glob("*.png")]
    for figure in sorted(figures):
        files.append(File(str(figure.relative_to(REPO)), str(REPO), config["site_dir"], config["use_directory_urls"]))
    return files
