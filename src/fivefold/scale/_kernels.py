"""Numba kernels of the neighbour sampler.

Why numba: sampling touches every sampled edge once and must not loop in Python over nodes; torch has no
"k random in-neighbours of each of these nodes" op. Randomness is counter-based (a splitmix64 hash of the sampler's
seed, the call, the layer and the node), so the result does not depend on how threads share the work: the same
seed gives the same blocks with 1 or 16 threads.
"""

import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba import njit, prange
from numba.core import cgutils, types
from numba.extending import intrinsic

from fivefold.ops.hashing import GOLDEN as _GOLDEN
from fivefold.ops.hashing import mix as _mix

_AHEAD = 16  # how many iterations ahead the kernels prefetch their random reads
# LLVM names its prefetch intrinsic by pointer type: "p0" with opaque pointers (LLVM >= 17), "p0i8" before
_PREFETCH_NAME = "llvm.prefetch.p0" if llvm.llvm_version_info[0] >= 17 else "llvm.prefetch.p0i8"


@intrinsic
def _prefetch(typingctx, array, index):  # pragma: no cover - compiled
    """Ask the CPU to start loading ``array[index]`` into cache (LLVM's prefetch; a hint, never a fault).

    Sampling is bound by memory latency: every sampled edge reads a random place of ``indices``. Issuing the reads
    some iterations ahead lets many of them be in flight at once instead of one after another."""
    signature = types.void(array, index)

    def codegen(context, builder, sig, args):
        array_type = sig.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        index = context.cast(builder, args[1], sig.args[1], types.intp)
        pointer = cgutils.get_item_pointer(context, builder, array_type, view, [index], wraparound=False)
        byte_pointer = builder.bitcast(pointer, ir.IntType(8).as_pointer())
        int32 = ir.IntType(32)
        prototype = ir.FunctionType(ir.VoidType(), [byte_pointer.type, int32, int32, int32])
        function = cgutils.get_or_insert_function(builder.module, prototype, _PREFETCH_NAME)
        builder.call(function, [byte_pointer, ir.Constant(int32, 0), ir.Constant(int32, 3), ir.Constant(int32, 1)])
        return context.get_dummy_value()

    return signature, codegen


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
        if i + _AHEAD < frontier.shape[0]:
            _prefetch(indptr, frontier[i + _AHEAD])
        degree = indptr[frontier[i] + 1] - indptr[frontier[i]]
        if fanout < 0 or (degree <= fanout and not replace):
            counts[i] = degree
        elif degree == 0:
            counts[i] = 0
        else:
            counts[i] = fanout
    return counts


@njit(parallel=True, nogil=True, cache=True)
def sample_neighbours(indptr, indices, frontier, offsets, fanout, replace, seed, keys):  # pragma: no cover
    """The global ids (int64) of the sampled in-neighbours of each frontier node, node ``i``'s in
    ``out[offsets[i]:offsets[i + 1]]``: all of them when there are at most ``fanout`` (or ``fanout < 0``), else
    ``fanout`` drawn uniformly without replacement (Floyd's algorithm, in increasing position) or with replacement.

    ``frontier`` holds row numbers of ``indptr``; ``keys[i]`` is the id that seeds row ``frontier[i]``'s random
    numbers: the node's global id, which equals its row in a whole graph but not in a partition (``keys`` is
    ``frontier`` there). So the owner of a node in a partitioned graph draws the same neighbours as a sampler over
    the whole graph.

    Two passes, both parallel: the first picks positions in ``indices`` for every node (reading only ``indptr``),
    the second reads ``indices`` at all positions in one flat loop, where the random reads overlap (with
    prefetching) instead of waiting for each other inside each node's work."""
    out = np.empty(offsets[-1], dtype=np.int64)
    for i in prange(frontier.shape[0]):
        if i + _AHEAD < frontier.shape[0]:
            _prefetch(indptr, frontier[i + _AHEAD])
        node = frontier[i]
        start = indptr[node]
        degree = indptr[node + 1] - start
        first, count = offsets[i], offsets[i + 1] - offsets[i]
        if count == degree and not (replace and fanout >= 0):
            for k in range(count):
                out[first + k] = start + k
            continue
        state = _mix(np.uint64(seed) ^ _mix(np.uint64(keys[i]) + _GOLDEN))
        if replace:
            for k in range(count):
                state, pick = _below(state, degree)
                out[first + k] = start + pick
            continue
        # Floyd: for j = degree - count .. degree - 1 draw t in [0, j]; take t unless taken, else j (larger than
        # everything taken so far). The taken positions are kept sorted by insertion, so the check stops early.
        for k in range(count):
            j = degree - count + k
            state, t = _below(state, j + 1)
            m = first + k
            while m > first and out[m - 1] > t:
                m -= 1
            if m > first and out[m - 1] == t:
                out[first + k] = j
                continue
            for q in range(first + k, m, -1):
                out[q] = out[q - 1]
            out[m] = t
        for k in range(first, first + count):
            out[k] += start
    total = out.shape[0]
    for e in prange(total):
        if e + _AHEAD < total:
            _prefetch(indices, out[e + _AHEAD])
        out[e] = indices[out[e]]
    return out


