"""Compressed sparse row (CSR) adjacency and the products message passing is built from.

``CSR`` stores a sparse ``[num_rows, num_cols]`` pattern: row ``i``'s entries are ``indices[indptr[i]:indptr[i+1]]``.
In message passing a row is a *target* node and its entries are the *source* nodes of its incoming edges, so
``spmm(csr, x, values)`` is the aggregation ``out_i = sum_{j -> i} w_ij x_j``.

``spmm`` has its own autograd rule: the gradient with respect to ``x`` is a product with the cached transpose (no
transpose is formed per backward pass), and the gradient with respect to the edge weights is an SDDMM
(``grad_w_ij = <grad_out_i, x_j>``), computed without materialising a per-edge feature tensor. On the CPU both run as
numba kernels (``fivefold.ops._kernels``); on other devices the same maths runs as torch gather/index_add ops.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from fivefold.errors import OpsError
from fivefold.ops import _kernels
from fivefold.ops.threads import sync_numba_threads

__all__ = ["CSR", "spmm", "spmm_mix", "spmm_terms_linear", "sddmm"]

# below this many multiply-adds a product runs on one thread (thread start-up would dominate)
PARALLEL_THRESHOLD = 1 << 18


def _parallel(work: int) -> bool:
    """Whether a product of ``work`` multiply-adds runs on numba's threads: torch's thread count of them
    (``fivefold.ops.threads``), serially when that is 1."""
    return work >= PARALLEL_THRESHOLD and sync_numba_threads() > 1


class CSR:
    """A sparse pattern in compressed-row form, with the permutation back to the caller's entry order.

    Args:
        indptr: ``[num_rows + 1]`` int64, non-decreasing, ``indptr[0] == 0``, ``indptr[-1] == nnz``.
        indices: ``[nnz]`` int64 column of each entry, in ``[0, num_cols)``.
        perm: ``[nnz]`` int64; entry ``k`` of this CSR is entry ``perm[k]`` of the list it was built from
            (for a graph: the edge id).
        num_cols: number of columns.

    The constructor checks these invariants (an invalid pattern would make the kernels read out of bounds);
    :meth:`from_coo` builds one from (row, col) pairs.
    """

    __slots__ = ("indptr", "indices", "perm", "num_rows", "num_cols", "_rows", "_transpose")

    def __init__(self, indptr: Tensor, indices: Tensor, perm: Tensor, num_cols: int, *, check: bool = True) -> None:
        if check:
            _check_pattern(indptr, indices, perm, num_cols)
        self.indptr = indptr
        self.indices = indices
        self.perm = perm
        self.num_rows = int(indptr.numel()) - 1
        self.num_cols = int(num_cols)
        self._rows: Tensor | None = None
        self._transpose: CSR | None = None

    @classmethod
    def from_coo(cls, row: Tensor, col: Tensor, num_rows: int, num_cols: int) -> CSR:
        """Build from entry coordinates ``row[k], col[k]`` (any order; a stable sort keeps ties in input order).

        Args:
            row: ``[nnz]`` int64 in ``[0, num_rows)``.
            col: ``[nnz]`` int64 in ``[0, num_cols)``.
        """
        if num_rows < 0 or num_cols < 0:
            raise OpsError(f"CSR shape must be non-negative, got ({num_rows}, {num_cols})")
        _check_index(row, num_rows, "row")
        _check_index(col, num_cols, "col")
        if row.numel() != col.numel():
            raise OpsError(f"row and col must have the same length, got {row.numel()} and {col.numel()}")
        return cls._sorted_by_row(row, col, num_rows, num_cols)

    @classmethod
    def _sorted_by_row(cls, row: Tensor, col: Tensor, num_rows: int, num_cols: int) -> CSR:
        """:meth:`from_coo` without the checks, for coordinates already known to be valid."""
        if row.device.type == "cpu":
            perm_np, indptr_np = _kernels.counting_sort_perm(row.numpy(), int(num_rows))
            perm = torch.from_numpy(perm_np)
            indptr = torch.from_numpy(indptr_np)
        else:
            perm = torch.sort(row, stable=True).indices
            counts = torch.bincount(row, minlength=num_rows)
            indptr = torch.zeros(num_rows + 1, dtype=torch.long, device=row.device)
            torch.cumsum(counts, 0, out=indptr[1:])
        return cls(indptr, col[perm].contiguous(), perm, num_cols, check=False)

    @property
    def nnz(self) -> int:
        return int(self.indices.numel())

    @property
    def rows(self) -> Tensor:
        """``[nnz]`` the row of every entry (computed once)."""
        if self._rows is None:
            counts = self.indptr[1:] - self.indptr[:-1]
            self._rows = torch.repeat_interleave(
                torch.arange(self.num_rows, device=self.indptr.device), counts, output_size=self.nnz
            )
        return self._rows

    def degree(self) -> Tensor:
        """``[num_rows]`` number of entries per row."""
        return self.indptr[1:] - self.indptr[:-1]

    def transpose(self) -> CSR:
        """The transposed pattern; its ``perm`` maps into *this* CSR's entry order. Computed once."""
        if self._transpose is None:
            t = CSR._sorted_by_row(self.indices, self.rows, self.num_cols, self.num_rows)
            t._transpose = self
            self._transpose = t
        return self._transpose

    def to(self, device: torch.device | str) -> CSR:
        return CSR(self.indptr.to(device), self.indices.to(device), self.perm.to(device), self.num_cols, check=False)

    def to_torch(self, values: Tensor | None = None) -> Tensor:
        """A ``torch.sparse_csr_tensor`` with these entries (ones where ``values`` is None)."""
        if values is None:
            values = torch.ones(self.nnz, device=self.indices.device)
        return torch.sparse_csr_tensor(self.indptr, self.indices, values, (self.num_rows, self.num_cols))

    def __repr__(self) -> str:
        return f"CSR(shape=({self.num_rows}, {self.num_cols}), nnz={self.nnz})"


