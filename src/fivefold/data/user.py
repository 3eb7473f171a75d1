"""Loading your own graph.

Two formats:

1. An edge list plus optional arrays: ``load_edge_list("edges.csv", features="x.npy", labels="y.npy")``.
   The edge list is a CSV/TSV text file with two integer columns (source, target; a header line is skipped if it
   is not numeric) or a ``.npy`` array of shape ``[E, 2]`` or ``[2, E]``. Features are ``.npy`` ``[N, F]``;
   labels ``.npy`` ``[N]`` or a one-column CSV. For node,label files, sparse node ids and an undirected form, see
   ``fivefold.data.own_graph.load_labelled_graph`` (what ``fivefold train --edges`` uses).
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
from fivefold.data.tables import load_array, read_edges, read_labels
from fivefold.errors import DataError, GraphError
from fivefold.graphs import Graph

__all__ = ["load_edge_list", "load_npz"]


def load_edge_list(
    edges: str | os.PathLike, *, features: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None, num_nodes: int | None = None,
) -> Graph:
    """A ``Graph`` from an edge-list file and optional ``.npy`` features ``[N, F]`` and labels (``.npy`` ``[N]`` or a
    one-column CSV, line i for node i; classes 0, 1, 2, ... checked as ``fivefold.data.load_labelled_graph`` does).
    Edges are kept as read (directed); see ``load_labelled_graph`` for node-id remapping and ``--undirected``."""
    edge_index = torch.from_numpy(np.ascontiguousarray(read_edges(Path(edges))).astype(np.int64))
    x = y = None
    if features is not None:
        x = load_array(Path(features), "features")
        if x.ndim != 2:
            raise DataError(f"features {features}: expected [N, F], got shape {x.shape}")
        x = torch.from_numpy(x.astype(np.float32))
    if labels is not None:
        nodes, values = read_labels(labels)
        if nodes is not None:
            raise DataError(f"labels {labels}: load_edge_list takes one label per line (line i for node i); for "
                            "node,label pairs use fivefold.data.load_labelled_graph")
        y = torch.from_numpy(values)
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
