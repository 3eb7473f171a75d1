"""The command line's tasks, defined once: what data, which split, which defaults, what is measured, what the run
folder holds. ``fivefold train`` parses its arguments and calls one of these; a script can call them the same way.

Every task takes explicit typed arguments; a hyper-parameter left as ``None`` takes the task's or the paper's default
(``settings``), and the values used are written to ``config.json``. Each returns ``{"config", "final", "run"}``
(``run`` is the run folder's path).

- ``train_node_task``: node classification on Cora / CiteSeer (public Planetoid split), GCN, GAT, GraphSAGE or GIN
  with their papers' hyper-parameters.
- ``train_graph_task``: graph classification on a TU data set with GIN-0, stratified k-fold cross-validation
  (Xu et al. 2019).
- ``train_image_task``: MNIST (the last 5,000 training digits for validation) or AdrenalMNIST3D (its own split) with
  a G-CNN or its plain CNN twin; the test set is also scored after exact rotations of its images (multiples of 90
  degrees, or the cube rotations), which leave a G-CNN's prediction unchanged.
- ``train_own_graph``: node classification on the user's graph read from files (``fivefold.data.load_labelled_graph``)
  with a stratified random split or given masks.
- ``train_store_task``: node classification by sampled mini-batches over an on-disk graph store
  (``fivefold.scale``), for graphs larger than memory.
- ``train_stream_task``: temporal link prediction on a real event stream (``fivefold.temporal``) with TGN, JODIE,
  TGAT or EdgeBank, tested with the protocols of ``fivefold.train.temporal``.
- ``train_molecule_task``: molecular property prediction on a MoleculeNet set (SMILES through RDKit) with D-MPNN and
  chemprop 2's protocol (``fivefold.train.molecules``), on a random or scaffold split.

Long tasks default to a short run (``QUICK``) and take the full protocol of the paper with ``full=True``
(``--full``); a value given explicitly always wins over both.

Every run folder is complete or visibly not (``fivefold.train.run``): ``metrics.json`` says ``running``, ``finished``,
``failed`` or ``interrupted``, and the checkpoint's sha256 is recorded. ``config.json`` holds what
``fivefold.train.load_run`` needs to rebuild the model (``kind``, ``in_channels``, ``num_classes``, widths).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import torch

from fivefold.data import (
    load_labelled_graph,
    load_medmnist3d,
    load_mnist,
    load_tu,
    sha256,
    split_nodes,
    stratified_folds,
)
from fivefold.errors import DataError, check_option
from fivefold.train.graph import cross_validate
from fivefold.train.images import fit_image_classifier, predict_proba, rotate_test_set
from fivefold.train.loop import _show_progress
from fivefold.train.node import fit_node_classifier
from fivefold.train.presets import (
    GRAPH_PRESET,
    IMAGE_MODELS,
    MOLECULE_DEFAULTS,
    MOLECULE_MODELS,
    NODE_PRESETS,
    STREAM_MODELS,
    build_graph_model,
    build_image_model,
    build_molecule_model,
    build_node_model,
    build_stream_model,
    jodie_time_scale,
    load_node_task,
)
from fivefold.train.run import RunFolder

__all__ = ["NODE_TASKS", "GRAPH_TASKS", "IMAGE_TASKS", "QUICK", "STORE_DEFAULTS", "ImageTask", "settings",
           "train_node_task", "train_graph_task", "train_image_task", "train_own_graph", "train_store_task",
           "STREAM_DEFAULTS", "train_stream_task", "train_molecule_task"]

NODE_TASKS = ("cora", "citeseer")
GRAPH_TASKS = ("MUTAG", "PROTEINS", "ENZYMES")


@dataclass(frozen=True)
class ImageTask:
    """An image task's defaults: dimension, the default model, epochs, learning rate, the plain CNN's base width,
    batch size, and the classifier's extra options (pooling, kernel sizes)."""

    dim: int
    model: str
    epochs: int
    lr: float
    hidden: int
    batch_size: int
    classifier: dict[str, Any] = field(default_factory=dict)


