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
from numba import njit
from torch import Tensor, nn

from fivefold.errors import OptionError
from fivefold.ops import unique_ids
from fivefold.temporal.layers import EventFeatures, TimeEncoder

__all__ = ["Memory"]


@njit(fastmath=True, nogil=True, cache=True)
def _gru_gates_backward(grad, joined, reset_update, candidate, hidden_n, grad_gates,
                        grad_hidden_n):  # pragma: no cover - compiled
    """The GRU's gradients from ``out = (1 - z) * n + z * h``, ``n = tanh(a_n + r * hn)``, ``r, z = sigmoid(a_r, a_z)``
    back to the pre-activations ``grad_gates = [d a_r, d a_z, d a_n] [W, 3H]`` and to ``grad_hidden_n = d hn``.
    ``joined [W, >= H]`` begins with ``h``; ``reset_update [W, 2H]`` is ``[r, z]``."""
    width = grad.shape[1]
    for i in range(grad.shape[0]):
        for d in range(width):
            g, r, z, n = grad[i, d], reset_update[i, d], reset_update[i, width + d], candidate[i, d]
            grad_candidate_in = g * (1 - z) * (1 - n * n)
            grad_gates[i, 2 * width + d] = grad_candidate_in
            grad_hidden_n[i, d] = grad_candidate_in * r
            grad_gates[i, d] = grad_candidate_in * hidden_n[i, d] * r * (1 - r)
            grad_gates[i, width + d] = g * (joined[i, d] - n) * z * (1 - z)


def _gates_backward(grad: Tensor, joined: Tensor, reset_update: Tensor, candidate: Tensor,
                    hidden_n: Tensor) -> tuple[Tensor, Tensor]:
    """``(grad_gates [W, 3H], grad_hidden_n [W, H])`` of ``_gru_gates_backward``: the numba loop on the CPU, the
    same formulas as torch ops elsewhere."""
    if grad.device.type != "cpu":
        return _gates_backward_torch(grad, joined, reset_update, candidate, hidden_n)
    grad_gates = torch.empty(len(grad), 3 * grad.shape[1], dtype=grad.dtype)
    grad_hidden_n = torch.empty_like(grad)
    _gru_gates_backward(grad.numpy(), joined.numpy(), reset_update.numpy(), candidate.numpy(), hidden_n.numpy(),
                        grad_gates.numpy(), grad_hidden_n.numpy())
    return grad_gates, grad_hidden_n


def _gates_backward_torch(grad: Tensor, joined: Tensor, reset_update: Tensor, candidate: Tensor,
                          hidden_n: Tensor) -> tuple[Tensor, Tensor]:
    """``_gates_backward`` as torch ops (any device)."""
    width = grad.shape[1]
    reset, update, hidden = reset_update[:, :width], reset_update[:, width:], joined[:, :width]
    grad_candidate_in = grad * (1 - update) * (1 - candidate * candidate)
    grad_reset_in = grad_candidate_in * hidden_n * reset * (1 - reset)
    grad_update_in = grad * (hidden - candidate) * update * (1 - update)
    return torch.cat([grad_reset_in, grad_update_in, grad_candidate_in], dim=1), grad_candidate_in * reset


