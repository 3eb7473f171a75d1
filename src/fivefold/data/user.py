"""Loading your own graph.

Two formats:

1. An edge list plus optional arrays: ``load_edge_list("edges.csv", features="x.npy", labels="y.npy")``.
   The edge list is a CSV/TSV text file with two integer columns (source, target; a header line is skipped if it
   is not numeric) or a ``.npy`` array of shape ``[E, 2]`` or ``[2, E]``. Features are ``.npy`` ``[N, F]``;
   labels ``.npy`` ``[N]``.
2. A ``.npz`` in the layout of the Amazon/Coauthor files (Shchur et al. 2018): a scipy CSR adjacency stored as
   ``adj_data``, ``adj_indices``, ``adj_indptr``, ``adj_shape``; optional features as ``attr_data``,
   ``attr_indices``, ``attr_indptr``, ``attr_shape`` (CSR) or a dense ``attr_matrix``; optional ``labels``.

Every problem is reported as a :class:`fivefold.errors.DataError` naming the file and what to fix.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from fivefold.data.files import require_file
from fivefold.errors import DataError, GraphError
from fivefold.graphs import Graph

__all__ = ["load_edge_list", "load_npz"]


def _load_array(path: Path, what: str) -> np.ndarray:
    require_file(path, what)
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{what}: {path} is not a readable .npy array ({exc})") from None
    if not isinstance(array, np.ndarray):
        array.close()
        raise DataError(f"{what}: {path} is an .npz archive; expected a single .npy array")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise DataError(f"{what}: {path} holds {array.dtype} values; expected numbers")
    return array


def _is_integer_row(line: str, delimiter: str) -> bool:
    try:
        [int(field) for field in line.split(delimiter)]
    except ValueError:
        return False
    return True


def _read_edges(path: Path) -> np.ndarray:
    require_file(path, "edge list")
    if path.suffix == ".npy":
        edges = _load_array(path, "edge list")
    else:
        delimiter = "\t" if path.suffix in (".tsv", ".tab") else ","
        try:
            lines = path.read_text().splitlines()
        except UnicodeDecodeError:
            raise DataError(f"edge list {path} is not a text file; expected CSV/TSV or .npy") from None
        skip = 1 if lines and not _is_integer_row(lines[0], delimiter) else 0
        try:
            edges = np.loadtxt(path, delimiter=delimiter, dtype=np.int64, skiprows=skip, ndmin=2)
        except ValueError as exc:
            raise DataError(
                f"edge list {path}: expected two integer columns (source{delimiter}target) per line: {exc}"
            ) from None
    if edges.ndim != 2 or 2 not in edges.shape:
        raise DataError(f"edge list {path}: expected shape [E, 2] or [2, E], got {edges.shape}")
    if not np.issubdtype(edges.dtype, np.integer):
        raise DataError(f"edge list {path}: node ids must be integers, got {edges.dtype}")
    return edges if edges.shape[0] == 2 and edges.shape[1] != 2 else edges.T


def load_edge_list(
    edges: str | os.PathLike, *, features: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None, num_nodes: int | None = None,
) -> Graph:
    """A ``Graph`` from an edge-list file and optional ``.npy`` feature/label arrays (see the module docstring)."""
    edge_index = torch.from_numpy(np.ascontiguousarray(_read_edges(Path(edges))).astype(np.int64))
    x = y = None
    if features is not None:
        x = _load_array(Path(features), "features")
        if x.ndim != 2:
            raise DataError(f"features {features}: expected [N, F], got shape {x.shape}")
        x = torch.from_numpy(x.astype(np.float32))
    if labels is not None:
        y = torch.from_numpy(_load_array(Path(labels), "labels").astype(np.int64))
    try:
        return Graph(edge_index, num_nodes, x=x, y=y)
    except GraphError as exc:
        raise DataError(f"{edges}: {exc}") from None


def load_npz(path: str | os.PathLike) -> Graph:
    """A ``Graph`` from a ``.npz`` holding a CSR adjacency and optional ``attr_*`` / ``labels`` arrays."""
    path = require_file(Path(path), "graph .npz")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} is not a readable .npz archive ({exc})") from None
    if isinstance(archive, np.ndarray):
        raise DataError(f"{path} is a single .npy array; expected an .npz archive of named arrays")
    with archive:
        arrays = dict(archive)
    needed = ("adj_data", "adj_indices", "adj_indptr", "adj_shape")
    missing = [k for k in needed if k not in arrays]
    if missing:
        raise DataError(f"{path} lacks {missing}: store the adjacency as scipy CSR arrays {needed}")
    try:
        adjacency = sp.csr_matrix(
            (arrays["adj_data"], arrays["adj_indices"], arrays["adj_indptr"]), shape=tuple(arrays["adj_shape"])
        )
        adjacency.check_format(full_check=True)
        adjacency = adjacency.tocoo()
        x = None
        if "attr_data" in arrays:
            attributes = sp.csr_matrix(
                (arrays["attr_data"], arrays["attr_indices"], arrays["attr_indptr"]),
                shape=tuple(arrays["attr_shape"]),
            )
            attributes.check_format(full_check=True)
            x = attributes.toarray()
        elif "attr_matrix" in arrays:
            x = arrays["attr_matrix"]
        labels = arrays["labels"].astype(np.int64) if "labels" in arrays else None
        x = None if x is None else np.asarray(x, dtype=np.float32)
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: inconsistent CSR arrays ({exc})") from None
    edge_index = torch.from_numpy(np.vstack([adjacency.row, adjacency.col]).astype(np.int64))
    try:
        return Graph(
            edge_index, int(adjacency.shape[0]),
            x=None if x is None else torch.from_numpy(x),
            y=None if labels is None else torch.from_numpy(labels),
        )
    except GraphError as exc:
        raise DataError(f"{path}: {exc}") from None
