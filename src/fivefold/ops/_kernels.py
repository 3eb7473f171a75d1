"""Numba kernels for CSR sparse x dense products (SpMM) and sampled dense-dense products (SDDMM).

Why our own kernels rather than ``torch.sparse.mm``: message passing needs the multi-head form (one edge weight per
head, features ``[N, H, C]``) and the SDDMM that gives the gradient of the edge weights, neither of which torch offers
on the CPU without materialising an ``[E, H, C]`` tensor; a row-parallel numba loop reads each source row once and
writes each output row once. Kernels do no bounds checks: callers validate indices first (see ``fivefold.ops.sparse``).

Each product is compiled twice: row-parallel for large inputs, and serial for small ones, where waking the thread
pool costs more than the work (a Cora-sized graph). Both builds are cached on disk (numba's ``cache=True``), so a
new process loads them instead of compiling again.
"""

import types

import numpy as np
from numba import njit, prange

from fivefold.ops._lanes import (
    add_lanes,
    axpy_lanes,
    gather_axpy_lanes,
    gather_rotate_lanes,
    lanes_of,
    rotate_lanes,
)


def _spmm_sum(indptr, indices, x, out):  # pragma: no cover - compiled
    """out[i, h, c] = sum_{e in row i} x[indices[e], h, c]."""
    num_rows = indptr.shape[0] - 1
    heads = x.shape[1]
    channels = x.shape[2]
    for i in prange(num_rows):
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            for h in range(heads):
                for c in range(channels):
                    out[i, h, c] += x[j, h, c]


def _spmm_weighted(indptr, indices, values, x, out):  # pragma: no cover - compiled
    """out[i, h, c] = sum_{e in row i} values[e, h] * x[indices[e], h, c]."""
    num_rows = indptr.shape[0] - 1
    heads = x.shape[1]
    channels = x.shape[2]
    for i in prange(num_rows):
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            for h in range(heads):
                v = values[e, h]
                for c in range(channels):
                    out[i, h, c] += v * x[j, h, c]


def _sddmm(indptr, indices, a, b, out):  # pragma: no cover - compiled
    """out[e, h] = sum_c a[i, h, c] * b[indices[e], h, c] for every entry e of row i."""
    num_rows = indptr.shape[0] - 1
    heads = a.shape[1]
    channels = a.shape[2]
    for i in prange(num_rows):
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            for h in range(heads):
                acc = 0.0
                for c in range(channels):
                    acc += a[i, h, c] * b[j, h, c]
                out[e, h] = acc


def _spmm_mix(indptr, indices, values, x, out):  # pragma: no cover - compiled
    """out[i, h, c] = sum_{e in row i} sum_p values[e, h, p] * x[indices[e], p, c]: each entry applies a small
    ``[H, P]`` matrix to its source's ``[P, C]`` block, read once for all ``H`` outputs."""
    num_rows = indptr.shape[0] - 1
    heads, parts, channels = values.shape[1], values.shape[2], x.shape[2]
    for i in prange(num_rows):
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            for h in range(heads):
                for p in range(parts):
                    v = values[e, h, p]
                    for c in range(channels):
                        out[i, h, c] += v * x[j, p, c]


def _spmm_mix_transposed(indptr, indices, perm, values, x, out):  # pragma: no cover - compiled
    """out[j, p, c] = sum_{e' in row j} sum_h values[perm[e'], h, p] * x[indices[e'], h, c] on the transposed
    pattern (``perm`` maps its entries to the original's): the gradient of ``_spmm_mix``'s ``x``, reading each
    entry's ``[H, P]`` matrix in place instead of a permuted, transposed copy of all of them."""
    num_rows = indptr.shape[0] - 1
    heads, parts, channels = values.shape[1], values.shape[2], x.shape[2]
    for j in prange(num_rows):
        for e in range(indptr[j], indptr[j + 1]):
            i = indices[e]
            k = perm[e]
            for h in range(heads):
                for p in range(parts):
                    v = values[k, h, p]
                    for c in range(channels):
                        out[j, p, c] += v * x[i, h, c]


def _spmm_mix_scatter(indptr, indices, values, x, out):  # pragma: no cover - compiled
    """out[indices[e], p, c] += sum_h values[e, h, p] * x[i, h, c] for every entry e of row i: ``_spmm_mix``'s
    gradient in its ``x`` on the original pattern, each entry read in order and its target row updated in place. One
    random access per entry (the transposed product has two: the source row and the entry's matrix through
    ``perm``), but rows written by several entries rule out a row-parallel loop: the serial build only."""
    num_rows = indptr.shape[0] - 1
    heads, parts, channels = values.shape[1], values.shape[2], x.shape[2]
    for i in range(num_rows):
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            for h in range(heads):
                for p in range(parts):
                    v = values[e, h, p]
                    for c in range(channels):
                        out[j, p, c] += v * x[i, h, c]


