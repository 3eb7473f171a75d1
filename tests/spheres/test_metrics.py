import pytest
import torch

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
