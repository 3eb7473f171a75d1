"""The ``fivefold`` command: ``fivefold train``, ``fivefold predict``, ``fivefold partition`` and
``fivefold datasets``. Thin: parses, then
calls train/data (imported only after parsing, so ``--help`` is instant).

Exit codes: 0 done; 2 bad arguments or a fivefold error (one line on standard error); 130 interrupted by Ctrl-C,
143 by SIGTERM (the run folder's ``metrics.json`` then says ``interrupted``)."""

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
STREAM_NAMES = ("wikipedia", "enron", "collegemsg")
STREAM_MODELS = ("tgn", "jodie", "tgat", "edgebank")
MOLECULE_SETS = ("esol", "freesolv", "lipophilicity", "bbbp", "bace", "tox21", "hiv")
MOLECULE_MODELS = ("dmpnn", "gine")
PARTITION_METHODS = ("metis", "fennel", "ldg", "random")
PARTITION_BALANCES = ("nodes+edges", "nodes")


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


def _fractions(text: str) -> tuple[float, float, float]:
    """An argparse type: three fractions ``train,val,test`` > 0 that sum to 1."""
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three numbers like 0.6,0.2,0.2, got {text!r}") from None
    if len(parts) != 3 or not all(0 < p < 1 for p in parts) or abs(sum(parts) - 1) > 1e-6:
        raise argparse.ArgumentTypeError(f"expected three fractions train,val,test > 0 summing to 1, got {text!r}")
    return parts


