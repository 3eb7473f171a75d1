"""What the mesh experiments share: the isotropic baseline, the graph core's GCN on a mesh's edge graph."""

from __future__ import annotations

import torch
from torch import nn

from fivefold.graphs import GCNConv


class MeshGCN(nn.Module):
    """GCN (Kipf & Welling 2017) with residual connections on the mesh's edge graph: a linear map to ``width``,
    ``layers`` of ``x + relu(GCNConv(x))``, a linear map out. ``forward(x [V, in], item)`` reads ``item.graph``."""

    def __init__(self, in_channels: int, out_channels: int, width: int = 128, layers: int = 4) -> None:
        super().__init__()
        self.first = nn.Linear(in_channels, width)
        self.convs = nn.ModuleList(GCNConv(width, width) for _ in range(layers))
        self.last = nn.Linear(width, out_channels)

    def forward(self, x: torch.Tensor, item) -> torch.Tensor:
        x = self.first(x)
        for conv in self.convs:
            x = torch.relu(conv(x, item.graph)) + x
        return self.last(x)
