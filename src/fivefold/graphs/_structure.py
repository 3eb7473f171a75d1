"""Derived structures that several layers share, computed once per graph and cached on it."""

from __future__ import annotations

import torch
from torch import Tensor

from fivefold.graphs.graph import Graph
from fivefold.graphs.transforms import add_self_loops, remove_self_loops
from fivefold.ops import CSR


def without_self_loops(graph: Graph) -> Graph:
    return graph.cached("without_self_loops", lambda: remove_self_loops(graph))


def with_self_loops(graph: Graph) -> Graph:
    return graph.cached("with_self_loops", lambda: add_self_loops(graph))


def gcn_normalisation(
    graph: Graph, edge_weight: Tensor | None, self_loop_weight: float
) -> tuple[CSR, Tensor, Tensor]:
    """Symmetric normalisation ``D^-1/2 (A + s I) D^-1/2`` of Kipf & Welling (2017), as a CSC pattern.

    Existing self-loops are dropped and replaced by the diagonal ``s I`` (``s = self_loop_weight``; 0 for none).
    Returns the CSC pattern of the off-diagonal part (rows = targets), its ``[nnz]`` weights in CSC order, and
    the ``[N]`` diagonal weights. With ``edge_weight=None`` the result is cached on the graph.
    """
    if edge_weight is None:
        key = ("gcn_normalisation", self_loop_weight)
        return graph.cached(key, lambda: _gcn_normalisation(graph, None, self_loop_weight))
    return _gcn_normalisation(graph, edge_weight, self_loop_weight)


def _gcn_normalisation(
    graph: Graph, edge_weight: Tensor | None, self_loop_weight: float
) -> tuple[CSR, Tensor, Tensor]:
    if edge_weight is not None and graph.has_self_loops():
        keep = graph.edge_index[0] != graph.edge_index[1]
        edge_weight = edge_weight[keep]
    plain = without_self_loops(graph)
    csc = plain.csc()
    dtype = torch.get_default_dtype() if edge_weight is None else edge_weight.dtype
    if edge_weight is None:
        weight = torch.ones(csc.nnz, dtype=dtype, device=graph.device)
    else:
        weight = edge_weight[csc.perm]
    degree = torch.full((graph.num_nodes,), float(self_loop_weight), dtype=dtype, device=graph.device)
    degree = degree.index_add(0, csc.rows, weight)
    inv_sqrt = degree.pow(-0.5)
    inv_sqrt = inv_sqrt.masked_fill(torch.isinf(inv_sqrt), 0.0)
    values = inv_sqrt[csc.rows] * weight * inv_sqrt[csc.indices]
    diagonal = self_loop_weight * inv_sqrt * inv_sqrt
    return csc, values, diagonal


def inverse_in_degree(graph: Graph) -> Tensor:
    """``[N, 1]`` 1 / max(in-degree, 1), the weights of mean aggregation."""
    return graph.cached(
        "inverse_in_degree", lambda: 1.0 / graph.in_degree().clamp(min=1).to(torch.get_default_dtype()).unsqueeze(-1)
    )
