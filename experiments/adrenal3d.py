"""Data efficiency in 3D on real CT shapes: a 3D CNN and a 3D G-CNN (cube rotations O) of equal parameter budget,
trained on 10 %, 25 %, 50 % and 100 % of AdrenalMNIST3D's training set (MedMNIST v2, 28^3, official split).

Usage:
    FIVEFOLD_DATA=../shared/data .venv/bin/python experiments/adrenal3d.py
    .venv/bin/python experiments/adrenal3d.py --summarise      # table and plot from the finished runs

The claim tested (Winkels & Cohen 2018, on lung nodules): the G-CNN trained on about a tenth of the data matches the
CNN trained on all of it. NoduleMNIST3D, the lung-nodule set, is not in the data folder; AdrenalMNIST3D is a
different task (adrenal hyperplasia from segmented gland shapes), so the numbers here are not the paper's numbers.

Protocol: for each seed, a stratified random subset of the 1,188 training volumes (``torch.Generator`` seeded by the
seed; the fractions are nested per seed) trains each model for ``--steps`` Adam steps (lr 1e-3, cosine decay,
batch 16; the same number of steps for every fraction, so small subsets are seen for more epochs). Every
``--eval-every`` steps the validation AUC (98 volumes) is measured; the weights with the best validation AUC are
tested (the MedMNIST protocol: select on val). Metrics: test AUC and accuracy (threshold: the larger probability).
Input: the 28^3 volumes average-pooled to 14^3 (the CPU budget of this machine; both models see the same input).
Models: ``GCNNClassifier`` with widths ``[c, c, 2c, 2c, 8c]``, 3x3x3 kernels and a final 1x1x1 layer, group batch
norm, ReLU, 2x max pooling after layer 2 (14 -> 7), max over the group, spatial mean, linear; ``c`` matched to the
parameter count of the CNN with base width ``--cnn-base``. Each run is appended to
``experiments/results/adrenal3d.jsonl`` (resumable); ``--summarise`` writes ``adrenal3d.md``, ``adrenal3d.json``
and ``adrenal3d.png``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _grid_models import NAMES, accuracy, append_run, binary_auc, build, done_runs, predict, train

from fivefold.data import load_medmnist3d
from fivefold.grids import count_parameters
from fivefold.train import KeepBest

RESULTS = Path(__file__).resolve().parent / "results"
FRACTIONS = (0.1, 0.25, 0.5, 1.0)


def stratified_order(labels: torch.Tensor, seed: int) -> list[torch.Tensor]:
    """Per class, the training indices in a seeded random order (prefixes give nested stratified subsets)."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.nonzero(labels == c).flatten()[torch.randperm(int((labels == c).sum()), generator=generator)]
            for c in range(int(labels.max()) + 1)]


def subset(orders: list[torch.Tensor], fraction: float) -> torch.Tensor:
    return torch.cat([order[:max(1, round(fraction * len(order)))] for order in orders])


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    path = Path(args.out) / "adrenal3d.jsonl"
    finished = {(r["model"], r["seed"], r["fraction"]) for r in done_runs(path)}
    splits = {split: load_medmnist3d("adrenalmnist3d", split, args.data_root) for split in ("train", "val", "test")}
    # 2x2x2 average pooling: 14^3 occupancy fractions (keeps the cube group's action exact: 28 is even)
    images = {split: F.avg_pool3d(data.as_float(), 2) for split, data in splits.items()}
    labels = {split: data.labels for split, data in splits.items()}
    for seed in args.seeds:
        orders = stratified_order(labels["train"], seed)
        for fraction in args.fractions:
            index = subset(orders, fraction)
            for name in args.models:
                if (name, seed, fraction) in finished:
                    continue
                torch.manual_seed(seed)
                model = build(name, args.cnn_base, 1, 2, 3, pool_after=(1,), kernel_sizes=[3, 3, 3, 3, 1])
                best = KeepBest(lambda row, best: row["val_auc"] > (-1.0 if best is None else best["val_auc"]))

                def evaluate(model):
                    return {"val_auc": binary_auc(predict(model, images["val"], 100)[:, 1], labels["val"])}

                start = time.perf_counter()
                history = train(model, images["train"][index], labels["train"][index], steps=args.steps,
                                batch_size=args.batch_size, lr=args.lr, seed=seed, evaluate=evaluate,
                                evaluate_every=args.eval_every, callbacks=[best])  # ends with the best weights
                seconds = time.perf_counter() - start
                probabilities = predict(model, images["test"], 100)
                record = {"model": name, "seed": seed, "fraction": fraction, "train_size": len(index),
                          "parameters": count_parameters(model),
                          "widths": [conv.out_channels for conv in model.convs],
                          "test_auc": binary_auc(probabilities[:, 1], labels["test"]),
                          "test_acc": accuracy(probabilities, labels["test"]), "val_auc": best.best_row["val_auc"],
                          "steps": args.steps, "history": history, "train_seconds": seconds}
                append_run(path, record)
                print(f"{name:5s} seed {seed} fraction {fraction:4.2f} ({len(index):4d} volumes): test AUC "
                      f"{record['test_auc']:.3f} ACC {record['test_acc']:.3f} (val AUC {record['val_auc']:.3f}, "
                      f"{record['parameters']} parameters, {seconds:.0f} s)", flush=True)


