"""``NeighborLoader``: mini-batches for node-level training over a graph or a graph store.

Each batch holds a chunk of the seed nodes (reshuffled every epoch with the loader's seed), the blocks the
``NeighborSampler`` draws around them, the input nodes' features (read from a store's file in sorted order with
``pread`` by several threads, which keeps the pages out of the process's resident memory and several disk reads in
flight, then put back in block order) and the seeds' labels. A background thread prepares the next ``prefetch``
batches while the model trains on the current one (sampling and reading release the GIL in numba and the OS calls).

Why ``pread`` rather than the memory map the store is opened with: on a store larger than RAM, a fault through the
map pulls whole large folios of the page cache into the process (its resident size jumped by about 10 GB a batch on
the billion-edge benchmark), and with the default read-ahead each random row read 32 pages.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fivefold.errors import GraphError, OptionError
from fivefold.graphs import Block, Graph
from fivefold.scale.sampler import NeighborSampler

__all__ = ["MiniBatch", "NeighborLoader"]


@dataclass(frozen=True)
class MiniBatch:
    """``seeds: [B]`` global ids, ``input_nodes: [num_src of blocks[0]]``, ``blocks`` (input layer first),
    ``x: [num_src of blocks[0], F]`` features of the input nodes (a graph's dtype; a store's as float32),
    ``y: [B]`` labels (None without labels)."""

    seeds: Tensor
    input_nodes: Tensor
    blocks: list[Block]
    x: Tensor
    y: Tensor | None

    def to(self, device: torch.device | str, non_blocking: bool = False) -> MiniBatch:
        """The batch on ``device`` (``non_blocking`` overlaps the copy with computation when ``x`` is pinned)."""
        return MiniBatch(self.seeds.to(device), self.input_nodes.to(device), [b.to(device) for b in self.blocks],
                         self.x.to(device, non_blocking=non_blocking),
                         None if self.y is None else self.y.to(device, non_blocking=non_blocking))


def _gather(array: Any, index: np.ndarray, read: Any = None) -> np.ndarray:
    """``array[index]``, the rows read in sorted order (front to back through the file) by ``read(sorted index)``
    (default: plain indexing), then put back in ``index``'s order."""
    order = np.argsort(index, kind="stable")
    rows = array[index[order]] if read is None else read(index[order])
    out = np.empty_like(rows)
    out[order] = rows
    return out


def _gather_file(array: np.memmap, files: list, index: np.ndarray, pool: ThreadPoolExecutor | None) -> np.ndarray:
    """``array[index]`` for a memory-mapped ``array``, read with ``pread`` through its file (one handle per part in
    ``files``) rather than through the map: the pages go to the OS page cache only, never into this process's
    resident memory, and with a thread ``pool`` as many reads are in flight as there are parts."""
    row_bytes = array.itemsize * int(np.prod(array.shape[1:], dtype=np.int64))

    def read(ordered: np.ndarray) -> np.ndarray:
        rows = np.empty((len(ordered), *array.shape[1:]), dtype=array.dtype)
        bounds = np.linspace(0, len(ordered), len(files) + 1).astype(np.int64)

        def part(k: int) -> None:
            _pread_rows(files[k], array.offset, row_bytes, ordered[bounds[k]:bounds[k + 1]],
                        rows[bounds[k]:bounds[k + 1]])

        if pool is None or len(files) == 1:
            for k in range(len(files)):
                part(k)
        else:
            list(pool.map(part, range(len(files))))
        return rows

    return _gather(array, index, read)


