"""Ico-CNN models (Cohen, Weiler, Kicanaoglu & Welling 2019): a classifier of whole spherical signals and an
icosahedral U-Net for per-vertex segmentation (the architecture of the paper's climate segmentation experiment:
gauge-equivariant convolutions on regular C_6 fields, pooling to coarser icosahedral grids and back, skip connections,
a scalar output per class)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from fivefold.errors import FieldError, check_option
from fivefold.groups import FieldType
from fivefold.spheres.conv import IcoConv
from fivefold.spheres.fields import regular_field, trivial_field
from fivefold.spheres.grid import IcoGrid
from fivefold.spheres.norm import IcoBatchNorm
from fivefold.spheres.pooling import IcoGroupPool, IcoPool, IcoUnpool

__all__ = ["IcoClassifier", "IcoUNet"]


class _Block(nn.Module):
    """Two gauge-equivariant convolutions with batch norm and ReLU."""

    def __init__(self, in_type: FieldType, out_type: FieldType, r: int) -> None:
        super().__init__()
        self.conv1 = IcoConv(in_type, out_type, r=r)
        self.norm1 = IcoBatchNorm(out_type, r=r)
        self.conv2 = IcoConv(out_type, out_type, r=r)
        self.norm2 = IcoBatchNorm(out_type, r=r)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(self.norm2(self.conv2(x)))


class IcoClassifier(nn.Module):
    """Classifier of spherical signals, invariant to the grid's 60 rotations (and approximately to all rotations).

    A lifting ``IcoConv`` (scalar -> regular C_6 fields), then regular ``IcoConv`` layers, each followed by
    ``IcoBatchNorm`` and ReLU, with ``IcoPool`` (``pool``) to the next coarser grid after the layers listed in
    ``pool_after``; then the max over the six orientations (``IcoGroupPool``), the max (or mean) over all vertices and a
    linear layer. The max is the default: a signal that covers a small part of the sphere (a digit on one hemisphere)
    is diluted by a mean over the whole grid, and the classifier then hangs on small differences that the batch-norm
    statistics of eval mode shift (measured on Spherical MNIST: 52 % in eval mode against 91 % with batch
    statistics after two epochs of 2,500 digits with the mean readout; 90 % with the max after three). The defaults
    (fields 8, 16, 16, 24, 24, 32; a coarser grid after layers 0, 2 and 4, so r = 4 ends at r = 1) follow the layer
    plan of the deep S2CNN baseline that the Ico-CNN paper compares with on Spherical MNIST.

    Args:
        in_channels: scalar input channels.
        num_classes: outputs.
        r: input resolution; it must allow ``len(pool_after)`` poolings (down to r = 1 at least).
        widths: regular fields of each convolution.
        pool_after: indices of the convolutions followed by ``IcoPool``.
        readout: ``"max"`` or ``"mean"`` over the vertices of the last grid.
        pool: ``"max"`` or ``"mean"``, the ``IcoPool`` mode between grids.

    Shapes:
        x: ``[B, in_channels, 5, 2^r, 2^(r+1)]`` -> ``[B, num_classes]``.
    """

    def __init__(self, in_channels: int, num_classes: int, r: int, widths: Sequence[int] = (8, 16, 16, 24, 24, 32),
                 pool_after: Sequence[int] = (0, 2, 4), readout: str = "max", pool: str = "max") -> None:
        super().__init__()
        for name, value in (("readout", readout), ("pool", pool)):
            check_option(value, ("max", "mean"), name, "IcoClassifier")
        self.readout = readout
        if not widths:
            raise FieldError("IcoClassifier: widths must name at least one convolution")
        if any(not 0 <= index < len(widths) - 1 for index in pool_after) or len(set(pool_after)) != len(pool_after):
            raise FieldError(f"IcoClassifier: pool_after must hold distinct indices below {len(widths) - 1} "
                             f"(a pooling needs a convolution after it), got {tuple(pool_after)}")
        if r - len(pool_after) < 1:
            raise FieldError(f"IcoClassifier: {len(pool_after)} poolings need r >= {len(pool_after) + 1}, got r={r}")
        self.convs, self.norms, self.pools = nn.ModuleList(), nn.ModuleList(), nn.ModuleDict()
        level = r
        in_type = trivial_field(in_channels)
        for index, width in enumerate(widths):
            out_type = regular_field(width)
            self.convs.append(IcoConv(in_type, out_type, r=level))
            self.norms.append(IcoBatchNorm(out_type, r=level))
            if index in pool_after:
                self.pools[str(index)] = IcoPool(out_type, pool, r=level)
                level -= 1
            in_type = out_type
        self.group_pool = IcoGroupPool(in_type, r=level)
        self.final_grid = IcoGrid(level)
        self.classifier = nn.Linear(widths[-1], num_classes)

    def forward(self, x: Tensor) -> Tensor:
        for index, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            x = torch.relu(norm(conv(x)))
            if str(index) in self.pools:
                x = self.pools[str(index)](x)
        scalars = self.final_grid.from_charts(self.group_pool(x))  # [B, F, V], the poles included
        pooled = scalars.amax(dim=-1) if self.readout == "max" else scalars.mean(dim=-1)
        return self.classifier(pooled)


class IcoUNet(nn.Module):
    """Per-vertex classifier on the icosahedral grid, equivariant to the grid's 60 rotations.

    Args:
        in_channels: scalar input channels.
        num_classes: scalar output channels (class scores per vertex).
        r: resolution of input and output.
        widths: regular fields per level; level ``l`` works at resolution ``r - l``.

    Shapes:
        x: ``[B, in_channels, 5, 2^r, 2^(r+1)]`` -> ``[B, num_classes, 5, 2^r, 2^(r+1)]``.
    """

    def __init__(self, in_channels: int, num_classes: int, r: int, widths: Sequence[int] = (8, 16, 32)) -> None:
        super().__init__()
        if not widths or r - len(widths) + 1 < 1:
            raise FieldError(f"IcoUNet: {len(widths)} levels (the coarsest at r - {len(widths) - 1} >= 1) need "
                             f"r >= {len(widths)}, got r={r}")
        self.down = nn.ModuleList()
        self.pools = nn.ModuleList()
        for level, width in enumerate(widths):
            in_type = trivial_field(in_channels) if level == 0 else regular_field(widths[level - 1])
            self.down.append(_Block(in_type, regular_field(width), r - level))
            if level < len(widths) - 1:
                self.pools.append(IcoPool(regular_field(width), "max", r=r - level))
        self.unpools = nn.ModuleList()
        self.up = nn.ModuleList()
        for level in reversed(range(len(widths) - 1)):
            self.unpools.append(IcoUnpool(regular_field(widths[level + 1]), r=r - level))
            self.up.append(_Block(regular_field(widths[level + 1] + widths[level]), regular_field(widths[level]),
                                  r - level))
        self.head = IcoConv(regular_field(widths[0]), trivial_field(num_classes), r=r)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for level, block in enumerate(self.down):
            x = block(x)
            if level < len(self.pools):
                skips.append(x)
                x = self.pools[level](x)
        for unpool, block in zip(self.unpools, self.up, strict=True):
            x = block(torch.cat([unpool(x), skips.pop()], dim=1))
        return self.head(x)