class _RecurrentStep(torch.autograd.Function):
    """One step of torch's GRU or tanh-RNN cell on a message whose first part is the hidden state itself:
    ``cell(cat(parts), parts[0])``, in fewer products and with a hand-written backward.

    - The hidden state enters the cell twice, as the message's first part (``W_ih[:, :H]``) and as the hidden input
      (``W_hh``). Where both feed the same pre-activation (the GRU's reset and update gates, the whole RNN cell),
      their weights are summed first, so the hidden state is multiplied once per gate, not twice: for the GRU one
      ``[W, in] x [in, 3H]`` product and one ``[W, H] x [H, H]`` product (the candidate's hidden part) instead of a
      further ``[W, H] x [H, 3H]``. The summed weight's gradient is the gradient of both weights' shared blocks.
    - The backward computes the gradients of the parts that require one and no others (the memory's stored states
      need none), and builds no autograd graph of the gates' dozen element-wise operations: one numba loop takes the
      output's gradient back to the gates' pre-activations (as torch ops, a dozen passes over ``[W, H]`` tensors).

    Forward: ``weight_ih [G*H, in]``, ``bias_ih [G*H]``, ``weight_hh [G*H, H]``, ``bias_hh [G*H]`` (``G`` = 3 for
    the GRU, 1 for the RNN, torch's gate order r, z, n), ``parts``: ``[W, *]`` pieces of the message in order, the
    first ``[W, H]`` -> ``[W, H]``.
    """

    @staticmethod
    def forward(ctx, weight_ih: Tensor, bias_ih: Tensor, weight_hh: Tensor, bias_hh: Tensor,
                *parts: Tensor) -> Tensor:
        hidden = parts[0]
        width = hidden.shape[1]
        gru = weight_hh.shape[0] == 3 * width
        shared = 2 * width if gru else width  # rows whose input and hidden pre-activations are summed
        weight = weight_ih.clone()
        weight[:shared, :width] += weight_hh[:shared]
        bias = bias_ih.clone()
        bias[:shared] += bias_hh[:shared]
        joined = torch.cat(parts, dim=1)
        gates = torch.addmm(bias, joined, weight.t())
        ctx.widths = [part.shape[1] for part in parts]
        if not gru:
            out = torch.tanh(gates)
            ctx.save_for_backward(weight, joined, out)
            return out
        hidden_n = torch.addmm(bias_hh[shared:], hidden, weight_hh[shared:].t())
        reset_update = torch.sigmoid(gates[:, :shared])
        reset, update = reset_update[:, :width], reset_update[:, width:]
        candidate = torch.addcmul(gates[:, shared:], reset, hidden_n).tanh_()
        ctx.save_for_backward(weight, weight_hh, joined, reset_update, candidate, hidden_n)
        return torch.lerp(candidate, hidden, update)  # (1 - z) * n + z * h

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        needs = ctx.needs_input_grad
        if len(ctx.saved_tensors) == 3:  # RNN: out = tanh(gates)
            weight, joined, out = ctx.saved_tensors
            grad_gates = grad * (1 - out * out)
            grad_hidden_direct = None
            grad_hidden_n = None
        else:
            weight, weight_hh, joined, reset_update, candidate, hidden_n = ctx.saved_tensors
            grad_gates, grad_hidden_n = _gates_backward(grad.contiguous(), joined, reset_update, candidate, hidden_n)
            grad_hidden_direct = grad * reset_update[:, grad.shape[1]:] if needs[4] else None
        width = ctx.widths[0]
        shared = weight.shape[0] - width if grad_hidden_n is not None else width
        grad_weight = grad_gates.t() @ joined if needs[0] or needs[2] else None
        grad_bias = grad_gates.sum(0) if needs[1] or needs[3] else None
        grad_weight_hh = grad_bias_hh = None
        if needs[2]:
            blocks = [grad_weight[:shared, :width]]
            if grad_hidden_n is not None:
                blocks.append(grad_hidden_n.t() @ joined[:, :width])
            grad_weight_hh = torch.cat(blocks)
        if needs[3]:
            blocks = [grad_bias[:shared]]
            if grad_hidden_n is not None:
                blocks.append(grad_hidden_n.sum(0))
            grad_bias_hh = torch.cat(blocks)
        grads: list[Tensor | None] = [grad_weight if needs[0] else None, grad_bias if needs[1] else None,
                                      grad_weight_hh, grad_bias_hh]
        start = 0
        for index, part_width in enumerate(ctx.widths):
            part_grad = None
            if needs[4 + index]:
                part_grad = grad_gates @ weight[:, start:start + part_width]
                if index == 0 and grad_hidden_n is not None:
                    part_grad = part_grad + grad_hidden_n @ weight_hh[shared:] + grad_hidden_direct
            grads.append(part_grad)
            start += part_width
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
        updated = self._cell(parts)
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

    def _cell(self, parts: list[Tensor]) -> Tensor:
        """``self.cell(cat(parts), parts[0])``: the GRU or RNN step of a message whose first part is the node's own
        state (see ``_RecurrentStep``). ``parts``: ``[W, *]`` pieces of the message in order -> ``[W, memory_dim]``."""
        cell = self.cell
        return _RecurrentStep.apply(cell.weight_ih, cell.bias_ih, cell.weight_hh, cell.bias_hh, *parts)

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
        nodes, inverse = unique_ids(node, self.num_nodes)
        last = torch.full((len(nodes),), -1, dtype=torch.long, device=node.device)
        last = last.scatter_reduce(0, inverse, occurrence, reduce="amax")
        # the occurrence of node n in event last[n]: src side if src is n, else dst side (one side for self-loops)
        side = torch.where(src[last] == nodes, last, last + len(src))
        self.pending_other[nodes] = other[side]
        self.pending_time[nodes] = t[last].to(torch.float64)
        self.pending_event[nodes] = event_ids[last]
