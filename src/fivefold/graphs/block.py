"""``Block``: one layer of sampled (mini-batch) message passing, from ``num_src`` source nodes to ``num_dst``
destination nodes, the destinations being the first ``num_dst`` sources (the convention DGL's and PyG's samplers
share). ``GCNConv``, ``SAGEConv``, ``GATConv`` and ``GINConv`` take a ``Block`` wherever they take a ``Graph``:
``conv(x_src, block)`` maps ``[num_src, F]`` to ``[num_dst, F']``.

Blocks are produced by ``fivefold.scale.NeighborSampler`` (fan-outs per layer) and can be built by hand with
:meth:`Block.from_edges`. With every in-neighbour of each destination present (fan-out at least the largest
in-degree), a stack of layers over blocks gives exactly the full-graph result on the seed nodes; the tests check it
in float64 for every layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from fivefold.errors import GraphError
from fivefold.ops import CSR

__all__ = ["Block"]


class Block:
    """A bipartite message-passing layer: destination ``i`` aggregates from the sources listed in row ``i``.

    Args:
        csc: a ``CSR`` with ``num_dst`` rows and ``num_src`` columns; row ``i`` holds the local source index of each of
            destination ``i``'s (sampled) in-edges. Destination ``i`` is source ``i``.
        num_src: number of source nodes (the rows of the input features).
        num_dst: number of destination nodes (the rows of the output), at most ``num_src``.
        src_degree: optional ``[num_src]`` int64, each source's in-degree in the whole graph, self-loops not counted.
            ``GCNConv`` needs it for its symmetric normalisation (the sampler provides it); it also rescales a
            destination's sampled sum by ``degree / sampled`` so that sampling is unbiased.
        src_ids: optional ``[num_src]`` int64 global node id of each source (for the caller; layers ignore it).
        src_loops: optional ``[num_src]`` int64, each source's number of self-loops in the whole graph (0 if None):
            ``GCNConv`` treats them as the full-graph layer does.

    Immutable; derived patterns (without self-loops, with one self-loop per destination) are computed once.
    """

    __slots__ = ("csc", "num_src", "num_dst", "src_degree", "src_ids", "src_loops", "_cache")

    csc: CSR
    num_src: int
    num_dst: int
    src_degree: Tensor | None
    src_ids: Tensor | None
    src_loops: Tensor | None

    def __init__(self, csc: CSR, num_src: int, num_dst: int, *, src_degree: Tensor | None = None,
                 src_ids: Tensor | None = None, src_loops: Tensor | None = None) -> None:
        if not isinstance(csc, CSR):
            raise GraphError(f"Block: csc must be a fivefold.ops.CSR, got {type(csc).__name__}")
        for name, value in (("num_src", num_src), ("num_dst", num_dst)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise GraphError(f"Block: {name} must be a non-negative int, got {value!r}")
        if num_dst > num_src:
            raise GraphError(f"Block: num_dst ({num_dst}) must not exceed num_src ({num_src}): destinations are the "
                             "first sources")
        if csc.num_rows != num_dst or csc.num_cols != num_src:
            raise GraphError(f"Block: csc has shape ({csc.num_rows}, {csc.num_cols}); expected (num_dst, num_src) = "
                             f"({num_dst}, {num_src})")
        for name, value in (("src_degree", src_degree), ("src_ids", src_ids), ("src_loops", src_loops)):
            if value is None:
                continue
            if not isinstance(value, Tensor) or value.dtype != torch.long or value.shape != (num_src,):
                raise GraphError(f"Block: {name} must be an int64 tensor of shape [{num_src}]")
            if value.device != csc.indices.device:
                raise GraphError(f"Block: {name} is on {value.device} but csc is on {csc.indices.device}")
        for name, value in (("src_degree", src_degree), ("src_loops", src_loops)):
            if value is not None and value.numel() and int(value.min()) < 0:
                raise GraphError(f"Block: {name} must be non-negative")
        put = object.__setattr__
        put(self, "csc", csc)
        put(self, "num_src", num_src)
        put(self, "num_dst", num_dst)
        put(self, "src_degree", src_degree)
        put(self, "src_ids", src_ids)
        put(self, "src_loops", src_loops)
        put(self, "_cache", {})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Block is immutable")

    @classmethod
    def from_edges(cls, src: Tensor, dst: Tensor, num_src: int, num_dst: int, **fields: Tensor | None) -> Block:
        """A block from local edge lists: ``src[k]`` (in ``[0, num_src)``) sends to ``dst[k]`` (in ``[0, num_dst)``)."""
        return cls(CSR.from_coo(dst, src, num_dst, num_src), num_src, num_dst, **fields)

    @property
    def device(self) -> torch.device:
        return self.csc.indices.device

    @property
    def num_edges(self) -> int:
        return self.csc.nnz

    def to(self, device: torch.device | str) -> Block:
        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device)

        return Block(self.csc.to(device), self.num_src, self.num_dst, src_degree=move(self.src_degree),
                     src_ids=move(self.src_ids), src_loops=move(self.src_loops))

    def cached(self, key: Any, build: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def without_self_loops(self) -> CSR:
        """The pattern without entries from a destination to itself."""
        def build() -> CSR:
            keep = self.csc.indices != self.csc.rows
            if bool(keep.all()):
                return self.csc
            return CSR.from_coo(self.csc.rows[keep], self.csc.indices[keep], self.num_dst, self.num_src)

        return self.cached("without_self_loops", build)

    def with_self_loops(self) -> CSR:
        """The pattern without its self-loops plus one loop per destination (last in its row), as
        ``fivefold.graphs.add_self_loops`` does for a graph."""
        def build() -> CSR:
            plain = self.without_self_loops()
            loops = torch.arange(self.num_dst, device=self.device)
            return CSR.from_coo(torch.cat([plain.rows, loops]), torch.cat([plain.indices, loops]), self.num_dst,
                                self.num_src)

        return self.cached("with_self_loops", build)

    def has_self_loop(self) -> Tensor:
        """``[num_dst]`` bool: whether the block holds an entry from destination ``i`` to itself."""
        def build() -> Tensor:
            loops = self.csc.indices == self.csc.rows
            found = torch.zeros(self.num_dst, dtype=torch.bool, device=self.device)
            found[self.csc.rows[loops]] = True
            return found

        return self.cached("has_self_loop", build)

    def in_degree(self) -> Tensor:
        """``[num_dst]`` number of (sampled) entries per destination."""
        return self.csc.degree()

    def __repr__(self) -> str:
        return f"Block(num_src={self.num_src}, num_dst={self.num_dst}, num_edges={self.num_edges})"
