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

Stores are written from an in-memory ``Graph`` (``write_store``) or streamed from edge lists larger than memory
(``build_store``: two counting passes, memory bounded by the node count and one chunk).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import mmap
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fivefold.errors import StoreError
from fivefold.graphs import Graph
from fivefold.scale import _kernels

__all__ = ["GraphStore", "build_store", "open_store", "write_store", "FORMAT", "VERSION"]

FORMAT = "fivefold-graph-store"
VERSION = 1
_OPTIONAL = ("features", "labels", "train_mask", "val_mask", "test_mask")
_DIFFERENT_PASSES = ("build_store: the second pass over edge_chunks gave other edges than the first (it must yield the "
                     "same chunks each time it is called)")


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
    temporary = _fresh_temporary(target)
    try:
        for name, array in arrays.items():
            np.save(temporary / f"{name}.npy", np.ascontiguousarray(array))
        _finish(temporary, target, graph.num_nodes, graph.num_edges, list(arrays))
    except OSError as exc:
        shutil.rmtree(temporary, ignore_errors=True)
        raise StoreError(f"could not write the store {target}: {exc.strerror or exc}") from None
    return open_store(target)


def _fresh_temporary(target: Path) -> Path:
    """An empty folder beside ``target`` for a store being written (renamed into place by ``_finish``). Folders
    left there by writers of ``target`` on this machine that died (their process id is gone) are removed first: they
    can be large. (Two machines writing one store on a shared file system are not supported.)"""
    if target.parent.is_dir():
        for stale in target.parent.glob(f".{glob.escape(target.name)}.tmp-*"):
            pid = stale.name.rsplit("-", 1)[-1]
            if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                shutil.rmtree(stale, ignore_errors=True)
    temporary = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    return temporary


@contextlib.contextmanager
def removed_on_error(temporary: Path, what: str) -> Iterator[None]:
    """Remove the half-written folder ``temporary`` if the block raises; an ``OSError`` (a full disk) becomes a
    ``StoreError`` saying that ``what`` could not be written."""
    try:
        yield
    except BaseException as exc:
        shutil.rmtree(temporary, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, StoreError):
            raise StoreError(f"could not write {what}: {exc.strerror or exc}") from None
        raise


def replace_folder(temporary: Path, target: Path) -> None:
    """Flush ``temporary`` to disk and rename it to ``target`` (replacing what is there)."""
    fsync_folder(temporary)
    if target.exists():
        shutil.rmtree(target)
    os.replace(temporary, target)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _finish(temporary: Path, target: Path, num_nodes: int, num_edges: int, names: list[str]) -> None:
    """Write the manifest of the arrays ``names`` (``<name>.npy`` in ``temporary``), flush everything to disk and
    rename the folder to ``target`` (replacing an existing store there)."""
    write_manifest(temporary, {"format": FORMAT, "version": VERSION, "num_nodes": num_nodes, "num_edges": num_edges},
                   names)
    replace_folder(temporary, target)


def write_manifest(folder: Path, header: dict[str, Any], names: list[str]) -> None:
    """``folder/manifest.json``: ``header`` and, for every array ``names`` (``<name>.npy`` in ``folder``), its file,
    dtype, shape, byte size and sha256 (the graph partitions use this format too)."""
    manifest: dict[str, Any] = {**header, "arrays": {}}
    for name in names:
        file = folder / f"{name}.npy"
        array = np.load(file, mmap_mode="r")
        manifest["arrays"][name] = {"file": file.name, "dtype": str(array.dtype), "shape": list(array.shape),
                                    "bytes": file.stat().st_size, "sha256": _sha256(file)}
        del array
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


def fsync_folder(folder: Path) -> None:
    """Flush every file under ``folder`` to disk (before it is renamed into place)."""
    for file in folder.rglob("*"):
        if file.is_file():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())


