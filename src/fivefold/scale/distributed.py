"""Distributed sampling, feature exchange and layer-wise inference over a partitioned store, on torch.distributed.

Each process (rank ``r`` of ``K``) opens part ``r`` of a ``PartitionedStore`` (``fivefold.scale.partition_store``):
the rows and features of the nodes it owns, and the book saying who owns every other node. What a mini-batch needs
from other ranks is fetched in batched all-to-all exchanges (``torch.distributed.all_to_all_single``: gloo on CPU,
NCCL on GPUs), with every rank taking part in every exchange (an empty request is still sent), so all ranks must
call the same methods in the same order:

- ``DistributedNeighborSampler.sample(seeds, call)``: one request/reply exchange per layer. Each node's owner draws
  its neighbours with the random numbers of ``NeighborSampler`` keyed by ``(seed, call, layer, global id)``, so the
  blocks around a seed are exactly those a single process would draw over the whole graph at the same call.
- ``RowExchange.fetch(nodes, rows)``: one exchange for the input features (and the whole-graph degrees that
  ``GCNConv`` needs) of a batch's input nodes.
- ``distributed_layerwise_inference``: a trained model's exact outputs on every owned node, one layer at a time,
  each rank computing its own nodes and fetching its neighbours' previous-layer rows from their owners.
- ``keyed_dropout``: dropout whose mask is a hash of ``(key, global node id, feature)``, so a node's mask does not
  depend on which rank computes it or what else is in its batch; with it a K-process run trains exactly as the
  single-process run with the same seed (up to the order of floating-point sums).

Every exchange counts the bytes this rank sends to other ranks (``Exchange.bytes_sent``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from fivefold.errors import GraphError, OptionError
from fivefold.graphs import Block
from fivefold.ops import CSR
from fivefold.scale import _kernels
from fivefold.scale.loader import _gather, _gather_file
from fivefold.scale.partition import Partition, PartitionedStore
from fivefold.scale.sampler import check_fanouts, check_seeds

__all__ = ["DistributedNeighborSampler", "Exchange", "KeyedDropoutModel", "RowExchange",
           "distributed_layerwise_inference", "keyed_dropout", "mix64"]

_MASK64 = (1 << 64) - 1


def mix64(*values: int) -> int:
    """A 64-bit hash of integers (splitmix64's finaliser chained over ``values``), as a Python int."""
    state = 0x9E3779B97F4A7C15
    for value in values:
        state = (state + (int(value) & _MASK64) + 0x9E3779B97F4A7C15) & _MASK64
        state = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        state = ((state ^ (state >> 27)) * 0x94D049BB133111EB) & _MASK64
        state ^= state >> 31
    return state


def keyed_dropout(x: Tensor, ids: Tensor, p: float, key: int, training: bool = True) -> Tensor:
    """Dropout of the rows of ``x: [n, F]`` whose mask is a hash of ``(key, ids[i], feature)``.

    ``ids: [n]`` are the rows' global node ids; ``key`` names the step and layer (e.g. ``mix64(seed, step,
    layer)``). A row is masked the same way wherever and with whatever other rows it is computed, which makes
    distributed training reproduce single-process training. Kept entries are scaled by ``1 / (1 - p)``. The mask is
    made by a numba kernel on the CPU (splitmix64 per row and entry: about as fast as ``torch.bernoulli``; an int64
    hash in torch ops took 46 ms for a batch's 2.5 million entries, half the training step) and moved to ``x``'s
    device."""
    if not 0 <= p < 1:
        raise OptionError(f"keyed_dropout: p must be in [0, 1), got {p}")
    if not training or p == 0:
        return x
    if ids.shape != (x.shape[0],):
        raise GraphError(f"keyed_dropout: ids must be [{x.shape[0]}] (one per row), got {tuple(ids.shape)}")
    width = x.shape[1] if x.dim() > 1 else 1
    mask = torch.empty((x.shape[0], width), dtype=x.dtype)
    _kernels.keyed_mask(ids.cpu().numpy().astype(np.int64, copy=False), width, np.uint64(key & _MASK64),
                        np.uint64(int(p * 2**32)), 1 / (1 - p), mask.numpy())
    return x * mask.view(x.shape).to(x.device)


class KeyedDropoutModel(nn.Module):
    """A model given as ``(conv, after)`` stages (``model.stages()``, e.g. ``fivefold.graphs.GraphSAGE``) run over
    sampled blocks with ``keyed_dropout`` (rate ``model.dropout``) before every convolution, as the model's own
    ``forward`` applies ``F.dropout``: ``x -> dropout -> conv1 -> after1 -> dropout -> conv2 -> ...``.

    ``forward(x [num_src of blocks[0], F], blocks, key) -> [num_dst of blocks[-1], out]``; layer ``l``'s mask is
    keyed by ``mix64(key, l)`` and the global ids ``blocks[l].src_ids``. A dropout inside a convolution (GAT's
    attention dropout) still draws from torch's generator. ``stages()`` is the wrapped model's, for layer-wise
    inference."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not hasattr(model, "stages"):
            raise GraphError("KeyedDropoutModel needs a model with stages() (e.g. fivefold.graphs.GraphSAGE)")
        self.model = model
        self.dropout = float(getattr(model, "dropout", 0.0))

    def forward(self, x: Tensor, blocks: Sequence[Block], key: int = 0) -> Tensor:
        stages = self.model.stages()
        if len(blocks) != len(stages):
            raise GraphError(f"the model has {len(stages)} layers; got {len(blocks)} blocks")
        for layer, ((conv, after), block) in enumerate(zip(stages, blocks, strict=True)):
            if block.src_ids is None:
                raise GraphError("keyed dropout needs each block's src_ids (the samplers fill them in)")
            x = keyed_dropout(x, block.src_ids, self.dropout, mix64(key, layer), self.training)
            x = after(conv(x, block))
        return x

    def stages(self) -> list[tuple[nn.Module, Callable[[Tensor], Tensor]]]:
        return self.model.stages()


class Exchange:
    """Variable-size all-to-all exchanges between the ranks of the default process group.

    ``all_to_all(pieces)`` sends ``pieces[r]`` (a tensor; rows along dim 0) to rank ``r`` and returns what each rank
    sent here, in rank order. ``bytes_sent`` counts the bytes sent to *other* ranks (piece payloads and the counts
    exchanged before them); ``exchanges`` the number of calls.

    The exchanged arrays live in host memory (memory maps, sampler output), so they travel through gloo: when the
    default group is NCCL's (training on GPUs), a gloo group over the same ranks is made for them."""

    def __init__(self) -> None:
        if not dist.is_available() or not dist.is_initialized():
            raise GraphError("Exchange needs torch.distributed initialised (torchrun, or init_process_group)")
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.group = None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")
        self.bytes_sent = 0
        self.exchanges = 0

    def all_to_all(self, pieces: Sequence[Tensor], received_counts: Sequence[int] | None = None) -> list[Tensor]:
        """Send ``pieces[r]`` to rank ``r``; returns the pieces received from each rank. ``received_counts`` (rows
        from each rank) skips the exchange of counts when the caller knows them (a reply to its own request)."""
        if len(pieces) != self.world_size:
            raise GraphError(f"all_to_all: {len(pieces)} pieces for {self.world_size} ranks")
        counts = [int(piece.shape[0]) for piece in pieces]
        if received_counts is None:
            sent = torch.tensor(counts, dtype=torch.int64)
            got = torch.empty(self.world_size, dtype=torch.int64)
            dist.all_to_all_single(got, sent, group=self.group)
            received_counts = got.tolist()
            self.bytes_sent += 8 * (self.world_size - 1)
        send = torch.cat([piece.contiguous() for piece in pieces])
        receive = torch.empty((int(sum(received_counts)), *send.shape[1:]), dtype=send.dtype)
        dist.all_to_all_single(receive, send, list(received_counts), counts, group=self.group)
        row_bytes = send.element_size() * int(np.prod(send.shape[1:], dtype=np.int64))
        self.bytes_sent += row_bytes * (sum(counts) - counts[self.rank])
        self.exchanges += 1
        return list(receive.split(list(received_counts)))


class RowExchange:
    """Rows of per-node arrays, fetched from the nodes' owners.

    ``fetch(nodes, rows)``: ``nodes [n]`` global ids; ``rows`` this rank's ``[n_owned, ...]`` array (each rank
    passes its own, e.g. its features or a hidden layer); returns ``[n, ...]`` with row ``i`` from the owner of
    ``nodes[i]``. One request (local ids to each owner) and one reply.

    An owner reads the rows asked of a memory-mapped array (a part's features) through the map, in sorted order
    (``io_threads=0``, the default), or with ``pread`` by ``io_threads`` threads as ``NeighborLoader`` does for a
    store. ``pread`` keeps the pages out of the process and several disk reads in flight, for parts larger than RAM;
    on a part in the page cache it is much slower (one system call per run of rows: on the 1e8-edge R-MAT store, one
    process trained at 2.8 steps/s with 16 reader threads against 15.5 through the map, with a peak of 1.5 GiB
    against 3.9; ``benchmarks/results/distributed_pread.json``)."""

    def __init__(self, partitions: PartitionedStore, exchange: Exchange, io_threads: int = 0) -> None:
        if isinstance(io_threads, bool) or not isinstance(io_threads, int) or io_threads < 0:
            raise OptionError(f"io_threads must be a non-negative integer, got {io_threads!r}")
        self.book_part = partitions.book_part
        self.book_local = partitions.book_local
        self.exchange = exchange
        self.io_threads = io_threads
        self._pool = ThreadPoolExecutor(io_threads, thread_name_prefix="fivefold-rows") if io_threads > 1 else None
        self._files: dict[str, list] = {}

    def route(self, nodes: np.ndarray) -> tuple[np.ndarray, list[Tensor]]:
        """``(order, requests)``: ``nodes`` sorted by owner (stable) and each owner's local ids."""
        owners = np.asarray(self.book_part[nodes], dtype=np.int64)
        order = np.argsort(owners, kind="stable")
        bounds = np.searchsorted(owners[order], np.arange(self.exchange.world_size + 1))
        local = np.asarray(self.book_local[nodes[order]], dtype=np.int64)
        return order, [torch.from_numpy(local[bounds[r]:bounds[r + 1]]) for r in range(self.exchange.world_size)]

    def fetch(self, nodes: np.ndarray, rows: np.ndarray | Tensor) -> Tensor:
        order, requests = self.route(np.asarray(nodes, dtype=np.int64))
        asked = self.exchange.all_to_all(requests)
        replies = [self._take(rows, wanted.numpy()) for wanted in asked]
        received = self.exchange.all_to_all(replies, received_counts=[len(r) for r in requests])
        gathered = torch.cat(received)
        out = torch.empty_like(gathered)
        out[torch.from_numpy(order)] = gathered
        return out

    def _take(self, rows: np.ndarray | Tensor, index: np.ndarray) -> Tensor:
        """``rows[index]`` as a tensor (a memory map read with ``pread``, in sorted order)."""
        if isinstance(rows, Tensor):
            return rows[torch.from_numpy(index)]
        filename = getattr(rows, "filename", None)
        if self.io_threads and isinstance(rows, np.memmap) and filename and rows.flags.c_contiguous:
            files = self._files.get(filename)
            if files is None:
                files = self._files[filename] = [open(filename, "rb", buffering=0)  # noqa: SIM115 - closed in close()
                                                 for _ in range(self.io_threads)]
            return torch.from_numpy(_gather_file(rows, files, index, self._pool))
        return torch.from_numpy(_gather(rows, index))

    def close(self) -> None:
        """Close the files opened for reading rows and stop the reader threads."""
        for files in self._files.values():
            for handle in files:
                handle.close()
        self._files.clear()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


class DistributedNeighborSampler:
    """``NeighborSampler`` over a partitioned store: each rank samples blocks around its seeds, asking the owners of
    the frontier's nodes for their neighbours.

    Args:
        partitions: the opened ``PartitionedStore``; this rank's part is ``partitions.part(rank)``.
        exchange: the ``Exchange`` of the process group (``K`` ranks for ``K`` parts).
        fanouts, replace, seed: as ``NeighborSampler``; ``sample(seeds, call)`` draws what
            ``NeighborSampler(graph, fanouts, replace=replace, seed=seed)`` draws at its ``call``-th call.
        degrees: fill in each block's whole-graph ``src_degree`` and ``src_loops`` (GCN), fetched from the owners
            with the features by ``fetch_inputs``.
        io_threads: 0 reads the part's features through its memory map; more reads them with ``pread`` by that
            many threads (for parts larger than RAM; see ``RowExchange``).
    """

    def __init__(self, partitions: PartitionedStore, exchange: Exchange, fanouts: Sequence[int], *,
                 replace: bool = False, seed: int = 0, degrees: bool = False, io_threads: int = 0) -> None:
        if partitions.num_parts != exchange.world_size:
            raise GraphError(f"{partitions.path} has {partitions.num_parts} parts for {exchange.world_size} "
                             "processes: partition the store into as many parts as processes")
        self.partitions = partitions
        self.part: Partition = partitions.part(exchange.rank)
        self.exchange = exchange
        self.rows = RowExchange(partitions, exchange, io_threads)
        self.fanouts = check_fanouts(fanouts, "DistributedNeighborSampler")
        self.replace = bool(replace)
        self.seed = int(seed)
        self.with_degrees = bool(degrees)
        self._degrees: Tensor | None = None
        self._id_dtype = np.int32 if partitions.num_nodes < 2**31 else np.int64

    def close(self) -> None:
        """Close the feature files opened for the owners' reads (``RowExchange.close``)."""
        self.rows.close()

    def degree_rows(self) -> Tensor:
        """``[n_owned, 2]`` int64: each owned node's whole-graph in-degree without self-loops, and its self-loops."""
        if self._degrees is None:
            degree, loops = self.part.in_degrees()
            self._degrees = torch.from_numpy(np.stack([degree, loops], axis=1))
        return self._degrees

    def _neighbours_of(self, rows: np.ndarray, fanout: int, hop: np.uint64) -> np.ndarray:
        """This rank's answer to a request: ``[counts..., picks...]`` for its local ``rows``."""
        keys = np.asarray(self.part.global_ids[rows], dtype=np.int64)
        offsets, picks = _kernels.draw(self.part.indptr, self.part.indices, rows, fanout, self.replace, hop, keys)
        return np.concatenate([np.diff(offsets), picks])

    def sample(self, seeds: np.ndarray | Tensor, call: int) -> tuple[Tensor, list[Block]]:
        """``(input_nodes, blocks)`` around ``seeds`` (distinct global ids) as ``NeighborSampler.sample`` returns
        them at its ``call``-th call. Every rank must call this at the same time (with its own seeds, possibly
        none): one exchange per layer."""
        frontier = check_seeds(seeds, self.partitions.num_nodes).astype(np.int64)
        blocks: list[Block] = []
        for layer, fanout in enumerate(self.fanouts):
            hop = _kernels.hop_seed(self.seed, call, layer)
            order, requests = self.rows.route(frontier)
            asked = self.exchange.all_to_all(requests)
            answers = [torch.from_numpy(self._neighbours_of(wanted.numpy(), fanout, hop)) for wanted in asked]
            replies = self.exchange.all_to_all(answers)
            counts_sorted = np.concatenate([reply[:len(request)].numpy() for reply, request in
                                            zip(replies, requests, strict=True)]).astype(np.int64)
            picks_sorted = np.concatenate([reply[len(request):].numpy() for reply, request in
                                           zip(replies, requests, strict=True)]).astype(np.int64)
            counts = np.empty(len(frontier), dtype=np.int64)
            counts[order] = counts_sorted
            offsets = np.zeros(len(frontier) + 1, dtype=np.int64)
            np.cumsum(counts, out=offsets[1:])
            sorted_offsets = np.zeros(len(frontier) + 1, dtype=np.int64)
            np.cumsum(counts_sorted, out=sorted_offsets[1:])
            position = np.empty(len(frontier), dtype=np.int64)  # frontier node i's place in the owner-sorted order
            position[order] = np.arange(len(frontier))
            start_in_sorted = np.repeat(sorted_offsets[:-1][position] - offsets[:-1], counts)
            picks = picks_sorted[start_in_sorted + np.arange(offsets[-1])]
            sources, local = _kernels.relabelled(frontier, picks, self._id_dtype)
            csc = CSR(torch.from_numpy(offsets), torch.from_numpy(local), torch.arange(len(local)), len(sources),
                      check=False)
            blocks.append(Block(csc, len(sources), len(frontier), src_ids=torch.from_numpy(sources)))
            frontier = sources
        blocks.reverse()
        return torch.from_numpy(frontier), blocks

    def fetch_inputs(self, input_nodes: Tensor, blocks: list[Block]) -> tuple[Tensor, list[Block]]:
        """``(x [num_input, F] float32, blocks)``: the input nodes' features from their owners, and with
        ``degrees`` the blocks with their sources' whole-graph degrees (the sources of every block are a prefix of
        the input nodes). One exchange, two with degrees."""
        if self.part.features is None:
            raise GraphError(f"{self.partitions.path} has no features")
        nodes = input_nodes.numpy()
        x = self.rows.fetch(nodes, self.part.features).to(torch.float32)
        if not self.with_degrees:
            return x, blocks
        degrees = self.rows.fetch(nodes, self.degree_rows())
        filled = [Block(block.csc, block.num_src, block.num_dst, src_degree=degrees[:block.num_src, 0],
                        src_ids=block.src_ids, src_loops=degrees[:block.num_src, 1]) for block in blocks]
        return x, filled


def distributed_layerwise_inference(
    model: nn.Module, sampler: DistributedNeighborSampler, *, chunk_size: int = 4096, dtype: torch.dtype | None = None,
    device: torch.device | str = "cpu", progress: Callable[[int, int], None] | None = None,
) -> Tensor:
    """The exact outputs of ``model`` (eval mode, no gradients) on every node this rank owns, ``[n_owned, out]`` in
    local-id order, computed one layer at a time over all ranks.

    ``model.stages()`` gives ``(conv, after)`` pairs (as for ``layerwise_inference``). For each layer each rank takes
    its own nodes in chunks of ``chunk_size``, with all their in-neighbours; the previous layer's rows of those
    neighbours come from their owners (one exchange per chunk; the ranks agree on the number of chunks first).
    Every rank must call it at the same time. Blocks and features go to ``device`` for the model; the result is on
    the CPU."""
    if not hasattr(model, "stages"):
        raise GraphError("distributed_layerwise_inference needs a model with stages()")
    from fivefold.graphs import GCNConv

    part = sampler.part
    dtype = dtype or next(model.parameters()).dtype
    uses_gcn = any(isinstance(module, GCNConv) for module in model.modules())
    owned = part.num_owned
    rounds = torch.tensor([(owned + chunk_size - 1) // chunk_size], dtype=torch.int64)
    dist.all_reduce(rounds, op=dist.ReduceOp.MAX, group=sampler.exchange.group)
    previous: np.ndarray | Tensor = part.features
    if previous is None:
        raise GraphError(f"{sampler.partitions.path} has no features")
    was_training = model.training
    model.eval()
    try:
        stages = model.stages()
        for layer, (conv, after) in enumerate(stages):
            out: Tensor | None = None
            outputs = []
            for round_number in range(int(rounds)):
                rows = np.arange(round_number * chunk_size, min((round_number + 1) * chunk_size, owned),
                                 dtype=np.int64)
                offsets, picks = _kernels.draw(part.indptr, part.indices, rows, -1, False, 0)
                destinations = np.asarray(part.global_ids[rows], dtype=np.int64)
                sources, local = _kernels.relabelled(destinations, picks, sampler._id_dtype)
                x = sampler.rows.fetch(sources, previous).to(dtype)
                degree = loops = None
                if uses_gcn:
                    both = sampler.rows.fetch(sources, sampler.degree_rows())
                    degree, loops = both[:, 0], both[:, 1]
                csc = CSR(torch.from_numpy(offsets), torch.from_numpy(local), torch.arange(len(local)), len(sources),
                          check=False)
                block = Block(csc, len(sources), len(rows), src_degree=degree, src_ids=torch.from_numpy(sources),
                              src_loops=loops)
                with torch.no_grad():
                    outputs.append(after(conv(x.to(device), block.to(device))).cpu())
                if progress is not None:
                    progress(layer * int(rounds) + round_number + 1, len(stages) * int(rounds))
            out = torch.cat(outputs) if outputs else torch.empty(0, 0, dtype=dtype)
            previous = out
        return previous if isinstance(previous, Tensor) else torch.from_numpy(np.asarray(previous))
    finally:
        model.train(was_training)
