"""GraphSAGE convolution of Hamilton, Ying & Leskovec (2017), "Inductive Representation Learning on Large Graphs".

Update rule: ``x'_i = W_1 agg_{j -> i} x_j + W_2 x_i (+ b)`` with ``agg`` the mean or the element-wise max over
incoming neighbours (0 for a node with none); optionally L2-normalised. Permutation-equivariant.
Mean aggregation is linear in the source features, so it runs as one CSR product; max aggregates per-edge messages.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from fivefold.errors import check_option
from fivefold.graphs._structure import inverse_in_degree
from fivefold.graphs.block import Block
from fivefold.graphs.graph import Graph
from fivefold.graphs.validate import check_features
from fivefold.ops import scatter, spmm

__all__ = ["SAGEConv"]


class SAGEConv(nn.Module):
    """GraphSAGE layer.

    Args:
        in_channels: input features F.
        out_channels: output features F'.
        aggr: ``"mean"`` or ``"max"``.
        normalize: L2-normalise each output row.
        root_weight: add the ``W_2 x_i`` term.
        bias: bias in the neighbour transform ``W_1``.

    Shapes:
        x: ``[N, F]`` -> ``[N, F']``; on a ``Block``: ``[num_src, F]`` -> ``[num_dst, F']`` (the mean over the
        sampled neighbours).
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, aggr: str = "mean", normalize: bool = False,
        root_weight: bool = True, bias: bool = True,
    ) -> None:
        super().__init__()
        check_option(aggr, ("mean", "max"), "aggr", "SAGEConv")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.aggr = aggr
        self.normalize = normalize
        self.lin_neighbors = nn.Linear(in_channels, out_channels, bias=bias)
        self.lin_root = nn.Linear(in_channels, out_channels, bias=False) if root_weight else None

    def reset_parameters(self) -> None:
        self.lin_neighbors.reset_parameters()
        if self.lin_root is not None:
            self.lin_root.reset_parameters()

    def forward(self, x: Tensor, graph: Graph | Block) -> Tensor:
        check_features(x, graph, self.in_channels)
        csc = graph.csc if isinstance(graph, Block) else graph.csc()
        if self.aggr == "mean":
            # mean and W_1 commute: aggregate whichever side is narrower
            scale = (1.0 / csc.degree().clamp(min=1).to(x.dtype).unsqueeze(-1) if isinstance(graph, Block)
                     else inverse_in_degree(graph, x.dtype))
            if self.out_channels < self.in_channels:
                out = spmm(csc, x @ self.lin_neighbors.weight.t()) * scale
                if self.lin_neighbors.bias is not None:
                    out = out + self.lin_neighbors.bias
            else:
                out = self.lin_neighbors(spmm(csc, x) * scale)
        else:
            messages = x.index_select(0, csc.indices)
            out = self.lin_neighbors(scatter(messages, csc.rows, csc.num_rows, "max", validate=False))
        if self.lin_root is not None:
            out = out + self.lin_root(x[: csc.num_rows])  # a Block's destinations are its first sources
        if self.normalize:
            out = F.normalize(out, p=2.0, dim=-1)
        return out

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, aggr={self.aggr!r}"
