"""QM9 with SchNet, EGNN and the tensor-product network, trained for a fixed time each on this machine's CPU.

Usage:
    FIVEFOLD_DATA=../shared/data .venv/bin/python experiments/qm9.py \\
        [--models schnet egnn tensor_product] [--targets gap_hartree U0_hartree mu_debye] [--minutes 6] [--jobs 2]

Protocol: QM9 complete (130,831 molecules), the standard random split of DimeNet/SchNet (110,000 train, 10,000
validation, the remaining 10,831 test; seed 0); radius graphs with a 5 Angstrom cutoff; one model per target; L1 loss
on standardised targets; Adam at a constant 5e-4; batches of 64; the validation MAE measured on a fixed 1,000-molecule
subset of the validation set every ``--eval-every`` steps and the weights of its best evaluation kept; test MAE on the
whole test set. EGNN runs on the same 5 Angstrom radius graphs (the paper used fully connected molecules). U0 is
learnt after subtracting per-element reference energies fitted by least squares on the training set (atom counts ->
U0), the usual atomisation-energy-like target; MAEs are unaffected by this shift. Units:
meV for energies (1 Hartree = 27,211.386 meV), Debye for mu.

Each run trains on one thread for ``--minutes`` of CPU time (``--jobs`` runs at a time; CPU time, not wall time, so
that runs sharing the machine get the same compute; evaluations count towards it). The published models train for
days on GPUs (EGNN paper, Table 3: gap 48 meV, U0 11 meV, mu 0.029 D; SchNet: 63 meV, 14 meV, 0.033 D), so the
published figures are context, not a like-for-like comparison. Each run writes ``<model>_<target>.json`` to
``--out`` (existing runs are kept); ``qm9.md`` and ``qm9_val_mae.png`` (validation MAE against training time) are
rebuilt from them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path

import numpy as np
import torch

from fivefold.data import QM9_UNITS, load_qm9
from fivefold.molecules import EGNN, SchNet, TensorProductNet
from fivefold.train.molecules import fit_molecule_model, predict_molecules

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "schnet": lambda: SchNet(1, hidden=128, filters=128, interactions=6, cutoff=5.0),
    "egnn": lambda: EGNN(1, hidden=128, layers=7),
    "tensor_product": lambda: TensorProductNet(1, channels=32, lmax=2, layers=3, cutoff=5.0),
}
TARGETS = ("gap_hartree", "U0_hartree", "mu_debye")
VAL_SUBSET = 1000  # validation molecules scored at every evaluation (model selection and the curve)
PUBLISHED = {  # EGNN paper (Satorras et al. 2021), Table 3, as printed
    "gap_hartree": {"EGNN": "48", "SchNet": "63"}, "U0_hartree": {"EGNN": "11", "SchNet": "14"},
    "mu_debye": {"EGNN": "0.029", "SchNet": "0.033"},
}


def split(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(size)
    return order[:110_000], order[110_000:120_000], order[120_000:]


def atom_reference(qm9, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per-element energies ``e_Z`` fitted by least squares: ``U0 ~ sum_atoms e_Z``; returns ``[119]``."""
    elements = np.array([1, 6, 7, 8, 9])
    counts = np.zeros((len(rows), len(elements)))
    for k, r in enumerate(rows):
        z = qm9.z[qm9.ptr[r]:qm9.ptr[r + 1]]
        counts[k] = (z[:, None] == elements).sum(0)
    solution, *_ = np.linalg.lstsq(counts, values, rcond=None)
    reference = np.zeros(119)
    reference[elements] = solution
    return reference


def one_run(model_name: str, target: str, minutes: float, eval_every: int, root: str | None, out: Path) -> dict:
    torch.set_num_threads(1)
    qm9 = load_qm9(root)
    values, (train_rows, val_rows, test_rows) = targets_and_split(qm9, target)
    unit = QM9_UNITS[target][1]
    graphs = qm9.graphs(np.arange(len(qm9)))
    graphs = [g.replace(graph_y=torch.tensor([v])) for g, v in zip(graphs, values, strict=True)]
    train = [graphs[i] for i in train_rows]
    val_subset = [graphs[i] for i in val_rows[:VAL_SUBSET]]
    torch.manual_seed(0)
    model = MODELS[model_name]()
    began = time.perf_counter()
    result = fit_molecule_model(model, train, val_subset, task="regression", epochs=1000, loss="l1", init_lr=5e-4,
                                max_lr=5e-4, final_lr=5e-4, warmup_epochs=0, evaluate_every=eval_every,
                                time_budget=minutes * 60, budget_clock="cpu", progress=False,
                                desc=f"{model_name} {target}")
    trained = time.perf_counter() - began
    test = [graphs[i] for i in test_rows]
    predictions = predict_molecules(model, test, task="regression", scaler=result.scaler)[:, 0].numpy()
    scores = {"test_mae": float(np.abs(predictions - values[test_rows]).mean()),
              "val_subset_mae": float(result.best["val_mae"])}
    record = {"model": model_name, "target": target, "unit": unit, "cpu_minutes": minutes, "train_seconds": trained,
              "train_cpu_seconds": result.history[-1]["cpu_seconds"],
              "steps": result.history[-1]["step"], "epochs": result.history[-1]["step"] * 64 / len(train),
              "best_step": result.best["step"], **scores,
              "parameters": sum(p.numel() for p in model.parameters()),
              "curve": [{"seconds": row["seconds"], "cpu_seconds": row["cpu_seconds"], "step": row["step"],
                         "val_mae": row["val_mae"]}
                        for row in result.history]}
    (out / f"{model_name}_{target}.json").write_text(json.dumps(record))
    print(f"{model_name} {target}: test MAE {scores['test_mae']:.4g} {unit} after {record['epochs']:.2f} epochs "
          f"({record['train_cpu_seconds'] / 60:.1f} CPU min, {trained / 60:.1f} min wall)", flush=True)
    return record


