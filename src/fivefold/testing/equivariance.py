"""Check that a module commutes with a group: ``module(g . x) == g . module(x)`` for every ``g``.

``assert_equivariant(module, in_type, out_type, x)`` applies every element of a finite group (or a random sample of a
continuous one, such as ``SO2()``) to the input and to the output and reports the worst difference. ``in_type`` and
``out_type`` say how the group acts:

- a ``FieldType`` (``fivefold.groups``): a field on a grid ``[B, C, *spatial]``; the grid moves and the channels
  transform by the field type's representation. A ``[B, C]`` tensor (no grid left, e.g. after spatial pooling) only
  has its channels transformed;
- an ``Action``: a group and a function ``(x, g) -> x'``, for every other domain (node permutations of a graph, the
  rotations of a sphere's charts, ...); ``grid_action(field_type)`` is the ``Action`` a ``FieldType`` stands for;
- ``"invariant"`` (output only): the output must not change at all.

The group is the input action's group.

Example::

    >>> import torch
    >>> from fivefold.groups import cyclic, regular_field, trivial_field
    >>> from fivefold.grids import GroupConv2d
    >>> from fivefold.testing import assert_equivariant
    >>> c4 = cyclic(4)
    >>> conv = GroupConv2d(trivial_field(c4, 1), regular_field(c4, 2), 3).double()
    >>> report = assert_equivariant(conv, trivial_field(c4, 1), regular_field(c4, 2),
    ...                             torch.randn(2, 1, 9, 9, dtype=torch.float64), atol=1e-12)
    >>> report.worst_error < 1e-12
    True

Tolerance: pass ``atol`` / ``rtol`` for a fixed bound (the float64 tests prove exactness with ``atol=1e-10``), or leave
both out to use the float rule of ``fivefold.testing.tolerance`` (``16 * eps(dtype) * sqrt(terms) * max |y|``), which
is what float32 checks should use: their rounding depends on the CPU's kernels and summation order.

``fivefold.testing.collect_reports()`` records every report made inside it (the test suite uses it to show each
check's margin).

The older form ``assert_equivariant(module, group, x, "trivial" | "regular" | callable, ...)`` still works for one
release and warns.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from fivefold.groups import (
    SO2,
    Action,
    FieldType,
    FiniteGroup,
    act_on_grid,
    permute_group_axis,
    random_rotation,
    transform_grid,
)
from fivefold.testing.tolerance import float_tolerance, record

__all__ = ["Action", "EquivarianceReport", "assert_equivariant", "grid_action", "random_rotation"]


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


def grid_action(field_type: FieldType, _legacy_field: str | None = None) -> Action:
    """The action of ``field_type.group`` on a field of that type on a grid ``[B, C, *spatial]`` (the grid moves and
    the channels transform), or on ``[B, C]`` (channels only).

    ``grid_action(group, "trivial" | "regular" | "invariant")`` is the older form; it still works and warns.
    """
    if _legacy_field is not None or not isinstance(field_type, FieldType):
        warnings.warn("grid_action(group, name) is deprecated: pass a FieldType, e.g. "
                      "grid_action(regular_field(group, n))", DeprecationWarning, stacklevel=2)
        return _legacy_action(field_type, _legacy_field)
    group = field_type.group
    if not isinstance(group, (FiniteGroup, SO2)):
        raise ValueError(f"grid_action: {group!r} does not act on grids (use an Action with your own function)")

    def act(x: Tensor, g) -> Tensor:
        if x.dim() == 2:
            return field_type.transform(x, g, dim=1)
        if isinstance(group, FiniteGroup):
            return act_on_grid(x, group, g, field_type)
        return field_type.transform(transform_grid(x, group.matrix(g)), g, dim=1)

    return Action(group, act, f"grid field {field_type!r}")


def _legacy_action(group, name: str) -> Action:
    """The string shorthands of the older API: channel counts decide the number of fields."""
    if name == "invariant":
        return Action(group, lambda x, g: x, "invariance")
    if name == "trivial":
        return Action(group, lambda x, g: transform_grid(x, group.matrix(g)), "trivial grid field")
    if name == "regular":
        if not isinstance(group, FiniteGroup):
            raise ValueError(f"regular fields need a finite group, not {group!r}")

        def regular(x: Tensor, g: int) -> Tensor:
            return permute_group_axis(x, group, g) if x.dim() == 2 else act_on_grid(x, group, g, "regular")

        return Action(group, regular, "regular grid field")
    raise ValueError(f"unknown field type {name!r}: use a FieldType, an Action, or 'trivial', 'regular', 'invariant'")


def _as_action(kind, group, role: str) -> Action:
    if isinstance(kind, Action):
        return kind
    if isinstance(kind, FieldType):
        return grid_action(kind)
    if kind == "invariant" and role == "output":
        return Action(group, lambda x, g: x, "invariance")
    allowed = "a FieldType, an Action or 'invariant'" if role == "output" else "a FieldType or an Action"
    raise ValueError(f"assert_equivariant: the {role} type must be {allowed}, got {kind!r}")


def assert_equivariant(
    module: nn.Module | Callable[[Tensor], Tensor],
    in_type: FieldType | Action,
    out_type: FieldType | Action | str,
    x: Tensor | Callable[[], Tensor] | None = None,
    *legacy: Any,
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
        in_type: how the group acts on ``x``: a ``FieldType`` (a grid field) or an ``Action``; its group is the group
            tested (a finite group: every element is tried; ``SO2()``: ``samples`` random angles).
        out_type: how it acts on ``y``: a ``FieldType``, an ``Action`` or ``"invariant"``.
        x: the input, or a function returning it.
        elements: the elements to try instead of all / a random sample.
        atol, rtol: pass when ``max |module(g.x) - g.module(x)| <= atol + rtol * max |module(x)|``. Leave both out
            for the float rule ``float_tolerance(y.dtype, max |y|, terms)``.
        terms: for the float rule, how many products are summed into one output element (input channels x filter
            size for a convolution; for a deep network, the largest such count of its layers).
        mask: multiplies the difference before its maximum (e.g. a disk, where interpolated rotations lose corners).

    Returns: an ``EquivarianceReport`` (also when the check passes).

    Raises: ``AssertionError`` naming the worst element and its error.
    """
    if not isinstance(in_type, (FieldType, Action)) and hasattr(in_type, "compose"):  # older (module, group, x, ...)
        warnings.warn("assert_equivariant(module, group, x, input_action, output_action) is deprecated: use "
                      "assert_equivariant(module, in_type, out_type, x) with FieldTypes or Actions",
                      DeprecationWarning, stacklevel=2)
        group, x, input_kind = in_type, out_type, x
        output_kind = legacy[0] if legacy else "trivial"
        input_kind = "trivial" if input_kind is None else input_kind
        if atol is None and rtol is None:  # the older form's default bound
            atol = 1e-5
        act_in = Action(group, input_kind) if callable(input_kind) else _legacy_action(group, input_kind)
        act_out = Action(group, output_kind) if callable(output_kind) else _legacy_action(group, output_kind)
    else:
        if legacy:
            raise TypeError("assert_equivariant takes (module, in_type, out_type, x) and keyword options")
        if x is None:
            raise TypeError("assert_equivariant needs the input x: (module, in_type, out_type, x)")
        act_in = _as_action(in_type, None, "input")
        group = act_in.group
        act_out = _as_action(out_type, group, "output")
        if act_out.group != group:
            raise ValueError(f"assert_equivariant: the input's group is {group.name}, the output's "
                             f"{act_out.group.name}")
    x = x() if callable(x) and not isinstance(x, Tensor) else x
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
    if not math.isfinite(scale):
        raise AssertionError(f"assert_equivariant: module(x) is not finite (max |y| = {scale})")
    if atol is None and rtol is None:
        tolerance = float_tolerance(y.dtype, scale, terms)
    else:
        tolerance = (atol or 0.0) + (rtol or 0.0) * scale
    worst = max(errors, key=lambda g: (math.isnan(errors[g]), errors[g]))  # a NaN error is the worst
    report = EquivarianceReport(errors[worst], worst, scale, errors, tolerance, y.dtype)
    record(report)
    if not errors[worst] <= tolerance:  # NaN fails too
        raise AssertionError(f"not equivariant under {group!r}: {report} > tolerance {tolerance:.3g}")
    return report
