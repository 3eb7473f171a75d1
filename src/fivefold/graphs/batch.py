"""Batching many small graphs into one disjoint union, and splitting it back.

``Batch.from_graphs(graphs)`` concatenates node and edge tensors, shifts each graph's edge indices by the number of
nodes before it, and records ``batch`` (``[N]``, the graph of every node) and ``ptr`` / ``edge_ptr`` (``[B + 1]``
offsets). A ``Batch`` is a ``Graph`` (every layer accepts it); :meth:`Batch.to_graphs` inverts the union exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from fivefold.errors import GraphError
from fivefold.graphs.graph import EDGE_FIELDS, FIELDS, NODE_FIELDS, Graph

__all__ = ["Batch"]


class Batch(Graph):
    """The disjoint union of ``num_graphs`` graphs.

    Extra fields:
        batch: ``[N]`` int64 graph id of every node.
        ptr: ``[B + 1]`` node offsets; graph ``b`` owns nodes ``ptr[b]:ptr[b+1]``.
        edge_ptr: ``[B + 1]`` edge offsets.
    ``graph_y`` is stacked to ``[B, ...]``.
    """

    __slots__ = ("batch", "ptr", "edge_ptr")

    batch: Tensor
    ptr: Tensor
    edge_ptr: Tensor

    def __init__(self, *, ptr: Tensor, edge_ptr: Tensor, **fields: Any) -> None:
        super().__init__(**fields)
        counts = ptr[1:] - ptr[:-1]
        if int(ptr[-1]) != self.num_nodes or int(edge_ptr[-1]) != self.num_edges:
            raise GraphError("Batch offsets do not match the number of nodes/edges")
        put = object.__setattr__
        put(self, "ptr", ptr)
        put(self, "edge_ptr", edge_ptr)
        put(self, "batch", torch.repeat_interleave(torch.arange(counts.numel(), device=ptr.device), counts))

    @property
    def num_graphs(self) -> int:
        return int(self.ptr.numel()) - 1

    @classmethod
    def _from_fields(cls, template: Graph, fields: dict[str, Any]) -> Graph:
        """Keep the batch structure when nodes and edges are unchanged; otherwise (self-loops added, a subgraph
        taken, ...) the per-graph offsets no longer hold and a plain ``Graph`` is returned."""
        assert isinstance(template, Batch)
        same_nodes = fields["num_nodes"] == template.num_nodes
        same_edges = fields["edge_index"].shape[1] == template.num_edges
        if not (same_nodes and same_edges):
            return Graph(**fields)
        device = fields["edge_index"].device
        return Batch(ptr=template.ptr.to(device), edge_ptr=template.edge_ptr.to(device), **fields)

    @classmethod
    def from_graphs(cls, graphs: Sequence[Graph]) -> Batch:
        """Union of ``graphs``. All must have the same optional fields present (e.g. all or none have ``x``)."""
        graphs = list(graphs)
        if not graphs:
            raise GraphError("cannot batch an empty list of graphs")
        for i, g in enumerate(graphs):
            if not isinstance(g, Graph):
                raise GraphError(f"graphs[{i}] is a {type(g).__name__}, not a fivefold Graph")
        node_counts = torch.tensor([g.num_nodes for g in graphs])
        edge_counts = torch.tensor([g.num_edges for g in graphs])
        ptr = torch.zeros(len(graphs) + 1, dtype=torch.long)
        torch.cumsum(node_counts, 0, out=ptr[1:])
        edge_ptr = torch.zeros(len(graphs) + 1, dtype=torch.long)
        torch.cumsum(edge_counts, 0, out=edge_ptr[1:])
        device = graphs[0].device
        shift = torch.repeat_interleave(ptr[:-1], edge_counts).to(device)
        fields: dict[str, Any] = {
            "edge_index": torch.cat([g.edge_index for g in graphs], dim=1) + shift,
            "num_nodes": int(ptr[-1]),
        }
        for name in FIELDS[2:]:
            present = [getattr(g, name) is not None for g in graphs]
            if any(present) and not all(present):
                missing = present.index(False)
                raise GraphError(f"graphs[{missing}] has no {name} but other graphs do; batch graphs alike")
            if not present[0]:
                fields[name] = None
            else:
                fields[name] = _join(name, [getattr(g, name) for g in graphs])
        return cls(ptr=ptr.to(device), edge_ptr=edge_ptr.to(device), **fields)

    def to_graphs(self) -> list[Graph]:
        """Split back into the original graphs (node ids renumbered from 0 in each)."""
        graphs = []
        ptr, edge_ptr = self.ptr.tolist(), self.edge_ptr.tolist()
        for b in range(self.num_graphs):
            n0, n1, e0, e1 = ptr[b], ptr[b + 1], edge_ptr[b], edge_ptr[b + 1]
            fields: dict[str, Any] = {"edge_index": self.edge_index[:, e0:e1] - n0, "num_nodes": n1 - n0}
            for name in NODE_FIELDS:
                value = getattr(self, name)
                fields[name] = None if value is None else value[n0:n1]
            for name in EDGE_FIELDS:
                value = getattr(self, name)
                fields[name] = None if value is None else value[e0:e1]
            fields["graph_y"] = None if self.graph_y is None else self.graph_y[b]
            graphs.append(Graph(**fields))
        return graphs

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", num_graphs={self.num_graphs})"


def _join(name: str, values: list[Tensor]) -> Tensor:
    """Stack graph-level ``graph_y`` / concatenate node and edge fields, with a clear error on shape mismatch."""
    shapes = {tuple(v.shape) if name == "graph_y" else tuple(v.shape[1:]) for v in values}
    if len(shapes) > 1:
        raise GraphError(f"cannot batch {name}: the graphs disagree on its shape ({sorted(shapes)})")
    if name == "graph_y":
        return torch.stack(values)
    return torch.cat(values, dim=0)
