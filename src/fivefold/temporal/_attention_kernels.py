"""Fused numba kernels of temporal graph attention over sampled neighbours, and the autograd function around them.

Why numba: per (query, neighbour) the attention needs a dot product of the query with the neighbour's key, with its
time encoding ``phi(dt) = cos(dt * w + b)`` and with its event features, a softmax over the ``k`` neighbours and the
weighted sums of values, time encodings and features; and the backward pass needs as many again. Written as torch
ops, each step is a pass over a ``[Q, k, T]`` tensor in memory (about twenty per training step); TGAT's second layer
has ``Q * k`` in the hundreds of thousands, so those passes dominated its time. These kernels do the per-neighbour
work in one loop per query, in cache; only ``cos`` and ``sin`` of the time encoding's arguments are left to torch,
whose vectorised versions are an order of magnitude faster than numba's scalar ones.

The gradients of the keys and values (rows shared by many queries) are summed per row over a row-sorted list of
the (query, neighbour) pairs that use it, and those of the time encoding's parameters per fixed chunk of queries,
so no two threads write one place and the result does not depend on the number of threads.

Shapes: ``Q`` queries, ``k`` neighbours, ``H`` heads of width ``dh``, ``U`` node rows, ``T`` time-encoding width,
``E`` event-feature width.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit, prange
from torch import Tensor

from fivefold.errors import OpsError
from fivefold.ops import sync_numba_threads

__all__ = ["neighbour_attention"]

CHUNKS = 32  # the time encoding's gradient is summed per chunk of queries: a fixed count, so any thread count
# gives the same sums bit for bit

# float32 time encodings are computed in the kernels: the argument and its reduction to [-pi, pi] in float64, then
# sin and cos of half of it by Taylor polynomials (errors below 6e-8 on [-pi/2, pi/2]) and the double-angle rules
_INV_TWO_PI = 1.0 / (2.0 * math.pi)
_TWO_PI = 2.0 * math.pi
_S = [np.float32((-1.0) ** i / math.factorial(2 * i + 1)) for i in range(6)]  # sin: x, x^3, ..., x^11
_C = [np.float32((-1.0) ** i / math.factorial(2 * i)) for i in range(7)]  # cos: 1, x^2, ..., x^12
_S1, _S3, _S5, _S7, _S9, _S11 = _S
_C0, _C2, _C4, _C6, _C8, _C10, _C12 = _C
_TWO = np.float32(2.0)
_HALF = np.float32(0.5)


@njit(inline="always", fastmath=True, cache=True)
def _encode(dt, frequency, phase, cosine, sine, with_sine):  # pragma: no cover - compiled
    """float32 ``cos`` (and ``sin`` when ``with_sine``) of ``dt[j] * frequency + phase`` into the rows ``[k, T]``
    (``frequency``, ``phase`` given in float64)."""
    for j in range(dt.shape[0]):
        d = np.float64(dt[j])
        for t in range(frequency.shape[0]):
            x = d * frequency[t] + phase[t]
            half = np.float32(x - np.rint(x * _INV_TWO_PI) * _TWO_PI) * _HALF
            h2 = half * half
            s = half * (_S1 + h2 * (_S3 + h2 * (_S5 + h2 * (_S7 + h2 * (_S9 + h2 * _S11)))))
            c = _C0 + h2 * (_C2 + h2 * (_C4 + h2 * (_C6 + h2 * (_C8 + h2 * (_C10 + h2 * _C12)))))
            cosine[j, t] = c * c - s * s
            if with_sine:
                sine[j, t] = _TWO * s * c


@njit(inline="always", fastmath=True, cache=True)
def _dots(node, node_other, time, time_other, edge, edge_other, zero):  # pragma: no cover - compiled
    """``node . node_other + time . time_other + edge . edge_other``: a neighbour's row of node, time-encoding and
    feature parts against a query's (the score in forward, the weight's gradient in backward)."""
    total = zero
    for d in range(node.shape[0]):
        total += node[d] * node_other[d]
    for t in range(time.shape[0]):
        total += time[t] * time_other[t]
    for e in range(edge.shape[0]):
        total += edge[e] * edge_other[e]
    return total


@njit(inline="always", fastmath=True, cache=True)
def _accumulate(factor, node, node_out, time, time_out, edge, edge_out):  # pragma: no cover - compiled
    """``*_out += factor * *``: a neighbour's node, time-encoding and feature rows added to a query's sums (the
    weighted sums in forward, the query's gradients in backward)."""
    for d in range(node.shape[0]):
        node_out[d] += factor * node[d]
    for t in range(time.shape[0]):
        time_out[t] += factor * time[t]
    for e in range(edge.shape[0]):
        edge_out[e] += factor * edge[e]


@njit(parallel=True, fastmath=True, cache=True)
def _forward(query, keys, values, time_query, edge_query, neighbours, mask, phi_all, dt, frequency, phase, fused,
             edge, keep, use_keep, scale, zero, weights, out_values, out_phi, out_edge):  # pragma: no cover - compiled
    """Scores, softmax over each query's neighbours and weighted sums. Writes ``weights [Q, k, H]`` (softmax,
    before dropout; 0 where masked) and the three outputs (zeroed by the caller). The time encodings are
    ``phi_all [Q, k, T]``, or with ``fused`` computed here from ``dt``, ``frequency`` and ``phase``."""
    count, k = neighbours.shape
    heads, time_dim = query.shape[1], time_query.shape[2]
    for q in prange(count):
        scratch = np.empty((k, time_dim), dtype=query.dtype)
        if fused:
            _encode(dt[q], frequency, phase, scratch, scratch, False)
            phi = scratch
        else:
            phi = phi_all[q]
        for h in range(heads):
            top, found = zero, False  # (no infinities: fastmath lets the compiler assume there are none)
            for j in range(k):
                if not mask[q, j]:
                    continue
                u = neighbours[q, j]
                score = _dots(keys[u, h], query[q, h], phi[j], time_query[q, h], edge[q, j], edge_query[q, h],
                              zero) * scale
                weights[q, j, h] = score
                if not found or score > top:
                    top, found = score, True
            if not found:
                continue  # no earlier event: weights and outputs stay 0
            total = zero
            for j in range(k):
                if mask[q, j]:
                    weights[q, j, h] = math.exp(weights[q, j, h] - top)
                    total += weights[q, j, h]
            for j in range(k):
                if not mask[q, j]:
                    continue
                a = weights[q, j, h] / total
                weights[q, j, h] = a
                w = a * keep[q, j, h] if use_keep else a
                u = neighbours[q, j]
                _accumulate(w, values[u, h], out_values[q, h], phi[j], out_phi[q, h], edge[q, j], out_edge[q, h])


@njit(parallel=True, fastmath=True, cache=True)
def _backward_queries(query, keys, values, time_query, edge_query, neighbours, mask, phi_all, sine_all, dt, frequency,
                      frequency64, phase64, fused, edge, keep, use_keep, scale, zero, weights, grad_values_out,
                      grad_phi_out, grad_edge_out, grad_scores, grad_query, grad_time_query, grad_edge_query, grad_dt,
                      grad_frequency, grad_phase, time_grads):  # pragma: no cover - compiled
    """Per query: the gradient of the scores (``grad_scores [Q, k, H]``, scale included), of the query and its time
    and feature parts, and (``time_grads``) of ``dt`` and the time encoding's ``frequency`` and ``phase``, the last
    two summed per chunk of queries (``grad_frequency, grad_phase [chunks, T]``)."""
    count, k = neighbours.shape
    heads, time_dim = query.shape[1], time_query.shape[2]
    chunks = grad_frequency.shape[0]
    step = (count + chunks - 1) // chunks
    for c in prange(chunks):
        grad_weight = np.empty(k, dtype=query.dtype)
        grad_phi = np.empty(time_dim, dtype=query.dtype)
        cosines = np.empty((k, time_dim), dtype=query.dtype)
        sines = np.empty((k, time_dim), dtype=query.dtype)
        for q in range(c * step, min(count, (c + 1) * step)):
            if fused:
                _encode(dt[q], frequency64, phase64, cosines, sines, time_grads)
                phi, sine = cosines, sines
            else:
                phi, sine = phi_all[q], sine_all[q]
            for h in range(heads):
                dot = zero
                for j in range(k):
                    if not mask[q, j]:
                        continue
                    u = neighbours[q, j]
                    g = _dots(values[u, h], grad_values_out[q, h], phi[j], grad_phi_out[q, h], edge[q, j],
                              grad_edge_out[q, h], zero)
                    if use_keep:
                        g *= keep[q, j, h]
                    grad_weight[j] = g
                    dot += weights[q, j, h] * g
                for j in range(k):
                    if not mask[q, j]:
                        continue
                    gs = weights[q, j, h] * (grad_weight[j] - dot) * scale
                    grad_scores[q, j, h] = gs
                    u = neighbours[q, j]
                    _accumulate(gs, keys[u, h], grad_query[q, h], phi[j], grad_time_query[q, h], edge[q, j],
                                grad_edge_query[q, h])
            if not time_grads:
                continue
            for j in range(k):
                if not mask[q, j]:
                    continue
                grad_phi[:] = 0.0  # the gradient of phi[q, j], then of its argument
                for h in range(heads):
                    w = weights[q, j, h] * keep[q, j, h] if use_keep else weights[q, j, h]
                    gs = grad_scores[q, j, h]
                    for t in range(time_dim):
                        grad_phi[t] += w * grad_phi_out[q, h, t] + gs * time_query[q, h, t]
                gdt = zero
                for t in range(time_dim):
                    g = -sine[j, t] * grad_phi[t]  # d cos(x) / dx = -sin(x)
                    grad_frequency[c, t] += g * dt[q, j]
                    grad_phase[c, t] += g
                    gdt += g * frequency[t]
                grad_dt[q, j] = gdt


@njit(parallel=True, fastmath=True, cache=True)
def _backward_rows(query, grad_values_out, neighbours, mask, keep, use_keep, weights, grad_scores, row_start, order,
                   grad_keys, grad_values):  # pragma: no cover - compiled
    """Per node row ``u``: the sums over the (query, neighbour) pairs that read it (``order[row_start[u]:
    row_start[u + 1]]``, flat indices ``q * k + j``) of the keys' and values' gradients."""
    k = neighbours.shape[1]
    heads, width = query.shape[1], query.shape[2]
    for u in prange(row_start.shape[0] - 1):
        for p in range(row_start[u], row_start[u + 1]):
            q, j = order[p] // k, order[p] % k
            if not mask[q, j]:
                continue
            for h in range(heads):
                gs = grad_scores[q, j, h]
                w = weights[q, j, h] * keep[q, j, h] if use_keep else weights[q, j, h]
                for d in range(width):
                    grad_keys[u, h, d] += gs * query[q, h, d]
                    grad_values[u, h, d] += w * grad_values_out[q, h, d]


@njit(cache=True)
def _group_by_row(neighbours, rows):  # pragma: no cover - compiled
    """Counting sort of the flat (query, neighbour) pairs by node row: ``(row_start [rows + 1], order [Q * k])`` with
    the pairs reading row ``u`` at ``order[row_start[u]:row_start[u + 1]]``, in increasing order."""
    flat = neighbours.ravel()
    row_start = np.zeros(rows + 1, dtype=np.int64)
    for i in range(flat.shape[0]):
        row_start[flat[i] + 1] += 1
    for u in range(rows):
        row_start[u + 1] += row_start[u]
    filled = row_start[:-1].copy()
    order = np.empty(flat.shape[0], dtype=np.int64)
    for i in range(flat.shape[0]):
        order[filled[flat[i]]] = i
        filled[flat[i]] += 1
    return row_start, order


def _array(tensor: Tensor) -> np.ndarray:
    return tensor.detach().contiguous().numpy()


def _scalar(value: float, like: Tensor) -> np.floating:
    """``value`` as a numpy scalar of ``like``'s dtype (the kernels' accumulators take it)."""
    return (np.float32 if like.dtype == torch.float32 else np.float64)(value)


class _NeighbourAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, query, keys, values, time_query, edge_query, dt, frequency, phase, neighbours, mask, edge,
                keep, scale, fused):
        count, k = neighbours.shape
        heads, width, time_dim = query.shape[1], query.shape[2], frequency.shape[0]
        # made contiguous once: the saved tensors are read again by the backward kernels
        query, keys, values, time_query, edge_query, dt, edge = (
            t.contiguous() for t in (query, keys, values, time_query, edge_query, dt, edge))
        empty = torch.zeros(0, 0, 0, dtype=query.dtype)
        time_grads = any(ctx.needs_input_grad[5:8])
        phi, sine = empty, empty
        if not fused:
            argument = torch.addcmul(phase, dt.unsqueeze(-1), frequency)  # [Q, k, T]
            phi = torch.cos(argument)
            sine = torch.sin(argument) if time_grads else empty
        use_keep = keep is not None
        keep = keep if use_keep else empty
        weights = torch.zeros(count, k, heads, dtype=query.dtype)
        outputs = [torch.zeros(count, heads, size, dtype=query.dtype) for size in (width, time_dim, edge.shape[2])]
        sync_numba_threads()  # the kernels run on torch's thread count
        _forward(*(_array(t) for t in (query, keys, values, time_query, edge_query, neighbours, mask, phi, dt)),
                 _array(frequency.double()), _array(phase.double()), fused, _array(edge), _array(keep), use_keep,
                 _scalar(scale, query), _scalar(0, query), weights.numpy(), *(out.numpy() for out in outputs))
        ctx.save_for_backward(query, keys, values, time_query, edge_query, dt, frequency, phase, neighbours, mask,
                              edge, phi, sine, weights, keep)
        ctx.scale, ctx.use_keep, ctx.time_grads, ctx.fused = scale, use_keep, time_grads, fused
        return tuple(outputs)

    @staticmethod
    def backward(ctx, grad_values_out, grad_phi_out, grad_edge_out):
        (query, keys, values, time_query, edge_query, dt, frequency, phase, neighbours, mask, edge, phi, sine,
         weights, keep) = ctx.saved_tensors
        count, k = neighbours.shape
        chunks = max(1, min(CHUNKS, count))
        grads = {name: torch.zeros_like(like) for name, like in (
            ("scores", weights), ("query", query), ("time_query", time_query), ("edge_query", edge_query),
            ("dt", dt))}
        grad_frequency = torch.zeros(chunks, len(frequency), dtype=query.dtype)
        grad_phase = torch.zeros(chunks, len(frequency), dtype=query.dtype)
        sync_numba_threads()
        _backward_queries(*(_array(t) for t in (query, keys, values, time_query, edge_query, neighbours, mask, phi,
                                                 sine, dt, frequency)),
                          _array(frequency.double()), _array(phase.double()), ctx.fused, _array(edge), _array(keep),
                          ctx.use_keep, _scalar(ctx.scale, query), _scalar(0, query), _array(weights),
                          _array(grad_values_out),
                          _array(grad_phi_out), _array(grad_edge_out), grads["scores"].numpy(),
                          grads["query"].numpy(), grads["time_query"].numpy(), grads["edge_query"].numpy(),
                          grads["dt"].numpy(), grad_frequency.numpy(), grad_phase.numpy(), ctx.time_grads)
        grads["keys"] = grads["values"] = None
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            grads["keys"], grads["values"] = torch.zeros_like(keys), torch.zeros_like(values)
            row_start, order = _group_by_row(_array(neighbours), len(keys))
            _backward_rows(_array(query), _array(grad_values_out), _array(neighbours), _array(mask), _array(keep),
                           ctx.use_keep, _array(weights), grads["scores"].numpy(), row_start, order,
                           grads["keys"].numpy(), grads["values"].numpy())
        time_grads = ctx.time_grads
        return (grads["query"], grads["keys"], grads["values"], grads["time_query"], grads["edge_query"],
                grads["dt"] if time_grads else None, grad_frequency.sum(0) if time_grads else None,
                grad_phase.sum(0) if time_grads else None, None, None, None, None, None, None)


