"""Conversions between ``Graph`` and networkx, scipy.sparse and torch_geometric.

networkx and torch_geometric are optional: they are imported inside the functions that need them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from fivefold.errors import GraphError
from fivefold.graphs.graph import EDGE_FIELDS, NODE_FIELDS, Graph

__all__ = ["to_networkx", "from_networkx", "to_scipy", "from_scipy", "to_pyg", "from_pyg"]


def _require(module: str, extra: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"this needs {module}: pip install {extra}") from exc


def to_networkx(graph: Graph, node_attrs: bool = True) -> Any:
    """A ``networkx.MultiDiGraph`` with nodes ``0..N-1`` and one edge per column of ``edge_index``.

    Node tensors (``x``, ``y``, ``pos``, masks) become node attributes of those names, ``edge_attr`` an edge
    attribute, when ``node_attrs`` is True.
    """
    nx = _require("networkx", "networkx")
    g = nx.MultiDiGraph()
    g.add_nodes_from(range(graph.num_nodes))
    if node_attrs:
        for name in NODE_FIELDS:
            value = getattr(graph, name)
            if value is not None:
                for i in range(graph.num_nodes):
                    g.nodes[i][name] = value[i]
    src, dst = graph.edge_index.tolist()
    present = [name for name in EDGE_FIELDS if getattr(graph, name) is not None]
    g.add_edges_from((s, t, {name: getattr(graph, name)[e] for name in present})
                     for e, (s, t) in enumerate(zip(src, dst, strict=True)))
    return g


def from_networkx(g: Any) -> Graph:
    """A ``Graph`` from any networkx graph. Nodes are numbered in ``g.nodes`` order; an undirected graph gives
    both directions of every edge. Node attributes named like ``Graph`` fields (``x``, ``y``, ``pos``, masks)
    present on every node are stacked into tensors, as are ``edge_attr`` and ``edge_weight`` edge attributes."""
    nx = _require("networkx", "networkx")
    index = {node: i for i, node in enumerate(g.nodes)}
    edges = [(index[u], index[v]) for u, v in g.edges()]
    edge_data = [d for _, _, d in g.edges(data=True)]
    if not g.is_directed():
        edges = edges + [(v, u) for u, v in edges]
        edge_data = edge_data + edge_data
    edge_index = torch.tensor(edges, dtype=torch.long).t().reshape(2, -1)
    fields: dict[str, Any] = {"num_nodes": g.number_of_nodes()}
    for name in NODE_FIELDS:
        values = [d.get(name) for _, d in g.nodes(data=True)]
        if values and all(v is not None for v in values):
            fields[name] = torch.stack([torch.as_tensor(v) for v in values])
    for name in EDGE_FIELDS:
        if edge_data and all(name in d for d in edge_data):
            fields[name] = torch.stack([torch.as_tensor(d[name]) for d in edge_data])
    del nx
    return Graph(edge_index, **fields)


def to_scipy(graph: Graph, edge_weight: torch.Tensor | None = None) -> sp.csr_matrix:
    """The ``[N, N]`` adjacency ``A[source, target] = weight`` as scipy CSR: ``edge_weight``, else
    ``graph.edge_weight``, else 1; duplicates add up."""
    edge_weight = graph.edge_weight if edge_weight is None else edge_weight
    src, dst = graph.edge_index.cpu().numpy()
    w = np.ones(graph.num_edges) if edge_weight is None else edge_weight.detach().cpu().numpy()
    return sp.csr_matrix((w, (src, dst)), shape=(graph.num_nodes, graph.num_nodes))


def from_scipy(matrix: Any, **fields: Any) -> tuple[Graph, torch.Tensor]:
    """A ``Graph`` (one edge ``i -> j`` per stored entry ``A[i, j]``, the entries as its ``edge_weight``) and those
    ``[E]`` weights (also returned on their own, as before ``Graph`` had the field).

    Extra keyword arguments (``x=...``, ``y=...``) are passed to ``Graph``.
    """
    if not sp.issparse(matrix) or matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise GraphError("from_scipy expects a square scipy.sparse matrix")
    coo = sp.coo_matrix(matrix)
    edge_index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    weight = torch.from_numpy(np.asarray(coo.data, dtype=np.float32))
    return Graph(edge_index, num_nodes=int(matrix.shape[0]), edge_weight=weight, **fields), weight


def to_pyg(graph: Graph) -> Any:
    """A ``torch_geometric.data.Data`` with the same tensors (needs torch_geometric installed)."""
    _require("torch_geometric", "torch_geometric")
    from torch_geometric.data import Data

    kwargs = {k: v for k, v in graph.fields().items() if v is not None and k != "graph_y"}
    if graph.graph_y is not None:
        kwargs["graph_y"] = graph.graph_y
    return Data(**kwargs)


def from_pyg(data: Any) -> Graph:
    """A ``Graph`` from a ``torch_geometric.data.Data``; attributes named like ``Graph`` fields are kept."""
    fields = {}
    for name in ("x", "edge_attr", "edge_weight", "y", "graph_y", "pos", "train_mask", "val_mask", "test_mask"):
        value = getattr(data, name, None)
        if value is not None:
            fields[name] = value
    return Graph(data.edge_index, num_nodes=int(data.num_nodes), **fields)
