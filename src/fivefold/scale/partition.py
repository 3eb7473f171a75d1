"""Partitioning a graph store into K stores, one per process or host, for distributed training.

Each partition owns a set of nodes: their CSC rows (all their in-edges, sources as *global* ids), their features,
labels and masks. A partition book maps every global id to ``(part, local id)``. A process that samples around its
own nodes finds their in-neighbours locally and asks the owners of the others (``fivefold.scale.distributed``).

Partitioners (``partition_nodes``):

- ``"metis"``: multilevel k-way partitioning (Karypis & Kumar 1998) through pymetis (``pip install
  'fivefold[dist]'``), on the symmetrised graph in memory: the smallest edge cut, for graphs that fit in memory
  (measured here: 3.0 GiB at 1e7 edges; at 1e8 edges it passed 24 GiB and was killed).
- ``"fennel"`` (Tsourakakis, Gkantsidis, Radunovic & Vojnovic 2014, gamma = 1.5, alpha = sqrt(K) m / n^1.5) and
  ``"ldg"`` (linear deterministic greedy, Stanton & Kliot 2012): one streaming pass over the store's rows in id order
  (numba), memory ``4 N`` bytes for the assignment: for stores larger than RAM.
- ``"random"``: a hash of the node id (the baseline every partitioner must beat).

What is balanced (``balance``): ``"nodes+edges"`` (the default) bounds both each part's nodes (its share of the
training seeds) and its in-edges (its rows: memory, and the neighbour requests it answers) by ``(1 + imbalance)``
times the mean (METIS: two balance constraints; the streaming methods: two capacities, which a greedy pass cannot
always meet: on R-MAT graphs both balances end near 1.3); ``"nodes"`` bounds nodes only.
On a skewed graph the difference is large: on an R-MAT store of 1e8 edges, node-balanced 2-way parts held 97 % and
3 % of the edges (its hubs went together), and the process owning the hubs answered most neighbour requests
and 2 processes trained 16-30 % slower than on parts balanced for both (``benchmarks/distributed.py``). ``"random"``
is balanced only on average.

Layout of a partitioned store ``<path>/``: ``manifest.json`` (format ``fivefold-partitioned-store``, the method, the
part count and the quality report); ``part.npy`` (``[N]``, int16 below 32,768 parts) and ``local.npy`` (``[N]``,
int32 or int64): the partition book; ``part-<k>/`` for each part: ``manifest.json`` (format
``fivefold-graph-partition``) and ``global_ids.npy`` (``[n_k]`` int64, increasing: local id -> global id),
``indptr.npy`` (``[n_k + 1]``), ``indices.npy`` (``[E_k]``, global ids), ``features.npy``, ``labels.npy`` and the
masks. The whole folder is written beside the target and renamed into place, like a store: an interrupted write
leaves nothing that opens. Every file's sha256 is in its manifest (``verify=True`` checks them).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fivefold.errors import OptionError, StoreError
from fivefold.graphs import Graph
from fivefold.scale import _partition_kernels as _kernels
from fivefold.scale.store import (
    _fresh_temporary,
    _write_npy,
    load_arrays,
    read_manifest,
    removed_on_error,
    replace_folder,
    write_manifest,
)

__all__ = ["Partition", "PartitionedStore", "open_partitions", "partition_nodes", "partition_report",
           "partition_store", "METHODS"]

FORMAT = "fivefold-partitioned-store"
PART_FORMAT = "fivefold-graph-partition"
VERSION = 1
METHODS = ("metis", "fennel", "ldg", "random")
BALANCES = ("nodes+edges", "nodes")
_NODE_ARRAYS = ("features", "labels", "train_mask", "val_mask", "test_mask")


def _csc(source: Graph | Any) -> tuple[np.ndarray, np.ndarray, int]:
    if isinstance(source, Graph):
        csc = source.csc()
        return csc.indptr.numpy(), csc.indices.numpy(), source.num_nodes
    try:
        return np.asarray(source.indptr), np.asarray(source.indices), int(source.num_nodes)
    except AttributeError:
        raise StoreError("partitioning needs a Graph or a store with num_nodes, indptr, indices") from None


def partition_nodes(source: Graph | Any, num_parts: int, *, method: str = "fennel", imbalance: float = 0.05,
                    balance: str = "nodes+edges", seed: int = 0) -> np.ndarray:
    """``[N]`` int32: the part (``0 .. num_parts - 1``) of every node of a ``Graph`` or a ``GraphStore``.

    Args:
        num_parts: K >= 1.
        method: ``"metis"``, ``"fennel"``, ``"ldg"`` or ``"random"`` (see the module docstring).
        imbalance: each part holds at most ``ceil((1 + imbalance) N / K)`` nodes (and with ``"nodes+edges"`` as many
            times ``E / K`` in-edges; not enforced by ``"random"``).
        balance: ``"nodes+edges"`` or ``"nodes"``.
        seed: the seed of ``"random"`` and of METIS.

    The streaming methods read each node's in-neighbours (what the neighbour sampler follows); METIS cuts the
    symmetrised graph."""
    if method not in METHODS:
        raise OptionError(f"partition: method must be one of {list(METHODS)}, got {method!r}")
    if isinstance(num_parts, bool) or not isinstance(num_parts, (int, np.integer)) or num_parts < 1:
        raise OptionError(f"partition: num_parts must be a positive integer, got {num_parts!r}")
    if not (isinstance(imbalance, (int, float)) and 0 <= imbalance <= 1):
        raise OptionError(f"partition: imbalance must be a number in [0, 1], got {imbalance!r}")
    if balance not in BALANCES:
        raise OptionError(f"partition: balance must be one of {list(BALANCES)}, got {balance!r}")
    indptr, indices, num_nodes = _csc(source)
    num_parts = int(num_parts)
    if num_parts > max(num_nodes, 1):
        raise OptionError(f"partition: {num_parts} parts for {num_nodes} nodes; use at most one part per node")
    if num_parts == 1:
        return np.zeros(num_nodes, dtype=np.int32)
    edge_weighted = balance == "nodes+edges"
    node_cap = math.ceil((1 + imbalance) * num_nodes / num_parts)
    edge_cap = math.ceil((1 + imbalance) * len(indices) / num_parts) if edge_weighted and len(indices) else 0
    if method == "random":
        return _kernels.hash_partition(num_nodes, num_parts, np.uint64(seed))
    if method in ("fennel", "ldg"):
        gamma = 1.5
        alpha = math.sqrt(num_parts) * len(indices) / max(num_nodes, 1) ** gamma
        return _kernels.stream_partition(indptr, indices, num_parts, node_cap, edge_cap, method == "fennel", alpha,
                                         gamma)
    return _metis(indptr, indices, num_nodes, num_parts, imbalance, seed, edge_weighted)


def _metis(indptr: np.ndarray, indices: np.ndarray, num_nodes: int, num_parts: int, imbalance: float,
           seed: int, edge_weighted: bool) -> np.ndarray:
    try:
        import pymetis
    except ImportError:
        raise OptionError("method='metis' needs pymetis: pip install 'fivefold[dist]' (or use method='fennel', "
                          "which streams and needs nothing more)") from None
    import scipy.sparse as sp

    pattern = sp.csc_matrix((np.ones(len(indices), dtype=bool), np.asarray(indices), np.asarray(indptr)),
                            shape=(num_nodes, num_nodes))
    symmetric = (pattern + pattern.T).tocsr()
    symmetric.setdiag(False)
    symmetric.eliminate_zeros()
    del pattern
    options = pymetis.Options(ufactor=int(round(1000 * imbalance)), seed=int(seed))
    weights = None
    if edge_weighted:  # two constraints per node, interleaved: (1, in-degree)
        weights = np.stack([np.ones(num_nodes, dtype=np.int64), np.diff(np.asarray(indptr)).astype(np.int64)],
                           axis=1).ravel()
    adjacency = pymetis.CSRAdjacency(symmetric.indptr, symmetric.indices)
    result = pymetis.part_graph(num_parts, adjacency, vweights=weights, options=options)
    return np.asarray(result[1], dtype=np.int32)


def partition_report(source: Graph | Any, part: np.ndarray) -> dict[str, Any]:
    """How good an assignment is: ``edge_cut`` (the share of in-edges whose source lies in another part: each one
    is a remote read when sampled), ``cut_edges``, the node and in-edge counts of each part and their balance
    (largest part / mean part; 1 is perfect)."""
    indptr, indices, num_nodes = _csc(source)
    part = _check_assignment(part, num_nodes)
    num_parts = int(part.max()) + 1 if num_nodes else 1
    cut = _kernels.cut_edges(indptr, indices, part)
    in_edges = np.diff(indptr)
    nodes_per_part = np.bincount(part, minlength=num_parts)
    edges_per_part = np.bincount(part, weights=in_edges, minlength=num_parts).astype(np.int64)
    num_edges = int(len(indices))
    return {
        "num_parts": num_parts, "num_nodes": num_nodes, "num_edges": num_edges,
        "cut_edges": int(cut.sum()), "edge_cut": float(cut.sum() / max(num_edges, 1)),
        "nodes_per_part": nodes_per_part.tolist(), "edges_per_part": edges_per_part.tolist(),
        "node_balance": float(nodes_per_part.max() / max(nodes_per_part.mean(), 1e-300)),
        "edge_balance": float(edges_per_part.max() / max(edges_per_part.mean(), 1e-300)) if num_edges else 1.0,
    }


def _check_assignment(part: Any, num_nodes: int) -> np.ndarray:
    part = np.asarray(part)
    if part.shape != (num_nodes,) or not np.issubdtype(part.dtype, np.integer):
        raise StoreError(f"a partition assignment must be an integer array [{num_nodes}], got {part.dtype} "
                         f"{part.shape}")
    if num_nodes and part.min() < 0:
        raise StoreError(f"node {int(np.argmax(part < 0))} has a negative part {int(part.min())}")
    return part.astype(np.int32, copy=False)


def partition_store(source: Graph | Any, path: str | os.PathLike, num_parts: int, *, method: str = "fennel",
                    part: np.ndarray | None = None, imbalance: float = 0.05, balance: str = "nodes+edges",
                    seed: int = 0, overwrite: bool = False, rows_per_copy: int = 1 << 16,
                    progress: bool = False) -> PartitionedStore:
    """Split a ``GraphStore`` (or an in-memory ``Graph``) into ``num_parts`` partitions at ``path`` and open them.

    ``part`` gives the assignment (``[N]`` in ``0 .. num_parts - 1``) instead of computing it with ``method``.
    Each part is written in blocks of ``rows_per_copy`` nodes (memory: the ``[N]`` book and one block), so a store
    larger than RAM can be split. Returns the opened ``PartitionedStore``; its ``report`` holds the edge cut and
    balance."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise StoreError(f"{target} already exists: pass overwrite=True to replace it")
    indptr, indices, num_nodes = _csc(source)
    if part is None:
        part = partition_nodes(source, num_parts, method=method, imbalance=imbalance, balance=balance, seed=seed)
        chosen = method
    else:
        part = _check_assignment(part, num_nodes)
        if num_nodes and part.max() >= num_parts:
            raise StoreError(f"node {int(np.argmax(part >= num_parts))} is assigned to part {int(part.max())}; "
                             f"there are {num_parts} parts")
        chosen = "given"
    report = partition_report(source, part)
    report["num_parts"] = int(num_parts)
    arrays = _node_arrays(source)
    index_dtype = np.int32 if num_nodes < 2**31 else np.int64
    temporary = _fresh_temporary(target)
    with removed_on_error(temporary, f"the partitions {target}"):
        counts = np.bincount(part, minlength=num_parts)
        if num_nodes and counts.min() == 0:
            raise StoreError(f"part {int(np.argmin(counts))} owns no node: choose fewer parts")
        local = np.empty(num_nodes, dtype=np.int32 if counts.max() < 2**31 else np.int64)
        parts_iter: Any = range(num_parts)
        if progress:
            from tqdm import tqdm

            parts_iter = tqdm(parts_iter, desc="writing partitions", unit="part")
        report["halo_nodes"] = []
        for k in parts_iter:
            owned = np.flatnonzero(part == k).astype(np.int64)
            local[owned] = np.arange(len(owned), dtype=local.dtype)
            folder = temporary / f"part-{k}"
            folder.mkdir()
            halo = _write_part(folder, k, owned, indptr, indices, part, arrays, index_dtype, rows_per_copy,
                               num_nodes)
            report["halo_nodes"].append(halo)
        np.save(temporary / "part.npy", part.astype(np.int16 if num_parts < 2**15 else np.int32))
        np.save(temporary / "local.npy", local)
        write_manifest(temporary, {"format": FORMAT, "version": VERSION, "num_parts": int(num_parts),
                                   "num_nodes": num_nodes, "num_edges": int(len(indices)), "method": chosen,
                                   "report": report}, ["part", "local"])
        replace_folder(temporary, target)
    return open_partitions(target)


