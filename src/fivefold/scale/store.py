"""The on-disk graph store: a folder of raw arrays opened with memory mapping, described by a manifest.

Layout of ``<path>/``:

- ``manifest.json``: format name and version, ``num_nodes``, ``num_edges``, and for every array its file, dtype,
  shape, byte size and sha256;
- ``indptr.npy`` (int64, ``[N + 1]``) and ``indices.npy`` (int32 while ``N < 2^31``, else int64, ``[E]``): the CSC
  pattern, row ``i`` listing the sources of node ``i``'s in-edges (what message passing and the neighbour sampler
  read);
- optional ``features.npy`` (float32 or float16, ``[N, F]``), ``labels.npy`` (int64, ``[N]``) and
  ``train_mask.npy`` / ``val_mask.npy`` / ``test_mask.npy`` (bool, ``[N]``).

``.npy`` files are used because numpy memory-maps them directly (``np.load(mmap_mode="r")``) and their headers
restate dtype and shape, which opening checks against the manifest. Writing goes to a temporary folder beside the
target that is renamed into place at the end, so an interrupted write never leaves a store that opens. Opening checks
the manifest, each file's presence, byte size, dtype and shape; ``verify=True`` also recomputes every sha256.

So far stores are written from an in-memory ``Graph`` (``write_store``); the streaming builder for edge lists larger
than memory is not written yet.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fivefold.errors import StoreError
from fivefold.graphs import Graph

__all__ = ["GraphStore", "open_store", "write_store", "FORMAT", "VERSION"]

FORMAT = "fivefold-graph-store"
VERSION = 1
_OPTIONAL = ("features", "labels", "train_mask", "val_mask", "test_mask")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def write_store(path: str | os.PathLike, graph: Graph, *, feature_dtype: str = "float32",
                overwrite: bool = False) -> GraphStore:
    """Write ``graph`` (edges, and ``x``, ``y`` and the masks where present) as a store at ``path`` and open it.

    ``feature_dtype`` is ``"float32"`` or ``"float16"`` (half the disk and page cache; features are converted back
    to float32 when read into a batch). An existing ``path`` is an error unless ``overwrite``."""
    if feature_dtype not in ("float32", "float16"):
        raise StoreError(f"write_store: feature_dtype must be 'float32' or 'float16', got {feature_dtype!r}")
    target = Path(path)
    if target.exists() and not overwrite:
        raise StoreError(f"{target} already exists: pass overwrite=True to replace it")
    csc = graph.csc()
    index_dtype = np.int32 if graph.num_nodes < 2**31 else np.int64
    arrays: dict[str, np.ndarray] = {
        "indptr": csc.indptr.numpy().astype(np.int64),
        "indices": csc.indices.numpy().astype(index_dtype),
    }
    if graph.x is not None:
        arrays["features"] = graph.x.detach().cpu().numpy().astype(feature_dtype)
    if graph.y is not None:
        if graph.y.dim() != 1:
            raise StoreError(f"write_store: labels must be [N], got shape {tuple(graph.y.shape)}")
        arrays["labels"] = graph.y.cpu().numpy().astype(np.int64)
    for name in ("train_mask", "val_mask", "test_mask"):
        if getattr(graph, name) is not None:
            arrays[name] = getattr(graph, name).cpu().numpy().astype(bool)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        temporary.mkdir(parents=True)
        manifest: dict[str, Any] = {"format": FORMAT, "version": VERSION, "num_nodes": graph.num_nodes,
                                    "num_edges": graph.num_edges, "arrays": {}}
        for name, array in arrays.items():
            file = temporary / f"{name}.npy"
            np.save(file, np.ascontiguousarray(array))
            manifest["arrays"][name] = {"file": file.name, "dtype": str(array.dtype), "shape": list(array.shape),
                                        "bytes": file.stat().st_size, "sha256": _sha256(file)}
        (temporary / "manifest.json").write_text(json.dumps(manifest, indent=2))
        for file in temporary.iterdir():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
        if target.exists():
            shutil.rmtree(target)
        os.replace(temporary, target)
    except OSError as exc:
        shutil.rmtree(temporary, ignore_errors=True)
        raise StoreError(f"could not write the store {target}: {exc.strerror or exc}") from None
    return open_store(target)


class GraphStore:
    """An opened store (see the module docstring). Arrays are read-only memory maps: ``indptr``, ``indices`` and
    ``features``, ``labels``, ``train_mask``, ``val_mask``, ``test_mask`` (None when absent)."""

    def __init__(self, path: Path, manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.path = path
        self.manifest = manifest
        self.num_nodes: int = manifest["num_nodes"]
        self.num_edges: int = manifest["num_edges"]
        self.indptr: np.ndarray = arrays["indptr"]
        self.indices: np.ndarray = arrays["indices"]
        self.features: np.ndarray | None = arrays.get("features")
        self.labels: np.ndarray | None = arrays.get("labels")
        self.train_mask: np.ndarray | None = arrays.get("train_mask")
        self.val_mask: np.ndarray | None = arrays.get("val_mask")
        self.test_mask: np.ndarray | None = arrays.get("test_mask")

    @property
    def num_features(self) -> int:
        return 0 if self.features is None else int(self.features.shape[1])

    def to_graph(self) -> Graph:
        """The whole store as an in-memory ``Graph`` (for graphs that fit in memory; features as float32)."""
        counts = np.diff(self.indptr)
        target = np.repeat(np.arange(self.num_nodes, dtype=np.int64), counts)
        edge_index = torch.from_numpy(np.stack([np.asarray(self.indices, dtype=np.int64), target]))

        def tensor(array: np.ndarray | None, dtype: Any = None) -> torch.Tensor | None:
            return None if array is None else torch.from_numpy(np.array(array, dtype=dtype))

        return Graph(edge_index, self.num_nodes, x=tensor(self.features, np.float32), y=tensor(self.labels),
                     train_mask=tensor(self.train_mask), val_mask=tensor(self.val_mask),
                     test_mask=tensor(self.test_mask))

    def __repr__(self) -> str:
        extra = [name for name in _OPTIONAL if getattr(self, name) is not None]
        return f"GraphStore({str(self.path)!r}, num_nodes={self.num_nodes}, num_edges={self.num_edges}, {extra})"


def open_store(path: str | os.PathLike, *, verify: bool = False) -> GraphStore:
    """Open the store at ``path``: the manifest is read and every array file is checked for presence, byte size,
    dtype and shape (``verify=True``: also its sha256) before it is memory-mapped. Any mismatch raises
    ``StoreError`` naming the file."""
    path = Path(path)
    manifest_file = path / "manifest.json"
    if not manifest_file.is_file():
        raise StoreError(f"{path} is not a graph store: {manifest_file.name} is missing (an interrupted write leaves "
                         "no store; write it again)")
    try:
        manifest = json.loads(manifest_file.read_text())
        entries = manifest["arrays"]
        num_nodes, num_edges = int(manifest["num_nodes"]), int(manifest["num_edges"])
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{manifest_file} is not a valid manifest ({exc})") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise StoreError(f"{path}: format {manifest.get('format')!r} version {manifest.get('version')!r}; this "
                         f"fivefold reads {FORMAT!r} version {VERSION}")
    expected_shapes = {"indptr": [num_nodes + 1], "indices": [num_edges], "labels": [num_nodes],
                       "train_mask": [num_nodes], "val_mask": [num_nodes], "test_mask": [num_nodes]}
    arrays = {}
    for name in ("indptr", "indices", *_OPTIONAL):
        if name not in entries:
            if name in ("indptr", "indices"):
                raise StoreError(f"{manifest_file} lists no {name} array")
            continue
        entry = entries[name]
        file = path / entry["file"]
        if not file.is_file():
            raise StoreError(f"store {path}: {entry['file']} is missing")
        if file.stat().st_size != entry["bytes"]:
            raise StoreError(f"store {path}: {entry['file']} has {file.stat().st_size} bytes, the manifest says "
                             f"{entry['bytes']} (truncated or replaced)")
        if verify and _sha256(file) != entry["sha256"]:
            raise StoreError(f"store {path}: {entry['file']} does not match its sha256 (corrupted or tampered)")
        try:
            array = np.load(file, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise StoreError(f"store {path}: {entry['file']} is not a readable .npy array ({exc})") from None
        shape = expected_shapes.get(name, [num_nodes, array.shape[1] if array.ndim == 2 else -1])
        if str(array.dtype) != entry["dtype"] or list(array.shape) != entry["shape"] or list(array.shape) != shape:
            raise StoreError(f"store {path}: {entry['file']} holds {array.dtype} {list(array.shape)}, expected "
                             f"{entry['dtype']} {shape}")
        arrays[name] = array
    indptr = arrays["indptr"]
    if indptr[0] != 0 or indptr[-1] != num_edges:
        raise StoreError(f"store {path}: indptr must run from 0 to num_edges = {num_edges}")
    return GraphStore(path, manifest, arrays)
