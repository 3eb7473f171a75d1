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
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from fivefold.data import load_medmnist3d, load_mnist, load_tu, stratified_folds
from fivefold.errors import check_option
from fivefold.train.graph import cross_validate
from fivefold.train.images import fit_image_classifier, predict_proba, rotate_test_set
from fivefold.train.node import fit_node_classifier
from fivefold.train.presets import (
    GRAPH_PRESET,
    IMAGE_MODELS,
    NODE_PRESETS,
    build_graph_model,
    build_image_model,
    build_node_model,
    load_node_task,
)
from fivefold.train.run import RunFolder

__all__ = ["NODE_TASKS", "GRAPH_TASKS", "IMAGE_TASKS", "ImageTask", "settings", "train_node_task",
           "train_graph_task", "train_image_task"]

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
    preset = NODE_PRESETS[model]
    config = {"task": task, "model": model, "seed": seed,
              **settings(preset.as_dict(), hidden=hidden, dropout=dropout, lr=lr, weight_decay=weight_decay,
                         epochs=epochs, patience=patience)}
    graph, config["data"] = load_node_task(task, data_root)
    torch.manual_seed(seed)
    network = build_node_model(model, graph.num_features, int(graph.y.max()) + 1, config["hidden"],
                               config["dropout"])
    run = RunFolder(f"{task}-{model}", runs_dir)
    run.write_json("config.json", config)
    start = time.perf_counter()
    result = fit_node_classifier(
        network, graph, epochs=config["epochs"], lr=config["lr"], weight_decay=config["weight_decay"],
        patience=config["patience"], selection=config["selection"], decay_biases=config["decay_biases"],
        progress=progress, desc=f"{model} on {task}",
    )
    final = {"best_epoch": result["best_epoch"], "val_acc": result["val_acc"], "test_acc": result["test_acc"],
             "seconds": time.perf_counter() - start}
    run.write_json("metrics.json", {"final": final, "epochs": result["history"]})
    run.save_checkpoint(network, config)
    run.plot_curves(result["history"])
    return {"config": config, "final": final, "run": run.path}


def train_graph_task(
    task: str, *, folds: int = 10, seed: int = 0, data_root: str | os.PathLike | None = None,
    runs_dir: str | os.PathLike = "runs", progress: bool | None = None, epochs: int | None = None,
    lr: float | None = None, hidden: int | None = None, dropout: float | None = None,
) -> dict[str, Any]:
    """GIN-0 with stratified ``folds``-fold cross-validation; ``final`` holds the best-epoch and last-epoch means."""
    check_option(task, GRAPH_TASKS, "task", "train_graph_task")
    graphs = load_tu(task, data_root)
    labels = np.array([int(g.graph_y) for g in graphs])
    config = {**settings(GRAPH_PRESET.as_dict(), epochs=epochs, lr=lr, hidden=hidden, dropout=dropout),
              "task": task, "model": "gin0", "seed": seed, "folds": folds}
    run = RunFolder(f"{task}-gin", runs_dir)
    run.write_json("config.json", config)
    torch.manual_seed(seed)
    num_classes = int(labels.max()) + 1
    preset = replace(GRAPH_PRESET, hidden=config["hidden"], dropout=config["dropout"])

    def make_model():
        return build_graph_model(graphs[0].num_features, num_classes, preset)

    result = cross_validate(
        make_model, graphs, stratified_folds(labels, folds, seed), progress=progress, epochs=config["epochs"],
        lr=config["lr"], batch_size=preset.batch_size, iterations_per_epoch=preset.iterations_per_epoch, seed=seed,
    )
    final = {k: v for k, v in result.items() if not k.endswith("curve") and k != "fold_curves"}
    run.write_json("metrics.json", {"final": final, "cross_validation": result})
    run.plot_curves([{"epoch": i + 1, "test_acc": m} for i, m in enumerate(result["mean_curve"])])
    return {"config": config, "final": final, "run": run.path}


def train_image_task(
    task: str, model: str | None = None, *, seed: int = 0, data_root: str | os.PathLike | None = None,
    runs_dir: str | os.PathLike = "runs", progress: bool | None = None, epochs: int | None = None,
    lr: float | None = None, hidden: int | None = None, limit: int | None = None,
) -> dict[str, Any]:
    """A G-CNN (or its CNN twin, ``cnn`` / ``cnn3d``) of about the plain CNN's parameter count; ``limit`` keeps the
    first ``limit`` images of each split (quick runs)."""
    check_option(task, tuple(IMAGE_TASKS), "task", "train_image_task")
    spec = IMAGE_TASKS[task]
    model = model or spec.model
    check_option(model, tuple(sorted(m for m, (d, _) in IMAGE_MODELS.items() if d == spec.dim)), "model",
                 f"train_image_task ({task})")
    if spec.dim == 2:
        train_set, test_set = load_mnist("train", data_root), load_mnist("test", data_root)
        val_set, train_set = train_set.subset(torch.arange(55000, 60000)), train_set.subset(torch.arange(55000))
    else:
        train_set, val_set, test_set = (load_medmnist3d(task, split, data_root) for split in ("train", "val", "test"))
    if limit:
        train_set, val_set, test_set = (s.subset(torch.arange(min(limit, len(s))))
                                        for s in (train_set, val_set, test_set))
    chosen = settings({"hidden": spec.hidden, "epochs": spec.epochs, "lr": spec.lr}, hidden=hidden, epochs=epochs,
                      lr=lr)
    config = {"task": task, "model": model, "seed": seed, "cnn_base": chosen["hidden"], "epochs": chosen["epochs"],
              "lr": chosen["lr"], "train_size": len(train_set)}
    run = RunFolder(f"{task}-{model}", runs_dir)
    run.write_json("config.json", config)
    torch.manual_seed(seed)

    def prepare(images: torch.Tensor) -> torch.Tensor:  # volumes are average-pooled to 14^3 as in the experiments
        return images if spec.dim == 2 else torch.nn.functional.avg_pool3d(images, 2)

    network = build_image_model(model, config["cnn_base"], 1, train_set.num_classes, **spec.classifier)
    start = time.perf_counter()
    result = fit_image_classifier(network, prepare(train_set.as_float()), train_set.labels,
                                  prepare(val_set.as_float()), val_set.labels, epochs=config["epochs"],
                                  lr=config["lr"], batch_size=spec.batch_size, seed=seed, progress=progress,
                                  desc=f"{model} on {task}")
    test = prepare(test_set.as_float())
    group = IMAGE_MODELS[spec.model][1]()
    rotated = rotate_test_set(test, group, seed=2026)
    final = {"best_epoch": result["best_epoch"], "val_acc": result["val_acc"],
             "test_acc": float((predict_proba(network, test).argmax(1) == test_set.labels).float().mean()),
             f"test_acc_rotated_{group.name}": float((predict_proba(network, rotated).argmax(1) ==
                                                     test_set.labels).float().mean()),
             "rotation_group": group.name,
             "parameters": sum(p.numel() for p in network.parameters()), "seconds": time.perf_counter() - start}
    run.write_json("metrics.json", {"final": final, "epochs": result["history"]})
    run.save_checkpoint(network, config)
    run.plot_curves(result["history"])
    return {"config": config, "final": final, "run": run.path}
