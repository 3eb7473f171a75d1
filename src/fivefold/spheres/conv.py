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

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fivefold.errors import FieldError
from fivefold.groups import FieldType
from fivefold.spheres.charts import input_grid, layer_grid, orientations_of
from fivefold.spheres.fields import ORIENTATIONS, field_kind, legacy_type
from fivefold.spheres.grid import HEX_DIRECTIONS
from fivefold.spheres.padding import pad_charts
from fivefold.spheres.singular import average_singular

__all__ = ["IcoConv"]


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
        self.in_orientations, self.out_orientations = orientations_of(in_type), orientations_of(out_type)
        self.grid = layer_grid(r, "IcoConv")
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
        grid = input_grid(self.grid, x, "IcoConv")
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
