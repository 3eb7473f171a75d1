"""How far each float32 check of the test suite is from its tolerance, under three CPU kernel settings.

Runs the tests marked ``float32`` (``pytest -m float32``) once per setting, records every ``assert_equivariant`` and
``assert_close`` report (``--float-margins``), and prints, for each test, the largest float32 error seen under any
setting next to the tolerance of ``fivefold.testing``'s float rule. The settings are the ones ``.ci/run`` repeats:

- ``default``: the machine's own kernels and threads;
- ``1 thread``: ``OMP_NUM_THREADS=1`` (other blocking, other summation order);
- ``baseline ISA``: ``ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41`` (no AVX2/AVX-512 kernels).

    .venv/bin/python benchmarks/float_margins.py          # about 1 minute on 2 cores

Writes ``benchmarks/results/float_margins.json``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETTINGS = {
    "default": {},
    "1 thread": {"OMP_NUM_THREADS": "1"},
    "baseline ISA": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}


def run_setting(name: str, extra_env: dict[str, str]) -> list[dict]:
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "margins.jsonl"
        env = {**os.environ, **extra_env}
        command = [sys.executable, "-m", "pytest", "-q", "-m", "float32", "tests", f"--float-margins={log}"]
        print(f"[{name}] {' '.join(f'{k}={v}' for k, v in extra_env.items())} pytest -m float32", flush=True)
        result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        print(result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-2000:], flush=True)
        rows = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    for row in rows:
        row["setting"] = name
    return [row for row in rows if row["dtype"] == "torch.float32"]


def main() -> None:
    rows = [row for name, env in SETTINGS.items() for row in run_setting(name, env)]
    worst: dict[str, dict] = {}
    for row in rows:  # per test, the report closest to its tolerance under any setting
        ratio = row["worst_error"] / row["tolerance"]
        if row["test"] not in worst or ratio > worst[row["test"]]["worst_error"] / worst[row["test"]]["tolerance"]:
            worst[row["test"]] = row
    print(f"\n{'test':<86} {'setting':<13} {'worst error':>11} {'tolerance':>10} {'margin':>7}")
    for test in sorted(worst):
        row = worst[test]
        margin = row["tolerance"] / row["worst_error"] if row["worst_error"] else float("inf")
        print(f"{test:<86} {row['setting']:<13} {row['worst_error']:>11.3g} {row['tolerance']:>10.3g} {margin:>7.1f}")
    out = REPO / "benchmarks" / "results" / "float_margins.json"
    out.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "settings": SETTINGS,
                               "reports": rows, "worst_per_test": worst}, indent=1))
    print(f"\nwrote {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
