import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fivefold.errors import FieldError
from fivefold.spheres import average_precision, per_class_accuracy, segmentation_report


def test_per_class_accuracy_and_average_precision():
    labels = torch.tensor([[0, 0, 1, 1, 2]])
    scores = torch.tensor([[[0.9, 0.8, 0.1, 0.6, 0.0],   # class 0
                            [0.1, 0.2, 0.8, 0.3, 0.0],   # class 1
                            [0.0, 0.0, 0.1, 0.1, 1.0]]])  # class 2
    accuracy = per_class_accuracy(scores, labels, 3)
    assert accuracy.tolist() == [1.0, 0.5, 1.0]  # vertex 3 (class 1) is predicted as class 0
    precision = average_precision(scores, labels, 3)
    # class 0 ranking: v0 (+), v1 (+), v3 (-) ...: AP = 1; class 1: v2 (+), v3 (+) -> AP = 1; class 2: AP = 1
    assert precision.tolist() == [1.0, 1.0, 1.0]
    # a worse ranking for class 1: its positives ranked 1st and 3rd -> AP = (1 + 2/3) / 2
    scores[0, 1, 1] = 0.5
    assert average_precision(scores, labels, 3)[1].item() == pytest.approx((1 + 2 / 3) / 2)
    report = segmentation_report(scores, labels, 3)
    assert report["mean_accuracy"] == pytest.approx(2.5 / 3) and 0 < report["mAP"] <= 1


def test_absent_classes_and_bad_shapes():
    labels = torch.zeros(1, 4, dtype=torch.int64)
    scores = torch.randn(1, 2, 4)
    assert torch.isnan(per_class_accuracy(scores, labels, 2)[1])
    assert torch.isnan(average_precision(scores, labels, 2)[1])
    with pytest.raises(FieldError):
        per_class_accuracy(scores, labels[:, :3], 2)


def _reference_average_precision(scores: list[float], positive: list[bool]) -> float:
    """Slow definition: sum over the distinct thresholds t (high to low) of (R(t) - R(t_prev)) * P(t)."""
    total, ap, previous_recall = sum(positive), 0.0, 0.0
    for threshold in sorted(set(scores), reverse=True):
        chosen = [p for s, p in zip(scores, positive, strict=True) if s >= threshold]
        recall = sum(chosen) / total
        ap += (recall - previous_recall) * sum(chosen) / len(chosen)
        previous_recall = recall
    return ap


def test_average_precision_treats_ties_as_one_threshold():
    scores = torch.tensor([[[0.0, 0.0], [1.0, 1.0]]])  # class 1 scores tied
    assert average_precision(scores, torch.tensor([[1, 0]]), 2)[1].item() == pytest.approx(0.5)
    assert average_precision(scores, torch.tensor([[0, 1]]), 2)[1].item() == pytest.approx(0.5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2)), min_size=1, max_size=30), st.randoms())
def test_average_precision_matches_the_definition_and_ignores_order(pairs, rng):
    # Few distinct (integer) scores, so ties are common.
    values = [float(v) for v, _ in pairs]
    labels = torch.tensor([[label for _, label in pairs]])
    scores = torch.stack([torch.tensor(values), -torch.tensor(values), torch.zeros(len(values))])[None]
    result = average_precision(scores, labels, 3)
    order = list(range(len(pairs)))
    rng.shuffle(order)
    shuffled = average_precision(scores[..., order], labels[..., order], 3)
    for c in range(3):
        positive = [label == c for _, label in pairs]
        if not any(positive):
            assert torch.isnan(result[c]) and torch.isnan(shuffled[c])
            continue
        expected = _reference_average_precision(scores[0, c].tolist(), positive)
        assert result[c].item() == pytest.approx(expected)
        assert shuffled[c].item() == pytest.approx(expected)


def test_bad_labels_are_rejected():
    scores = torch.randn(1, 2, 4)
    with pytest.raises(FieldError, match="lie in"):
        average_precision(scores, torch.tensor([[0, 1, 2, 0]]), 2)
    with pytest.raises(FieldError, match="lie in"):
        per_class_accuracy(scores, torch.tensor([[0, -1, 1, 0]]), 2)
    with pytest.raises(FieldError, match="integer"):
        per_class_accuracy(scores, torch.zeros(1, 4), 2)
