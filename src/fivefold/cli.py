"""The ``fivefold`` command: ``fivefold train`` and ``fivefold datasets``. Thin: parses, then calls train/data."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from fivefold.data import find_datasets, load_medmnist3d, load_mnist, load_tu, stratified_folds
from fivefold.errors import FivefoldError
from fivefold.train import (
    RunFolder,
    cross_validate,
    fit_image_classifier,
    fit_node_classifier,
    predict_proba,
    rotate_test_set,
)
from fivefold.train.presets import (
    GRAPH_PRESET,
    IMAGE_MODELS,
    NODE_PRESETS,
    build_graph_model,
    build_image_model,
    build_node_model,
    load_node_task,
)

NODE_TASKS = ("cora", "citeseer")
GRAPH_TASKS = ("MUTAG", "PROTEINS", "ENZYMES")
IMAGE_TASKS = {"mnist": 2, "adrenalmnist3d": 3}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fivefold", description="fivefold: geometric deep learning in PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser(
        "train",
        help="train a model and write a run folder",
        description=(
            "Train a model and write runs/<timestamp>-<task>/ with config.json, metrics.json, checkpoint.pt and "
            "curves.png. With no arguments: a 2-layer GCN on the Cora graph embedded in the package.\n\n"
            "Tasks: cora, citeseer (node classification, public Planetoid split; models gcn, gat, sage, gin), "
            "MUTAG, PROTEINS, ENZYMES (graph classification with GIN-0, stratified k-fold cross-validation), "
            "mnist (digits; models cnn, c4, d4, c8: a plain CNN, C4 and D4 G-CNNs and a C8 steerable CNN of about "
            "the same parameter count; the test set is also scored rotated by multiples of 90 degrees), "
            "adrenalmnist3d (MedMNIST 3D CT shapes; models cnn3d, o: a 3D CNN and a cube-rotation G-CNN).\n"
            "Real data other than the embedded Cora are read from --data-root or $FIVEFOLD_DATA."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("--task", default="cora", choices=NODE_TASKS + GRAPH_TASKS + tuple(IMAGE_TASKS),
                       help="data set (default: cora)")
    train.add_argument("--model", choices=sorted(NODE_PRESETS) + sorted(IMAGE_MODELS),
                       help="model (default: gcn for node tasks, c4 for mnist, o for adrenalmnist3d; graph tasks "
                            "always use GIN)")
    train.add_argument("--epochs", type=int, help="training epochs (default: the paper's value for the model)")
    train.add_argument("--lr", type=float, help="Adam learning rate (default: the paper's)")
    train.add_argument("--weight-decay", type=float, help="L2 penalty (node tasks; default: the paper's)")
    train.add_argument("--hidden", type=int, help="hidden width (default: the paper's)")
    train.add_argument("--dropout", type=float, help="dropout rate (default: the paper's)")
    train.add_argument("--patience", type=int, help="early-stopping patience in epochs (node tasks)")
    train.add_argument("--limit", type=int, help="image tasks: use only the first N images of each split (quick runs)")
    train.add_argument("--folds", type=int, default=10, help="cross-validation folds for graph tasks (default: 10)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    train.add_argument("--data-root", help="folder holding planetoid/ and tudataset/ (default: $FIVEFOLD_DATA; "
                                           "cora falls back to the embedded copy)")
    train.add_argument("--runs-dir", default="runs", help="where run folders are created (default: ./runs)")
    train.add_argument("--no-progress", action="store_true",
                       help="hide progress bars (they show only when standard error is a terminal anyway)")
    datasets = sub.add_parser("datasets", help="list the data sets fivefold knows and where they were found")
    datasets.add_argument("--data-root", help="folder to look in (default: $FIVEFOLD_DATA)")
    return parser


def _train_node(args: argparse.Namespace) -> dict:
    preset = NODE_PRESETS[args.model]
    config = {
        "task": args.task, "model": args.model, "seed": args.seed,
        "hidden": args.hidden or preset.hidden,
        "dropout": preset.dropout if args.dropout is None else args.dropout,
        "lr": args.lr or preset.lr,
        "weight_decay": preset.weight_decay if args.weight_decay is None else args.weight_decay,
        "epochs": args.epochs or preset.epochs,
        "patience": args.patience if args.patience is not None else preset.patience,
        "selection": preset.selection,
        "decay_biases": preset.decay_biases,
    }
    graph, config["data"] = load_node_task(args.task, args.data_root)
    torch.manual_seed(args.seed)
    model = build_node_model(args.model, graph.num_features, int(graph.y.max()) + 1, config["hidden"],
                             config["dropout"])
    run = RunFolder(f"{args.task}-{args.model}", args.runs_dir)
    run.write_json("config.json", config)
    start = time.perf_counter()
    result = fit_node_classifier(
        model, graph, epochs=config["epochs"], lr=config["lr"], weight_decay=config["weight_decay"],
        patience=config["patience"], selection=config["selection"], decay_biases=config["decay_biases"],
        progress=False if args.no_progress else None,
        desc=f"{args.model} on {args.task}",
    )
    metrics = {"final": {"best_epoch": result["best_epoch"], "val_acc": result["val_acc"],
                         "test_acc": result["test_acc"], "seconds": time.perf_counter() - start},
               "epochs": result["history"]}
    run.write_json("metrics.json", metrics)
    run.save_checkpoint(model, config)
    run.plot_curves(result["history"])
    print(f"{args.model} on {args.task}: best epoch {result['best_epoch']}, "
          f"validation accuracy {result['val_acc']:.4f}, test accuracy {result['test_acc']:.4f}")
    print(f"run folder: {run.path}")
    return metrics


def _train_graph(args: argparse.Namespace) -> dict:
    preset = GRAPH_PRESET
    graphs = load_tu(args.task, args.data_root)
    labels = np.array([int(g.graph_y) for g in graphs])
    config = {**preset.as_dict(), "task": args.task, "model": "gin0", "seed": args.seed, "folds": args.folds}
    for key in ("epochs", "lr", "hidden", "dropout"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    run = RunFolder(f"{args.task}-gin", args.runs_dir)
    run.write_json("config.json", config)
    torch.manual_seed(args.seed)
    num_classes = int(labels.max()) + 1

    def make_model():
        return build_graph_model(graphs[0].num_features, num_classes,
                                 replace(preset, hidden=config["hidden"], dropout=config["dropout"]))

    result = cross_validate(
        make_model, graphs, stratified_folds(labels, args.folds, args.seed),
        progress=False if args.no_progress else None,
        epochs=config["epochs"], lr=config["lr"], batch_size=preset.batch_size,
        iterations_per_epoch=preset.iterations_per_epoch, seed=args.seed,
    )
    history = [{"epoch": i + 1, "test_acc": m} for i, m in enumerate(result["mean_curve"])]
    run.write_json("metrics.json", {"final": {k: v for k, v in result.items() if not k.endswith("curve")
                                              and k != "fold_curves"}, "cross_validation": result})
    run.plot_curves(history)
    print(f"GIN-0 on {args.task}, {args.folds}-fold CV: best epoch {result['best_epoch']} "
          f"{100 * result['best_epoch_mean']:.1f} +- {100 * result['best_epoch_std']:.1f} %, last epoch "
          f"{100 * result['last_epoch_mean']:.1f} +- {100 * result['last_epoch_std']:.1f} %")
    print(f"run folder: {run.path}")
    return result


def _train_image(args: argparse.Namespace) -> dict:
    """A G-CNN (or its plain CNN twin) on MNIST or AdrenalMNIST3D; the test set is also scored after exact
    rotations of its images (multiples of 90 degrees, or cube rotations), which leave a G-CNN's output unchanged."""
    dim = IMAGE_TASKS[args.task]
    model_name = args.model or ("c4" if dim == 2 else "o")
    if model_name not in IMAGE_MODELS or IMAGE_MODELS[model_name][0] != dim:
        choices = sorted(m for m, (d, _) in IMAGE_MODELS.items() if d == dim)
        raise FivefoldError(f"model {model_name!r} does not fit task {args.task}; choose from {choices}")
    if dim == 2:
        train_set, test_set = load_mnist("train", args.data_root), load_mnist("test", args.data_root)
        val_set, train_set = train_set.subset(torch.arange(55000, 60000)), train_set.subset(torch.arange(55000))
        defaults = {"epochs": 1, "lr": 2e-3, "hidden": 12}
        extra = {}
    else:
        train_set, val_set, test_set = (load_medmnist3d(args.task, split, args.data_root)
                                        for split in ("train", "val", "test"))
        defaults = {"epochs": 10, "lr": 1e-3, "hidden": 5}
        extra = {"pool_after": (1,), "kernel_sizes": [3, 3, 3, 3, 1]}
    if args.limit:
        train_set, val_set, test_set = (s.subset(torch.arange(min(args.limit, len(s))))
                                        for s in (train_set, val_set, test_set))
    config = {"task": args.task, "model": model_name, "seed": args.seed,
              "cnn_base": args.hidden or defaults["hidden"], "epochs": args.epochs or defaults["epochs"],
              "lr": args.lr or defaults["lr"], "train_size": len(train_set)}
    run = RunFolder(f"{args.task}-{model_name}", args.runs_dir)
    run.write_json("config.json", config)
    torch.manual_seed(args.seed)

    def prepare(images: torch.Tensor) -> torch.Tensor:  # volumes are average-pooled to 14^3 as in the experiments
        return images if dim == 2 else torch.nn.functional.avg_pool3d(images, 2)

    model = build_image_model(model_name, config["cnn_base"], 1, train_set.num_classes, **extra)
    start = time.perf_counter()
    result = fit_image_classifier(model, prepare(train_set.as_float()), train_set.labels,
                                  prepare(val_set.as_float()), val_set.labels, epochs=config["epochs"],
                                  lr=config["lr"], batch_size=64 if dim == 2 else 16, seed=args.seed,
                                  progress=False if args.no_progress else None, desc=f"{model_name} on {args.task}")
    test = prepare(test_set.as_float())
    group = IMAGE_MODELS["c4" if dim == 2 else "o"][1]()
    rotated = rotate_test_set(test, group, seed=2026)
    final = {"best_epoch": result["best_epoch"], "val_acc": result["val_acc"],
             "test_acc": float((predict_proba(model, test).argmax(1) == test_set.labels).float().mean()),
             f"test_acc_rotated_{group.name}": float((predict_proba(model, rotated).argmax(1) ==
                                                     test_set.labels).float().mean()),
             "parameters": sum(p.numel() for p in model.parameters()), "seconds": time.perf_counter() - start}
    run.write_json("metrics.json", {"final": final, "epochs": result["history"]})
    run.save_checkpoint(model, config)
    run.plot_curves(result["history"])
    rotated_acc = final[f"test_acc_rotated_{group.name}"]
    print(f"{model_name} on {args.task}: validation accuracy {final['val_acc']:.4f}, test accuracy "
          f"{final['test_acc']:.4f}, test images rotated by {group.name}: {rotated_acc:.4f}")
    print(f"run folder: {run.path}")
    return final


def _datasets(args: argparse.Namespace) -> None:
    print(f"{'name':<15} {'task':<23} {'status':<12} location")
    print(f"{'cora':<15} {'node classification':<23} {'embedded':<12} inside the package (fivefold/data/embedded)")
    for info, folder, status in find_datasets(args.data_root):
        print(f"{info.name:<15} {info.task:<23} {status:<12} {folder if folder else '-'}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "datasets":
            _datasets(args)
        elif args.task in GRAPH_TASKS:
            _train_graph(args)
        elif args.task in IMAGE_TASKS:
            _train_image(args)
        else:
            if args.model is not None and args.model not in NODE_PRESETS:
                raise FivefoldError(f"model {args.model!r} is not a node-classification model; choose from "
                                    f"{sorted(NODE_PRESETS)}")
            args.model = args.model or "gcn"
            _train_node(args)
    except FivefoldError as exc:
        print(f"fivefold: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
