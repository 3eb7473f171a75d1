"""Temporal link prediction models: TGN, JODIE, TGAT and EdgeBank, behind one streaming interface.

Every model keeps the history of the events it has observed (a ``TemporalSampler`` grown incrementally, and the
events' features) and, for TGN and JODIE, a per-node ``Memory``. The interface:

- ``model(src, dst, t) -> logits [B]``: scores for the links ``src[b] -> dst[b]`` at times ``t[b]``, using only the
  events observed so far (``observe``), and of those only the ones strictly before ``t[b]``;
- ``model.observe(src, dst, t, features=None)``: the events happened; call after their batch was predicted (and,
  in training, after the optimiser step). Events must come in time order;
- ``model.record(src, dst, t, features=None)`` (optional, before scoring a batch): the events join the history that
  neighbour sampling reads, so a score at time ``t`` also sees the batch's own events strictly before ``t``, as the
  neighbour finders of the TGN and DyGLib reference code do; memories change only at the ``observe`` of the same
  events that follows. Without it a batch sees only the batches before it (torch_geometric's TGN example);
- ``model.insert_history(src, dst, t, features=None)``: events to read but not learn from join the history at their
  times (also before events held); no memory (nor EdgeBank's table) changes. For evaluation with every past event,
  as DyGLib's and TGN's full neighbour samplers do;
- ``model.reset()``: forget every event (memory, history), e.g. at the start of each training epoch;
- ``state_dict()`` carries the parameters *and* the streaming state (memory, history, event features), so a saved
  model resumes scoring where it stopped.

Papers: TGN, Rossi et al. 2020, "Temporal Graph Networks for Deep Learning on Dynamic Graphs"; JODIE, Kumar, Zhang &
Leskovec 2019, "Predicting Dynamic Embedding Trajectory in Temporal Interaction Networks"; TGAT, Xu et al. 2020,
"Inductive Representation Learning on Temporal Graphs"; EdgeBank, Poursafaei et al. 2022, "Towards Better Evaluation
for Dynamic Link Prediction".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fivefold.errors import OptionError, StreamError
from fivefold.ops import unique_ids
from fivefold.temporal.layers import EventFeatures, MergeLayer, TemporalAttention
from fivefold.temporal.memory import Memory
from fivefold.temporal.sampler import TemporalSampler
from fivefold.temporal.stream import EventStream

__all__ = ["EdgeBank", "JODIE", "TGAT", "TGN", "TemporalLinkModel"]


def _ids(values: Any, name: str) -> Tensor:
    ids = torch.as_tensor(values)
    if ids.dim() != 1 or (ids.numel() and (ids.is_floating_point() or ids.min() < 0)):
        raise StreamError(f"{name} must be a 1-D tensor of non-negative integer node ids")
    return ids.long()


def distinct_queries(nodes: Tensor, times: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The distinct ``(node, time)`` pairs among ``nodes [Q]``, ``times [Q]``: ``(nodes [D], times [D], inverse [Q])``
    with ``nodes[q] == distinct_nodes[inverse[q]]`` (each distinct query is then embedded once)."""
    distinct_times, time_rank = torch.unique(times, return_inverse=True)
    keys, inverse = torch.unique(nodes * len(distinct_times) + time_rank, return_inverse=True)
    return keys // len(distinct_times), distinct_times[keys % len(distinct_times)], inverse


def _times(values: Any, count: int) -> Tensor:
    times = torch.as_tensor(values, dtype=torch.float64)
    if times.shape != (count,) or not bool(torch.isfinite(times).all()):
        raise StreamError(f"t must be {count} finite times, one per event")
    return times


