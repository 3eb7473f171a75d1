"""How long each training command of the README takes on this machine: the short default runs, timed end to end, and
the ``--full`` protocol of the graph tasks, estimated from the default run's training time (it takes about half an
hour each).

Each command runs as a user would run it (the installed ``fivefold`` entry point, a fresh process, a temporary runs
folder), so the wall time includes start-up and data loading. An estimate scales the default run's measured training
``seconds`` (from its ``metrics.json``) by the ratio of epochs (350 / 20) and adds the measured start-up and data
loading; it is marked ``estimated``.

    FIVEFOLD_DATA=../shared/data .venv/bin/python benchmarks/command_times.py        # about 30 minutes on 2 cores
    ... benchmarks/command_times.py --only cora,MUTAG                               # a subset

Prints a table and writes ``benchmarks/results/command_times.json`` (rows of commands not rerun are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENTRY = Path(sys.executable).parent / "fivefold"

# (name, arguments of `fivefold train`, the --full time: "same" as the default run, or "graph": estimated)
COMMANDS: list[tuple[str, list[str], str]] = [
    ("cora", [], "same"),
    ("cora-gat", ["--task", "cora", "--model", "gat"], "same"),
    ("citeseer-gat", ["--task", "citeseer", "--model", "gat"], "same"),
    ("MUTAG", ["--task", "MUTAG"], "graph"),
    ("ENZYMES", ["--task", "ENZYMES"], "graph"),
    ("PROTEINS", ["--task", "PROTEINS"], "graph"),
    ("mnist-c4", ["--task", "mnist", "--model", "c4"], "same"),
    ("mnist-cnn", ["--task", "mnist", "--model", "cnn"], "same"),
    ("mnist-c8", ["--task", "mnist", "--model", "c8"], "same"),
    ("adrenalmnist3d-o", ["--task", "adrenalmnist3d"], "same"),
    ("esol-dmpnn", ["--molecules", "esol"], "same"),
    ("lipophilicity-dmpnn", ["--molecules", "lipophilicity"], "same"),
]


def run(arguments: list[str], runs: Path) -> tuple[float, dict, dict]:
    """Wall seconds, config and metrics of one `fivefold train` run."""
    command = [str(ENTRY)] if ENTRY.exists() else [sys.executable, "-m", "fivefold.cli"]
    start = time.perf_counter()
    done = subprocess.run([*command, "train", *arguments, "--runs-dir", str(runs), "--no-progress"],
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"fivefold train {' '.join(arguments)} failed:\n{done.stderr}")
    folder = max(runs.iterdir(), key=lambda p: p.stat().st_mtime)
    config = json.loads((folder / "config.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    return wall, config, metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated names from: " + ", ".join(n for n, _, _ in COMMANDS))
    args = parser.parse_args()
    chosen = [c for c in COMMANDS if not args.only or c[0] in args.only.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        runs = Path(folder)
        for name, arguments, full in chosen:
            wall, config, metrics = run(arguments, runs)
            train_seconds = metrics["final"]["seconds"]
            row = {"name": name, "command": "fivefold train " + " ".join(arguments), "default_seconds": wall,
                   "default_metric": _metric(metrics)}
            if full == "same":
                row.update(full_seconds=wall, full_how="same as default")
            else:  # a graph task: 350 epochs instead of the default run's
                ratio = 350 / config["epochs"]
                row.update(full_seconds=wall - train_seconds + ratio * train_seconds,
                           full_how=f"estimated ({ratio:.1f} x the default run's training time)")
            rows.append(row)
            print(f"{name:<18} default {row['default_seconds']:7.0f} s   --full {row['full_seconds']:7.0f} s "
                  f"({row['full_how']})   {row['default_metric']}", flush=True)
    out = REPO / "benchmarks" / "results" / "command_times.json"
    kept = json.loads(out.read_text())["rows"] if out.is_file() else []  # rows of commands not rerun now
    names = [name for name, _, _ in COMMANDS]
    merged = {row["name"]: row for row in kept if row["name"] in names} | {row["name"]: row for row in rows}
    out.write_text(json.dumps({"machine": {"cpu": platform.processor() or platform.machine(),
                                           "cores": os.cpu_count()},
                               "rows": [merged[name] for name in names if name in merged]}, indent=2))
    print(f"wrote {out}")


def _metric(metrics: dict) -> str:
    final = metrics["final"]
    if "best_epoch_mean" in final:
        return f"CV accuracy {100 * final['last_epoch_mean']:.1f} % (last epoch)"
    if "test_rmse" in final:
        return f"test RMSE {final['test_rmse']:.3f}"
    return f"test accuracy {100 * final['test_acc']:.1f} %"


if __name__ == "__main__":
    main()
