"""Temporal link prediction (and dynamic node classification) with TGN, JODIE, TGAT and EdgeBank on the real
streams in the data folder, beside the published figures.

Usage:
    FIVEFOLD_DATA=../shared/data .venv/bin/python experiments/temporal_links.py \\
        [--streams wikipedia enron collegemsg] [--models tgn jodie tgat edgebank] [--seeds 0 1 2] [--epochs 10]

Protocol (TGN, Rossi et al. 2020; DyGLib, Yu et al. 2023): chronological 70/15/15 split; 10% of the nodes seen
after training hidden from training (the inductive setting's new nodes); batches of 200 (never splitting a
timestamp; each batch is recorded before it is scored, so a link at t sees the batch's own events strictly before
t among its sampled neighbours, as in the TGN and DyGLib reference code; memories change only after the batch);
Adam, one random negative per positive; the epoch with the best validation AP is kept (``--patience`` 5 by
default, at most ``--epochs`` epochs or ``--budget`` seconds of training per run: this machine has 2 CPU cores, the
papers train 50-100 epochs on GPUs). Test: AP and ROC-AUC against random, historical and inductive negatives
(Poursafaei et al. 2022), MRR of the true destination among 100 fixed candidates (half from the source's training
destinations, TGB's rule) on a seeded 10% of the test events, and the inductive setting (new-node test events,
random negatives).
Wikipedia adds dynamic node classification (ban labels, ROC-AUC) on the trained model's embeddings.
JODIE uses the preset (``build_stream_model``): DyGLib's time normaliser and dropout 0.1 since 2026-12-04;
``--jodie-dropout 0 --jodie-time-scale node-gaps`` gives the earlier runs' model.
``--history full``: validation and test also sample from the hidden nodes' training-period events (the full
neighbour samplers of DyGLib and the TGN reference code; training never sees them); the default, ``train``, samples
only from events the model observed.
No stream here has event features (Wikipedia's 172-d LIWC features are missing), so models see only who, whom, when.

Each run writes ``temporal_<stream>_<model>_<seed>.json`` to ``--out`` (existing files are kept: the script
resumes); ``temporal_links.md`` is rebuilt from all of them, and ``temporal_ap_over_time.png`` from the runs'
per-event test scores (``temporal_scores_<stream>_<model>_<seed>.npz``; the mean over seeds, the band their range).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from fivefold.data import load_stream
from fivefold.ops.metrics import average_precision
from fivefold.temporal import JODIE, TGAT
from fivefold.train.presets import build_stream_model, jodie_time_scale, node_gap_scale
from fivefold.train.temporal import fit_link_model, node_classification, test_link_model

MODELS = ("tgn", "jodie", "tgat", "edgebank")
STREAMS = ("wikipedia", "enron", "collegemsg")

# Published figures, as printed. DyGLib (Yu et al. 2023) numbers are the ones its successors reprint (TPNet, Lu et
# al. NeurIPS 2024, Tables 1, 6, 7, 9, which state they use DyGLib's implementation; DyG-Mamba prints the same AP).
# DyGLib's UCI is SNAP CollegeMsg. Its EdgeBank column uses a different memory mode per data set and sampler.
DYGLIB = {
    "transductive_random_ap": {
        "wikipedia": {"jodie": "96.50 ± 0.14", "tgat": "96.94 ± 0.06", "tgn": "98.45 ± 0.06", "edgebank": "90.37"},
        "enron": {"jodie": "84.77 ± 0.30", "tgat": "71.12 ± 0.97", "tgn": "86.53 ± 1.11", "edgebank": "83.53"},
        "collegemsg": {"jodie": "89.43 ± 1.09", "tgat": "79.63 ± 0.70", "tgn": "92.34 ± 1.04", "edgebank": "76.20"},
    },
    "transductive_random_auc": {
        "wikipedia": {"jodie": "96.33 ± 0.07", "tgat": "96.67 ± 0.07", "tgn": "98.37 ± 0.07", "edgebank": "90.78"},
        "enron": {"jodie": "87.96 ± 0.52", "tgat": "68.89 ± 1.10", "tgn": "88.32 ± 0.99", "edgebank": "87.05"},
        "collegemsg": {"jodie": "90.44 ± 0.49", "tgat": "78.53 ± 0.74", "tgn": "92.03 ± 1.13", "edgebank": "77.30"},
    },
    "transductive_historical_ap": {
        "wikipedia": {"jodie": "83.01 ± 0.66", "tgat": "87.38 ± 0.22", "tgn": "86.86 ± 0.33", "edgebank": "73.35"},
        "enron": {"jodie": "69.85 ± 2.70", "tgat": "64.07 ± 1.05", "tgn": "73.91 ± 1.76", "edgebank": "76.53"},
        "collegemsg": {"jodie": "75.24 ± 5.80", "tgat": "68.27 ± 1.37", "tgn": "80.43 ± 2.12", "edgebank": "65.50"},
    },
    "transductive_inductive_ap": {
        "wikipedia": {"jodie": "75.65 ± 0.79", "tgat": "87.00 ± 0.16", "tgn": "85.62 ± 0.44", "edgebank": "80.63"},
        "enron": {"jodie": "68.96 ± 0.98", "tgat": "63.94 ± 1.36", "tgn": "70.89 ± 2.72", "edgebank": "73.89"},
        "collegemsg": {"jodie": "65.99 ± 1.40", "tgat": "68.67 ± 0.84", "tgn": "70.94 ± 0.71", "edgebank": "57.43"},
    },
    "inductive_random_ap": {
        "wikipedia": {"jodie": "94.82 ± 0.20", "tgat": "96.22 ± 0.07", "tgn": "97.83 ± 0.04"},
        "enron": {"jodie": "80.72 ± 1.39", "tgat": "67.05 ± 1.51", "tgn": "77.94 ± 1.02"},
        "collegemsg": {"jodie": "79.86 ± 1.48", "tgat": "79.54 ± 0.48", "tgn": "88.12 ± 2.05"},
    },
}
# TGN paper (Rossi et al. 2020), Tables 2 and 3, Wikipedia with its LIWC edge features, 10 runs.
TGN_PAPER = {
    "transductive_random_ap": {"tgn": "98.46 ± 0.1", "jodie": "94.62 ± 0.5", "tgat": "95.34 ± 0.1"},
    "inductive_random_ap": {"tgn": "97.81 ± 0.1", "jodie": "93.11 ± 0.4", "tgat": "93.99 ± 0.3"},
    "node_auc": {"tgn": "87.81 ± 0.3", "jodie": "84.84 ± 1.2", "tgat": "83.69 ± 0.7"},
}
# TGB leaderboard, tgbl-wiki v2 (every other destination is a candidate, not 100 as here): test MRR.
TGB_WIKI_MRR = {"tgn": "0.396 ± 0.060", "tgat": "0.141 ± 0.007", "edgebank": "0.495 (unlimited)"}


def run(stream_name: str, model_name: str, seed: int, args: argparse.Namespace, out: Path) -> None:
    target = out / f"temporal_{stream_name}_{model_name}_{seed}.json"
    if target.exists():
        return
    stream = load_stream(stream_name, args.data_root)
    split = stream.split(seed=seed)
    torch.manual_seed(seed)
    time_scale = jodie_time_scale(stream, split.train)
    if model_name == "jodie" and args.jodie_time_scale == "node-gaps":
        time_scale = node_gap_scale(stream, split.train)
    if model_name == "jodie" and args.jodie_dropout is not None:
        model = JODIE(stream.num_nodes, time_scale=time_scale, dropout=args.jodie_dropout, seed=seed)
    elif model_name == "tgat" and (args.tgat_attention == "residual" or args.tgat_dropout is not None):
        model = TGAT(stream.num_nodes, neighbours=20, layers=2, strategy="recent",
                     residual=args.tgat_attention == "residual",
                     dropout=0.1 if args.tgat_dropout is None else args.tgat_dropout, seed=seed)
    else:
        model = build_stream_model(model_name, stream.num_nodes, time_scale=time_scale, seed=seed)
    budget = args.budget if model_name != "tgat" else args.tgat_budget
    began = time.perf_counter()
    split_ties = args.batches == "dyglib"
    fitted = fit_link_model(model, stream, split, epochs=args.epochs, patience=args.patience, lr=args.lr, seed=seed,
                            time_budget=budget, split_ties=split_ties, full_history=args.history == "full")
    test, scores = test_link_model(model, stream, split, fitted, return_scores=True, split_ties=split_ties)
    result = {"stream": stream_name, "model": model_name, "seed": seed, "lr": args.lr, "epochs_run":
              len(fitted["history"]), "best_epoch": fitted["best_epoch"], "history": fitted["history"],
              "test": test, "split": split.sizes(), "train_seconds": fitted["seconds"], "batches": args.batches,
              "history_at_evaluation": args.history}
    if model_name == "tgat":
        result["tgat"] = {"attention": args.tgat_attention, "dropout": model.layers[0].dropout.p}
    if model_name == "jodie":
        result["jodie"] = {"time_scale": time_scale, "time_scale_rule": args.jodie_time_scale,
                           "dropout": model.dropout.p}
    if stream.labels is not None and model_name != "edgebank":
        model.load_state_dict(fitted["val_state"])
        result["node_classification"] = node_classification(model, stream, seed=seed)
    result["seconds"] = time.perf_counter() - began
    # per-event test scores for the AP-over-time plot
    np.savez_compressed(out / f"temporal_scores_{stream_name}_{model_name}_{seed}.npz",
                        t=stream.t.numpy()[split.test], positive=scores.positive.numpy(),
                        negative=scores.negative["random"].numpy(), train_end=split.val_time)
    target.write_text(json.dumps(result, indent=1))
    print(f"{stream_name} {model_name} seed {seed}: test AP {100 * test['transductive_random_ap']:.2f}, "
          f"inductive AP {100 * test['inductive_random_ap']:.2f}, MRR {test['transductive_mrr']:.3f}, "
          f"{len(fitted['history'])} epochs, {result['seconds']:.0f} s", flush=True)


def summary(out: Path) -> str:
    results: dict[tuple[str, str], list[dict]] = {}
    for path in sorted(out.glob("temporal_*_*_*.json")):
        r = json.loads(path.read_text())
        results.setdefault((r["stream"], r["model"]), []).append(r)

    def cell(rows: list[dict], key: str, scale: float = 100.0, digits: int = 2) -> str:
        values = [r["test"][key] * scale for r in rows if key in r["test"]]
        if not values:
            return "-"
        return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"

    lines = ["Test metrics, mean ± std over seeds (ours: no event features; theirs as printed).", ""]
    columns = [("transductive_random_ap", "AP random"), ("transductive_random_auc", "AUC random"),
               ("transductive_historical_ap", "AP historical"), ("transductive_inductive_ap", "AP inductive neg."),
               ("inductive_random_ap", "AP new nodes")]
    lines.append("| stream | model | seeds | epochs | " + " | ".join(f"{label} (ours / DyGLib)" for _, label in columns)
                 + " | AP random, mean over batches (ours) | MRR (100 cand.) | train s/epoch |")
    lines.append("|---" * (len(columns) + 7) + "|")
    for stream in STREAMS:
        for model in MODELS:
            rows = results.get((stream, model))
            if not rows:
                continue
            cells = [f"{cell(rows, key)} / {DYGLIB[key].get(stream, {}).get(model, '-')}" for key, _ in columns]
            epochs = np.mean([r["epochs_run"] for r in rows])
            per_epoch = np.mean([np.mean([h["train_seconds"] for h in r["history"]]) for r in rows])
            lines.append(f"| {stream} | {model} | {len(rows)} | {epochs:.1f} | " + " | ".join(cells)
                         + f" | {cell(rows, 'transductive_random_ap_per_batch')}"
                         + f" | {cell(rows, 'transductive_mrr', 1.0, 3)} | {per_epoch:.1f} |")
    lines += ["", "Wikipedia beside the TGN paper (which has the LIWC edge features):", "",
              "| model | AP random (ours / TGN paper) | AP new nodes (ours / TGN paper) | node classification AUC "
              "(ours / TGN paper) | MRR (ours, 100 candidates / TGB tgbl-wiki, all destinations) |",
              "|---|---|---|---|---|"]
    for model in MODELS:
        rows = results.get(("wikipedia", model))
        if not rows:
            continue
        node = [r["node_classification"]["test_auc"] * 100 for r in rows if "node_classification" in r]
        node_cell = f"{np.mean(node):.2f} ± {np.std(node):.2f}" if node else "-"
        lines.append(f"| {model} | {cell(rows, 'transductive_random_ap')} / "
                     f"{TGN_PAPER['transductive_random_ap'].get(model, '-')} | {cell(rows, 'inductive_random_ap')} / "
                     f"{TGN_PAPER['inductive_random_ap'].get(model, '-')} | {node_cell} / "
                     f"{TGN_PAPER['node_auc'].get(model, '-')} | {cell(rows, 'transductive_mrr', 1.0, 3)} / "
                     f"{TGB_WIKI_MRR.get(model, '-')} |")
    return "\n".join(lines) + "\n"


def _binned_ap(data: np.lib.npyio.NpzFile, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Test AP (random negatives) in ``bins`` equal-count slices of the test period: (days after training, AP)."""
    edges = np.quantile(data["t"], np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, data["t"], side="right") - 1, 0, bins - 1)
    days, aps = [], []
    for b in range(bins):
        chosen = which == b
        if chosen.sum() < 2:
            continue
        scores = np.r_[data["positive"][chosen], data["negative"][chosen]]
        labels = np.r_[np.ones(chosen.sum()), np.zeros(chosen.sum())]
        days.append((np.median(data["t"][chosen]) - float(data["train_end"])) / 86400)
        aps.append(100 * average_precision(scores, labels))
    return np.asarray(days), np.asarray(aps)


