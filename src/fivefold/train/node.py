"""Full-batch training of a node classifier on one graph with train/val/test masks."""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from fivefold.errors import GraphError
from fivefold.graphs import Graph

__all__ = ["fit_node_classifier", "accuracy"]


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(-1) == labels).float().mean()) if labels.numel() else float("nan")


def fit_node_classifier(
    model: nn.Module, graph: Graph, *, epochs: int = 200, lr: float = 0.01, weight_decay: float = 5e-4,
    patience: int | None = None, progress: bool = True, desc: str = "train",
) -> dict[str, Any]:
    """Train ``model(x, graph) -> [N, classes]`` with Adam and cross-entropy on ``graph.train_mask``.

    The model is evaluated every epoch; the epoch with the best validation accuracy (ties: lower validation loss)
    is kept, and its weights are restored at the end. With ``patience``, training stops once validation has not
    improved for that many epochs.

    Returns:
        ``{"best_epoch", "val_acc", "test_acc", "history": [per-epoch dicts]}``.
    """
    for field in ("x", "y", "train_mask", "val_mask", "test_mask"):
        if getattr(graph, field) is None:
            raise GraphError(f"node classification needs graph.{field}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    x, y = graph.x, graph.y
    history: list[dict[str, float]] = []
    best: tuple[float, float] = (-1.0, float("inf"))
    best_state, best_epoch, since_best = None, 0, 0
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        optimizer.zero_grad()
        logits = model(x, graph)
        loss = F.cross_entropy(logits[graph.train_mask], y[graph.train_mask])
        loss.backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            logits = model(x, graph)
        row = {
            "epoch": epoch,
            "train_loss": loss.item(),
            "train_acc": accuracy(logits[graph.train_mask], y[graph.train_mask]),
            "val_loss": float(F.cross_entropy(logits[graph.val_mask], y[graph.val_mask])),
            "val_acc": accuracy(logits[graph.val_mask], y[graph.val_mask]),
            "test_acc": accuracy(logits[graph.test_mask], y[graph.test_mask]),
        }
        history.append(row)
        if (row["val_acc"], -row["val_loss"]) > (best[0], -best[1]):
            best = (row["val_acc"], row["val_loss"])
            best_state, best_epoch, since_best = copy.deepcopy(model.state_dict()), epoch, 0
        else:
            since_best += 1
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val=f"{row['val_acc']:.3f}")
        if patience is not None and since_best >= patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    chosen = history[best_epoch - 1]
    return {"best_epoch": best_epoch, "val_acc": chosen["val_acc"], "test_acc": chosen["test_acc"],
            "history": history}
