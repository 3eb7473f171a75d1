"""D-MPNN on MoleculeNet, fivefold against chemprop 2 on the same splits, epochs and schedule, side by side.

Usage:
    FIVEFOLD_DATA=../shared/data .venv/bin/python experiments/moleculenet.py \\
        [--sets esol freesolv lipophilicity bbbp bace] [--splits random scaffold] [--seeds 0 1 2 3 4] [--epochs 50]

Protocol (chemprop 2's defaults, used by both): 80/10/10 split of the rows RDKit parses (random, or the balanced
Bemis-Murcko scaffold split of Yang et al. 2019), seeded per run; the same split indices are given to chemprop
(``--splits-file``); hidden 300, depth 3, the ``norm`` readout (the atom states' sum divided by 100: ``chemprop
train``'s default ``--aggregation norm``), one FFN layer of 300; batches of 64; Noam schedule
(1e-4 -> 1e-3 over 2 epochs -> 1e-4), 50 epochs, the epoch with the lowest validation loss kept; regression targets
standardised. Test: RMSE (regression) or ROC-AUC (classification), computed by the same code for both from their test
predictions. Each run trains fivefold in this process and chemprop in a subprocess at the same time, each on one thread
(``OMP_NUM_THREADS=1``), so that the two share the machine alike. Wall time: fivefold's covers featurisation, training
and testing; chemprop's is the whole ``chemprop train`` command (featurisation, training, testing, and its start-up,
measured separately and reported).

chemprop runs from ``benchmarks/.venv-chemprop`` (built here if missing: ``pip install chemprop`` beside torch 2.13).
Each run writes ``<set>_<split>_<seed>.json`` to ``--out`` (existing runs are kept: the script resumes); the table
``moleculenet.md`` and ``moleculenet.json`` are rebuilt from all of them. ``--chemprop-from DIR`` reuses chemprop's
side of an earlier run of the same set, split and seed (its test rows must be the same) and trains fivefold only.

Until 2026-12-03 fivefold's side used a mean readout while ``chemprop train`` used its ``norm`` default; those runs
are kept in ``experiments/results/moleculenet_mean_readout``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from fivefold.data import load_moleculenet
from fivefold.molecules import DMPNN, random_split, scaffold_split, smiles_to_graphs
from fivefold.train.molecules import fit_molecule_model, molecule_targets, predict_molecules, score_molecules

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _timing import build_venv  # noqa: E402  (the venv helper the benchmarks use)

CHEMPROP_VENV = ROOT / "benchmarks" / ".venv-chemprop"
SETS = ("esol", "freesolv", "lipophilicity", "bbbp", "bace")
METRIC = {"regression": "rmse", "classification": "roc_auc"}


def ensure_chemprop() -> Path:
    build_venv(CHEMPROP_VENV, "chemprop==2.3.1")
    return CHEMPROP_VENV / "bin" / "chemprop"


def one_thread_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    return env


def start_chemprop(chemprop: Path, work: Path, smiles: list[str], targets: np.ndarray, split, task: str,
                   epochs: int, seed: int) -> tuple[subprocess.Popen, float, Path]:
    data = work / "data.csv"
    with open(data, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["smiles", "target"])
        for s, y in zip(smiles, targets[:, 0], strict=True):
            writer.writerow([s, "" if np.isnan(y) else repr(float(y))])
    splits = work / "splits.json"
    splits.write_text(json.dumps([{name: part.tolist() for name, part in zip(("train", "val", "test"), split,
                                                                             strict=True)}]))
    command = [str(chemprop), "train", "--data-path", str(data), "--task-type", task, "--splits-file", str(splits),
               "--epochs", str(epochs), "--pytorch-seed", str(seed), "--output-dir", str(work / "out"),
               "--num-workers", "0", "--accelerator", "cpu", "--devices", "1", "--smiles-columns", "smiles",
               "--target-columns", "target"]
    log = open(work / "chemprop.log", "w")  # noqa: SIM115 - closed by the caller through the process
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=one_thread_env()), \
        time.perf_counter(), work / "out"


def chemprop_predictions(out: Path, test_smiles: list[str]) -> np.ndarray:
    files = sorted(out.rglob("test_predictions.csv"))
    if not files:
        raise RuntimeError(f"chemprop wrote no test_predictions.csv under {out}; see its chemprop.log")
    with open(files[0]) as handle:
        rows = list(csv.DictReader(handle))
    if [row["smiles"] for row in rows] != test_smiles:
        raise RuntimeError("chemprop's test predictions are not the test molecules in order")
    return np.array([[float(row["target"])] for row in rows])


def run_fivefold(graphs, split, task: str, epochs: int, seed: int) -> dict:
    began = time.perf_counter()
    torch.manual_seed(seed)
    model = DMPNN(1)  # chemprop train's defaults, its norm readout included
    train, val, test = ([graphs[i] for i in part] for part in split)
    result = fit_molecule_model(model, train, val, task=task, epochs=epochs, seed=seed, progress=False)
    predictions = predict_molecules(model, test, task=task, scaler=result.scaler)
    scores = score_molecules(predictions, molecule_targets(test), task)
    return {"test": scores, "best_epoch": result.best["epoch"], "val_loss": result.best["val_loss"],
            "train_seconds": result.seconds, "predictions": predictions[:, 0].tolist(),
            "readout": model.readout, "wall_seconds": time.perf_counter() - began}


def one_run(name: str, split_kind: str, seed: int, epochs: int, chemprop: Path | None, root: str | None,
            earlier: Path | None = None) -> dict:
    """One set, split and seed: fivefold and chemprop side by side, or fivefold alone with chemprop's side taken
    from the earlier run's record ``earlier`` (same split required)."""
    table = load_moleculenet(name, root)
    began = time.perf_counter()
    graphs, rows = smiles_to_graphs(table.smiles)
    featurise_seconds = time.perf_counter() - began
    smiles = [table.smiles[r] for r in rows]
    targets = table.targets[rows]
    graphs = [g.replace(graph_y=torch.from_numpy(y)) for g, y in zip(graphs, targets, strict=True)]
    split = random_split(len(graphs), seed=seed) if split_kind == "random" else scaffold_split(smiles, seed=seed)
    record = {"set": name, "split": split_kind, "seed": seed, "epochs": epochs, "task": table.kind,
              "molecules": len(graphs), "skipped": len(table) - len(graphs),
              "sizes": [len(part) for part in split], "test_rows": split[2].tolist()}
    if earlier is not None:
        previous = json.loads(earlier.read_text())
        if previous["test_rows"] != record["test_rows"] or previous["epochs"] != epochs:
            raise RuntimeError(f"{earlier} has another split or epoch count than this run; it cannot be reused")
        record["chemprop"] = previous["chemprop"]
        record["chemprop_from"] = str(earlier.relative_to(ROOT) if earlier.is_relative_to(ROOT) else earlier)
        chemprop = None
    with tempfile.TemporaryDirectory() as folder:
        process = None
        if chemprop is not None:
            process, started, out = start_chemprop(chemprop, Path(folder), smiles, targets, split, table.kind, epochs,
                                                   seed)
            finished: dict[str, float] = {}

            def wait_for_chemprop() -> None:  # its own end time, even when it finishes before fivefold
                finished["code"] = process.wait()
                finished["seconds"] = time.perf_counter() - started

            waiter = threading.Thread(target=wait_for_chemprop)
            waiter.start()
        ours = run_fivefold(graphs, split, table.kind, epochs, seed)
        ours["wall_seconds"] += featurise_seconds
        record["fivefold"] = ours
        if process is not None:
            waiter.join()
            code, seconds = finished["code"], finished["seconds"]
            if code != 0:
                raise RuntimeError(f"chemprop failed ({code}):\n{(Path(folder) / 'chemprop.log').read_text()[-3000:]}")
            predictions = chemprop_predictions(out, [smiles[i] for i in split[2]])
            if table.kind == "classification":
                predictions = np.clip(predictions, 0.0, 1.0)
            scores = score_molecules(torch.from_numpy(predictions), torch.from_numpy(targets[split[2]]), table.kind)
            record["chemprop"] = {"test": scores, "wall_seconds": seconds, "predictions": predictions[:, 0].tolist()}
    return record