def _fanouts(text: str) -> list[int]:
    """An argparse type: comma-separated fan-outs, each >= 1 or -1 (all neighbours), seeds' hop first."""
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 15,10, got {text!r}") from None
    if not parts or any(p < 1 and p != -1 for p in parts):
        raise argparse.ArgumentTypeError(f"fan-outs must be >= 1 or -1 (all neighbours), got {text!r}")
    return parts


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fivefold", description="fivefold: geometric deep learning in PyTorch.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser(
        "train",
        help="train a model and write a run folder",
        description=(
            "Train a model and write runs/<timestamp>-<task>/ with config.json, metrics.json (whose status says "
            "running, finished, failed or interrupted), checkpoint.pt (its sha256 in metrics.json) and curves.png. "
            "With no arguments: a 2-layer GCN on the Cora graph embedded in the package (about 20 s).\n\n"
            "Tasks: cora, citeseer (node classification, public Planetoid split; models gcn, gat, sage, gin), "
            "MUTAG, PROTEINS, ENZYMES (graph classification with GIN-0, stratified k-fold cross-validation), "
            "mnist (digits; models cnn, c4, d4, c8: a plain CNN, C4 and D4 G-CNNs and a C8 steerable CNN of about "
            "the same parameter count; the test set is also scored rotated by multiples of 90 degrees), "
            "adrenalmnist3d (MedMNIST 3D CT shapes; models cnn3d, o: a 3D CNN and a cube-rotation G-CNN).\n"
            "Graph tasks run a short version by default (10 folds x 20 epochs, about 2 minutes on 2 cores); --full "
            "runs the paper's protocol (350 epochs, about half an hour). Real data other than the embedded Cora are "
            "read from --data-root or $FIVEFOLD_DATA.\n\n"
            "Your own graph: --edges edges.csv --labels labels.csv [--features features.csv|.npy] [--undirected] "
            "[--split 0.6,0.2,0.2 | --train-mask ids.csv --val-mask ids.csv --test-mask ids.csv] trains node "
            "classification on it (formats: labels as node,label or one label per line; see "
            "fivefold.data.own_graph).\n\n"
            "A graph store (fivefold.scale: a graph larger than memory, with features, labels and masks): --store "
            "PATH [--model sage|gcn|gat|gin] [--fanout 15,10] [--batch-size 1024] [--epochs 3 | --steps N] trains by "
            "sampled mini-batches (the progress bar shows batches/s and sampled edges/s) and evaluates by exact "
            "layer-wise inference (--eval-mode sampled for huge graphs, --eval-nodes N to cap it)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("--task", choices=NODE_TASKS + GRAPH_TASKS + IMAGE_TASKS,
                       help="built-in data set (default: cora, or your graph with --edges)")
    train.add_argument("--model", choices=NODE_MODELS + IMAGE_MODELS + STREAM_MODELS + MOLECULE_MODELS,
                       help="model (default: gcn for node tasks, c4 for mnist, o for adrenalmnist3d, tgn for "
                            "streams, dmpnn for molecules; graph tasks always use GIN)")
    train.add_argument("--full", action="store_true",
                       help="graph tasks: the paper's full protocol (350 epochs) instead of the short default run (20)")
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
                                                                         ">= 2 and at most the smallest class's "
                                                                         "size (default: 10)")
    train.add_argument("--seed", type=_number(int, 0), default=0, help="random seed, >= 0 (default: 0)")
    train.add_argument("--data-root", help="folder holding planetoid/ and tudataset/ (default: $FIVEFOLD_DATA; "
                                           "cora falls back to the embedded copy)")
    train.add_argument("--runs-dir", default="runs", help="where run folders are created (default: ./runs)")
    train.add_argument("--no-progress", action="store_true",
                       help="hide progress bars (they show only when standard error is a terminal anyway)")
    own = train.add_argument_group("your own graph (node classification)")
    own.add_argument("--edges", help="edge list: CSV/TSV source,target per line (header optional) or .npy [E, 2]")
    own.add_argument("--labels", help="labels: CSV node,label or one label per line (class 0, 1, ...; empty = "
                                      "unlabelled), or .npy [N]")
    own.add_argument("--features", help="node features: CSV (line i = node i) or .npy [N, F] (default: one-hot ids)")
    own.add_argument("--undirected", action="store_true", help="add the reverse of every edge (edges are kept as "
                                                                 "read otherwise; the loader says which they are)")
    own.add_argument("--remap-ids", action="store_true",
                     help="renumber sparse or huge node ids to 0..N-1 (saved as node_ids.csv in the run folder)")
    own.add_argument("--split", type=_fractions, default=(0.6, 0.2, 0.2),
                     help="train,val,test fractions of the labelled nodes, stratified (default: 0.6,0.2,0.2)")
    for name in ("train", "val", "test"):
        own.add_argument(f"--{name}-mask", help=f"file of {name} node ids, one per line (instead of --split)")
    events = train.add_argument_group("an event stream (temporal link prediction, fivefold.temporal)")
    events.add_argument("--stream", choices=STREAM_NAMES,
                        help="train --model tgn|jodie|tgat|edgebank (default tgn) on a real event stream from the data "
                             "folder: chronological 70/15/15 split, early stopping on validation AP, test AP/AUC with "
                             "random, historical and inductive negatives, MRR, new-node AP. TGN on wikipedia takes "
                             "about 5 minutes on 2 CPU cores")
    mols = train.add_argument_group("molecules (property prediction from SMILES, fivefold.molecules; needs RDKit)")
    mols.add_argument("--molecules", choices=MOLECULE_SETS,
                      help="train --model dmpnn (chemprop's D-MPNN and training protocol: 50 epochs, batches of 64, "
                           "Noam schedule; or --model gine) on a MoleculeNet set from the data folder; test RMSE "
                           "(regression) or ROC-AUC (classification). ESOL took 1 to 4 minutes on a 2-core machine "
                           "(quiet / busy), Lipophilicity about 6 times as long")
    mols.add_argument("--scaffold", action="store_true",
                      help="molecules: split 80/10/10 by Bemis-Murcko scaffold (new chemotypes at test time) instead "
                           "of at random")
    big = train.add_argument_group("a graph store (mini-batch training, fivefold.scale)")
    big.add_argument("--store", help="a store folder written by fivefold.scale (write_store, build_store, rmat_store)")
    big.add_argument("--fanout", type=_fanouts, help="neighbours sampled per node and layer, seeds' hop first "
                                                     "(default: 15,10; -1 = all)")
    big.add_argument("--batch-size", type=_number(int, 1), help="seed nodes per mini-batch (default: 1024)")
    big.add_argument("--steps", type=_number(int, 1), help="train for this many mini-batches instead of --epochs")
    big.add_argument("--evaluate-every", type=_number(int, 1), help="evaluate every N mini-batches (default: at "
                                                                    "each epoch's end)")
    big.add_argument("--eval-nodes", type=_number(int, 1), help="evaluate on at most N validation and N test nodes "
                                                                "(default: all)")
    big.add_argument("--eval-mode", choices=("exact", "sampled"), default="exact",
                     help="exact: layer-wise inference with every neighbour (default); sampled: on sampled blocks "
                          "with the training fan-outs (cheaper on huge graphs)")
    predict = sub.add_parser(
        "predict", help="score data with a finished run and write predictions.csv",
        description=("Load RUN_FOLDER's model (checking that the run finished and that its checkpoint matches its "
                     "recorded sha256) and write a CSV with an id, the predicted class and each class's "
                     "probability. Node runs: every node of their graph (or of --edges/--labels/--features); graph "
                     "runs: every graph of their data set, by the folds' ensemble; image runs: their test set or "
                     "--images FILE.npy."))
    predict.add_argument("run", metavar="RUN_FOLDER", help="a run folder written by fivefold train")
    predict.add_argument("--out", help="CSV to write (default: RUN_FOLDER/predictions.csv)")
    predict.add_argument("--data-root", help="folder of the built-in data sets (default: $FIVEFOLD_DATA)")
    predict.add_argument("--images", help="image runs: a .npy array [N, 28, 28] (mnist) or [N, 28, 28, 28] "
                                          "(volumes), uint8 or floats in [0, 1]")
    predict.add_argument("--edges", help="node runs: a new graph's edge list (with --labels, optional --features)")
    predict.add_argument("--labels", help="node runs: the new graph's labels (empty fields for unknown nodes)")
    predict.add_argument("--features", help="node runs: the new graph's features")
    predict.add_argument("--smiles", help="molecule runs: a file of SMILES (one per line, or a CSV with a smiles "
                                          "column; default: the run's data set)")
    partition = sub.add_parser(
        "partition", help="split a graph store into K partitions for distributed training",
        description=("Split the graph store STORE into K partitions at OUT (each with its nodes' rows, features, "
                     "labels and masks, and a partition book), then train on them with one process per part: "
                     "torchrun --nproc_per_node=K -m fivefold.train.distributed --partitions OUT --run-dir RUN. "
                     "Prints the edge cut (the share of in-edges whose source lies in another part: remote reads "
                     "when sampled) and the balance. metis (pymetis: pip install 'fivefold[dist]') cuts least but "
                     "needs the graph in memory (3 GiB at 1e7 edges; over 24 GiB at 1e8); fennel and ldg stream over "
                     "the store (4 bytes a node); random is the baseline."))
    partition.add_argument("store", metavar="STORE", help="a store folder (fivefold.scale write_store, build_store, "
                                                          "rmat_store)")
    partition.add_argument("out", metavar="OUT", help="the folder to write (must not exist, unless --overwrite)")
    partition.add_argument("--parts", type=_number(int, 1), required=True, help="K: one per process")
    partition.add_argument("--method", choices=PARTITION_METHODS, default="fennel", help="the partitioner "
                                                                                          "(default fennel)")
    partition.add_argument("--imbalance", type=_number(float, 0, high=1, high_open=False), default=0.05,
                           help="each part holds at most (1 + imbalance) times the mean (default 0.05)")
    partition.add_argument("--balance", choices=PARTITION_BALANCES, default="nodes+edges",
                           help="balance the parts' nodes and in-edges (default), or nodes only")
    partition.add_argument("--seed", type=_number(int, 0), default=0, help="seed of random and metis")
    partition.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    datasets = sub.add_parser("datasets", help="list the data sets fivefold knows and where they were found")
    datasets.add_argument("--data-root", help="folder to look in (default: $FIVEFOLD_DATA)")
    return parser