def _edge_source(edge_chunks: Any) -> Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]:
    """``edge_chunks`` as a function that starts a fresh pass over ``(src, dst)`` chunks."""
    if callable(edge_chunks):
        return edge_chunks
    if isinstance(edge_chunks, (str, os.PathLike)) or not isinstance(edge_chunks, Sequence):
        raise StoreError("build_store: edge_chunks must be a function returning an iterable of (src, dst) arrays, "
                         "or a list of .npy / .csv / .parquet files or arrays of shape [E, 2] or [2, E] (it is read "
                         "twice)")

    def passes() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for item in edge_chunks:
            if isinstance(item, (str, os.PathLike)) and Path(item).suffix.lower() in (".csv", ".parquet"):
                yield from _table_chunks(Path(item))
                continue
            array = np.load(item, mmap_mode="r") if isinstance(item, (str, os.PathLike)) else np.asarray(item)
            if array.ndim != 2 or 2 not in array.shape:
                raise StoreError(f"build_store: an edge chunk has shape {array.shape}; expected [E, 2] or [2, E]")
            pairs = array if array.shape[0] == 2 and array.shape[1] != 2 else array.T
            yield pairs[0], pairs[1]

    return passes


def _table_chunks(file: Path, block_bytes: int = 1 << 26) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(src, dst)`` record batches of a CSV or Parquet edge file, read as a stream through pyarrow.

    The source and target are the columns named ``src``/``dst`` or ``source``/``target`` when present, else the
    first two. A CSV file may have a header line (detected: its fields are not integers) or none; ``#`` comments
    are not allowed."""
    try:
        import pyarrow.csv as pa_csv
        import pyarrow.parquet as pa_parquet
    except ImportError:
        raise StoreError(f"reading {file.name} needs pyarrow: pip install 'fivefold[scale]'") from None
    if not file.is_file():
        raise StoreError(f"build_store: edge file {file} does not exist")
    try:
        if file.suffix.lower() == ".parquet":
            reader = pa_parquet.ParquetFile(file)
            names = reader.schema_arrow.names
            batches = reader.iter_batches(batch_size=max(1, block_bytes // 16))
        else:
            with open(file, "rb") as handle:
                first = handle.readline().decode("utf-8", "replace").lstrip("\ufeff").strip().split(",")
            # a header unless the first two fields (source and target) read as integers; more columns may follow
            header = not all(field.strip().strip('"').lstrip("-").isdigit() for field in first[:2])
            read = pa_csv.ReadOptions(block_size=block_bytes, autogenerate_column_names=not header)
            reader = pa_csv.open_csv(file, read_options=read)
            names = reader.schema.names
            batches = reader
        if len(names) < 2:
            raise StoreError(f"build_store: {file.name} has {len(names)} column(s); an edge file needs two")
        lowered = [name.lower() for name in names]
        pair = next(((lowered.index(a), lowered.index(b)) for a, b in (("src", "dst"), ("source", "target"))
                     if a in lowered and b in lowered), (0, 1))
        for batch in batches:
            columns = [batch.column(pair[0]), batch.column(pair[1])]
            if any(column.null_count for column in columns):
                raise StoreError(f"build_store: {file.name} has an empty source or target field")
            src, dst = (np.asarray(column.to_numpy(zero_copy_only=False)) for column in columns)
            if not (np.issubdtype(src.dtype, np.integer) and np.issubdtype(dst.dtype, np.integer)):
                raise StoreError(f"build_store: {file.name}: the source and target columns must hold integers, got "
                                 f"{src.dtype} and {dst.dtype}")
            yield src, dst
    except StoreError:
        raise
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise StoreError(f"build_store: could not read {file.name}: {exc}") from None


def build_store(
    path: str | os.PathLike, edge_chunks: Any, num_nodes: int, *, features: Any = None, labels: Any = None,
    train_mask: Any = None, val_mask: Any = None, test_mask: Any = None, symmetrize: bool = False,
    dedupe: bool = False, feature_dtype: str = "float32", overwrite: bool = False, rows_per_copy: int = 1 << 16,
    progress: bool = False, in_memory_bytes: int | None = None,
) -> GraphStore:
    """Build a store from edge lists that need not fit in memory, with memory bounded by the node count and one
    chunk (two counting passes, not a sort of all edges).

    Args:
        edge_chunks: a function returning an iterable of ``(src, dst)`` integer arrays (it is called twice), or a
            list of ``.npy`` files or arrays ``[E, 2]`` / ``[2, E]``, or of ``.csv`` / ``.parquet`` edge files
            (read as streams of record batches through pyarrow: ``pip install 'fivefold[scale]'``).
        num_nodes: N; every id must lie in ``[0, N)``.
        features: optional ``[N, F]`` array (a numpy memory map is copied in blocks of ``rows_per_copy`` rows), or a
            function ``features(start, stop) -> [stop - start, F]`` array that makes the rows on demand.
        labels, train_mask, val_mask, test_mask: optional ``[N]`` integer labels and boolean masks.
        symmetrize: add the reverse of every edge.
        dedupe: keep each (source, target) pair once.
        progress: show a progress bar for each pass (tqdm).
        in_memory_bytes: when the edge column (4 or 8 bytes per edge) fits in this many bytes (default: a quarter
            of the machine's RAM, at most 8 GiB) it is assembled in memory and written once; larger, it is
            assembled in a memory-mapped file (random writes to a file-backed
            map are several times slower: 1e9 edges took 16 s per 16.7M-edge chunk that way, against about 1 s in
            memory, on this machine).

    Pass 1 counts each target's in-edges (``indptr``); pass 2 writes every source into its target's row of a
    memory-mapped ``indices`` file; then each row is sorted in place (rows in parallel) and, with ``dedupe``,
    compacted. Rows come out sorted whatever the chunk order, so the same edges always give the same store. Large
    arrays (features, compacted indices) are written with plain file writes rather than through a memory map, so the
    builder's resident memory stays bounded. Written in a temporary folder renamed into place."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise StoreError(f"{target} already exists: pass overwrite=True to replace it")
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, (int, np.integer)) or num_nodes < 0:
        raise StoreError(f"build_store: num_nodes must be a non-negative integer, got {num_nodes!r}")
    if feature_dtype not in ("float32", "float16"):
        raise StoreError(f"build_store: feature_dtype must be 'float32' or 'float16', got {feature_dtype!r}")
    passes = _edge_source(edge_chunks)
    num_nodes = int(num_nodes)

    def directed(number: int, src: Any, dst: Any) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        src, dst = np.asarray(src), np.asarray(dst)
        if src.shape != dst.shape or src.ndim != 1 or not (np.issubdtype(src.dtype, np.integer)
                                                           and np.issubdtype(dst.dtype, np.integer)):
            raise StoreError(f"build_store: edge chunk {number} must be two 1-D integer arrays of one length")
        if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= num_nodes):
            raise StoreError(f"build_store: edge chunk {number} has node ids outside [0, {num_nodes})")
        yield src.astype(np.int64, copy=False), dst.astype(np.int64, copy=False)
        if symmetrize:
            yield dst.astype(np.int64, copy=False), src.astype(np.int64, copy=False)

    temporary = _fresh_temporary(target)
    with removed_on_error(temporary, f"the store {target}"):
        indptr = np.zeros(num_nodes + 1, dtype=np.int64)
        for number, (src, dst) in enumerate(_bar(passes(), progress, "counting edges")):
            for _, targets in directed(number, src, dst):
                _kernels.add_in_degrees(targets, indptr)
        np.cumsum(indptr, out=indptr)
        index_dtype = np.int32 if num_nodes < 2**31 else np.int64
        raw_file = temporary / "raw_indices.npy"
        if in_memory_bytes is None:
            in_memory_bytes = min(8 << 30, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4)
        in_memory = int(indptr[-1]) * np.dtype(index_dtype).itemsize <= in_memory_bytes
        raw = (np.empty(int(indptr[-1]), dtype=index_dtype) if in_memory else
               np.lib.format.open_memmap(raw_file, mode="w+", dtype=index_dtype, shape=(int(indptr[-1]),)))
        cursor = indptr[:-1].copy()
        for number, (src, dst) in enumerate(_bar(passes(), progress, "placing edges")):
            for sources, targets in directed(number, src, dst):
                if not _kernels.scatter_edges(sources.astype(index_dtype), targets, cursor, raw, indptr):
                    raise StoreError(_DIFFERENT_PASSES)
        if not np.array_equal(cursor, indptr[1:]):
            raise StoreError(_DIFFERENT_PASSES)
        del cursor
        kept = _kernels.sort_rows(indptr, raw, dedupe)
        if in_memory or int(kept.sum()) != len(raw):
            if int(kept.sum()) != len(raw):
                indptr = _kernels.compact_unique_rows(indptr, raw)
            num_edges = int(indptr[-1])
            step = rows_per_copy * 16
            _write_npy(temporary / "indices.npy", index_dtype, (num_edges,),
                       (raw[start:min(start + step, num_edges)] for start in range(0, num_edges, step)))
            del raw
            raw_file.unlink(missing_ok=True)
        else:
            num_edges = len(raw)
            raw.flush()
            del raw
            os.replace(raw_file, temporary / "indices.npy")
        del kept
        np.save(temporary / "indptr.npy", indptr)
        names = ["indptr", "indices"]
        if features is not None:
            _copy_rows(features, temporary / "features.npy", num_nodes, np.dtype(feature_dtype), rows_per_copy,
                       progress)
            names.append("features")
        if labels is not None:
            labels = np.asarray(labels)
            if labels.shape != (num_nodes,) or not np.issubdtype(labels.dtype, np.integer):
                raise StoreError(f"build_store: labels must be an integer array [{num_nodes}], got {labels.dtype} "
                                 f"{labels.shape}")
            np.save(temporary / "labels.npy", labels.astype(np.int64))
            names.append("labels")
        for name, mask in (("train_mask", train_mask), ("val_mask", val_mask), ("test_mask", test_mask)):
            if mask is not None:
                mask = np.asarray(mask)
                if mask.shape != (num_nodes,) or mask.dtype != np.bool_:
                    raise StoreError(f"build_store: {name} must be a boolean array [{num_nodes}], got {mask.dtype} "
                                     f"{mask.shape}")
                np.save(temporary / f"{name}.npy", mask)
                names.append(name)
        _finish(temporary, target, num_nodes, num_edges, names)
    return open_store(target)


