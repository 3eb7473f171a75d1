"""Batch norm on the icosahedral grid, with statistics that every rotation of the grid leaves unchanged."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fivefold.errors import FieldError
from fivefold.groups import FieldType
from fivefold.spheres.charts import input_grid, layer_grid, orientations_of, singular_tables
from fivefold.spheres.fields import field_kind, legacy_type

__all__ = ["IcoBatchNorm"]


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
        self.orientations = orientations_of(in_type)
        self.grid = layer_grid(r, "IcoBatchNorm")
        self.weight = nn.Parameter(torch.ones(num_fields))
        self.bias = nn.Parameter(torch.zeros(num_fields))
        self.register_buffer("running_mean", torch.zeros(num_fields))
        self.register_buffer("running_var", torch.ones(num_fields))

    def forward(self, x: Tensor) -> Tensor:
        grid = input_grid(self.grid, x, "IcoBatchNorm")
        grid.check_charts(x, "IcoBatchNorm")
        if x.dim() != 5 or x.shape[1] != self.num_fields * self.orientations:
            raise FieldError(f"IcoBatchNorm: expected {self.in_type!r} ({self.num_fields * self.orientations} "
                             f"channels), got shape {tuple(x.shape)}")
        fields = x.reshape(x.shape[0], self.num_fields, -1)  # [B, F, O * pixels]
        if self.training:
            mean, var, count = self._statistics(x, singular_tables(grid.r, x.device)[0])
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
