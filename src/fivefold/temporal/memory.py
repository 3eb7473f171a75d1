"""Per-node memory of TGN (Rossi et al. 2020) and JODIE (Kumar et al. 2019): a state vector per node, updated by a
recurrent cell from messages of the events the node took part in.

The update rule (TGN's "last" message aggregator, identity message function):

- an event ``(i, j, t, e)`` leaves node ``i`` the raw message ``(j, t, e)`` (and ``j`` the message ``(i, t, e)``);
  of several events of a node in one batch only the last one is kept;
- the message is turned into the vector ``m = [s_i || s_j || phi(t - last_i) || e]`` (``phi`` the time encoding,
  ``last_i`` the time of ``i``'s last applied message, ``s`` the stored states) and applied as
  ``s_i <- cell(m, s_i)``, ``last_i <- t``, when ``i`` is next read.

A batch is predicted before its own events are stored (``Memory.store`` runs after the batch's loss), so no memory
a prediction reads has seen that prediction's event or anything later: this is the training procedure of the TGN
paper, in which a batch's messages reach the memory through the recurrent cell when the *next* batch is predicted,
and that is how the cell and the time encoding get their gradients. ``read`` applies pending messages with
gradients and does not change the stored state; ``commit`` stores them (without gradients): the states the last
``read`` computed when it covered the committed nodes (as in the TGN reference code and torch_geometric, where the
stored states are those computed before the optimiser's step), else applied anew.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fivefold.errors import OptionError
from fivefold.temporal.layers import EventFeatures, TimeEncoder

__all__ = ["Memory"]


class _PartialLinear(torch.autograd.Function):
    """``cat(parts) @ weight.T + bias``, whose backward computes the gradient of only the parts that require one
    (the weight's gradient is one product with the concatenated input)."""

    @staticmethod
    def forward(ctx, weight: Tensor, bias: Tensor, *parts: Tensor) -> Tensor:
        joined = torch.cat(parts, dim=1)
        ctx.save_for_backward(weight, joined)
        ctx.widths = [part.shape[1] for part in parts]
        return torch.addmm(bias, joined, weight.t())

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        weight, joined = ctx.saved_tensors
        grads: list[Tensor | None] = [grad.t() @ joined if ctx.needs_input_grad[0] else None,
                                      grad.sum(0) if ctx.needs_input_grad[1] else None]
        start = 0
        for index, width in enumerate(ctx.widths):
            needed = ctx.needs_input_grad[2 + index]
            grads.append(grad @ weight[:, start:start + width] if needed else None)
            start += width
        return tuple(grads)


class Memory(nn.Module):
    """Node memory with pending last messages.

    Args:
        num_nodes: nodes at the start (grown when events name new ones).
        memory_dim: width of a node's state.
        edge_dim: width of event features (0: none).
        time_dim: width of the time encoding in messages.
        cell: ``"gru"`` (TGN) or ``"rnn"`` (JODIE).

    Buffers (saved with the model): ``state [N, memory_dim]``, ``last_update [N]`` (float64), and the pending
    message per node: ``pending_other [N]`` (-1: none), ``pending_time [N]``, ``pending_event [N]``.
    """

    def __init__(self, num_nodes: int, memory_dim: int, edge_dim: int, time_dim: int, cell: str = "gru") -> None:
        super().__init__()
        if cell not in ("gru", "rnn"):
            raise OptionError(f"Memory: cell must be 'gru' or 'rnn', got {cell!r}")
        self.memory_dim = memory_dim
        self.time = TimeEncoder(time_dim)
        message_dim = 2 * memory_dim + time_dim + edge_dim
        self.cell = nn.GRUCell(message_dim, memory_dim) if cell == "gru" else nn.RNNCell(message_dim, memory_dim)
        self.register_buffer("state", torch.zeros(num_nodes, memory_dim))
        self.register_buffer("last_update", torch.zeros(num_nodes, dtype=torch.float64))
        self.register_buffer("pending_other", torch.full((num_nodes,), -1, dtype=torch.long))
        self.register_buffer("pending_time", torch.zeros(num_nodes, dtype=torch.float64))
        self.register_buffer("pending_event", torch.full((num_nodes,), -1, dtype=torch.long))
        self._applied: tuple[Tensor, Tensor, Tensor] | None = None  # the last read's applied states (``commit``)

    def _apply(self, fn, recurse=True):  # type: ignore[no-untyped-def]
        """``to(dtype)`` casts the states but keeps the times in float64 (float32 would round seconds-resolution
        timestamps of long streams); device moves apply to all."""
        times = {name: getattr(self, name) for name in ("last_update", "pending_time")}
        self._forget()
        super()._apply(fn, recurse)
        for name, value in times.items():
            setattr(self, name, value.to(self.state.device))
        return self

    @property
    def num_nodes(self) -> int:
        return len(self.state)

    def grow(self, num_nodes: int) -> None:
        """Make room for node ids below ``num_nodes`` (new nodes start with a zero state and no message)."""
        extra = num_nodes - self.num_nodes
        if extra <= 0:
            return
        self._forget()
        for name, fill in (("state", 0), ("last_update", 0), ("pending_other", -1), ("pending_time", 0),
                           ("pending_event", -1)):
            old = getattr(self, name)
            setattr(self, name, torch.cat([old, torch.full((extra, *old.shape[1:]), fill, dtype=old.dtype,
                                                           device=old.device)]))

    def reset(self) -> None:
        """Forget everything: zero states, no messages."""
        self._forget()
        self.state.zero_()
        self.last_update.zero_()
        self.pending_other.fill_(-1)
        self.pending_time.zero_()
        self.pending_event.fill_(-1)

    def read(self, nodes: Tensor, features: EventFeatures) -> tuple[Tensor, Tensor]:
        """States of ``nodes [U]`` (distinct ids) with their pending messages applied (differentiably), and their
        last-update times: ``([U, memory_dim], [U] float64)``. The stored state is not changed."""
        state = self.state[nodes]
        last = self.last_update[nodes]
        waiting = (self.pending_other[nodes] >= 0).nonzero().squeeze(1)
        if len(waiting) == 0:
            self._remember(nodes, state, last)
            return state, last
        node = nodes[waiting]
        other = self.pending_other[node]
        dt = self.pending_time[node] - self.last_update[node]
        own = self.state.index_select(0, node)
        parts = [own, self.state.index_select(0, other), self.time(dt).to(state.dtype)]  # [s_i || s_j || phi(dt) || e]
        if features.dim:
            parts.append(features.gather(self.pending_event[node], state.dtype))
        updated = self._cell(parts, own)
        state = state.index_copy(0, waiting, updated)
        last = last.index_copy(0, waiting, self.pending_time[node])
        self._remember(nodes, state, last)
        return state, last

    def _remember(self, nodes: Tensor, state: Tensor, last: Tensor) -> None:
        """Keep the last read's applied states (sorted ids only) for ``commit``: observing a batch then applies its
        nodes' messages as the prediction did, without running the cell again. The TGN reference code and
        torch_geometric also store the states computed before the optimiser's step."""
        ordered = len(nodes) < 2 or bool((nodes[1:] > nodes[:-1]).all())
        self._applied = (nodes, state.detach(), last) if ordered else None

    def _recall(self, nodes: Tensor) -> tuple[Tensor, Tensor] | None:
        """The remembered states and times of ``nodes``, if the last read covered them all (else None)."""
        if self._applied is None or len(self._applied[0]) == 0:
            return None
        known, state, last = self._applied
        position = torch.searchsorted(known, nodes).clamp(max=len(known) - 1)
        if not bool((known[position] == nodes).all()):
            return None
        return state.index_select(0, position), last.index_select(0, position)

    def _forget(self) -> None:
        self._applied = None

    def _load_from_state_dict(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._forget()
        super()._load_from_state_dict(*args, **kwargs)

    def _cell(self, parts: list[Tensor], hidden: Tensor) -> Tensor:
        """``self.cell(cat(parts), hidden)`` (the GRU or RNN cell, torch's gate order), with the input projection's
        backward computing no gradient for the parts that need none (the stored states in the message: with
        ``nn.GRUCell`` autograd builds the whole input's gradient, two thirds of it for nothing).
        ``parts``: ``[W, *]`` pieces of the message in order, ``hidden: [W, memory_dim]``."""
        gates = _PartialLinear.apply(self.cell.weight_ih, self.cell.bias_ih, *parts)
        hidden_gates = torch.addmm(self.cell.bias_hh, hidden, self.cell.weight_hh.t())
        if isinstance(self.cell, nn.RNNCell):
            return torch.tanh(gates + hidden_gates)
        input_r, input_z, input_n = gates.chunk(3, dim=1)
        hidden_r, hidden_z, hidden_n = hidden_gates.chunk(3, dim=1)
        reset = torch.sigmoid(input_r + hidden_r)
        update = torch.sigmoid(input_z + hidden_z)
        candidate = torch.tanh(input_n + reset * hidden_n)
        return candidate + update * (hidden - candidate)  # (1 - z) * n + z * h

    @torch.no_grad()
    def commit(self, nodes: Tensor, features: EventFeatures) -> None:
        """Apply and store the pending messages of ``nodes [U]`` (distinct ids): as the last ``read`` applied them
        if it covered these nodes (nothing has changed the memory since: every change forgets it), else now."""
        recalled = self._recall(nodes)
        state, last = recalled if recalled is not None else self.read(nodes, features)
        self._forget()
        self.state[nodes] = state
        self.last_update[nodes] = last
        self.pending_other[nodes] = -1
        self.pending_event[nodes] = -1

    @torch.no_grad()
    def store(self, src: Tensor, dst: Tensor, t: Tensor, event_ids: Tensor) -> None:
        """Leave each node of the events ``src, dst, t, event_ids [B]`` its last event in the batch as its pending
        message (after ``commit`` of those nodes, which applied their earlier ones)."""
        self._forget()
        node = torch.cat([src, dst])
        other = torch.cat([dst, src])
        occurrence = torch.arange(len(node), device=node.device) % len(src)  # event position within the batch
        nodes, inverse = torch.unique(node, return_inverse=True)
        last = torch.full((len(nodes),), -1, dtype=torch.long, device=node.device)
        last = last.scatter_reduce(0, inverse, occurrence, reduce="amax")
        # the occurrence of node n in event last[n]: src side if src is n, else dst side (one side for self-loops)
        side = torch.where(src[last] == nodes, last, last + len(src))
        self.pending_other[nodes] = other[side]
        self.pending_time[nodes] = t[last].to(torch.float64)
        self.pending_event[nodes] = event_ids[last]