def _bar(items: Iterable, show: bool, what: str) -> Iterable:
    if not show:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=what, unit="chunk", leave=False)


def _write_npy(file: Path, dtype: Any, shape: tuple[int, ...], blocks: Iterable[np.ndarray]) -> None:
    """Write a ``.npy`` file block by block with ordinary writes (the pages go to the page cache, not to this
    process's resident memory as a memory map's would)."""
    dtype = np.dtype(dtype)
    written = 0
    with open(file, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                      "fortran_order": False, "shape": tuple(shape)})
        for block in blocks:
            block = np.ascontiguousarray(block, dtype=dtype)
            handle.write(memoryview(block).cast("B"))
            written += block.size
    if written != int(np.prod(shape)):
        raise StoreError(f"{file.name}: wrote {written} values, expected {int(np.prod(shape))}")


def _copy_rows(source: Any, file: Path, num_nodes: int, dtype: np.dtype, rows: int, progress: bool = False) -> None:
    """Copy the feature rows of ``source`` (an ``[N, F]`` array, or a function of ``(start, stop)``) into ``file``
    in blocks of ``rows`` rows, refusing NaN and infinite values."""
    read = source if callable(source) else (lambda start, stop: source[start:stop])
    first = np.asarray(read(0, min(rows, num_nodes)))
    width = first.shape[1] if first.ndim == 2 else -1
    if not callable(source) and (source.ndim != 2 or source.shape[0] != num_nodes):
        raise StoreError(f"build_store: features must be [{num_nodes}, F], got shape {tuple(source.shape)}")

    def blocks() -> Iterator[np.ndarray]:
        for start in _bar(range(0, num_nodes, rows), progress, "writing features"):
            stop = min(start + rows, num_nodes)
            block = first if start == 0 else np.asarray(read(start, stop))
            if block.shape != (stop - start, width):
                raise StoreError(f"build_store: feature rows {start}..{stop - 1} have shape {block.shape}, expected "
                                 f"{(stop - start, width)}")
            block = block.astype(dtype)
            if not np.isfinite(block).all():
                raise StoreError(f"build_store: features hold NaN or infinite values in rows {start}..{stop - 1}"
                                 f"{' (or values beyond float16 range, 65504)' if dtype == np.float16 else ''}")
            yield block

    if width < 1:
        raise StoreError(f"build_store: features must be [{num_nodes}, F] with F >= 1, got rows of shape "
                         f"{first.shape}")
    _write_npy(file, dtype, (num_nodes, width), blocks())


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

    def advise(self, pattern: str) -> None:
        """Tell the OS how the store's arrays will be read: ``"random"`` (``madvise(MADV_RANDOM)``: a page fault
        reads that one page, not the 128 KiB around it; what a neighbour sampler and a feature gather do),
        ``"sequential"`` or ``"normal"`` (the default read-ahead). On a store larger than the page cache, random
        reads with read-ahead fetch 32 pages for every one used: on this machine a batch's feature gather went from
        about 15 s to 0.4 s with ``"random"``."""
        flags = {"random": "MADV_RANDOM", "sequential": "MADV_SEQUENTIAL", "normal": "MADV_NORMAL"}
        if pattern not in flags:
            raise StoreError(f"advise: pattern must be one of {sorted(flags)}, got {pattern!r}")
        flag = getattr(mmap, flags[pattern], None)
        for name in ("indptr", "indices", *_OPTIONAL):
            handle = getattr(getattr(self, name), "_mmap", None)
            if handle is not None and flag is not None:
                handle.madvise(flag)

    def release_pages(self) -> None:
        """Drop the pages of the store's arrays from this process's memory map (``madvise(MADV_DONTNEED)``).

        Reading a memory-mapped file puts its pages in the process's resident memory, so random reads of a store
        larger than RAM would grow the process to the size of the file. Released pages stay in the operating
        system's page cache (a later read finds them there, or on disk); only the process's own footprint
        shrinks. ``NeighborLoader(release_every=...)`` calls this between batches."""
        for name in ("indptr", "indices", *_OPTIONAL):
            handle = getattr(getattr(self, name), "_mmap", None)
            if handle is not None and hasattr(mmap, "MADV_DONTNEED"):
                handle.madvise(mmap.MADV_DONTNEED)

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
    manifest = read_manifest(path, FORMAT, VERSION, ("num_nodes", "num_edges"))
    num_nodes, num_edges = int(manifest["num_nodes"]), int(manifest["num_edges"])
    expected_shapes = {"indptr": [num_nodes + 1], "indices": [num_edges], "labels": [num_nodes],
                       "train_mask": [num_nodes], "val_mask": [num_nodes], "test_mask": [num_nodes],
                       "features": [num_nodes, None]}
    arrays = load_arrays(path, manifest, expected_shapes, required=("indptr", "indices"), verify=verify)
    indptr = arrays["indptr"]
    if indptr[0] != 0 or indptr[-1] != num_edges:
        raise StoreError(f"store {path}: indptr must run from 0 to num_edges = {num_edges}")
    return GraphStore(path, manifest, arrays)


