"""Building blocks of the temporal models: the time encoding of TGAT, temporal graph attention over a node's
sampled earlier events, the two-layer merge MLP that scores a pair, and the growing table of event features.

Shapes: ``Q`` queries (node, time), ``k`` sampled neighbours per query, ``D`` widths.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from fivefold.errors import StreamError
from fivefold.temporal._attention_kernels import neighbour_attention

__all__ = ["EventFeatures", "MergeLayer", "TemporalAttention", "TimeEncoder"]


class TimeEncoder(nn.Module):
    """``phi(dt) = cos(dt * w + b)`` (Xu et al. 2020, TGAT, "Bochner" time encoding), learnable ``w`` and ``b``.

    ``w`` starts at ``10 ** -linspace(0, 9, dim)``, so the encoding spans periods from seconds to decades (the
    initialisation of the TGN reference code). ``dt: [...]`` -> ``[..., dim]``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.frequency = nn.Parameter(torch.pow(10.0, -torch.linspace(0, 9, dim)))
        self.phase = nn.Parameter(torch.zeros(dim))

    def forward(self, dt: Tensor) -> Tensor:
        return torch.cos(dt.to(self.frequency.dtype).unsqueeze(-1) * self.frequency + self.phase)


class MergeLayer(nn.Module):
    """``fc2(relu(fc1([a || b])))``: TGN's and TGAT's merge of two vectors (their link decoder and the attention's
    output layer). ``a: [..., A]``, ``b: [..., B]`` -> ``[..., out]``."""

    def __init__(self, a: int, b: int, hidden: int, out: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(a + b, hidden)
        self.fc2 = nn.Linear(hidden, out)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        return self.joined(torch.cat([a, b], dim=-1))

    def joined(self, ab: Tensor) -> Tensor:
        """The same on ``[a || b]`` already side by side: ``ab [..., A + B]``."""
        return self.fc2(torch.relu(self.fc1(ab)))


class TemporalAttention(nn.Module):
    """Temporal graph attention (TGAT, Xu et al. 2020; TGN's embedding module, Rossi et al. 2020).

    The query is ``[h_i || phi(0)]``; keys and values are ``[h_j || e_ij || phi(t - t_j)]`` of the sampled earlier
    events; multi-head scaled dot-product attention over the ``k`` neighbours (padding masked), then
    ``MergeLayer([attention || h_i])``. A query with no earlier event gets attention output 0.

    With ``residual=True`` (the attention of TGAT's reference code and of DyGLib, Yu et al. 2023): the heads'
    output goes through a linear map (with bias) and dropout, is added to the query's input ``[h_i || phi(0)]`` and
    layer-normalised, and that (width ``node_dim + time_dim``) is merged with ``merge_input`` (DyGLib: the nodes' raw
    features) instead of ``h_i``: ``MergeLayer(LayerNorm(q_in + dropout(W_o a)), merge_input)``.

    Args: ``node_dim`` (width of ``h``), ``edge_dim``, ``time_dim``, ``out_dim``, ``heads`` (2 in both papers),
    ``dropout`` (on the attention weights, and with ``residual`` on the output map), ``attention_dim``: the queries',
    keys' and values' width over all heads (default ``out_dim``, as in torch_geometric's TGN; the TGN reference code
    and DyGLib use ``node_dim + time_dim``), ``residual`` (see above), ``merge_dim``: width of ``merge_input``
    (default ``node_dim``).

    Forward: ``h [U, node_dim]`` the node states, ``self_index [Q]`` and ``neighbour_index [Q, k]`` rows of ``h``,
    ``edge [Q, k, edge_dim]``, ``dt [Q, k]`` (query time minus event time), ``mask [Q, k]``, optional
    ``merge_input [Q, merge_dim]`` (default ``h[self_index]``) -> ``[Q, out_dim]``.

    How it is computed (the same function as ``reference``, in fewer operations): the key and value maps are linear
    in ``[h_j || e || phi]``, so their node part is applied once per row of ``h`` (``U`` rows, not ``Q * k``), and
    their time and feature parts never materialise per neighbour: a query's score against the time part is
    ``(W_t^T q) . phi(dt)``, and the value's time part is ``W_t`` applied to the attention-weighted sum of
    ``phi(dt)``. The per-neighbour remainder (dot products, softmax, weighted sums, and their gradients) runs in one
    fused numba kernel (``_attention_kernels``) instead of a dozen passes of torch ops over ``[Q, k, T]`` tensors.
    """

    def __init__(self, node_dim: int, edge_dim: int, time_dim: int, out_dim: int, heads: int = 2,
                 dropout: float = 0.1, attention_dim: int | None = None, *, residual: bool = False,
                 merge_dim: int | None = None) -> None:
        super().__init__()
        self.node_dim, self.edge_dim, self.time_dim = node_dim, edge_dim, time_dim
        query_dim = node_dim + time_dim
        key_dim = node_dim + edge_dim + time_dim
        self.heads = heads
        self.head_dim = math.ceil((attention_dim or out_dim) / heads)
        self.time = TimeEncoder(time_dim)
        self.query = nn.Linear(query_dim, heads * self.head_dim, bias=False)
        self.key = nn.Linear(key_dim, heads * self.head_dim, bias=False)
        self.value = nn.Linear(key_dim, heads * self.head_dim, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.residual = residual
        merge_dim = node_dim if merge_dim is None else merge_dim
        if residual:
            self.output = nn.Linear(heads * self.head_dim, query_dim)
            self.norm = nn.LayerNorm(query_dim)
            self.merge = MergeLayer(query_dim, merge_dim, out_dim, out_dim)
        else:
            self.merge = MergeLayer(heads * self.head_dim, merge_dim, out_dim, out_dim)

    def _merged(self, attended: Tensor, h_self: Tensor, merge_input: Tensor | None) -> Tensor:
        """The layer's output from the heads' ``attended [Q, H * dh]`` (see the class docstring)."""
        merge_input = h_self if merge_input is None else merge_input
        if not self.residual:
            return self.merge(attended, merge_input)
        query_input = torch.cat([h_self, torch.cos(self.time.phase).to(h_self.dtype).expand(len(h_self), -1)], 1)
        return self.merge(self.norm(query_input + self.dropout(self.output(attended))), merge_input)

    def _parts(self, weight: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """A key or value weight split by input: node ``[H*dh, node]``, edge ``[H, dh, edge]``, time
        ``[H, dh, time]``."""
        n, e = self.node_dim, self.edge_dim
        shape = (self.heads, self.head_dim, -1)
        return weight[:, :n], weight[:, n:n + e].reshape(shape), weight[:, n + e:].reshape(shape)

    def forward(self, h: Tensor, self_index: Tensor, neighbour_index: Tensor, edge: Tensor, dt: Tensor,
                mask: Tensor, merge_input: Tensor | None = None) -> Tensor:
        count, k = mask.shape
        heads, width = self.heads, self.head_dim
        h_self = h.index_select(0, self_index)
        query_weight = self.query.weight
        # the query's time part is phi(0) = cos(phase) for every query: a constant vector
        query = (h_self @ query_weight[:, :self.node_dim].t() + query_weight[:, self.node_dim:] @ torch.cos(
            self.time.phase)).view(count, heads, width)
        key_node, key_edge, key_time = self._parts(self.key.weight)
        value_node, value_edge, value_time = self._parts(self.value.weight)
        # node parts of keys and values once per row of h; the query moved into time and feature space
        keys = (h @ key_node.t()).view(-1, heads, width)
        values = (h @ value_node.t()).view(-1, heads, width)
        time_query = torch.bmm(query.transpose(0, 1), key_time).transpose(0, 1)  # [Q, H, T]
        edge_query = torch.bmm(query.transpose(0, 1), key_edge).transpose(0, 1)  # [Q, H, E]
        keep = None
        if self.training and self.dropout.p > 0:
            keep = torch.empty(count, k, heads, dtype=h.dtype).bernoulli_(1 - self.dropout.p) / (1 - self.dropout.p)
        attended, weighted_phi, weighted_edge = neighbour_attention(
            query, keys, values, time_query, edge_query, dt.to(h.dtype), self.time.frequency, self.time.phase,
            neighbour_index, mask, edge.to(h.dtype), keep, 1 / math.sqrt(width))
        # the time and feature parts of the values, applied to the attention-weighted sums
        attended = attended + torch.bmm(weighted_phi.transpose(0, 1), value_time.transpose(1, 2)).transpose(0, 1)
        if self.edge_dim:
            attended = attended + torch.bmm(weighted_edge.transpose(0, 1),
                                            value_edge.transpose(1, 2)).transpose(0, 1)
        return self._merged(attended.reshape(count, heads * width), h_self, merge_input)

    def reference(self, h: Tensor, self_index: Tensor, neighbour_index: Tensor, edge: Tensor, dt: Tensor,
                  mask: Tensor, merge_input: Tensor | None = None) -> Tensor:
        """The published rule written out directly (keys and values built per neighbour): the slow reference that
        ``forward`` is tested against."""
        count, k = mask.shape
        h_self, h_neighbours = h[self_index], h[neighbour_index]
        zero_time = self.time(torch.zeros(count, dtype=h.dtype, device=h.device))
        query = self.query(torch.cat([h_self, zero_time], dim=-1)).view(count, 1, self.heads, self.head_dim)
        keys_in = torch.cat([h_neighbours, edge, self.time(dt)], dim=-1)
        keys = self.key(keys_in).view(count, k, self.heads, self.head_dim)
        values = self.value(keys_in).view(count, k, self.heads, self.head_dim)
        scores = (query * keys).sum(-1) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(~mask.unsqueeze(-1), float("-inf"))
        anyone = mask.any(dim=1).view(count, 1, 1)
        weights = self.dropout(torch.softmax(scores.masked_fill(~anyone, 0.0), dim=1) * anyone)
        attended = (weights.unsqueeze(-1) * values).sum(1).reshape(count, self.heads * self.head_dim)
        merge_input = h_self if merge_input is None else merge_input
        if not self.residual:
            return self.merge(attended, merge_input)
        query_input = torch.cat([h_self, zero_time], dim=-1)
        return self.merge(self.norm(query_input + self.dropout(self.output(attended))), merge_input)


class EventFeatures:
    """The features of every event seen so far, by event id, in a table that doubles when full.
    ``dim == 0`` (streams without event features) stores nothing."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.count = 0
        self.table = torch.zeros(0, dim)

    def append(self, features: Tensor | None, count: int) -> None:
        if self.dim:
            if features is None or features.shape != (count, self.dim):
                raise StreamError(f"events need features of shape [{count}, {self.dim}]")
            if self.count == 0 and features.is_floating_point():
                self.table = self.table.to(features.dtype)  # the first features fix the stored precision
            if self.count + count > len(self.table):
                grown = torch.zeros(max(2 * len(self.table), self.count + count, 1024), self.dim,
                                    dtype=self.table.dtype)
                grown[:self.count] = self.table[:self.count]
                self.table = grown
            self.table[self.count:self.count + count] = features.to(self.table.dtype)
        self.count += count

    def gather(self, ids: Tensor, dtype: torch.dtype) -> Tensor:
        """``ids [...]`` (-1: padding, zeros) -> ``[..., dim]``."""
        if not self.dim or self.count == 0:
            return torch.zeros(*ids.shape, self.dim, dtype=dtype)
        return self.table[ids.clamp(min=0)].to(dtype) * (ids >= 0).unsqueeze(-1)

    def state(self) -> dict[str, Tensor | int]:
        return {"count": self.count, "table": self.table[:self.count].clone()}

    def load(self, state: dict) -> None:
        self.count = int(state["count"])
        self.table = state["table"].clone()

    def reset(self) -> None:
        self.count = 0