IMAGE_TASKS = {
    "mnist": ImageTask(dim=2, model="c4", epochs=1, lr=2e-3, hidden=12, batch_size=64),
    "adrenalmnist3d": ImageTask(dim=3, model="o", epochs=10, lr=1e-3, hidden=5, batch_size=16,
                                classifier={"pool_after": (1,), "kernel_sizes": [3, 3, 3, 3, 1]}),
}


# The short default run of each long task (``full=False``); ``full=True`` runs the paper's protocol. On the 2-core
# machine of the README (benchmarks/command_times.py) a graph task's full protocol (10 folds x 350 epochs) takes
# about half an hour and the short run about 2 minutes; the image tasks' full runs take 1.5 to 10 minutes, so they
# have no short form.
QUICK: dict[str, dict[str, Any]] = {
    "MUTAG": {"epochs": 20}, "PROTEINS": {"epochs": 20}, "ENZYMES": {"epochs": 20},
}


def _quick(task: str, full: bool) -> dict[str, Any]:
    return {} if full else QUICK.get(task, {})


def _versions() -> dict[str, str]:
    try:
        ours = version("fivefold")
    except PackageNotFoundError:  # run from a source tree without installing
        ours = "unknown"
    return {"fivefold": ours, "torch": str(torch.__version__)}


def settings(defaults: dict[str, Any], **given: Any) -> dict[str, Any]:
    """The defaults with every given value that is not None put in their place: an explicit value always wins."""
    unknown = set(given) - set(defaults)
    if unknown:
        raise TypeError(f"settings: no defaults for {sorted(unknown)}")
    return {key: value if given.get(key) is None else given[key] for key, value in defaults.items()}


def train_node_task(
    task: str = "cora", model: str = "gcn", *, seed: int = 0, data_root: str | os.PathLike | None = None,
    runs_dir: str | os.PathLike = "runs", progress: bool | None = None, hidden: int | None = None,
    dropout: float | None = None, lr: float | None = None, weight_decay: float | None = None,
    epochs: int | None = None, patience: int | None = None,
) -> dict[str, Any]:
    """Node classification; ``data_root=None`` on Cora uses the copy embedded in the package."""
    check_option(task, NODE_TASKS, "task", "train_node_task")
    check_option(model, tuple(sorted(NODE_PRESETS)), "model", "train_node_task")
    graph, data = load_node_task(task, data_root)
    return _train_nodes(graph, f"{task}-{model}", {"task": task, "data": data}, model, seed=seed, runs_dir=runs_dir,
                        progress=progress, hidden=hidden, dropout=dropout, lr=lr, weight_decay=weight_decay,
                        epochs=epochs, patience=patience)


def train_own_graph(
    edges: str | os.PathLike, labels: str | os.PathLike, model: str = "gcn", *,
    features: str | os.PathLike | None = None, undirected: bool = False, remap_ids: bool = False,
    split: tuple[float, float, float] = (0.6, 0.2, 0.2), masks: tuple[Any, Any, Any] | None = None, seed: int = 0,
    runs_dir: str | os.PathLike = "runs", progress: bool | None = None, hidden: int | None = None,
    dropout: float | None = None, lr: float | None = None, weight_decay: float | None = None,
    epochs: int | None = None, patience: int | None = None, echo: Any = print,
) -> dict[str, Any]:
    """Node classification on your own graph (formats: ``fivefold.data.own_graph``). The labelled nodes are split
    ``split`` (train, validation, test; stratified, drawn with ``seed``) unless ``masks`` gives three node-id
    lists. What was read (directed or not, remapped ids, class sizes) is passed to ``echo`` line by line and saved in
    ``config.json``; remapped ids are saved as ``node_ids.csv`` (node index, original id)."""
    check_option(model, tuple(sorted(NODE_PRESETS)), "model", "train_own_graph")
    read = load_labelled_graph(edges, labels, features=features, undirected=undirected, remap_ids=remap_ids)
    for line in read.summary:
        echo(line)
    graph = read.graph
    if masks is None:
        train_mask, val_mask, test_mask = split_nodes(graph.y, split, seed)
    else:
        train_mask, val_mask, test_mask = (_mask_of(ids, graph, read.node_ids, name) for ids, name in
                                           zip(masks, ("train", "validation", "test"), strict=True))
    if not bool(train_mask.any()):
        raise DataError("the training split holds no labelled node")
    for (a, b), names in (((train_mask, val_mask), "train and validation"), ((train_mask, test_mask), "train and test"),
                          ((val_mask, test_mask), "validation and test")):
        if bool((a & b).any()):
            first = int((a & b).nonzero()[0])
            raise DataError(f"the {names} masks share node {first if read.node_ids is None else read.node_ids[first]}"
                            ": each node may be in one split only")
    graph = graph.replace(train_mask=train_mask, val_mask=val_mask, test_mask=test_mask)
    files = {"edges": edges, "labels": labels, "features": features}
    data = {"task": "own", "data": "files", "undirected": undirected, "remap_ids": remap_ids,
            "split": None if masks is not None else list(split), "summary": read.summary,
            "split_sizes": [int(m.sum()) for m in (train_mask, val_mask, test_mask)],
            "files": {k: None if v is None else {"path": str(os.path.abspath(v)), "sha256": sha256(v)}
                      for k, v in files.items()}}
    extra = {} if read.node_ids is None else {
        "node_ids.csv": "node,original_id\n" + "".join(f"{i},{v}\n" for i, v in enumerate(read.node_ids.tolist()))}
    return _train_nodes(graph, f"own-{model}", data, model, seed=seed, runs_dir=runs_dir, progress=progress,
                        hidden=hidden, dropout=dropout, lr=lr, weight_decay=weight_decay, epochs=epochs,
                        patience=patience, extra_files=extra)