def read_manifest(path: Path, format_name: str, version: int, numbers: Sequence[str]) -> dict[str, Any]:
    """The manifest of the folder ``path`` after checking its format, version, array table and the integer fields
    ``numbers``."""
    manifest_file = path / "manifest.json"
    if not manifest_file.is_file():
        raise StoreError(f"{path} is not a {format_name.removeprefix('fivefold-').replace('-', ' ')}: "
                         f"{manifest_file.name} is missing (an interrupted write leaves nothing; write it again)")
    try:
        manifest = json.loads(manifest_file.read_text())
        if not isinstance(manifest["arrays"], dict):
            raise TypeError("'arrays' is not a table")
        for name in numbers:
            manifest[name] = int(manifest[name])
    except (ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"{manifest_file} is not a valid manifest ({exc})") from None
    if manifest.get("format") != format_name or manifest.get("version") != version:
        raise StoreError(f"{path}: format {manifest.get('format')!r} version {manifest.get('version')!r}; this "
                         f"fivefold reads {format_name!r} version {version}")
    return manifest


def load_arrays(path: Path, manifest: dict[str, Any], expected_shapes: dict[str, list[int | None]], *,
                required: Sequence[str], verify: bool = False) -> dict[str, np.ndarray]:
    """Memory-map the arrays of ``expected_shapes`` that the manifest lists (``required`` ones must be there),
    after checking each file's presence, byte size, dtype and shape (``None`` in a shape: any length) and, with
    ``verify``, its sha256."""
    entries = manifest["arrays"]
    arrays = {}
    for name, shape in expected_shapes.items():
        if name not in entries:
            if name in required:
                raise StoreError(f"{path / 'manifest.json'} lists no {name} array")
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
        expected = [array.shape[k] if size is None and k < array.ndim else (-1 if size is None else size)
                    for k, size in enumerate(shape)]
        if str(array.dtype) != entry["dtype"] or list(array.shape) != entry["shape"] or list(array.shape) != expected:
            raise StoreError(f"store {path}: {entry['file']} holds {array.dtype} {list(array.shape)}, expected "
                             f"{entry['dtype']} {expected}")
        arrays[name] = array
    return arrays
