"""Ranking metrics against brute-force definitions (ties included) and their bad inputs."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fivefold.errors import OptionError
from fivefold.ops import average_precision, mean_reciprocal_rank, roc_auc


def brute_auc(scores, labels):
    pairs = [(p, n) for p, n in itertools.product(scores[labels == 1], scores[labels == 0])]
    return np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs])


def brute_ap(scores, labels):
    total = 0.0
    recall_before = 0.0
    for threshold in sorted(set(scores), reverse=True):
        chosen = scores >= threshold
        recall = labels[chosen].sum() / labels.sum()
        total += (recall - recall_before) * labels[chosen].mean()
        recall_before = recall
    return total


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), size=st.integers(2, 40), levels=st.integers(1, 6))
def test_ap_and_auc_equal_their_definitions(seed, size, levels):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, size).astype(float)  # few levels: many ties
    labels = rng.integers(0, 2, size)
    labels[0], labels[1] = 0, 1
    assert average_precision(scores, labels) == pytest.approx(brute_ap(scores, labels), abs=1e-12)
    assert roc_auc(scores, labels) == pytest.approx(brute_auc(scores, labels), abs=1e-12)


def test_mrr_counts_ties_half():
    positive = np.array([3.0, 1.0, 2.0])
    negatives = np.array([[1.0, 2.0], [2.0, 3.0], [2.0, 0.0]])
    # ranks: 1; 3; 1 + 0.5 (one tie)
    assert mean_reciprocal_rank(positive, negatives) == pytest.approx((1 + 1 / 3 + 1 / 1.5) / 3)


def test_bad_metric_inputs_are_refused():
    with pytest.raises(OptionError, match="positive and one negative"):
        roc_auc([0.1, 0.2], [1, 1])
    with pytest.raises(OptionError, match="0 or 1"):
        average_precision([0.1, 0.2], [0, 2])
    with pytest.raises(OptionError, match="finite"):
        roc_auc([0.1, float("nan")], [0, 1])
    with pytest.raises(OptionError, match="one entry each"):
        roc_auc([0.1], [0, 1])
    with pytest.raises(OptionError, match="negatives"):
        mean_reciprocal_rank([1.0], [2.0])
