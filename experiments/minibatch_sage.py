"""Mini-batch GraphSAGE against full-batch GraphSAGE on Cora and CiteSeer (public Planetoid split), 5 seeds each.

Usage:
    FIVEFOLD_DATA=../shared/data .venv/bin/python experiments/minibatch_sage.py [--seeds 5] [--out experiments/results]

Both train the same two-layer GraphSAGE (mean; hidden 64, dropout 0.5, Adam lr 0.01, L2 5e-4, 200 epochs: the
full-batch preset of ``fivefold.train.presets``) and keep the epoch with the best validation accuracy (ties: lower
validation loss), scored by exact full-graph inference. Mini-batch: ``fivefold.scale.NeighborLoader`` over the
training nodes, batches of 32 seeds, fan-outs [10, 10], the graph first written to a ``fivefold.scale`` store and read
back through its memory maps, so the store, the sampler, the blocks and the loader are all on the path. The
mini-batch settings were fixed before any run (no tuning). Writes ``minibatch_sage.json`` and ``minibatch_sage.md``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fivefold.data import load_planetoid
from fivefold.graphs import normalize_features
from fivefold.scale import NeighborLoader, open_store, write_store
from fivefold.train import fit_node_classifier, fit_node_classifier_minibatch
from fivefold.train.presets import NODE_PRESETS, build_node_model

FANOUTS, BATCH = [10, 10], 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--datasets", nargs="+", default=["cora", "citeseer"])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default="experiments/results")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    preset = NODE_PRESETS["sage"]
    runs = []
    for dataset in args.datasets:
        graph = normalize_features(load_planetoid(dataset, args.data_root))
        classes = int(graph.y.max()) + 1
        with tempfile.TemporaryDirectory() as folder:
            store = open_store(write_store(Path(folder) / dataset, graph).path, verify=True)
            for seed in range(args.seeds):
                for mode in ("full-batch", "mini-batch"):
                    torch.manual_seed(seed)
                    model = build_node_model("sage", graph.num_features, classes, preset.hidden, preset.dropout)
                    start = time.perf_counter()
                    if mode == "full-batch":
                        result = fit_node_classifier(model, graph, epochs=preset.epochs, lr=preset.lr,
                                                     weight_decay=preset.weight_decay, progress=False)
                    else:
                        loader = NeighborLoader(store, store.train_mask, FANOUTS, batch_size=BATCH, seed=seed)
                        result = fit_node_classifier_minibatch(model, graph, loader, epochs=preset.epochs,
                                                               lr=preset.lr, weight_decay=preset.weight_decay,
                                                               progress=False)
                    runs.append({"dataset": dataset, "mode": mode, "seed": seed, "test_acc": result["test_acc"],
                                 "val_acc": result["val_acc"], "best_epoch": result["best_epoch"],
                                 "seconds": time.perf_counter() - start})
                    print(f"{dataset:9s} {mode:10s} seed {seed}: test {result['test_acc']:.4f} (val "
                          f"{result['val_acc']:.4f}, epoch {result['best_epoch']}, {runs[-1]['seconds']:.0f} s)",
                          flush=True)
    (out / "minibatch_sage.json").write_text(json.dumps({"fanouts": FANOUTS, "batch_size": BATCH, "runs": runs},
                                                        indent=2))
    lines = ["| data set | training | test accuracy % | validation accuracy % | seconds per run |",
             "|---|---|---|---|---|"]
    for dataset in args.datasets:
        for mode in ("full-batch", "mini-batch"):
            chosen = [r for r in runs if r["dataset"] == dataset and r["mode"] == mode]
            test = 100 * np.array([r["test_acc"] for r in chosen])
            val = 100 * np.array([r["val_acc"] for r in chosen])
            seconds = np.mean([r["seconds"] for r in chosen])
            lines.append(f"| {dataset} | {mode} | {test.mean():.1f} +- {test.std():.1f} | {val.mean():.1f} +- "
                         f"{val.std():.1f} | {seconds:.0f} |")
    (out / "minibatch_sage.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
