"""Shared by the grid experiments: models of matched parameter budget, a training loop, evaluation, result files.

Models come from ``fivefold.train.presets.build_image_model``: ``fivefold.grids.GCNNClassifier`` with widths
``[c, c, 2c, 2c, 4c]`` (2D) or ``[c, c, 2c, 2c, 8c]`` (3D, the last a 1x1x1 layer); ``c`` is chosen per group so the
parameter count is as close as possible to the plain CNN's (``trivial`` group).
Results are appended one run per line to a ``.jsonl`` file, so an interrupted experiment resumes where it stopped.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from fivefold.train import ShuffledBatches, cosine_schedule, fit
from fivefold.train import predict_proba as predict  # noqa: F401 - re-exported for the experiment scripts
from fivefold.train.presets import IMAGE_MODELS, build_image_model

NAMES = {"cnn": "CNN", "c4": "C4 G-CNN", "d4": "D4 G-CNN", "c8": "C8 steerable CNN", "cnn3d": "3D CNN",
         "o": "3D G-CNN (O, 24 rotations)"}


def build(model: str, cnn_base: int, in_channels: int, num_classes: int, dim: int, **kwargs):
    """``fivefold.train.presets.build_image_model`` (``dim`` is implied by the model name)."""
    if IMAGE_MODELS[model][0] != dim:
        raise ValueError(f"model {model} is not {dim}D")
    return build_image_model(model, cnn_base, in_channels, num_classes, **kwargs)


def train(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, *, steps: int, batch_size: int,
          lr: float, seed: int, evaluate=None, evaluate_every: int = 0, callbacks=(), progress: bool | None = None
          ) -> list[dict]:
    """``fivefold.train.fit``: Adam with cosine learning-rate decay over ``steps`` mini-batches drawn by reshuffled
    epochs (incomplete last batches skipped). ``evaluate`` (a function of the model returning a dict) runs every
    ``evaluate_every`` steps and at the end, giving rows ``{"step", "loss" (the last batch's), "train_loss", ...}``
    that ``callbacks`` (e.g. ``fivefold.train.KeepBest``) see; ``progress``: show a progress bar (None: when on a
    terminal)."""
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    history = fit(model, ShuffledBatches(len(labels), batch_size, seed, drop_last=True),
                  loss=lambda model, index: F.cross_entropy(model(images[index]), labels[index]),
                  optimiser=optimiser, schedule=cosine_schedule(optimiser, steps), steps=steps, metrics=evaluate,
                  evaluate_every=evaluate_every or steps, callbacks=callbacks, progress=progress,
                  desc=type(model).__name__)
    return history if evaluate is not None else []


def accuracy(probabilities: torch.Tensor, labels: torch.Tensor) -> float:
    return float((probabilities.argmax(dim=1) == labels).to(torch.float64).mean())


def binary_auc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    scores, labels = scores.double().numpy(), labels.numpy().astype(bool)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    start = 0
    while start < len(scores):
        end = start
        while end + 1 < len(scores) and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2 + 1
        start = end + 1
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def done_runs(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_run(path: Path, run: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        handle.write(json.dumps(run) + "\n")
