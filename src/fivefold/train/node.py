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
    patience: int | None = None, selection: str = "val_acc", decay_biases: bool = True, progress: bool = True,
    desc: str = "train",
) -> dict[str, Any]:
    """Train ``model(x, graph) -> [N, classes]`` with Adam and cross-entropy on ``graph.train_mask``.

    The model is evaluated every epoch and one epoch's weights are kept (restored at the end):

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
    if selection not in ("val_acc", "acc_and_loss"):
        raise ValueError(f"selection must be 'val_acc' or 'acc_and_loss', got {selection!r}")
    for field in ("x", "y", "train_mask", "val_mask", "test_mask"):
        if getattr(graph, field) is None:
            raise GraphError(f"node classification needs graph.{field}")
    if decay_biases:
        groups = [{"params": list(model.parameters()), "weight_decay": weight_decay}]
    else:
        params = list(model.parameters())
        groups = [{"params": [p for p in params if p.dim() > 1], "weight_decay": weight_decay},
                  {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0}]
    optimizer = torch.optim.Adam(groups, lr=lr)
    x, y = graph.x, graph.y
    history: list[dict[str, float]] = []
    best: tuple[float, float] = (-1.0, float("inf"))
    best_acc, lowest_loss = -1.0, float("inf")
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
        acc, val_loss = row["val_acc"], row["val_loss"]
        if selection == "val_acc":
            improved = keep = (acc, -val_loss) > (best[0], -best[1])
            if keep:
                best = (acc, val_loss)
        else:
            improved = acc >= best_acc or val_loss <= lowest_loss
            keep = acc >= best_acc and val_loss <= lowest_loss
            best_acc, lowest_loss = max(best_acc, acc), min(lowest_loss, val_loss)
        if keep or best_state is None:
            best_state, best_epoch = copy.deepcopy(model.state_dict()), epoch
        since_best = 0 if improved else since_best + 1
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val=f"{row['val_acc']:.3f}")
        if patience is not None and since_best >= patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    chosen = history[best_epoch - 1]
    return {"best_epoch": best_epoch, "val_acc": chosen["val_acc"], "test_acc": chosen["test_acc"],
            "history": history}
