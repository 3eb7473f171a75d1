"""Mini-batch training of graph classifiers and k-fold cross-validation (the protocol of Xu et al. 2019)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fivefold.graphs import Batch, Graph
from fivefold.train.loop import RandomSubsets, fit

__all__ = ["fit_graph_classifier", "cross_validate", "evaluate_graphs"]


def _labels(batch: Batch) -> torch.Tensor:
    return batch.graph_y.long().view(-1)


def evaluate_graphs(model: nn.Module, graphs: Sequence[Graph], batch_size: int = 256) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on ``graphs``."""
    model.eval()
    losses, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(graphs), batch_size):
            batch = Batch.from_graphs(graphs[start:start + batch_size])
            logits = model(batch.x, batch)
            losses += float(F.cross_entropy(logits, _labels(batch), reduction="sum"))
            correct += int((logits.argmax(-1) == _labels(batch)).sum())
    return losses / len(graphs), correct / len(graphs)


def fit_graph_classifier(
    model: nn.Module, train: Sequence[Graph], test: Sequence[Graph], *, epochs: int = 350, lr: float = 0.01,
    batch_size: int = 32, iterations_per_epoch: int = 50, lr_step: int = 50, lr_gamma: float = 0.5, seed: int = 0,
    progress: bool | None = None, desc: str = "train", evaluate_train: bool = False,
) -> list[dict[str, float]]:
    """Train with ``fivefold.train.fit`` as in Xu et al. (2019): each epoch draws ``iterations_per_epoch`` random
    mini-batches of ``batch_size`` graphs; Adam with the learning rate halved every ``lr_step`` epochs. Returns
    per-epoch ``train_loss`` (mean over the epoch's mini-batches), ``test_acc`` and, with ``evaluate_train``,
    ``train_acc`` (a full pass over the training graphs in eval mode)."""
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)

    def loss(model: nn.Module, chosen: np.ndarray) -> Tensor:
        batch = Batch.from_graphs([train[i] for i in chosen])
        return F.cross_entropy(model(batch.x, batch), _labels(batch))

    def evaluation(model: nn.Module) -> dict[str, float]:
        row = {"test_acc": evaluate_graphs(model, test)[1]}
        if evaluate_train:
            row["train_acc"] = evaluate_graphs(model, train)[1]
        return row

    return fit(model, RandomSubsets(len(train), batch_size, iterations_per_epoch, seed), loss=loss,
               optimiser=optimiser, schedule=torch.optim.lr_scheduler.StepLR(optimiser, lr_step, lr_gamma),
               schedule_every="epoch", epochs=epochs, metrics=evaluation, progress=progress, desc=desc)


def cross_validate(
    make_model: Callable[[], nn.Module], graphs: Sequence[Graph], folds: Sequence[tuple[np.ndarray, np.ndarray]],
    *, progress: bool | None = None, return_models: bool = False, **fit_options: Any,
) -> dict[str, Any]:
    """Train a fresh model per fold. Reports, per epoch, the mean and std over folds of the test accuracy and the
    mean training loss, and two summaries: ``best_epoch_*`` (the epoch whose fold-mean is highest: the protocol of
    Xu et al. 2019, which is optimistic since the epoch is chosen on the test folds) and ``last_epoch_*`` (no
    selection at all). With ``return_models``, ``"models"`` holds each fold's model after its last epoch."""
    curves, losses, models = [], [], []
    for k, (train_idx, test_idx) in enumerate(folds):
        model = make_model()
        history = fit_graph_classifier(
            model, [graphs[i] for i in train_idx], [graphs[i] for i in test_idx], progress=progress,
            desc=f"fold {k + 1}/{len(folds)}", **fit_options,
        )
        curves.append([row["test_acc"] for row in history])
        losses.append([row["train_loss"] for row in history])
        if return_models:
            models.append(model)
    curves_np = np.array(curves)
    mean, std = curves_np.mean(0), curves_np.std(0)
    best = int(mean.argmax())
    result = {
        "fold_curves": curves_np.tolist(), "mean_curve": mean.tolist(), "std_curve": std.tolist(),
        "train_loss_curve": np.array(losses).mean(0).tolist(),
        "best_epoch": best + 1, "best_epoch_mean": float(mean[best]), "best_epoch_std": float(std[best]),
        "last_epoch_mean": float(mean[-1]), "last_epoch_std": float(std[-1]),
    }
    if return_models:
        result["models"] = models
    return result