# mini-batch training over a store: GraphSAGE's large-graph settings (OGB's GraphSAGE uses hidden 256, dropout 0.5,
# Adam lr 0.003 with neighbour sampling); GAT's width is per head (8 heads)
STORE_DEFAULTS: dict[str, Any] = {"hidden": 256, "dropout": 0.5, "lr": 0.003, "weight_decay": 0.0, "epochs": 3,
                                  "fanouts": [15, 10], "batch_size": 1024}
STORE_MODELS = ("sage", "gcn", "gat", "gin")


def train_store_task(
    store_path: str | os.PathLike, model: str = "sage", *, fanouts: list[int] | None = None,
    batch_size: int | None = None, epochs: int | None = None, steps: int | None = None,
    evaluate_every: int | None = None, hidden: int | None = None, dropout: float | None = None,
    lr: float | None = None, weight_decay: float | None = None, eval_nodes: int | None = None,
    eval_mode: str = "exact", seed: int = 0, runs_dir: str | os.PathLike = "runs", progress: bool | None = None,
    echo: Any = print,
) -> dict[str, Any]:
    """Node classification by sampled mini-batches over the graph store at ``store_path`` (with features, labels
    and train/validation/test masks): ``steps`` batches, or ``epochs`` passes over the training nodes. Evaluation
    (each epoch's end, or every ``evaluate_every`` steps) is exact layer-wise inference on the validation and test
    nodes (at most ``eval_nodes`` of each), or sampled with ``eval_mode="sampled"``; the best validation accuracy
    is kept."""
    from fivefold.scale import open_store
    from fivefold.train.node import fit_store_classifier

    check_option(model, STORE_MODELS, "model", "train_store_task")
    if fanouts is not None and len(fanouts) != 2:
        raise DataError(f"the store models have two layers: give two fan-outs (like 15,10), got {fanouts}")
    store = open_store(store_path)
    if store.labels is None:
        raise DataError(f"the store {store_path} has no labels: write it with labels and masks to train on it")
    defaults = dict(STORE_DEFAULTS, hidden=32 if model == "gat" else STORE_DEFAULTS["hidden"])
    if steps is not None:
        defaults["epochs"] = None
    config = {"kind": "store", "task": "store", "model": model, "seed": seed,
              **settings(defaults, hidden=hidden, dropout=dropout, lr=lr, weight_decay=weight_decay, epochs=epochs,
                         fanouts=fanouts, batch_size=batch_size),
              "steps": steps, "evaluate_every": evaluate_every, "eval_nodes": eval_nodes, "eval_mode": eval_mode,
              "store": {"path": str(os.path.abspath(store_path)), "num_nodes": store.num_nodes,
                        "num_edges": store.num_edges},
              "in_channels": store.num_features, "num_classes": int(np.max(store.labels)) + 1,
              "versions": _versions()}
    echo(f"store {store_path}: {store.num_nodes:,} nodes, {store.num_edges:,} edges, {store.num_features} features, "
         f"{config['num_classes']} classes; {int(np.count_nonzero(store.train_mask)):,} training nodes")
    torch.manual_seed(seed)
    network = build_node_model(model, config["in_channels"], config["num_classes"], config["hidden"],
                               config["dropout"])
    run = RunFolder(f"store-{model}", runs_dir)
    with run.running():
        run.write_json("config.json", config)
        start = time.perf_counter()
        result = fit_store_classifier(
            network, store, fanouts=config["fanouts"], batch_size=config["batch_size"], epochs=config["epochs"],
            steps=steps, evaluate_every=evaluate_every, lr=config["lr"], weight_decay=config["weight_decay"],
            eval_nodes=eval_nodes, eval_mode=eval_mode, seed=seed, progress=progress, desc=f"{model} on the store",
            workdir=str(run.path),
        )
        history = result["history"]
        final = {"best_step": result["best_step"], "val_acc": result["val_acc"], "test_acc": result["test_acc"],
                 "seconds": time.perf_counter() - start,
                 "batches_per_s": _mean_rate(history, "batches_per_s"),
                 "edges_per_s": _mean_rate(history, "edges_per_s")}
        run.save_checkpoint({"model_state": network.state_dict(), "config": config})
        run.plot_curves(history, x="step")
        run.finish({"final": final, "evaluations": history})
    return {"config": config, "final": final, "run": run.path}


