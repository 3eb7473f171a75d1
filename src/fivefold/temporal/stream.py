"""``EventStream``: a continuous-time dynamic graph as a time-ordered list of interaction events.

An event ``e`` is ``(src[e], dst[e], t[e])`` with optional features ``features[e]`` and a label ``labels[e]`` (e.g.
JODIE Wikipedia's "user banned after this edit"). Streams are validated once, when made: node ids are non-negative
integers, times finite and non-decreasing; the first bad row is named.

``split`` makes the chronological train / validation / test split of Rossi et al. 2020 (TGN) and Xu et al. 2020
(TGAT): events up to the 70% time quantile train, the next 15% validate, the rest test; and the inductive ("new
node") evaluation sets: a seeded 10% of the nodes that appear in validation or test are hidden from training (their
training events removed), and the new-node sets are the validation / test events touching a node never seen in the
remaining training events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fivefold.errors import StreamError

__all__ = ["EventStream", "StreamSplit"]


def _column(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values.detach().cpu() if isinstance(values, Tensor) else values)
    if array.ndim != 1:
        raise StreamError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


class EventStream:
    """A time-ordered stream of events.

    Args:
        src, dst: ``[E]`` non-negative integer node ids.
        t: ``[E]`` finite, non-decreasing times (int or float).
        features: optional ``[E, D]`` event features.
        labels: optional ``[E]`` event labels.
        num_nodes: the number of nodes (default: the largest id + 1).

    Attributes are torch tensors: ``src``, ``dst`` (int64), ``t`` (float64), ``features``, ``labels``.
    """

    def __init__(self, src: Any, dst: Any, t: Any, *, features: Any = None, labels: Any = None,
                 num_nodes: int | None = None) -> None:
        src, dst, t = _column(src, "src"), _column(dst, "dst"), _column(t, "t")
        if not (len(src) == len(dst) == len(t)):
            raise StreamError(f"src, dst and t must have one entry per event, got {len(src)}, {len(dst)}, {len(t)}")
        for name, ids in (("src", src), ("dst", dst)):
            if ids.size and not np.issubdtype(ids.dtype, np.integer):
                if not np.issubdtype(ids.dtype, np.floating) or not np.all(np.isfinite(ids) & (ids == np.round(ids))):
                    bad = int(np.flatnonzero(~np.isfinite(ids) | (ids != np.round(ids)))[0]) if np.issubdtype(
                        ids.dtype, np.floating) else 0
                    raise StreamError(f"{name} must hold integer node ids: row {bad} holds {ids[bad]!r}")
            if ids.size and ids.min() < 0:
                raise StreamError(f"{name} must hold non-negative node ids: row {int(np.argmax(ids < 0))} holds "
                                  f"{ids[ids < 0][0]}")
        if t.size and not np.issubdtype(t.dtype, np.number):
            raise StreamError(f"t must hold numbers, got {t.dtype}")
        t = t.astype(np.float64)
        if not np.all(np.isfinite(t)):
            raise StreamError(f"t must be finite: row {int(np.flatnonzero(~np.isfinite(t))[0])} holds "
                              f"{t[~np.isfinite(t)][0]}")
        backwards = np.flatnonzero(np.diff(t) < 0)
        if backwards.size:
            row = int(backwards[0]) + 1
            raise StreamError(f"events must be sorted by time: row {row} (t={t[row]}) comes before row {row - 1} "
                              f"(t={t[row - 1]}); sort the stream by time first")
        largest = int(max(src.max(), dst.max())) + 1 if src.size else 0
        if num_nodes is None:
            num_nodes = largest
        elif num_nodes < largest:
            raise StreamError(f"num_nodes is {num_nodes} but the stream names node {largest - 1}")
        self.num_nodes = int(num_nodes)
        self.src = torch.from_numpy(src.astype(np.int64))
        self.dst = torch.from_numpy(dst.astype(np.int64))
        self.t = torch.from_numpy(t)
        self.features = None
        if features is not None:
            features = torch.as_tensor(np.asarray(features.detach().cpu() if isinstance(features, Tensor)
                                                  else features))
            if features.dim() != 2 or features.shape[0] != len(src):
                raise StreamError(f"features must be [E={len(src)}, D], got shape {tuple(features.shape)}")
            if features.is_floating_point() and not bool(torch.isfinite(features).all()):
                row = int((~torch.isfinite(features)).any(1).nonzero()[0])
                raise StreamError(f"features must be finite: row {row} is not")
            self.features = features
        self.labels = None
        if labels is not None:
            labels = _column(labels, "labels")
            if len(labels) != len(src):
                raise StreamError(f"labels must have one entry per event ({len(src)}), got {len(labels)}")
            self.labels = torch.from_numpy(labels.astype(np.int64))

    def __len__(self) -> int:
        return len(self.src)

    def __repr__(self) -> str:
        extra = "".join(f", {name}" for name in ("features", "labels") if getattr(self, name) is not None)
        return f"EventStream(events={len(self)}, num_nodes={self.num_nodes}{extra})"

    def split(self, val: float = 0.15, test: float = 0.15, *, new_node_fraction: float = 0.1,
              seed: int = 0) -> StreamSplit:
        """The chronological split and the inductive sets described in the module docstring."""
        if not (0 < val and 0 < test and val + test < 1):
            raise StreamError(f"split: val and test must be fractions > 0 summing to less than 1, got {val}, {test}")
        t = self.t.numpy()
        val_time, test_time = np.quantile(t, [1 - val - test, 1 - test])
        train = np.flatnonzero(t <= val_time)
        validation = np.flatnonzero((t > val_time) & (t <= test_time))
        testing = np.flatnonzero(t > test_time)
        src, dst = self.src.numpy(), self.dst.numpy()
        later = np.union1d(src[t > val_time], dst[t > val_time])
        rng = np.random.default_rng(seed)
        hidden = np.sort(rng.choice(later, int(new_node_fraction * len(later)), replace=False))
        touches_hidden = np.isin(src[train], hidden) | np.isin(dst[train], hidden)
        train = train[~touches_hidden]
        seen = np.union1d(src[train], dst[train])

        def new_node(events: np.ndarray) -> np.ndarray:
            return events[~np.isin(src[events], seen) | ~np.isin(dst[events], seen)]

        return StreamSplit(train, validation, testing, new_node(validation), new_node(testing), hidden,
                           float(val_time), float(test_time))


@dataclass(frozen=True)
class StreamSplit:
    """Event indices (sorted, into the stream) of each part: ``train`` (hidden nodes' events removed), ``val``,
    ``test``, and the inductive ``new_node_val`` / ``new_node_test`` (events touching a node not in ``train``);
    ``hidden_nodes`` and the two cut times."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    new_node_val: np.ndarray
    new_node_test: np.ndarray
    hidden_nodes: np.ndarray
    val_time: float
    test_time: float

    def sizes(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in ("train", "val", "test", "new_node_val", "new_node_test")}
