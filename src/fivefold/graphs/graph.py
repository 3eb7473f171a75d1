"""``Graph``: one graph as a plain, validated, immutable container of tensors.

Fields (N nodes, E edges):
    edge_index: ``[2, E]`` int64; row 0 is the source, row 1 the target of each edge (messages flow 0 -> 1).
    num_nodes: N.
    x: ``[N, F]`` node features (floating point, finite), optional.
    edge_attr: ``[E]`` or ``[E, D]`` edge features (floating point, finite), optional.
    edge_weight: ``[E]`` edge weights (floating point, finite), optional; read by the layers that take weights.
    y: ``[N]`` or ``[N, T]`` node labels/targets, optional.
    graph_y: graph-level label/target (a scalar or ``[T]``), optional.
    pos: ``[N, d]`` node positions (finite), optional.
    train_mask, val_mask, test_mask: ``[N]`` bool, optional.

Everything is checked once, on construction; a problem raises :class:`fivefold.errors.GraphError` naming the field
and the first offending position. Since a ``Graph`` never changes after construction, derived structures (the CSR
and CSC views, degrees, normalised adjacency weights) are computed once on first use and cached on the object;
:meth:`Graph.replace` gives a new graph with some fields changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fivefold.errors import GraphError
from fivefold.ops import CSR

__all__ = ["Graph", "FIELDS", "NODE_FIELDS", "EDGE_FIELDS"]

NODE_FIELDS = ("x", "y", "pos", "train_mask", "val_mask", "test_mask")
EDGE_FIELDS = ("edge_attr", "edge_weight")
FIELDS = ("edge_index", "num_nodes", "x", "edge_attr", "edge_weight", "y", "graph_y", "pos", "train_mask", "val_mask",
          "test_mask")


def _first_position(bad: Tensor) -> tuple[int, ...]:
    return tuple(int(v) for v in bad.nonzero()[0])


_NUMPY_DTYPES = (torch.float32, torch.float64, torch.int64, torch.int32)


def _as_numpy(value: Tensor) -> np.ndarray | None:
    """A numpy view of a CPU tensor of a common dtype, or None: checks of small tensors are many times faster in
    numpy than through torch's dispatcher (molecules are built one small graph at a time)."""
    if value.device.type == "cpu" and value.dtype in _NUMPY_DTYPES:
        return value.detach().numpy()
    return None


def _any_negative_or_too_large(edge_index: Tensor, num_nodes: int | None) -> bool:
    array = _as_numpy(edge_index)
    if array is not None:
        return bool(array.min() < 0 or (num_nodes is not None and array.max() >= num_nodes))
    return bool((edge_index < 0).any()) or (num_nodes is not None and bool((edge_index >= num_nodes).any()))


def _all_finite(value: Tensor) -> bool:
    array = _as_numpy(value)
    return bool(np.isfinite(array).all()) if array is not None else bool(torch.isfinite(value).all())


def _check_edge_index(edge_index: Any, num_nodes: int | None) -> Tensor:
    if not isinstance(edge_index, Tensor):
        raise GraphError(f"edge_index must be a torch.Tensor of shape [2, E], got {type(edge_index).__name__}")
    if edge_index.is_floating_point() or edge_index.is_complex() or edge_index.dtype == torch.bool:
        raise GraphError(f"edge_index must have an integer dtype (int64), got {edge_index.dtype}")
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise GraphError(
            f"edge_index must have shape [2, E] (row 0 sources, row 1 targets), got {tuple(edge_index.shape)}"
        )
    edge_index = edge_index.long()
    if not edge_index.numel() or not _any_negative_or_too_large(edge_index, num_nodes):
        return edge_index.contiguous()
    if bool((edge_index < 0).any()):
        r, e = _first_position(edge_index < 0)
        raise GraphError(f"edge_index[{r}, {e}] = {int(edge_index[r, e])} is negative; node ids start at 0")
    if num_nodes is not None and edge_index.numel() and bool((edge_index >= num_nodes).any()):
        r, e = _first_position(edge_index >= num_nodes)
        raise GraphError(
            f"edge_index[{r}, {e}] = {int(edge_index[r, e])} is out of range for num_nodes = {num_nodes}"
        )
    return edge_index.contiguous()


