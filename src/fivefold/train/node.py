"""Training node classifiers: full-batch on one graph with train/val/test masks, by sampled mini-batches on an
in-memory graph, or by sampled mini-batches over an on-disk graph store (``fit_store_classifier``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fivefold.errors import GraphError, check_option
from fivefold.graphs import GCNConv, Graph
from fivefold.train.loop import EarlyStopping, KeepBest, fit

__all__ = ["fit_node_classifier", "fit_node_classifier_minibatch", "fit_store_classifier", "accuracy"]


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(-1) == labels).float().mean()) if labels.numel() else float("nan")


def fit_node_classifier(
    model: nn.Module, graph: Graph, *, epochs: int = 200, lr: float = 0.01, weight_decay: float = 5e-4,
    patience: int | None = None, selection: str = "val_acc", decay_biases: bool = True, progress: bool | None = None,
    desc: str = "train",
) -> dict[str, Any]:
    """Train ``model(x, graph) -> [N, classes]`` with Adam and cross-entropy on ``graph.train_mask``.

    Full-batch ``fivefold.train.fit``: one step per epoch, then an evaluation; one epoch's weights are kept
    (restored at the end):

    - ``selection="val_acc"``: the best validation accuracy (ties: lower validation loss); patience counts epochs
      without such an improvement.
    - ``selection="acc_and_loss"``: the rule of the GAT reference code (Velickovic et al. 2018): weights are kept
      at an epoch whose validation accuracy is at least the best so far *and* whose validation loss is at most the
      lowest so far; patience counts epochs in which neither improved.

    With ``patience``, training stops after that many epochs without improvement. With ``decay_biases=False`` the
    L2 penalty skips 1-D parameters (biases, norm scales), as the GAT reference code does.

    Returns:
        ``{"best_epoch", "val_acc", "test_acc", "history": [per-epoch dicts]}``.
    """
    check_option(selection, ("val_acc", "acc_and_loss"), "selection", "fit_node_classifier")
    _check_node_task(graph)
    if decay_biases:
        groups = [{"params": list(model.parameters()), "weight_decay": weight_decay}]
    else:
        params = list(model.parameters())
        groups = [{"params": [p for p in params if p.dim() > 1], "weight_decay": weight_decay},
                  {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0}]
    x, y = graph.x, graph.y

    def loss(model: nn.Module, graph: Graph) -> Tensor:
        return F.cross_entropy(model(x, graph)[graph.train_mask], y[graph.train_mask])

    keep, improved = _selection_rule(selection)
    best = KeepBest(keep)
    callbacks = [best] if patience is None else [best, EarlyStopping(improved, patience)]
    history = fit(model, [graph], loss=loss, optimiser=torch.optim.Adam(groups, lr=lr), epochs=epochs,
                  metrics=_full_graph_evaluation(graph), callbacks=callbacks, progress=progress, desc=desc)
    chosen = best.best_row
    return {"best_epoch": chosen["epoch"], "val_acc": chosen["val_acc"], "test_acc": chosen["test_acc"],
            "history": history}


def fit_node_classifier_minibatch(
    model: nn.Module, graph: Graph, loader: Iterable, *, epochs: int = 200, lr: float = 0.01,
    weight_decay: float = 5e-4, progress: bool | None = None, desc: str = "train",
) -> dict[str, Any]:
    """Train ``model`` by mini-batches and select the epoch as ``fit_node_classifier`` does (best validation
    accuracy, ties broken by the lower validation loss).

    ``loader`` yields batches with ``x``, ``blocks`` and ``y`` (``fivefold.scale.NeighborLoader``); the model is
    called as ``model(batch.x, batch.blocks)`` to train and as ``model(graph.x, graph)`` to evaluate (exact
    full-graph inference, which fits in memory for the graphs this function is meant for)."""
    _check_node_task(graph)

    def loss(model: nn.Module, batch: Any) -> Tensor:
        return F.cross_entropy(model(batch.x, batch.blocks), batch.y)

    keep, _ = _selection_rule("val_acc")
    best = KeepBest(keep)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = fit(model, loader, loss=loss, optimiser=optimiser, epochs=epochs,
                  metrics=_full_graph_evaluation(graph),
                  callbacks=[best], progress=progress, desc=desc)
    chosen = best.best_row
    return {"best_epoch": chosen["epoch"], "val_acc": chosen["val_acc"], "test_acc": chosen["test_acc"],
            "history": history}


def _check_node_task(graph: Graph) -> None:
    for field in ("x", "y", "train_mask", "val_mask", "test_mask"):
        if getattr(graph, field) is None:
            raise GraphError(f"node classification needs graph.{field}")


def _full_graph_evaluation(graph: Graph) -> Callable[[nn.Module], dict[str, float]]:
    """``metrics`` for ``fit``: train/validation/test accuracy and validation loss of ``model(graph.x, graph)``."""
    def evaluation(model: nn.Module) -> dict[str, float]:
        model.eval()
        with torch.no_grad():
            logits = model(graph.x, graph)
        y = graph.y
        return {
            "train_acc": accuracy(logits[graph.train_mask], y[graph.train_mask]),
            "val_loss": float(F.cross_entropy(logits[graph.val_mask], y[graph.val_mask])),
            "val_acc": accuracy(logits[graph.val_mask], y[graph.val_mask]),
            "test_acc": accuracy(logits[graph.test_mask], y[graph.test_mask]),
        }

    return evaluation


def _selection_rule(selection: str) -> tuple[Callable[[dict, dict | None], bool], Callable[[dict], bool]]:
    """``(keep, improved)`` for ``fit_node_classifier``'s ``selection``: whether an epoch's weights replace the kept
    ones, and whether it counts as an improvement for patience."""
    if selection == "val_acc":  # the best validation accuracy, ties broken by the lower validation loss
        def better(row: dict, best: dict | None) -> bool:
            return best is None or (row["val_acc"], -row["val_loss"]) > (best["val_acc"], -best["val_loss"])

        record: dict = {}

        def improved(row: dict) -> bool:
            if better(row, record.get("best")):
                record["best"] = row
                return True
            return False

        return better, improved
    # the GAT reference code: keep when accuracy >= the best so far and loss <= the lowest so far; improvement when
    # either holds (both compared with the bests before this epoch)
    bests = {"acc": -1.0, "loss": float("inf")}
    marks = {"acc": -1.0, "loss": float("inf")}

    def keep(row: dict, best: dict | None) -> bool:
        chosen = row["val_acc"] >= bests["acc"] and row["val_loss"] <= bests["loss"]
        bests["acc"], bests["loss"] = max(bests["acc"], row["val_acc"]), min(bests["loss"], row["val_loss"])
        return chosen

    def improved(row: dict) -> bool:
        better = row["val_acc"] >= marks["acc"] or row["val_loss"] <= marks["loss"]
        marks["acc"], marks["loss"] = max(marks["acc"], row["val_acc"]), min(marks["loss"], row["val_loss"])
        return better

    return keep, improved


def fit_store_classifier(
    model: nn.Module, store: Any, *, fanouts: Sequence[int], batch_size: int = 1024, epochs: int | None = None,
    steps: int | None = None, evaluate_every: int | None = None, lr: float = 0.003, weight_decay: float = 0.0,
    eval_nodes: int | None = None, eval_mode: str = "exact", seed: int = 0, prefetch: int = 1,
    progress: bool | None = None, desc: str = "train", workdir: str | None = None, release_every: int = 1,
) -> dict[str, Any]:
    """Train ``model`` by sampled mini-batches over a graph store (``fivefold.scale.GraphStore`` with features,
    labels and the three masks) and keep the evaluation with the best validation accuracy.

    Args:
        fanouts, batch_size: the sampler's fan-outs (seeds' hop first) and seeds per batch.
        epochs, steps: how long (exactly one); ``evaluate_every``: evaluate every that many steps (default: at each
            epoch's end).
        eval_nodes: evaluate on at most this many validation and test nodes each (drawn once with ``seed``;
            default: all).
        eval_mode: ``"exact"``: layer-wise inference with every neighbour (``fivefold.scale.layerwise_inference``);
            ``"sampled"``: the model on sampled blocks with the training fan-outs (much cheaper on huge graphs,
            slightly noisy).
        release_every: release the store's mapped pages every that many batches (``NeighborLoader``), so that a
            store larger than RAM does not grow the process.

    The progress bar shows batches/s and sampled edges/s. Returns ``{"best_step", "val_acc", "test_acc",
    "history"}``; each history row has ``batches_per_s`` and ``edges_per_s``."""
    from fivefold.scale import NeighborLoader, layerwise_inference

    check_option(eval_mode, ("exact", "sampled"), "eval_mode", "fit_store_classifier")
    for name in ("features", "labels", "train_mask", "val_mask", "test_mask"):
        if getattr(store, name, None) is None:
            raise GraphError(f"training on a store needs its {name} (write them with the store)")
    uses_gcn = any(isinstance(module, GCNConv) for module in model.modules())
    loader = NeighborLoader(store, store.train_mask, fanouts, batch_size=batch_size, seed=seed, prefetch=prefetch,
                            degrees=uses_gcn, release_every=release_every)
    rng = np.random.default_rng([seed, 1])
    chosen = {}
    for name in ("val", "test"):
        nodes = np.flatnonzero(getattr(store, f"{name}_mask"))
        if eval_nodes is not None and len(nodes) > eval_nodes:
            nodes = np.sort(rng.choice(nodes, eval_nodes, replace=False))
        if len(nodes) == 0:
            raise GraphError(f"the store's {name}_mask selects no node")
        chosen[name] = (nodes, torch.from_numpy(np.asarray(store.labels[nodes], dtype=np.int64)))

    def logits(nodes: np.ndarray) -> Tensor:
        if eval_mode == "exact":
            return layerwise_inference(model, store, nodes, workdir=workdir)
        sampled = NeighborLoader(store, nodes, fanouts, batch_size=batch_size, shuffle=False, seed=seed + 1,
                                 prefetch=prefetch, degrees=uses_gcn, release_every=release_every)
        model.eval()
        with torch.no_grad():
            return torch.cat([model(batch.x.to(_dtype(model)), batch.blocks) for batch in sampled])

    # validation and test nodes in one pass (a node in both is computed once)
    both, where = np.unique(np.concatenate([chosen["val"][0], chosen["test"][0]]), return_inverse=True)

    def evaluation(model: nn.Module) -> dict[str, float]:
        out = logits(both)
        val, test = out[where[:len(chosen["val"][0])]], out[where[len(chosen["val"][0]):]]
        return {"val_acc": accuracy(val, chosen["val"][1]), "val_loss": float(F.cross_entropy(val, chosen["val"][1])),
                "test_acc": accuracy(test, chosen["test"][1])}

    def loss(model: nn.Module, batch: Any) -> Tensor:
        return F.cross_entropy(model(batch.x.to(_dtype(model)), batch.blocks), batch.y)

    def rates(batch: Any) -> dict[str, float]:
        return {"batches": 1.0, "edges": float(sum(block.csc.nnz for block in batch.blocks))}

    keep, _ = _selection_rule("val_acc")
    best = KeepBest(keep)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = fit(model, loader, loss=loss, optimiser=optimiser, epochs=epochs, steps=steps,
                  evaluate_every=evaluate_every, metrics=evaluation, callbacks=[best], progress=progress, desc=desc,
                  rates=rates)
    row = best.best_row
    return {"best_step": row["step"], "val_acc": row["val_acc"], "test_acc": row["test_acc"], "history": history}


def _dtype(model: nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype
