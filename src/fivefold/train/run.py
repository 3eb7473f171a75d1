"""Run folders: ``runs/<timestamp>-<task>/`` with ``config.json``, ``metrics.json``, a checkpoint and PNG plots."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["RunFolder"]


class RunFolder:
    """A fresh folder for one run. ``root`` defaults to ``runs`` in the current directory."""

    def __init__(self, task: str, root: str | os.PathLike = "runs") -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(root) / f"{stamp}-{task}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = Path(root) / f"{stamp}-{task}-{suffix}"
        path.mkdir(parents=True)
        self.path = path

    def write_json(self, name: str, payload: Any) -> Path:
        target = self.path / name
        target.write_text(json.dumps(payload, indent=2, sort_keys=True))
        return target

    def save_checkpoint(self, model: nn.Module, config: dict[str, Any]) -> Path:
        target = self.path / "checkpoint.pt"
        torch.save({"model_state": model.state_dict(), "config": config}, target)
        return target

    def plot_curves(self, history: list[dict[str, float]], name: str = "curves.png") -> Path:
        """Loss (left) and accuracy (right) per epoch, for every ``*_loss`` / ``*_acc`` key of ``history``."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        epochs = [row["epoch"] for row in history]
        fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
        for key in history[0]:
            values = [row[key] for row in history]
            if key.endswith("_loss"):
                ax_loss.plot(epochs, values, label=key)
            elif key.endswith("_acc"):
                ax_acc.plot(epochs, values, label=key)
        ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
        ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
        for ax in (ax_loss, ax_acc):
            ax.legend()
            ax.grid(alpha=0.3)
        fig.tight_layout()
        target = self.path / name
        fig.savefig(target, dpi=100)
        plt.close(fig)
        return target
