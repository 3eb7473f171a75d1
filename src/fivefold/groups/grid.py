"""How a group element acts on signals on a 2D or 3D grid.

Grid coordinates are centred pixel (voxel) indices in tensor-axis order, ``p = (i, j)`` or ``(d, h, w)``, measured
from the centre of the grid. A matrix ``M`` moves a signal ``f`` to ``(M . f)(p) = f(M^-1 p)``; composing matrices
composes the actions, ``M_a . (M_b . f) = (M_a M_b) . f``.

- Signed permutation matrices (90-degree rotations, axis flips, the cube group) permute the grid onto itself: the
  action is an exact permutation of pixels (``torch.flip`` and ``permute``), for square/cubic grids.
- Any other rotation resamples the signal by bilinear (2D) or trilinear (3D) interpolation, with zeros outside; this is
  exact only up to interpolation error.

A regular field ``[B, C * |G|, *spatial]`` (group axis innermost) carries, besides the spatial action, a permutation of
its group axis: ``(g . f)_h(p) = f_{g^-1 h}(g^-1 p)``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from fivefold.errors import FieldError, GroupError, check_option
from fivefold.groups.fields import FieldType
from fivefold.groups.finite import FiniteGroup

__all__ = ["transform_grid", "rotate_images", "act_on_grid", "permute_group_axis"]


def transform_grid(x: Tensor, matrix: np.ndarray | Tensor) -> Tensor:
    """The signal ``x`` moved by the coordinate matrix ``M``: ``out(p) = x(M^-1 p)``.

    Args:
        x: ``[..., *spatial]``, with ``d`` spatial axes last (``d`` = the matrix size, 2 or 3).
        matrix: ``[d, d]`` orthogonal matrix.

    Returns: a tensor like ``x``. Exact for signed permutation matrices; interpolated otherwise.
    """
    m = torch.as_tensor(matrix, dtype=torch.float64).cpu()
    d = m.shape[0]
    if m.shape != (d, d) or d not in (2, 3):
        raise GroupError(f"transform_grid: matrix must be 2x2 or 3x3, got {tuple(m.shape)}")
    if x.dim() < d:
        raise FieldError(f"transform_grid: x needs at least {d} spatial axes, got shape {tuple(x.shape)}")
    rounded = m.round()
    if torch.allclose(rounded, m, atol=1e-9) and bool((rounded.abs().sum(0) == 1).all()):
        return _permute_grid(x, rounded.to(torch.int64))
    return _resample_grid(x, m)


def _permute_grid(x: Tensor, m: Tensor) -> Tensor:
    d = m.shape[0]
    lead = x.dim() - d
    sizes = x.shape[lead:]
    # out(p) = x(M^T p): input axis a reads sign[a] * p[source[a]]
    source = m.abs().argmax(dim=0).tolist()
    sign = m.sum(dim=0).tolist()
    if any(sizes[a] != sizes[source[a]] for a in range(d)):
        raise FieldError(f"transform_grid: an axis-swapping rotation needs equal spatial sizes, got {tuple(sizes)}")
    flipped = [lead + a for a in range(d) if sign[a] < 0]
    y = x.flip(flipped) if flipped else x
    # output axis b is the input axis a with source[a] == b
    order = [source.index(b) for b in range(d)]
    return y.permute(*range(lead), *(lead + a for a in order))


def _resample_grid(x: Tensor, m: Tensor) -> Tensor:
    d = m.shape[0]
    lead_shape = x.shape[:-d]
    sizes = x.shape[-d:]
    flat = x.reshape(1, -1, *sizes)
    axes = [torch.arange(s, dtype=torch.float64) - (s - 1) / 2 for s in sizes]
    points = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)  # [*sizes, d] centred coordinates p
    source = points @ m  # rows p^T M = (M^T p)^T = (M^-1 p)^T
    half = torch.tensor([max((s - 1) / 2, 0.5) for s in sizes], dtype=torch.float64)
    normalised = (source / half).flip(-1)  # grid_sample wants (w, h[, d]) order
    grid = normalised.to(x.dtype if x.is_floating_point() else torch.float32).to(x.device)[None]
    out = F.grid_sample(flat, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return out.reshape(*lead_shape, *sizes)


def rotate_images(x: Tensor, angles: Tensor) -> Tensor:
    """Rotate each image of a batch by its own angle (bilinear, zeros outside), as ``transform_grid`` does for one
    angle: ``out[n](p) = x[n](R(-angle[n]) p)`` in centred ``(i, j)`` coordinates.

    Args:
        x: ``[N, C, H, W]`` floating point.
        angles: ``[N]`` radians.
    """
    if x.dim() != 4 or angles.shape != (x.shape[0],):
        raise FieldError(f"rotate_images: x must be [N, C, H, W] and angles [N]; got {tuple(x.shape)} and "
                         f"{tuple(angles.shape)}")
    height, width = x.shape[-2:]
    cos, sin = torch.cos(angles.to(torch.float64)), torch.sin(angles.to(torch.float64))
    # source (i, j) = R^T (i, j): i_s = cos i + sin j, j_s = -sin i + cos j; grid_sample takes (x = j, y = i),
    # normalised by the half-sizes
    hi, hj = max((height - 1) / 2, 0.5), max((width - 1) / 2, 0.5)
    theta = torch.zeros(x.shape[0], 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * hi / hj
    theta[:, 1, 0], theta[:, 1, 1] = sin * hj / hi, cos
    grid = F.affine_grid(theta.to(x.dtype).to(x.device), list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def permute_group_axis(x: Tensor, group: FiniteGroup, g: int, dim: int = 1) -> Tensor:
    """The regular action of ``g`` on the group axis of ``x``: ``out[..., c * |G| + h] = x[..., c * |G| + g^-1 h]``
    along dimension ``dim`` (default: channels)."""
    order = group.order
    if x.shape[dim] % order:
        raise FieldError(f"regular field of {group.name}: axis {dim} has {x.shape[dim]} channels, "
                         f"not a multiple of |G| = {order}")
    index = torch.tensor(group.cayley_table[group.inverse(g)], device=x.device)
    shape = list(x.shape)
    split = x.reshape(*shape[:dim], shape[dim] // order, order, *shape[dim + 1:])
    return split.index_select(dim + 1, index).reshape(shape)


def act_on_grid(x: Tensor, group: FiniteGroup, g: int, field: FieldType | str = "trivial") -> Tensor:
    """Apply element ``g`` of a finite group to a field on a grid ``[B, C, *spatial]``: the grid moves
    (``transform_grid``) and the channels transform by the field type's representation.

    ``field``: a ``FieldType`` of ``group`` (``C = field.size``), or the shorthand ``"trivial"`` (scalar channels, only
    the grid moves) or ``"regular"`` (channels ``C * |G|``, group axis innermost, permuted by ``g``).
    """
    if isinstance(field, FieldType):
        if field.group != group:
            raise FieldError(f"act_on_grid: the field type {field!r} belongs to {field.group.name}, not {group.name}")
    else:
        check_option(field, ("trivial", "regular"), "field (a FieldType, or the kind)", "act_on_grid")
    if x.dim() != group.dim + 2:
        raise FieldError(f"act_on_grid: {group.name} acts on {group.dim}D grids, so x must be "
                         f"[B, C, {', '.join('S' * group.dim)}], got shape {tuple(x.shape)}")
    moved = transform_grid(x, group.matrix(g))
    if isinstance(field, FieldType):
        return field.transform(moved, g, dim=1)
    return permute_group_axis(moved, group, g) if field == "regular" else moved
