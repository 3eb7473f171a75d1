"""Mini-batch training of an image or volume classifier (G-CNNs and their plain CNN twins)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fivefold.groups import FiniteGroup, act_on_grid
from fivefold.train.loop import KeepBest, ShuffledBatches, cosine_schedule, fit

__all__ = ["fit_image_classifier", "predict_proba", "rotate_test_set"]


def rotate_test_set(images: Tensor, group: FiniteGroup, seed: int = 2026) -> Tensor:
    """Each image moved by its own random element of ``group`` (drawn with ``seed``; element 0 leaves it alone): the
    rotated test set on which a G-CNN's predictions must not change.

    Args:
        images: ``[N, C, *spatial]`` with ``group.dim`` spatial axes.
    """
    turns = torch.randint(group.order, (len(images),), generator=torch.Generator().manual_seed(seed))
    rotated = images.clone()
    for g in range(1, group.order):
        rotated[turns == g] = act_on_grid(images[turns == g], group, g)
    return rotated


@torch.no_grad()
def predict_proba(model: nn.Module, images: Tensor, batch_size: int = 500) -> Tensor:
    """``[N, classes]`` softmax probabilities in eval mode."""
    model.eval()
    if len(images) == 0:
        return images.new_zeros(0, 0)
    return torch.cat([F.softmax(model(images[i:i + batch_size]), dim=1) for i in range(0, len(images), batch_size)])


def fit_image_classifier(
    model: nn.Module, images: Tensor, labels: Tensor, val_images: Tensor, val_labels: Tensor, *, epochs: int = 1,
    lr: float = 2e-3, batch_size: int = 64, seed: int = 0, progress: bool | None = None, desc: str = "train",
) -> dict[str, Any]:
    """Train ``model(x) -> [B, classes]`` with Adam (cosine decay to zero over all steps) and cross-entropy, by
    ``fivefold.train.fit`` over reshuffled mini-batches.

    After every epoch the validation accuracy is measured; the weights of the best epoch are restored at the end.

    Args:
        images: ``[N, C, *spatial]`` float; labels ``[N]`` int64; the same for the validation set.

    Returns:
        ``{"best_epoch", "val_acc", "history": [{"epoch", "step", "train_loss", "train_acc", "val_acc"}]}``.
    """
    if len(images) != len(labels) or len(val_images) != len(val_labels):
        raise ValueError("images and labels must have the same length")
    if len(images) == 0 or epochs < 1:
        raise ValueError("need at least one training image and one epoch")
    batches = ShuffledBatches(len(images), batch_size, seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)

    def loss(model: nn.Module, index: Tensor) -> tuple[Tensor, dict[str, float]]:
        logits = model(images[index])
        correct = int((logits.argmax(1) == labels[index]).sum())
        return F.cross_entropy(logits, labels[index]), {"count": len(index), "train_acc": correct}

    def validation(model: nn.Module) -> dict[str, float]:
        if not len(val_images):
            return {"val_acc": float("nan")}
        return {"val_acc": float((predict_proba(model, val_images).argmax(1) == val_labels).float().mean())}

    best = KeepBest.highest("val_acc")  # also takes the first epoch when there is no validation set (nan)
    history = fit(model, batches, loss=loss, optimiser=optimiser,
                  schedule=cosine_schedule(optimiser, epochs * len(batches)), epochs=epochs, metrics=validation,
                  callbacks=[best], progress=progress, desc=desc)
    return {"best_epoch": best.best_row["epoch"], "val_acc": best.best_row["val_acc"], "history": history}
