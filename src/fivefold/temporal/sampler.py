"""Temporal neighbour sampling: for queries ``(node, t)``, events of ``node`` strictly before ``t``.

A node's temporal neighbourhood is every event it took part in, as source or destination (the undirected view of
TGN and TGAT). Each node keeps its events in a row of a shared pool, in time order (events arrive in time order, so
appending keeps rows sorted); a query is a binary search for ``t`` in its node's row, which finds exactly the events
strictly earlier: never the query's own event or anything after it, whatever the batch.

- ``strategy="recent"``: the ``k`` most recent earlier events (TGN's default);
- ``strategy="uniform"``: ``k`` drawn uniformly with replacement among the earlier events (TGAT), sorted by time;
  the random numbers are a hash of the seed, the call number and the query (node and time), so results depend on
  neither threads nor the other queries of the call.

Incremental: ``append`` adds events at the end of their nodes' rows in amortised O(1) each. A full row moves to the
end of the pool with twice the room (a dynamic array per node, sharing one pool), so nothing is rebuilt; the pool
itself doubles when full. Moved rows leave holes: the pool holds at most about four times the events' two endpoints.
``insert`` adds events at earlier times too (evaluation with every past event, DyGLib's full sampler): it rebuilds
the pool once, each row in time order.

Why numba: a batch holds thousands of queries and each needs its own binary search and draw; numba runs them
without a Python loop. Serially: a query costs well under a microsecond, so threads would cost more to start than
they save (and spin when the machine is busy).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numba import njit
from torch import Tensor

from fivefold.errors import OptionError, StreamError
from fivefold.ops.hashing import GOLDEN as _GOLDEN
from fivefold.ops.hashing import mix as _mix
from fivefold.temporal.stream import EventStream

__all__ = ["TemporalSampler"]

_STATE = ("start", "length", "capacity", "neighbour", "times", "event")


@njit(nogil=True, cache=True)
def _append(start, length, capacity, neighbour, times, event, used, src, dst, t, first_event, offset):
    """Append events ``offset..`` of the batch; stop when the pool is full. Returns ``(next offset, used)``."""
    pool = neighbour.shape[0]
    for e in range(offset, src.shape[0]):
        ends = 1 if src[e] == dst[e] else 2  # a self-loop is one event of its node, listed once
        # room for both endpoints first, so an event is appended whole or not at all
        need = 0
        for side in range(ends):
            node = src[e] if side == 0 else dst[e]
            if length[node] == capacity[node]:
                need += max(4, 2 * capacity[node])
        if used + need > pool:
            return e, used
        for side in range(ends):
            node = src[e] if side == 0 else dst[e]
            other = dst[e] if side == 0 else src[e]
            if length[node] == capacity[node]:
                grown = max(4, 2 * capacity[node])
                for j in range(length[node]):
                    neighbour[used + j] = neighbour[start[node] + j]
                    times[used + j] = times[start[node] + j]
                    event[used + j] = event[start[node] + j]
                start[node] = used
                capacity[node] = grown
                used += grown
            position = start[node] + length[node]
            neighbour[position] = other
            times[position] = t[e]
            event[position] = first_event + e
            length[node] += 1
    return src.shape[0], used


@njit(nogil=True, cache=True)
def _sample(start, length, neighbour, times, event, nodes, query_times, k, uniform, seed):  # pragma: no cover
    count = nodes.shape[0]
    out_nodes = np.zeros((count, k), dtype=np.int64)
    out_times = np.zeros((count, k), dtype=np.float64)
    out_events = np.full((count, k), -1, dtype=np.int64)
    mask = np.zeros((count, k), dtype=np.bool_)
    for q in range(count):
        if nodes[q] >= start.shape[0]:
            continue  # a node with no events yet
        first = start[nodes[q]]
        # first position in the row whose time is >= the query time: everything before is strictly earlier
        low, high = first, first + length[nodes[q]]
        while low < high:
            middle = (low + high) // 2
            if times[middle] < query_times[q]:
                low = middle + 1
            else:
                high = middle
        earlier = low - first
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
            # the draws are a hash of the call's seed and the query itself (node, time), not of its position, so a
            # query samples the same neighbours whatever other queries share its call
            time_bits = np.uint64(np.int64(query_times[q] * 1024.0)) if abs(query_times[q]) < 4e15 else np.uint64(0)
            state = _mix(np.uint64(seed) ^ _mix(np.uint64(nodes[q]) + _GOLDEN) ^ _mix(time_bits))
            picks = np.empty(k, dtype=np.int64)
            for j in range(k):
                state = state + _GOLDEN
                u = (_mix(state) >> np.uint64(11)) * (1.0 / 9007199254740992.0)
                picks[j] = first + min(np.int64(u * earlier), earlier - 1)
            picks.sort()  # positions in time order
            for j in range(k):
                out_nodes[q, j] = neighbour[picks[j]]
                out_times[q, j] = times[picks[j]]
                out_events[q, j] = event[picks[j]]
                mask[q, j] = True
    return out_nodes, out_times, out_events, mask


def _as_array(values: Any, dtype: Any = None) -> np.ndarray:
    return np.asarray(values.detach().cpu() if isinstance(values, Tensor) else values, dtype=dtype)


class TemporalSampler:
    """Sample temporal neighbours from an ``EventStream`` (see the module docstring).

    Args:
        stream: the events to sample from (only those strictly before each query's time are ever returned); may be
            empty (``EventStream([], [], [], num_nodes=N)``) and grown with ``append``.
        k: neighbours per query.
        strategy: ``"recent"`` or ``"uniform"``.
        seed: the uniform strategy's seed; the i-th call of ``sample`` uses ``(seed, i)``.

    Event ids are positions in the stream: the sampler's events are numbered ``0 .. num_events - 1`` in the order
    they were given.
    """

    def __init__(self, stream: EventStream, k: int, *, strategy: str = "recent", seed: int = 0) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise OptionError(f"TemporalSampler: k must be a positive integer, got {k!r}")
        if strategy not in ("recent", "uniform"):
            raise OptionError(f"TemporalSampler: strategy must be 'recent' or 'uniform', got {strategy!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise OptionError(f"TemporalSampler: seed must be a non-negative integer, got {seed!r}")
        self.k, self.strategy, self.seed, self.calls = int(k), strategy, int(seed), 0
        self.num_events, self.last_time, self.used = 0, -np.inf, 0
        self._grow_nodes(stream.num_nodes)
        self._grow_pool(max(64, 4 * len(stream)))
        self._src_prefix = np.zeros(0, dtype=np.int64)
        self._inserted = False
        self.append(stream.src, stream.dst, stream.t)

    @property
    def num_nodes(self) -> int:
        return len(self.start)

    def _grow_nodes(self, count: int) -> None:
        old = len(getattr(self, "start", ()))
        if count <= old:
            return
        for name in ("start", "length", "capacity"):
            grown = np.zeros(count, dtype=np.int64)
            if old:
                grown[:old] = getattr(self, name)
            setattr(self, name, grown)

    def _grow_pool(self, size: int) -> None:
        for name, dtype in (("neighbour", np.int64), ("times", np.float64), ("event", np.int64)):
            grown = np.zeros(size, dtype=dtype)
            if self.used:
                grown[:self.used] = getattr(self, name)[:self.used]
            setattr(self, name, grown)

    def append(self, src: Any, dst: Any, t: Any) -> None:
        """Add events (in time order, none earlier than the last one held); their ids continue the numbering.
        Node ids past ``num_nodes`` are new nodes."""
        if isinstance(src, EventStream):
            raise StreamError("append takes src, dst and t; to add a stream's tail use extend(stream)")
        batch = EventStream(_as_array(src), _as_array(dst), _as_array(t))  # validates ids and time order
        if not len(batch):
            return
        if batch.t[0].item() < self.last_time:
            raise StreamError(f"append: event at t={batch.t[0].item()} is earlier than the last event held "
                              f"(t={self.last_time}); events must arrive in time order")
        self._grow_nodes(batch.num_nodes)
        src_, dst_, t_ = batch.src.numpy(), batch.dst.numpy(), batch.t.numpy()
        offset = 0
        while offset < len(src_):
            offset, self.used = _append(self.start, self.length, self.capacity, self.neighbour, self.times,
                                        self.event, self.used, src_, dst_, t_, self.num_events, offset)
            if offset < len(src_):
                self._grow_pool(2 * len(self.neighbour) + 8)
        self.num_events += len(src_)
        self.last_time = float(t_[-1])
        self._src_prefix = np.concatenate([self._src_prefix, src_[:max(0, 64 - len(self._src_prefix))]])

    def insert(self, src: Any, dst: Any, t: Any) -> None:
        """Add events at any times, also earlier than events held (e.g. the training-period events of nodes that
        training never saw, before evaluating with every event of the past, as DyGLib's and TGN's full neighbour
        samplers do). Each node's row is rebuilt in time order (an event inserted at the time of one held keeps
        after it); their ids continue the numbering, so ids no longer follow time order and ``extend`` is refused
        from now on. Costs a rebuild of the pool, O(E log E): for occasional use, not per batch."""
        batch_src, batch_dst = _as_array(src), _as_array(dst)
        batch_t = _as_array(t, np.float64)
        if not (batch_src.ndim == batch_dst.ndim == batch_t.ndim == 1
                and len(batch_src) == len(batch_dst) == len(batch_t)):
            raise StreamError(f"insert: src, dst and t must be 1-D of one length, got {batch_src.shape}, "
                              f"{batch_dst.shape}, {batch_t.shape}")
        if not len(batch_t):
            return
        order = np.argsort(batch_t, kind="stable")  # validated as a stream: ids and finite times
        batch = EventStream(batch_src[order], batch_dst[order], batch_t[order])
        self._grow_nodes(batch.num_nodes)
        # every held entry of every row, then the new events' entries (one per endpoint; a self-loop once)
        held_node = np.repeat(np.arange(self.num_nodes), self.length)
        within = np.arange(len(held_node)) - np.repeat(np.cumsum(self.length) - self.length, self.length)
        position = self.start[held_node] + within
        given = np.argsort(order)  # back to the given order, which numbers the ids
        new_src, new_dst, new_t = batch.src.numpy()[given], batch.dst.numpy()[given], batch.t.numpy()[given]
        ids = self.num_events + np.arange(len(new_src))
        loop = new_src == new_dst
        node = np.concatenate([held_node, new_src, new_dst[~loop]])
        other = np.concatenate([self.neighbour[position], new_dst, new_src[~loop]])
        times = np.concatenate([self.times[position], new_t, new_t[~loop]])
        event = np.concatenate([self.event[position], ids, ids[~loop]])
        rank = np.lexsort((times, node))  # stable: held entries stay before new ones at equal times
        length = np.bincount(node, minlength=self.num_nodes).astype(np.int64)
        capacity = np.where(length > 0, np.maximum(4, 2 * length), 0).astype(np.int64)
        start = np.cumsum(capacity) - capacity
        used = int(capacity.sum())
        slot = start[node[rank]] + (np.arange(len(rank)) - np.repeat(np.cumsum(length) - length, length))
        self.used = 0
        self._grow_pool(max(64, 2 * used))
        self.neighbour[slot], self.times[slot], self.event[slot] = other[rank], times[rank], event[rank]
        self.start, self.length, self.capacity, self.used = start, length, capacity, used
        self.num_events += len(new_src)
        self.last_time = max(self.last_time, float(new_t.max()))
        self._inserted = True

    def extend(self, stream: EventStream) -> None:
        """Sample from ``stream`` from now on: the events already held followed by new ones (only the new ones are
        appended). That ``stream`` starts with the held events is checked on their first 64 sources and the last
        held time, not event by event."""
        if self._inserted:
            raise StreamError("extend: events were inserted out of stream order (insert), so the held events no longer "
                              "match a stream's prefix; use append")
        held = self.num_events
        if len(stream) < held or not np.array_equal(stream.src.numpy()[:len(self._src_prefix)], self._src_prefix) \
                or (held and stream.t[held - 1].item() != self.last_time):
            raise StreamError("extend: the new stream must start with the events the sampler already holds")
        self.append(stream.src[held:], stream.dst[held:], stream.t[held:])

    def sample(self, nodes: Any, times: Any) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(neighbours [Q, k], event_times [Q, k], event_ids [Q, k], mask [Q, k])`` for queries ``nodes[q]`` at
        ``times[q]``: events of the node strictly before its time, in time order; ``mask`` marks real entries
        (padding: node 0, time 0, event -1)."""
        nodes = _as_array(nodes)
        times = _as_array(times, np.float64)
        if nodes.ndim != 1 or nodes.shape != times.shape:
            raise StreamError(f"sample: nodes and times must be 1-D of one length, got {nodes.shape}, {times.shape}")
        if nodes.size and (not np.issubdtype(nodes.dtype, np.integer) or nodes.min() < 0):
            raise StreamError("sample: nodes must be non-negative integer ids")
        if not np.all(np.isfinite(times)):
            raise StreamError("sample: query times must be finite")
        call, self.calls = self.calls, self.calls + 1
        seed = int(_mix(np.uint64(self.seed) + _GOLDEN + np.uint64(call)))
        out = _sample(self.start, self.length, self.neighbour, self.times, self.event, nodes.astype(np.int64),
                      times, self.k, self.strategy == "uniform", np.uint64(seed))
        return tuple(torch.from_numpy(array) for array in out)  # type: ignore[return-value]

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue sampling (for checkpoints): the rows, the pool in use and the counters."""
        state = {name: torch.from_numpy(getattr(self, name).copy()) for name in _STATE[:3]}
        state.update({name: torch.from_numpy(getattr(self, name)[:self.used].copy()) for name in _STATE[3:]})
        state.update(num_events=self.num_events, last_time=self.last_time, calls=self.calls,
                     src_prefix=torch.from_numpy(self._src_prefix.copy()), inserted=self._inserted)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in _STATE:
            setattr(self, name, state[name].numpy().copy())
        self.used = len(self.neighbour)
        self._grow_pool(max(64, 2 * self.used))
        self.num_events, self.last_time, self.calls = int(state["num_events"]), float(state["last_time"]), \
            int(state["calls"])
        self._src_prefix = state["src_prefix"].numpy().copy()
        self._inserted = bool(state.get("inserted", False))  # absent in checkpoints written before insert existed

    def reset(self) -> None:
        """Forget every event (the node count is kept)."""
        for name in _STATE[:3]:
            getattr(self, name)[:] = 0
        self.used, self.num_events, self.last_time, self.calls = 0, 0, -np.inf, 0
        self._src_prefix = np.zeros(0, dtype=np.int64)
        self._inserted = False
