"""An icosahedral U-Net for per-vertex segmentation of spherical signals (the architecture of the Ico-CNN's climate
segmentation experiment, Cohen, Weiler, Kicanaoglu & Welling 2019: gauge-equivariant convolutions on regular C_6
fields, pooling to coarser icosahedral grids and back, skip connections, a scalar output per class)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from fivefold.spheres.layers import IcoBatchNorm, IcoConv, IcoPool, IcoUnpool

__all__ = ["IcoUNet"]


class _Block(nn.Module):
    """Two gauge-equivariant convolutions with batch norm and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, in_field: str, r: int) -> None:
        super().__init__()
        self.conv1 = IcoConv(in_channels, out_channels, in_field, "regular", r=r)
        self.norm1 = IcoBatchNorm(out_channels, "regular", r=r)
        self.conv2 = IcoConv(out_channels, out_channels, "regular", "regular", r=r)
        self.norm2 = IcoBatchNorm(out_channels, "regular", r=r)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(self.norm2(self.conv2(x)))


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
        if r - len(widths) + 1 < 0:
            raise ValueError(f"IcoUNet: {len(widths)} levels need r >= {len(widths) - 1}, got r={r}")
        self.down = nn.ModuleList()
        self.pools = nn.ModuleList()
        for level, width in enumerate(widths):
            self.down.append(_Block(in_channels if level == 0 else widths[level - 1], width,
                                    "trivial" if level == 0 else "regular", r - level))
            if level < len(widths) - 1:
                self.pools.append(IcoPool(r - level, "regular", "max"))
        self.unpools = nn.ModuleList()
        self.up = nn.ModuleList()
        for level in reversed(range(len(widths) - 1)):
            self.unpools.append(IcoUnpool(r - level, "regular"))
            self.up.append(_Block(widths[level + 1] + widths[level], widths[level], "regular", r - level))
        self.head = IcoConv(widths[0], num_classes, "regular", "trivial", r=r)

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
