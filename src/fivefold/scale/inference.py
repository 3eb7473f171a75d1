"""Layer-wise inference: a trained model's exact outputs on a graph too large for one full-graph forward pass.

Mini-batch training samples neighbourhoods; evaluation should not (sampled outputs are noisy), but a full-graph
forward pass needs every layer's features of every node in memory at once. Layer-wise inference (the scheme of
GraphSAGE's and DGL's large-graph examples) runs the model one layer at a time: for each chunk of destination nodes
it takes a block with *all* their in-neighbours, and writes the layer's output rows to an array (in memory, or a
memory-mapped file in ``workdir`` when large), which the next layer reads. Memory is bounded by one chunk's block
and features, plus the output array when it is not on disk.

With ``nodes`` given, only what those nodes' outputs need is computed: layer ``l`` runs on the nodes within
``L - l`` hops (in-neighbours) of ``nodes``. Memory per chunk grows with the chunk's in-degrees: a hub with millions
of in-neighbours makes one large block (lower ``chunk_size`` does not help it).

The result equals ``model(x, graph)`` in eval mode (tested to 1e-10 in float64), because each block carries the whole
graph's degrees that ``GCNConv`` normalises by.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fivefold.errors import GraphError, OptionError
from fivefold.graphs import Graph
from fivefold.scale import _kernels
from fivefold.scale.sampler import NeighborSampler

__all__ = ["layerwise_inference"]

_IN_MEMORY_BYTES = 1 << 30


def layerwise_inference(
    model: nn.Module, source: Graph | Any, nodes: Tensor | np.ndarray | Sequence[int] | None = None, *,
    chunk_size: int = 4096, workdir: str | os.PathLike | None = None, progress: bool = False,
) -> Tensor:
    """The outputs of ``model`` (eval mode, no gradients) for ``nodes`` (default: every node), in ``nodes``' order.

    Args:
        model: a model with ``stages()`` (``(conv, after)`` pairs, e.g. ``fivefold.graphs.GraphSAGE``), its
            convolutions accepting ``Block``s.
        source: a ``Graph`` with ``x`` or a ``GraphStore`` with features (read as float32, then the model's dtype).
        nodes: ``[S]`` distinct node ids, or None for all.
        chunk_size: destination nodes per block.
        workdir: where hidden layers larger than 1 GiB are memory-mapped (default: a temporary folder, removed at
            the end).
        progress: a progress bar over chunks (tqdm).

    Returns ``[S, out]`` in the dtype of the model's parameters."""
    if not hasattr(model, "stages"):
        raise GraphError("layerwise_inference needs a model with stages() (e.g. fivefold.graphs.GraphSAGE)")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise OptionError(f"layerwise_inference: chunk_size must be a positive integer, got {chunk_size!r}")
    from fivefold.graphs import GCNConv

    uses_gcn = any(isinstance(module, GCNConv) for module in model.modules())
    sampler = NeighborSampler(source, [-1], degrees=uses_gcn)  # whole-graph degrees: a full pass, GCN only
    features = source.x if isinstance(source, Graph) else getattr(source, "features", None)
    if features is None:
        raise GraphError("layerwise_inference needs node features (graph.x or the store's features)")
    stages = model.stages()
    dtype = next(model.parameters()).dtype
    num_nodes = sampler.num_nodes
    if nodes is None:
        targets = np.arange(num_nodes, dtype=np.int64)
    else:
        targets = np.asarray(nodes.cpu() if isinstance(nodes, Tensor) else nodes)
        if targets.ndim != 1 or not np.issubdtype(targets.dtype, np.integer):
            raise GraphError(f"nodes must be a 1-D integer array, got shape {targets.shape} of {targets.dtype}")
        if targets.size and (targets.min() < 0 or targets.max() >= num_nodes):
            raise GraphError(f"nodes must lie in [0, {num_nodes})")
        if len(np.unique(targets)) != len(targets):
            raise GraphError("nodes must be distinct")
    # needed[l]: the sorted nodes whose layer-l output is computed (the last layer: the targets)
    needed = [np.unique(targets)]
    for _ in range(len(stages) - 1):
        needed.insert(0, _with_in_neighbours(sampler, needed[0]) if nodes is not None else needed[0])
    was_training = model.training
    model.eval()
    scratch = tempfile.TemporaryDirectory(dir=workdir, prefix="fivefold-layerwise-")
    try:
        previous: Any = features
        previous_ids: np.ndarray | None = None  # None: ``previous`` is indexed by global node id
        for layer, ((conv, after), rows) in enumerate(zip(stages, needed, strict=True)):
            width = None
            out: Any = None
            chunks = range(0, len(rows), chunk_size)
            if progress:
                from tqdm import tqdm

                chunks = tqdm(chunks, desc=f"layer {layer + 1}/{len(stages)}", unit="chunk", leave=False)
            for start in chunks:
                chunk = rows[start:start + chunk_size]
                input_nodes, blocks = sampler.sample(chunk)
                index = input_nodes.numpy()
                if previous_ids is not None:
                    index = np.searchsorted(previous_ids, index)
                x = _rows(previous, index, dtype)
                with torch.no_grad():
                    y = after(conv(x, blocks[0]))
                if out is None:
                    width = y.shape[1]
                    out = _output(len(rows), width, dtype, Path(scratch.name) / f"layer{layer}.npy")
                out[start:start + len(chunk)] = y.numpy()
            if out is None:  # no rows at all
                out = np.empty((0, 0), dtype=torch.empty(0, dtype=dtype).numpy().dtype)
            previous, previous_ids = out, rows
        result = torch.from_numpy(np.asarray(previous[np.searchsorted(needed[-1], targets)]))
        return result
    finally:
        model.train(was_training)
        scratch.cleanup()


def _with_in_neighbours(sampler: NeighborSampler, nodes: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
    """``nodes`` and all their in-neighbours, sorted (read in chunks of ``chunk`` nodes by the sampler's kernels)."""
    parts = [nodes]
    for start in range(0, len(nodes), chunk):
        frontier = nodes[start:start + chunk]
        _, picks = _kernels.draw(sampler.indptr, sampler.indices, frontier, -1, False, 0)
        parts.append(np.unique(picks).astype(np.int64))
    return np.unique(np.concatenate(parts))


def _rows(array: Any, index: np.ndarray, dtype: torch.dtype) -> Tensor:
    """``array[index]`` as a tensor of ``dtype`` (read in sorted order when ``array`` is a memory map)."""
    if isinstance(array, Tensor):
        return array[torch.from_numpy(index)].to(dtype)
    order = np.argsort(index, kind="stable")
    gathered = np.empty((len(index), array.shape[1]), dtype=array.dtype)
    gathered[order] = array[index[order]]
    return torch.from_numpy(gathered).to(dtype)


def _output(rows: int, width: int, dtype: torch.dtype, file: Path) -> np.ndarray:
    numpy_dtype = torch.empty(0, dtype=dtype).numpy().dtype
    if rows * width * numpy_dtype.itemsize <= _IN_MEMORY_BYTES:
        return np.empty((rows, width), dtype=numpy_dtype)
    return np.lib.format.open_memmap(file, mode="w+", dtype=numpy_dtype, shape=(rows, width))
