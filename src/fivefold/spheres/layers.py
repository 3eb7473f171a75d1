"""Gauge-equivariant layers on the icosahedral grid (Cohen, Weiler, Kicanaoglu & Welling 2019, "Gauge Equivariant
Convolutional Networks and the Icosahedral CNN").

Fields on a chart tensor ``[B, C, 5, n, 2n]`` are stated with the field types of ``fivefold.spheres.fields``: a trivial
(scalar) field is one channel; a regular field of the gauge group C_6 occupies 6 channels, group axis innermost
(``C = fields * 6``): its value for orientation ``t`` belongs to the
lattice direction ``d_t`` of the chart's frame. A rotation of the icosahedron moves vertices and turns frames by
multiples of 60 degrees, so a regular field is permuted in space and cyclically shifted in orientation.

Every layer works as chart padding (``pad_charts``: one pixel from the neighbouring charts, with the gauge shift of
regular fields at the seams) followed by ordinary tensor ops, so a convolution costs one ``conv2d`` over the five
charts. The 12 vertices of the icosahedron have five neighbours, not six; there a hexagonal filter would see one
neighbour twice and break the symmetry, so every layer starts and ends with ``average_singular``: the value at those
vertices becomes the mean, over their five neighbours and the six orientations, of the layer's input or output (the
poles, which have no chart pixel, follow the same rule wherever they are read). That rule commutes with the 60
rotations, which makes the layers exactly equivariant to them on the grid (tested). Pointwise nonlinearities between
layers need no care: the next layer re-applies the rule; end a network with a fivefold layer so its output obeys it.
"""

from __future__ import annotations

import math
import warnings
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fivefold.errors import FieldError
from fivefold.groups import FieldType
from fivefold.spheres.fields import ORIENTATIONS, field_kind, legacy_type, trivial_field
from fivefold.spheres.grid import HEX_DIRECTIONS, MAX_RESOLUTION, IcoGrid

__all__ = [
    "pad_charts", "average_singular", "rotate_charts", "IcoConv", "IcoPool", "IcoUnpool", "IcoGroupPool",
    "IcoBatchNorm",
]


def _orientations(field: FieldType | str, where: str = "icosahedral layer") -> int:
    return ORIENTATIONS if field_kind(field, where) == "regular" else 1


def _check(x: Tensor, grid: IcoGrid, field: FieldType | str, where: str) -> None:
    kind = field_kind(field, where)
    grid.check_charts(x, where)
    if x.dim() != 5:
        raise FieldError(f"{where}: expected [B, C, 5, {grid.n}, {2 * grid.n}], got shape {tuple(x.shape)}")
    if isinstance(field, FieldType) and x.shape[1] != field.size:
        raise FieldError(f"{where}: expected {field!r} = {field.size} channels, got {x.shape[1]}")
    if kind == "regular" and x.shape[1] % ORIENTATIONS:
        raise FieldError(f"{where}: a regular C6 field needs channels in multiples of 6, got {x.shape[1]}")


@cache
def _shared_grid(r: int) -> IcoGrid:
    """One ``IcoGrid`` per resolution, shared by every layer (its tables are read-only)."""
    return IcoGrid(r)


def _layer_grid(r: int | None, where: str, minimum: int = 1) -> IcoGrid | None:
    """The grid at resolution ``r`` for a layer, which needs ``r >= minimum`` (at r = 0 every vertex is singular);
    None when ``r`` is None (the layer then takes its resolution from each input)."""
    if r is None:
        return None
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < minimum:
        raise FieldError(f"{where}: needs resolution r >= {minimum} (at r = 0 every vertex is one of the 12 "
                         f"icosahedron vertices), got r={r!r}")
    return _shared_grid(int(r))


