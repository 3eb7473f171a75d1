"""Training molecular property models (``fivefold.molecules``) with ``fivefold.train.fit``.

The protocol is chemprop 2's, so that D-MPNN results compare with chemprop's on the same splits: mini-batches of 64
molecules, Adam with the Noam schedule (learning rate rising linearly from ``init_lr`` to ``max_lr`` over
``warmup_epochs``, then decaying exponentially to ``final_lr`` at the last step), regression targets standardised with
the training set's mean and standard deviation (predictions are mapped back), mean squared error (regression) or
binary cross-entropy (classification) with missing labels (NaN) masked out, and the weights of the epoch with the
lowest validation loss kept.

Targets ride in each graph's ``graph_y`` (``[T]`` float, NaN where a label is missing).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from fivefold.errors import OptionError, check_option
from fivefold.graphs import Batch, Graph
from fivefold.ops import roc_auc
from fivefold.train.loop import KeepBest, ShuffledBatches, TimeBudget, fit

__all__ = ["MoleculeFit", "TargetScaler", "noam_schedule", "fit_molecule_model", "predict_molecules",
           "score_molecules", "molecule_targets"]


def noam_schedule(optimiser: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int, init_lr: float,
                  max_lr: float, final_lr: float) -> torch.optim.lr_scheduler.LambdaLR:
    """chemprop's Noam schedule as a factor of the optimiser's learning rate (which must be ``max_lr``): linear from
    ``init_lr`` to ``max_lr`` over ``warmup_steps``, then ``max_lr * (final_lr / max_lr)^(s / decay_steps)``."""
    decay_steps = max(total_steps - warmup_steps, 1)
    gamma = (final_lr / max_lr) ** (1.0 / decay_steps)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (init_lr + (max_lr - init_lr) * step / warmup_steps) / max_lr
        return gamma ** min(step - warmup_steps, decay_steps)

    return torch.optim.lr_scheduler.LambdaLR(optimiser, factor)


def molecule_targets(graphs: Sequence[Graph]) -> Tensor:
    """``[n, T]`` float64 targets stacked from the graphs' ``graph_y``."""
    if not graphs or any(g.graph_y is None for g in graphs):
        raise OptionError("molecule_targets: every graph needs graph_y (its targets, NaN where missing)")
    return torch.stack([g.graph_y.reshape(-1).to(torch.float64) for g in graphs])


@dataclass
class TargetScaler:
    """Standardise regression targets: ``(y - mean) / std`` per target, from the training set (NaN ignored)."""

    mean: Tensor
    std: Tensor

    @classmethod
    def fit(cls, targets: Tensor) -> TargetScaler:
        present = ~torch.isnan(targets)
        counts = present.sum(0).clamp(min=1)
        mean = torch.where(present, targets, 0).sum(0) / counts
        variance = torch.where(present, (targets - mean) ** 2, 0).sum(0) / counts
        std = variance.sqrt()
        return cls(mean, torch.where(std > 0, std, torch.ones_like(std)))

    @classmethod
    def identity(cls, tasks: int) -> TargetScaler:
        return cls(torch.zeros(tasks, dtype=torch.float64), torch.ones(tasks, dtype=torch.float64))

    def scale(self, y: Tensor) -> Tensor:
        return (y - self.mean.to(y)) / self.std.to(y)

    def unscale(self, y: Tensor) -> Tensor:
        return y * self.std.to(y) + self.mean.to(y)


def _masked_loss(output: Tensor, target: Tensor, task: str, loss: str) -> Tensor:
    present = ~torch.isnan(target)
    target = torch.where(present, target, torch.zeros_like(target))
    if task == "classification":
        values = F.binary_cross_entropy_with_logits(output, target, reduction="none")
    elif loss == "l1":
        values = (output - target).abs()
    else:
        values = (output - target) ** 2
    return (values * present).sum() / present.sum().clamp(min=1)


def predict_molecules(model: nn.Module, graphs: Sequence[Graph], *, task: str, scaler: TargetScaler | None = None,
                      batch_size: int = 256) -> Tensor:
    """``[n, T]`` predictions in the targets' units (regression) or probabilities (classification)."""
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(graphs), batch_size):
            outputs.append(model(Batch.from_graphs(graphs[start:start + batch_size])).to(torch.float64))
    output = torch.cat(outputs)
    if task == "classification":
        return torch.sigmoid(output)
    return scaler.unscale(output) if scaler is not None else output