def _mean_rate(history: list[dict[str, Any]], key: str) -> float | None:
    """The mean of a per-row rate (rows are equal spans of steps except the last)."""
    values = [row[key] for row in history if key in row]
    return float(np.mean(values)) if values else None


def _mask_of(ids: Any, graph: Any, node_ids: np.ndarray | None, name: str) -> torch.Tensor:
    """A boolean node mask from a sequence of node ids (original ids when they were remapped)."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if node_ids is not None:
        where = np.searchsorted(node_ids, ids).clip(0, len(node_ids) - 1)
        unknown = node_ids[where] != ids
        index = where
    else:
        unknown = (ids < 0) | (ids >= graph.num_nodes)
        index = ids
    if unknown.any():
        raise DataError(f"{name} mask: node {int(ids[unknown][0])} is not a node of the graph")
    mask = torch.zeros(graph.num_nodes, dtype=torch.bool)
    mask[torch.from_numpy(index)] = True
    unlabelled = mask & (graph.y < 0)
    if bool(unlabelled.any()):
        first = int(unlabelled.nonzero()[0])
        raise DataError(f"{name} mask: node {first if node_ids is None else int(node_ids[first])} has no label")
    return mask


def _train_nodes(graph: Any, name: str, data: dict[str, Any], model: str, *, seed: int, runs_dir: Any,
                 progress: bool | None, extra_files: dict[str, str] | None = None, **given: Any) -> dict[str, Any]:
    preset = NODE_PRESETS[model]
    config = {"kind": "node", **data, "model": model, "seed": seed, "in_channels": graph.num_features,
              "num_classes": int(graph.y.max()) + 1, **settings(preset.as_dict(), **given), "versions": _versions()}
    torch.manual_seed(seed)
    network = build_node_model(model, config["in_channels"], config["num_classes"], config["hidden"],
                               config["dropout"])
    run = RunFolder(name, runs_dir)
    with run.running():
        run.write_json("config.json", config)
        for file_name, text in (extra_files or {}).items():
            run.write_text(file_name, text)
        start = time.perf_counter()
        result = fit_node_classifier(
            network, graph, epochs=config["epochs"], lr=config["lr"], weight_decay=config["weight_decay"],
            patience=config["patience"], selection=config["selection"], decay_biases=config["decay_biases"],
            progress=progress, desc=f"{model} on {config['task']}",
        )
        final = {"best_epoch": result["best_epoch"], "val_acc": result["val_acc"], "test_acc": result["test_acc"],
                 "seconds": time.perf_counter() - start}
        run.save_checkpoint({"model_state": network.state_dict(), "config": config})
        run.plot_curves(result["history"])
        run.finish({"final": final, "epochs": result["history"]})
    return {"config": config, "final": final, "run": run.path}


def train_graph_task(
    task: str, *, folds: int = 10, seed: int = 0, data_root: str | os.PathLike | None = None,
    runs_dir: str | os.PathLike = "runs", progress: bool | None = None, epochs: int | None = None,
    lr: float | None = None, hidden: int | None = None, dropout: float | None = None, full: bool = False,
) -> dict[str, Any]:
    """GIN-0 with stratified ``folds``-fold cross-validation; ``final`` holds the best-epoch and last-epoch means.
    Without ``full`` the run is short (``QUICK``: fewer epochs); the checkpoint holds each fold's last model."""
    check_option(task, GRAPH_TASKS, "task", "train_graph_task")
    graphs = load_tu(task, data_root)
    labels = np.array([int(g.graph_y) for g in graphs])
    fold_splits = stratified_folds(labels, folds, seed)  # refuses more folds than the smallest class has members
    defaults = {**GRAPH_PRESET.as_dict(), **_quick(task, full)}
    config = {"kind": "graph", **settings(defaults, epochs=epochs, lr=lr, hidden=hidden, dropout=dropout),
              "task": task, "model": "gin0", "seed": seed, "folds": folds, "protocol": "full" if full else "quick",
              "in_channels": graphs[0].num_features, "num_classes": int(labels.max()) + 1, "versions": _versions()}
    run = RunFolder(f"{task}-gin", runs_dir)
    with run.running():
        run.write_json("config.json", config)
        torch.manual_seed(seed)
        preset = replace(GRAPH_PRESET, hidden=config["hidden"], dropout=config["dropout"])

        def make_model():
            return build_graph_model(config["in_channels"], config["num_classes"], preset)

        start = time.perf_counter()
        result = cross_validate(
            make_model, graphs, fold_splits, progress=progress, epochs=config["epochs"], lr=config["lr"],
            batch_size=preset.batch_size, iterations_per_epoch=preset.iterations_per_epoch, seed=seed,
            return_models=True,
        )
        models = result.pop("models")
        final = {k: v for k, v in result.items() if not k.endswith("curve") and k != "fold_curves"}
        final["seconds"] = time.perf_counter() - start
        run.save_checkpoint({"fold_states": [m.state_dict() for m in models], "config": config})
        run.plot_curves([{"epoch": i + 1, "train_loss": loss, "test_acc": acc} for i, (loss, acc) in
                         enumerate(zip(result["train_loss_curve"], result["mean_curve"], strict=True))])
        run.finish({"final": final, "cross_validation": result})
    return {"config": config, "final": final, "run": run.path}


