"""Pure functions from a ``Graph`` to a new ``Graph``: self-loops, coalescing, undirected form, subgraphs; and the
graphs of point clouds and molecules: ``radius_graph`` and ``knn_graph`` (edge indices from coordinates)."""

from __future__ import annotations

import torch
from torch import Tensor

from fivefold.errors import GraphError, check_option
from fivefold.graphs.graph import EDGE_FIELDS, NODE_FIELDS, Graph
from fivefold.ops import REDUCTIONS, scatter
from fivefold.ops.neighbours import knn_pairs, radius_pairs

__all__ = ["add_self_loops", "remove_self_loops", "coalesce", "to_undirected", "subgraph", "normalize_features",
           "permute_nodes", "radius_graph", "knn_graph"]


def _edge_fields(graph: Graph, change) -> dict[str, Tensor | None]:
    """``change(tensor)`` applied to each edge field the graph has (``edge_attr``, ``edge_weight``)."""
    return {name: None if getattr(graph, name) is None else change(getattr(graph, name)) for name in EDGE_FIELDS}


def remove_self_loops(graph: Graph) -> Graph:
    """Drop every edge ``(i, i)`` (and its ``edge_attr`` / ``edge_weight`` row)."""
    keep = graph.edge_index[0] != graph.edge_index[1]
    if bool(keep.all()):
        return graph
    return graph.replace(edge_index=graph.edge_index[:, keep], **_edge_fields(graph, lambda t: t[keep]))


def add_self_loops(graph: Graph, fill_value: float = 1.0) -> Graph:
    """Remove existing self-loops, then append one loop ``(i, i)`` per node, after the other edges.

    New ``edge_attr`` rows and ``edge_weight`` entries are ``fill_value``.
    """
    graph = remove_self_loops(graph)
    loops = torch.arange(graph.num_nodes, device=graph.device).expand(2, -1)
    edge_index = torch.cat([graph.edge_index, loops], dim=1)
    filled = _edge_fields(graph, lambda t: torch.cat([t, t.new_full((graph.num_nodes, *t.shape[1:]), fill_value)]))
    return graph.replace(edge_index=edge_index, **filled)