def chemprop_startup(chemprop: Path) -> float:
    began = time.perf_counter()
    subprocess.run([str(chemprop), "train", "--help"], capture_output=True, env=one_thread_env(), check=True)
    return time.perf_counter() - began


def summarise(out: Path) -> None:
    records = [json.loads(p.read_text()) for p in sorted(out.glob("*_*_*.json"))]
    startup = json.loads((out / "chemprop_startup.json").read_text())["seconds"] if \
        (out / "chemprop_startup.json").exists() else float("nan")
    rows = []
    for name in SETS:
        for split_kind in ("random", "scaffold"):
            runs = [r for r in records if r["set"] == name and r["split"] == split_kind]
            if not runs:
                continue
            metric = METRIC[runs[0]["task"]]
            row = {"set": name, "split": split_kind, "metric": metric, "seeds": sorted(r["seed"] for r in runs)}
            for system in ("fivefold", "chemprop"):
                done = [r[system] for r in runs if system in r]
                if done:
                    values = np.array([d["test"][metric] for d in done])
                    # wall times only from runs where both sides trained side by side (not --chemprop-from)
                    walls = np.array([r[system]["wall_seconds"] for r in runs
                                      if system in r and "chemprop_from" not in r])
                    row[system] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(done) > 1
                                   else float("nan"), "runs": len(done),
                                   "wall_seconds": float(walls.mean()) if len(walls) else None}
            rows.append(row)
    (out / "moleculenet.json").write_text(json.dumps({"chemprop_startup_seconds": startup, "rows": rows}, indent=1))
    lines = ["| set | split | metric | fivefold D-MPNN | chemprop 2.3 D-MPNN | seeds | wall s per run: fivefold / "
             "chemprop |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        cells = []
        for system in ("fivefold", "chemprop"):
            s = row.get(system)
            if not s:
                cells.append("-")
            else:
                cells.append(f"{s['mean']:.3f} ± {s['std']:.3f}" if s["runs"] > 1 else f"{s['mean']:.3f}")
        walls = " / ".join(f"{row[s]['wall_seconds']:.0f}" if s in row and row[s]["wall_seconds"] is not None
                           else "-" for s in ("fivefold", "chemprop"))
        lines.append(f"| {row['set']} | {row['split']} | {row['metric']} | {cells[0]} | {cells[1]} | "
                     f"{len(row['seeds'])} | {walls} |")
    lines.append(f"\nchemprop's start-up (``chemprop train --help``, one thread): {startup:.1f} s, included in its "
                 "wall times. Wall times count only runs where both sides trained side by side (a fivefold-only run "
                 "against an earlier chemprop run, ``--chemprop-from``, is left out: the two ran at different times).")
    (out / "moleculenet.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    parser.add_argument("--splits", nargs="+", default=["random", "scaffold"], choices=["random", "scaffold"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--no-chemprop", action="store_true", help="train fivefold only")
    parser.add_argument("--chemprop-from", type=Path, default=None,
                        help="reuse chemprop's side of the runs in this folder (same set, split, seed) where present")
    parser.add_argument("--data-root", default=None, help="data folder (default: $FIVEFOLD_DATA)")
    parser.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "moleculenet")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    chemprop = None if args.no_chemprop else ensure_chemprop()
    if chemprop is not None and not (args.out / "chemprop_startup.json").exists():
        (args.out / "chemprop_startup.json").write_text(json.dumps({"seconds": chemprop_startup(chemprop)}))
    for seed in args.seeds:
        for name in args.sets:
            for split_kind in args.splits:
                path = args.out / f"{name}_{split_kind}_{seed}.json"
                if path.exists():
                    continue
                began = time.perf_counter()
                earlier = args.chemprop_from / path.name if args.chemprop_from is not None else None
                if earlier is not None and not earlier.exists():
                    earlier = None
                record = one_run(name, split_kind, seed, args.epochs, chemprop, args.data_root, earlier)
                path.write_text(json.dumps(record))
                summary = {s: record[s]["test"] for s in ("fivefold", "chemprop") if s in record}
                print(f"{name} {split_kind} seed {seed}: {summary} ({time.perf_counter() - began:.0f} s)", flush=True)
    summarise(args.out)


if __name__ == "__main__":
    main()