def resolution_of(x: Tensor) -> int:
    """The resolution ``r`` of a chart tensor ``[B, C, 5, 2^r, 2^(r+1)]``; raises ``FieldError`` for other shapes."""
    n = x.shape[3] if x.dim() == 5 else 0
    if x.dim() != 5 or x.shape[2] != 5 or n < 1 or n & (n - 1) or x.shape[4] != 2 * n:
        raise FieldError(f"expected a chart tensor [B, C, 5, 2^r, 2^(r+1)], got shape {tuple(x.shape)}")
    return n.bit_length() - 1


def _input_grid(fixed: IcoGrid | None, x: Tensor, where: str, minimum: int = 1) -> IcoGrid:
    """The layer's own grid, or (for a layer built without ``r``) the grid of the input's resolution."""
    if fixed is not None:
        return fixed
    try:
        r = resolution_of(x)
    except FieldError as error:
        raise FieldError(f"{where}: {error}") from None
    return _layer_grid(r, where, minimum)


def _rule_values(flat: Tensor, grid: IcoGrid) -> Tensor:
    """``[B, F, O, 12]``: the singular rule's value at the 10 chart pixels on icosahedron vertices, then N and S
    (the mean of the five neighbours over all orientations), from ``flat: [B, F, O, V - 2]``."""
    _, neighbours = _singular_tables(grid, flat.device)
    gathered = flat.index_select(3, neighbours.reshape(-1)).view(*flat.shape[:3], *neighbours.shape)
    means = gathered.mean(dim=(2, 4))  # [B, F, 12]
    return means[:, :, None, :].expand(-1, -1, flat.shape[2], -1)


def _singular_tables(grid: IcoGrid, device: torch.device) -> tuple[Tensor, Tensor]:
    """The 10 chart pixels on icosahedron vertices, and the five distinct neighbours of those 10 and of N, S."""
    if grid.r < 1:
        raise FieldError("icosahedral layers need resolution r >= 1 (at r = 0 every vertex is singular)")
    cache = grid.__dict__.setdefault("_singular_cache", {})
    if str(device) not in cache:
        pixels = torch.nonzero(grid.singular[:-2]).flatten()
        vertices = torch.cat([pixels, torch.tensor([grid.north, grid.south])])
        neighbours = torch.stack([torch.unique(row[row >= 0])[:5] for row in grid.neighbours[vertices]])
        cache[str(device)] = (pixels.to(device), neighbours.to(device))
    return cache[str(device)]


