"""Node classification on Cora and CiteSeer (public Planetoid split): GCN, GAT, GraphSAGE and GIN, 10 seeds each.

Usage:
    FIVEFOLD_DATA=../shared/data .venv/bin/python experiments/citation.py [--seeds 10] [--out experiments/results]

Writes ``citation.json`` (every run) and ``citation.md`` (mean +- std test accuracy) to ``--out``; runs of
(data set, model) pairs not re-run this time are kept from an existing ``citation.json``.
Protocol: features row-normalised; paper hyper-parameters from ``fivefold.train.presets``; test accuracy of the
weights selected on validation (best validation accuracy, ties by loss; for GAT the rule of its reference code).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from fivefold.data import load_planetoid
from fivefold.graphs import normalize_features
from fivefold.train import fit_node_classifier
from fivefold.train.presets import NODE_PRESETS, build_node_model

PAPER = {("gcn", "cora"): "81.5", ("gcn", "citeseer"): "70.3", ("gat", "cora"): "83.0 +- 0.7",
         ("gat", "citeseer"): "72.5 +- 0.7"}
NAMES = {"gcn": "GCN", "gat": "GAT", "sage": "GraphSAGE (mean)", "gin": "GIN"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--models", nargs="+", default=["gcn", "gat", "sage", "gin"])
    parser.add_argument("--datasets", nargs="+", default=["cora", "citeseer"])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default="experiments/results")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for dataset in args.datasets:
        graph = normalize_features(load_planetoid(dataset, args.data_root))
        num_classes = int(graph.y.max()) + 1
        for name in args.models:
            preset = NODE_PRESETS[name]
            for seed in range(args.seeds):
                torch.manual_seed(seed)
                model = build_node_model(name, graph.num_features, num_classes, preset.hidden, preset.dropout)
                start = time.perf_counter()
                result = fit_node_classifier(model, graph, epochs=preset.epochs, lr=preset.lr,
                                             weight_decay=preset.weight_decay, patience=preset.patience,
                                             selection=preset.selection, decay_biases=preset.decay_biases,
                                             progress=False)
                runs.append({"dataset": dataset, "model": name, "seed": seed, "test_acc": result["test_acc"],
                             "val_acc": result["val_acc"], "best_epoch": result["best_epoch"],
                             "seconds": time.perf_counter() - start})
                print(f"{dataset:9s} {name:5s} seed {seed}: test {result['test_acc']:.4f} "
                      f"(val {result['val_acc']:.4f}, epoch {result['best_epoch']}, "
                      f"{runs[-1]['seconds']:.1f} s)", flush=True)
    previous = out / "citation.json"  # read now, not at the start: another run may have written it meanwhile
    if previous.exists():
        redone = {(d, m) for d in args.datasets for m in args.models}
        runs += [r for r in json.loads(previous.read_text())["runs"] if (r["dataset"], r["model"]) not in redone]
    datasets = sorted({r["dataset"] for r in runs}, key=["cora", "citeseer"].index)
    models = [m for m in NAMES if any(r["model"] == m for r in runs)]
    summary = {}
    for dataset in datasets:
        for name in models:
            accs = np.array([r["test_acc"] for r in runs if r["dataset"] == dataset and r["model"] == name])
            summary[f"{name}/{dataset}"] = {"mean": float(accs.mean()), "std": float(accs.std()), "n": len(accs)}
    (out / "citation.json").write_text(json.dumps({"presets": {k: v.as_dict() for k, v in NODE_PRESETS.items()},
                                                   "summary": summary, "runs": runs}, indent=2))
    lines = ["| model | " + " | ".join(datasets) + " | paper (Cora / CiteSeer) |",
             "|---|" + "---|" * len(datasets) + "---|"]
    for name in models:
        cells = [f"{100 * summary[f'{name}/{d}']['mean']:.1f} +- {100 * summary[f'{name}/{d}']['std']:.1f}"
                 for d in datasets]
        paper = " / ".join(PAPER.get((name, d), "-") for d in ("cora", "citeseer"))
        lines.append(f"| {NAMES[name]} | " + " | ".join(cells) + f" | {paper} |")
    (out / "citation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
