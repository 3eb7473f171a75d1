"""What every icosahedral layer shares: the resolution of a chart tensor, the layer's grid, the field check, and the
geometry tables of the singular-vertex rule and of chart padding.

The tables are pure functions of the resolution (every ``IcoGrid(r)`` has the same geometry), computed once per
resolution and device and passed explicitly to the code that uses them; nothing is written onto a grid.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import torch
from torch import Tensor

from fivefold.errors import FieldError
from fivefold.groups import FieldType
from fivefold.spheres.fields import ORIENTATIONS, field_kind
from fivefold.spheres.grid import IcoGrid

__all__ = ["resolution_of", "shared_grid", "singular_tables", "padding_tables"]


def orientations_of(field: FieldType | str, where: str = "icosahedral layer") -> int:
    """6 for regular fields, 1 for trivial ones."""
    return ORIENTATIONS if field_kind(field, where) == "regular" else 1


def check_fields(x: Tensor, grid: IcoGrid, field: FieldType | str, where: str) -> None:
    """``x`` must be a chart tensor ``[B, C, 5, n, 2n]`` of ``grid`` whose channels fit ``field``."""
    kind = field_kind(field, where)
    grid.check_charts(x, where)
    if x.dim() != 5:
        raise FieldError(f"{where}: expected [B, C, 5, {grid.n}, {2 * grid.n}], got shape {tuple(x.shape)}")
    if isinstance(field, FieldType) and x.shape[1] != field.size:
        raise FieldError(f"{where}: expected {field!r} = {field.size} channels, got {x.shape[1]}")
    if kind == "regular" and x.shape[1] % ORIENTATIONS:
        raise FieldError(f"{where}: a regular C6 field needs channels in multiples of 6, got {x.shape[1]}")


@cache
def shared_grid(r: int) -> IcoGrid:
    """One ``IcoGrid`` per resolution, shared by every layer (its tables are read-only)."""
    return IcoGrid(r)


def layer_grid(r: int | None, where: str, minimum: int = 1) -> IcoGrid | None:
    """The grid at resolution ``r`` for a layer, which needs ``r >= minimum`` (at r = 0 every vertex is singular);
    None when ``r`` is None (the layer then takes its resolution from each input)."""
    if r is None:
        return None
    if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < minimum:
        raise FieldError(f"{where}: needs resolution r >= {minimum} (at r = 0 every vertex is one of the 12 "
                         f"icosahedron vertices), got r={r!r}")
    return shared_grid(int(r))


def resolution_of(x: Tensor) -> int:
    """The resolution ``r`` of a chart tensor ``[B, C, 5, 2^r, 2^(r+1)]``; raises ``FieldError`` for other shapes."""
    n = x.shape[3] if x.dim() == 5 else 0
    if x.dim() != 5 or x.shape[2] != 5 or n < 1 or n & (n - 1) or x.shape[4] != 2 * n:
        raise FieldError(f"expected a chart tensor [B, C, 5, 2^r, 2^(r+1)], got shape {tuple(x.shape)}")
    return n.bit_length() - 1


def input_grid(fixed: IcoGrid | None, x: Tensor, where: str, minimum: int = 1) -> IcoGrid:
    """The layer's own grid, or (for a layer built without ``r``) the grid of the input's resolution."""
    if fixed is not None:
        return fixed
    try:
        r = resolution_of(x)
    except FieldError as error:
        raise FieldError(f"{where}: {error}") from None
    return layer_grid(r, where, minimum)


@cache
def singular_tables(r: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """At resolution ``r``: ``[10]`` the chart pixels on icosahedron vertices, and ``[12, 5]`` the five distinct
    neighbours of those 10 and of N, S."""
    if r < 1:
        raise FieldError("icosahedral layers need resolution r >= 1 (at r = 0 every vertex is singular)")
    grid = shared_grid(r)
    pixels = torch.nonzero(grid.singular[:-2]).flatten()
    vertices = torch.cat([pixels, torch.tensor([grid.north, grid.south])])
    neighbours = torch.stack([torch.unique(row[row >= 0])[:5] for row in grid.neighbours[vertices]])
    return pixels.to(device), neighbours.to(device)


@cache
def padding_tables(r: int, orientations: int, device: torch.device) -> dict[str, Tensor]:
    """Index sets of the padded charts at resolution ``r`` (positions in the flattened ``[5, n + 2, 2n + 2]``): border
    pixels read from ordinary pixels (``border_source``: ``[O * K]`` into the flattened ``[O, V - 2]`` input, with
    the seam's gauge shift), pixels at icosahedron vertices (``rule_source``: which of the 12), and the unused
    corners."""
    grid = shared_grid(r)
    pixels, _ = singular_tables(r, torch.device("cpu"))
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
    return {
        "border_position": border.to(device),
        "border_source": torch.cat(rows).to(device),
        "rule_position": rule.to(device),
        "rule_source": singular_order[vertex[rule]].to(device),
        "zero_position": torch.nonzero(vertex < 0).flatten().to(device),
    }