def _sddmm_mix(indptr, indices, a, b, out):  # pragma: no cover - compiled
    """out[e, h, p] = sum_c a[i, h, c] * b[indices[e], p, c] for every entry e of row i (the gradient of
    ``_spmm_mix``'s values)."""
    num_rows = indptr.shape[0] - 1
    heads, parts, channels = a.shape[1], b.shape[1], a.shape[2]
    for i in prange(num_rows):
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            for h in range(heads):
                for p in range(parts):
                    acc = 0.0
                    for c in range(channels):
                        acc += a[i, h, c] * b[j, p, c]
                    out[e, h, p] = acc


def _spmm_terms(indptr, indices, values, term_group, term_part, rotation, own_group, own_part, row0, x, out):
    """out[i, term_group[t], c] += values[e, t] * x[indices[e], term_part[t], c] for every entry e of row i and every
    term t; for every rotation q, ``(gr, gi, pr, pi) = rotation[q]`` and ``(a, b)`` the entry's values in columns
    ``T + 2q`` and ``T + 2q + 1``, the complex product (a + i b)(x[j, pr] + i x[j, pi]):
    out[i, gr, c] += a x[j, pr, c] - b x[j, pi, c] and out[i, gi, c] += b x[j, pr, c] + a x[j, pi, c]; and
    out[i, own_group[s], c] += x[row0 + i, own_part[s], c] (the row's own components; ``row0`` is the first row of
    this block of rows). A rotation is four terms that read two values and two components once. Each term's sum over
    the row's entries is formed a vector of channels at a time in registers (``_lanes``), the last ``C mod lanes``
    channels one by one; x and out must be C-contiguous and must not overlap."""
    num_rows = indptr.shape[0] - 1
    terms, rotations, owns = term_group.shape[0], rotation.shape[0], own_group.shape[0]
    parts, channels, groups = x.shape[1], x.shape[2], out.shape[1]
    x_flat, out_flat = x.reshape(-1), out.reshape(-1)
    lanes = lanes_of(x_flat)
    full = channels - channels % lanes
    row_size = parts * channels
    for i in range(num_rows):
        row = i * groups * channels
        own = (row0 + i) * row_size
        for s in range(owns):
            target = row + own_group[s] * channels
            read = own + own_part[s] * channels
            for c in range(0, full, lanes):
                add_lanes(out_flat, target + c, x_flat, read + c)
            for c in range(full, channels):
                out_flat[target + c] += x_flat[read + c]
        first, last = indptr[i], indptr[i + 1]
        for t in range(terms):
            target = row + term_group[t] * channels
            read = term_part[t] * channels
            for c in range(0, full, lanes):
                gather_axpy_lanes(out_flat, target + c, x_flat, indices, first, last, row_size, read + c, values, t)
            for c in range(full, channels):
                for e in range(first, last):
                    out_flat[target + c] += values[e, t] * x_flat[indices[e] * row_size + read + c]
        for q in range(rotations):
            target_re, target_im = row + rotation[q, 0] * channels, row + rotation[q, 1] * channels
            read_re, read_im = rotation[q, 2] * channels, rotation[q, 3] * channels
            column = terms + 2 * q
            for c in range(0, full, lanes):
                gather_rotate_lanes(out_flat, target_re + c, target_im + c, x_flat, indices, first, last, row_size,
                                    read_re + c, read_im + c, values, column)
            for c in range(full, channels):
                for e in range(first, last):
                    a = values[e, column]
                    b = values[e, column + 1]
                    source = indices[e] * row_size
                    real = x_flat[source + read_re + c]
                    imaginary = x_flat[source + read_im + c]
                    out_flat[target_re + c] += a * real - b * imaginary
                    out_flat[target_im + c] += b * real + a * imaginary