def _check_rows(name: str, value: Any, rows: int, what: str, *, floating: bool, finite: bool) -> Tensor | None:
    if value is None:
        return None
    if not isinstance(value, Tensor):
        raise GraphError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() == 0 or value.shape[0] != rows:
        got = value.shape[0] if value.dim() else "a scalar"
        raise GraphError(f"{name} has {got} rows but the graph has {rows} {what}")
    if floating and not value.is_floating_point():
        raise GraphError(f"{name} must be floating point, got {value.dtype}")
    if finite and value.is_floating_point() and value.numel() and not _all_finite(value):
        pos = _first_position(~torch.isfinite(value))
        raise GraphError(f"{name}{list(pos)} = {value[pos].item()} is not finite (NaN or inf)")
    return value


def _check_mask(name: str, value: Any, num_nodes: int) -> Tensor | None:
    value = _check_rows(name, value, num_nodes, "nodes", floating=False, finite=False)
    if value is not None and (value.dtype != torch.bool or value.dim() != 1):
        raise GraphError(
            f"{name} must be a 1-D bool tensor of length {num_nodes}, got {value.dtype} {tuple(value.shape)}"
        )
    return value


class Graph:
    """A graph with optional node, edge and graph features. See the module docstring for the fields.

    Example:
        >>> g = Graph(torch.tensor([[0, 1, 2], [1, 2, 0]]), x=torch.randn(3, 4))
        >>> g.num_nodes, g.num_edges
        (3, 3)
    """

    __slots__ = (*FIELDS, "_cache")

    edge_index: Tensor
    num_nodes: int
    x: Tensor | None
    edge_attr: Tensor | None
    edge_weight: Tensor | None
    y: Tensor | None
    graph_y: Tensor | None
    pos: Tensor | None
    train_mask: Tensor | None
    val_mask: Tensor | None
    test_mask: Tensor | None

    def __init__(
        self,
        edge_index: Tensor,
        num_nodes: int | None = None,
        *,
        x: Tensor | None = None,
        edge_attr: Tensor | None = None,
        edge_weight: Tensor | None = None,
        y: Tensor | None = None,
        graph_y: Tensor | None = None,
        pos: Tensor | None = None,
        train_mask: Tensor | None = None,
        val_mask: Tensor | None = None,
        test_mask: Tensor | None = None,
    ) -> None:
        if num_nodes is None:
            for candidate in (x, pos, y):
                if isinstance(candidate, Tensor) and candidate.dim() > 0:
                    num_nodes = int(candidate.shape[0])
                    break
        if num_nodes is not None:
            if isinstance(num_nodes, bool) or not isinstance(num_nodes, int) or num_nodes < 0:
                raise GraphError(f"num_nodes must be a non-negative int, got {num_nodes!r}")
        edge_index = _check_edge_index(edge_index, num_nodes)
        if num_nodes is None:
            num_nodes = int(edge_index.max()) + 1 if edge_index.numel() else 0
        num_edges = edge_index.shape[1]
        put = object.__setattr__
        put(self, "edge_index", edge_index)
        put(self, "num_nodes", num_nodes)
        x = _check_rows("x", x, num_nodes, "nodes", floating=True, finite=True)
        if x is not None and x.dim() != 2:
            raise GraphError(f"x must have shape [N, F], got {tuple(x.shape)}")
        put(self, "x", x)
        put(self, "edge_attr", _check_rows("edge_attr", edge_attr, num_edges, "edges", floating=True, finite=True))
        edge_weight = _check_rows("edge_weight", edge_weight, num_edges, "edges", floating=True, finite=True)
        if edge_weight is not None and edge_weight.dim() != 1:
            raise GraphError(f"edge_weight must have shape [E] (one weight per edge), got {tuple(edge_weight.shape)}")
        put(self, "edge_weight", edge_weight)
        put(self, "y", _check_rows("y", y, num_nodes, "nodes", floating=False, finite=True))
        if graph_y is not None and not isinstance(graph_y, Tensor):
            raise GraphError(f"graph_y must be a torch.Tensor, got {type(graph_y).__name__}")
        put(self, "graph_y", graph_y)
        pos = _check_rows("pos", pos, num_nodes, "nodes", floating=True, finite=True)
        put(self, "pos", pos)
        for name, mask in (("train_mask", train_mask), ("val_mask", val_mask), ("test_mask", test_mask)):
            put(self, name, _check_mask(name, mask, num_nodes))
        for name in FIELDS[2:]:
            value = getattr(self, name)
            if value is not None and value.device != edge_index.device:
                raise GraphError(f"{name} is on {value.device} but edge_index is on {edge_index.device}; "
                                 "put every tensor of a graph on one device")
        put(self, "_cache", {})

    def __setattr__(self, name: str, value: Any) -> None:
        raise GraphError(f"Graph is immutable; use graph.replace({name}=...) to get a changed copy")

    # ----- basic facts -------------------------------------------------------------------------------------------
    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])

    @property
    def num_features(self) -> int:
        return 0 if self.x is None else int(self.x.shape[1])

    @property
    def device(self) -> torch.device:
        return self.edge_index.device

    def fields(self) -> dict[str, Any]:
        """The constructor arguments of this graph, as a dict."""
        return {name: getattr(self, name) for name in FIELDS}

    def replace(self, **changes: Any) -> Graph:
        """A new graph with some fields changed (validated again; caches are not carried over)."""
        unknown = set(changes) - set(FIELDS)
        if unknown:
            raise GraphError(f"unknown Graph field(s) {sorted(unknown)}; fields are {FIELDS}")
        fields = self.fields()
        fields.update(changes)
        return type(self)._from_fields(self, fields)

    @classmethod
    def _from_fields(cls, template: Graph, fields: dict[str, Any]) -> Graph:
        return Graph(**fields)

    def to(self, device: torch.device | str) -> Graph:
        """Move every tensor to ``device``."""
        fields = {k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in self.fields().items()}
        return self._from_fields(self, fields)

    # ----- cached derived structures ------------------------------------------------------------------------------
    def cached(self, key: Any, build: Callable[[], Any]) -> Any:
        """Return the derived structure stored under ``key``, building it with ``build()`` on first use.

        Safe because a graph never changes; used for CSR views and layer-specific normalisations.
        """
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def csr(self) -> CSR:
        """Edges grouped by **source** node: row ``i`` lists the targets of ``i``'s outgoing edges."""
        return self.cached("csr", lambda: CSR.from_coo(self.edge_index[0], self.edge_index[1], self.num_nodes,
                                                       self.num_nodes))

    def csc(self) -> CSR:
        """Edges grouped by **target** node: row ``i`` lists the sources of ``i``'s incoming edges.

        This is the aggregation pattern of message passing: ``spmm(graph.csc(), x)`` sums incoming messages.
        ``perm`` maps each entry to its edge id.
        """
        return self.cached("csc", lambda: CSR.from_coo(self.edge_index[1], self.edge_index[0], self.num_nodes,
                                                       self.num_nodes))

    def in_degree(self) -> Tensor:
        """``[N]`` number of incoming edges per node."""
        return self.cached("in_degree", lambda: torch.bincount(self.edge_index[1], minlength=self.num_nodes))

    def out_degree(self) -> Tensor:
        """``[N]`` number of outgoing edges per node."""
        return self.cached("out_degree", lambda: torch.bincount(self.edge_index[0], minlength=self.num_nodes))

    def has_self_loops(self) -> bool:
        return bool((self.edge_index[0] == self.edge_index[1]).any())

    def is_undirected(self) -> bool:
        """True when every edge ``(i, j)`` has its reverse ``(j, i)`` (multiplicities ignored)."""
        n = self.num_nodes
        fwd = torch.unique(self.edge_index[0] * n + self.edge_index[1])
        bwd = torch.unique(self.edge_index[1] * n + self.edge_index[0])
        return fwd.numel() == bwd.numel() and bool((fwd == bwd).all())

    def __repr__(self) -> str:
        parts = [f"num_nodes={self.num_nodes}", f"num_edges={self.num_edges}"]
        for name in FIELDS[2:]:
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={list(value.shape)}")
        return f"{type(self).__name__}({', '.join(parts)})"