def score_molecules(predictions: Tensor, targets: Tensor, task: str) -> dict[str, float]:
    """Regression: ``rmse`` and ``mae`` over all present labels (the mean of per-target scores when ``T > 1``).
    Classification: ``roc_auc``, the mean over targets of the ROC-AUC of the present labels (targets with one class
    only are left out, as MoleculeNet and chemprop do)."""
    scores: dict[str, list[float]] = {}
    for t in range(targets.shape[1]):
        present = ~torch.isnan(targets[:, t])
        y, p = targets[present, t], predictions[present, t]
        if task == "classification":
            if 0 < int(y.sum()) < len(y):
                scores.setdefault("roc_auc", []).append(roc_auc(p, y.long()))
        else:
            scores.setdefault("rmse", []).append(float(((p - y) ** 2).mean().sqrt()))
            scores.setdefault("mae", []).append(float((p - y).abs().mean()))
    return {key: float(np.mean(values)) for key, values in scores.items()}


@dataclass
class MoleculeFit:
    """What ``fit_molecule_model`` returns: the per-evaluation rows, the kept row, the target scaler and the
    training seconds."""

    history: list[dict[str, float]]
    best: dict[str, float]
    scaler: TargetScaler
    seconds: float


def fit_molecule_model(
    model: nn.Module, train: Sequence[Graph], val: Sequence[Graph], *, task: str, epochs: int = 50,
    batch_size: int = 64, warmup_epochs: int = 2, init_lr: float = 1e-4, max_lr: float = 1e-3,
    final_lr: float = 1e-4, loss: str = "mse", seed: int = 0, evaluate_every: int | None = None,
    time_budget: float | None = None, budget_clock: str = "wall", progress: bool | None = None,
    desc: str = "train",
) -> MoleculeFit:
    """Train ``model`` (``model(batch) -> [B, T]``) on ``train`` and keep the weights of the lowest validation loss.

    Args:
        task: ``"regression"`` or ``"classification"`` (binary, one logit per target).
        epochs, batch_size, warmup_epochs, init_lr, max_lr, final_lr: chemprop's defaults (see the module docstring).
        loss: for regression, ``"mse"`` (chemprop) or ``"l1"`` (the QM9 literature trains on the MAE).
        seed: the batch order.
        evaluate_every: evaluate every that many steps instead of every epoch (long QM9 epochs).
        time_budget: stop at the first evaluation after this many seconds of training.
        budget_clock: ``"wall"`` (elapsed time) or ``"cpu"`` (this process's CPU time: with one thread, the compute
            spent, whatever else shares the machine).

    Every row has ``val_loss`` (on standardised targets, as trained) and the validation scores of
    ``score_molecules`` with a ``val_`` prefix, plus ``seconds`` (wall) and ``cpu_seconds`` since the start.
    """
    check_option(task, ("regression", "classification"), "task", "fit_molecule_model")
    check_option(loss, ("mse", "l1"), "loss", "fit_molecule_model")
    check_option(budget_clock, ("wall", "cpu"), "budget_clock", "fit_molecule_model")
    train_y, val_y = molecule_targets(train), molecule_targets(val)
    scaler = TargetScaler.fit(train_y) if task == "regression" else TargetScaler.identity(train_y.shape[1])
    batches = ShuffledBatches(len(train), batch_size, seed=seed)
    total_steps = epochs * len(batches)
    optimiser = torch.optim.Adam(model.parameters(), lr=max_lr)
    schedule = noam_schedule(optimiser, warmup_steps=warmup_epochs * len(batches), total_steps=total_steps,
                             init_lr=init_lr, max_lr=max_lr, final_lr=final_lr)
    start, cpu_start = time.perf_counter(), time.process_time()
    budget = TimeBudget(time_budget, budget_clock)

    def step_loss(model: nn.Module, index: Tensor) -> tuple[Tensor, dict[str, float]]:
        batch = Batch.from_graphs([train[i] for i in index.tolist()])
        output = model(batch)
        target = scaler.scale(train_y[index].to(output))
        return _masked_loss(output, target, task, loss), {"count": float(len(index))}

    def validation(model: nn.Module) -> dict[str, float]:
        model.eval()
        outputs = torch.cat([model(Batch.from_graphs(val[k:k + 256])).to(torch.float64)
                             for k in range(0, len(val), 256)])
        row = {"val_loss": float(_masked_loss(outputs, scaler.scale(val_y), task, loss))}
        predictions = torch.sigmoid(outputs) if task == "classification" else scaler.unscale(outputs)
        row.update({f"val_{key}": value for key, value in score_molecules(predictions, val_y, task).items()})
        row["seconds"] = time.perf_counter() - start
        row["cpu_seconds"] = time.process_time() - cpu_start
        return row

    keep = KeepBest(lambda row, best: best is None or row["val_loss"] < best["val_loss"]
                    or math.isnan(best["val_loss"]))
    torch.manual_seed(seed)
    history = fit(model, batches, loss=step_loss, optimiser=optimiser, schedule=schedule, epochs=epochs,
                  metrics=validation, evaluate_every=evaluate_every, callbacks=[keep, budget], progress=progress,
                  desc=desc)
    return MoleculeFit(history, keep.best_row or {}, scaler, time.perf_counter() - start)