class TemporalLinkModel(nn.Module):
    """The streaming interface and the observed history shared by the models (see the module docstring). A model
    defines ``embed(nodes [Q], times [Q] float64) -> [Q, D]`` and ``decoder`` (a ``MergeLayer``), or overrides
    ``forward`` (EdgeBank).

    Args:
        num_nodes: node ids at the start (more arrive with events naming them).
        edge_dim: width of event features (0: the stream has none).
        neighbours: ``k`` temporal neighbours sampled per query.
        strategy: ``"recent"`` or ``"uniform"`` (see ``TemporalSampler``).
        seed: seed of the uniform strategy.
    """

    def __init__(self, num_nodes: int, edge_dim: int, neighbours: int, strategy: str, seed: int) -> None:
        super().__init__()
        for name, value in (("num_nodes", num_nodes), ("edge_dim", edge_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise OptionError(f"{type(self).__name__}: {name} must be a non-negative integer, got {value!r}")
        self.edge_dim = edge_dim
        self.history = TemporalSampler(EventStream([], [], [], num_nodes=num_nodes), neighbours, strategy=strategy,
                                       seed=seed)
        self.features = EventFeatures(edge_dim)
        # recorded events whose observe has not come yet: always the last events of the history
        self.pending: dict[str, Tensor] | None = None

    @property
    def num_nodes(self) -> int:
        """Node ids known so far (the start's, grown by observed events naming new ones)."""
        return self.history.num_nodes

    def forward(self, src: Any, dst: Any, t: Any) -> Tensor:
        src, dst = _ids(src, "src"), _ids(dst, "dst")
        if src.shape != dst.shape:
            raise StreamError(f"src and dst must have one entry per link, got {len(src)} and {len(dst)}")
        t = _times(t, len(src))
        # each distinct (node, time) query is embedded once (a link's source often recurs among its negatives)
        nodes, times, inverse = distinct_queries(torch.cat([src, dst]), torch.cat([t, t]))
        z = self.embed(nodes, times)
        # rows src[0], dst[0], src[1], dst[1], ...: viewed as [B, 2 * D], the pairs' [z_src || z_dst]
        pairs = z.index_select(0, inverse.view(2, len(src)).t().reshape(-1)).view(len(src), -1)
        return self.decoder.joined(pairs).squeeze(-1)

    @torch.no_grad()
    def record(self, src: Any, dst: Any, t: Any, features: Tensor | None = None) -> None:
        """Add a batch's events to the history before the batch is scored (see the module docstring); call
        ``observe`` with the same events after scoring. ``src [B]``, ``dst [B]``, ``t [B]``, ``features [B, F]``."""
        self._refuse_pending("record")
        src, dst, t = self._checked(src, dst, t)
        if len(src) == 0:
            return
        self._append(src, dst, t, features)
        self.pending = {"src": src, "dst": dst, "t": t}

    @torch.no_grad()
    def observe(self, src: Any, dst: Any, t: Any, features: Tensor | None = None) -> None:
        """The events ``src [B]``, ``dst [B]``, ``t [B]`` (``features [B, F]``) happened: they join the history (unless
        ``record`` added them, with its features) and update the memories (see the module docstring)."""
        src, dst, t = self._checked(src, dst, t)
        if self.pending is not None:
            pending = self.pending
            if not (torch.equal(src, pending["src"]) and torch.equal(dst, pending["dst"])
                    and torch.equal(t, pending["t"])):
                raise StreamError(f"observe: these events are not the {len(pending['src'])} recorded ones that wait "
                                  f"for their observe; observe those first")
            self.pending = None
            first = self.history.num_events - len(src)  # record appended them last; nothing came after
        elif len(src) == 0:
            return
        else:
            first = self._append(src, dst, t, features)
        self._observed(src, dst, t, torch.arange(first, first + len(src)))

    @torch.no_grad()
    def insert_history(self, src: Any, dst: Any, t: Any, features: Tensor | None = None) -> None:
        """Events that happened but that this model is not to learn from: they join the history (the sampled
        neighbours) at their times, also before events held, and no memory changes. For evaluation with every past
        event, including the training-period events of the nodes hidden from training, as DyGLib's and TGN's full
        neighbour samplers do (``fit_link_model(..., full_history=True)``). ``src [B]``, ``dst [B]``, ``t [B]``,
        ``features [B, F]``."""
        self._refuse_pending("insert_history")
        src, dst, t = self._checked(src, dst, t)
        if len(src) == 0:
            return
        self._append(src, dst, t, features, past=True)

    def _refuse_pending(self, caller: str) -> None:
        if self.pending is not None:
            raise StreamError(f"{caller}: {len(self.pending['src'])} recorded events wait for their observe; "
                              f"call observe with them first")

    @staticmethod
    def _checked(src: Any, dst: Any, t: Any) -> tuple[Tensor, Tensor, Tensor]:
        src, dst = _ids(src, "src"), _ids(dst, "dst")
        if src.shape != dst.shape:
            raise StreamError(f"src and dst must have one entry per event, got {len(src)} and {len(dst)}")
        return src, dst, _times(t, len(src))

    def _append(self, src: Tensor, dst: Tensor, t: Tensor, features: Tensor | None, *, past: bool = False) -> int:
        """Events into the history (``past``: inserted at their times, see ``TemporalSampler.insert``) and the
        feature table; returns the first one's id. Refused events (features of the wrong shape, times out of order)
        leave both as they were."""
        first, stored = self.history.num_events, self.features.count
        self.features.append(features, len(src))  # checks the shape before storing anything
        try:
            (self.history.insert if past else self.history.append)(src.numpy(), dst.numpy(), t.numpy())
        except StreamError:
            self.features.count = stored  # the rows past the count are unused
            raise
        return first

    def _observed(self, src: Tensor, dst: Tensor, t: Tensor, event_ids: Tensor) -> None:
        """What a model does with new events besides keeping their history (memory updates)."""

    def reset(self) -> None:
        self.history.reset()
        self.features.reset()
        self.pending = None

    def get_extra_state(self) -> dict[str, Any]:
        pending = None if self.pending is None else {key: value.clone() for key, value in self.pending.items()}
        return {"history": self.history.state_dict(), "features": self.features.state(), "pending": pending}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.history.load_state_dict(state["history"])
        self.features.load(state["features"])
        pending = state.get("pending")  # absent in checkpoints written before record existed
        self.pending = None if pending is None else {key: value.clone() for key, value in pending.items()}


class _MemoryModel(TemporalLinkModel):
    """TGN and JODIE: a ``Memory`` updated with each observed batch (after it was predicted)."""

    def __init__(self, num_nodes: int, edge_dim: int, memory_dim: int, time_dim: int, neighbours: int,
                 strategy: str, seed: int, cell: str) -> None:
        super().__init__(num_nodes, edge_dim, neighbours, strategy, seed)
        self.memory = Memory(num_nodes, memory_dim, edge_dim, time_dim, cell=cell)

    def _observed(self, src: Tensor, dst: Tensor, t: Tensor, event_ids: Tensor) -> None:
        self.memory.grow(self.history.num_nodes)
        self.memory.commit(unique_ids(torch.cat([src, dst]), self.memory.num_nodes)[0], self.features)
        self.memory.store(src, dst, t, event_ids)

    def _read(self, nodes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Memory (pending messages applied) of the distinct ids among ``nodes``: ``(states, last, inverse)``."""
        self.memory.grow(int(nodes.max()) + 1 if len(nodes) else 0)
        distinct, inverse = unique_ids(nodes, self.memory.num_nodes)
        state, last = self.memory.read(distinct, self.features)
        return state, last, inverse

    def reset(self) -> None:
        super().reset()
        self.memory.reset()


class TGN(_MemoryModel):
    """Temporal Graph Network (Rossi et al. 2020): GRU memory, one layer of temporal graph attention over the ``k``
    most recent earlier events, MLP link decoder. Defaults are the paper's (memory, time, embedding 100 wide,
    10 neighbours, 2 heads).

    ``z_i(t) = TemporalAttention(s_i, {s_j, e_ij, phi(t - t_j)})`` with ``s`` the memory after pending messages.
    """

    def __init__(self, num_nodes: int, edge_dim: int = 0, *, memory_dim: int = 100, time_dim: int = 100,
                 embedding_dim: int = 100, neighbours: int = 10, heads: int = 2, dropout: float = 0.1,
                 strategy: str = "recent", seed: int = 0) -> None:
        super().__init__(num_nodes, edge_dim, memory_dim, time_dim, neighbours, strategy, seed, "gru")
        self.attention = TemporalAttention(memory_dim, edge_dim, time_dim, embedding_dim, heads, dropout)
        self.decoder = MergeLayer(embedding_dim, embedding_dim, embedding_dim, 1)

    def embed(self, nodes: Tensor, times: Tensor) -> Tensor:
        neighbours, event_times, event_ids, mask = self.history.sample(nodes, times)
        count, k = neighbours.shape
        state, _, inverse = self._read(torch.cat([nodes, neighbours.flatten()]))
        dt = ((times.unsqueeze(1) - event_times) * mask).to(state.dtype)
        edge = self.features.gather(event_ids, state.dtype)
        return self.attention(state, inverse[:count], inverse[count:].view(count, k), edge, dt, mask)


class JODIE(_MemoryModel):
    """JODIE (Kumar et al. 2019) in the memory framework of TGN: an RNN memory and the time projection embedding
    ``z_i(t) = s_i * (1 + w (t - last_i) / time_scale)``, where ``time_scale`` normalises the time since the node's
    last update (e.g. the standard deviation of those gaps in the training events). ``dropout`` acts on the
    embedding ``z`` (0 by default; DyGLib, Yu et al. 2023, uses 0.1)."""

    def __init__(self, num_nodes: int, edge_dim: int = 0, *, memory_dim: int = 100, time_dim: int = 100,
                 time_scale: float = 1.0, dropout: float = 0.0, seed: int = 0) -> None:
        super().__init__(num_nodes, edge_dim, memory_dim, time_dim, 1, "recent", seed, "rnn")
        if not time_scale > 0:
            raise OptionError(f"JODIE: time_scale must be positive, got {time_scale!r}")
        if not 0.0 <= dropout < 1.0:
            raise OptionError(f"JODIE: dropout must be in [0, 1), got {dropout!r}")
        self.time_scale = float(time_scale)
        self.projection = nn.Linear(1, memory_dim)
        nn.init.normal_(self.projection.weight, 0.0, 1.0 / memory_dim ** 0.5)
        self.dropout = nn.Dropout(dropout)
        self.decoder = MergeLayer(memory_dim, memory_dim, memory_dim, 1)

    def embed(self, nodes: Tensor, times: Tensor) -> Tensor:
        """``nodes``, ``times``: ``[Q]``; returns ``[Q, memory_dim]``."""
        state, last, inverse = self._read(nodes)
        gap = ((times - last[inverse]) / self.time_scale).to(state.dtype).unsqueeze(1)
        return self.dropout(state[inverse] * (1 + self.projection(gap)))


class TGAT(TemporalLinkModel):
    """Temporal Graph Attention network (Xu et al. 2020): no memory; ``layers`` of temporal attention, each
    neighbour embedded recursively at the time of its event, neighbours drawn uniformly (the paper's choice).
    Streams without node features use zero node features of width ``embedding_dim`` (as benchmarks do), so the
    model sees only event features and times. ``residual=True``: the attention layers of TGAT's reference code and
    DyGLib (``TemporalAttention(residual=True)``: attention width ``node + time``, an output map, residual and
    LayerNorm, merged with the nodes' raw features)."""

    def __init__(self, num_nodes: int, edge_dim: int = 0, *, node_features: Tensor | None = None,
                 time_dim: int = 100, embedding_dim: int = 100, layers: int = 2, neighbours: int = 20,
                 heads: int = 2, dropout: float = 0.1, strategy: str = "uniform", residual: bool = False,
                 seed: int = 0) -> None:
        super().__init__(num_nodes, edge_dim, neighbours, strategy, seed)
        if node_features is not None and (node_features.dim() != 2 or len(node_features) < num_nodes):
            raise OptionError(f"TGAT: node_features must be [num_nodes={num_nodes}, F]")
        self.register_buffer("node_features", node_features if node_features is not None
                             else torch.zeros(0, embedding_dim))
        first = self.node_features.shape[1]
        self.residual = residual
        widths = [first if layer == 0 else embedding_dim for layer in range(layers)]
        self.layers = nn.ModuleList(
            TemporalAttention(width, edge_dim, time_dim, embedding_dim, heads, dropout,
                              attention_dim=width + time_dim if residual else None, residual=residual,
                              merge_dim=first if residual else None) for width in widths)
        self.decoder = MergeLayer(embedding_dim, embedding_dim, embedding_dim, 1)

    def _input(self, nodes: Tensor) -> Tensor:
        if len(self.node_features) == 0:
            return torch.zeros(len(nodes), self.node_features.shape[1], dtype=self.node_features.dtype)
        if len(nodes) and int(nodes.max()) >= len(self.node_features):
            raise StreamError(f"TGAT: node {int(nodes.max())} has no features (node_features has "
                              f"{len(self.node_features)} rows)")
        return self.node_features[nodes]

    def embed(self, nodes: Tensor, times: Tensor, depth: int | None = None) -> Tensor:
        depth = len(self.layers) if depth is None else depth
        if depth == 0:
            return self._input(nodes)
        neighbours, event_times, event_ids, mask = self.history.sample(nodes, times)
        count, k = neighbours.shape
        # the queries and their neighbours at their events' times, each distinct (node, time) embedded once
        inner_nodes, inner_times, inverse = distinct_queries(torch.cat([nodes, neighbours.flatten()]),
                                                             torch.cat([times, event_times.flatten()]))
        inner = self.embed(inner_nodes, inner_times, depth - 1)
        dt = ((times.unsqueeze(1) - event_times) * mask).to(inner.dtype)
        edge = self.features.gather(event_ids, inner.dtype)
        raw = self._input(nodes) if self.residual else None  # DyGLib merges with the raw features
        return self.layers[depth - 1](inner, inverse[:count], inverse[count:].view(count, k), edge, dt, mask, raw)


EDGEBANK_MEMORIES = ("unlimited", "window", "recent_fraction", "repeat_interval", "repeat_threshold")


class EdgeBank(TemporalLinkModel):
    """EdgeBank (Poursafaei et al. 2022): predicts a link iff the same (src, dst) pair is in its memory of observed
    links; no parameters. Scores are 1 or 0. Only links observed strictly before the query time count.

    The memory (``memory``; the last three are the modes of DyGLib, Yu et al. 2023, whose EdgeBank figures pick one
    per data set and negative sampler):

    - ``"unlimited"`` (EdgeBank_inf, the default): every pair observed;
    - ``"window"`` (EdgeBank_tw, the default when ``window`` is given): pairs observed within ``window`` time units
      before the query (the paper sets it to the test period's length);
    - ``"recent_fraction"``: pairs observed since the ``1 - fraction`` quantile of the observed events' times, i.e.
      in the latest ``fraction`` of the history by event count (DyGLib's ``fixed_proportion`` window; it uses the
      test share, 0.15);
    - ``"repeat_interval"``: pairs observed within the mean repeat interval before the latest observed event; a
      pair's repeat interval is the mean gap between its consecutive observations, taken as 0 for a pair seen once,
      and the mean runs over all pairs (DyGLib's ``repeat_interval`` window);
    - ``"repeat_threshold"``: pairs observed at least as often as the mean pair (DyGLib's repeat threshold).

    The last three compute their window or threshold from every observed event, so a batch must be scored before it
    is observed (as ``link_pass`` does), never after.

    Args:
        num_nodes: node ids at the start.
        memory: one of the modes above (default ``"window"`` if ``window`` is given, else ``"unlimited"``).
        window: the time span of ``"window"``.
        fraction: the history share of ``"recent_fraction"``, in (0, 1].
    """

    def __init__(self, num_nodes: int, *, memory: str | None = None, window: float | None = None,
                 fraction: float = 0.15) -> None:
        super().__init__(num_nodes, 0, 1, "recent", 0)
        if memory is None:
            memory = "unlimited" if window is None else "window"
        if memory not in EDGEBANK_MEMORIES:
            raise OptionError(f"EdgeBank: memory must be one of {EDGEBANK_MEMORIES}, got {memory!r}")
        if memory == "window" and (window is None or not window > 0):
            raise OptionError(f"EdgeBank: memory 'window' needs a positive window, got {window!r}")
        if memory != "window" and window is not None:
            raise OptionError(f"EdgeBank: window is read only by memory 'window', not {memory!r}")
        if memory == "recent_fraction" and not 0 < fraction <= 1:
            raise OptionError(f"EdgeBank: fraction must be in (0, 1], got {fraction!r}")
        self.memory, self.window, self.fraction = memory, window, fraction
        # per observed pair: [first time, last time, count]; and every observed event's time, in order
        self.pairs: dict[tuple[int, int], list[float]] = {}
        self.times: list[float] = []

    def forward(self, src: Any, dst: Any, t: Any) -> Tensor:
        src, dst = _ids(src, "src"), _ids(dst, "dst")
        if src.shape != dst.shape:
            raise StreamError(f"src and dst must have one entry per link, got {len(src)} and {len(dst)}")
        times = _times(t, len(src)).numpy()
        missing = [-np.inf, -np.inf, 0.0]
        rows = np.array([self.pairs.get(pair, missing) for pair in zip(src.tolist(), dst.tolist(), strict=True)],
                        dtype=np.float64).reshape(-1, 3)
        first, last, count = rows[:, 0], rows[:, 1], rows[:, 2]
        # seen strictly before the query (every observed time is at most the last observed one)
        hit = (count > 0) & (first < times)
        if self.memory == "window":
            hit &= last >= times - self.window
        elif self.memory in ("recent_fraction", "repeat_interval"):
            hit &= last >= self._window_start()
        elif self.memory == "repeat_threshold":
            hit &= count >= self._mean_count()
        return torch.from_numpy(hit.astype(np.float32))

    def _window_start(self) -> float:
        """Start of the ``recent_fraction`` or ``repeat_interval`` window over the observed history."""
        if not self.times:
            return np.inf
        if self.memory == "recent_fraction":
            return float(np.quantile(np.asarray(self.times), 1.0 - self.fraction))
        stats = np.array(list(self.pairs.values()), dtype=np.float64)
        repeated = stats[:, 2] > 1
        intervals = (stats[repeated, 1] - stats[repeated, 0]) / (stats[repeated, 2] - 1)
        return self.times[-1] - float(intervals.sum()) / len(stats)

    def _mean_count(self) -> float:
        """Threshold of ``repeat_threshold``: the mean number of observations per observed pair."""
        if not self.pairs:
            return np.inf
        return float(np.mean([stats[2] for stats in self.pairs.values()]))

    def _observed(self, src: Tensor, dst: Tensor, t: Tensor, event_ids: Tensor) -> None:
        times = t.tolist()
        self.times.extend(times)
        for pair, when in zip(zip(src.tolist(), dst.tolist(), strict=True), times, strict=True):
            stats = self.pairs.get(pair)
            if stats is None:
                self.pairs[pair] = [when, when, 1.0]
            else:
                stats[1] = when
                stats[2] += 1.0

    def reset(self) -> None:
        super().reset()
        self.pairs.clear()
        self.times.clear()

    def get_extra_state(self) -> dict[str, Any]:
        state = super().get_extra_state()
        pairs = np.array(list(self.pairs), dtype=np.int64).reshape(-1, 2)
        stats = np.array(list(self.pairs.values()), dtype=np.float64).reshape(-1, 3)
        state["bank"] = {"pairs": torch.from_numpy(pairs), "first": torch.from_numpy(stats[:, 0].copy()),
                         "times": torch.from_numpy(stats[:, 1].copy()), "count": torch.from_numpy(stats[:, 2].copy()),
                         "event_times": torch.tensor(self.times, dtype=torch.float64)}
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        super().set_extra_state(state)
        bank = state["bank"]
        pairs, last = bank["pairs"].tolist(), bank["times"].tolist()
        # checkpoints from before the memory modes kept only each pair's last time
        first = bank["first"].tolist() if "first" in bank else last
        count = bank["count"].tolist() if "count" in bank else [1.0] * len(pairs)
        self.pairs = {(a, b): [f, s, c] for (a, b), f, s, c in zip(pairs, first, last, count, strict=True)}
        self.times = bank["event_times"].tolist() if "event_times" in bank else sorted(last)
