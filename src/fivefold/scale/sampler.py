"""Multi-layer neighbour sampling (Hamilton, Ying & Leskovec 2017, "Inductive Representation Learning on Large
Graphs"): for a batch of seed nodes, a fixed number of in-neighbours per node and per layer, turned into
``fivefold.graphs.Block``s that the ordinary layers take.

``fanouts[0]`` is the number of neighbours drawn for each seed (the last layer's destinations), ``fanouts[1]`` for
each node those reach, and so on (PyG's ``num_neighbors`` order); ``-1`` takes every in-neighbour. ``sample`` returns
``(input_nodes, blocks)`` with the blocks ordered from the input layer to the seeds, so a model runs
``for block in blocks: x = layer(x, block)`` starting from ``x = features[input_nodes]``.

Uniform without replacement by default (all neighbours when a node has at most the fan-out), with replacement as an
option; deterministic for a given ``seed`` and sequence of calls, whatever the number of threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fivefold.errors import GraphError, OptionError
from fivefold.graphs import Block, Graph
from fivefold.ops import CSR
from fivefold.scale import _kernels

__all__ = ["NeighborSampler", "check_fanouts", "check_seeds"]


def check_fanouts(fanouts: Sequence[int], who: str) -> list[int]:
    """``fanouts`` as a list of ints, each >= 1 or -1 (all); an ``OptionError`` naming ``who`` otherwise."""
    fanouts = list(fanouts)
    if not fanouts or any(isinstance(f, bool) or not isinstance(f, (int, np.integer)) or (f < 1 and f != -1)
                          for f in fanouts):
        raise OptionError(f"{who}: fanouts must be a non-empty list of integers >= 1 or -1 (all), got {fanouts}")
    return [int(f) for f in fanouts]


def check_seeds(seed_nodes: Tensor | np.ndarray | Sequence[int], num_nodes: int) -> np.ndarray:
    """``seed_nodes`` as a numpy array after checking that they are distinct integers in ``[0, num_nodes)``."""
    seeds = np.asarray(seed_nodes.cpu() if isinstance(seed_nodes, Tensor) else seed_nodes)
    if seeds.ndim != 1 or not np.issubdtype(seeds.dtype, np.integer):
        raise GraphError(f"seed_nodes must be a 1-D integer array, got shape {seeds.shape} of {seeds.dtype}")
    if seeds.size and (seeds.min() < 0 or seeds.max() >= num_nodes):
        bad = seeds[(seeds < 0) | (seeds >= num_nodes)][0]
        raise GraphError(f"seed node {int(bad)} is out of range [0, {num_nodes})")
    if len(np.unique(seeds)) != len(seeds):
        raise GraphError("seed_nodes must be distinct")
    return seeds

class NeighborSampler:
    """Sample blocks around seed nodes of a graph or a graph store.

    Args:
        source: a ``fivefold.graphs.Graph``, or any object with ``num_nodes`` and CSC arrays ``indptr`` (int64,
            ``[N + 1]``) and ``indices`` (``[E]``, the source of each in-edge grouped by target), such as
            ``fivefold.scale.GraphStore``.
        fanouts: neighbours per node for each layer, from the seeds outwards (``-1``: all).
        replace: draw with replacement.
        seed: the random seed; the k-th call of ``sample`` uses ``(seed, k)``.
        degrees: give each block its sources' whole-graph degrees, which only ``GCNConv`` needs; False saves two
            random reads per source node (about a fifth of the sampling time on a large graph).

    Each block's ``src_degree`` and ``src_loops`` are the whole graph's in-degree of its sources (self-loops not
    counted) and their self-loop counts (None with ``degrees=False``), and ``src_ids`` their global ids.
    """

    def __init__(self, source: Graph | Any, fanouts: Sequence[int], *, replace: bool = False, seed: int = 0,
                 degrees: bool = True) -> None:
        if isinstance(source, Graph):
            csc = source.csc()
            self.indptr = csc.indptr.numpy()
            self.indices = csc.indices.numpy()
            self.num_nodes = source.num_nodes
        else:
            try:
                self.indptr, self.indices = np.asarray(source.indptr), np.asarray(source.indices)
                self.num_nodes = int(source.num_nodes)
            except AttributeError:
                raise GraphError("NeighborSampler needs a Graph or a store with num_nodes, indptr, indices") from None
        fanouts = check_fanouts(fanouts, "NeighborSampler")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise OptionError(f"NeighborSampler: seed must be a non-negative integer, got {seed!r}")
        if self.indptr.shape != (self.num_nodes + 1,) or self.indptr[0] != 0 or self.indptr[-1] != len(self.indices):
            raise GraphError("NeighborSampler: indptr must have num_nodes + 1 entries from 0 to len(indices)")
        self.fanouts = [int(f) for f in fanouts]
        self.replace = bool(replace)
        self.with_degrees = bool(degrees)
        self._id_dtype = np.int32 if self.num_nodes < 2**31 else np.int64
        self.seed = int(seed)
        self.calls = 0
        self._degree: tuple[np.ndarray, np.ndarray] | None = None

    def degrees(self) -> tuple[np.ndarray, np.ndarray]:
        """``([N], [N])``: each node's in-degree in the whole graph with self-loops not counted, and its number of
        self-loops (computed once)."""
        if self._degree is None:
            loops = _kernels.count_self_loops(self.indptr, self.indices)
            self._degree = (np.diff(self.indptr).astype(np.int64) - loops, loops)
            self._any_loops = bool(loops.any())
        return self._degree

    def sample(self, seed_nodes: Tensor | np.ndarray | Sequence[int]) -> tuple[Tensor, list[Block]]:
        """``(input_nodes [num_src of the first block], blocks)`` for distinct ``seed_nodes``; the last block's
        destinations are the seeds in the order given."""
        seeds = check_seeds(seed_nodes, self.num_nodes)
        degree, loops = self.degrees() if self.with_degrees else (None, None)
        call, self.calls = self.calls, self.calls + 1
        frontier = seeds.astype(np.int64)
        blocks: list[Block] = []
        for layer, fanout in enumerate(self.fanouts):
            offsets, picks = _kernels.draw(self.indptr, self.indices, frontier, fanout, self.replace,
                                           _kernels.hop_seed(self.seed, call, layer))
            sources, local = _kernels.relabelled(frontier, picks, self._id_dtype)
            csc = CSR(torch.from_numpy(offsets), torch.from_numpy(local), torch.arange(len(local)), len(sources),
                      check=False)
            source_degree = source_loops = None
            if degree is not None:
                source_degree, source_loops = (torch.from_numpy(a) for a in
                                               _kernels.gather_degrees(sources, degree, loops, self._any_loops))
            blocks.append(Block(csc, len(sources), len(frontier), src_degree=source_degree,
                                src_ids=torch.from_numpy(sources), src_loops=source_loops))
            frontier = sources
        blocks.reverse()
        return torch.from_numpy(frontier), blocks