@njit(nogil=True, cache=True)
def relabel(frontier, picks, table):  # pragma: no cover - compiled
    """Local ids: the frontier nodes are 0..F-1 in order, then each new node of ``picks`` in order of first
    appearance. Returns ``(sources, local picks)``.

    The global -> local map is an open-addressing hash table sized to the batch, not a table over all N nodes: it
    stays in cache and costs no memory that grows with the graph. ``table`` is ``[capacity, 2]`` (node, local id),
    all -1, with ``capacity`` a power of two at least twice the entries (``table_capacity``); int32 when the node
    ids fit, which halves its size. Serial: a version filling one range of the table per thread was slower (its
    extra passes cost more than the second thread saved)."""
    entries = frontier.shape[0] + picks.shape[0]
    capacity = table.shape[0]
    mask = np.uint64(capacity - 1)
    sources = np.empty(entries, dtype=np.int64)
    count = 0
    local = np.empty(picks.shape[0], dtype=np.int64)
    for k in range(entries):
        ahead = k + _AHEAD
        if ahead < entries:
            upcoming = frontier[ahead] if ahead < frontier.shape[0] else picks[ahead - frontier.shape[0]]
            _prefetch(table, np.int64(_mix(np.uint64(upcoming)) & mask))
        node = frontier[k] if k < frontier.shape[0] else picks[k - frontier.shape[0]]
        slot = np.int64(_mix(np.uint64(node)) & mask)
        while table[slot, 0] != -1 and table[slot, 0] != node:
            slot = (slot + 1) & (capacity - 1)
        if table[slot, 0] == -1:
            table[slot, 0] = node
            table[slot, 1] = count
            sources[count] = node
            count += 1
        if k >= frontier.shape[0]:
            local[k - frontier.shape[0]] = table[slot, 1]
    return sources[:count].copy(), local


def table_capacity(entries: int) -> int:
    """The hash table size ``relabel`` needs for ``entries`` nodes: a power of two >= 2 * entries (at least 16)."""
    return max(16, 1 << (2 * max(entries, 1) - 1).bit_length())


@njit(parallel=True, nogil=True, cache=True)
def gather_degrees(sources, degree, loops, any_loops):  # pragma: no cover - compiled
    """``(degree[sources], loops[sources])`` (loops all zero without reading them when ``any_loops`` is False)."""
    source_degree = np.empty(sources.shape[0], dtype=np.int64)
    source_loops = np.zeros(sources.shape[0], dtype=np.int64)
    for i in prange(sources.shape[0]):
        if i + _AHEAD < sources.shape[0]:
            _prefetch(degree, sources[i + _AHEAD])
            if any_loops:
                _prefetch(loops, sources[i + _AHEAD])
        source_degree[i] = degree[sources[i]]
        if any_loops:
            source_loops[i] = loops[sources[i]]
    return source_degree, source_loops


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
def scatter_edges(src, dst, cursor, indices, indptr):  # pragma: no cover - compiled
    """Place each edge's source at its target's next free slot: ``indices[cursor[dst[e]]] = src[e]``. Returns
    False, writing nothing more, as soon as a target has more edges than its row (``indptr``) holds (a second pass
    that differs from the first), so it never writes outside the row."""
    for e in range(src.shape[0]):
        slot = cursor[dst[e]]
        if slot >= indptr[dst[e] + 1]:
            return False
        indices[slot] = src[e]
        cursor[dst[e]] = slot + 1
    return True


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


@njit(parallel=True, nogil=True, cache=True)
def keyed_mask(ids, width, key, threshold, scale, out):  # pragma: no cover - compiled
    """Fill ``out [n, width]`` with ``scale`` where the top 32 bits of a hash of ``(key, ids[i], f)`` reach
    ``threshold`` (``p * 2^32`` drops a share ``p``), else 0: a dropout mask. One splitmix64 round per row, one per
    entry."""
    for i in prange(ids.shape[0]):
        state = _mix(np.uint64(key) ^ _mix(np.uint64(ids[i]) + _GOLDEN))
        for f in range(width):
            kept = (_mix(state + np.uint64(f + 1) * _GOLDEN) >> np.uint64(32)) >= threshold
            out[i, f] = scale if kept else 0.0


def draw(indptr, indices, rows, fanout, replace, seed, keys=None):
    """``(offsets [R + 1], picks)``: the sampled in-neighbours of ``rows`` (``sampled_counts`` then
    ``sample_neighbours``), row ``i``'s in ``picks[offsets[i]:offsets[i + 1]]``; ``keys`` (default ``rows``) seed
    each row's random numbers."""
    counts = sampled_counts(indptr, rows, fanout, replace)
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    picks = sample_neighbours(indptr, indices, rows, offsets, fanout, replace, np.uint64(seed),
                              rows if keys is None else keys)
    return offsets, picks


def relabelled(frontier, picks, id_dtype):
    """``relabel`` with a fresh hash table of the right size (``id_dtype``: int32 when the node ids fit)."""
    table = np.full((table_capacity(len(frontier) + len(picks)), 2), -1, dtype=id_dtype)
    return relabel(frontier, picks, table)
