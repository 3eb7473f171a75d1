"""Scatter and segment reductions: the aggregation step of message passing.

``scatter(src, index, num_segments, reduce)`` reduces the rows of ``src`` that share a value of ``index``;
``segment(src, indptr, reduce)`` does the same for rows already grouped contiguously (CSR order);
``segment_softmax`` normalises scores over each group (the attention weights of GAT).
All are differentiable through torch's own autograd (checked with ``torch.autograd.gradcheck`` in the tests).
Empty groups give 0 for every reduction.

Each checks its index before the kernel (``index_add`` and ``scatter_reduce`` do not bounds-check on every device).
A caller whose index is already known valid, such as a layer reading a ``Graph``'s edges (checked when the graph was
built), passes ``validate=False`` to skip that O(E) pass; the library's own layers do exactly that, and so can yours.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fivefold.errors import OpsError, check_option
from fivefold.ops.sparse import _check_index, _check_indptr

__all__ = ["scatter", "segment", "segment_softmax", "REDUCTIONS"]

REDUCTIONS = ("sum", "mean", "max", "min")
_TORCH_REDUCE = {"max": "amax", "min": "amin"}


def _check_src(src: Tensor, n: int, what: str) -> None:
    if not isinstance(src, Tensor):
        raise OpsError(f"src must be a torch.Tensor, got {type(src).__name__}")
    if src.dim() == 0 or src.shape[0] != n:
        raise OpsError(f"src has {src.shape[0] if src.dim() else 0} rows but {what} has {n}")


def _check_reduce(reduce: str) -> None:
    check_option(reduce, REDUCTIONS, "reduce", "scatter")


def scatter(src: Tensor, index: Tensor, num_segments: int, reduce: str = "sum", *, validate: bool = True) -> Tensor:
    """Reduce rows of ``src`` into ``num_segments`` groups given by ``index``.

    Args:
        src: ``[E, *]`` values (e.g. messages, one per edge).
        index: ``[E]`` int64 group of each row, in ``[0, num_segments)`` (e.g. the target node).
        num_segments: number of groups ``N``.
        reduce: ``"sum"``, ``"mean"``, ``"max"`` or ``"min"``.
        validate: check ``index`` and ``src`` first (``False``: only for an index already known valid).

    Returns:
        ``[N, *]``; groups that receive nothing are 0.
    """
    _check_reduce(reduce)
    if validate:
        _check_index(index, num_segments, "index")
        _check_src(src, index.numel(), "index")
    out_shape = (num_segments, *src.shape[1:])
    if reduce in ("sum", "mean"):
        out = src.new_zeros(out_shape).index_add(0, index, src)
        if reduce == "mean":
            count = torch.bincount(index, minlength=num_segments).clamp_(min=1).to(src.dtype)
            out = out / count.view(-1, *([1] * (src.dim() - 1)))
        return out
    expanded = index.view(-1, *([1] * (src.dim() - 1))).expand_as(src)
    return src.new_zeros(out_shape).scatter_reduce(
        0, expanded, src, reduce=_TORCH_REDUCE[reduce], include_self=False
    )


def segment(src: Tensor, indptr: Tensor, reduce: str = "sum") -> Tensor:
    """Reduce contiguous groups of rows: group ``i`` is ``src[indptr[i]:indptr[i+1]]``.

    Args:
        src: ``[E, *]`` rows sorted by group.
        indptr: ``[N + 1]`` int64, non-decreasing, from 0 to ``E``.

    Returns:
        ``[N, *]``; empty groups are 0.
    """
    _check_reduce(reduce)
    _check_indptr(indptr, "indptr")
    _check_src(src, int(indptr[-1]), "indptr[-1]")
    counts = indptr[1:] - indptr[:-1]
    index = torch.repeat_interleave(torch.arange(counts.numel(), device=src.device), counts)
    return scatter(src, index, counts.numel(), reduce, validate=False)


def segment_softmax(src: Tensor, index: Tensor, num_segments: int, *, validate: bool = True) -> Tensor:
    """Softmax of ``src`` over the rows that share an ``index`` (numerically stable: the group max is subtracted).

    Args:
        src: ``[E]`` or ``[E, H]`` scores.
        index: ``[E]`` int64 group of each row (e.g. the target node of each edge).
        validate: check ``index`` and ``src`` first (``False``: only for an index already known valid).

    Returns:
        Same shape as ``src``; within each group the rows sum to 1.
    """
    if validate:
        _check_index(index, num_segments, "index")
        _check_src(src, index.numel(), "index")
    group_max = scatter(src.detach(), index, num_segments, "max", validate=False)
    exp = (src - group_max.index_select(0, index)).exp()
    denom = scatter(exp, index, num_segments, "sum", validate=False)
    return exp / denom.index_select(0, index)