def _check_pattern(indptr: Tensor, indices: Tensor, perm: Tensor, num_cols: int) -> None:
    for name, t in (("indptr", indptr), ("indices", indices), ("perm", perm)):
        if not isinstance(t, Tensor) or t.dtype != torch.long or t.dim() != 1:
            raise OpsError(f"CSR {name} must be a 1-D int64 tensor")
    if num_cols < 0:
        raise OpsError(f"CSR needs num_cols >= 0, got {num_cols}")
    _check_indptr(indptr, "CSR indptr")
    nnz = indices.numel()
    if int(indptr[-1]) != nnz:
        raise OpsError(f"CSR indptr must end at nnz = {nnz}, ends at {int(indptr[-1])}")
    if perm.numel() != nnz:
        raise OpsError(f"CSR perm has {perm.numel()} entries, indices has {nnz}")
    _check_index(indices, num_cols, "CSR indices")


def _check_indptr(indptr: Tensor, name: str) -> None:
    """A row pointer: 1-D int64 with at least one entry, starting at 0, non-decreasing."""
    if not isinstance(indptr, Tensor) or indptr.dtype != torch.long or indptr.dim() != 1 or indptr.numel() < 1:
        raise OpsError(f"{name} must be a 1-D int64 tensor with at least one entry")
    if int(indptr[0]) != 0 or bool((indptr[1:] < indptr[:-1]).any()):
        raise OpsError(f"{name} must start at 0 and be non-decreasing")


def _check_index(index: Tensor, size: int, name: str) -> None:
    if not isinstance(index, Tensor):
        raise OpsError(f"{name} must be a torch.Tensor, got {type(index).__name__}")
    if index.dtype != torch.long:
        raise OpsError(f"{name} must be int64, got {index.dtype}")
    if index.dim() != 1:
        raise OpsError(f"{name} must be 1-D, got shape {tuple(index.shape)}")
    if index.numel() == 0:
        return
    bad = (index < 0) | (index >= size)
    if bool(bad.any()):
        pos = int(bad.nonzero()[0, 0])
        raise OpsError(f"{name}[{pos}] = {int(index[pos])} is out of range [0, {size})")


def _as_heads(x: Tensor) -> tuple[Tensor, bool]:
    """View ``[N, F]`` as ``[N, 1, F]``; ``[N, H, C]`` stays. Returns the view and whether it was 2-D."""
    if x.dim() == 2:
        return x.unsqueeze(1), True
    if x.dim() == 3:
        return x, False
    raise OpsError(f"features must be [N, F] or [N, H, C], got shape {tuple(x.shape)}")


def _spmm_forward(csr: CSR, x3: Tensor, values2: Tensor | None) -> Tensor:
    """Raw product on ``[N, H, C]`` features and ``[nnz, H]`` (or no) weights; no autograd."""
    out_shape = (csr.num_rows, x3.shape[1], x3.shape[2])
    if x3.device.type == "cpu" and x3.dtype in (torch.float32, torch.float64):
        if x3.numel() == 0:
            return x3.new_zeros(out_shape)
        out = np.zeros(out_shape, dtype=x3.numpy().dtype)
        xn = x3.contiguous().numpy()
        parallel = _parallel(csr.nnz * x3.shape[1] * x3.shape[2])
        if values2 is None:
            kernel = _kernels.spmm_sum if parallel else _kernels.spmm_sum_serial
            kernel(csr.indptr.numpy(), csr.indices.numpy(), xn, out)
        else:
            kernel = _kernels.spmm_weighted if parallel else _kernels.spmm_weighted_serial
            kernel(
                csr.indptr.numpy(), csr.indices.numpy(), values2.to(x3.dtype).contiguous().numpy(), xn, out
            )
        return torch.from_numpy(out)
    gathered = x3.index_select(0, csr.indices)
    if values2 is not None:
        gathered = gathered * values2.to(x3.dtype).unsqueeze(-1)
    out = x3.new_zeros(out_shape)
    return out.index_add_(0, csr.rows, gathered)