def plot_over_time(out: Path, bins: int = 10) -> Path | None:
    """AP over the test period per stream and model: the mean over the seeds' score files, the band their range."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs: dict[tuple[str, str], list[Path]] = {}
    for path in sorted(out.glob("temporal_scores_*_*_*.npz")):
        _, _, stream, model, _ = path.stem.split("_")
        runs.setdefault((stream, model), []).append(path)
    if not runs:
        return None
    streams = [s for s in STREAMS if any(key[0] == s for key in runs)]
    figure, axes = plt.subplots(1, len(streams), figsize=(4.5 * len(streams), 3.4), squeeze=False)
    for axis, stream in zip(axes[0], streams, strict=True):
        for model in MODELS:
            paths = runs.get((stream, model))
            if not paths:
                continue
            curves = [_binned_ap(np.load(path), bins) for path in paths]
            days = curves[0][0]
            aps = np.stack([aps for _, aps in curves])
            colour = f"C{MODELS.index(model)}"
            seeds = f"{len(paths)} seed" + ("s" if len(paths) > 1 else "")
            axis.plot(days, aps.mean(0), marker="o", label=f"{model} ({seeds})", color=colour)
            axis.fill_between(days, aps.min(0), aps.max(0), color=colour, alpha=0.2, linewidth=0)
        axis.set_title(stream)
        axis.set_xlabel("days after the end of training")
        axis.set_ylabel("test AP (random negatives)")
        axis.legend(fontsize=8)
    figure.tight_layout()
    target = out / "temporal_ap_over_time.png"
    figure.savefig(target, dpi=110)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", nargs="*", default=list(STREAMS), choices=STREAMS)
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10, help="at most this many epochs per run")
    parser.add_argument("--patience", type=int, default=5,
                        help="stop after this many epochs without a better validation AP (DyGLib: 20)")
    parser.add_argument("--budget", type=float, default=600.0, help="training seconds per run (TGN, JODIE)")
    parser.add_argument("--tgat-budget", type=float, default=300.0, help="training seconds per TGAT run")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batches", choices=("whole-timestamps", "dyglib"), default="whole-timestamps",
                        help="batches of 200 that never split a timestamp (default), or cut every 200 events as "
                             "DyGLib does, so a query's memory may hold events of its own timestamp (comparison only)")
    parser.add_argument("--jodie-dropout", type=float, default=None,
                        help="dropout on JODIE's embedding (default: the preset's 0.1, DyGLib's; runs before "
                             "2026-12-04 had 0)")
    parser.add_argument("--jodie-time-scale", choices=("node-gaps", "dyglib"), default="dyglib",
                        help="JODIE's time normaliser: DyGLib's (per role, first events counted from the stream's "
                             "start; the default), or the std of the gaps between a node's events (before 2026-12-04)")
    parser.add_argument("--tgat-attention", choices=("merge", "residual"), default="merge",
                        help="TGAT's attention layers: 'merge' (the preset: heads merged with the node's state, as "
                             "TGN's embedding) or 'residual' (TGAT's reference code and DyGLib: output map, residual, "
                             "LayerNorm, merged with the raw node features)")
    parser.add_argument("--tgat-dropout", type=float, default=None,
                        help="TGAT's dropout (default: the preset's 0.1; DyGLib uses 0.2 on Enron)")
    parser.add_argument("--history", choices=("train", "full"), default="train",
                        help="what validation and test sample neighbours from: 'train' (the events the model "
                             "observed: training without the hidden nodes' events, then the evaluated periods) or "
                             "'full' (also the hidden nodes' training-period events, as the full neighbour samplers "
                             "of DyGLib and the TGN reference code; never used in training)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default="experiments/results")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for seed in args.seeds:
        for stream in args.streams:
            for model in args.models:
                run(stream, model, seed, args, out)
    (out / "temporal_links.md").write_text(summary(out))
    plot_over_time(out)
    print((out / "temporal_links.md").read_text())


if __name__ == "__main__":
    main()
