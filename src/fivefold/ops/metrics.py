"""Ranking metrics on scores: average precision, ROC-AUC and mean reciprocal rank.

They live in the core because several domains need them (temporal link prediction, molecular classification) and
domains may not import one another. Ties are handled as scikit-learn and OGB/TGB do: AP groups tied scores into one
threshold; ROC-AUC counts a tied positive/negative pair as half (the Mann-Whitney statistic with average ranks);
MRR averages the optimistic and the pessimistic rank.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fivefold.errors import OptionError

__all__ = ["average_precision", "mean_reciprocal_rank", "roc_auc"]


def _scores_and_labels(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores.detach().cpu() if hasattr(scores, "detach") else scores, dtype=np.float64).ravel()
    labels = np.asarray(labels.detach().cpu() if hasattr(labels, "detach") else labels).ravel()
    if scores.shape != labels.shape:
        raise OptionError(f"scores and labels must have one entry each, got {scores.shape} and {labels.shape}")
    if not np.all(np.isfinite(scores)):
        raise OptionError("scores must be finite")
    if not np.all((labels == 0) | (labels == 1)):
        raise OptionError("labels must be 0 or 1")
    positives = int(labels.sum())
    if positives == 0 or positives == len(labels):
        raise OptionError("the metric needs at least one positive and one negative label")
    return scores, labels.astype(bool)


def average_precision(scores: Any, labels: Any) -> float:
    """``sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds, highest first (precision ``P``, recall
    ``R``): the area under the precision-recall curve without interpolation."""
    scores, labels = _scores_and_labels(scores, labels)
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    true_positives = np.cumsum(labels)
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # end of each group of equal scores
    tp = true_positives[last_of_tie]
    precision = tp / (last_of_tie + 1)
    recall_gain = np.diff(np.r_[0, tp]) / tp[-1]
    return float(np.sum(recall_gain * precision))


def roc_auc(scores: Any, labels: Any) -> float:
    """The probability that a random positive scores above a random negative (ties count half)."""
    scores, labels = _scores_and_labels(scores, labels)
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    # average ranks over ties
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    average = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(average, ends - starts)
    positives = labels.sum()
    negatives = len(labels) - positives
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def mean_reciprocal_rank(positive: Any, negatives: Any) -> float:
    """``positive [P]`` scores and ``negatives [P, Q]`` scores of each positive's own negatives: the mean over
    positives of ``1 / rank``, rank = 1 + (#negatives above) + (#negatives tied) / 2 (TGB's rule)."""
    positive = np.asarray(positive.detach().cpu() if hasattr(positive, "detach") else positive, dtype=np.float64)
    negatives = np.asarray(negatives.detach().cpu() if hasattr(negatives, "detach") else negatives, dtype=np.float64)
    if positive.ndim != 1 or negatives.ndim != 2 or len(negatives) != len(positive):
        raise OptionError(f"mean_reciprocal_rank: positive must be [P] and negatives [P, Q], got {positive.shape} "
                          f"and {negatives.shape}")
    above = (negatives > positive[:, None]).sum(1)
    tied = (negatives == positive[:, None]).sum(1)
    return float(np.mean(1.0 / (1.0 + above + tied / 2.0)))