def _data_root(args: argparse.Namespace) -> str | None:
    """--data-root, else $FIVEFOLD_DATA, else None (Cora then uses its embedded copy)."""
    return args.data_root or os.environ.get("FIVEFOLD_DATA") or None


def _train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    from fivefold.train.tasks import (
        train_graph_task,
        train_image_task,
        train_molecule_task,
        train_node_task,
        train_own_graph,
        train_store_task,
        train_stream_task,
    )

    own = [name for name in ("edges", "labels", "features", "train_mask", "val_mask", "test_mask")
           if getattr(args, name)]
    masks = [args.train_mask, args.val_mask, args.test_mask]
    if own and (not args.edges or not args.labels):
        parser.error("your own graph needs both --edges and --labels")
    if args.edges and args.task:
        parser.error("--task names a built-in data set; leave it out with --edges")
    if any(masks) and not all(masks):
        parser.error("give all three of --train-mask, --val-mask and --test-mask (or none, and --split)")
    store_only = [name for name in ("fanout", "batch_size", "steps", "evaluate_every", "eval_nodes")
                  if getattr(args, name) is not None
                  and not ((args.stream or args.molecules) and name == "batch_size")]
    if args.store and (args.task or args.edges):
        parser.error("--store trains on the store; leave out --task and --edges")
    if args.stream and (args.task or args.edges or args.store):
        parser.error("--stream trains on the event stream; leave out --task, --edges and --store")
    if (args.model in STREAM_MODELS) != bool(args.stream) and args.model is not None:
        parser.error(f"--model {args.model} " + ("is a temporal model: give --stream" if args.model in STREAM_MODELS
                                                 else "is not a temporal model: choose one of "
                                                 + ", ".join(STREAM_MODELS)))
    if args.scaffold and not args.molecules:
        parser.error("--scaffold applies to --molecules only")
    if args.molecules and (args.task or args.edges or args.store or args.stream):
        parser.error("--molecules trains on a MoleculeNet set; leave out --task, --edges, --store and --stream")
    if (args.model in MOLECULE_MODELS) != bool(args.molecules) and args.model is not None and not args.stream:
        parser.error(f"--model {args.model} " + ("is a molecule model: give --molecules" if args.model in
                                                 MOLECULE_MODELS else "is not a molecule model: choose dmpnn or gine"))
    if store_only and not args.store:
        parser.error(f"--{store_only[0].replace('_', '-')} applies to --store only")
    if args.store and args.steps and args.epochs:
        parser.error("give --epochs or --steps, not both")
    task = args.task or "cora"
    common = {"seed": args.seed, "runs_dir": args.runs_dir, "progress": False if args.no_progress else None}
    if args.molecules:
        split = "scaffold" if args.scaffold else "random"
        result = train_molecule_task(args.molecules, args.model or "dmpnn", split=split, epochs=args.epochs,
                                     lr=args.lr, batch_size=args.batch_size, hidden=args.hidden,
                                     data_root=_data_root(args), **common)
        final = result["final"]
        scores = ", ".join(f"{key} {value:.4f}" for key, value in final.items() if key.startswith("test_"))
        print(f"{result['config']['model']} on {args.molecules} ({split} split): best epoch "
              f"{final['best_epoch']}, {scores}")
    elif args.stream:
        result = train_stream_task(args.stream, args.model or "tgn", epochs=args.epochs, lr=args.lr,
                                   batch_size=args.batch_size, data_root=_data_root(args), **common)
        final, model = result["final"], result["config"]["model"]
        print(f"{model} on {args.stream}: best epoch {final['best_epoch']}, test AP "
              f"{final['transductive_random_ap']:.4f} (random negatives), "
              f"{final['transductive_historical_ap']:.4f} (historical), new-node AP "
              f"{final['inductive_random_ap']:.4f}, MRR {final['transductive_mrr']:.3f}")
    elif args.store:
        result = train_store_task(
            args.store, args.model or "sage", fanouts=args.fanout, batch_size=args.batch_size, epochs=args.epochs,
            steps=args.steps, evaluate_every=args.evaluate_every, hidden=args.hidden, dropout=args.dropout,
            lr=args.lr, weight_decay=args.weight_decay, eval_nodes=args.eval_nodes, eval_mode=args.eval_mode,
            **common)
        final, model = result["final"], result["config"]["model"]
        speed = ("" if final["batches_per_s"] is None else
                 f"; {final['batches_per_s']:.1f} batches/s, {final['edges_per_s']:,.0f} sampled edges/s")
        print(f"{model} on the store: best at step {final['best_step']}, validation accuracy {final['val_acc']:.4f}, "
              f"test accuracy {final['test_acc']:.4f}{speed}")
    elif args.edges:
        from fivefold.data.tables import read_node_list

        result = train_own_graph(
            args.edges, args.labels, args.model or "gcn", features=args.features, undirected=args.undirected,
            remap_ids=args.remap_ids, split=args.split,
            masks=None if not all(masks) else tuple(read_node_list(m) for m in masks),
            hidden=args.hidden, dropout=args.dropout, lr=args.lr, weight_decay=args.weight_decay, epochs=args.epochs,
            patience=args.patience, **common)
        final, model = result["final"], result["config"]["model"]
        print(f"{model} on your graph: best epoch {final['best_epoch']}, validation accuracy "
              f"{final['val_acc']:.4f}, test accuracy {final['test_acc']:.4f}")
    elif task in GRAPH_TASKS:
        result = train_graph_task(task, folds=args.folds, epochs=args.epochs, lr=args.lr, hidden=args.hidden,
                                  dropout=args.dropout, full=args.full, data_root=_data_root(args), **common)
        final, config = result["final"], result["config"]
        print(f"GIN-0 on {task}, {args.folds}-fold CV, {config['epochs']} epochs: best epoch {final['best_epoch']} "
              f"{100 * final['best_epoch_mean']:.1f} +- {100 * final['best_epoch_std']:.1f} %, last epoch "
              f"{100 * final['last_epoch_mean']:.1f} +- {100 * final['last_epoch_std']:.1f} %")
    elif task in IMAGE_TASKS:
        result = train_image_task(task, args.model, epochs=args.epochs, lr=args.lr, hidden=args.hidden,
                                  limit=args.limit, full=args.full, data_root=_data_root(args), **common)
        final, model = result["final"], result["config"]["model"]
        group = final["rotation_group"]
        print(f"{model} on {task}: validation accuracy {final['val_acc']:.4f}, test accuracy "
              f"{final['test_acc']:.4f}, test images rotated by {group}: {final[f'test_acc_rotated_{group}']:.4f}")
    else:
        result = train_node_task(task, args.model or "gcn", hidden=args.hidden, dropout=args.dropout,
                                 lr=args.lr, weight_decay=args.weight_decay, epochs=args.epochs,
                                 patience=args.patience, data_root=_data_root(args), **common)
        final, model = result["final"], result["config"]["model"]
        print(f"{model} on {task}: best epoch {final['best_epoch']}, "
              f"validation accuracy {final['val_acc']:.4f}, test accuracy {final['test_acc']:.4f}")
    print(f"run folder: {result['run']}")


