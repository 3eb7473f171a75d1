"""Numba kernels of the neighbour sampler.

Why numba: sampling touches every sampled edge once and must not loop in Python over nodes; torch has no
"k random in-neighbours of each of these nodes" op. Randomness is counter-based (a splitmix64 hash of the sampler's
seed, the call, the layer and the node), so the result does not depend on how threads share the work: the same
seed gives the same blocks with 1 or 16 threads.
"""

import numpy as np
from numba import njit, prange

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(inline="always", nogil=True, cache=True)
def _mix(x):  # pragma: no cover - compiled
    """splitmix64's finaliser: a well-mixed 64-bit value from ``x``."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(inline="always", nogil=True, cache=True)
def _below(state, bound):  # pragma: no cover - compiled
    """``(new state, a uniform integer in [0, bound))`` (bound >= 1; 53-bit float, bias below 2^-40 here)."""
    state = state + _GOLDEN
    u = (_mix(state) >> np.uint64(11)) * (1.0 / 9007199254740992.0)
    return state, min(np.int64(u * bound), bound - 1)


@njit(nogil=True, cache=True)
def hop_seed(seed, call, layer):  # pragma: no cover - compiled
    """The 64-bit seed of one layer of one ``sample`` call, mixed from the sampler's seed, the call and the layer."""
    value = _mix(np.uint64(seed) + _GOLDEN + np.uint64(call))
    return _mix(value + _GOLDEN + np.uint64(layer))


@njit(parallel=True, nogil=True, cache=True)
def sampled_counts(indptr, frontier, fanout, replace):  # pragma: no cover - compiled
    """How many in-neighbours each frontier node gets: ``min(degree, fanout)``, or ``fanout`` with replacement
    (0 for a node without in-neighbours); ``fanout < 0`` takes all."""
    counts = np.empty(frontier.shape[0], dtype=np.int64)
    for i in prange(frontier.shape[0]):
        degree = indptr[frontier[i] + 1] - indptr[frontier[i]]
        if fanout < 0 or (degree <= fanout and not replace):
            counts[i] = degree
        elif degree == 0:
            counts[i] = 0
        else:
            counts[i] = fanout
    return counts


@njit(parallel=True, nogil=True, cache=True)
def sample_neighbours(indptr, indices, frontier, offsets, fanout, replace, seed):  # pragma: no cover - compiled
    """The global ids of the sampled in-neighbours of each frontier node, node ``i``'s in
    ``out[offsets[i]:offsets[i + 1]]``: all of them when there are at most ``fanout`` (or ``fanout < 0``), else
    ``fanout`` drawn uniformly without replacement (Floyd's algorithm, in increasing position) or with replacement."""
    out = np.empty(offsets[-1], dtype=indices.dtype)
    for i in prange(frontier.shape[0]):
        node = frontier[i]
        start = indptr[node]
        degree = indptr[node + 1] - start
        first, count = offsets[i], offsets[i + 1] - offsets[i]
        if count == degree and not (replace and fanout >= 0):
            for k in range(count):
                out[first + k] = indices[start + k]
            continue
        state = _mix(np.uint64(seed) ^ _mix(np.uint64(node) + _GOLDEN))
        if replace:
            for k in range(count):
                state, pick = _below(state, degree)
                out[first + k] = indices[start + pick]
            continue
        # Floyd: for j = degree - count .. degree - 1 draw t in [0, j]; take t unless taken, else j
        chosen = np.empty(count, dtype=np.int64)
        for k in range(count):
            j = degree - count + k
            state, t = _below(state, j + 1)
            for m in range(k):
                if chosen[m] == t:
                    t = j
                    break
            chosen[k] = t
        chosen.sort()
        for k in range(count):
            out[first + k] = indices[start + chosen[k]]
    return out


@njit(nogil=True, cache=True)
def relabel(frontier, picks, position):  # pragma: no cover - compiled
    """Local ids: the frontier nodes are 0..F-1 in order, then each new node of ``picks`` in order of first
    appearance. Returns ``(sources, local picks)``; ``position`` (one int64 per graph node, all -1) is used as a
    lookup table and left all -1 again."""
    sources = np.empty(frontier.shape[0] + picks.shape[0], dtype=np.int64)
    count = 0
    for i in range(frontier.shape[0]):
        position[frontier[i]] = count
        sources[count] = frontier[i]
        count += 1
    local = np.empty(picks.shape[0], dtype=np.int64)
    for k in range(picks.shape[0]):
        node = picks[k]
        if position[node] < 0:
            position[node] = count
            sources[count] = node
            count += 1
        local[k] = position[node]
    for i in range(count):
        position[sources[i]] = -1
    return sources[:count].copy(), local


@njit(nogil=True, cache=True)
def count_self_loops(indptr, indices):  # pragma: no cover - compiled
    """``[N]`` int64: the number of entries ``i -> i`` in each row of a CSC pattern (O(N + E) time, O(N) memory)."""
    loops = np.zeros(indptr.shape[0] - 1, dtype=np.int64)
    for i in range(indptr.shape[0] - 1):
        for e in range(indptr[i], indptr[i + 1]):
            if indices[e] == i:
                loops[i] += 1
    return loops


@njit(nogil=True, cache=True)
def scatter_edges(src, dst, cursor, indices):  # pragma: no cover - compiled
    """Place each edge's source at its target's next free slot: ``indices[cursor[dst[e]]] = src[e]``."""
    for e in range(src.shape[0]):
        slot = cursor[dst[e]]
        indices[slot] = src[e]
        cursor[dst[e]] = slot + 1


@njit(nogil=True, cache=True)
def add_in_degrees(dst, counts):  # pragma: no cover - compiled
    """``counts[dst[e] + 1] += 1`` for every edge (the first counting pass of the streaming builder)."""
    for e in range(dst.shape[0]):
        counts[dst[e] + 1] += 1


@njit(parallel=True, nogil=True, cache=True)
def sort_rows(indptr, indices, dedupe):  # pragma: no cover - compiled
    """Sort each row's entries in place (rows in parallel); ``[N]`` int64: how many distinct values each row
    holds with ``dedupe``, else its length."""
    kept = np.empty(indptr.shape[0] - 1, dtype=np.int64)
    for i in prange(indptr.shape[0] - 1):
        row = indices[indptr[i]:indptr[i + 1]]
        row.sort()
        count = row.shape[0]
        if dedupe:
            for k in range(1, row.shape[0]):
                if row[k] == row[k - 1]:
                    count -= 1
        kept[i] = count
    return kept


@njit(nogil=True, cache=True)
def compact_unique_rows(indptr, indices):  # pragma: no cover - compiled
    """Keep each value of each sorted row once, moving the rows to the front of ``indices``; returns the new
    ``indptr``."""
    out = np.empty_like(indptr)
    out[0] = 0
    write = 0
    for i in range(indptr.shape[0] - 1):
        row_start = write
        for k in range(indptr[i], indptr[i + 1]):
            value = indices[k]
            if write > row_start and indices[write - 1] == value:
                continue
            indices[write] = value
            write += 1
        out[i + 1] = write
    return out
