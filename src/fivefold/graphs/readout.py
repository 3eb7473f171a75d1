"""Graph-level readouts: permutation-invariant reductions of node features to one vector per graph.

Each takes ``(x, graph)``: ``x: [N, F]`` and a ``Graph`` (one graph, output ``[1, F]``) or a ``Batch``
(output ``[B, F]``). ``GlobalAttentionPool`` is the gated readout of Li, Tarlow, Brockschmidt & Zemel (2016),
"Gated Graph Sequence Neural Networks": ``r = sum_i softmax_i(gate(x_i)) * f(x_i)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fivefold.graphs.batch import Batch
from fivefold.graphs.graph import Graph
from fivefold.graphs.validate import check_features
from fivefold.ops import scatter, segment_softmax

__all__ = ["global_sum_pool", "global_mean_pool", "global_max_pool", "GlobalAttentionPool", "graph_index"]


def graph_index(graph: Graph) -> tuple[Tensor, int]:
    """``([N] graph id of every node, number of graphs)`` for a ``Batch`` or a single ``Graph``."""
    if isinstance(graph, Batch):
        return graph.batch, graph.num_graphs
    return torch.zeros(graph.num_nodes, dtype=torch.long, device=graph.device), 1


def _pool(x: Tensor, graph: Graph, reduce: str) -> Tensor:
    check_features(x, graph)
    index, num_graphs = graph_index(graph)
    return scatter(x, index, num_graphs, reduce, validate=False)


def global_sum_pool(x: Tensor, graph: Graph) -> Tensor:
    """Sum of node features per graph: ``[N, F] -> [B, F]``."""
    return _pool(x, graph, "sum")


def global_mean_pool(x: Tensor, graph: Graph) -> Tensor:
    """Mean of node features per graph: ``[N, F] -> [B, F]`` (0 for an empty graph)."""
    return _pool(x, graph, "mean")


def global_max_pool(x: Tensor, graph: Graph) -> Tensor:
    """Element-wise max of node features per graph: ``[N, F] -> [B, F]`` (0 for an empty graph)."""
    return _pool(x, graph, "max")


class GlobalAttentionPool(nn.Module):
    """Gated attention readout.

    Args:
        gate_nn: maps ``[N, F]`` to ``[N, 1]`` scores.
        nn: optional feature map ``[N, F] -> [N, F']`` applied before weighting (identity if None).

    Shapes:
        x: ``[N, F]`` -> ``[B, F']``.
    """

    def __init__(self, gate_nn: nn.Module, feature_nn: nn.Module | None = None) -> None:
        super().__init__()
        self.gate_nn = gate_nn
        self.feature_nn = feature_nn

    def forward(self, x: Tensor, graph: Graph) -> Tensor:
        check_features(x, graph)
        index, num_graphs = graph_index(graph)
        gate = self.gate_nn(x)
        if gate.dim() == 1:
            gate = gate.unsqueeze(-1)
        weights = segment_softmax(gate, index, num_graphs, validate=False)
        features = x if self.feature_nn is None else self.feature_nn(x)
        return scatter(weights * features, index, num_graphs, "sum", validate=False)