def _vertex_values(x: Tensor, grid: IcoGrid, orientations: int) -> Tensor:
    """``[B, F, O, V]`` per-vertex values; the 12 icosahedron vertices (10 chart pixels, then N and S) follow the
    singular rule."""
    b, c = x.shape[:2]
    flat = x.reshape(b, c // orientations, orientations, -1)
    pixels, _ = _singular_tables(grid, x.device)
    rule = _rule_values(flat, grid)
    values = torch.cat([flat, rule[..., 10:]], dim=-1)  # the pixels, then the poles
    return values.index_copy(3, pixels, rule[..., :10].contiguous())


def pad_charts(x: Tensor, grid: IcoGrid, field: FieldType | str = "trivial") -> Tensor:
    """Pad each chart by one pixel with the values of the neighbouring charts.

    Args:
        x: ``[B, C, 5, n, 2n]``.
        grid: the ``IcoGrid`` of resolution ``log2(n)``.
        field: the field type of ``x`` (``trivial_field(n)`` or ``regular_field(n)``, C_6, 6 channels per field,
            orientation axis innermost), or the kind alone, ``"trivial"`` / ``"regular"``: regular fields are shifted
            cyclically by the frame rotation across each seam.

    Returns: ``[B, C, 5, n + 2, 2n + 2]``: the charts copied in, the ``O(n)`` border pixels gathered (its own autograd
    rule sends the gradient back the same way, without copies of the whole tensor). Pixels at the 12 icosahedron
    vertices (inside and in the padding) hold the singular rule's value (see ``average_singular``); the two corners
    that no hexagonal filter reads are zero.
    """
    orientations = _orientations(field, "pad_charts")
    _check(x, grid, field, "pad_charts")
    return _PadCharts.apply(x, grid, orientations)


class _PadCharts(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, grid: IcoGrid, orientations: int) -> Tensor:
        b, c = x.shape[:2]
        n = grid.n
        tables = _padding_tables(grid, orientations, x.device)
        flat = x.reshape(b, c // orientations, orientations, -1)
        padded = x.new_empty(b, c, 5, n + 2, 2 * n + 2)
        padded[..., 1:n + 1, 1:2 * n + 1] = x
        out = padded.view(b, c // orientations, orientations, -1)
        border = flat.reshape(b, c // orientations, -1).index_select(2, tables["border_source"])
        out.index_copy_(3, tables["border_position"], border.view(b, c // orientations, orientations, -1))
        rule = _rule_values(flat, grid).index_select(3, tables["rule_source"])
        out.index_copy_(3, tables["rule_position"], rule)
        out.index_fill_(3, tables["zero_position"], 0.0)
        ctx.grid, ctx.orientations, ctx.shape = grid, orientations, x.shape
        return padded

    @staticmethod
    def backward(ctx, grad_padded: Tensor):
        grid, orientations = ctx.grid, ctx.orientations
        b, c = ctx.shape[:2]
        fields, n = c // orientations, grid.n
        tables = _padding_tables(grid, orientations, grad_padded.device)
        pixels, neighbours = _singular_tables(grid, grad_padded.device)
        grad = grad_padded[..., 1:n + 1, 1:2 * n + 1].contiguous()
        flat = grad.view(b, fields, orientations, -1)
        flat.index_fill_(3, pixels, 0.0)  # the raw values at icosahedron vertices are replaced by the rule
        padded = grad_padded.reshape(b, fields, orientations, -1)
        border = padded.index_select(3, tables["border_position"]).reshape(b, fields, -1)
        flat.view(b, fields, -1).index_add_(2, tables["border_source"], border)
        rule = padded.index_select(3, tables["rule_position"]).sum(dim=2)  # [B, F, R]
        per_vertex = rule.new_zeros(b, fields, 12).index_add_(2, tables["rule_source"], rule)
        share = (per_vertex / (neighbours.shape[1] * orientations))[..., None].expand(-1, -1, -1, neighbours.shape[1])
        spread = rule.new_zeros(b, fields, flat.shape[-1]).index_add_(2, neighbours.reshape(-1),
                                                                      share.reshape(b, fields, -1))
        flat += spread[:, :, None, :]
        return grad, None, None


def _padding_tables(grid: IcoGrid, orientations: int, device: torch.device) -> dict[str, Tensor]:
    """Index sets of the padded charts (positions in the flattened ``[5, n + 2, 2n + 2]``): border pixels read from
    ordinary pixels (``border_source``: ``[O * K]`` into the flattened ``[O, V - 2]`` input, with the seam's gauge
    shift), pixels at icosahedron vertices (``rule_source``: which of the 12), and the unused corners."""
    key = (orientations, str(device))
    cache = grid.__dict__.setdefault("_padding_tables_cache", {})
    if key not in cache:
        pixels, _ = _singular_tables(grid, torch.device("cpu"))
        singular_order = torch.full((grid.num_vertices,), -1, dtype=torch.int64)
        singular_order[pixels] = torch.arange(10)
        singular_order[grid.north], singular_order[grid.south] = 10, 11
        vertex = grid.pad_index.reshape(-1)
        shift = grid.pad_shift.reshape(-1)
        n = grid.n
        inside = torch.zeros(5, n + 2, 2 * n + 2, dtype=torch.bool)
        inside[:, 1:n + 1, 1:2 * n + 1] = True
        inside = inside.reshape(-1)
        is_rule = (vertex >= 0) & (singular_order[vertex.clamp(min=0)] >= 0)
        is_border = ~inside & (vertex >= 0) & ~is_rule
        border = torch.nonzero(is_border).flatten()
        rows = [((t - shift[border]) % orientations) * (grid.num_vertices - 2) + vertex[border]
                for t in range(orientations)]
        rule = torch.nonzero(is_rule).flatten()
        cache[key] = {
            "border_position": border.to(device),
            "border_source": torch.cat(rows).to(device),
            "rule_position": rule.to(device),
            "rule_source": singular_order[vertex[rule]].to(device),
            "zero_position": torch.nonzero(vertex < 0).flatten().to(device),
        }
    return cache[key]


def average_singular(x: Tensor, grid: IcoGrid, field: FieldType | str = "trivial", *, inplace: bool = False
                     ) -> Tensor:
    """Set the 10 chart pixels at icosahedron vertices to the mean of their 5 neighbours over all orientations (the
    two poles, which have no pixel, follow the same rule wherever they are read). ``inplace`` writes into ``x``
    (for fresh outputs whose producer does not keep them for its backward)."""
    orientations = _orientations(field, "average_singular")
    _check(x, grid, field, "average_singular")
    if inplace:
        return _SingularRuleInplace.apply(x, grid, orientations)
    pixels, _ = _singular_tables(grid, x.device)
    b, c = x.shape[:2]
    out = x.clone()
    flat = out.view(b, c // orientations, orientations, -1)
    flat.index_copy_(3, pixels, _rule_values(flat, grid)[..., :10].contiguous())
    return out


class _SingularRuleInplace(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, grid: IcoGrid, orientations: int) -> Tensor:
        pixels, _ = _singular_tables(grid, x.device)
        b, c = x.shape[:2]
        flat = x.view(b, c // orientations, orientations, -1)
        flat.index_copy_(3, pixels, _rule_values(flat, grid)[..., :10].contiguous())
        ctx.mark_dirty(x)
        ctx.grid, ctx.orientations = grid, orientations
        return x

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        grid, orientations = ctx.grid, ctx.orientations
        pixels, neighbours = _singular_tables(grid, grad_out.device)
        b, c = grad_out.shape[:2]
        grad = grad_out.clone()
        flat = grad.view(b, c // orientations, orientations, -1)
        rule = flat.index_select(3, pixels).sum(dim=2) / (neighbours.shape[1] * orientations)  # [B, F, 10]
        flat.index_fill_(3, pixels, 0.0)
        spread = rule[..., None].expand(-1, -1, -1, neighbours.shape[1]).reshape(b, c // orientations, -1)
        total = rule.new_zeros(b, c // orientations, flat.shape[-1]).index_add_(2, neighbours[:10].reshape(-1), spread)
        flat += total[:, :, None, :]
        return grad, None, None


def rotate_charts(x: Tensor, grid: IcoGrid, matrix, field: FieldType | str = "trivial") -> Tensor:
    """Apply a rotation of the grid's icosahedron (an element of ``grid.symmetry_group``) to a chart tensor, exactly:
    ``(g . f)(g v) = f(v)``, with regular fields turned by the frame shift ``grid.rotation_gauge``. Values at the 12
    icosahedron vertices follow ``average_singular``'s rule."""
    orientations = _orientations(field, "rotate_charts")
    _check(x, grid, field, "rotate_charts")
    perm, shift = grid.rotation_gauge(matrix)
    values = _vertex_values(x, grid, orientations)  # [B, F, O, V]
    if orientations > 1:
        index = (torch.arange(orientations)[:, None] - shift[None, :]) % orientations  # [O, V]
        values = values.gather(2, index.to(x.device).expand(*values.shape[:2], -1, -1))
    moved = torch.empty_like(values)
    moved[..., perm.to(x.device)] = values
    return grid.to_charts(moved.reshape(x.shape[0], x.shape[1], -1))


def _hex_kernel_positions() -> list[tuple[int, int]]:
    """Kernel positions ``(row, col)`` of the centre and of the six directions in a 3x3 kernel."""
    return [(1, 1)] + [(1 + di, 1 + dj) for di, dj in HEX_DIRECTIONS]


class IcoConv(nn.Module):
    """Gauge-equivariant convolution on the icosahedral grid with the 7-weight hexagonal filter.

    Update rule, for output orientation ``t`` (one of the 6 directions ``d_t`` of the local frame):
    ``y_t(v) = sum_{c', s} [w_{c'}(s - t, 0) x_{c', s}(v) + sum_m w_{c'}(s - t, m - t) x_{c', s}(v + d_m)]``,
    indices mod 6, i.e. the filter and the input orientations are turned together; trivial inputs have one
    orientation and trivial outputs average the six output orientations. Neighbours across chart seams come from
    ``pad_charts``.

    Args:
        in_type, out_type: ``trivial_field(n)`` or ``regular_field(n)`` of ``fivefold.spheres`` (a regular field is
            6 tensor channels).
        r: grid resolution, or None (default): the 7 weights do not depend on the resolution, so the layer then
            works on chart tensors of any resolution r >= 1, read from each input's shape. A given ``r`` is checked
            against every input.
        bias: a bias per output field.

    Shapes:
        x: ``[B, in_type.size, 5, 2^r, 2^(r+1)]`` -> ``[B, out_type.size, 5, 2^r, 2^(r+1)]``.

    The older form ``IcoConv(in_channels, out_channels, in_field="trivial", out_field="regular")`` still works for one
    release and warns.
    """

    def __init__(self, in_type: FieldType, out_type: FieldType, *legacy_fields: str, r: int | None = None,
                 bias: bool = True) -> None:
        super().__init__()
        if not isinstance(in_type, FieldType) or not isinstance(out_type, FieldType):
            in_field = legacy_fields[0] if len(legacy_fields) > 0 else "trivial"
            out_field = legacy_fields[1] if len(legacy_fields) > 1 else "regular"
            form = "in_channels, out_channels, in_field, out_field"
            in_type = legacy_type("IcoConv", in_type, in_field, form)
            out_type = legacy_type("IcoConv", out_type, out_field, form)
        elif legacy_fields:
            raise FieldError("IcoConv takes (in_type, out_type); the field types already say trivial or regular")
        self.in_type, self.out_type = in_type, out_type
        self.in_channels, self.out_channels = len(in_type), len(out_type)
        self.in_field, self.out_field = field_kind(in_type, "IcoConv"), field_kind(out_type, "IcoConv")
        self.in_orientations, self.out_orientations = _orientations(in_type), _orientations(out_type)
        self.grid = _layer_grid(r, "IcoConv")
        self.weight = nn.Parameter(torch.empty(self.out_channels, self.in_channels, self.in_orientations, 7))
        self.bias = nn.Parameter(torch.zeros(self.out_channels)) if bias else None
        self.register_buffer("_index", self._expansion_index(), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, std=math.sqrt(2.0 / (self.in_channels * self.in_orientations * 7)))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _expansion_index(self) -> Tensor:
        """``[6, O_in, 9]``: for output orientation t, input orientation s and 3x3 position, the index into the
        flattened ``[O_in, 7]`` weights (63 = zero: the two unused corners)."""
        positions = _hex_kernel_positions()
        index = torch.full((ORIENTATIONS, self.in_orientations, 9), self.in_orientations * 7, dtype=torch.int64)
        for t in range(ORIENTATIONS):
            for s in range(self.in_orientations):
                relative = (s - t) % ORIENTATIONS if self.in_orientations > 1 else 0
                for m, (row, col) in enumerate(positions):
                    tap = 0 if m == 0 else 1 + (m - 1 - t) % ORIENTATIONS
                    index[t, s, row * 3 + col] = relative * 7 + tap
        return index

    def expand_filter(self) -> Tensor:
        """The conv2d weight ``[C_out * O_out, C_in * O_in, 3, 3]``."""
        flat = self.weight.reshape(self.out_channels, self.in_channels, -1)
        flat = torch.cat([flat, flat.new_zeros(self.out_channels, self.in_channels, 1)], dim=-1)
        kernel = flat.index_select(2, self._index.reshape(-1))
        kernel = kernel.reshape(self.out_channels, self.in_channels, ORIENTATIONS, self.in_orientations, 3, 3)
        if self.out_orientations == 1:
            kernel = kernel.mean(dim=2, keepdim=True)
        return kernel.permute(0, 2, 1, 3, 4, 5).reshape(self.out_channels * self.out_orientations,
                                                        self.in_channels * self.in_orientations, 3, 3)

    def forward(self, x: Tensor) -> Tensor:
        grid = _input_grid(self.grid, x, "IcoConv")
        expected = self.in_channels * self.in_orientations
        if x.dim() != 5 or x.shape[1] != expected:
            raise FieldError(f"IcoConv: expected [B, {expected}, 5, {grid.n}, {2 * grid.n}] "
                             f"({self.in_type!r}), got shape {tuple(x.shape)}")
        padded = pad_charts(x, grid, self.in_field)  # [B, C_in * O_in, 5, n + 2, 2n + 2]
        bias = self.bias.repeat_interleave(self.out_orientations) if self.bias is not None else None
        out = F.conv3d(padded, self.expand_filter()[:, :, None], bias)  # the charts are the depth axis
        return average_singular(out, grid, self.out_field, inplace=True)

    def extra_repr(self) -> str:
        return f"{self.in_type!r} -> {self.out_type!r}, r={None if self.grid is None else self.grid.r}"


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
        if mode not in ("max", "mean"):
            raise FieldError(f"IcoPool: mode must be 'max' or 'mean', got {mode!r}")
        self.in_type = in_type
        self.grid = _layer_grid(r, "IcoPool (from r to r - 1 >= 1)", minimum=2)
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        grid = _input_grid(self.grid, x, "IcoPool (from r to r - 1 >= 1)", minimum=2)
        n = grid.n
        padded = pad_charts(x, grid, self.in_type or self.field)
        taps = torch.stack([padded[..., 1 + di:n + 1 + di:2, 1 + dj:2 * n + 1 + dj:2]
                            for di, dj in [(0, 0), *HEX_DIRECTIONS]])
        pooled = taps.amax(dim=0) if self.mode == "max" else taps.mean(dim=0)
        return average_singular(pooled, _shared_grid(grid.r - 1), self.field)

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
        self.grid = _layer_grid(r, "IcoUnpool (from r - 1 >= 1 to r)", minimum=2)
        self.coarse = None if r is None else _shared_grid(int(r) - 1)

    def forward(self, x: Tensor) -> Tensor:
        coarse = _input_grid(self.coarse, x, "IcoUnpool (from r - 1 >= 1 to r)")
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
        return average_singular(out, _shared_grid(coarse.r + 1), self.field, inplace=True)

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
        if mode not in ("max", "mean"):
            raise FieldError(f"IcoGroupPool: mode must be 'max' or 'mean', got {mode!r}")
        self.in_type = in_type
        self.grid, self.mode = _layer_grid(r, "IcoGroupPool"), mode

    @property
    def out_type(self) -> FieldType | None:
        return None if self.in_type is None else trivial_field(len(self.in_type))

    def forward(self, x: Tensor) -> Tensor:
        grid = _input_grid(self.grid, x, "IcoGroupPool")
        _check(x, grid, self.in_type or "regular", "IcoGroupPool")
        fields = x.reshape(x.shape[0], -1, ORIENTATIONS, *x.shape[2:])
        pooled = fields.amax(dim=2) if self.mode == "max" else fields.mean(dim=2)
        return average_singular(pooled, grid, "trivial")

    def extra_repr(self) -> str:
        return f"{self.in_type or 'regular'!r}, mode={self.mode}, r={None if self.grid is None else self.grid.r}"


class IcoBatchNorm(nn.Module):
    """Batch norm with one mean/variance/scale/shift per field, shared by its orientations and all vertices.

    The statistics skip the 12 icosahedron vertices: the chart pixels miss the two poles, and only the set of the
    other vertices is mapped onto itself by every rotation, so only its statistics are invariant.

    Shapes: ``[B, F * O, 5, n, 2n]`` -> same. ``r=None`` (default): any resolution, read from the input (the
    statistics and parameters are per field, not per vertex).
    """

    def __init__(self, in_type: FieldType, *legacy: str, r: int | None = None, eps: float = 1e-5,
                 momentum: float = 0.1) -> None:
        super().__init__()
        if not isinstance(in_type, FieldType):  # IcoBatchNorm(num_fields, field="regular")
            in_type = legacy_type("IcoBatchNorm", in_type, legacy[0] if legacy else "regular", "num_fields, field")
        elif legacy:
            raise FieldError("IcoBatchNorm takes (in_type, r=...); the field type already says trivial or regular")
        num_fields = len(in_type)
        self.in_type = in_type
        self.num_fields, self.field, self.eps, self.momentum = num_fields, field_kind(in_type, "IcoBatchNorm"), eps, \
            momentum
        self.orientations = _orientations(in_type)
        self.grid = _layer_grid(r, "IcoBatchNorm")
        self.weight = nn.Parameter(torch.ones(num_fields))
        self.bias = nn.Parameter(torch.zeros(num_fields))
        self.register_buffer("running_mean", torch.zeros(num_fields))
        self.register_buffer("running_var", torch.ones(num_fields))

    def forward(self, x: Tensor) -> Tensor:
        grid = _input_grid(self.grid, x, "IcoBatchNorm")
        grid.check_charts(x, "IcoBatchNorm")
        if x.dim() != 5 or x.shape[1] != self.num_fields * self.orientations:
            raise FieldError(f"IcoBatchNorm: expected {self.in_type!r} ({self.num_fields * self.orientations} "
                             f"channels), got shape {tuple(x.shape)}")
        fields = x.reshape(x.shape[0], self.num_fields, -1)  # [B, F, O * pixels]
        if self.training:
            mean, var, count = self._statistics(x, _singular_tables(grid, x.device)[0])
            with torch.no_grad():
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * count / max(count - 1, 1), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight * torch.rsqrt(var + self.eps)
        out = torch.addcmul((self.bias - mean * scale)[:, None], fields, scale[:, None])
        return out.reshape(x.shape)

    def _statistics(self, x: Tensor, singular_pixels: Tensor) -> tuple[Tensor, Tensor, int]:
        """Per-field mean and (biased) variance over batch, orientations and the chart pixels other than the 10 on
        icosahedron vertices: the statistics of all pixels, minus those 10 by the parallel-variance formula (no
        gather of the whole tensor)."""
        b = x.shape[0]
        var_all, mean_all = torch.var_mean(x.reshape(b, self.num_fields, -1), dim=(0, 2), unbiased=False)
        singular = x.reshape(b, self.num_fields, self.orientations, -1).index_select(3, singular_pixels)
        var_s, mean_s = torch.var_mean(singular, dim=(0, 2, 3), unbiased=False)
        n_all = b * self.orientations * (x.shape[2] * x.shape[3] * x.shape[4])
        n_s = b * self.orientations * len(singular_pixels)
        n_r = n_all - n_s
        mean = (n_all * mean_all - n_s * mean_s) / n_r
        m2 = n_all * var_all - n_s * var_s - (mean_s - mean).square() * (n_r * n_s / n_all)
        return mean, (m2 / n_r).clamp(min=0.0), n_r
