"""Temporal neighbour sampling: for queries ``(node, t)``, events of ``node`` strictly before ``t``.

A node's temporal neighbourhood is every event it took part in, as source or destination (the undirected view of
TGN and TGAT). The stream is indexed once into a per-node table sorted by time (CSR: a stable sort of the events by
node keeps each node's events in time order), so a query is a binary search for ``t`` in its node's times, which
finds exactly the events strictly earlier: never the query's own event or anything after it, whatever the batch.

- ``strategy="recent"``: the ``k`` most recent earlier events (TGN's default);
- ``strategy="uniform"``: ``k`` drawn uniformly with replacement among the earlier events (TGAT), sorted by time;
  the random numbers are a hash of the seed, the call and the query's position, so results do not depend on threads.

Why numba: a batch holds thousands of queries and each needs its own binary search and draw; numba runs them in
parallel without a Python loop. Why not appending events in place: a new event must land inside its nodes' rows,
which in CSR means moving everything after them; ``extend`` re-indexes in O(E) instead, which is what an online
model does between batches of many events (not yet incremental in the strict sense).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numba import njit, prange
from torch import Tensor

from fivefold.errors import OptionError, StreamError
from fivefold.ops.hashing import GOLDEN as _GOLDEN
from fivefold.ops.hashing import mix as _mix
from fivefold.temporal.stream import EventStream

__all__ = ["TemporalSampler"]

@njit(parallel=True, nogil=True, cache=True)
def _sample(indptr, neighbour, times, event, nodes, query_times, k, uniform, seed):  # pragma: no cover - compiled
    count = nodes.shape[0]
    out_nodes = np.zeros((count, k), dtype=np.int64)
    out_times = np.zeros((count, k), dtype=np.float64)
    out_events = np.full((count, k), -1, dtype=np.int64)
    mask = np.zeros((count, k), dtype=np.bool_)
    for q in prange(count):
        start, stop = indptr[nodes[q]], indptr[nodes[q] + 1]
        # first position in the row whose time is >= the query time: everything before is strictly earlier
        low, high = start, stop
        while low < high:
            middle = (low + high) // 2
            if times[middle] < query_times[q]:
                low = middle + 1
            else:
                high = middle
        earlier = low - start
        if earlier == 0:
            continue
        if not uniform:
            take = min(k, earlier)
            for j in range(take):
                position = low - take + j
                out_nodes[q, j] = neighbour[position]
                out_times[q, j] = times[position]
                out_events[q, j] = event[position]
                mask[q, j] = True
        else:
            state = _mix(np.uint64(seed) ^ _mix(np.uint64(q) + _GOLDEN))
            picks = np.empty(k, dtype=np.int64)
            for j in range(k):
                state = state + _GOLDEN
                u = (_mix(state) >> np.uint64(11)) * (1.0 / 9007199254740992.0)
                picks[j] = start + min(np.int64(u * earlier), earlier - 1)
            picks.sort()  # positions in time order
            for j in range(k):
                out_nodes[q, j] = neighbour[picks[j]]
                out_times[q, j] = times[picks[j]]
                out_events[q, j] = event[picks[j]]
                mask[q, j] = True
    return out_nodes, out_times, out_events, mask


class TemporalSampler:
    """Sample temporal neighbours from an ``EventStream`` (see the module docstring).

    Args:
        stream: the events to sample from (only those strictly before each query's time are ever returned).
        k: neighbours per query.
        strategy: ``"recent"`` or ``"uniform"``.
        seed: the uniform strategy's seed; the i-th call of ``sample`` uses ``(seed, i)``.
    """

    def __init__(self, stream: EventStream, k: int, *, strategy: str = "recent", seed: int = 0) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise OptionError(f"TemporalSampler: k must be a positive integer, got {k!r}")
        if strategy not in ("recent", "uniform"):
            raise OptionError(f"TemporalSampler: strategy must be 'recent' or 'uniform', got {strategy!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise OptionError(f"TemporalSampler: seed must be a non-negative integer, got {seed!r}")
        self.k, self.strategy, self.seed, self.calls = int(k), strategy, int(seed), 0
        self._index(stream)

    def _index(self, stream: EventStream) -> None:
        src, dst, t = stream.src.numpy(), stream.dst.numpy(), stream.t.numpy()
        events = np.arange(len(src), dtype=np.int64)
        twice = src != dst  # a self-loop is one event of its node, listed once
        node = np.concatenate([src, dst[twice]])
        event = np.concatenate([events, events[twice]])
        order = np.lexsort((event, node))  # by node, then by event (= time order)
        self.num_nodes = stream.num_nodes
        self.indptr = np.zeros(self.num_nodes + 1, dtype=np.int64)
        np.cumsum(np.bincount(node, minlength=self.num_nodes), out=self.indptr[1:])
        self.neighbour = np.concatenate([dst, src[twice]])[order]
        self.times = t[event[order]]
        self.event = event[order]
        self.stream = stream

    def extend(self, stream: EventStream) -> None:
        """Sample from ``stream`` from now on: the same events followed by new ones (re-indexed, O(E))."""
        old = self.stream
        if len(stream) < len(old) or not (torch.equal(stream.src[:len(old)], old.src)
                                          and torch.equal(stream.t[:len(old)], old.t)):
            raise StreamError("extend: the new stream must start with the events the sampler already holds")
        self._index(stream)

    def sample(self, nodes: Any, times: Any) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(neighbours [Q, k], event_times [Q, k], event_ids [Q, k], mask [Q, k])`` for queries ``nodes[q]`` at
        ``times[q]``: events of the node strictly before its time, in time order; ``mask`` marks real entries
        (padding: node 0, time 0, event -1)."""
        nodes = np.asarray(nodes.cpu() if isinstance(nodes, Tensor) else nodes)
        times = np.asarray(times.cpu() if isinstance(times, Tensor) else times, dtype=np.float64)
        if nodes.ndim != 1 or nodes.shape != times.shape:
            raise StreamError(f"sample: nodes and times must be 1-D of one length, got {nodes.shape}, {times.shape}")
        if nodes.size and (not np.issubdtype(nodes.dtype, np.integer) or nodes.min() < 0
                           or nodes.max() >= self.num_nodes):
            raise StreamError(f"sample: nodes must be integer ids in [0, {self.num_nodes})")
        if not np.all(np.isfinite(times)):
            raise StreamError("sample: query times must be finite")
        call, self.calls = self.calls, self.calls + 1
        seed = int(_mix(np.uint64(self.seed) + _GOLDEN + np.uint64(call)))
        out = _sample(self.indptr, self.neighbour, self.times, self.event, nodes.astype(np.int64), times, self.k,
                      self.strategy == "uniform", np.uint64(seed))
        return tuple(torch.from_numpy(array) for array in out)  # type: ignore[return-value]
