"""Convolutions whose message is a learned function of an edge.

EdgeConv: Wang et al. (2019), "Dynamic Graph CNN for Learning on Point Clouds":
``x'_i = max_{j -> i} h(x_i || x_j - x_i)`` (``aggr`` may also be ``"sum"`` or ``"mean"``).

NNConv: Gilmer et al. (2017), "Neural Message Passing for Quantum Chemistry" (edge-conditioned convolution,
Simonovsky & Komodakis 2017): ``x'_i = W x_i + agg_{j -> i} x_j Theta(e_ji) + b`` where ``Theta`` maps an edge's
features to an ``[F, F']`` matrix.

Both are permutation-equivariant: messages are computed per edge and aggregated with ``ops`` scatter.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fivefold.errors import GraphError, check_option
from fivefold.graphs.gin import _reset
from fivefold.graphs.graph import Graph
from fivefold.graphs.validate import check_edge_attr, check_features
from fivefold.ops import REDUCTIONS, scatter

__all__ = ["EdgeConv", "NNConv"]


def _check_aggr(aggr: str) -> str:
    check_option(aggr, REDUCTIONS, "aggr", "message passing")
    return aggr


class EdgeConv(nn.Module):
    """Edge convolution of DGCNN.

    Args:
        mlp: ``h``, mapping ``[E, 2F]`` to ``[E, F']``.
        aggr: reduction over incoming edges (``"max"`` as in the paper).

    Shapes:
        x: ``[N, F]`` -> ``[N, F']``.
    """

    def __init__(self, mlp: nn.Module, *, aggr: str = "max") -> None:
        super().__init__()
        self.mlp = mlp
        self.aggr = _check_aggr(aggr)

    def reset_parameters(self) -> None:
        _reset(self.mlp)

    def forward(self, x: Tensor, graph: Graph) -> Tensor:
        check_features(x, graph)
        source, target = graph.edge_index
        x_i = x.index_select(0, target)
        x_j = x.index_select(0, source)
        messages = self.mlp(torch.cat([x_i, x_j - x_i], dim=-1))
        return scatter(messages, target, graph.num_nodes, self.aggr, validate=False)


class NNConv(nn.Module):
    """Edge-conditioned convolution (MPNN message function of Gilmer et al.).

    Args:
        in_channels: input features F.
        out_channels: output features F'.
        edge_network: ``Theta``, mapping ``[E, D]`` edge features to ``[E, F * F']``.
        aggr: reduction over incoming edges (``"sum"`` by default).
        root_weight: add ``W x_i``.
        bias: learn an additive bias.

    Shapes:
        x: ``[N, F]``, edge_attr: ``[E, D]`` (or ``graph.edge_attr``) -> ``[N, F']``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, edge_network: nn.Module, *, aggr: str = "sum",
        root_weight: bool = True, bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.edge_network = edge_network
        self.aggr = _check_aggr(aggr)
        self.lin_root = nn.Linear(in_channels, out_channels, bias=False) if root_weight else None
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def reset_parameters(self) -> None:
        _reset(self.edge_network)
        if self.lin_root is not None:
            self.lin_root.reset_parameters()
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, graph: Graph, edge_attr: Tensor | None = None) -> Tensor:
        check_features(x, graph, self.in_channels)
        edge_attr = check_edge_attr(edge_attr, graph, None)
        source, target = graph.edge_index
        theta = self.edge_network(edge_attr)
        if theta.shape != (graph.num_edges, self.in_channels * self.out_channels):
            raise GraphError(
                f"edge_network must map edge_attr to [E, {self.in_channels * self.out_channels}], "
                f"got {tuple(theta.shape)}"
            )
        theta = theta.reshape(-1, self.in_channels, self.out_channels)
        messages = torch.bmm(x.index_select(0, source).unsqueeze(1), theta).squeeze(1)
        out = scatter(messages, target, graph.num_nodes, self.aggr, validate=False)
        if self.lin_root is not None:
            out = out + self.lin_root(x)
        if self.bias is not None:
            out = out + self.bias
        return out

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, aggr={self.aggr!r}"