def train_image_task(
    task: str, model: str | None = None, *, seed: int = 0, data_root: str | os.PathLike | None = None,
    runs_dir: str | os.PathLike = "runs", progress: bool | None = None, epochs: int | None = None,
    lr: float | None = None, hidden: int | None = None, limit: int | None = None, full: bool = False,
) -> dict[str, Any]:
    """A G-CNN (or its CNN twin, ``cnn`` / ``cnn3d``) of about the plain CNN's parameter count; ``limit`` keeps the
    first ``limit`` images of each split (quick runs). Without ``full`` the run is short (``QUICK``)."""
    check_option(task, tuple(IMAGE_TASKS), "task", "train_image_task")
    spec = IMAGE_TASKS[task]
    model = model or spec.model
    check_option(model, tuple(sorted(m for m, (d, _) in IMAGE_MODELS.items() if d == spec.dim)), "model",
                 f"train_image_task ({task})")
    chosen = settings({"hidden": spec.hidden, "epochs": spec.epochs, "lr": spec.lr, "limit": None,
                       **_quick(task, full)}, hidden=hidden, epochs=epochs, lr=lr, limit=limit)
    if spec.dim == 2:
        train_set, test_set = load_mnist("train", data_root), load_mnist("test", data_root)
        val_set, train_set = train_set.subset(torch.arange(55000, 60000)), train_set.subset(torch.arange(55000))
    else:
        train_set, val_set, test_set = (load_medmnist3d(task, split, data_root) for split in ("train", "val", "test"))
    if chosen["limit"]:
        train_set, val_set, test_set = (s.subset(torch.arange(min(chosen["limit"], len(s))))
                                        for s in (train_set, val_set, test_set))
    config = {"kind": "image", "task": task, "model": model, "seed": seed, "cnn_base": chosen["hidden"],
              "epochs": chosen["epochs"], "lr": chosen["lr"], "limit": chosen["limit"],
              "protocol": "full" if full else "quick", "train_size": len(train_set), "in_channels": 1,
              "num_classes": train_set.num_classes, "classifier": spec.classifier, "versions": _versions()}
    run = RunFolder(f"{task}-{model}", runs_dir)
    with run.running():
        run.write_json("config.json", config)
        torch.manual_seed(seed)
        network = build_image_model(model, config["cnn_base"], 1, train_set.num_classes, **spec.classifier)
        start = time.perf_counter()
        result = fit_image_classifier(network, prepare_images(task, train_set.as_float()), train_set.labels,
                                      prepare_images(task, val_set.as_float()), val_set.labels,
                                      epochs=config["epochs"], lr=config["lr"], batch_size=spec.batch_size, seed=seed,
                                      progress=progress, desc=f"{model} on {task}")
        test = prepare_images(task, test_set.as_float())
        group = IMAGE_MODELS[spec.model][1]()
        rotated = rotate_test_set(test, group, seed=2026)
        final = {"best_epoch": result["best_epoch"], "val_acc": result["val_acc"],
                 "test_acc": float((predict_proba(network, test).argmax(1) == test_set.labels).float().mean()),
                 f"test_acc_rotated_{group.name}": float((predict_proba(network, rotated).argmax(1) ==
                                                         test_set.labels).float().mean()),
                 "rotation_group": group.name,
                 "parameters": sum(p.numel() for p in network.parameters()), "seconds": time.perf_counter() - start}
        run.save_checkpoint({"model_state": network.state_dict(), "config": config})
        run.plot_curves(result["history"])
        run.finish({"final": final, "epochs": result["history"]})
    return {"config": config, "final": final, "run": run.path}


