"""The rule at the 12 icosahedron vertices, and the exact action of the grid's rotations on chart tensors.

The 12 vertices of the icosahedron have five neighbours, not six; there a hexagonal filter would see one neighbour
twice and break the symmetry, so every layer starts and ends with ``average_singular``: the value at those vertices
becomes the mean, over their five neighbours and the six orientations, of the layer's input or output (the poles,
which have no chart pixel, follow the same rule wherever they are read: ``IcoGrid.from_charts(x, field=...)``). That
rule commutes with the 60 rotations.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fivefold.groups import Action, FieldType
from fivefold.spheres.charts import check_fields, orientations_of, singular_tables
from fivefold.spheres.grid import IcoGrid

__all__ = ["average_singular", "rotate_charts", "chart_action"]


def rule_values(flat: Tensor, neighbours: Tensor) -> Tensor:
    """``[B, F, O, 12]``: the singular rule's value at the 10 chart pixels on icosahedron vertices, then N and S
    (the mean of the five neighbours over all orientations), from ``flat: [B, F, O, V - 2]`` and the ``[12, 5]``
    neighbour table."""
    gathered = flat.index_select(3, neighbours.reshape(-1)).view(*flat.shape[:3], *neighbours.shape)
    means = gathered.mean(dim=(2, 4))  # [B, F, 12]
    return means[:, :, None, :].expand(-1, -1, flat.shape[2], -1)


def vertex_values(x: Tensor, grid: IcoGrid, orientations: int) -> Tensor:
    """``[B, F, O, V]`` per-vertex values; the 12 icosahedron vertices (10 chart pixels, then N and S) follow the
    singular rule."""
    b, c = x.shape[:2]
    flat = x.reshape(b, c // orientations, orientations, -1)
    pixels, neighbours = singular_tables(grid.r, x.device)
    rule = rule_values(flat, neighbours)
    values = torch.cat([flat, rule[..., 10:]], dim=-1)  # the pixels, then the poles
    return values.index_copy(3, pixels, rule[..., :10].contiguous())


def average_singular(x: Tensor, grid: IcoGrid, field: FieldType | str = "trivial", *, inplace: bool = False
                     ) -> Tensor:
    """Set the 10 chart pixels at icosahedron vertices to the mean of their 5 neighbours over all orientations (the
    two poles, which have no pixel, follow the same rule wherever they are read). ``inplace`` writes into ``x``
    (for fresh outputs whose producer does not keep them for its backward)."""
    orientations = orientations_of(field, "average_singular")
    check_fields(x, grid, field, "average_singular")
    if inplace:
        return _SingularRuleInplace.apply(x, grid, orientations)
    pixels, neighbours = singular_tables(grid.r, x.device)
    b, c = x.shape[:2]
    out = x.clone()
    flat = out.view(b, c // orientations, orientations, -1)
    flat.index_copy_(3, pixels, rule_values(flat, neighbours)[..., :10].contiguous())
    return out


class _SingularRuleInplace(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, grid: IcoGrid, orientations: int) -> Tensor:
        pixels, neighbours = singular_tables(grid.r, x.device)
        b, c = x.shape[:2]
        flat = x.view(b, c // orientations, orientations, -1)
        flat.index_copy_(3, pixels, rule_values(flat, neighbours)[..., :10].contiguous())
        ctx.mark_dirty(x)
        ctx.grid, ctx.orientations = grid, orientations
        return x

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        grid, orientations = ctx.grid, ctx.orientations
        pixels, neighbours = singular_tables(grid.r, grad_out.device)
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
    orientations = orientations_of(field, "rotate_charts")
    check_fields(x, grid, field, "rotate_charts")
    perm, shift = grid.rotation_gauge(matrix)
    values = vertex_values(x, grid, orientations)  # [B, F, O, V]
    if orientations > 1:
        index = (torch.arange(orientations)[:, None] - shift[None, :]) % orientations  # [O, V]
        values = values.gather(2, index.to(x.device).expand(*values.shape[:2], -1, -1))
    moved = torch.empty_like(values)
    moved[..., perm.to(x.device)] = values
    return grid.to_charts(moved.reshape(x.shape[0], x.shape[1], -1))


def chart_action(grid: IcoGrid, field: FieldType | str = "trivial") -> Action:
    """The grid's 60 rotations acting on chart tensors of ``field`` (by ``rotate_charts``): what
    ``fivefold.testing.assert_equivariant`` takes to test an icosahedral network, e.g.
    ``assert_equivariant(net, chart_action(grid, trivial_field(1)), chart_action(grid, regular_field(4)), x)``."""
    group = grid.symmetry_group
    return Action(group, lambda x, g: rotate_charts(x, grid, group.matrix(g), field), f"rotation of {field!r} charts")
