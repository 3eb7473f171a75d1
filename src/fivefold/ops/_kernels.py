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
from llvmlite import ir
from numba import njit, prange
from numba import types as nb
from numba.core import cgutils
from numba.extending import intrinsic

# --- explicit short-vector updates (numba intrinsics that emit LLVM vector code) ---
#
# Why: a kernel that updates a few channels at a time (``out[i, g, :] += v * x[j, p, :]`` for 16 channels, once per
# edge and term) is compiled by numba's loop vectorizer into a loop it guards with run-time alias checks between
# ``out`` and ``x`` and whose wide body needs 32 or 64 channels, so 16 channels run in a 4- or 8-lane epilogue after
# the checks (seen in the assembly of ``spmm_terms``). These helpers load, update and store one 32-byte vector
# (8 float32 or 4 float64 lanes; LLVM splits or widens it for any x86 or ARM target) with no checks: on GEM-CNN's
# moments over a 6.7e3-vertex mesh (16 channels) the kernel took 1.45 ms with them against 2.36 ms without
# (a scratch measurement, same machine, the same arithmetic in the same order, identical results).
#
# The ``gather_*`` forms sum a row's entries into one vector held in registers and store it once (the forward
# moments: 0.81 ms against 1.39 ms for the per-entry updates above, same scratch measurement); they read ``x`` and
# write ``out``, which must not overlap.
#
# They do no bounds checks: ``at + lanes_of(array) <= array.size``, and every index read, is the caller's to keep.
# Arrays are C-contiguous and of one floating dtype with the scalars (``values`` 2-D, the others 1-D).
#
# They live in this file because numba's disk cache of a kernel is keyed by the kernel's own source file: an
# intrinsic in another module could change without the kernels that inline it being compiled again.

VECTOR_BYTES = 32