def coalesce(graph: Graph, reduce: str = "sum") -> Graph:
    """Sort edges by (source, target) and merge duplicates; duplicate ``edge_attr`` rows and ``edge_weight`` entries
    are reduced with ``reduce``."""
    check_option(reduce, REDUCTIONS, "reduce", "coalesce")
    n = graph.num_nodes
    key = graph.edge_index[0] * n + graph.edge_index[1]
    unique, inverse = torch.unique(key, sorted=True, return_inverse=True)
    edge_index = torch.stack([unique // n, unique % n]) if n else graph.edge_index
    merged = _edge_fields(graph, lambda t: scatter(t, inverse, unique.numel(), reduce, validate=False))
    return graph.replace(edge_index=edge_index, **merged)


def to_undirected(graph: Graph, reduce: str = "sum") -> Graph:
    """Add the reverse of every edge, then :func:`coalesce` (so each undirected edge appears once per direction)."""
    edge_index = torch.cat([graph.edge_index, graph.edge_index.flip(0)], dim=1)
    doubled = _edge_fields(graph, lambda t: torch.cat([t, t], dim=0))
    return coalesce(graph.replace(edge_index=edge_index, **doubled), reduce=reduce)


def subgraph(graph: Graph, nodes: Tensor) -> Graph:
    """The subgraph induced by ``nodes`` (a ``[N]`` bool mask or a 1-D tensor of node ids), nodes renumbered
    in increasing id order. Node and edge fields are sliced to match."""
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
        **_edge_fields(graph, lambda t: t[keep]),
    }
    for name in NODE_FIELDS:
        value = getattr(graph, name)
        changes[name] = None if value is None else value[mask]
    return graph.replace(**changes)


def permute_nodes(graph: Graph, perm: Tensor) -> Graph:
    """Relabel node ``perm[k]`` as ``k`` (the action of ``fivefold.groups.SymmetricGroup``): node fields move as
    ``x -> x[perm]``, edges keep their order and get the new ids. A permutation-equivariant layer satisfies
    ``layer(x[perm], permute_nodes(graph, perm)) == layer(x, graph)[perm]``. The result is a plain ``Graph`` (a
    ``Batch``'s per-graph offsets do not survive a permutation that mixes its graphs).

    Args:
        perm: ``[N]`` int64, a permutation of ``0 .. N - 1``.
    """
    if not isinstance(perm, Tensor) or perm.dtype != torch.long or perm.shape != (graph.num_nodes,) or \
            not torch.equal(torch.sort(perm).values, torch.arange(graph.num_nodes, device=perm.device)):
        raise GraphError(f"perm must be an int64 permutation of 0 .. {graph.num_nodes - 1}")
    perm = perm.to(graph.device)
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(graph.num_nodes, device=graph.device)
    fields = graph.fields()
    fields.update({name: None if fields[name] is None else fields[name][perm] for name in NODE_FIELDS})
    fields["edge_index"] = inverse[graph.edge_index]
    return Graph(**fields)


def normalize_features(graph: Graph) -> Graph:
    """Divide each row of ``x`` by its sum (rows summing to 0 stay 0), as done for the Planetoid benchmarks."""
    if graph.x is None:
        raise GraphError("normalize_features needs node features x")
    row_sum = graph.x.sum(dim=-1, keepdim=True)
    return graph.replace(x=graph.x / row_sum.masked_fill(row_sum == 0, 1.0))


def radius_graph(pos: Tensor, cutoff: float, batch: Tensor | None = None, *, loop: bool = False,
                 max_num_neighbors: int | None = None) -> Tensor:
    """Edges between all points of the same graph closer than ``cutoff``: ``edge_index [2, E]`` (row 0 the neighbour
    ``j``, row 1 the centre ``i``; both directions of every pair). Cell lists: linear in the number of points for a
    fixed cutoff (see ``fivefold.ops.neighbours``).

    Args:
        pos: ``[N, 3]`` coordinates.
        cutoff: the distance below which two points are joined (``|p_j - p_i| < cutoff``).
        batch: ``[N]`` graph id per point (a ``Batch``'s ``batch``); points of different graphs are never joined.
        loop: also join each point to itself.
        max_num_neighbors: keep only the nearest this many neighbours of each centre (``None``: all). Unlike a cap on
            the first ones found, the result does not depend on the point order (except among neighbours at exactly
            the same distance); it may no longer be symmetric.
    """
    source, target = radius_pairs(pos, cutoff, batch, loop=loop)
    if max_num_neighbors is not None:
        if isinstance(max_num_neighbors, bool) or not isinstance(max_num_neighbors, int) or max_num_neighbors < 1:
            raise GraphError(f"radius_graph: max_num_neighbors must be a positive integer or None, got "
                             f"{max_num_neighbors!r}")
        distance = (pos[source] - pos[target]).detach().norm(dim=1).to(torch.float64)
        order = torch.argsort(distance, stable=True)
        order = order[torch.argsort(target[order], stable=True)]  # by target, nearest first
        source, target = source[order], target[order]
        first = torch.searchsorted(target, target)
        rank = torch.arange(target.numel(), device=target.device) - first
        keep = rank < max_num_neighbors
        source, target = source[keep], target[keep]
    return torch.stack([source, target])


def knn_graph(pos: Tensor, k: int, batch: Tensor | None = None, *, loop: bool = False) -> Tensor:
    """Edges from each point's ``k`` nearest points of the same graph to it: ``edge_index [2, N k]`` (row 0 the
    neighbour, row 1 the centre; not symmetric in general: apply ``to_undirected`` on a graph for that). A graph with
    fewer than ``k + 1`` points joins each point to all the others. scipy's k-d tree does the search."""
    source, target = knn_pairs(pos, k, batch, loop=loop)
    return torch.stack([source, target])
