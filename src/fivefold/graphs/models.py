"""Reference architectures built from fivefold layers, configured as in their papers.

- ``GCN``: Kipf & Welling (2017), two layers, hidden 16, dropout 0.5.
- ``GAT``: Velickovic et al. (2018), 8 heads x 8 features, ELU, dropout 0.6 on inputs and attention.
- ``GraphSAGE``: Hamilton et al. (2017), two mean-aggregator layers.
- ``GIN``: Xu et al. (2019), node classification variant (two GIN layers with 2-layer MLPs).
- ``GINGraphClassifier``: Xu et al. (2019) graph classification: GIN layers with batch-normalised 2-layer MLPs and
  a sum readout of *every* layer's features (input included), each with its own linear head; scores are summed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from fivefold.errors import GraphError, check_option
from fivefold.graphs.block import Block
from fivefold.graphs.gat import GATConv
from fivefold.graphs.gcn import GCNConv
from fivefold.graphs.gin import GINConv
from fivefold.graphs.graph import Graph
from fivefold.graphs.readout import global_sum_pool
from fivefold.graphs.sage import SAGEConv

__all__ = ["GCN", "GAT", "GraphSAGE", "GIN", "GINGraphClassifier", "TwoLayerGNN", "mlp"]


def mlp(in_channels: int, hidden: int, out_channels: int, batch_norm: bool = False) -> nn.Sequential:
    """Linear -> (BatchNorm) -> ReLU -> Linear."""
    layers: list[nn.Module] = [nn.Linear(in_channels, hidden)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(hidden))
    layers += [nn.ReLU(), nn.Linear(hidden, out_channels)]
    return nn.Sequential(*layers)


class TwoLayerGNN(nn.Module):
    """``dropout -> conv1 -> activation -> dropout -> conv2``: the node classifiers of the GCN, GAT, GraphSAGE
    and GIN papers differ only in their convolutions and activation. ``x: [N, F] -> logits [N, classes]``."""

    def __init__(self, conv1: nn.Module, conv2: nn.Module, dropout: float, activation: str = "relu") -> None:
        super().__init__()
        check_option(activation, ("relu", "elu"), "activation", "TwoLayerGNN")
        self.conv1 = conv1
        self.conv2 = conv2
        self.dropout = dropout
        self.activation = activation

    def forward(self, x: Tensor, graph: Graph | Sequence[Block]) -> Tensor:
        """``graph``: a ``Graph`` (``x: [N, F]`` -> ``[N, classes]``), or the two ``Block``s of a neighbour sampler,
        input layer first (``x: [num_src of blocks[0], F]`` -> ``[num_dst of blocks[1], classes]``)."""
        if isinstance(graph, Graph):
            first = second = graph
        elif len(graph) == 2 and all(isinstance(block, Block) for block in graph):
            first, second = graph
        else:
            raise GraphError("a two-layer model takes a Graph or a sequence of two Blocks")
        x = F.dropout(x, self.dropout, self.training)
        x = self.conv1(x, first)
        x = F.relu(x) if self.activation == "relu" else F.elu(x)
        x = F.dropout(x, self.dropout, self.training)
        return self.conv2(x, second)

    def stages(self) -> list[tuple[nn.Module, Callable[[Tensor], Tensor]]]:
        """The model as ``(conv, after)`` pairs, ``x = after(conv(x, graph))`` in turn, which equals ``forward`` in
        eval mode (no dropout): what layer-wise inference (``fivefold.scale.layerwise_inference``) runs one layer
        at a time over the whole graph."""
        return [(self.conv1, F.relu if self.activation == "relu" else F.elu), (self.conv2, _identity)]


def _identity(x: Tensor) -> Tensor:
    return x


class GCN(TwoLayerGNN):
    """Two-layer GCN of Kipf & Welling (2017)."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 16, dropout: float = 0.5) -> None:
        super().__init__(GCNConv(in_channels, hidden), GCNConv(hidden, out_channels), dropout)


class GAT(TwoLayerGNN):
    """Two-layer GAT of Velickovic et al. (2018): ``heads`` x ``hidden`` concatenated, ELU, averaged output heads;
    ``dropout`` on the inputs of both layers, on the attention weights and, as in the authors' code, on the
    transformed features before aggregation."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 8, heads: int = 8, out_heads: int = 1,
                 dropout: float = 0.6) -> None:
        super().__init__(
            GATConv(in_channels, hidden, heads=heads, dropout=dropout, value_dropout=dropout),
            GATConv(hidden * heads, out_channels, heads=out_heads, concat=False, dropout=dropout,
                    value_dropout=dropout),
            dropout, activation="elu",
        )


class GraphSAGE(TwoLayerGNN):
    """Two-layer GraphSAGE of Hamilton et al. (2017)."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 64, dropout: float = 0.5,
                 aggr: str = "mean") -> None:
        super().__init__(SAGEConv(in_channels, hidden, aggr=aggr), SAGEConv(hidden, out_channels, aggr=aggr), dropout)


class GIN(TwoLayerGNN):
    """Two GIN-0 layers (Xu et al. 2019) with 2-layer MLPs, for node classification."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 64, dropout: float = 0.5) -> None:
        super().__init__(GINConv(mlp(in_channels, hidden, hidden)), GINConv(mlp(hidden, hidden, out_channels)),
                         dropout)


class GINGraphClassifier(nn.Module):
    """GIN for graph classification (GIN-0 by default; ``train_eps=True`` for GIN-eps).

    ``num_layers`` counts the input layer as in the paper (5 -> 4 GIN layers). Output: ``[B, classes]`` scores.
    """

    def __init__(
        self, in_channels: int, out_channels: int, hidden: int = 32, num_layers: int = 5, dropout: float = 0.5,
        train_eps: bool = False,
    ) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for layer in range(num_layers - 1):
            width = in_channels if layer == 0 else hidden
            self.convs.append(GINConv(mlp(width, hidden, hidden, batch_norm=True), train_eps=train_eps))
            self.norms.append(nn.BatchNorm1d(hidden))
        self.heads = nn.ModuleList(
            [nn.Linear(in_channels, out_channels)] + [nn.Linear(hidden, out_channels) for _ in self.convs]
        )
        self.dropout = dropout

    def forward(self, x: Tensor, graph: Graph) -> Tensor:
        layer_outputs = [x]
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = F.relu(norm(conv(x, graph)))
            layer_outputs.append(x)
        score = 0
        for h, head in zip(layer_outputs, self.heads, strict=True):
            score = score + F.dropout(head(global_sum_pool(h, graph)), self.dropout, self.training)
        return score
