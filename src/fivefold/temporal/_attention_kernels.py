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

__all__ = ["neighbour_attention"]

CHUNKS = 32  # the time encoding's gradient is summed per chunk of queries: a fixed count, so any thread count
# gives the same sums bit for bit


@njit(parallel=True, fastmath=True, cache=True)
def _forward(query, keys, values, time_query, edge_query, neighbours, mask, phi, edge, keep, use_keep, scale, zero,
             weights, out_values, out_phi, out_edge):  # pragma: no cover - compiled
    """Scores, softmax over each query's neighbours and weighted sums. Writes ``weights [Q, k, H]`` (softmax,
    before dropout; 0 where masked) and the three outputs (zeroed by the caller)."""
    count, k = neighbours.shape
    heads, width = query.shape[1], query.shape[2]
    time_dim, edge_dim = phi.shape[2], edge.shape[2]
    for q in prange(count):
        for h in range(heads):
            top = -np.inf
            for j in range(k):
                if not mask[q, j]:
                    continue
                u = neighbours[q, j]
                score = zero
                for d in range(width):
                    score += keys[u, h, d] * query[q, h, d]
                for t in range(time_dim):
                    score += phi[q, j, t] * time_query[q, h, t]
                for e in range(edge_dim):
                    score += edge[q, j, e] * edge_query[q, h, e]
                score *= scale
                weights[q, j, h] = score
                top = max(top, score)
            if top == -np.inf:
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
                for d in range(width):
                    out_values[q, h, d] += w * values[u, h, d]
                for t in range(time_dim):
                    out_phi[q, h, t] += w * phi[q, j, t]
                for e in range(edge_dim):
                    out_edge[q, h, e] += w * edge[q, j, e]


@njit(parallel=True, fastmath=True, cache=True)
def _backward_queries(query, keys, values, time_query, edge_query, neighbours, mask, phi, sine, dt, frequency,
                      edge, keep, use_keep, scale, zero, weights, grad_values_out, grad_phi_out, grad_edge_out,
                      grad_scores, grad_query, grad_time_query, grad_edge_query, grad_dt, grad_frequency,
                      grad_phase, time_grads):  # pragma: no cover - compiled
    """Per query: the gradient of the scores (``grad_scores [Q, k, H]``, scale included), of the query and its time
    and feature parts, and (``time_grads``) of ``dt`` and the time encoding's ``frequency`` and ``phase``, the last
    two summed per chunk of queries (``grad_frequency, grad_phase [chunks, T]``)."""
    count, k = neighbours.shape
    heads, width = query.shape[1], query.shape[2]
    time_dim, edge_dim = phi.shape[2], edge.shape[2]
    chunks = grad_frequency.shape[0]
    step = (count + chunks - 1) // chunks
    for c in prange(chunks):
        grad_weight = np.empty(k, dtype=query.dtype)
        grad_phi = np.empty(time_dim, dtype=query.dtype)
        for q in range(c * step, min(count, (c + 1) * step)):
            for h in range(heads):
                dot = zero
                for j in range(k):
                    if not mask[q, j]:
                        continue
                    u = neighbours[q, j]
                    g = zero
                    for d in range(width):
                        g += grad_values_out[q, h, d] * values[u, h, d]
                    for t in range(time_dim):
                        g += grad_phi_out[q, h, t] * phi[q, j, t]
                    for e in range(edge_dim):
                        g += grad_edge_out[q, h, e] * edge[q, j, e]
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
                    for d in range(width):
                        grad_query[q, h, d] += gs * keys[u, h, d]
                    for t in range(time_dim):
                        grad_time_query[q, h, t] += gs * phi[q, j, t]
                    for e in range(edge_dim):
                        grad_edge_query[q, h, e] += gs * edge[q, j, e]
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
                    g = -sine[q, j, t] * grad_phi[t]  # d cos(x) / dx = -sin(x)
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


def _array(tensor: Tensor) -> np.ndarray:
    return tensor.detach().contiguous().numpy()