def _node_arrays(source: Graph | Any) -> dict[str, Any]:
    """The per-node arrays of a graph or store (features as stored; a graph's ``x`` as float32)."""
    if isinstance(source, Graph):
        found = {"features": None if source.x is None else source.x.detach().cpu().numpy().astype(np.float32),
                 "labels": None if source.y is None else source.y.cpu().numpy().astype(np.int64)}
        for name in ("train_mask", "val_mask", "test_mask"):
            mask = getattr(source, name)
            found[name] = None if mask is None else mask.cpu().numpy().astype(bool)
        if found["labels"] is not None and found["labels"].ndim != 1:
            raise StoreError("partition_store: labels must be [N]")
    else:
        found = {name: getattr(source, name, None) for name in _NODE_ARRAYS}
    return {name: array for name, array in found.items() if array is not None}


def _write_part(folder: Path, k: int, owned: np.ndarray, indptr: np.ndarray, indices: np.ndarray, part: np.ndarray,
                arrays: dict[str, Any], index_dtype: Any, rows: int, num_nodes: int) -> int:
    """Write part ``k`` (its ``owned`` nodes) into ``folder``; returns its halo size (distinct remote in-neighbours)."""
    lengths = indptr[owned + 1] - indptr[owned]
    local_indptr = np.zeros(len(owned) + 1, dtype=np.int64)
    np.cumsum(lengths, out=local_indptr[1:])
    np.save(folder / "global_ids.npy", owned)
    np.save(folder / "indptr.npy", local_indptr)
    example = np.empty(0, dtype=index_dtype)
    remote: list[np.ndarray] = []

    def row_blocks() -> Any:
        for start in range(0, len(owned), rows):
            flat, _ = _kernels.gather_rows(indptr, indices, owned[start:start + rows], example)
            remote.append(np.unique(_kernels.remote_sources(flat, part, k)))
            yield flat

    _write_npy(folder / "indices.npy", index_dtype, (int(local_indptr[-1]),), row_blocks())
    names = ["global_ids", "indptr", "indices"]
    for name, array in arrays.items():
        shape = (len(owned), *array.shape[1:])
        _write_npy(folder / f"{name}.npy", array.dtype, shape,
                   (np.asarray(array[owned[start:start + rows]]) for start in range(0, len(owned), rows)))
        names.append(name)
    write_manifest(folder, {"format": PART_FORMAT, "version": VERSION, "part": k, "num_owned": len(owned),
                            "num_edges": int(local_indptr[-1]), "num_nodes": num_nodes}, names)
    return int(len(np.unique(np.concatenate(remote)))) if remote else 0


