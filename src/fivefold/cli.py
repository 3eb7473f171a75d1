"""The ``fivefold`` command: ``fivefold train`` and ``fivefold datasets``. Thin: parses, then calls train/data."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from fivefold.errors import FivefoldError

# The choices the parser offers, spelled out here so that `fivefold --help` imports neither torch nor a domain
# (tests/train/test_cli.py checks they equal fivefold.train.tasks / presets).
NODE_TASKS = ("cora", "citeseer")
GRAPH_TASKS = ("MUTAG", "PROTEINS", "ENZYMES")
IMAGE_TASKS = ("mnist", "adrenalmnist3d")
NODE_MODELS = ("gat", "gcn", "gin", "sage")
IMAGE_MODELS = ("c4", "c8", "cnn", "cnn3d", "d4", "o")


def _number(kind: type, low: float, *, low_open: bool = False, high: float | None = None, high_open: bool = True):
    """An argparse type: a ``kind`` number within the bounds, else argparse's usage error naming the range."""
    bounds = f"{'>' if low_open else '>='} {low:g}" + (f" and {'<' if high_open else '<='} {high:g}" if high else "")

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        fine = value == value and abs(value) != float("inf")  # not NaN or infinite
        fine = fine and (value > low if low_open else value >= low)
        if high is not None:
            fine = fine and (value < high if high_open else value <= high)
        if not fine:
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


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
    train.add_argument("--task", default="cora", choices=NODE_TASKS + GRAPH_TASKS + IMAGE_TASKS,
                       help="data set (default: cora)")
    train.add_argument("--model", choices=NODE_MODELS + IMAGE_MODELS,
                       help="model (default: gcn for node tasks, c4 for mnist, o for adrenalmnist3d; graph tasks "
                            "always use GIN)")
    train.add_argument("--epochs", type=_number(int, 1), help="training epochs, >= 1 (default: the paper's value)")
    train.add_argument("--lr", type=_number(float, 0, low_open=True), help="Adam learning rate, > 0 (default: the "
                                                                              "paper's)")
    train.add_argument("--weight-decay", type=_number(float, 0), help="L2 penalty, >= 0 (node tasks; default: the "
                                                                      "paper's)")
    train.add_argument("--hidden", type=_number(int, 1), help="hidden width, >= 1 (default: the paper's)")
    train.add_argument("--dropout", type=_number(float, 0, high=1), help="dropout rate in [0, 1) (default: the "
                                                                         "paper's)")
    train.add_argument("--patience", type=_number(int, 1), help="early-stopping patience in epochs, >= 1 (node tasks)")
    train.add_argument("--limit", type=_number(int, 1), help="image tasks: use only the first N >= 1 images of each "
                                                             "split (quick runs)")
    train.add_argument("--folds", type=_number(int, 2), default=10, help="cross-validation folds for graph tasks, "
                                                                         ">= 2 (default: 10)")
    train.add_argument("--seed", type=_number(int, 0), default=0, help="random seed, >= 0 (default: 0)")
    train.add_argument("--data-root", help="folder holding planetoid/ and tudataset/ (default: $FIVEFOLD_DATA; "
                                           "cora falls back to the embedded copy)")
    train.add_argument("--runs-dir", default="runs", help="where run folders are created (default: ./runs)")
    train.add_argument("--no-progress", action="store_true",
                       help="hide progress bars (they show only when standard error is a terminal anyway)")
    datasets = sub.add_parser("datasets", help="list the data sets fivefold knows and where they were found")
    datasets.add_argument("--data-root", help="folder to look in (default: $FIVEFOLD_DATA)")
    return parser


def _data_root(args: argparse.Namespace) -> str | None:
    """--data-root, else $FIVEFOLD_DATA, else None (Cora then uses its embedded copy)."""
    return args.data_root or os.environ.get("FIVEFOLD_DATA") or None


def _train(args: argparse.Namespace) -> None:
    from fivefold.train.tasks import train_graph_task, train_image_task, train_node_task

    common = {"seed": args.seed, "data_root": _data_root(args), "runs_dir": args.runs_dir,
              "progress": False if args.no_progress else None}
    if args.task in GRAPH_TASKS:
        result = train_graph_task(args.task, folds=args.folds, epochs=args.epochs, lr=args.lr, hidden=args.hidden,
                                  dropout=args.dropout, **common)
        final = result["final"]
        print(f"GIN-0 on {args.task}, {args.folds}-fold CV: best epoch {final['best_epoch']} "
              f"{100 * final['best_epoch_mean']:.1f} +- {100 * final['best_epoch_std']:.1f} %, last epoch "
              f"{100 * final['last_epoch_mean']:.1f} +- {100 * final['last_epoch_std']:.1f} %")
    elif args.task in IMAGE_TASKS:
        result = train_image_task(args.task, args.model, epochs=args.epochs, lr=args.lr, hidden=args.hidden,
                                  limit=args.limit, **common)
        final, model = result["final"], result["config"]["model"]
        group = final["rotation_group"]
        print(f"{model} on {args.task}: validation accuracy {final['val_acc']:.4f}, test accuracy "
              f"{final['test_acc']:.4f}, test images rotated by {group}: {final[f'test_acc_rotated_{group}']:.4f}")
    else:
        result = train_node_task(args.task, args.model or "gcn", hidden=args.hidden, dropout=args.dropout,
                                 lr=args.lr, weight_decay=args.weight_decay, epochs=args.epochs,
                                 patience=args.patience, **common)
        final, model = result["final"], result["config"]["model"]
        print(f"{model} on {args.task}: best epoch {final['best_epoch']}, "
              f"validation accuracy {final['val_acc']:.4f}, test accuracy {final['test_acc']:.4f}")
    print(f"run folder: {result['run']}")


def _datasets(args: argparse.Namespace) -> None:
    from fivefold.data import find_datasets

    print(f"{'name':<15} {'task':<23} {'status':<12} location")
    print(f"{'cora':<15} {'node classification':<23} {'embedded':<12} inside the package (fivefold/data/embedded)")
    for info, folder, status in find_datasets(args.data_root):
        print(f"{info.name:<15} {info.task:<23} {status:<12} {folder if folder else '-'}")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "datasets":
            _datasets(args)
        else:
            _train(args)
    except FivefoldError as exc:
        print(f"fivefold: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
