"""Pooling on the icosahedral grid: to the next coarser grid (``IcoPool``), back to the finer one (``IcoUnpool``), and
over the orientations of regular fields (``IcoGroupPool``). Each keeps the singular-vertex rule, so each is exactly
equivariant to the grid's 60 rotations."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from fivefold.errors import FieldError, check_option
from fivefold.groups import FieldType
from fivefold.spheres.charts import check_fields, input_grid, layer_grid, shared_grid
from fivefold.spheres.fields import ORIENTATIONS, field_kind, trivial_field
from fivefold.spheres.grid import HEX_DIRECTIONS, MAX_RESOLUTION
from fivefold.spheres.padding import pad_charts
from fivefold.spheres.singular import average_singular

__all__ = ["IcoPool", "IcoUnpool", "IcoGroupPool"]


class IcoPool(nn.Module):
    """Pool from resolution ``r`` to ``r - 1`` over each coarse vertex's hexagonal neighbourhood (itself and its six
    neighbours), ``"max"`` or ``"mean"``. Shapes: ``[B, C, 5, n, 2n] -> [B, C, 5, n/2, n]``.

    Args:
        in_type: ``trivial_field(n)`` or ``regular_field(n)`` (the output has the same type).
        mode: ``"max"`` or ``"mean"``.
        r: the input resolution, or None (default): any r >= 2, read from the input.

    The older form ``IcoPool(r=None, field="trivial", mode="max")`` still works for one release and warns.
    """

    def __init__(self, in_type: FieldType | None = None, mode: str = "max", *legacy: str, r: int | None = None,
                 field: str | None = None) -> None:
        super().__init__()
        if not isinstance(in_type, FieldType):  # IcoPool(r, field, mode)
            warnings.warn("IcoPool(r, field, mode) is deprecated: use IcoPool(in_type, mode, r=r) with a field type "
                          "of fivefold.spheres", DeprecationWarning, stacklevel=2)
            if in_type is not None and r is not None:
                raise FieldError(f"IcoPool: resolution given twice (r={in_type!r} and r={r!r})")
            r = in_type if in_type is not None else r
            if mode in ("trivial", "regular"):
                field, mode = mode, (legacy[0] if legacy else "max")
            in_type = None
            self.field = field_kind(field or "trivial", "IcoPool")
        else:
            if legacy or field is not None:
                raise FieldError("IcoPool takes (in_type, mode, r=...); the field type already says trivial or regular")
            self.field = field_kind(in_type, "IcoPool")
        check_option(mode, ("max", "mean"), "mode", "IcoPool")
        self.in_type = in_type
        self.grid = layer_grid(r, "IcoPool (from r to r - 1 >= 1)", minimum=2)
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        grid = input_grid(self.grid, x, "IcoPool (from r to r - 1 >= 1)", minimum=2)
        n = grid.n
        padded = pad_charts(x, grid, self.in_type or self.field)
        taps = torch.stack([padded[..., 1 + di:n + 1 + di:2, 1 + dj:2 * n + 1 + dj:2]
                            for di, dj in [(0, 0), *HEX_DIRECTIONS]])
        pooled = taps.amax(dim=0) if self.mode == "max" else taps.mean(dim=0)
        return average_singular(pooled, shared_grid(grid.r - 1), self.field)

    def extra_repr(self) -> str:
        resolution = "r from the input" if self.grid is None else f"r={self.grid.r} -> {self.grid.r - 1}"
        return f"{self.in_type or self.field!r}, mode={self.mode}, {resolution}"


class IcoUnpool(nn.Module):
    """Upsample from resolution ``r - 1`` to ``r``: coarse vertices keep their values, the new vertices (edge
    midpoints) take the mean of the two coarse vertices they lie between. Shapes: ``[B, C, 5, m, 2m] ->
    [B, C, 5, 2m, 4m]``.

    Args:
        in_type: ``trivial_field(n)`` or ``regular_field(n)`` (the output has the same type).
        r: the output resolution, or None (default): any input resolution r - 1 >= 1, read from the input.

    The older form ``IcoUnpool(r=None, field="trivial")`` still works for one release and warns.
    """

    def __init__(self, in_type: FieldType | None = None, *legacy: str, r: int | None = None,
                 field: str | None = None) -> None:
        super().__init__()
        if not isinstance(in_type, FieldType):  # IcoUnpool(r, field)
            warnings.warn("IcoUnpool(r, field) is deprecated: use IcoUnpool(in_type, r=r) with a field type of "
                          "fivefold.spheres", DeprecationWarning, stacklevel=2)
            if in_type is not None and r is not None:
                raise FieldError(f"IcoUnpool: resolution given twice (r={in_type!r} and r={r!r})")
            r = in_type if in_type is not None else r
            field = legacy[0] if legacy else field
            in_type = None
            self.field = field_kind(field or "trivial", "IcoUnpool")
        else:
            if legacy or field is not None:
                raise FieldError("IcoUnpool takes (in_type, r=...); the field type already says trivial or regular")
            self.field = field_kind(in_type, "IcoUnpool")
        self.in_type = in_type
        self.grid = layer_grid(r, "IcoUnpool (from r - 1 >= 1 to r)", minimum=2)
        self.coarse = None if r is None else shared_grid(int(r) - 1)

    def forward(self, x: Tensor) -> Tensor:
        coarse = input_grid(self.coarse, x, "IcoUnpool (from r - 1 >= 1 to r)")
        if coarse.r >= MAX_RESOLUTION:
            raise FieldError(f"IcoUnpool: cannot refine beyond resolution {MAX_RESOLUTION}, got an r={coarse.r} input")
        m = coarse.n
        padded = pad_charts(x, coarse, self.in_type or self.field)
        centre = padded[..., 1:m + 1, 1:2 * m + 1]
        up = padded[..., 2:m + 2, 1:2 * m + 1]  # d_0 = (1, 0)
        right = padded[..., 1:m + 1, 2:2 * m + 2]  # d_2 = (0, 1)
        diagonal = padded[..., 2:m + 2, 2:2 * m + 2]  # d_1 = (1, 1)
        out = x.new_zeros(*x.shape[:-2], 2 * m, 4 * m)
        out[..., 0::2, 0::2] = centre
        out[..., 1::2, 0::2] = (centre + up) / 2
        out[..., 0::2, 1::2] = (centre + right) / 2
        out[..., 1::2, 1::2] = (centre + diagonal) / 2
        return average_singular(out, shared_grid(coarse.r + 1), self.field, inplace=True)

    def extra_repr(self) -> str:
        resolution = "r from the input" if self.grid is None else f"r={self.grid.r - 1} -> {self.grid.r}"
        return f"{self.in_type or self.field!r}, {resolution}"


class IcoGroupPool(nn.Module):
    """Max (or mean) over the 6 orientations of each regular field: ``[B, F * 6, 5, n, 2n] -> [B, F, 5, n, 2n]``,
    a gauge-invariant scalar field (the 12 icosahedron vertices again follow ``average_singular``).

    Args:
        in_type: ``regular_field(F)``; the output is ``trivial_field(F)``.
        mode: ``"max"`` or ``"mean"``.
        r: the resolution, or None (default): any resolution, read from the input.

    The older form ``IcoGroupPool(r=None, mode="max")`` (any number of fields) still works for one release and warns.
    """

    def __init__(self, in_type: FieldType | None = None, mode: str = "max", *, r: int | None = None) -> None:
        super().__init__()
        if not isinstance(in_type, FieldType):  # IcoGroupPool(r, mode)
            warnings.warn("IcoGroupPool(r, mode) is deprecated: use IcoGroupPool(regular_field(n), mode, r=r)",
                          DeprecationWarning, stacklevel=2)
            r, in_type = (in_type if in_type is not None else r), None
        elif field_kind(in_type, "IcoGroupPool") != "regular":
            raise FieldError(f"IcoGroupPool: in_type must be regular fields, got {in_type!r}")
        check_option(mode, ("max", "mean"), "mode", "IcoGroupPool")
        self.in_type = in_type
        self.grid, self.mode = layer_grid(r, "IcoGroupPool"), mode

    @property
    def out_type(self) -> FieldType | None:
        return None if self.in_type is None else trivial_field(len(self.in_type))

    def forward(self, x: Tensor) -> Tensor:
        grid = input_grid(self.grid, x, "IcoGroupPool")
        check_fields(x, grid, self.in_type or "regular", "IcoGroupPool")
        fields = x.reshape(x.shape[0], -1, ORIENTATIONS, *x.shape[2:])
        pooled = fields.amax(dim=2) if self.mode == "max" else fields.mean(dim=2)
        return average_singular(pooled, grid, "trivial")

    def extra_repr(self) -> str:
        return f"{self.in_type or 'regular'!r}, mode={self.mode}, r={None if self.grid is None else self.grid.r}"
