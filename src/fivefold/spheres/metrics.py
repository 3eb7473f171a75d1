"""Per-vertex segmentation metrics as reported for spherical segmentation (Cohen et al. 2019, climate patterns):
per-class accuracy (recall), their mean, and mean average precision over classes."""

from __future__ import annotations

import torch
from torch import Tensor

from fivefold.errors import FieldError

__all__ = ["per_class_accuracy", "average_precision", "segmentation_report"]


def per_class_accuracy(scores: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """``[num_classes]``: the fraction of vertices of each class predicted as that class (nan for absent classes).

    Args:
        scores: ``[N, num_classes, ...]`` class scores; labels: ``[N, ...]`` int64.
    """
    _check(scores, labels, num_classes)
    predicted = scores.argmax(dim=1)
    out = torch.full((num_classes,), float("nan"), dtype=torch.float64)
    for c in range(num_classes):
        chosen = labels == c
        if chosen.any():
            out[c] = (predicted[chosen] == c).double().mean()
    return out


def average_precision(scores: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """``[num_classes]`` average precision of each class, ranking all vertices by that class's score
    (one-vs-rest; nan for absent classes). Ties are broken by order, as in scikit-learn's step-wise definition."""
    _check(scores, labels, num_classes)
    flat_scores = scores.movedim(1, -1).reshape(-1, num_classes).double()
    flat_labels = labels.reshape(-1)
    out = torch.full((num_classes,), float("nan"), dtype=torch.float64)
    for c in range(num_classes):
        positive = flat_labels == c
        total = int(positive.sum())
        if total == 0:
            continue
        order = torch.argsort(flat_scores[:, c], descending=True, stable=True)
        hits = positive[order].double()
        precision = hits.cumsum(0) / torch.arange(1, len(hits) + 1, dtype=torch.float64)
        out[c] = (precision * hits).sum() / total
    return out


def segmentation_report(scores: Tensor, labels: Tensor, num_classes: int) -> dict[str, object]:
    """``{"per_class_accuracy": [...], "mean_accuracy": float, "average_precision": [...], "mAP": float}``."""
    accuracy = per_class_accuracy(scores, labels, num_classes)
    precision = average_precision(scores, labels, num_classes)
    return {"per_class_accuracy": accuracy.tolist(), "mean_accuracy": float(accuracy.nanmean()),
            "average_precision": precision.tolist(), "mAP": float(precision.nanmean())}


def _check(scores: Tensor, labels: Tensor, num_classes: int) -> None:
    if scores.dim() < 2 or scores.shape[1] != num_classes or scores.shape[:1] + scores.shape[2:] != labels.shape:
        raise FieldError(f"scores must be [N, {num_classes}, ...] matching labels [N, ...]; got "
                         f"{tuple(scores.shape)} and {tuple(labels.shape)}")
