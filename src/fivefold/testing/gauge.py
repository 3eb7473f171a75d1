"""The gauge action on mesh features: every vertex's tangent frame turned by its own angle.

Turning the frame at vertex ``v`` by ``g_v`` (counter-clockwise about the normal) rewrites a frequency-``k`` feature
there as ``rho_k(-g_v) x_v``: scalars stay, tangent vectors turn by ``-g_v``. A gauge-equivariant layer gives the same
answer whether it is run in the old frames and its output rewritten, or run on rewritten inputs with operators
recomputed in the new frames (``MeshOperators.regauge(angles)``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from fivefold.groups import FieldType, so2_rotate

__all__ = ["random_gauge", "gauge_transform"]


def random_gauge(num_vertices: int, generator: torch.Generator | None = None, *, multiple_of: float | None = None,
                 dtype: torch.dtype = torch.float64) -> Tensor:
    """``[V]`` angles in ``[0, 2 pi)``: uniform, or uniform over the multiples of ``multiple_of`` (e.g. ``2 pi / N``
    for layers that are exactly equivariant only to those)."""
    u = torch.rand(num_vertices, generator=generator, dtype=dtype)
    if multiple_of is None:
        return u * 2 * math.pi
    steps = max(1, round(2 * math.pi / multiple_of))
    return torch.floor(u * steps) * multiple_of


def gauge_transform(x: Tensor, field_type: FieldType, angles: Tensor) -> Tensor:
    """``x [V, C]`` rewritten in frames turned by ``angles [V]``: ``rho(-angles_v) x_v`` per vertex."""
    return so2_rotate(x, field_type, -angles.to(x.dtype))
