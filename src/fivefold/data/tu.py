"""TU graph-classification sets (Morris et al. 2020) in the TU text format, and stratified k-fold splits.

Format (1-based ids): ``NAME_A.txt`` one ``row, col`` pair per line; ``NAME_graph_indicator.txt`` the graph of
each node; ``NAME_graph_labels.txt`` one label per graph; optional ``NAME_node_labels.txt``,
``NAME_edge_labels.txt``, ``NAME_node_attributes.txt``. Files are checked against their recorded sha256.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from fivefold.data.files import data_root, require_file, verify
from fivefold.errors import DataError, OptionError
from fivefold.graphs import Graph

__all__ = ["load_tu", "stratified_folds", "TU_SHA256"]

TU_SHA256 = {
    "ENZYMES/ENZYMES_A.txt": "5553c84f8f562f3e199dfd27192174f485e85c44c1357661098668937a739cbf",
    "ENZYMES/ENZYMES_graph_indicator.txt": "95ba0fa47eba6f02e6b754a215dc66d5b49de3f45f57a128514301a8d7ed5f46",
    "ENZYMES/ENZYMES_graph_labels.txt": "04743e08967e61e65cdacbb90f8df6ee53742b3d2e7b84675b85ebac70506856",
    "ENZYMES/ENZYMES_node_attributes.txt": "305a8fc3b12f79fb844ef3374d6a3c8ceeb4887dd4f86bbfe37932c4c5434e7b",
    "ENZYMES/ENZYMES_node_labels.txt": "8263eb9b64efa231a5886343483ccfc0342f2407014763a8f738fd51c32ce770",
    "MUTAG/MUTAG_A.txt": "d9656ca7493f3445d737c711710bb36fd432dddd1c0ea32e1d4713c86ebd28e2",
    "MUTAG/MUTAG_edge_labels.txt": "4669ce755075ff86c3240709345745886400908fa637a49310459b9c267b3e56",
    "MUTAG/MUTAG_graph_indicator.txt": "7d520a4d6c7961c0cdeabe076d8fe27e795b6d373485c9a2b744987e560a2056",
    "MUTAG/MUTAG_graph_labels.txt": "a1518ea39ba3426bd42f57396b9c4baffe68e9adc718caeeab0119c6591a5f2c",
    "MUTAG/MUTAG_node_labels.txt": "678f429965490e84dd27713017538c995fc05d1621beac910848b600015ee863",
    "PROTEINS/PROTEINS_A.txt": "4c4b33e272fc95cac6d27ed6d5d12b9a852c8610e91fff59f8f0dbdd5a20df67",
    "PROTEINS/PROTEINS_graph_indicator.txt": "8d4ff1e852a5c28561e9bffb44cf9490bc552b13a3b6156dd12dc7f44e9afc4a",
    "PROTEINS/PROTEINS_graph_labels.txt": "c0ef9810c440775252872318d0c8adc385588e14bc4c47a2c34aa96ee3c7cdcd",
    "PROTEINS/PROTEINS_node_attributes.txt": "54eef829abb37e458a5fbf3a3c581e48e5810e220463c2cd951856b9ceb08f07",
    "PROTEINS/PROTEINS_node_labels.txt": "f758e8ad3d6e3c026b50833d75f6f90735b94eb3345e4243707f495ca8afea8d",
}


def _read(folder: Path, name: str, part: str, dtype, required: bool = True) -> np.ndarray | None:
    relative = f"{name}/{name}_{part}.txt"
    path = folder / relative
    if not path.is_file():
        if required:
            require_file(path, f"TU data set {name}")
        return None
    if relative in TU_SHA256:
        verify(path, TU_SHA256[relative])
    try:
        return np.loadtxt(path, delimiter=",", dtype=dtype, ndmin=2 if part in ("A", "node_attributes") else 1)
    except ValueError as exc:
        raise DataError(f"{path} is not in the TU text format: {exc}") from None


def load_tu(name: str, root: str | os.PathLike | None = None, *, use_node_attributes: bool = False) -> list[Graph]:
    """Load TU set ``name`` (e.g. ``"MUTAG"``) from ``<root>/tudataset/<name>``.

    Each graph gets ``x``: one-hot node labels (plus the continuous node attributes when
    ``use_node_attributes``), ``edge_attr``: one-hot edge labels where the set has them, and ``graph_y``: the label
    mapped to ``0..C-1`` in sorted order of the raw labels.
    """
    folder = data_root(root) / "tudataset"
    edges = _read(folder, name, "A", np.int64) - 1
    graph_of_node = _read(folder, name, "graph_indicator", np.int64) - 1
    raw_labels = _read(folder, name, "graph_labels", np.int64)
    node_labels = _read(folder, name, "node_labels", np.int64, required=False)
    edge_labels = _read(folder, name, "edge_labels", np.int64, required=False)
    attributes = _read(folder, name, "node_attributes", np.float32, required=False)
    num_nodes, num_graphs = len(graph_of_node), len(raw_labels)
    _check_tu(name, edges, graph_of_node, num_graphs, node_labels, edge_labels, attributes)
    features = []
    if node_labels is not None:
        node_labels = node_labels - node_labels.min()
        features.append(np.eye(node_labels.max() + 1, dtype=np.float32)[node_labels])
    if use_node_attributes and attributes is not None:
        features.append(attributes)
    if not features:
        features.append(np.ones((num_nodes, 1), dtype=np.float32))
    x = torch.from_numpy(np.concatenate(features, axis=1))
    edge_attr = None
    if edge_labels is not None:
        edge_labels = edge_labels - edge_labels.min()
        edge_attr = torch.from_numpy(np.eye(edge_labels.max() + 1, dtype=np.float32)[edge_labels])
    classes, graph_labels = np.unique(raw_labels, return_inverse=True)
    node_ptr = np.concatenate([[0], np.cumsum(np.bincount(graph_of_node, minlength=len(raw_labels)))])
    edge_graph = graph_of_node[edges[:, 0]]
    order = np.argsort(edge_graph, kind="stable")
    edge_ptr = np.concatenate([[0], np.cumsum(np.bincount(edge_graph, minlength=len(raw_labels)))])
    edges_t = torch.from_numpy(edges[order].T.copy())
    graphs = []
    for g in range(len(raw_labels)):
        n0, n1, e0, e1 = node_ptr[g], node_ptr[g + 1], edge_ptr[g], edge_ptr[g + 1]
        graphs.append(Graph(
            edges_t[:, e0:e1] - int(n0), int(n1 - n0), x=x[n0:n1],
            edge_attr=None if edge_attr is None else edge_attr[torch.from_numpy(order[e0:e1])],
            graph_y=torch.tensor(int(graph_labels[g])),
        ))
    return graphs


def _check_tu(name, edges, graph_of_node, num_graphs, node_labels, edge_labels, attributes) -> None:
    """Reject malformed TU files with a DataError naming the file (never a silent drop or a raw traceback)."""
    num_nodes = len(graph_of_node)
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise DataError(f"{name}_A.txt must hold one 'row, col' pair per line")
    if num_nodes == 0 or graph_of_node.min() < 0 or graph_of_node.max() >= num_graphs:
        raise DataError(f"{name}_graph_indicator.txt must hold graph ids in 1..{num_graphs} (one per graph label)")
    if bool((np.diff(graph_of_node) < 0).any()):
        raise DataError(f"{name}_graph_indicator.txt must list the nodes of each graph contiguously, in order")
    if edges.size and (edges.min() < 0 or edges.max() >= num_nodes):
        raise DataError(f"{name}_A.txt has node ids outside 1..{num_nodes}")
    if edges.size and bool((graph_of_node[edges[:, 0]] != graph_of_node[edges[:, 1]]).any()):
        raise DataError(f"{name}_A.txt has an edge between nodes of different graphs")
    for part, values, expected in (("node_labels", node_labels, num_nodes), ("node_attributes", attributes, num_nodes),
                                   ("edge_labels", edge_labels, len(edges))):
        if values is not None and len(values) != expected:
            raise DataError(f"{name}_{part}.txt has {len(values)} lines, expected {expected}")


def stratified_folds(
    labels: np.ndarray | torch.Tensor, k: int = 10, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train, test) index splits; every class is spread evenly over the test folds (shuffled by ``seed``).
    ``k`` may be at most the size of the smallest class (``OptionError`` otherwise)."""
    labels = np.asarray(labels)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        raise OptionError(f"stratified_folds: k must be an integer >= 2, got {k!r}")
    classes, sizes = np.unique(labels, return_counts=True)
    if len(sizes) and k > sizes.min():
        raise OptionError(f"stratified_folds: {k} folds, but class {classes[sizes.argmin()]} has only "
                          f"{sizes.min()} members, so some test folds would lack it; use at most {sizes.min()} "
                          "folds")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(labels), dtype=np.int64)
    offset = 0
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        fold_of[members] = (np.arange(len(members)) + offset) % k
        offset += len(members)
    return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(k)]