def _sddmm_forward(csr: CSR, a3: Tensor, b3: Tensor) -> Tensor:
    """``out[e, h] = <a[row_e, h], b[col_e, h]>`` on ``[*, H, C]`` inputs; no autograd."""
    if a3.device.type == "cpu" and a3.dtype in (torch.float32, torch.float64):
        out = np.empty((csr.nnz, a3.shape[1]), dtype=a3.detach().numpy().dtype)
        parallel = _parallel(csr.nnz * a3.shape[1] * a3.shape[2])
        (_kernels.sddmm if parallel else _kernels.sddmm_serial)(
            csr.indptr.numpy(), csr.indices.numpy(), a3.contiguous().numpy(), b3.contiguous().numpy(), out
        )
        return torch.from_numpy(out)
    return (a3.index_select(0, csr.rows) * b3.index_select(0, csr.indices)).sum(-1)


class _SpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, csr: CSR, x3: Tensor, values2: Tensor | None) -> Tensor:  # type: ignore[override]
        ctx.csr = csr
        ctx.save_for_backward(x3, values2)
        return _spmm_forward(csr, x3.detach(), None if values2 is None else values2.detach())

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        x3, values2 = ctx.saved_tensors
        csr: CSR = ctx.csr
        grad_out = grad_out.contiguous()
        grad_x = grad_values = None
        if ctx.needs_input_grad[1]:
            t = csr.transpose()
            t_values = None if values2 is None else values2.detach()[t.perm]
            grad_x = _spmm_forward(t, grad_out, t_values)
        if values2 is not None and ctx.needs_input_grad[2]:
            grad_values = _sddmm_forward(csr, grad_out, x3.detach()).to(values2.dtype)
        return None, grad_x, grad_values


def spmm(csr: CSR, x: Tensor, values: Tensor | None = None) -> Tensor:
    """Sparse x dense product: ``out[i] = sum_{e in row i} values[e] * x[indices[e]]``.

    Args:
        csr: the pattern, ``[R, N]``.
        x: ``[N, F]``, or ``[N, H, C]`` for multi-head messages.
        values: ``None`` (all ones), ``[nnz]`` (one weight per entry, shared by heads) or ``[nnz, H]``,
            in the CSR's entry order.

    Returns:
        ``[R, F]`` or ``[R, H, C]``. Differentiable in ``x`` and ``values``.
    """
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise OpsError("spmm: x must be a floating-point tensor")
    x3, was_2d = _as_heads(x)
    if x3.device != csr.indices.device or (values is not None and values.device != x3.device):
        raise OpsError(f"spmm: x, values and the sparse pattern must be on one device (x is on {x3.device})")
    if x3.shape[0] != csr.num_cols:
        raise OpsError(f"spmm: x has {x3.shape[0]} rows but the sparse matrix has {csr.num_cols} columns")
    values2 = None
    if values is not None:
        if values.dim() == 1:
            values2 = values.unsqueeze(-1).expand(-1, x3.shape[1])
        elif values.dim() == 2 and values.shape[1] == x3.shape[1]:
            values2 = values
        else:
            raise OpsError(f"spmm: values must be [nnz] or [nnz, {x3.shape[1]}], got {tuple(values.shape)}")
        if values2.shape[0] != csr.nnz:
            raise OpsError(f"spmm: values has {values2.shape[0]} entries, the sparse matrix has {csr.nnz}")
        if values.dim() == 1:
            values2 = values2.contiguous()
    out = _SpMM.apply(csr, x3.contiguous(), values2)
    return out.squeeze(1) if was_2d else out


def _spmm_mix_forward(csr: CSR, x: Tensor, values: Tensor) -> Tensor:
    """Raw ``spmm_mix`` on ``x [N, P, C]``, ``values [nnz, H, P]``; no autograd."""
    out_shape = (csr.num_rows, values.shape[1], x.shape[2])
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
        out = np.zeros(out_shape, dtype=x.numpy().dtype)
        if x.numel() and values.numel():
            parallel = _parallel(csr.nnz * values.shape[1] * values.shape[2] * x.shape[2])
            (_kernels.spmm_mix if parallel else _kernels.spmm_mix_serial)(
                csr.indptr.numpy(), csr.indices.numpy(), values.to(x.dtype).contiguous().numpy(),
                x.contiguous().numpy(), out)
        return torch.from_numpy(out)
    messages = torch.einsum("ehp,epc->ehc", values.to(x.dtype), x.index_select(0, csr.indices))
    return x.new_zeros(out_shape).index_add_(0, csr.rows, messages)


