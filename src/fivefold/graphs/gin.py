"""Graph isomorphism convolutions.

GINConv: Xu, Hu, Leskovec & Jegelka (2019), "How Powerful are Graph Neural Networks?":
``x'_i = MLP((1 + eps) x_i + sum_{j -> i} x_j)``. The sum is linear in the sources: one CSR product.

GINEConv: Hu et al. (2020), "Strategies for Pre-training Graph Neural Networks":
``x'_i = MLP((1 + eps) x_i + sum_{j -> i} ReLU(x_j + lin(e_ji)))``, with ``lin`` the identity when the edge
features already have the node width. The message depends on the edge, so it is built per edge and scattered.

Both are permutation-equivariant.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fivefold.graphs.block import Block
from fivefold.graphs.graph import Graph
from fivefold.graphs.validate import check_edge_attr, check_features
from fivefold.ops import scatter, spmm

__all__ = ["GINConv", "GINEConv"]


class GINConv(nn.Module):
    """GIN layer.

    Args:
        mlp: the update network, mapping ``[N, F]`` to ``[N, F']``.
        eps: initial value of ``eps``.
        train_eps: learn ``eps`` (GIN-eps) instead of fixing it (GIN-0 with ``eps = 0``).

    Shapes:
        x: ``[N, F]`` -> ``[N, F']``.
    """

    def __init__(self, mlp: nn.Module, *, eps: float = 0.0, train_eps: bool = False) -> None:
        super().__init__()
        self.mlp = mlp
        _init_eps(self, eps, train_eps)

    def reset_parameters(self) -> None:
        _reset(self.mlp)
        self.eps.data.fill_(self.initial_eps)

    def forward(self, x: Tensor, graph: Graph | Block) -> Tensor:
        check_features(x, graph)
        csc = graph.csc if isinstance(graph, Block) else graph.csc()
        aggregated = spmm(csc, x)
        return self.mlp((1 + self.eps) * x[: csc.num_rows] + aggregated)  # a Block's destinations come first


class GINEConv(nn.Module):
    """GIN layer with edge features.

    Args:
        mlp: the update network, mapping ``[N, F]`` to ``[N, F']``.
        eps: initial value of ``eps``; ``train_eps`` learns it.
        edge_dim: width D of the edge features; if given, a linear map ``D -> F`` is applied to them
            (``in_channels`` is then required), otherwise they must already be ``[E, F]``.
        in_channels: node feature width F (needed with ``edge_dim``).

    Shapes:
        x: ``[N, F]``, edge_attr: ``[E, D]`` (or ``graph.edge_attr``) -> ``[N, F']``.
    """

    def __init__(
        self, mlp: nn.Module, *, eps: float = 0.0, train_eps: bool = False, edge_dim: int | None = None,
        in_channels: int | None = None,
    ) -> None:
        super().__init__()
        self.mlp = mlp
        _init_eps(self, eps, train_eps)
        self.edge_dim = edge_dim
        if edge_dim is not None:
            if in_channels is None:
                raise ValueError("GINEConv: pass in_channels together with edge_dim")
            self.lin_edge: nn.Linear | None = nn.Linear(edge_dim, in_channels)
        else:
            self.lin_edge = None
        self.in_channels = in_channels

    def reset_parameters(self) -> None:
        _reset(self.mlp)
        if self.lin_edge is not None:
            self.lin_edge.reset_parameters()
        self.eps.data.fill_(self.initial_eps)

    def forward(self, x: Tensor, graph: Graph, edge_attr: Tensor | None = None) -> Tensor:
        check_features(x, graph, self.in_channels)
        edge_attr = check_edge_attr(edge_attr, graph, self.edge_dim if self.edge_dim is not None else x.shape[1])
        if self.lin_edge is not None:
            edge_attr = self.lin_edge(edge_attr)
        source, target = graph.edge_index
        messages = torch.relu(x.index_select(0, source) + edge_attr)
        aggregated = scatter(messages, target, graph.num_nodes, "sum", validate=False)
        return self.mlp((1 + self.eps) * x + aggregated)


def _init_eps(module: nn.Module, eps: float, train_eps: bool) -> None:
    """``eps`` as a parameter (GIN-eps) or a fixed buffer (GIN-0 when 0), remembered for ``reset_parameters``."""
    module.initial_eps = eps
    if train_eps:
        module.eps = nn.Parameter(torch.tensor([eps]))
    else:
        module.register_buffer("eps", torch.tensor([eps]))


def _reset(module: nn.Module) -> None:
    for child in module.modules():
        if child is not module and hasattr(child, "reset_parameters"):
            child.reset_parameters()