def summarise(out: Path, published: dict[str, tuple[float, float]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = done_runs(out / "adrenal3d.jsonl")
    models = [m for m in NAMES if any(r["model"] == m for r in runs)]
    summary, lines = {}, ["| model | parameters | fraction | training volumes | seeds | test AUC | test ACC |",
                          "|---|---|---|---|---|---|---|"]
    for model in models:
        for fraction in FRACTIONS:
            chosen = [r for r in runs if r["model"] == model and r["fraction"] == fraction]
            if not chosen:
                continue
            auc = np.array([r["test_auc"] for r in chosen])
            acc = np.array([r["test_acc"] for r in chosen])
            summary[f"{model}/{fraction}"] = {"auc_mean": auc.mean(), "auc_std": auc.std(), "acc_mean": acc.mean(),
                                              "acc_std": acc.std(), "n": len(chosen),
                                              "train_size": chosen[0]["train_size"]}
            lines.append(f"| {NAMES[model]} | {chosen[0]['parameters']} | {fraction:.0%} | {chosen[0]['train_size']} "
                         f"| {len(chosen)} | {auc.mean():.3f} +- {auc.std():.3f} "
                         f"| {acc.mean():.3f} +- {acc.std():.3f} |")
    if published:
        lines += ["", "MedMNIST v2 baselines (100 % of the training set, 28^3), as printed on the MedMNIST project "
                  "page (pre-publication v2 page, MedMNIST/medmnist.github.io v2.html @ 6f5bc1a):", "",
                  "| method | test AUC | test ACC |", "|---|---|---|"]
        lines += [f"| {name} | {auc:.3f} | {acc:.3f} |" for name, (auc, acc) in published.items()]
    (out / "adrenal3d.md").write_text("\n".join(lines) + "\n")
    (out / "adrenal3d.json").write_text(json.dumps({"summary": summary, "published": published}, indent=2))
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for model in models:
        points = [(f, summary[f"{model}/{f}"]) for f in FRACTIONS if f"{model}/{f}" in summary]
        for axis, metric in zip(axes, ("auc", "acc"), strict=True):
            axis.errorbar([100 * f for f, _ in points], [s[f"{metric}_mean"] for _, s in points],
                          yerr=[s[f"{metric}_std"] for _, s in points], marker="o", capsize=3, label=NAMES[model])
    for axis, metric in zip(axes, ("test AUC", "test accuracy"), strict=True):
        for index, (name, values) in enumerate(published.items()):
            axis.axhline(values[0 if metric == "test AUC" else 1], color="grey", lw=0.8,
                         ls=["--", ":", "-."][index % 3], label=f"{name} (100 %)")
        axis.set_xscale("log")
        axis.set_xticks([10, 25, 50, 100], ["10 %", "25 %", "50 %", "100 %"])
        axis.set_xlabel("fraction of the training set")
        axis.set_ylabel(metric)
    axes[0].legend(fontsize=7)
    figure.suptitle("AdrenalMNIST3D: 3D CNN vs 3D G-CNN (O) at equal parameter budget")
    figure.tight_layout()
    figure.savefig(out / "adrenal3d.png", dpi=120)
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["cnn3d", "o"], choices=["cnn3d", "o"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--fractions", nargs="+", type=float, default=list(FRACTIONS))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--cnn-base", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--summarise", action="store_true", help="only write the table and plot")
    args = parser.parse_args()
    if args.summarise:
        summarise(Path(args.out), PUBLISHED)
    else:
        run(args)


# MedMNIST v2 baselines for AdrenalMNIST3D, test (AUC, ACC), as printed in the "Benchmarking Performance on
# MedMNIST3D" table of the MedMNIST project page (github.com/MedMNIST/medmnist.github.io, v2.html at commit
# 6f5bc1a518a647459062dc4338f3edc0cff68b89). That page predates the published paper (Sci. Data 10, 41, 2023), whose
# Table for the 3D sets could not be read here; its Adrenal numbers may differ.
PUBLISHED: dict[str, tuple[float, float]] = {
    "ResNet-18 + 3D": (0.819, 0.730),
    "ResNet-50 + 3D": (0.809, 0.732),
    "ResNet-18 + ACS": (0.824, 0.719),
    "auto-sklearn": (0.828, 0.802),
}

if __name__ == "__main__":
    main()