def _spmm_mix_grad_x(csr: CSR, grad_out: Tensor, values: Tensor, x_shape: torch.Size) -> Tensor:
    """``spmm_mix``'s gradient in ``x`` on the CPU. On several threads the transposed product, row-parallel, each
    entry's ``[H, P]`` matrix read in place through the transpose's ``perm``; on one thread a scatter over the
    original pattern, which reads the entries in order (about 3x faster for GEM-CNN's products on 1e5 vertices, in
    one profile)."""
    out = np.zeros(tuple(x_shape), dtype=grad_out.numpy().dtype)
    if grad_out.numel() and values.numel():
        values = values.to(grad_out.dtype).contiguous().numpy()
        if _parallel(csr.nnz * values.shape[1] * values.shape[2] * x_shape[2]):
            t = csr.transpose()
            _kernels.spmm_mix_transposed(t.indptr.numpy(), t.indices.numpy(), t.perm.numpy(), values,
                                         grad_out.numpy(), out)
        else:
            _kernels.spmm_mix_scatter_serial(csr.indptr.numpy(), csr.indices.numpy(), values, grad_out.numpy(), out)
    return torch.from_numpy(out)


def _sddmm_mix_forward(csr: CSR, a: Tensor, b: Tensor) -> Tensor:
    """``out[e, h, p] = <a[row_e, h], b[col_e, p]>`` on ``a [R, H, C]``, ``b [N, P, C]``; no autograd."""
    if a.device.type == "cpu" and a.dtype in (torch.float32, torch.float64):
        out = np.empty((csr.nnz, a.shape[1], b.shape[1]), dtype=a.numpy().dtype)
        parallel = _parallel(csr.nnz * a.shape[1] * b.shape[1] * a.shape[2])
        (_kernels.sddmm_mix if parallel else _kernels.sddmm_mix_serial)(
            csr.indptr.numpy(), csr.indices.numpy(), a.contiguous().numpy(), b.contiguous().numpy(), out)
        return torch.from_numpy(out)
    return torch.einsum("ehc,epc->ehp", a.index_select(0, csr.rows), b.index_select(0, csr.indices))


class _SpMMMix(torch.autograd.Function):
    @staticmethod
    def forward(ctx, csr: CSR, x: Tensor, values: Tensor) -> Tensor:  # type: ignore[override]
        ctx.csr = csr
        ctx.save_for_backward(x, values)
        return _spmm_mix_forward(csr, x.detach(), values.detach())

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        x, values = ctx.saved_tensors
        csr: CSR = ctx.csr
        grad_out = grad_out.contiguous()
        grad_x = grad_values = None
        if ctx.needs_input_grad[1]:
            # grad_x[j, p] = sum over the entries into j of values[e, :, p]^T grad_out[row_e]
            if grad_out.device.type == "cpu" and grad_out.dtype in (torch.float32, torch.float64):
                grad_x = _spmm_mix_grad_x(csr, grad_out, values.detach(), x.shape)
            else:
                t = csr.transpose()
                grad_x = _spmm_mix_forward(t, grad_out, values.detach()[t.perm].transpose(1, 2))
        if ctx.needs_input_grad[2]:
            grad_values = _sddmm_mix_forward(csr, grad_out, x.detach()).to(values.dtype)
        return None, grad_x, grad_values


def spmm_mix(csr: CSR, x: Tensor, values: Tensor) -> Tensor:
    """Sparse product with a small matrix per entry: ``out[i, h] = sum_{e in row i} sum_p values[e, h, p] *
    x[indices[e], p]``.

    Each source block ``x[j] [P, C]`` is read once per entry and mixed into ``H`` outputs, where ``spmm`` with
    ``H * P`` heads would need the block repeated ``H`` times in memory. GEM-CNN's aggregation is this product: per
    edge, a feature and its quarter turn (``P = 2``) weighted by the kernel's angular terms (``H``).

    Args:
        csr: the pattern, ``[R, N]``.
        x: ``[N, P, C]``.
        values: ``[nnz, H, P]``, in the CSR's entry order.

    Returns:
        ``[R, H, C]``. Differentiable in ``x`` and ``values``.
    """
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() != 3:
        raise OpsError(f"spmm_mix: x must be a floating-point [N, P, C] tensor, got {getattr(x, 'shape', x)}")
    if not isinstance(values, Tensor) or not values.is_floating_point() or values.dim() != 3:
        raise OpsError("spmm_mix: values must be a floating-point [nnz, H, P] tensor")
    if x.device != csr.indices.device or values.device != x.device:
        raise OpsError(f"spmm_mix: x, values and the sparse pattern must be on one device (x is on {x.device})")
    if x.shape[0] != csr.num_cols:
        raise OpsError(f"spmm_mix: x has {x.shape[0]} rows but the sparse matrix has {csr.num_cols} columns")
    if values.shape[0] != csr.nnz or values.shape[2] != x.shape[1]:
        raise OpsError(f"spmm_mix: values must be [nnz={csr.nnz}, H, P={x.shape[1]}], got {tuple(values.shape)}")
    return _SpMMMix.apply(csr, x, values)


