"""``NeighborLoader``: mini-batches for node-level training over a graph or a graph store.

Each batch holds a chunk of the seed nodes (reshuffled every epoch with the loader's seed), the blocks the
``NeighborSampler`` draws around them, the input nodes' features (gathered from the store's memory map in sorted
order, which reads the file front to back, then put back in block order) and the seeds' labels. A background thread
prepares the next ``prefetch`` batches while the model trains on the current one (sampling and gathering release the
GIL in numba and numpy).
"""

from __future__ import annotations

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


def _gather(array: Any, index: np.ndarray, pool: ThreadPoolExecutor | None = None, parts: int = 1) -> np.ndarray:
    """``array[index]`` read in sorted order (front to back through a memory map), returned in ``index``'s order.

    With a thread ``pool`` the sorted rows are read in ``parts`` contiguous parts at once: on a store larger than the
    page cache each missing page is a disk read that blocks its thread, so several threads keep several reads in
    flight (numpy releases the GIL while it copies)."""
    order = np.argsort(index, kind="stable")
    ordered = index[order]
    rows = np.empty((len(index), *array.shape[1:]), dtype=array.dtype)
    if pool is None or parts < 2 or len(index) < 4096:
        rows[:] = array[ordered]
    else:
        bounds = np.linspace(0, len(index), parts + 1).astype(np.int64)

        def part(k: int) -> None:
            rows[bounds[k]:bounds[k + 1]] = array[ordered[bounds[k]:bounds[k + 1]]]

        list(pool.map(part, range(len(bounds) - 1)))
    out = np.empty_like(rows)
    out[order] = rows
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
        release_every: with a store, release its memory-mapped pages (``GraphStore.release_pages``) after every
            that many batches, which bounds the process's resident memory when the store is larger than RAM.
    """

    def __init__(self, source: Graph | Any, seeds: Tensor | np.ndarray | Sequence[int], fanouts: Sequence[int], *,
                 batch_size: int = 1024, shuffle: bool = True, drop_last: bool = False, replace: bool = False,
                 seed: int = 0, prefetch: int = 1, degrees: bool = True, release_every: int | None = None,
                 pin_memory: bool = False, io_threads: int = 16) -> None:
        checked = [("batch_size", batch_size, 1), ("prefetch", prefetch, 0), ("io_threads", io_threads, 1)]
        if release_every is not None:
            checked.append(("release_every", release_every, 1))
        for name, value, low in checked:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise OptionError(f"NeighborLoader: {name} must be an integer >= {low}, got {value!r}")
        self.sampler = NeighborSampler(source, fanouts, replace=replace, seed=seed, degrees=degrees)
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
        self._pool, self.io_threads = None, int(io_threads)
        if not isinstance(self.features, Tensor):
            if io_threads > 1:
                self._pool = ThreadPoolExecutor(io_threads, thread_name_prefix="fivefold-gather")
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
            rows = _gather(self.features, index, self._pool, self.io_threads)
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
