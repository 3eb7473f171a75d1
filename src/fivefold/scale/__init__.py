"""Scale: mini-batch training on graphs too large for full-batch message passing.

So far: the on-disk graph store (``write_store`` from an in-memory graph, ``open_store`` with memory-mapped arrays
and checked manifests) and ``NeighborSampler`` (multi-layer neighbour sampling into ``fivefold.graphs.Block``s, numba,
parallel over nodes, deterministic), which reads a ``Graph`` or a ``GraphStore``, and ``NeighborLoader`` (mini-batches
of blocks, features and labels, prefetched in a background thread). The streaming builder, the R-MAT generator,
layer-wise inference over a store and the command line are not written yet.
"""

from fivefold.scale.loader import MiniBatch, NeighborLoader
from fivefold.scale.sampler import NeighborSampler
from fivefold.scale.store import GraphStore, open_store, write_store

__all__ = ["GraphStore", "MiniBatch", "NeighborLoader", "NeighborSampler", "open_store", "write_store"]