def _vector_type(context, dtype) -> ir.VectorType:
    return ir.VectorType(context.get_data_type(dtype), VECTOR_BYTES // (dtype.bitwidth // 8))


def _splat(builder, vector_type: ir.VectorType, value):
    undefined = ir.Constant(vector_type, ir.Undefined)
    first = builder.insert_element(undefined, value, ir.Constant(ir.IntType(32), 0))
    zeros = ir.Constant(ir.VectorType(ir.IntType(32), vector_type.count), [0] * vector_type.count)
    return builder.shuffle_vector(first, undefined, zeros)


def _pointer(builder, data, at, vector_type):
    return builder.bitcast(builder.gep(data, [at]), vector_type.as_pointer())


def _vector_pointer(context, builder, array_type, array, at, vector_type):
    return _pointer(builder, context.make_array(array_type)(context, builder, array).data, at, vector_type)


_FAST = ("fast",)


def _multiply_add(builder, total, scale, value):
    """``total + scale * value`` (vectors)."""
    return builder.fadd(total, builder.fmul(scale, value, flags=_FAST), flags=_FAST)


def _rotate_add(builder, total_re, total_im, c, s, real, imaginary):
    """``(total_re + c real - s imaginary, total_im + s real + c imaginary)``: ``(c + i s)(real + i imaginary)``
    added to ``total_re + i total_im`` (vectors)."""
    new_re = builder.fsub(_multiply_add(builder, total_re, c, real), builder.fmul(s, imaginary, flags=_FAST),
                          flags=_FAST)
    return new_re, _multiply_add(builder, _multiply_add(builder, total_im, s, real), c, imaginary)


def _same_float_arrays(arrays, scalars, table=None) -> bool:
    dtypes = {a.dtype for a in arrays} | set(scalars) | ({table.dtype} if table is not None else set())
    return (all(isinstance(a, nb.Array) and a.ndim == 1 and a.layout == "C" for a in arrays) and len(dtypes) == 1
            and isinstance(next(iter(dtypes)), nb.Float)
            and (table is None or (isinstance(table, nb.Array) and table.ndim == 2 and table.layout == "C")))


def _integers(*values) -> bool:
    return all(isinstance(v, nb.Integer) for v in values)


def _intp(context, builder, value, value_type):
    return context.cast(builder, value, value_type, nb.intp)


class _RowEntries:
    """The IR to walk one CSR row inside an intrinsic: ``entries(builder)`` yields the entry ``e`` and the offset of
    its column's row in ``x`` (``indices[e] * row_size``); ``value(builder, e, column)`` reads ``values[e, column]``."""

    def __init__(self, context, builder, indices_type, indices, start, stop, row_size, values_type, values) -> None:
        self.context, self.indices_type = context, indices_type
        self.indices = context.make_array(indices_type)(context, builder, indices).data
        table = context.make_array(values_type)(context, builder, values)
        self.values, self.width = table.data, builder.extract_value(table.shape, 1)
        self.start, self.stop, self.row_size = start, stop, row_size

    def entries(self, builder):
        one = ir.Constant(cgutils.intp_t, 1)
        with cgutils.for_range_slice(builder, self.start, self.stop, one, intp=cgutils.intp_t) as (entry, _):
            column = builder.load(builder.gep(self.indices, [entry]))
            column = self.context.cast(builder, column, self.indices_type.dtype, nb.intp)
            yield entry, builder.mul(column, self.row_size)

    def value(self, builder, entry, column):
        return builder.load(builder.gep(self.values, [builder.add(builder.mul(entry, self.width), column)]))

    @classmethod
    def of(cls, context, builder, kinds, args, at: int, values_at: int) -> "_RowEntries":
        """From an intrinsic's arguments: ``indices, start, stop, row_size`` from position ``at`` on, ``values`` at
        ``values_at``."""
        start, stop, size = (_intp(context, builder, args[at + k], kinds[at + k]) for k in (1, 2, 3))
        return cls(context, builder, kinds[at], args[at], start, stop, size, kinds[values_at], args[values_at])


def _row_gather_types(out, x, indices, values, *integers) -> bool:
    """The argument types a ``gather_*`` intrinsic accepts."""
    return (_same_float_arrays((out, x), (), values) and isinstance(indices, nb.Array) and indices.ndim == 1
            and isinstance(indices.dtype, nb.Integer) and _integers(*integers))


def _load_vector(builder, data, at, vector_type):
    return builder.load(_pointer(builder, data, at, vector_type), align=1)


@intrinsic
def lanes_of(typingctx, array):
    """The number of elements of ``array`` in one vector (8 for float32, 4 for float64)."""
    if not isinstance(array, nb.Array) or not isinstance(array.dtype, nb.Float):
        return None

    def codegen(context, builder, signature, args):
        return ir.Constant(cgutils.intp_t, VECTOR_BYTES // (signature.args[0].dtype.bitwidth // 8))

    return nb.intp(array), codegen


@intrinsic
def add_lanes(typingctx, out, out_at, x, x_at):
    """``out[out_at + l] += x[x_at + l]`` for one vector of lanes ``l``."""
    if not (_same_float_arrays((out, x), ()) and _integers(out_at, x_at)):
        return None

    def codegen(context, builder, signature, args):
        kinds = signature.args
        out_array, at_out, x_array, at_x = args
        vector = _vector_type(context, kinds[0].dtype)
        target = _vector_pointer(context, builder, kinds[0], out_array, _intp(context, builder, at_out, kinds[1]),
                                 vector)
        source = _vector_pointer(context, builder, kinds[2], x_array, _intp(context, builder, at_x, kinds[3]), vector)
        total = builder.fadd(builder.load(target, align=1), builder.load(source, align=1), flags=_FAST)
        builder.store(total, target, align=1)
        return context.get_dummy_value()

    return nb.void(out, out_at, x, x_at), codegen


@intrinsic
def axpy_lanes(typingctx, out, out_at, x, x_at, a):
    """``out[out_at + l] += a * x[x_at + l]`` for one vector of lanes ``l``."""
    if not (_same_float_arrays((out, x), (a,)) and _integers(out_at, x_at)):
        return None

    def codegen(context, builder, signature, args):
        kinds = signature.args
        out_array, at_out, x_array, at_x, scale = args
        vector = _vector_type(context, kinds[0].dtype)
        target = _vector_pointer(context, builder, kinds[0], out_array, _intp(context, builder, at_out, kinds[1]),
                                 vector)
        source = _vector_pointer(context, builder, kinds[2], x_array, _intp(context, builder, at_x, kinds[3]), vector)
        total = _multiply_add(builder, builder.load(target, align=1), _splat(builder, vector, scale),
                              builder.load(source, align=1))
        builder.store(total, target, align=1)
        return context.get_dummy_value()

    return nb.void(out, out_at, x, x_at, a), codegen


@intrinsic
def rotate_lanes(typingctx, out, out_re, out_im, x, x_re, x_im, a, b):
    """The complex product ``(a + i b)(x_re + i x_im)`` added to ``out_re + i out_im``, one vector of lanes ``l``:
    ``out[out_re + l] += a x[x_re + l] - b x[x_im + l]`` and ``out[out_im + l] += b x[x_re + l] + a x[x_im + l]``."""
    if not (_same_float_arrays((out, x), (a, b)) and _integers(out_re, out_im, x_re, x_im)):
        return None

    def codegen(context, builder, signature, args):
        kinds = signature.args
        out_array, at_re, at_im, x_array, from_re, from_im, cos_part, sin_part = args
        at_re, at_im = _intp(context, builder, at_re, kinds[1]), _intp(context, builder, at_im, kinds[2])
        from_re, from_im = _intp(context, builder, from_re, kinds[4]), _intp(context, builder, from_im, kinds[5])
        vector = _vector_type(context, kinds[0].dtype)
        out_type, x_type = kinds[0], kinds[3]
        target_re = _vector_pointer(context, builder, out_type, out_array, at_re, vector)
        target_im = _vector_pointer(context, builder, out_type, out_array, at_im, vector)
        real = builder.load(_vector_pointer(context, builder, x_type, x_array, from_re, vector), align=1)
        imaginary = builder.load(_vector_pointer(context, builder, x_type, x_array, from_im, vector), align=1)
        c, s = _splat(builder, vector, cos_part), _splat(builder, vector, sin_part)
        new_re, new_im = _rotate_add(builder, builder.load(target_re, align=1), builder.load(target_im, align=1), c, s,
                                     real, imaginary)
        builder.store(new_re, target_re, align=1)
        builder.store(new_im, target_im, align=1)
        return context.get_dummy_value()

    return nb.void(out, out_re, out_im, x, x_re, x_im, a, b), codegen


@intrinsic
def gather_axpy_lanes(typingctx, out, out_at, x, indices, start, stop, row_size, x_at, values, column):
    """``out[out_at + l] += sum_{e in [start, stop)} values[e, column] * x[indices[e] * row_size + x_at + l]`` for
    one vector of lanes ``l``, the sum held in registers and stored once."""
    if not _row_gather_types(out, x, indices, values, out_at, start, stop, row_size, x_at, column):
        return None

    def codegen(context, builder, signature, args):
        kinds = signature.args
        vector = _vector_type(context, kinds[0].dtype)
        target = _vector_pointer(context, builder, kinds[0], args[0], _intp(context, builder, args[1], kinds[1]),
                                 vector)
        x_data = context.make_array(kinds[2])(context, builder, args[2]).data
        row = _RowEntries.of(context, builder, kinds, args, 3, 8)
        offset, column = _intp(context, builder, args[7], kinds[7]), _intp(context, builder, args[9], kinds[9])
        total = cgutils.alloca_once_value(builder, builder.load(target, align=1))
        for entry, source in row.entries(builder):
            scale = _splat(builder, vector, row.value(builder, entry, column))
            value = _load_vector(builder, x_data, builder.add(source, offset), vector)
            builder.store(_multiply_add(builder, builder.load(total), scale, value), total)
        builder.store(builder.load(total), target, align=1)
        return context.get_dummy_value()

    return nb.void(out, out_at, x, indices, start, stop, row_size, x_at, values, column), codegen


@intrinsic
def gather_rotate_lanes(typingctx, out, out_re, out_im, x, indices, start, stop, row_size, x_re, x_im, values,
                        column):
    """``rotate_lanes`` summed over a row's entries: with ``(a, b) = values[e, column:column + 2]`` and ``j`` the
    offset ``indices[e] * row_size``, ``out[out_re + l] += sum_e a x[j + x_re + l] - b x[j + x_im + l]`` and
    ``out[out_im + l] += sum_e b x[j + x_re + l] + a x[j + x_im + l]``, both sums held in registers."""
    if not _row_gather_types(out, x, indices, values, out_re, out_im, start, stop, row_size, x_re, x_im, column):
        return None

    def codegen(context, builder, signature, args):
        kinds = signature.args
        vector = _vector_type(context, kinds[0].dtype)
        target_re, target_im = (_vector_pointer(context, builder, kinds[0], args[0],
                                                _intp(context, builder, args[k], kinds[k]), vector) for k in (1, 2))
        x_data = context.make_array(kinds[3])(context, builder, args[3]).data
        row = _RowEntries.of(context, builder, kinds, args, 4, 10)
        offset_re, offset_im, column = (_intp(context, builder, args[k], kinds[k]) for k in (8, 9, 11))
        next_column = builder.add(column, ir.Constant(cgutils.intp_t, 1))
        total_re = cgutils.alloca_once_value(builder, builder.load(target_re, align=1))
        total_im = cgutils.alloca_once_value(builder, builder.load(target_im, align=1))
        for entry, source in row.entries(builder):
            real = _load_vector(builder, x_data, builder.add(source, offset_re), vector)
            imaginary = _load_vector(builder, x_data, builder.add(source, offset_im), vector)
            c = _splat(builder, vector, row.value(builder, entry, column))
            s = _splat(builder, vector, row.value(builder, entry, next_column))
            new_re, new_im = _rotate_add(builder, builder.load(total_re), builder.load(total_im), c, s, real,
                                         imaginary)
            builder.store(new_re, total_re)
            builder.store(new_im, total_im)
        builder.store(builder.load(total_re), target_re, align=1)
        builder.store(builder.load(total_im), target_im, align=1)
        return context.get_dummy_value()

    return (nb.void(out, out_re, out_im, x, indices, start, stop, row_size, x_re, x_im, values, column),
            codegen)


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


@njit(fastmath=True, cache=True, nogil=True)
def _add_channels(out, at, x, read, channels, lanes):  # pragma: no cover - compiled
    """out[at + c] += x[read + c] for c < channels: whole vectors of ``lanes``, then one by one."""
    full = channels - channels % lanes
    for c in range(0, full, lanes):
        add_lanes(out, at + c, x, read + c)
    for c in range(full, channels):
        out[at + c] += x[read + c]


def _spmm_terms(indptr, indices, values, term_group, term_part, rotation, own_group, own_part, row0, x, out):
    """out[i, term_group[t], c] += values[e, t] * x[indices[e], term_part[t], c] for every entry e of row i and every
    term t; for every rotation q, ``(gr, gi, pr, pi) = rotation[q]`` and ``(a, b)`` the entry's values in columns
    ``T + 2q`` and ``T + 2q + 1``, the complex product (a + i b)(x[j, pr] + i x[j, pi]):
    out[i, gr, c] += a x[j, pr, c] - b x[j, pi, c] and out[i, gi, c] += b x[j, pr, c] + a x[j, pi, c]; and
    out[i, own_group[s], c] += x[row0 + i, own_part[s], c] (the row's own components; ``row0`` is the first row of
    this block of rows). A rotation is four terms that read two values and two components once. Each term's sum over
    the row's entries is formed a vector of channels at a time in registers (the helpers above), the last
    ``C mod lanes`` channels one by one; x and out must be C-contiguous and must not overlap."""
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
            _add_channels(out_flat, row + own_group[s] * channels, x_flat, own + own_part[s] * channels, channels,
                          lanes)
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
            _add_channels(out_flat, own + own_part[s] * channels, grad_flat, row + own_group[s] * channels, channels,
                          lanes)
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