# rows per block of ``spmm_terms_linear``: the block's ``[rows, G, C]`` moments (1.6 MB at G C = 192 in float32)
# stay in the caches between the sparse product that writes them and the dense products that read them
TERMS_BLOCK_ROWS = 2048


def _row_blocks(num_rows: int, block_rows: int) -> list[tuple[int, int]]:
    return [(start, min(num_rows, start + block_rows)) for start in range(0, num_rows, block_rows)]


def _block_groups(sizes: list[int]) -> list[tuple[int, int]]:
    ends = np.cumsum([0, *sizes])
    return [(int(ends[b]), int(ends[b + 1])) for b in range(len(sizes))]


_pool: ThreadPoolExecutor | None = None
_pool_workers = 0
_pool_lock = threading.Lock()


def _run_chunks(work, chunks: list[list[int]]) -> list:
    """``[work(chunk) for chunk in chunks]``, the first chunk in the calling thread and the others on a pool of
    threads (the kernels release the GIL, as do torch's products)."""
    global _pool, _pool_workers
    if len(chunks) == 1:
        return [work(chunks[0])]
    with _pool_lock:
        if _pool is None or _pool_workers < len(chunks) - 1:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(len(chunks) - 1, thread_name_prefix="fivefold-rows")
            _pool_workers = len(chunks) - 1
        pool = _pool
    def run(chunk: list[int]):
        with torch.no_grad():  # grad mode is per thread: off in the autograd function's own, on in the pool's
            return work(chunk)

    futures = [pool.submit(run, chunk) for chunk in chunks[1:]]
    first = work(chunks[0])
    return [first, *(future.result() for future in futures)]


class _SpMMTermsLinear(torch.autograd.Function):
    """``spmm_terms_linear`` on the CPU, block of rows by block of rows. With several threads (torch's count) each
    thread takes a contiguous run of blocks: in the forward pass the blocks' output rows are disjoint; in the backward
    pass each thread scatters into its own gradient of ``x`` and of the weights, summed at the end. Differentiable in
    ``x``, the weights and the bias, not in ``values``."""

    @staticmethod
    def forward(ctx, csr: CSR, tables: tuple, block_rows: int, group_sizes: list[int], columns: list[Tensor],
                values: Tensor, x: Tensor, bias: Tensor | None, *weights: Tensor) -> Tensor:  # type: ignore[override]
        term_group, term_part, rotation, own_group, own_part = tables
        indptr, indices = csr.indptr.numpy(), csr.indices.numpy()
        array, weights_of = x.detach().contiguous().numpy(), values.detach().to(x.dtype).contiguous().numpy()
        groups, channels = sum(group_sizes), x.shape[2]
        order = torch.cat(columns)  # the blocks' output columns, block after block
        placement = torch.argsort(order)  # out[:, j] = side_by_side[:, placement[j]]
        out = x.new_empty(csr.num_rows, len(order))
        row_blocks = _row_blocks(csr.num_rows, block_rows)
        stacked_bias = None if bias is None else bias[order]
        group_ranges = _block_groups(group_sizes)
        output_ranges = _block_groups([len(c) for c in columns])
        saved: list[Tensor | None] = [None] * len(row_blocks)

        def work(chunk: list[int]) -> None:
            # each block's products land side by side in one buffer, then in the output's columns by one gather
            side_by_side = x.new_empty(min(block_rows, csr.num_rows), len(order))
            for k in chunk:
                start, stop = row_blocks[k]
                moments = np.zeros((stop - start, groups, channels), dtype=array.dtype)
                _kernels.spmm_terms_serial(indptr[start:stop + 1], indices, weights_of, term_group, term_part,
                                           rotation, own_group, own_part, start, array, moments)
                flat = torch.from_numpy(moments).view(stop - start, -1)
                products = side_by_side[:stop - start]
                for (g0, g1), (o0, o1), weight in zip(group_ranges, output_ranges, weights, strict=True):
                    if stacked_bias is None:
                        torch.mm(flat[:, g0 * channels:g1 * channels], weight, out=products[:, o0:o1])
                    else:
                        torch.addmm(stacked_bias[o0:o1], flat[:, g0 * channels:g1 * channels], weight,
                                    out=products[:, o0:o1])
                torch.index_select(products, 1, placement, out=out[start:stop])
                saved[k] = flat

        _run_chunks(work, _chunks(len(row_blocks)))
        ctx.csr, ctx.tables, ctx.block_rows, ctx.group_sizes = csr, tables, block_rows, group_sizes
        ctx.columns, ctx.x_shape = columns, x.shape
        ctx.save_for_backward(values, *weights, *saved)  # the moments: intermediates, freed after the backward pass
        ctx.num_weights = len(weights)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        values, *rest = ctx.saved_tensors
        weights, saved = rest[:ctx.num_weights], rest[ctx.num_weights:]
        term_group, term_part, rotation, own_group, own_part = ctx.tables
        csr: CSR = ctx.csr
        indptr, indices = csr.indptr.numpy(), csr.indices.numpy()
        grad_out = grad_out.contiguous()
        weights_of = values.detach().to(grad_out.dtype).contiguous().numpy()
        groups, channels = sum(ctx.group_sizes), ctx.x_shape[2]
        group_ranges = _block_groups(ctx.group_sizes)
        order = torch.cat(ctx.columns)
        output_ranges = _block_groups([len(c) for c in ctx.columns])
        row_blocks = _row_blocks(csr.num_rows, ctx.block_rows)
        rows = min(ctx.block_rows, csr.num_rows)
        need_x = ctx.needs_input_grad[6]  # not for a first layer's input (coordinates, features)

        def work(chunk: list[int]) -> tuple[np.ndarray | None, list[Tensor]]:
            grad_x = np.zeros(tuple(ctx.x_shape), dtype=grad_out.numpy().dtype) if need_x else None
            grad_weights = [torch.zeros_like(w) for w in weights]
            grad_moments = torch.empty(rows, groups * channels, dtype=grad_out.dtype)
            picked = grad_out.new_empty(rows, len(order))  # the output's gradient, the blocks' columns side by side
            for k in chunk:
                (start, stop), flat = row_blocks[k], saved[k]
                target = grad_moments[:stop - start]
                grad_all = torch.index_select(grad_out[start:stop], 1, order, out=picked[:stop - start])
                for (g0, g1), (o0, o1), weight, grad_weight in zip(group_ranges, output_ranges, weights, grad_weights,
                                                                    strict=True):
                    grad_rows = grad_all[:, o0:o1]
                    grad_weight.addmm_(flat[:, g0 * channels:g1 * channels].T, grad_rows)
                    if need_x:
                        torch.mm(grad_rows, weight.T, out=target[:, g0 * channels:g1 * channels])
                if need_x:
                    _kernels.spmm_terms_scatter_serial(indptr[start:stop + 1], indices, weights_of, term_group,
                                                       term_part, rotation, own_group, own_part, start,
                                                       target.numpy().reshape(stop - start, groups, channels), grad_x)
            return grad_x, grad_weights

        (grad_x, grad_weights), *others = _run_chunks(work, _chunks(len(row_blocks)))
        for other_x, other_weights in others:
            if need_x:
                grad_x += other_x
            for grad_weight, other in zip(grad_weights, other_weights, strict=True):
                grad_weight += other
        grad_bias = grad_out.sum(0) if ctx.needs_input_grad[7] else None
        return (None, None, None, None, None, None, torch.from_numpy(grad_x) if need_x else None, grad_bias,
                *grad_weights)


