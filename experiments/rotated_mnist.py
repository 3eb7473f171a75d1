"""Rotated digits: a CNN, a C4 and a D4 G-CNN and a C8 steerable CNN of about equal parameter count, on real MNIST.

Usage:
    FIVEFOLD_DATA=../shared/data .venv/bin/python experiments/rotated_mnist.py --protocol upright
    FIVEFOLD_DATA=../shared/data .venv/bin/python experiments/rotated_mnist.py --protocol mnist-rot
    FIVEFOLD_DATA=../shared/data .venv/bin/python experiments/rotated_mnist.py --protocol mnist-rot \
        --models c8 --epochs 30
    .venv/bin/python experiments/rotated_mnist.py --summarise      # tables from the finished runs

Protocols (every random draw below has a fixed seed, so every model and seed sees the same test sets):
- ``upright``: train on the 60,000 upright training digits; test on the 10,000 test digits three ways: upright; each
  rotated by a multiple of 90 degrees drawn uniformly (``torch.Generator().manual_seed(2026)``, exact pixel
  rotation); each rotated by an angle drawn uniformly from [0, 360) degrees (seed 2027, bilinear, zeros outside).
- ``mnist-rot`` (the protocol of Larochelle et al. 2007, rebuilt from MNIST): the 70,000 digits (training set then test
  set) are shuffled with seed 0; the first 12,000 are the training set, the next 50,000 the test set; every one of
  them is rotated by an angle drawn uniformly from [0, 360) degrees (seed 1, bilinear). No validation selection: the
  model after the last step is tested.

Training: Adam (lr 2e-3, cosine decay to 0), batch 64, ``--epochs`` passes over the training set (default 1 for
``upright``, 10 for ``mnist-rot``), no augmentation. Models: ``GCNNClassifier`` with widths ``[c, c, 2c, 2c, 4c]``,
5x5 lifting then 3x3 group convs, group batch norm, ReLU, 2x max pooling after layers 2 and 4, max over the group,
spatial mean, linear; ``c`` matched to the CNN's parameter count (``experiments/_grid_models.py``).
Each finished run is appended to ``experiments/results/rotated_mnist_<protocol>.jsonl``; runs already there (same
model, seed and epochs) are skipped, so the script resumes. ``--summarise`` writes ``rotated_mnist.md`` and
``rotated_mnist.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from _grid_models import NAMES, accuracy, append_run, build, done_runs, predict, train

from fivefold.data import load_mnist
from fivefold.grids import count_parameters
from fivefold.groups import cyclic, rotate_images, transform_grid

RESULTS = Path(__file__).resolve().parent / "results"
PUBLISHED_MNIST_ROT_ERROR = {"P4CNN (Cohen & Welling 2016)": 2.28, "E(2)-CNN (Weiler & Cesa 2019)": 0.68}
CNN_BASE = 12


def rotate_by_right_angles(images: torch.Tensor, seed: int) -> torch.Tensor:
    c4 = cyclic(4)
    turns = torch.randint(4, (len(images),), generator=torch.Generator().manual_seed(seed))
    out = images.clone()
    for k in range(1, 4):
        chosen = turns == k
        out[chosen] = transform_grid(images[chosen], c4.matrix(k))
    return out


def rotate_uniformly(images: torch.Tensor, seed: int) -> torch.Tensor:
    angles = torch.rand(len(images), generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 * math.pi
    return torch.cat([rotate_images(images[i:i + 5000], angles[i:i + 5000]) for i in range(0, len(images), 5000)])


def make_protocol(protocol: str, root: str | None) -> tuple[torch.Tensor, torch.Tensor, dict]:
    train_set, test_set = load_mnist("train", root), load_mnist("test", root)
    if protocol == "upright":
        test_images = test_set.as_float()
        conditions = {"upright": test_images, "rot90": rotate_by_right_angles(test_images, 2026),
                      "rotated": rotate_uniformly(test_images, 2027)}
        return train_set.as_float(), train_set.labels, {k: (v, test_set.labels) for k, v in conditions.items()}
    images = torch.cat([train_set.as_float(), test_set.as_float()])
    labels = torch.cat([train_set.labels, test_set.labels])
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    rotated = rotate_uniformly(images[order[:62000]], 1)
    chosen = labels[order[:62000]]
    return rotated[:12000], chosen[:12000], {"mnist-rot test": (rotated[12000:], chosen[12000:])}


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    path = Path(args.out) / f"rotated_mnist_{args.protocol}.jsonl"
    epochs = args.epochs or (1 if args.protocol == "upright" else 10)
    finished = {(r["model"], r["seed"], r["epochs"]) for r in done_runs(path)}
    if all((name, seed, epochs) in finished for seed in args.seeds for name in args.models):
        return
    train_images, train_labels, conditions = make_protocol(args.protocol, args.data_root)
    steps = args.steps or epochs * len(train_labels) // args.batch_size
    for seed in args.seeds:
        for name in args.models:
            if (name, seed, epochs) in finished:
                continue
            torch.manual_seed(seed)
            model = build(name, CNN_BASE, 1, 10, 2)
            start = time.perf_counter()
            train(model, train_images, train_labels, steps=steps, batch_size=args.batch_size, lr=args.lr, seed=seed)
            train_seconds = time.perf_counter() - start
            scores = {condition: accuracy(predict(model, images), labels)
                      for condition, (images, labels) in conditions.items()}
            record = {"protocol": args.protocol, "model": name, "seed": seed, "parameters": count_parameters(model),
                      "widths": [conv.out_channels for conv in model.convs], "epochs": epochs, "steps": steps,
                      "accuracy": scores, "train_seconds": train_seconds}
            append_run(path, record)
            print(f"{args.protocol} {name:4s} seed {seed}: " + ", ".join(f"{k} {100 * v:.2f}" for k, v in
                                                                         scores.items())
                  + f" ({record['parameters']} parameters, {train_seconds:.0f} s)", flush=True)


def summarise(out: Path) -> None:
    """Tables per protocol: one row per model and training length (epochs), mean +- std over seeds."""
    lines, summary = [], {}
    for protocol in ("upright", "mnist-rot"):
        runs = done_runs(out / f"rotated_mnist_{protocol}.jsonl")
        if not runs:
            continue
        conditions = list(runs[0]["accuracy"])
        rows = [(m, e) for e in sorted({r["epochs"] for r in runs}) for m in NAMES
                if any(r["model"] == m and r["epochs"] == e for r in runs)]
        lines += [f"### {protocol}", "", "| model | epochs | parameters | seeds | " + " | ".join(conditions) + " |",
                  "|---|---|---|---|" + "---|" * len(conditions)]
        for model, epochs in rows:
            chosen = [r for r in runs if r["model"] == model and r["epochs"] == epochs]
            cells = []
            for condition in conditions:
                values = 100 * np.array([r["accuracy"][condition] for r in chosen])
                summary[f"{protocol}/{model}/{epochs} epochs/{condition}"] = {
                    "mean": values.mean(), "std": values.std(), "n": len(values),
                    "seeds": sorted(r["seed"] for r in chosen)}
                cells.append(f"{values.mean():.2f} +- {values.std():.2f}")
            lines.append(f"| {NAMES[model]} | {epochs} | {chosen[0]['parameters']} | {len(chosen)} | "
                         + " | ".join(cells) + " |")
        if protocol == "mnist-rot":
            lines += ["", "Test error (%) beside the published ones:", ""]
            for model, epochs in rows:
                stats = summary[f"{protocol}/{model}/{epochs} epochs/mnist-rot test"]
                lines.append(f"- {NAMES[model]}, {epochs} epochs: {100 - stats['mean']:.2f} +- {stats['std']:.2f} "
                             f"({stats['n']} seeds)")
            lines += [f"- {name}: {error:.2f} (published)" for name, error in PUBLISHED_MNIST_ROT_ERROR.items()]
        lines.append("")
    out.mkdir(parents=True, exist_ok=True)
    (out / "rotated_mnist.md").write_text("\n".join(lines))
    (out / "rotated_mnist.json").write_text(json.dumps(summary, indent=2))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", choices=["upright", "mnist-rot"], default="upright")
    parser.add_argument("--models", nargs="+", default=["cnn", "c4", "d4", "c8"], choices=["cnn", "c4", "d4", "c8"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps (overrides --epochs)")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (run protocols side by side)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--summarise", action="store_true", help="only write the tables from finished runs")
    args = parser.parse_args()
    if args.summarise:
        summarise(Path(args.out))
    else:
        run(args)


if __name__ == "__main__":
    main()
