"""Graphs: the ``Graph`` container, batching, conversions, transforms, message-passing layers and readouts.

Every layer takes ``(x, graph)`` and is equivariant to node permutations; readouts are invariant. ``GCNConv``,
``SAGEConv``, ``GATConv`` and ``GINConv`` also take a ``Block`` (one layer of sampled message passing). Edge inputs
(``edge_weight``, ``edge_attr``) follow one rule: the argument passed to ``forward``, else the graph's field of that
name. The checks and ops the built-in layers use are public (``check_features``, ``check_edge_attr``,
``check_edge_weight``, ``edge_input`` here; ``scatter``, ``segment_softmax``, ``spmm`` in ``fivefold.ops``), so a layer
of your own reads like ours.
"""

from fivefold.graphs.batch import Batch
from fivefold.graphs.block import Block
from fivefold.graphs.convert import from_networkx, from_pyg, from_scipy, to_networkx, to_pyg, to_scipy
from fivefold.graphs.edge import EdgeConv, NNConv
from fivefold.graphs.gat import GATConv
from fivefold.graphs.gcn import GCNConv
from fivefold.graphs.gin import GINConv, GINEConv
from fivefold.graphs.graph import Graph
from fivefold.graphs.models import GAT, GCN, GIN, GINGraphClassifier, GraphSAGE
from fivefold.graphs.readout import (
    GlobalAttentionPool,
    global_max_pool,
    global_mean_pool,
    global_sum_pool,
)
from fivefold.graphs.sage import SAGEConv
from fivefold.graphs.transforms import (
    add_self_loops,
    coalesce,
    knn_graph,
    normalize_features,
    permute_nodes,
    radius_graph,
    remove_self_loops,
    subgraph,
    to_undirected,
)
from fivefold.graphs.validate import check_edge_attr, check_edge_weight, check_features, edge_input

__all__ = [
    "GAT", "GCN", "GIN", "GINGraphClassifier", "GraphSAGE", "normalize_features",
    "Batch", "Block", "EdgeConv", "GATConv", "GCNConv", "GINConv", "GINEConv", "GlobalAttentionPool", "Graph", "NNConv",
    "SAGEConv", "add_self_loops", "coalesce", "from_networkx", "from_pyg", "from_scipy", "global_max_pool",
    "global_mean_pool", "global_sum_pool", "remove_self_loops", "subgraph", "to_networkx", "to_pyg", "to_scipy",
    "to_undirected", "permute_nodes", "radius_graph", "knn_graph",
    "check_features", "check_edge_weight", "check_edge_attr", "edge_input",
]
