"""How close two float computations of the same quantity must be: one rule for every float check in fivefold.

Two ways of computing the same result (``module(g . x)`` and ``g . module(x)``, or our layer and a peer's) sum the
same products in different orders, with different kernels on different CPUs. Each ordering rounds differently; the
difference grows with the size of the result, with the precision's machine epsilon, and with the number of terms
summed into each output element (rounding errors of a sum of ``n`` terms behave like a random walk, so about
``sqrt(n)`` ulps). The rule is

    tolerance = SAFETY * eps(dtype) * sqrt(terms) * scale

with ``scale`` the largest ``|value|`` of the result, ``terms`` the number of products summed into one output element
(for a convolution: input channels x kernel volume; for a dense layer: its input width), and ``SAFETY = 16``. In float32
that is about 2e-6 relative per ``sqrt(term)``: far below any real mistake (a misplaced filter tap or a wrong group
element changes outputs by their own size) and far above the ulps that a CPU's kernels and summation orders lose.

Exactness is proven in float64, where the same rule is 5e-9 times smaller; fivefold's float64 tests keep their own
tight absolute tolerances (1e-10 and below).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = ["SAFETY", "CloseReport", "assert_close", "collect_reports", "float_tolerance"]

SAFETY = 16.0


def float_tolerance(dtype: torch.dtype, scale: float, terms: int = 1) -> float:
    """The largest difference allowed between two computations of a result of size ``scale`` in ``dtype``.

    Args:
        dtype: the floating dtype of the result (float16, bfloat16, float32, float64).
        scale: the largest ``|value|`` of the result (1 is used when it is smaller, so results near 0 compare at the
            scale of their inputs' rounding rather than at 0).
        terms: how many products are summed into one output element (>= 1).

    Example::

        >>> from fivefold.testing import float_tolerance
        >>> round(float_tolerance(torch.float32, scale=5.0, terms=100) / 5.0, 8)   # relative: 16 eps * 10
        1.907e-05
    """
    if not dtype.is_floating_point:
        raise TypeError(f"float_tolerance needs a floating dtype, not {dtype}")
    if terms < 1:
        raise ValueError(f"terms must be >= 1, got {terms}")
    return SAFETY * torch.finfo(dtype).eps * math.sqrt(terms) * max(float(scale), 1.0)


@dataclass(frozen=True)
class CloseReport:
    """What ``assert_close`` measured: the largest difference, the tolerance it was held to, the result's scale."""

    worst_error: float
    tolerance: float
    output_scale: float
    dtype: torch.dtype

    @property
    def margin(self) -> float:
        """``tolerance / worst_error``: how many times the worst error fits under the tolerance."""
        return self.tolerance / self.worst_error if self.worst_error > 0 else float("inf")


_collectors: list[list[Any]] = []


@contextlib.contextmanager
def collect_reports() -> Iterator[list[Any]]:
    """Collect every report that ``assert_close`` and ``assert_equivariant`` make inside the ``with`` block, failed
    checks included (the report is recorded before the ``AssertionError`` is raised)."""
    reports: list[Any] = []
    _collectors.append(reports)
    try:
        yield reports
    finally:
        _collectors.remove(reports)


def record(report: Any) -> None:
    """Hand ``report`` to every open ``collect_reports()`` block (used by the checks of this package)."""
    for reports in _collectors:
        reports.append(report)


def assert_close(actual: Tensor, expected: Tensor, *, terms: int = 1) -> float:
    """Fail unless ``max |actual - expected| <= float_tolerance(dtype, max |expected|, terms)``; return the error.

    The float counterpart of an exact comparison: use it where two implementations of the same float result are
    compared (a layer against a peer's, a fast path against a slow one). The dtype is the less precise of the two.
    """
    if actual.shape != expected.shape:
        raise AssertionError(f"shapes differ: {tuple(actual.shape)} != {tuple(expected.shape)}")
    actual, expected = actual.detach(), expected.detach()
    dtype = actual.dtype if torch.finfo(actual.dtype).eps >= torch.finfo(expected.dtype).eps else expected.dtype
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    error = float((actual.to(dtype) - expected.to(dtype)).abs().max()) if actual.numel() else 0.0
    tolerance = float_tolerance(dtype, scale, terms)
    record(CloseReport(error, tolerance, scale, dtype))
    if not error <= tolerance:  # also fails on NaN
        raise AssertionError(f"max |actual - expected| = {error:.3g} > tolerance {tolerance:.3g} "
                             f"({dtype}, scale {scale:.3g}, {terms} terms)")
    return error