def _spmm_terms_scatter(indptr, indices, values, term_group, term_part, rotation, own_group, own_part, row0, grad,
                        out):
    """``_spmm_terms``'s gradient in ``x`` for one block of rows, scattered over the original pattern:
    out[row0 + i, own_part[s], c] += grad[i, own_group[s], c], out[indices[e], term_part[t], c] +=
    values[e, t] * grad[i, term_group[t], c], and for each rotation the conjugate product,
    out[j, pr, c] += a grad[i, gr, c] + b grad[i, gi, c] and out[j, pi, c] += a grad[i, gi, c] - b grad[i, gr, c]
    (the product by ``a - i b``). Rows written by several entries: the serial build only."""
    num_rows = indptr.shape[0] - 1
    terms, rotations, owns = term_group.shape[0], rotation.shape[0], own_group.shape[0]
    parts, channels, groups = out.shape[1], out.shape[2], grad.shape[1]
    grad_flat, out_flat = grad.reshape(-1), out.reshape(-1)
    lanes = lanes_of(out_flat)
    full = channels - channels % lanes
    for i in range(num_rows):
        row = i * groups * channels
        own = (row0 + i) * parts * channels
        for s in range(owns):
            target = own + own_part[s] * channels
            read = row + own_group[s] * channels
            for c in range(0, full, lanes):
                add_lanes(out_flat, target + c, grad_flat, read + c)
            for c in range(full, channels):
                out_flat[target + c] += grad_flat[read + c]
        for e in range(indptr[i], indptr[i + 1]):
            source = indices[e] * parts * channels
            for t in range(terms):
                v = values[e, t]
                target = source + term_part[t] * channels
                read = row + term_group[t] * channels
                for c in range(0, full, lanes):
                    axpy_lanes(out_flat, target + c, grad_flat, read + c, v)
                for c in range(full, channels):
                    out_flat[target + c] += v * grad_flat[read + c]
            for q in range(rotations):
                a = values[e, terms + 2 * q]
                b = -values[e, terms + 2 * q + 1]
                read_re, read_im = row + rotation[q, 0] * channels, row + rotation[q, 1] * channels
                target_re, target_im = source + rotation[q, 2] * channels, source + rotation[q, 3] * channels
                for c in range(0, full, lanes):
                    rotate_lanes(out_flat, target_re + c, target_im + c, grad_flat, read_re + c, read_im + c, a, b)
                for c in range(full, channels):
                    real = grad_flat[read_re + c]
                    imaginary = grad_flat[read_im + c]
                    out_flat[target_re + c] += a * real - b * imaginary
                    out_flat[target_im + c] += b * real + a * imaginary


_parallel = njit(parallel=True, fastmath=True, cache=True, nogil=True)
_serial_jit = njit(fastmath=True, cache=True, nogil=True)


def _serial(kernel):
    """The serial build, cached on disk like the parallel one. Numba's disk cache is keyed by the function's
    qualified name (and file), so the serial build compiles a renamed copy of the kernel (same code, qualified name
    ``<name>_serial``); compiling ``kernel`` itself would share one cache entry between the two builds."""
    copy = types.FunctionType(kernel.__code__, kernel.__globals__, f"{kernel.__name__}_serial")
    copy.__qualname__ = f"{kernel.__qualname__}_serial"
    copy.__module__ = kernel.__module__
    copy.__doc__ = kernel.__doc__
    return _serial_jit(copy)


spmm_sum, spmm_sum_serial = _parallel(_spmm_sum), _serial(_spmm_sum)
spmm_weighted, spmm_weighted_serial = _parallel(_spmm_weighted), _serial(_spmm_weighted)
sddmm, sddmm_serial = _parallel(_sddmm), _serial(_sddmm)
spmm_mix, spmm_mix_serial = _parallel(_spmm_mix), _serial(_spmm_mix)
sddmm_mix, sddmm_mix_serial = _parallel(_sddmm_mix), _serial(_sddmm_mix)
spmm_mix_transposed = _parallel(_spmm_mix_transposed)  # one thread: spmm_mix_scatter_serial
spmm_mix_scatter_serial = _serial(_spmm_mix_scatter)
# spmm_terms_linear runs these on blocks of rows, several blocks at a time on several threads: serial builds only
spmm_terms_serial = _serial(_spmm_terms)
spmm_terms_scatter_serial = _serial(_spmm_terms_scatter)


@njit(cache=True, nogil=True)
def counting_sort_perm(keys, num_keys):  # pragma: no cover - compiled
    """Stable permutation sorting ``keys`` (ints in [0, num_keys)) and the CSR pointer of the sorted keys."""
    counts = np.zeros(num_keys + 1, dtype=np.int64)
    for k in keys:
        counts[k + 1] += 1
    for i in range(num_keys):
        counts[i + 1] += counts[i]
    indptr = counts.copy()
    fill = counts[:-1].copy()
    perm = np.empty(keys.shape[0], dtype=np.int64)
    for e in range(keys.shape[0]):
        k = keys[e]
        perm[fill[k]] = e
        fill[k] += 1
    return perm, indptr