def _pread_rows(file: Any, offset: int, row_bytes: int, index: np.ndarray, out: np.ndarray) -> None:
    """Read rows ``index`` (sorted) of a raw row-major array starting ``offset`` bytes into the open ``file`` into
    ``out`` (``[len(index), ...]``, C-contiguous), one ``pread`` per run of consecutive rows. Nothing to read
    (fewer rows than reader threads leave some threads none) returns at once."""
    if len(index) == 0:
        return
    target = memoryview(out).cast("B")
    fd = file.fileno()
    start = 0
    while start < len(index):
        stop = start + 1
        while stop < len(index) and index[stop] == index[stop - 1] + 1:
            stop += 1
        length = (stop - start) * row_bytes
        got = os.preadv(fd, [target[start * row_bytes:start * row_bytes + length]],
                        offset + int(index[start]) * row_bytes)
        if got != length:
            raise OSError(f"short read of {file.name}: {got} of {length} bytes")
        start = stop


class _InMemoryStructure:
    """A store's CSC arrays copied into memory (what ``NeighborSampler`` reads)."""

    def __init__(self, store: Any, block: int = 1 << 26) -> None:
        self.num_nodes = store.num_nodes
        self.indptr = _copy_released(store, store.indptr, block)
        self.indices = _copy_released(store, store.indices, block)


def _copy_released(store: Any, array: np.ndarray, block: int) -> np.ndarray:
    """``array`` copied into memory ``block`` entries at a time, the store's mapped pages released after each block
    (a plain copy would hold the whole map resident at once, on top of the copy)."""
    out = np.empty(array.shape, dtype=array.dtype)
    for start in range(0, len(array), block):
        out[start:start + block] = array[start:start + block]
        if hasattr(store, "release_pages"):
            store.release_pages()
    return out