def prepare_images(task: str, images: torch.Tensor) -> torch.Tensor:
    """What an image task's model sees: MNIST as it is; volumes average-pooled to 14^3 as in the experiments."""
    return images if IMAGE_TASKS[task].dim == 2 else torch.nn.functional.avg_pool3d(images, 2)


STREAM_DEFAULTS = {"epochs": 10, "lr": 1e-3, "batch_size": 200, "patience": 5}


def train_stream_task(
    stream: str, model: str = "tgn", *, epochs: int | None = None, lr: float | None = None,
    batch_size: int | None = None, seed: int = 0, data_root: str | os.PathLike | None = None,
    runs_dir: str | os.PathLike = "runs", progress: bool | None = None, echo: Any = print,
) -> dict[str, Any]:
    """Temporal link prediction on the real stream ``stream`` (``fivefold.data.STREAMS``): chronological 70/15/15
    split with hidden new nodes, training with early stopping on validation AP (``fit_link_model``), then the test
    protocols of ``test_link_model``. The checkpoint holds the model with its memory and history at the end of
    validation, so a loaded run scores the test period's links as they arrive."""
    from fivefold.data import load_stream
    from fivefold.train.temporal import fit_link_model, test_link_model

    check_option(model, STREAM_MODELS, "model", "train_stream_task")
    events = load_stream(stream, data_root)
    split = events.split(seed=seed)
    config = {"kind": "stream", "task": stream, "model": model, "seed": seed,
              **settings(STREAM_DEFAULTS, epochs=epochs, lr=lr, batch_size=batch_size),
              "num_nodes": events.num_nodes, "edge_dim": 0 if events.features is None else events.features.shape[1],
              "time_scale": jodie_time_scale(events, split.train), "split": split.sizes(), "versions": _versions()}
    echo(f"{stream}: {len(events):,} events among {events.num_nodes:,} nodes; {config['split']['train']:,} training "
         f"events")
    torch.manual_seed(seed)
    network = build_stream_model(model, config["num_nodes"], config["edge_dim"], time_scale=config["time_scale"],
                                 seed=seed)
    run = RunFolder(f"{stream}-{model}", runs_dir)
    with run.running():
        run.write_json("config.json", config)
        start = time.perf_counter()
        fitted = fit_link_model(network, events, split, epochs=config["epochs"], patience=config["patience"],
                                lr=config["lr"], batch_size=config["batch_size"], seed=seed,
                                progress=_show_progress(progress))
        final = {"best_epoch": fitted["best_epoch"], **test_link_model(network, events, split, fitted,
                                                                       batch_size=config["batch_size"]),
                 "seconds": time.perf_counter() - start}
        network.load_state_dict(fitted["val_state"])
        run.save_checkpoint({"model_state": network.state_dict(), "config": config})
        run.plot_curves(fitted["history"])
        run.finish({"final": final, "epochs": fitted["history"]})
    return {"config": config, "final": final, "run": run.path}


