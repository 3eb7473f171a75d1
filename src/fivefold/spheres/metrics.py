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
    (one-vs-rest; nan for absent classes): ``sum_k (R_k - R_{k-1}) P_k`` over the distinct score thresholds, so tied
    scores form one threshold and the result does not depend on the order of the inputs (scikit-learn's
    ``average_precision_score``)."""
    _check(scores, labels, num_classes)
    flat_scores = scores.movedim(1, -1).reshape(-1, num_classes).double()
    flat_labels = labels.reshape(-1)
    out = torch.full((num_classes,), float("nan"), dtype=torch.float64)
    for c in range(num_classes):
        positive = flat_labels == c
        total = int(positive.sum())
        if total == 0:
            continue
        ranked, order = torch.sort(flat_scores[:, c], descending=True, stable=True)
        true_positives = positive[order].double().cumsum(0)
        # The last position of each group of equal scores is a threshold.
        last = torch.ones_like(ranked, dtype=torch.bool)
        last[:-1] = ranked[1:] != ranked[:-1]
        at = torch.nonzero(last).squeeze(1)
        precision = true_positives[at] / (at + 1).double()
        recall = true_positives[at] / total
        steps = torch.diff(recall, prepend=recall.new_zeros(1))
        out[c] = (steps * precision).sum()
    return out


def segmentation_report(scores: Tensor, labels: Tensor, num_classes: int) -> dict[str, object]:
    """``{"per_class_accuracy": [...], "mean_accuracy": float, "average_precision": [...], "mAP": float}``."""
    accuracy = per_class_accuracy(scores, labels, num_classes)
    precision = average_precision(scores, labels, num_classes)
    return {"per_class_accuracy": accuracy.tolist(), "mean_accuracy": float(accuracy.nanmean()),
            "average_precision": precision.tolist(), "mAP": float(precision.nanmean())}


def _check(scores: Tensor, labels: Tensor, num_classes: int) -> None:
    if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.is_complex():
        raise FieldError(f"labels must be an integer tensor of class indices, got {labels.dtype}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise FieldError(f"labels must lie in [0, {num_classes}); found values from {int(labels.min())} to "
                         f"{int(labels.max())} (mask ignored vertices out before scoring)")
    if scores.dim() < 2 or scores.shape[1] != num_classes or scores.shape[:1] + scores.shape[2:] != labels.shape:
        raise FieldError(f"scores must be [N, {num_classes}, ...] matching labels [N, ...]; got "
                         f"{tuple(scores.shape)} and {tuple(labels.shape)}")