def neighbour_attention(query: Tensor, keys: Tensor, values: Tensor, time_query: Tensor, edge_query: Tensor,
                        dt: Tensor, frequency: Tensor, phase: Tensor, neighbours: Tensor, mask: Tensor, edge: Tensor,
                        keep: Tensor | None, scale: float, fused_time: bool | None = None
                        ) -> tuple[Tensor, Tensor, Tensor]:
    """Multi-head attention of each query over its sampled neighbours, with the time and feature parts of the keys
    and values left as time encodings and features (their linear maps are applied by the caller, before the scores
    and after the weighted sums).

    Args:
        query: ``[Q, H, dh]``; keys, values: ``[U, H, dh]`` (node parts of the keys and values, per node row);
        time_query: ``[Q, H, T]`` and edge_query: ``[Q, H, E]`` (the query mapped into time-encoding and feature
        space); dt: ``[Q, k]``; frequency, phase: ``[T]`` (``phi = cos(dt * frequency + phase)``);
        neighbours: ``[Q, k]`` rows of ``keys``; mask: ``[Q, k]`` bool (False: padding); edge: ``[Q, k, E]`` event
        features (no gradient); keep: ``[Q, k, H]`` dropout factors on the attention weights, or None; scale:
        the scores' factor (``1 / sqrt(dh)``); fused_time: compute ``phi`` and its derivative inside the kernel
        with float32 polynomials (default: for float32 inputs; float64 inputs use torch's ``cos`` and ``sin``).

    Returns ``(values [Q, H, dh], phi [Q, H, T], edge [Q, H, E])``: the attention-weighted sums of the neighbours'
    value rows, time encodings and features. A query without unmasked neighbours gets zeros. Differentiable in
    everything but ``neighbours``, ``mask``, ``edge``, ``keep``.
    """
    count, k = neighbours.shape
    heads, width = query.shape[1], query.shape[2]
    time_dim, edge_dim = frequency.shape[0], edge.shape[-1]
    expected = {"query": (query, (count, heads, width)), "keys": (keys, (len(keys), heads, width)),
                "values": (values, (len(keys), heads, width)), "time_query": (time_query, (count, heads, time_dim)),
                "edge_query": (edge_query, (count, heads, edge_dim)), "dt": (dt, (count, k)),
                "phase": (phase, (time_dim,)), "mask": (mask, (count, k)), "edge": (edge, (count, k, edge_dim))}
    if keep is not None:
        expected["keep"] = (keep, (count, k, heads))
    for name, (tensor, shape) in expected.items():
        if tuple(tensor.shape) != shape:
            raise OpsError(f"neighbour_attention: {name} must have shape {list(shape)}, got {list(tensor.shape)}")
    floats = [query, keys, values, time_query, edge_query, dt, frequency, phase, edge] + ([keep] if keep is not None
                                                                                          else [])
    if len({t.dtype for t in floats}) != 1 or query.dtype not in (torch.float32, torch.float64):
        raise OpsError("neighbour_attention: the float inputs must share one dtype, float32 or float64")
    if any(t.device.type != "cpu" for t in (query, keys, neighbours)):
        raise OpsError("neighbour_attention: the fused kernel runs on the CPU (use the reference elsewhere)")
    if neighbours.numel() and (int(neighbours.min()) < 0 or int(neighbours.max()) >= len(keys)):
        raise OpsError(f"neighbour_attention: neighbour rows must lie in [0, {len(keys)})")
    return _NeighbourAttention.apply(query, keys, values, time_query, edge_query, dt, frequency, phase,
                                     neighbours.long(), mask.bool(), edge, keep, float(scale),
                                     query.dtype == torch.float32 if fused_time is None else bool(fused_time))