@dataclass
class Partition:
    """One opened part: the nodes it owns and their rows. ``global_ids [n_k]`` (local -> global, increasing),
    ``indptr [n_k + 1]`` and ``indices [E_k]`` (the owned nodes' in-neighbours as global ids), and the owned rows of
    ``features``, ``labels`` and the masks (None when the store had none). Arrays are read-only memory maps."""

    path: Path
    part: int
    num_nodes: int  # of the whole graph
    global_ids: np.ndarray
    indptr: np.ndarray
    indices: np.ndarray
    features: np.ndarray | None = None
    labels: np.ndarray | None = None
    train_mask: np.ndarray | None = None
    val_mask: np.ndarray | None = None
    test_mask: np.ndarray | None = None

    @property
    def num_owned(self) -> int:
        return len(self.global_ids)

    def in_degrees(self) -> tuple[np.ndarray, np.ndarray]:
        """``([n_k], [n_k])``: each owned node's whole-graph in-degree without self-loops, and its self-loops."""
        loops = _kernels.owned_self_loops(self.indptr, self.indices, self.global_ids)
        return np.diff(self.indptr).astype(np.int64) - loops, loops


class PartitionedStore:
    """An opened partitioned store: ``num_parts``, ``num_nodes``, ``num_edges``, ``method``, ``report`` (edge cut
    and balance), the book ``book_part [N]`` and ``book_local [N]`` (memory maps), and ``part(k)``."""

    def __init__(self, path: Path, manifest: dict[str, Any], arrays: dict[str, np.ndarray], verify: bool) -> None:
        self.path = path
        self.manifest = manifest
        self.num_parts: int = manifest["num_parts"]
        self.num_nodes: int = manifest["num_nodes"]
        self.num_edges: int = manifest["num_edges"]
        self.method: str = manifest.get("method", "")
        self.report: dict[str, Any] = manifest.get("report", {})
        self.book_part: np.ndarray = arrays["part"]
        self.book_local: np.ndarray = arrays["local"]
        self._verify = verify

    def part(self, k: int) -> Partition:
        """Open part ``k`` (checked like a store: files, sizes, dtypes, shapes; sha256 with ``verify``)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < self.num_parts:
            raise StoreError(f"{self.path} has parts 0..{self.num_parts - 1}; part {k!r} does not exist")
        folder = self.path / f"part-{int(k)}"
        manifest = read_manifest(folder, PART_FORMAT, VERSION, ("num_owned", "num_edges", "num_nodes", "part"))
        owned, edges = manifest["num_owned"], manifest["num_edges"]
        if manifest["part"] != k or manifest["num_nodes"] != self.num_nodes:
            raise StoreError(f"{folder} holds part {manifest['part']} of a {manifest['num_nodes']}-node graph; "
                             f"expected part {k} of {self.num_nodes} nodes")
        shapes: dict[str, list[int | None]] = {"global_ids": [owned], "indptr": [owned + 1], "indices": [edges],
                                               "features": [owned, None], "labels": [owned], "train_mask": [owned],
                                               "val_mask": [owned], "test_mask": [owned]}
        arrays = load_arrays(folder, manifest, shapes, required=("global_ids", "indptr", "indices"),
                             verify=self._verify)
        if arrays["indptr"][0] != 0 or arrays["indptr"][-1] != edges:
            raise StoreError(f"{folder}: indptr must run from 0 to num_edges = {edges}")
        return Partition(folder, int(k), self.num_nodes, **arrays)

    def __repr__(self) -> str:
        return (f"PartitionedStore({str(self.path)!r}, num_parts={self.num_parts}, num_nodes={self.num_nodes}, "
                f"method={self.method!r}, edge_cut={self.report.get('edge_cut', float('nan')):.3f})")


def open_partitions(path: str | os.PathLike, *, verify: bool = False) -> PartitionedStore:
    """Open the partitioned store at ``path`` (the book is checked and memory-mapped; parts open with ``part(k)``).
    ``verify=True`` checks every file's sha256 (the book now, each part when opened)."""
    path = Path(path)
    manifest = read_manifest(path, FORMAT, VERSION, ("num_parts", "num_nodes", "num_edges"))
    num_nodes = manifest["num_nodes"]
    arrays = load_arrays(path, manifest, {"part": [num_nodes], "local": [num_nodes]}, required=("part", "local"),
                         verify=verify)
    return PartitionedStore(path, manifest, arrays, verify)
