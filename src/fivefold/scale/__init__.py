"""Scale: mini-batch training on graphs too large for full-batch message passing.

So far: the on-disk graph store (``write_store`` from an in-memory graph, ``open_store`` with memory-mapped arrays
and checked manifests) and ``NeighborSampler`` (multi-layer neighbour sampling into ``fivefold.graphs.Block``s, numba,
parallel over nodes, deterministic), which reads a ``Graph`` or a ``GraphStore``. The streaming builder, the R-MAT
generator, the loader and the command line are not written yet.
"""

from fivefold.scale.sampler import NeighborSampler
from fivefold.scale.store import GraphStore, open_store, write_store

__all__ = ["GraphStore", "NeighborSampler", "open_store", "write_store"]
