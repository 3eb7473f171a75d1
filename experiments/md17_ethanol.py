"""Energies and forces of ethanol (the MD17-style sample of 2,000 configurations): a smoke test of the force path of
the 3D models, not a benchmark (the sample is small and its MD17 origin is likely but not verified).

Usage:
    FIVEFOLD_DATA=../shared/data .venv/bin/python experiments/md17_ethanol.py [--models tensor_product schnet egnn]
        [--minutes 3]

Protocol: configurations 0-999 train, 1000-1499 validation, 1500-1999 test (the file's order); every pair of atoms is
an edge (cutoff 5 Angstrom); forces are ``-dE/dpos`` of the predicted energy (``energy_and_forces``), so they are
conservative and rotate with the molecule. Loss ``0.01 * MSE(E) + MSE(F)`` in kcal/mol and kcal/mol/Angstrom (forces
weigh most, as in NequIP), energies shifted by the training mean; Adam 1e-3, batches of 32, ``--minutes`` of CPU time
on one thread (evaluations included), the weights of the best validation force MAE kept. Writes
``md17_ethanol.json`` and ``md17_ethanol.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from fivefold.data import load_md17_ethanol
from fivefold.graphs import Batch
from fivefold.molecules import EGNN, SchNet, TensorProductNet, energy_and_forces, from_xyz
from fivefold.train import KeepBest, ShuffledBatches, TimeBudget, fit

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "tensor_product": lambda: TensorProductNet(1, channels=32, lmax=2, layers=3, cutoff=5.0, avg_neighbours=8.0),
    "schnet": lambda: SchNet(1, hidden=64, filters=64, interactions=3, cutoff=5.0),
    "egnn": lambda: EGNN(1, hidden=64, layers=4),
}


def evaluate(model, graphs, energies, forces, mean: float) -> dict[str, float]:
    e_err, f_err = [], []
    for start in range(0, len(graphs), 100):
        batch = Batch.from_graphs(graphs[start:start + 100])
        energy, force = energy_and_forces(model, batch, create_graph=False)
        e_err.append((energy[:, 0] - energies[start:start + 100]).abs())
        f_err.append((force - forces[start:start + 100].reshape(-1, 3)).abs().flatten())
    return {"energy_mae": float(torch.cat(e_err).mean()), "force_mae": float(torch.cat(f_err).mean())}


def train_one(name: str, graphs, energies, forces, mean: float, minutes: float) -> dict:
    torch.manual_seed(0)
    model = MODELS[name]()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    began, cpu_began = time.perf_counter(), time.process_time()

    def loss(model, index):
        batch = Batch.from_graphs([graphs[i] for i in index.tolist()])
        energy, force = energy_and_forces(model, batch)
        target_f = forces[index].reshape(-1, 3)
        return 0.01 * ((energy[:, 0] - energies[index]) ** 2).mean() + ((force - target_f) ** 2).mean()

    def validation(model):
        row = evaluate(model, graphs[1000:1500], energies[1000:1500], forces[1000:1500], mean)
        return {"val_energy_mae": row["energy_mae"], "val_force_mae": row["force_mae"],
                "seconds": time.perf_counter() - began, "cpu_seconds": time.process_time() - cpu_began}

    keep = KeepBest(lambda row, best: best is None or row["val_force_mae"] < best["val_force_mae"])
    history = fit(model, ShuffledBatches(1000, 32, seed=0), loss=loss, optimiser=optimiser, epochs=10_000,
                  metrics=validation, callbacks=[keep, TimeBudget(minutes * 60, clock="cpu")], progress=False,
                  desc=name)
    scores = evaluate(model, graphs[1500:], energies[1500:], forces[1500:], mean)
    print(f"{name}: test energy MAE {scores['energy_mae']:.3f} kcal/mol, force MAE {scores['force_mae']:.3f} "
          f"kcal/mol/A after {history[-1]['epoch']} epochs", flush=True)
    return {**scores, "epochs": history[-1]["epoch"], "best_epoch": keep.best_row["epoch"],
            "train_seconds": time.perf_counter() - began, "train_cpu_seconds": history[-1]["cpu_seconds"],
            "parameters": sum(p.numel() for p in model.parameters())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "experiments" / "results")
    args = parser.parse_args()
    torch.set_num_threads(1)
    z, pos, energies, forces = load_md17_ethanol(args.data_root)
    graphs = [from_xyz(z, torch.from_numpy(p).float(), cutoff=5.0) for p in pos]
    mean = float(energies[:1000].mean())  # in float64, before the energies (about -97,195 kcal/mol) meet float32
    energies, forces = torch.from_numpy(energies - mean).float(), torch.from_numpy(forces).float()
    results = {}
    for name in args.models:
        results[name] = train_one(name, graphs, energies, forces, mean, args.minutes)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "md17_ethanol.json").write_text(json.dumps(results, indent=1))
    lines = ["| model | energy MAE (kcal/mol) | force MAE (kcal/mol/Å) | epochs | training | parameters |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['energy_mae']:.3f} | {r['force_mae']:.3f} | {r['epochs']} | "
                     f"{r['train_cpu_seconds'] / 60:.1f} CPU min | {r['parameters']:,} |")
    (args.out / "md17_ethanol.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