class _NeighbourAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, query, keys, values, time_query, edge_query, dt, frequency, phase, neighbours, mask, edge,
                keep, scale):
        argument = torch.addcmul(phase, dt.unsqueeze(-1), frequency)  # [Q, k, T]
        phi = torch.cos(argument)
        count, k = neighbours.shape
        heads, width = query.shape[1], query.shape[2]
        use_keep = keep is not None
        dtype = np.float32 if query.dtype == torch.float32 else np.float64
        keep_array = _array(keep) if use_keep else np.zeros((0, 0, 0), dtype=dtype)
        weights = np.zeros((count, k, heads), dtype=dtype)
        out_values = torch.zeros(count, heads, width, dtype=query.dtype)
        out_phi = torch.zeros(count, heads, phi.shape[2], dtype=query.dtype)
        out_edge = torch.zeros(count, heads, edge.shape[2], dtype=query.dtype)
        _forward(_array(query), _array(keys), _array(values), _array(time_query), _array(edge_query),
                 _array(neighbours), _array(mask), _array(phi), _array(edge), keep_array, use_keep, dtype(scale),
                 dtype(0), weights,
                 out_values.numpy(), out_phi.numpy(), out_edge.numpy())
        time_grads = any(ctx.needs_input_grad[5:8])
        sine = torch.sin(argument) if time_grads else torch.zeros(0, 0, 0, dtype=query.dtype)
        ctx.save_for_backward(query, keys, values, time_query, edge_query, dt, frequency, neighbours, mask, edge,
                              phi, sine, torch.from_numpy(weights), torch.from_numpy(keep_array))
        ctx.scale, ctx.use_keep, ctx.time_grads = scale, use_keep, time_grads
        return out_values, out_phi, out_edge

    @staticmethod
    def backward(ctx, grad_values_out, grad_phi_out, grad_edge_out):
        (query, keys, values, time_query, edge_query, dt, frequency, neighbours, mask, edge, phi, sine, weights,
         keep) = ctx.saved_tensors
        count, k = neighbours.shape
        chunks = max(1, min(CHUNKS, count))
        grads = {name: torch.zeros_like(like) for name, like in (
            ("scores", weights), ("query", query), ("time_query", time_query), ("edge_query", edge_query),
            ("dt", dt), ("keys", keys), ("values", values))}
        grad_frequency = torch.zeros(chunks, phi.shape[2], dtype=query.dtype)
        grad_phase = torch.zeros(chunks, phi.shape[2], dtype=query.dtype)
        arrays = [_array(t) for t in (query, keys, values, time_query, edge_query, neighbours, mask, phi, sine, dt,
                                      frequency, edge, keep)]
        dtype = arrays[0].dtype.type
        _backward_queries(*arrays, ctx.use_keep, dtype(ctx.scale), dtype(0), _array(weights), _array(grad_values_out),
                          _array(grad_phi_out), _array(grad_edge_out), grads["scores"].numpy(),
                          grads["query"].numpy(), grads["time_query"].numpy(), grads["edge_query"].numpy(),
                          grads["dt"].numpy(), grad_frequency.numpy(), grad_phase.numpy(), ctx.time_grads)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            flat = neighbours.flatten()
            order = torch.argsort(flat, stable=True)
            row_start = torch.zeros(len(keys) + 1, dtype=torch.long)
            row_start[1:] = torch.cumsum(torch.bincount(flat, minlength=len(keys)), 0)
            _backward_rows(_array(query), _array(grad_values_out), _array(neighbours), _array(mask), _array(keep),
                           ctx.use_keep, _array(weights), grads["scores"].numpy(), row_start.numpy(),
                           order.numpy(), grads["keys"].numpy(), grads["values"].numpy())
        return (grads["query"], grads["keys"], grads["values"], grads["time_query"], grads["edge_query"],
                grads["dt"] if ctx.time_grads else None, grad_frequency.sum(0) if ctx.time_grads else None,
                grad_phase.sum(0) if ctx.time_grads else None, None, None, None, None, None)


def neighbour_attention(query: Tensor, keys: Tensor, values: Tensor, time_query: Tensor, edge_query: Tensor,
                        dt: Tensor, frequency: Tensor, phase: Tensor, neighbours: Tensor, mask: Tensor, edge: Tensor,
                        keep: Tensor | None, scale: float) -> tuple[Tensor, Tensor, Tensor]:
    """Multi-head attention of each query over its sampled neighbours, with the time and feature parts of the keys
    and values left as time encodings and features (their linear maps are applied by the caller, before the scores
    and after the weighted sums).

    Args:
        query: ``[Q, H, dh]``; keys, values: ``[U, H, dh]`` (node parts of the keys and values, per node row);
        time_query: ``[Q, H, T]`` and edge_query: ``[Q, H, E]`` (the query mapped into time-encoding and feature
        space); dt: ``[Q, k]``; frequency, phase: ``[T]`` (``phi = cos(dt * frequency + phase)``);
        neighbours: ``[Q, k]`` rows of ``keys``; mask: ``[Q, k]`` bool (False: padding); edge: ``[Q, k, E]`` event
        features (no gradient); keep: ``[Q, k, H]`` dropout factors on the attention weights, or None; scale:
        the scores' factor (``1 / sqrt(dh)``).

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
                                     neighbours.long(), mask.bool(), edge, keep, float(scale))
