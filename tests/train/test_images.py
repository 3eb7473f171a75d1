import pytest
import torch
from torch import nn

from fivefold.grids import count_parameters
from fivefold.train import fit_image_classifier, predict_proba
from fivefold.train.presets import IMAGE_MODELS, build_image_model


def test_fit_image_classifier_learns_and_restores_the_best_epoch():
    torch.manual_seed(0)
    images = torch.randn(64, 1, 8, 8)
    labels = (images[:, 0, :4].sum(dim=(1, 2)) > 0).long()  # learnable from the pixels
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 2))
    result = fit_image_classifier(model, images, labels, images, labels, epochs=5, lr=0.05, batch_size=16,
                                  progress=False)
    assert len(result["history"]) == 5
    assert result["val_acc"] == max(row["val_acc"] for row in result["history"])
    assert float((predict_proba(model, images).argmax(1) == labels).float().mean()) == result["val_acc"]
    assert result["val_acc"] > 0.8
    with pytest.raises(ValueError):
        fit_image_classifier(model, images, labels[:3], images, labels, progress=False)


@pytest.mark.parametrize("name", sorted(IMAGE_MODELS))
def test_image_models_have_matched_budgets(name):
    dim = IMAGE_MODELS[name][0]
    kwargs = {} if dim == 2 else {"pool_after": (1,), "kernel_sizes": [3, 3, 3, 3, 1]}
    base = 6 if dim == 2 else 5
    plain = build_image_model("cnn" if dim == 2 else "cnn3d", base, 1, 10, **kwargs)
    model = build_image_model(name, base, 1, 10, **kwargs)
    assert abs(count_parameters(model) - count_parameters(plain)) < 0.35 * count_parameters(plain)
    with pytest.raises(ValueError, match="unknown image model"):
        build_image_model("resnet", 6, 1, 10)


def test_predict_proba_builds_no_graph():
    probabilities = predict_proba(nn.Linear(4, 3), torch.randn(5, 4))
    assert not probabilities.requires_grad and probabilities.shape == (5, 3)
