"""Mini-batch training of an image or volume classifier (G-CNNs and their plain CNN twins)."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from fivefold.groups import FiniteGroup, act_on_grid

__all__ = ["fit_image_classifier", "predict_proba", "rotate_test_set"]


@torch.no_grad()
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


def predict_proba(model: nn.Module, images: Tensor, batch_size: int = 500) -> Tensor:
    """``[N, classes]`` softmax probabilities in eval mode."""
    model.eval()
    if len(images) == 0:
        return images.new_zeros(0, 0)
    return torch.cat([F.softmax(model(images[i:i + batch_size]), dim=1) for i in range(0, len(images), batch_size)])


def fit_image_classifier(
    model: nn.Module, images: Tensor, labels: Tensor, val_images: Tensor, val_labels: Tensor, *, epochs: int = 1,
    lr: float = 2e-3, batch_size: int = 64, seed: int = 0, progress: bool = True, desc: str = "train",
) -> dict[str, Any]:
    """Train ``model(x) -> [B, classes]`` with Adam (cosine decay to zero over all steps) and cross-entropy.

    After every epoch the validation accuracy is measured; the weights of the best epoch are restored at the end.

    Args:
        images: ``[N, C, *spatial]`` float; labels ``[N]`` int64; the same for the validation set.

    Returns:
        ``{"best_epoch", "val_acc", "history": [{"epoch", "train_loss", "train_acc", "val_acc"}]}``.
    """
    if len(images) != len(labels) or len(val_images) != len(val_labels):
        raise ValueError("images and labels must have the same length")
    if len(images) == 0 or epochs < 1:
        raise ValueError("need at least one training image and one epoch")
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(len(images) / batch_size)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    total = epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)))
    history, best_acc, best_state, best_epoch = [], -1.0, None, 0
    bar = tqdm(total=total, desc=desc, disable=not progress, leave=False)
    for epoch in range(1, epochs + 1):
        model.train()
        loss_sum, correct = 0.0, 0
        for index in torch.randperm(len(images), generator=generator).split(batch_size):
            logits = model(images[index])
            loss = F.cross_entropy(logits, labels[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            loss_sum += float(loss.detach()) * len(index)
            correct += int((logits.argmax(1) == labels[index]).sum())
            bar.update(1)
        val_acc = float((predict_proba(model, val_images).argmax(1) == val_labels).float().mean()) \
            if len(val_images) else float("nan")
        history.append({"epoch": epoch, "train_loss": loss_sum / len(images), "train_acc": correct / len(images),
                        "val_acc": val_acc})
        bar.set_postfix(loss=f"{loss_sum / len(images):.3f}", val=f"{val_acc:.3f}")
        if not val_acc <= best_acc:  # also takes the first epoch when there is no validation set (nan)
            best_acc, best_state, best_epoch = val_acc, copy.deepcopy(model.state_dict()), epoch
    bar.close()
    model.load_state_dict(best_state)
    return {"best_epoch": best_epoch, "val_acc": best_acc, "history": history}