def train_molecule_task(
    name: str, model: str = "dmpnn", *, split: str = "random", epochs: int | None = None, lr: float | None = None,
    batch_size: int | None = None, hidden: int | None = None, seed: int = 0,
    data_root: str | os.PathLike | None = None, runs_dir: str | os.PathLike = "runs", progress: bool | None = None,
    echo: Any = print,
) -> dict[str, Any]:
    """Molecular property prediction on the MoleculeNet set ``name`` (``fivefold.data.MOLECULENET``): SMILES to graphs
    (unparsable rows skipped and counted), an 80/10/10 random or scaffold split, D-MPNN trained with chemprop 2's
    protocol (``lr`` is the Noam schedule's peak), the epoch of lowest validation loss kept, test RMSE / MAE
    (regression) or ROC-AUC (classification)."""
    from fivefold.data import load_moleculenet
    from fivefold.molecules import FEATURES_VERSION, random_split, scaffold_split, smiles_to_graphs
    from fivefold.train.molecules import fit_molecule_model, molecule_targets, predict_molecules, score_molecules

    check_option(model, MOLECULE_MODELS, "model", "train_molecule_task")
    check_option(split, ("random", "scaffold"), "split", "train_molecule_task")
    table = load_moleculenet(name, data_root)
    graphs, rows = smiles_to_graphs(table.smiles, progress=_show_progress(progress))
    smiles = [table.smiles[r] for r in rows]
    graphs = [g.replace(graph_y=torch.from_numpy(table.targets[r])) for g, r in zip(graphs, rows, strict=True)]
    parts = random_split(len(graphs), seed=seed) if split == "random" else scaffold_split(smiles, seed=seed)
    config = {"kind": "molecule", "task": name, "model": model, "seed": seed, "split": split,
              **settings(MOLECULE_DEFAULTS, epochs=epochs, lr=lr, batch_size=batch_size, hidden=hidden),
              "targets": len(table.task_names), "task_names": table.task_names, "task_type": table.kind,
              "sizes": [len(p) for p in parts], "skipped_rows": len(table) - len(graphs),
              "readout": "norm", "features_version": FEATURES_VERSION, "versions": _versions()}
    echo(f"{name}: {len(graphs):,} molecules ({config['skipped_rows']} unparsable rows skipped), {split} split "
         f"{config['sizes']}")
    torch.manual_seed(seed)
    network = build_molecule_model(model, config["targets"], config["hidden"], config["readout"])
    train, val, test = ([graphs[i] for i in part] for part in parts)
    run = RunFolder(f"{name}-{model}", runs_dir)
    with run.running():
        run.write_json("config.json", config)
        fitted = fit_molecule_model(network, train, val, task=table.kind, epochs=config["epochs"],
                                    batch_size=config["batch_size"], max_lr=config["lr"], init_lr=config["lr"] / 10,
                                    final_lr=config["lr"] / 10, seed=seed, progress=_show_progress(progress))
        predictions = predict_molecules(network, test, task=table.kind, scaler=fitted.scaler)
        scores = score_molecules(predictions, molecule_targets(test), table.kind)
        final = {"best_epoch": fitted.best["epoch"], "val_loss": fitted.best["val_loss"],
                 **{f"test_{key}": value for key, value in scores.items()}, "seconds": fitted.seconds}
        config["target_mean"] = fitted.scaler.mean.tolist()
        config["target_std"] = fitted.scaler.std.tolist()
        run.write_json("config.json", config)
        run.save_checkpoint({"model_state": network.state_dict(), "config": config})
        run.plot_curves(fitted.history)
        run.finish({"final": final, "epochs": fitted.history})
    return {"config": config, "final": final, "run": run.path}