def _chunks(num_blocks: int) -> list[list[int]]:
    """The blocks split into contiguous runs, one per thread (torch's thread count)."""
    workers = max(1, min(torch.get_num_threads(), num_blocks))
    return [chunk.tolist() for chunk in np.array_split(np.arange(num_blocks), workers)]


def _rotations_as_terms(values: Tensor, term_index: Tensor, rotation_index: Tensor) -> tuple[Tensor, Tensor]:
    """Each rotation ``(gr, gi, pr, pi)`` with values ``(a, b)`` written as its four terms ``(gr, pr) a``,
    ``(gr, pi) -b``, ``(gi, pr) b`` and ``(gi, pi) a``: ``(values [nnz, T + 4Q], term_index [T + 4Q, 2])``."""
    terms = len(term_index)
    if not len(rotation_index):
        return values, term_index
    a, b = values[:, terms::2], values[:, terms + 1::2]  # [nnz, Q]
    gr, gi, pr, pi = rotation_index.unbind(1)
    expanded = torch.stack([torch.stack([gr, pr], 1), torch.stack([gr, pi], 1), torch.stack([gi, pr], 1),
                            torch.stack([gi, pi], 1)], dim=1).reshape(-1, 2)  # [4Q, 2], rotation by rotation
    rotation_values = torch.stack([a, -b, b, a], dim=2).reshape(values.shape[0], -1)
    return torch.cat([values[:, :terms], rotation_values], 1), torch.cat([term_index, expanded])


def _terms_linear_unfused(csr: CSR, x: Tensor, values: Tensor, term_index: Tensor, rotation_index: Tensor,
                          own_index: Tensor, group_sizes: list[int], weights: list[Tensor], columns: list[Tensor],
                          bias: Tensor | None) -> Tensor:
    """``spmm_terms_linear`` in torch ops (other devices, or values that need a gradient)."""
    groups, channels = sum(group_sizes), x.shape[2]
    values, term_index = _rotations_as_terms(values, term_index, rotation_index)
    messages = x.index_select(0, csr.indices)[:, term_index[:, 1]] * values.to(x.dtype).unsqueeze(2)  # [nnz, T, C]
    slots = (csr.rows.unsqueeze(1) * groups + term_index[:, 0]).reshape(-1)
    moments = x.new_zeros(csr.num_rows * groups, channels).index_add(0, slots, messages.reshape(-1, channels))
    moments = moments.view(csr.num_rows, groups, channels)
    if len(own_index):
        own = x.new_zeros(csr.num_rows, groups, channels).index_add(1, own_index[:, 0], x[:, own_index[:, 1]])
        moments = moments + own
    flat = moments.reshape(csr.num_rows, -1)
    out = torch.cat([flat[:, g0 * channels:g1 * channels] @ w
                     for (g0, g1), w in zip(_block_groups(group_sizes), weights, strict=True)], dim=1)
    out = out.index_select(1, torch.argsort(torch.cat(columns)))
    return out if bias is None else out + bias


