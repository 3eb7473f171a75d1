"""Helpers shared by the benchmark scripts: the median of repeated calls after a warm-up, and the peer venv
(torch_geometric is a peer, never a dependency: ``ensure_peer`` re-runs the script in ``benchmarks/.venv-peer``,
created on first use with torch==2.13.0, torch_geometric and fivefold)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

PEER_VENV = Path(__file__).resolve().parent / ".venv-peer"


def build_venv(path: Path, *packages: str) -> Path:
    """A venv at ``path`` with torch 2.13.0 (the CPU build this project pins) and ``packages``, created on first use;
    returns its Python."""
    python = path / "bin" / "python"
    if not python.exists():
        print(f"creating {path} (torch 2.13.0, {', '.join(packages)})", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "torch==2.13.0"], check=True)
        subprocess.run([*pip, *packages], check=True)
    return python


def ensure_peer() -> None:
    """Return if torch_geometric imports here; else re-run this script with the peer venv's Python."""
    try:
        import torch_geometric  # noqa: F401
    except ImportError:
        python = build_venv(PEER_VENV, "torch_geometric", "-e", str(PEER_VENV.parent.parent))
        os.execv(str(python), [str(python), *sys.argv])


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``fn``, after one untimed warm-up call."""
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def forward_backward(module, x) -> Callable[[], None]:
    """A call that runs ``module(x).sum().backward()`` with fresh gradients for the parameters and ``x``."""

    def run() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x).sum().backward()

    return run
