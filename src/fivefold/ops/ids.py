"""Distinct integer ids with the inverse map, without sorting when the id range is small.

``torch.unique(ids, return_inverse=True)`` sorts: O(n log n), and on a few thousand ids per step (a mini-batch's
nodes and their sampled neighbours) the sort is a visible share of a training step. When the ids lie below a bound
that is not much larger than their count, one pass marking the ids present in a dense table, one pass ranking the
table and one pass reading the ranks back give the same result in O(n + size). Beyond that bound (a large graph, a
small batch) the table would cost more than the sort, and ``unique_ids`` sorts.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit
from torch import Tensor

from fivefold.errors import OpsError

__all__ = ["unique_ids"]

DENSE_FACTOR = 32  # the dense table is used when size <= DENSE_FACTOR * len(ids)


@njit(cache=True)
def _dense_unique(ids, size):  # pragma: no cover - compiled
    rank = np.zeros(size, dtype=np.int64)  # 0: absent, else 1 + the id's position among the distinct ids
    for i in range(ids.shape[0]):
        rank[ids[i]] = 1
    count = 0
    for value in range(size):
        if rank[value]:
            count += 1
            rank[value] = count
    distinct = np.empty(count, dtype=np.int64)
    for value in range(size):
        if rank[value]:
            distinct[rank[value] - 1] = value
    inverse = np.empty(ids.shape[0], dtype=np.int64)
    for i in range(ids.shape[0]):
        inverse[i] = rank[ids[i]] - 1
    return distinct, inverse


def unique_ids(ids: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """The distinct values of ``ids [n]`` (integers in ``[0, size)``), ascending, and ``inverse [n]`` with
    ``ids == distinct[inverse]``: the result of ``torch.unique(ids, return_inverse=True)``.

    Raises ``OpsError`` if ``ids`` is not a 1-D integer tensor with values in ``[0, size)``.
    """
    if ids.dim() != 1 or ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise OpsError(f"unique_ids: ids must be a 1-D integer tensor, got {ids.dtype} of shape {list(ids.shape)}")
    if len(ids):
        low, high = (int(v) for v in torch.aminmax(ids))
        if low < 0 or high >= size:
            raise OpsError(f"unique_ids: ids must lie in [0, {size}), got values in [{low}, {high}]")
    if ids.device.type != "cpu" or size > DENSE_FACTOR * max(len(ids), 1):
        distinct, inverse = torch.unique(ids.long(), return_inverse=True)
        return distinct, inverse
    distinct, inverse = _dense_unique(ids.long().numpy(), size)
    return torch.from_numpy(distinct), torch.from_numpy(inverse)
