"""Check that a module commutes with a group: ``module(g . x) == g . module(x)`` for every ``g``.

``assert_equivariant`` applies every element of a finite group (or a random sample of a continuous one, such as
``SO2()``) to the input and to the output and reports the worst difference. Actions are either callables
``(x, g) -> x'`` or the names of the standard grid fields:

- ``"trivial"``: scalar channels on a grid ``[B, C, *spatial]``; the grid moves.
- ``"regular"``: channels ``C * |G|`` with the group axis innermost; the grid moves and the group axis is permuted.
  A ``[B, C * |G|]`` tensor (no grid left, e.g. after spatial pooling) only has its group axis permuted.
- ``"invariant"``: the output must not change at all.

Example::

    >>> import torch
    >>> from fivefold.groups import cyclic
    >>> from fivefold.grids import LiftingConv2d
    >>> from fivefold.testing import assert_equivariant
    >>> conv = LiftingConv2d(1, 2, 3, group=cyclic(4)).double()
    >>> report = assert_equivariant(conv, cyclic(4), torch.randn(2, 1, 9, 9, dtype=torch.float64),
    ...                             "trivial", "regular")
    >>> report.worst_error < 1e-12
    True

Tolerance: pass ``atol`` / ``rtol`` for a fixed bound (the float64 tests prove exactness with ``atol=1e-10``), or leave
both out to use the float rule of ``fivefold.testing.tolerance`` (``16 * eps(dtype) * sqrt(terms) * max |y|``), which
is what float32 checks should use: their rounding depends on the CPU's kernels and summation order.

``fivefold.testing.collect_reports()`` records every report made inside it (the test suite uses it to show each
check's margin).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from fivefold.groups import SO2, FiniteGroup, act_on_grid, permute_group_axis, random_rotation, transform_grid
from fivefold.testing.tolerance import float_tolerance, record

__all__ = ["EquivarianceReport", "assert_equivariant", "grid_action", "random_rotation"]

Action = Callable[[Tensor, Any], Tensor]


@dataclass
class EquivarianceReport:
    """What ``assert_equivariant`` measured: the worst error over the elements tried, and each element's error."""

    worst_error: float
    worst_element: Any
    output_scale: float
    errors: dict = field(default_factory=dict)
    tolerance: float = float("nan")
    dtype: torch.dtype | None = None

    @property
    def margin(self) -> float:
        """``tolerance / worst_error``: how many times the worst error fits under the tolerance."""
        return self.tolerance / self.worst_error if self.worst_error > 0 else float("inf")

    def __str__(self) -> str:
        return (f"worst |module(g.x) - g.module(x)| = {self.worst_error:.3g} at g = {self.worst_element!r} "
                f"(output max |y| = {self.output_scale:.3g}, {len(self.errors)} elements tried)")


def grid_action(group: FiniteGroup | SO2, field_type: str) -> Action:
    """The action of ``group`` on a grid field of type ``"trivial"``, ``"regular"`` or ``"invariant"``."""
    if field_type == "invariant":
        return lambda x, g: x
    if field_type == "trivial":
        return lambda x, g: transform_grid(x, group.matrix(g))
    if field_type == "regular":
        if not isinstance(group, FiniteGroup):
            raise ValueError(f"regular fields need a finite group, not {group!r}")

        def regular(x: Tensor, g: int) -> Tensor:
            if x.dim() == 2:
                return permute_group_axis(x, group, g)
            return act_on_grid(x, group, g, "regular")

        return regular
    raise ValueError(f"unknown field type {field_type!r}: use 'trivial', 'regular', 'invariant' or a callable")


def assert_equivariant(
    module: nn.Module | Callable[[Tensor], Tensor],
    group: FiniteGroup | SO2,
    make_input: Tensor | Callable[[], Tensor],
    input_action: str | Action = "trivial",
    output_action: str | Action = "trivial",
    *,
    elements: Sequence | None = None,
    samples: int = 8,
    atol: float | None = None,
    rtol: float | None = None,
    terms: int = 1,
    mask: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> EquivarianceReport:
    """Apply each group element to the input and the output of ``module``; fail if any difference is too large.

    Args:
        module: a callable ``x -> y`` (an ``nn.Module`` or a lambda wrapping one with more arguments).
        group: a ``FiniteGroup`` (every element is tried) or ``SO2()`` (``samples`` random angles).
        make_input: the input ``x``, or a function returning it.
        input_action, output_action: how ``g`` acts on ``x`` and on ``y`` (a field-type name or ``(x, g) -> x'``).
        elements: the elements to try instead of all / a random sample.
        atol, rtol: pass when ``max |module(g.x) - g.module(x)| <= atol + rtol * max |module(x)|``. Leave both out
            for the float rule ``float_tolerance(y.dtype, max |y|, terms)``.
        terms: for the float rule, how many products are summed into one output element (input channels x filter
            size for a convolution; for a deep network, the largest such count of its layers).
        mask: multiplies the difference before its maximum (e.g. a disk, where interpolated rotations lose corners).

    Returns: an ``EquivarianceReport`` (also when the check passes).

    Raises: ``AssertionError`` naming the worst element and its error.
    """
    x = make_input() if callable(make_input) else make_input
    act_in = grid_action(group, input_action) if isinstance(input_action, str) else input_action
    act_out = grid_action(group, output_action) if isinstance(output_action, str) else output_action
    if elements is None:
        elements = list(group.elements) if isinstance(group, FiniteGroup) else group.sample(samples, generator)
    with torch.no_grad():
        y = module(x)
        scale = float(y.abs().max()) if y.numel() else 0.0
        errors = {}
        for g in elements:
            difference = module(act_in(x, g)) - act_out(y, g)
            if mask is not None:
                difference = difference * mask
            errors[g] = float(difference.abs().max()) if difference.numel() else 0.0
    if atol is None and rtol is None:
        tolerance = float_tolerance(y.dtype, scale, terms)
    else:
        tolerance = (atol or 0.0) + (rtol or 0.0) * scale
    worst = max(errors, key=errors.get)
    report = EquivarianceReport(errors[worst], worst, scale, errors, tolerance, y.dtype)
    record(report)
    if not errors[worst] <= tolerance:  # NaN fails too
        raise AssertionError(f"not equivariant under {group!r}: {report} > tolerance {tolerance:.3g}")
    return report