class NeighborLoader:
    """Iterate over mini-batches of ``seeds`` with their sampled blocks, features and labels.

    Args:
        source: a ``Graph`` (with ``x``, and ``y`` for labels) or a ``GraphStore`` (``features``, ``labels``).
        seeds: the node ids to train on (``[S]`` int) or a boolean mask ``[N]``.
        fanouts: as ``NeighborSampler``: neighbours per node, from the seeds outwards.
        batch_size: seeds per batch (the last batch may be smaller unless ``drop_last``).
        shuffle: reshuffle the seeds every epoch (with ``seed``, so epochs are reproducible).
        replace, seed, degrees: passed to the sampler (its seed is ``seed``; ``degrees=False`` when the model has
            no ``GCNConv``, which saves time).
        prefetch: batches prepared ahead in a background thread (0: none, sample in the caller's thread).
        pin_memory: put each batch's features and labels in page-locked memory, so copying them to a GPU can overlap
            with computation (``batch.to("cuda", non_blocking=True)``); for training on a GPU (needs CUDA).
        io_threads: with a store, threads that read the batch's feature rows at once (default 16; more reads in
            flight when the store is larger than the page cache); the store is also told its pages are read at
            random (``GraphStore.advise("random")``).
        structure_in_memory: copy the store's ``indptr`` and ``indices`` into memory for the sampler (12 bytes per
            node and 4 per edge: 4.8 GB for 1e8 nodes and 1e9 edges), leaving only the features on disk; random
            reads of the structure through the page cache are what slows sampling on a store larger than RAM.
        release_every: with a store, release its memory-mapped pages (``GraphStore.release_pages``) after every
            that many batches, which bounds the process's resident memory when the store is larger than RAM.
    """

    def __init__(self, source: Graph | Any, seeds: Tensor | np.ndarray | Sequence[int], fanouts: Sequence[int], *,
                 batch_size: int = 1024, shuffle: bool = True, drop_last: bool = False, replace: bool = False,
                 seed: int = 0, prefetch: int = 1, degrees: bool = True, release_every: int | None = None,
                 pin_memory: bool = False, io_threads: int = 16, structure_in_memory: bool = False) -> None:
        checked = [("batch_size", batch_size, 1), ("prefetch", prefetch, 0), ("io_threads", io_threads, 1)]
        if release_every is not None:
            checked.append(("release_every", release_every, 1))
        for name, value, low in checked:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise OptionError(f"NeighborLoader: {name} must be an integer >= {low}, got {value!r}")
        structure = source
        if structure_in_memory and not isinstance(source, Graph):
            structure = _InMemoryStructure(source)
        self.sampler = NeighborSampler(structure, fanouts, replace=replace, seed=seed, degrees=degrees)
        if isinstance(source, Graph):
            self.features, self.labels = source.x, source.y
        else:
            self.features, self.labels = getattr(source, "features", None), getattr(source, "labels", None)
        if self.features is None:
            raise GraphError("NeighborLoader needs node features (graph.x or the store's features)")
        seeds = np.asarray(seeds.cpu() if isinstance(seeds, Tensor) else seeds)
        if seeds.dtype == np.bool_:
            if seeds.shape != (self.sampler.num_nodes,):
                raise GraphError(f"a seed mask must have shape [{self.sampler.num_nodes}], got {seeds.shape}")
            seeds = np.flatnonzero(seeds)
        if seeds.ndim != 1 or len(seeds) == 0:
            raise GraphError("NeighborLoader needs a non-empty 1-D array of seed nodes (or a boolean mask)")
        self.seeds = seeds.astype(np.int64)
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), bool(shuffle), bool(drop_last)
        self.seed, self.prefetch = int(seed), int(prefetch)
        if pin_memory and not torch.cuda.is_available():
            raise OptionError("NeighborLoader: pin_memory=True needs CUDA, which this torch does not see")
        self.pin_memory = bool(pin_memory)
        self.release_every = release_every if hasattr(source, "release_pages") else None
        self._pool, self._files = None, []
        if not isinstance(self.features, Tensor):
            if isinstance(self.features, np.memmap) and self.features.filename is not None:
                if io_threads > 1:
                    self._pool = ThreadPoolExecutor(io_threads, thread_name_prefix="fivefold-gather")
                self._files = [open(self.features.filename, "rb", buffering=0) for _ in range(io_threads)]
                for handle in self._files:
                    os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_RANDOM)
            if hasattr(source, "advise"):
                source.advise("random")
        self._source = source
        self._made = 0
        self.epoch = 0

    def __len__(self) -> int:
        full, rest = divmod(len(self.seeds), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def _batch(self, seeds: np.ndarray) -> MiniBatch:
        self._made += 1
        if self.release_every is not None and self._made % self.release_every == 0:
            self._source.release_pages()
        input_nodes, blocks = self.sampler.sample(seeds)
        index = input_nodes.numpy()
        if isinstance(self.features, Tensor):
            x = self.features[input_nodes]
        else:
            if self._files:
                rows = _gather_file(self.features, self._files, index, self._pool)
            else:
                rows = _gather(self.features, index)
            x = torch.from_numpy(rows.astype(np.float32, copy=False))
        y = None
        if self.labels is not None:
            y = (self.labels[torch.from_numpy(seeds)] if isinstance(self.labels, Tensor)
                 else torch.from_numpy(np.asarray(self.labels[seeds], dtype=np.int64)))
        if self.pin_memory:
            x, y = x.pin_memory(), None if y is None else y.pin_memory()
        return MiniBatch(torch.from_numpy(seeds), input_nodes, blocks, x, y)

    def _chunks(self) -> list[np.ndarray]:
        order = self.seeds
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.seeds)
        self.epoch += 1
        return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)
                if not (self.drop_last and len(order) - i < self.batch_size)]

    def __iter__(self) -> Iterator[MiniBatch]:
        chunks = self._chunks()
        if self.prefetch == 0:
            for chunk in chunks:
                yield self._batch(chunk)
            return
        ready: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def produce() -> None:
            try:
                for chunk in chunks:
                    if stop.is_set():
                        return
                    ready.put(self._batch(chunk))
                ready.put(None)
            except BaseException as exc:  # handed to the consumer, raised there
                ready.put(exc)

        worker = threading.Thread(target=produce, daemon=True, name="fivefold-loader")
        worker.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while worker.is_alive():  # unblock a producer waiting on a full queue
                try:
                    ready.get_nowait()
                except queue.Empty:
                    worker.join(timeout=0.05)
