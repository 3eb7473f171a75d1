"""The one training loop: ``fit(model, data, *, loss, optimiser, schedule, epochs | steps, metrics, callbacks)``.

Every training run of fivefold, the command line's and every script's in ``experiments/``, goes through ``fit``. One
step reads top to bottom: ``model.train()``, zero the gradients, ``loss(model, batch)``, backward, optimiser step,
schedule step. What differs between tasks is passed in:

- ``data``: an iterable of batches, iterated once per epoch (re-iterated for the next one). ``ShuffledBatches``
  (reshuffled index batches), ``RandomSubsets`` (independent random subsets, as in the GIN protocol) or a list
  such as ``[graph]`` (full-batch training) cover the library's tasks;
- ``loss(model, batch)``: the loss tensor, or ``(loss, stats)`` with additive statistics of the batch, such as
  ``{"count": len(batch), "train_acc": correct}``: the epoch's ``train_loss`` is then the mean weighted by
  ``count``, and every other statistic is its sum divided by the summed ``count``;
- ``metrics(model)``: a dict measured at every evaluation (each epoch's end, or every ``evaluate_every`` steps);
- ``callbacks``: objects with ``on_evaluation(row, model) -> bool`` (True stops training) and ``on_end(model)``,
  e.g. ``KeepBest`` (restore the weights of the best evaluation) and ``EarlyStopping``.

The progress bar turns itself off when standard error is not a terminal (log files get no carriage-return lines);
``progress=True`` / ``False`` forces it.

Example::

    >>> import torch
    >>> from torch import nn
    >>> from fivefold.train import ShuffledBatches, fit
    >>> x, y = torch.randn(64, 3), torch.randint(0, 2, (64,))
    >>> model = nn.Linear(3, 2)
    >>> history = fit(model, ShuffledBatches(64, 16, seed=0),
    ...               loss=lambda m, index: nn.functional.cross_entropy(m(x[index]), y[index]),
    ...               optimiser=torch.optim.Adam(model.parameters(), lr=0.01), epochs=2, progress=False)
    >>> [row["epoch"] for row in history], history[-1]["step"]
    ([1, 2], 8)
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from fivefold.errors import OptionError, check_option

__all__ = ["fit", "ShuffledBatches", "RandomSubsets", "KeepBest", "EarlyStopping", "PrintRows", "cosine_schedule"]

Metrics = Callable[[nn.Module], dict[str, float]]
Loss = Callable[[nn.Module, Any], "Tensor | tuple[Tensor, dict[str, float]]"]


class ShuffledBatches:
    """Index batches ``[B]`` (int64) of a data set of ``size`` items, reshuffled at every epoch with their own
    generator (seeded by ``seed``), so the order does not depend on anything else that draws random numbers.

    Args:
        size: items in the data set.
        batch_size: items per batch; the last batch of an epoch is smaller unless ``drop_last``.
        seed: the generator's seed.
        drop_last: skip the incomplete last batch of each epoch (a ``batch_size`` above ``size`` gives one batch of
            every item per epoch).
    """

    def __init__(self, size: int, batch_size: int, seed: int = 0, drop_last: bool = False) -> None:
        _positive(ShuffledBatches, size=size, batch_size=batch_size)
        self.size, self.batch_size, self.drop_last = size, batch_size, drop_last
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        if self.drop_last:
            return max(self.size // self.batch_size, 1)
        return math.ceil(self.size / self.batch_size)

    def __iter__(self) -> Iterator[Tensor]:
        batches = torch.randperm(self.size, generator=self.generator).split(self.batch_size)
        return iter(batches[:len(self)])


class RandomSubsets:
    """``per_epoch`` independent random subsets of ``min(batch_size, size)`` distinct items (numpy ``int64`` index
    arrays) per epoch, drawn with ``numpy.random.default_rng(seed)``: the mini-batches of Xu et al. (2019)."""

    def __init__(self, size: int, batch_size: int, per_epoch: int, seed: int = 0) -> None:
        _positive(RandomSubsets, size=size, batch_size=batch_size, per_epoch=per_epoch)
        self.size, self.batch_size, self.per_epoch = size, batch_size, per_epoch
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.per_epoch

    def __iter__(self) -> Iterator[np.ndarray]:
        for _ in range(self.per_epoch):
            yield self.rng.choice(self.size, size=min(self.batch_size, self.size), replace=False)


def cosine_schedule(optimiser: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate ``lr * (1 + cos(pi * step / total_steps)) / 2``: from ``lr`` down to 0 over the run."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: 0.5 * (1 + math.cos(math.pi * step / total_steps)))


class KeepBest:
    """Keep a copy of the weights at the best evaluation and load them back at the end.

    Args:
        better: ``(row, best_row) -> bool``, whether ``row`` beats the best so far; asked at every evaluation
            (``best_row`` is None at the first, which is always kept).

    Attributes:
        best_row: the chosen evaluation's row (its ``epoch`` / ``step`` say which).
    """

    def __init__(self, better: Callable[[dict, dict | None], bool]) -> None:
        self.better = better
        self.best_row: dict | None = None
        self._state: dict | None = None

    @classmethod
    def highest(cls, key: str) -> KeepBest:
        """The evaluation with the highest ``row[key]`` (the first of equals; a NaN first value is kept until a
        number comes)."""
        return cls(lambda row, best: best is None or not row[key] <= best[key])

    def on_evaluation(self, row: dict, model: nn.Module) -> bool:
        chosen = self.better(row, self.best_row)  # always asked: a rule may keep its own record
        if chosen or self.best_row is None:
            self.best_row, self._state = row, copy.deepcopy(model.state_dict())
        return False

    def on_end(self, model: nn.Module) -> None:
        if self._state is not None:
            model.load_state_dict(self._state)


class TimeBudget:
    """Stop training at the first evaluation after ``seconds`` have passed since this object was made.

    Args:
        seconds: the budget (None: never stop).
        clock: ``"wall"`` (``time.perf_counter``) or ``"cpu"`` (this process's CPU time, ``time.process_time``: the
            same budget buys the same work on a busy machine).
    """

    def __init__(self, seconds: float | None, clock: str = "wall") -> None:
        check_option(clock, ("wall", "cpu"), "clock", "TimeBudget")
        self.seconds, self.clock = seconds, clock
        self._read = time.perf_counter if clock == "wall" else time.process_time
        self._began = self._read()

    def spent(self) -> float:
        """Seconds on the chosen clock since the budget began."""
        return self._read() - self._began

    def on_evaluation(self, row: dict, model: nn.Module) -> bool:
        return self.seconds is not None and self.spent() >= self.seconds

    def on_end(self, model: nn.Module) -> None:
        pass


class EarlyStopping:
    """Stop after ``patience`` evaluations in a row without improvement, as judged by ``improved(row)`` (which may
    keep its own record of the best so far)."""

    def __init__(self, improved: Callable[[dict], bool], patience: int) -> None:
        _positive(EarlyStopping, patience=patience)
        self.improved, self.patience, self.since_best = improved, patience, 0

    def on_evaluation(self, row: dict, model: nn.Module) -> bool:
        self.since_best = 0 if self.improved(row) else self.since_best + 1
        return self.since_best >= self.patience

    def on_end(self, model: nn.Module) -> None:
        pass


class PrintRows:
    """Print each evaluation's row as one line (``epoch 3: train_loss 0.4121, val_acc 0.9730``), flushed at once:
    what a log file shows where no progress bar is drawn."""

    def __init__(self, keys: Sequence[str] | None = None, file: Any = None) -> None:
        self.keys, self.file = keys, file

    def on_evaluation(self, row: dict, model: nn.Module) -> bool:
        keys = self.keys or [key for key in row if key not in ("epoch", "step")]
        values = ", ".join(f"{key} {row[key]:.4f}" for key in keys if key in row)
        print(f"epoch {row['epoch']} (step {row['step']}): {values}", file=self.file or sys.stdout, flush=True)
        return False

    def on_end(self, model: nn.Module) -> None:
        pass


def _positive(where: Any, **values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise OptionError(f"{where.__name__}: {name} must be a positive integer, got {value!r}")


def _show_progress(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


def fit(
    model: nn.Module,
    data: Iterable,
    *,
    loss: Loss,
    optimiser: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
    schedule_every: str = "step",
    epochs: int | None = None,
    steps: int | None = None,
    metrics: Metrics | None = None,
    evaluate_every: int | None = None,
    callbacks: Sequence[Any] = (),
    progress: bool | None = None,
    desc: str = "train",
    rates: Callable[[Any], dict[str, float]] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` on ``data`` and return one row per evaluation.

    Args:
        model: the module; ``loss`` calls it.
        data: batches, re-iterated every epoch (see the module docstring).
        loss: ``(model, batch) -> loss`` or ``(loss, stats)``.
        optimiser: a torch optimiser over the model's parameters.
        schedule: a learning-rate scheduler, stepped after every optimiser step (``schedule_every="step"``) or at
            every epoch's end before its evaluation (``"epoch"``).
        epochs, steps: how long; exactly one of them. With ``steps``, epochs run until that many steps are done.
        metrics: ``model -> dict`` measured at every evaluation (without gradients).
        evaluate_every: evaluate every that many steps (and after the last step) instead of at every epoch's end.
        callbacks: objects with ``on_evaluation(row, model) -> bool`` (True: stop) and ``on_end(model)``.
        progress: show a progress bar; None (default): only when standard error is a terminal.
        desc: the progress bar's label.
        rates: ``batch -> {name: count}`` (e.g. ``{"edges": sampled edges}``): the progress bar shows each count per
            second of training, and every row has ``<name>_per_s`` over the steps since the previous row (time spent
            evaluating excluded).

    Returns:
        Rows ``{"epoch", "step", "train_loss", <train stats>, <metrics>}``: ``train_loss`` and the train statistics
        cover the batches since the previous row; with ``evaluate_every`` a row also has ``loss``, the last batch's.
    """
    if (epochs is None) == (steps is None):
        raise OptionError("fit: give exactly one of epochs and steps")
    given = {"epochs": epochs, "steps": steps, "evaluate_every": evaluate_every}
    _positive(fit, **{name: value for name, value in given.items() if value is not None})
    check_option(schedule_every, ("step", "epoch"), "schedule_every", "fit")
    total = steps if steps is not None else epochs * len(data) if hasattr(data, "__len__") else None
    bar = tqdm(total=total, desc=desc, disable=not _show_progress(progress), leave=False)
    history: list[dict[str, float]] = []
    step, epoch, stop = 0, 0, False
    sums: dict[str, float] = {}
    counted: dict[str, float] = {}  # rates: counts and training seconds since the last row, and in all
    total_counted: dict[str, float] = {}
    shown: dict[str, str] = {}

    def evaluate(extra: dict[str, float]) -> bool:
        count = sums.pop("count", 0.0)
        row: dict[str, float] = {"epoch": epoch, "step": step}
        if count:
            row["train_loss"] = sums.pop("loss") / count
            row.update({key: value / count for key, value in sums.items()})
        sums.clear()
        seconds = counted.pop("seconds", 0.0)
        row.update({f"{key}_per_s": value / seconds for key, value in counted.items() if seconds > 0})
        counted.clear()
        row.update(extra)
        if metrics is not None:
            with torch.no_grad():
                row.update(metrics(model))
        history.append(row)
        shown.update({key: f"{value:.3f}" for key, value in row.items()
                      if key not in ("epoch", "step") and not key.endswith("_per_s")})
        bar.set_postfix(shown, refresh=False)
        return any([callback.on_evaluation(row, model) for callback in callbacks])

    while not stop and (epochs is None or epoch < epochs):
        epoch += 1
        began = time.perf_counter()
        for batch in data:
            model.train()
            optimiser.zero_grad()
            output = loss(model, batch)
            value, stats = output if isinstance(output, tuple) else (output, {})
            value.backward()
            optimiser.step()
            if schedule is not None and schedule_every == "step":
                schedule.step()
            step += 1
            loss_value = float(value.detach())  # waits for the step's work on an accelerator
            if rates is not None:
                now = time.perf_counter()
                counted["seconds"] = counted.get("seconds", 0.0) + now - began
                total_counted["seconds"] = total_counted.get("seconds", 0.0) + now - began
                for key, amount in rates(batch).items():
                    counted[key] = counted.get(key, 0.0) + amount
                    total_counted[key] = total_counted.get(key, 0.0) + amount
                shown.update({f"{key}/s": f"{amount / total_counted['seconds']:,.0f}"
                              for key, amount in total_counted.items() if key != "seconds"})
                bar.set_postfix(shown, refresh=False)
            bar.update(1)
            count = stats.get("count", 1)
            sums["loss"] = sums.get("loss", 0.0) + loss_value * count
            for key, item in stats.items():
                sums[key] = sums.get(key, 0.0) + item
            sums.setdefault("count", 0.0)
            if "count" not in stats:
                sums["count"] += 1
            last = steps is not None and step == steps
            if evaluate_every is not None and (step % evaluate_every == 0 or last):
                stop = evaluate({"loss": float(value.detach())})
            elif last:  # a run of so many steps ends mid-epoch: evaluate there
                evaluate({})
            began = time.perf_counter()
            if stop or last:
                stop = True
                break
        else:
            if schedule is not None and schedule_every == "epoch":
                schedule.step()
            if evaluate_every is None:
                stop = evaluate({})
    if not stop and evaluate_every is not None and sums.get("count"):  # steps since the last row: one more row
        evaluate({"loss": float(value.detach())})
    bar.close()
    for callback in callbacks:
        callback.on_end(model)
    return history