def spmm_terms_linear(csr: CSR, x: Tensor, values: Tensor, term_index: Tensor, own_index: Tensor,
                      blocks: list[tuple[int, Tensor, Tensor]], bias: Tensor | None = None, *,
                      rotation_index: Tensor | None = None, block_rows: int = TERMS_BLOCK_ROWS) -> Tensor:
    """Sparse moments of a few components of ``x``, then a block-diagonal linear map of them, fused.

    With ``x [N, P, C]`` (``P`` components of ``C`` channels each), the moments ``M [R, G, C]`` are

        M[i, g] = sum over terms t with group g of  sum_{e in row i} values[e, t] * x[indices[e], part_t]
                  + sum over own components s with group g of  x[i, part_s]
                  + the rotations' parts in group g (below),

    and the groups, taken in order ``blocks`` at a time, go through their own weight into their own output columns:
    ``out[:, columns_b] = M[:, groups_b].reshape(R, -1) @ W_b``, then ``out += bias``.

    A rotation ``(gr, gi, pr, pi)`` reads two value columns ``(a, b)`` (after the ``T`` terms' columns, two per
    rotation) and adds the complex product ``(a + i b)(x[j, pr] + i x[j, pi])`` to the groups ``gr`` (real part)
    and ``gi`` (imaginary part): the four terms ``a x_pr - b x_pi`` and ``b x_pr + a x_pi`` with each value and
    component read once.

    GEM-CNN's convolution is this product: the moments are the kernel's angular Fourier terms of the neighbours
    (rotations for inputs of frequency ``n > 0``: a neighbour's field turned by ``k theta + n g``) and the vertex's
    own features, and each output frequency reads only its own moments, so its weight is one block (about half the
    multiply-adds of one product over every moment). On the CPU ``M`` is formed ``block_rows`` rows
    at a time, so each block is still in the cache when the dense products read it, and no ``[R, G, C]`` tensor is
    allocated at once (the blocks are kept for the weights' gradients, as an unfused form keeps ``M``). On other
    devices, or when ``values`` needs a gradient, the same maths runs as torch ops.

    Args:
        csr: the pattern, ``[R, N]``.
        x: ``[N, P, C]``.
        values: ``[nnz, T + 2 Q]``, in the CSR's entry order: the terms' weights, then each rotation's ``(a, b)``.
        term_index: ``[T, 2]`` int64, each term's ``(group, part)``.
        own_index: ``[S, 2]`` int64, ``(group, part)`` of each own component (needs ``R == N``; may be empty).
        blocks: ``(groups, weight [groups * C, O_b], columns [O_b])`` triples: they cover the ``G`` groups in
            order, and their ``columns`` (int64) together name each output column ``0 .. sum O_b - 1`` once.
        bias: ``[sum O_b]`` or ``None``.
        rotation_index: ``[Q, 4]`` int64, each rotation's ``(group_re, group_im, part_re, part_im)`` (two different
            groups, two different parts), or ``None``.
        block_rows: rows per block on the CPU.

    Returns:
        ``[R, sum O_b]``. Differentiable in ``x``, the weights, ``bias`` and (unfused) ``values``.
    """
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() != 3:
        raise OpsError(f"spmm_terms_linear: x must be a floating-point [N, P, C] tensor, got "
                       f"{getattr(x, 'shape', x)}")
    if x.shape[0] != csr.num_cols or x.device != csr.indices.device:
        raise OpsError(f"spmm_terms_linear: x must have {csr.num_cols} rows on the pattern's device, got "
                       f"{tuple(x.shape)} on {x.device}")
    if isinstance(block_rows, bool) or not isinstance(block_rows, int) or block_rows < 1:
        raise OpsError(f"spmm_terms_linear: block_rows must be a positive integer, got {block_rows!r}")
    if not blocks or any(len(block) != 3 for block in blocks):
        raise OpsError("spmm_terms_linear: blocks must be a non-empty list of (groups, weight, columns) triples")
    group_sizes = [int(block[0]) for block in blocks]
    groups, channels = sum(group_sizes), x.shape[2]
    if min(group_sizes) < 1:
        raise OpsError(f"spmm_terms_linear: every block needs at least one group, got {group_sizes}")
    for b, (size, weight, columns) in enumerate(blocks):
        if not isinstance(weight, Tensor) or weight.dim() != 2 or weight.shape[0] != size * channels \
                or weight.dtype != x.dtype or weight.device != x.device:
            raise OpsError(f"spmm_terms_linear: block {b}'s weight must be [{size * channels}, O] in {x.dtype}, got "
                           f"{tuple(getattr(weight, 'shape', ()))} {getattr(weight, 'dtype', '')}")
        if not isinstance(columns, Tensor) or columns.dtype != torch.int64 or columns.shape != (weight.shape[1],) \
                or columns.device != x.device:
            raise OpsError(f"spmm_terms_linear: block {b}'s columns must be int64 [{weight.shape[1]}] on {x.device}")
    outputs = sum(w.shape[1] for _, w, _ in blocks)
    # the tables are small: checked in numpy, where each torch op would cost more than the check
    named = np.concatenate([c.cpu().numpy() for _, _, c in blocks])
    if not np.array_equal(np.sort(named), np.arange(outputs)):
        raise OpsError(f"spmm_terms_linear: the blocks' columns must name each output column 0..{outputs - 1} once")
    if rotation_index is None:
        rotation_index = torch.zeros(0, 4, dtype=torch.int64, device=x.device)
    checked: dict[str, np.ndarray] = {}
    for name, index, width, what in (("term_index", term_index, 2, "(group, part)"),
                                     ("own_index", own_index, 2, "(group, part)"),
                                     ("rotation_index", rotation_index, 4, "(group_re, group_im, part_re, part_im)")):
        if not isinstance(index, Tensor) or index.dtype != torch.int64 or index.dim() != 2 \
                or index.shape[1] != width:
            raise OpsError(f"spmm_terms_linear: {name} must be an int64 [*, {width}] tensor of {what}")
        table = checked[name] = index.cpu().numpy()
        for column in range(width):
            size, kind = (groups, "group") if column < width // 2 else (x.shape[1], "part")
            bad = np.flatnonzero((table[:, column] < 0) | (table[:, column] >= size))
            if len(bad):
                raise OpsError(f"spmm_terms_linear: {name}[{bad[0]}, {column}] = {table[bad[0], column]} is not a "
                               f"{kind} in [0, {size})")
    rotations = checked["rotation_index"]
    same = np.flatnonzero((rotations[:, 0] == rotations[:, 1]) | (rotations[:, 2] == rotations[:, 3]))
    if len(same):
        raise OpsError(f"spmm_terms_linear: rotation {same[0]} ({rotations[same[0]].tolist()}) needs two different "
                       "groups and two different parts")
    if len(own_index) and csr.num_rows != csr.num_cols:
        raise OpsError(f"spmm_terms_linear: own components need a square pattern, got {csr}")
    value_columns = len(term_index) + 2 * len(rotation_index)
    if not isinstance(values, Tensor) or values.shape != (csr.nnz, value_columns):
        raise OpsError(f"spmm_terms_linear: values must be [nnz={csr.nnz}, T + 2Q={value_columns}], got "
                       f"{tuple(getattr(values, 'shape', ()))}")
    if bias is not None and (not isinstance(bias, Tensor) or bias.shape != (outputs,) or bias.dtype != x.dtype):
        raise OpsError(f"spmm_terms_linear: bias must be [{outputs}] in {x.dtype}, got "
                       f"{tuple(getattr(bias, 'shape', ()))} {getattr(bias, 'dtype', '')}")
    weights, columns = [w for _, w, _ in blocks], [c for _, _, c in blocks]
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) or values.requires_grad \
            or csr.num_rows == 0:
        return _terms_linear_unfused(csr, x, values, term_index, rotation_index, own_index, group_sizes, weights,
                                     columns, bias)
    tables = (term_index[:, 0].contiguous().numpy(), term_index[:, 1].contiguous().numpy(),
              rotation_index.contiguous().numpy(), own_index[:, 0].contiguous().numpy(),
              own_index[:, 1].contiguous().numpy())
    return _SpMMTermsLinear.apply(csr, tables, block_rows, group_sizes, columns, values, x, bias, *weights)


def sddmm(csr: CSR, a: Tensor, b: Tensor) -> Tensor:
    """Sampled dense-dense product: ``out[e] = <a[row_e], b[col_e]>`` for every entry ``e`` of ``csr``.

    Args:
        a: ``[R, F]`` or ``[R, H, C]``.
        b: ``[N, F]`` or ``[N, H, C]``.

    Returns:
        ``[nnz]`` or ``[nnz, H]``. Not differentiable (it is the backward of :func:`spmm`).
    """
    a3, was_2d = _as_heads(a)
    b3, _ = _as_heads(b)
    if a3.shape[0] != csr.num_rows or b3.shape[0] != csr.num_cols or a3.shape[1:] != b3.shape[1:]:
        raise OpsError(f"sddmm: shapes {tuple(a.shape)}, {tuple(b.shape)} do not fit {csr}")
    out = _sddmm_forward(csr, a3.detach(), b3.detach())
    return out.squeeze(1) if was_2d else out
