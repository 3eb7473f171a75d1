"""Graph attention of Velickovic et al. (2018), "Graph Attention Networks".

Update rule, per head ``k``: ``h = W^k x``; ``e_ij = LeakyReLU(a_src^k . h_j + a_dst^k . h_i)`` for each edge
``j -> i`` (and a self-loop ``i -> i``); ``alpha_ij = softmax_j(e_ij)`` over the incoming edges of ``i``;
``x'_i = sum_j alpha_ij h_j``. Heads are concatenated (``[N, H * C]``) or averaged (``[N, C]``), then a bias is
added. Permutation-equivariant.

Messages: the scores are computed per edge (gather + add), normalised by ``ops`` segment softmax, and the weighted
sum over sources is one multi-head CSR product (``ops.spmm`` with ``[nnz, H]`` weights), whose backward gives the
weight gradients by SDDMM without an ``[E, H, C]`` tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fivefold.graphs._structure import with_self_loops
from fivefold.graphs.block import Block
from fivefold.graphs.graph import Graph
from fivefold.graphs.validate import check_features
from fivefold.ops import CSR, segment_softmax, spmm

__all__ = ["GATConv"]


class GATConv(nn.Module):
    """Multi-head graph attention layer.

    Args:
        in_channels: input features F.
        out_channels: features per head C.
        heads: number of attention heads H.
        concat: concatenate heads (output ``H * C``) or average them (output ``C``).
        negative_slope: LeakyReLU slope of the scores.
        dropout: dropout on the attention weights (training only).
        value_dropout: dropout on the transformed features ``h`` after the scores are computed and before they are
            aggregated, as in the reference implementation of Velickovic et al. (training only; default off, which
            matches torch_geometric's layer).
        add_self_loops: let every node attend to itself.
        bias: learn an additive bias.

    Shapes:
        x: ``[N, F]`` -> ``[N, H * C]`` (concat) or ``[N, C]``; on a ``Block``: ``[num_src, F]`` -> ``[num_dst, ...]``
        (attention over the sampled neighbours and the destination itself).
    """

    def __init__(
        self, in_channels: int, out_channels: int, heads: int = 1, *, concat: bool = True,
        negative_slope: float = 0.2, dropout: float = 0.0, value_dropout: float = 0.0, add_self_loops: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.heads = heads
        self.concat = concat
        self.negative_slope = negative_slope
        self.dropout = dropout
        self.value_dropout = value_dropout
        self.add_self_loops = add_self_loops
        self.lin = nn.Linear(in_channels, heads * out_channels, bias=False)
        self.att_src = nn.Parameter(torch.empty(1, heads, out_channels))
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_channels))
        self.bias = nn.Parameter(torch.empty(heads * out_channels if concat else out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.lin.weight)
        nn.init.xavier_uniform_(self.att_src)
        nn.init.xavier_uniform_(self.att_dst)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def attention(self, x: Tensor, graph: Graph | Block) -> tuple[Tensor, Tensor]:
        """The transformed features ``h: [N, H, C]`` and attention weights ``alpha: [nnz, H]`` in the CSC order
        of the (self-looped) graph used for aggregation."""
        csc = self._pattern(graph)
        h = self.lin(x).view(-1, self.heads, self.out_channels)
        score_src = (h * self.att_src).sum(-1)
        score_dst = (h[: csc.num_rows] * self.att_dst).sum(-1)  # a Block's destinations are its first sources
        scores = score_src.index_select(0, csc.indices) + score_dst.index_select(0, csc.rows)
        scores = F.leaky_relu(scores, self.negative_slope)
        alpha = segment_softmax(scores, csc.rows, csc.num_rows, validate=False)
        return h, alpha

    def forward(self, x: Tensor, graph: Graph | Block) -> Tensor:
        check_features(x, graph, self.in_channels)
        h, alpha = self.attention(x, graph)
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        h = F.dropout(h, p=self.value_dropout, training=self.training)
        out = spmm(self._pattern(graph), h, alpha)
        out = out.reshape(-1, self.heads * self.out_channels) if self.concat else out.mean(dim=1)
        if self.bias is not None:
            out = out + self.bias
        return out

    def _pattern(self, graph: Graph | Block) -> CSR:
        """The CSC pattern attention runs over: the graph's or block's, with one self-loop per (destination) node
        when ``add_self_loops``."""
        if isinstance(graph, Block):
            return graph.with_self_loops() if self.add_self_loops else graph.csc
        return (with_self_loops(graph) if self.add_self_loops else graph).csc()

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, heads={self.heads}, concat={self.concat}"
