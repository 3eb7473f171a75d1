"""Pure functions from a ``Graph`` to a new ``Graph``: self-loops, coalescing, undirected form, subgraphs."""

from __future__ import annotations

import torch
from torch import Tensor

from fivefold.errors import GraphError
from fivefold.graphs.graph import NODE_FIELDS, Graph
from fivefold.ops.scatter import _check_reduce, _scatter

__all__ = ["add_self_loops", "remove_self_loops", "coalesce", "to_undirected", "subgraph", "normalize_features"]


def remove_self_loops(graph: Graph) -> Graph:
    """Drop every edge ``(i, i)`` (and its ``edge_attr`` row)."""
    keep = graph.edge_index[0] != graph.edge_index[1]
    if bool(keep.all()):
        return graph
    edge_attr = None if graph.edge_attr is None else graph.edge_attr[keep]
    return graph.replace(edge_index=graph.edge_index[:, keep], edge_attr=edge_attr)


def add_self_loops(graph: Graph, fill_value: float = 1.0) -> Graph:
    """Remove existing self-loops, then append one loop ``(i, i)`` per node, after the other edges.

    New ``edge_attr`` rows are ``fill_value``.
    """
    graph = remove_self_loops(graph)
    loops = torch.arange(graph.num_nodes, device=graph.device).expand(2, -1)
    edge_index = torch.cat([graph.edge_index, loops], dim=1)
    edge_attr = graph.edge_attr
    if edge_attr is not None:
        fill = edge_attr.new_full((graph.num_nodes, *edge_attr.shape[1:]), fill_value)
        edge_attr = torch.cat([edge_attr, fill], dim=0)
    return graph.replace(edge_index=edge_index, edge_attr=edge_attr)


def coalesce(graph: Graph, reduce: str = "sum") -> Graph:
    """Sort edges by (source, target) and merge duplicates; duplicate ``edge_attr`` rows are reduced with ``reduce``."""
    _check_reduce(reduce)
    n = graph.num_nodes
    key = graph.edge_index[0] * n + graph.edge_index[1]
    unique, inverse = torch.unique(key, sorted=True, return_inverse=True)
    edge_index = torch.stack([unique // n, unique % n]) if n else graph.edge_index
    edge_attr = graph.edge_attr
    if edge_attr is not None:
        edge_attr = _scatter(edge_attr, inverse, unique.numel(), reduce)
    return graph.replace(edge_index=edge_index, edge_attr=edge_attr)


def to_undirected(graph: Graph, reduce: str = "sum") -> Graph:
    """Add the reverse of every edge, then :func:`coalesce` (so each undirected edge appears once per direction)."""
    edge_index = torch.cat([graph.edge_index, graph.edge_index.flip(0)], dim=1)
    edge_attr = None if graph.edge_attr is None else torch.cat([graph.edge_attr, graph.edge_attr], dim=0)
    return coalesce(graph.replace(edge_index=edge_index, edge_attr=edge_attr), reduce=reduce)


def subgraph(graph: Graph, nodes: Tensor) -> Graph:
    """The subgraph induced by ``nodes`` (a ``[N]`` bool mask or a 1-D tensor of node ids), nodes renumbered
    in increasing id order. Node fields and ``edge_attr`` are sliced to match."""
    if not isinstance(nodes, Tensor):
        raise GraphError(f"nodes must be a bool mask or an index tensor, got {type(nodes).__name__}")
    if nodes.dtype == torch.bool:
        if nodes.shape != (graph.num_nodes,):
            raise GraphError(f"node mask must have shape [{graph.num_nodes}], got {tuple(nodes.shape)}")
        mask = nodes
    else:
        if nodes.is_floating_point() or nodes.dim() != 1:
            raise GraphError("node ids must be a 1-D integer tensor")
        if nodes.numel() and (int(nodes.min()) < 0 or int(nodes.max()) >= graph.num_nodes):
            raise GraphError(f"node ids must lie in [0, {graph.num_nodes})")
        mask = torch.zeros(graph.num_nodes, dtype=torch.bool, device=graph.device)
        mask[nodes.long()] = True
    new_id = torch.full((graph.num_nodes,), -1, dtype=torch.long, device=graph.device)
    new_id[mask] = torch.arange(int(mask.sum()), device=graph.device)
    keep = mask[graph.edge_index[0]] & mask[graph.edge_index[1]]
    changes = {
        "edge_index": new_id[graph.edge_index[:, keep]],
        "num_nodes": int(mask.sum()),
        "edge_attr": None if graph.edge_attr is None else graph.edge_attr[keep],
    }
    for name in NODE_FIELDS:
        value = getattr(graph, name)
        changes[name] = None if value is None else value[mask]
    return graph.replace(**changes)


def normalize_features(graph: Graph) -> Graph:
    """Divide each row of ``x`` by its sum (rows summing to 0 stay 0), as done for the Planetoid benchmarks."""
    if graph.x is None:
        raise GraphError("normalize_features needs node features x")
    row_sum = graph.x.sum(dim=-1, keepdim=True)
    return graph.replace(x=graph.x / row_sum.masked_fill(row_sum == 0, 1.0))
