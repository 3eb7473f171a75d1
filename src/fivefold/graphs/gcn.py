"""Graph convolution of Kipf & Welling (2017), "Semi-Supervised Classification with Graph Convolutional Networks".

Update rule: ``X' = D^-1/2 (A + I) D^-1/2 X W + b`` where ``D`` is the degree matrix of ``A + I``
(``A + 2I`` with ``improved=True``; existing self-loops keep their own weight, as in torch_geometric).
Unlike torch_geometric 2.8, ``improved=True`` gives ``A + 2I`` also when no edge weights are passed (torch_geometric
then silently uses ``A + I``). Permutation-equivariant: relabelling nodes permutes the output rows.
The message ``w_ij x_j W`` is linear in the source features, so aggregation is one CSR product (``ops.spmm``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fivefold.errors import GraphError
from fivefold.graphs._structure import block_gcn_normalisation, gcn_normalisation
from fivefold.graphs.block import Block
from fivefold.graphs.graph import Graph
from fivefold.graphs.validate import check_edge_weight, check_features
from fivefold.ops import spmm

__all__ = ["GCNConv"]


class GCNConv(nn.Module):
    """Kipf & Welling graph convolution.

    Args:
        in_channels: input features F.
        out_channels: output features F'.
        improved: use ``A + 2I`` (self-loop weight 2).
        add_self_loops: add the identity; when False, ``D^-1/2 A D^-1/2``.
        bias: learn an additive bias.

    Shapes:
        x: ``[N, F]`` -> ``[N, F']``; optional ``edge_weight``: ``[E]``. On a ``Block``: ``[num_src, F]`` ->
        ``[num_dst, F']``, normalised by the whole graph's degrees (``block.src_degree``).

    Example:
        >>> conv = GCNConv(16, 32)
        >>> out = conv(x, graph)  # x: [N, 16] -> out: [N, 32]
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, improved: bool = False, add_self_loops: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.self_loop_weight = (2.0 if improved else 1.0) if add_self_loops else 0.0
        self.lin = nn.Linear(in_channels, out_channels, bias=False)
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.lin.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, graph: Graph | Block, edge_weight: Tensor | None = None) -> Tensor:
        check_features(x, graph, self.in_channels)
        if isinstance(graph, Block):  # x: [num_src, F] -> [num_dst, F']
            if edge_weight is not None:
                raise GraphError("GCNConv on a Block takes no edge_weight")
            csc, weights, diagonal = block_gcn_normalisation(graph, self.self_loop_weight, x.dtype)
        else:
            check_edge_weight(edge_weight, graph)
            csc, weights, diagonal = gcn_normalisation(graph, edge_weight, self.self_loop_weight, x.dtype)
        h = self.lin(x)
        # on a whole graph the targets are every node: no slice, whose backward would fill and copy a zero tensor
        root = h if csc.num_rows == h.shape[0] else h[: csc.num_rows]
        out = torch.addcmul(spmm(csc, h, weights), diagonal.unsqueeze(-1), root)
        if self.bias is not None:
            out = out + self.bias
        return out

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, self_loop_weight={self.self_loop_weight}"