def _predict(args: argparse.Namespace) -> None:
    import csv
    import io
    from pathlib import Path

    from fivefold.train.run import write_atomic
    from fivefold.train.saved import load_run, predict_run

    run = load_run(args.run)
    header, rows, summary = predict_run(run, data_root=_data_root(args), images=args.images, edges=args.edges,
                                        labels=args.labels, features=args.features, smiles=args.smiles)
    out = Path(args.out) if args.out else run.path / "predictions.csv"
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    write_atomic(out, text.getvalue().encode())
    print(", ".join(f"{key} {value:.4f}" if isinstance(value, float) else f"{key} {value}"
                    for key, value in summary.items()))
    print(f"predictions: {out}")


def _partition(args: argparse.Namespace) -> None:
    from fivefold.train.distributed import partition_for_training

    report = partition_for_training(args.store, args.out, args.parts, method=args.method, imbalance=args.imbalance,
                                    balance=args.balance, seed=args.seed, overwrite=args.overwrite)
    print(f"{args.parts} parts ({args.method}) at {args.out}: edge cut {report['edge_cut']:.4f} "
          f"({report['cut_edges']:,} of {report['num_edges']:,} in-edges), node balance {report['node_balance']:.3f}, "
          f"edge balance {report['edge_balance']:.3f}")
    print(f"train: NUMBA_NUM_THREADS=1 torchrun --nproc_per_node={args.parts} -m fivefold.train.distributed "
          f"--partitions {args.out} --run-dir RUN_DIR")


def _datasets(args: argparse.Namespace) -> None:
    from fivefold.data import find_datasets

    print(f"{'name':<17} {'task':<24} {'status':<12} location")
    print(f"{'cora':<17} {'node classification':<24} {'embedded':<12} inside the package (fivefold/data/embedded)")
    for info, folder, status in find_datasets(args.data_root):
        print(f"{info.name:<17} {info.task:<24} {status:<12} {folder if folder else '-'}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "datasets":
            _datasets(args)
        elif args.command == "predict":
            _predict(args)
        elif args.command == "partition":
            _partition(args)
        else:
            _train(args, parser)
    except FivefoldError as exc:
        print(f"fivefold: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM turned into RunInterrupted by the run folder
        number = getattr(exc, "signal_number", 2)
        print(f"fivefold: interrupted ({exc or 'KeyboardInterrupt'}); a run folder in progress is marked "
              "interrupted", file=sys.stderr)
        return 128 + number
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