def targets_and_split(qm9, target: str) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The target values a run learns (reported units; U0 minus the fitted atom references) and the split."""
    rows = split(len(qm9))
    factor, _ = QM9_UNITS[target]
    values = qm9.properties[target] * factor
    if target == "U0_hartree":
        reference = atom_reference(qm9, rows[0], values[rows[0]])
        values = values - np.array([reference[qm9.z[qm9.ptr[k]:qm9.ptr[k + 1]]].sum() for k in range(len(qm9))])
    return values, rows


def mean_baselines(root: str | None) -> dict[str, float]:
    """Test MAE of predicting the training mean (for U0: the per-element references alone): what a model must beat."""
    qm9 = load_qm9(root)
    out = {}
    for target in TARGETS:
        values, (train_rows, _, test_rows) = targets_and_split(qm9, target)
        out[target] = float(np.abs(values[test_rows] - values[train_rows].mean()).mean())
    return out


def summarise(out: Path, root: str | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [json.loads(p.read_text()) for p in sorted(out.glob("*_*.json"))]
    if not records:
        return
    lines = [f"| model | target | test MAE | val MAE ({VAL_SUBSET:,} molecules) | training | epochs | parameters | "
             "published (EGNN / SchNet) |",
             "|---|---|---|---|---|---|---|---|"]
    baselines = mean_baselines(root)
    for target in TARGETS:
        unit = QM9_UNITS[target][1]
        lines.append(f"| training mean (no model) | {target} | {baselines[target]:.4g} {unit} | - | - | - | - | - |")
    for r in sorted(records, key=lambda r: (TARGETS.index(r["target"]), r["model"])):
        published = PUBLISHED[r["target"]]
        lines.append(f"| {r['model']} | {r['target']} | {r['test_mae']:.4g} {r['unit']} | {r['val_subset_mae']:.4g} | "
                     f"{r['train_cpu_seconds'] / 60:.0f} CPU min | {r['epochs']:.2f} | {r['parameters']:,} | "
                     f"{published['EGNN']} / {published['SchNet']} {r['unit']} |")
    (out / "qm9.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    targets = [t for t in TARGETS if any(r["target"] == t for r in records)]
    figure, axes = plt.subplots(1, len(targets), figsize=(5 * len(targets), 4), squeeze=False)
    for axis, target in zip(axes[0], targets, strict=True):
        for r in records:
            if r["target"] == target:
                axis.plot([c["cpu_seconds"] / 60 for c in r["curve"]], [c["val_mae"] for c in r["curve"]],
                          label=r["model"])
        unit = QM9_UNITS[target][1]
        axis.set(title=f"QM9 {target.split('_')[0]}", xlabel="training time (CPU minutes, one thread)",
                 ylabel=f"validation MAE ({unit}, {VAL_SUBSET:,} molecules)", yscale="log")
        axis.legend()
    figure.tight_layout()
    figure.savefig(out / "qm9_val_mae.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--minutes", type=float, default=6.0,
                        help="training time per run, in CPU minutes of its one thread (so runs sharing the machine "
                             "get the same compute)")
    parser.add_argument("--eval-every", type=int, default=30, help="steps between validation evaluations")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one thread each)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "qm9")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    todo = [(m, t) for t in args.targets for m in args.models if not (args.out / f"{m}_{t}.json").exists()]
    jobs = [(m, t, args.minutes, args.eval_every, args.data_root, args.out) for m, t in todo]
    if args.jobs > 1 and len(jobs) > 1:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            pool.starmap(one_run, jobs, chunksize=1)
    else:
        for job in jobs:
            one_run(*job)
    summarise(args.out, args.data_root)


if __name__ == "__main__":
    main()
