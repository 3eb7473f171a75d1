"""Chart padding: one pixel from the neighbouring charts, with the gauge shift of regular fields at the seams, so
that every icosahedral layer is ordinary tensor ops over the five charts."""

from __future__ import annotations

import torch
from torch import Tensor

from fivefold.groups import FieldType
from fivefold.spheres.charts import check_fields, orientations_of, padding_tables, singular_tables
from fivefold.spheres.grid import IcoGrid
from fivefold.spheres.singular import rule_values

__all__ = ["pad_charts"]


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
    orientations = orientations_of(field, "pad_charts")
    check_fields(x, grid, field, "pad_charts")
    return _PadCharts.apply(x, grid, orientations)


class _PadCharts(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, grid: IcoGrid, orientations: int) -> Tensor:
        b, c = x.shape[:2]
        n = grid.n
        tables = padding_tables(grid.r, orientations, x.device)
        flat = x.reshape(b, c // orientations, orientations, -1)
        padded = x.new_empty(b, c, 5, n + 2, 2 * n + 2)
        padded[..., 1:n + 1, 1:2 * n + 1] = x
        out = padded.view(b, c // orientations, orientations, -1)
        border = flat.reshape(b, c // orientations, -1).index_select(2, tables["border_source"])
        out.index_copy_(3, tables["border_position"], border.view(b, c // orientations, orientations, -1))
        rule = rule_values(flat, singular_tables(grid.r, x.device)[1]).index_select(3, tables["rule_source"])
        out.index_copy_(3, tables["rule_position"], rule)
        out.index_fill_(3, tables["zero_position"], 0.0)
        ctx.grid, ctx.orientations, ctx.shape = grid, orientations, x.shape
        return padded

    @staticmethod
    def backward(ctx, grad_padded: Tensor):
        grid, orientations = ctx.grid, ctx.orientations
        b, c = ctx.shape[:2]
        fields, n = c // orientations, grid.n
        tables = padding_tables(grid.r, orientations, grad_padded.device)
        pixels, neighbours = singular_tables(grid.r, grad_padded.device)
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
