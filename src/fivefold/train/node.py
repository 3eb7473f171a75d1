"""Full-batch training of a node classifier on one graph with train/val/test masks."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fivefold.errors import GraphError, check_option
from fivefold.graphs import Graph
from fivefold.train.loop import EarlyStopping, KeepBest, fit

__all__ = ["fit_node_classifier", "fit_node_classifier_minibatch", "accuracy"]


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
