"""Derived structures that several layers share, computed once per graph and cached on it."""

from __future__ import annotations

import torch
from torch import Tensor

from fivefold.errors import GraphError
from fivefold.graphs.block import Block
from fivefold.graphs.graph import Graph
from fivefold.graphs.transforms import add_self_loops, remove_self_loops
from fivefold.ops import CSR


def without_self_loops(graph: Graph) -> Graph:
    return graph.cached("without_self_loops", lambda: remove_self_loops(graph))


def with_self_loops(graph: Graph) -> Graph:
    return graph.cached("with_self_loops", lambda: add_self_loops(graph))


def gcn_normalisation(
    graph: Graph, edge_weight: Tensor | None, self_loop_weight: float, dtype: torch.dtype
) -> tuple[CSR, Tensor, Tensor]:
    """Symmetric normalisation ``D^-1/2 (A + s I) D^-1/2`` of Kipf & Welling (2017), as a CSC pattern.

    Self-loops follow torch_geometric's ``gcn_norm``: with ``s > 0`` a node that already has a loop keeps that
    loop's weight on the diagonal (1 without ``edge_weight``) and every other node gets ``s``; with ``s = 0``
    existing loops stay ordinary entries of ``A``. Returns the CSC pattern of the off-diagonal part (rows =
    targets), its ``[nnz]`` weights in CSC order and the ``[N]`` diagonal weights, in ``dtype``. Without an
    ``edge_weight`` argument the graph's own ``edge_weight`` is used. Only an unweighted graph's result is cached on
    the graph: weights are tensors that may be learned or changed in place, so they are read at every call.
    """
    if edge_weight is None and graph.edge_weight is None:
        key = ("gcn_normalisation", self_loop_weight, dtype)
        return graph.cached(key, lambda: _gcn_normalisation(graph, None, self_loop_weight, dtype))
    weights = graph.edge_weight if edge_weight is None else edge_weight
    return _gcn_normalisation(graph, weights.to(dtype), self_loop_weight, dtype)


def _gcn_normalisation(
    graph: Graph, edge_weight: Tensor | None, self_loop_weight: float, dtype: torch.dtype
) -> tuple[CSR, Tensor, Tensor]:
    device = graph.device
    diagonal = torch.full((graph.num_nodes,), float(self_loop_weight), dtype=dtype, device=device)
    if self_loop_weight == 0:
        plain = graph
    else:
        plain = without_self_loops(graph)
        loops = graph.edge_index[0] == graph.edge_index[1]
        if bool(loops.any()):
            existing = torch.ones(int(loops.sum()), dtype=dtype, device=device)
            if edge_weight is not None:
                existing = edge_weight[loops]
                edge_weight = edge_weight[~loops]
            diagonal[graph.edge_index[0, loops]] = existing
    csc = plain.csc()
    weight = torch.ones(csc.nnz, dtype=dtype, device=device) if edge_weight is None else edge_weight[csc.perm]
    degree = diagonal.index_add(0, csc.rows, weight)
    inv_sqrt = degree.pow(-0.5)
    inv_sqrt = inv_sqrt.masked_fill(torch.isinf(inv_sqrt), 0.0)
    values = inv_sqrt[csc.rows] * weight * inv_sqrt[csc.indices]
    return csc, values, diagonal * inv_sqrt * inv_sqrt


def inverse_in_degree(graph: Graph, dtype: torch.dtype) -> Tensor:
    """``[N, 1]`` 1 / max(in-degree, 1), the weights of mean aggregation."""
    return graph.cached(
        ("inverse_in_degree", dtype), lambda: 1.0 / graph.in_degree().clamp(min=1).to(dtype).unsqueeze(-1)
    )


def block_gcn_normalisation(block: Block, self_loop_weight: float, dtype: torch.dtype) -> tuple[CSR, Tensor, Tensor]:
    """``gcn_normalisation`` for a ``Block``: the CSC pattern (self-loops removed when ``self_loop_weight > 0``), its
    ``[nnz]`` weights and the ``[num_dst]`` diagonal weights, from the whole graph's degrees (``block.src_degree``
    and ``block.src_loops``), with self-loops treated as the full-graph layer treats them. A destination whose
    in-edges were sampled (``k`` of ``d``) has its sum scaled by ``d / k``, an unbiased estimate of the full sum;
    with every in-edge present the result is exactly the full graph's."""
    if block.src_degree is None:
        raise GraphError("GCNConv on a Block needs the whole graph's degrees: build it with src_degree=... "
                         "(fivefold.scale.NeighborSampler does unless made with degrees=False)")

    def build() -> tuple[CSR, Tensor, Tensor]:
        loops = torch.zeros_like(block.src_degree) if block.src_loops is None else block.src_loops
        if self_loop_weight > 0:  # loops are the diagonal: an existing loop keeps weight 1, others get s
            csc = block.without_self_loops()
            diagonal = torch.where(loops > 0, 1.0, self_loop_weight).to(dtype)
            degree = block.src_degree.to(dtype) + diagonal
            full = block.src_degree[: block.num_dst].to(dtype)
        else:  # loops are ordinary entries of A
            csc = block.csc
            diagonal = torch.zeros(block.num_src, dtype=dtype, device=block.device)
            degree = (block.src_degree + loops).to(dtype)
            full = degree[: block.num_dst]
        inv_sqrt = degree.pow(-0.5).masked_fill(degree == 0, 0.0)
        sampled = csc.degree().to(dtype)
        scale = torch.where(sampled > 0, full / sampled.clamp(min=1), 0.0)
        values = inv_sqrt[csc.rows] * inv_sqrt[csc.indices] * scale[csc.rows]
        return csc, values, (diagonal * inv_sqrt**2)[: block.num_dst]

    return block.cached(("gcn_normalisation", self_loop_weight, dtype), build)
