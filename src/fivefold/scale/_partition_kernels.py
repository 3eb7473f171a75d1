"""Numba kernels of the graph partitioners and of the partition writer.

Why numba: the streaming partitioners visit every node once, in order, and read its in-neighbours' assignments; that
loop is sequential by nature (each decision depends on the ones before) and runs over 1e7 nodes and 1e8 edges in a
few seconds compiled, against hours in Python. The writer's row gathers are the same loops as the store builder's.
"""

import numpy as np
from numba import njit, prange

from fivefold.ops.hashing import GOLDEN as _GOLDEN
from fivefold.ops.hashing import mix as _mix


@njit(nogil=True, cache=True)
def stream_partition(indptr, indices, num_parts, capacity, fennel, alpha, gamma):  # pragma: no cover - compiled
    """``[N]`` int32: a part for each node, deciding node by node in id order (one pass over the CSC rows).

    Node ``v`` goes to the part ``p`` (among those below ``capacity`` nodes) that maximises
    - LDG (Stanton & Kliot 2012, ``fennel`` False): ``n_p(v) * (1 - |P_p| / capacity)``,
    - Fennel (Tsourakakis et al. 2014, ``fennel`` True): ``n_p(v) - alpha * gamma * |P_p| ** (gamma - 1)``,
    where ``n_p(v)`` counts ``v``'s in-neighbours already placed in ``p``; ties go to the smaller part, then the
    lower number. Memory: the ``[N]`` assignment and ``[K]`` counters; the rows are read once, front to back."""
    num_nodes = indptr.shape[0] - 1
    part = np.full(num_nodes, -1, dtype=np.int32)
    load = np.zeros(num_parts, dtype=np.int64)
    counts = np.zeros(num_parts, dtype=np.int64)
    for v in range(num_nodes):
        for e in range(indptr[v], indptr[v + 1]):
            p = part[indices[e]]
            if p >= 0:
                counts[p] += 1
        best = -1
        best_score = -np.inf
        for p in range(num_parts):
            if load[p] >= capacity:
                continue
            if fennel:
                score = counts[p] - alpha * gamma * load[p] ** (gamma - 1.0)
            else:
                score = counts[p] * (1.0 - load[p] / capacity)
            if best < 0 or score > best_score or (score == best_score and load[p] < load[best]):
                best = p
                best_score = score
        part[v] = best
        load[best] += 1
        for e in range(indptr[v], indptr[v + 1]):
            p = part[indices[e]]
            if p >= 0:
                counts[p] = 0
    return part


@njit(parallel=True, nogil=True, cache=True)
def hash_partition(num_nodes, num_parts, seed):  # pragma: no cover - compiled
    """``[N]`` int32: each node's part drawn by a hash of ``(seed, node)`` (the random baseline)."""
    part = np.empty(num_nodes, dtype=np.int32)
    base = _mix(np.uint64(seed) + _GOLDEN)
    for v in prange(num_nodes):
        part[v] = np.int32(_mix(base ^ _mix(np.uint64(v) + _GOLDEN)) % np.uint64(num_parts))
    return part


@njit(parallel=True, nogil=True, cache=True)
def cut_edges(indptr, indices, part):  # pragma: no cover - compiled
    """``[N]`` int64: how many of each node's in-edges come from a node of another part."""
    cut = np.zeros(indptr.shape[0] - 1, dtype=np.int64)
    for v in prange(indptr.shape[0] - 1):
        own = part[v]
        for e in range(indptr[v], indptr[v + 1]):
            if part[indices[e]] != own:
                cut[v] += 1
    return cut


@njit(nogil=True, cache=True)
def gather_rows(indptr, indices, nodes, out_dtype_example):  # pragma: no cover - compiled
    """The CSC rows of ``nodes`` one after the other (the in-neighbours' global ids, in ``out_dtype_example``'s
    dtype) and their lengths."""
    lengths = np.empty(nodes.shape[0], dtype=np.int64)
    total = 0
    for i in range(nodes.shape[0]):
        lengths[i] = indptr[nodes[i] + 1] - indptr[nodes[i]]
        total += lengths[i]
    out = np.empty(total, dtype=out_dtype_example.dtype)
    write = 0
    for i in range(nodes.shape[0]):
        for e in range(indptr[nodes[i]], indptr[nodes[i] + 1]):
            out[write] = indices[e]
            write += 1
    return out, lengths


@njit(nogil=True, cache=True)
def remote_sources(indices, part, own):  # pragma: no cover - compiled
    """The in-neighbour ids in ``indices`` that belong to another part than ``own`` (with repeats)."""
    count = 0
    for e in range(indices.shape[0]):
        if part[indices[e]] != own:
            count += 1
    out = np.empty(count, dtype=np.int64)
    write = 0
    for e in range(indices.shape[0]):
        if part[indices[e]] != own:
            out[write] = indices[e]
            write += 1
    return out


@njit(parallel=True, nogil=True, cache=True)
def owned_self_loops(indptr, indices, global_ids):  # pragma: no cover - compiled
    """``[n_k]`` int64: the self-loops of each owned node (entries of its row equal to its global id)."""
    loops = np.zeros(global_ids.shape[0], dtype=np.int64)
    for i in prange(global_ids.shape[0]):
        for e in range(indptr[i], indptr[i + 1]):
            if indices[e] == global_ids[i]:
                loops[i] += 1
    return loops
