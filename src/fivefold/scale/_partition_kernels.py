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
def stream_partition(indptr, indices, num_parts, node_cap, edge_cap, fennel, alpha, gamma):  # pragma: no cover
    """``[N]`` int32: a part for each node, deciding node by node in id order (one pass over the CSC rows).

    A part may hold ``node_cap`` nodes and, when ``edge_cap > 0``, ``edge_cap`` in-edges (its rows); its fill
    ``f_p`` is the larger of the two fractions. Node ``v`` goes to the part ``p`` that it fits in and that
    maximises
    - LDG (Stanton & Kliot 2012, ``fennel`` False): ``n_p(v) * (1 - f_p)``,
    - Fennel (Tsourakakis et al. 2014, ``fennel`` True): ``n_p(v) - alpha * gamma * (f_p * node_cap) ** (gamma - 1)``
      (with nodes only, ``f_p * node_cap`` is the part's size, as in the paper),
    where ``n_p(v)`` counts ``v``'s in-neighbours already placed in ``p``; ties go to the emptier part, then the
    lower number; a node that fits nowhere goes to the emptiest part. With both capacities a greedy pass cannot
    always meet them (a part full of nodes and another full of edges leave later nodes nowhere to fit): on R-MAT
    graphs both balances end near 1.3 (``benchmarks/distributed.py``). Memory: the ``[N]`` assignment and ``[K]``
    counters; the rows are read once, front to back."""
    num_nodes = indptr.shape[0] - 1
    part = np.full(num_nodes, -1, dtype=np.int32)
    nodes = np.zeros(num_parts, dtype=np.int64)
    edges = np.zeros(num_parts, dtype=np.int64)
    counts = np.zeros(num_parts, dtype=np.int64)
    for v in range(num_nodes):
        degree = indptr[v + 1] - indptr[v]
        for e in range(indptr[v], indptr[v + 1]):
            p = part[indices[e]]
            if p >= 0:
                counts[p] += 1
        best = -1
        best_score = -np.inf
        best_fill = np.inf
        emptiest = 0
        emptiest_fill = np.inf
        for p in range(num_parts):
            fill = nodes[p] / node_cap
            if edge_cap > 0:
                fill = max(fill, edges[p] / edge_cap)
            if fill < emptiest_fill:
                emptiest, emptiest_fill = p, fill
            if nodes[p] + 1 > node_cap or (edge_cap > 0 and edges[p] + degree > edge_cap):
                continue
            if fennel:
                score = counts[p] - alpha * gamma * (fill * node_cap) ** (gamma - 1.0)
            else:
                score = counts[p] * (1.0 - fill)
            if best < 0 or score > best_score or (score == best_score and fill < best_fill):
                best, best_score, best_fill = p, score, fill
        if best < 0:
            best = emptiest
        part[v] = best
        nodes[best] += 1
        edges[best] += degree
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
