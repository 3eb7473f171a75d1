"""Scale: mini-batch training on graphs too large for full-batch message passing.

- The on-disk graph store: ``write_store`` (from an in-memory graph), ``build_store`` (streamed from edge chunks,
  memory bounded by the node count), ``open_store`` (memory-mapped arrays, checked manifest).
- ``rmat_store``: a synthetic R-MAT graph with planted communities (labels and features with a learnable signal)
  streamed into a store, for scale tests and benchmarks.
- ``NeighborSampler``: multi-layer neighbour sampling into ``fivefold.graphs.Block``s (numba, parallel over nodes,
  deterministic), from a ``Graph`` or a ``GraphStore``.
- ``NeighborLoader``: mini-batches of blocks, features and labels, prefetched in a background thread.
- ``layerwise_inference``: a trained model's exact outputs, one layer at a time over chunks of nodes.
- ``partition_store`` / ``open_partitions``: a store split into K partitions (METIS, Fennel, LDG or random) with a
  partition book, for distributed training; ``partition_nodes`` and ``partition_report`` (edge cut, balance).
- ``fivefold.scale.distributed``: the distributed neighbour sampler, row exchanges and layer-wise inference over
  the ranks of a torch.distributed group (the training loop is ``fivefold.train.distributed``).
"""

from fivefold.scale.inference import layerwise_inference
from fivefold.scale.loader import MiniBatch, NeighborLoader
from fivefold.scale.partition import (
    Partition,
    PartitionedStore,
    open_partitions,
    partition_nodes,
    partition_report,
    partition_store,
)
from fivefold.scale.rmat import RMat, rmat_store
from fivefold.scale.sampler import NeighborSampler
from fivefold.scale.store import GraphStore, build_store, open_store, write_store

__all__ = ["GraphStore", "layerwise_inference", "MiniBatch", "build_store", "NeighborLoader", "NeighborSampler",
           "open_partitions", "open_store", "Partition", "PartitionedStore", "partition_nodes", "partition_report",
           "partition_store", "RMat", "rmat_store", "write_store"]
