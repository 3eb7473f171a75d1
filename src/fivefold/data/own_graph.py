"""Your own node-classification graph from files: what ``fivefold train --edges ... --labels ...`` reads.

Formats (CSV, or TSV for ``.tsv`` / ``.tab``; a first line that is not numeric is a header and skipped):

- ``edges``: two integer columns ``source,target`` per line, or a ``.npy`` array ``[E, 2]`` / ``[2, E]``.
- ``labels``: two columns ``node,label`` (any subset of the nodes; the others are unlabelled), or one column
  ``label`` whose line i is node i's; or a ``.npy`` array ``[N]``. An empty label field leaves the node unlabelled.
  A label is a class number 0, 1, 2, ...: NaN, negative, non-integer (0.7) or multi-column labels are refused with
  the line named.
- ``features`` (optional): a ``.npy`` array ``[N, F]`` or a CSV of ``F`` numbers per line, line i for node i. With
  ``remap_ids`` the CSV's first column is the node id instead. Without features every node gets a one-hot vector of
  its index (an identity feature matrix, as in Kipf & Welling's karate-club example).

Node ids are used as they are, 0..N-1 with N = the largest id + 1, unless they are sparse (more than half of 0..N-1
unused, e.g. ids of the order of 1e12) or do not fit in int32: then they are refused with a message to pass
``remap_ids=True``, which renumbers the ids that appear in the edges and labels to 0..N-1 in sorted order and keeps
the original ids (``LabelledGraph.node_ids``; the command line saves them as ``node_ids.csv``). Feature rows must
match the nodes exactly: a row beyond the largest id, or a node without a row, is an error.

The edges are kept as read; ``LabelledGraph.summary`` says whether they were directed (how many edges lack their
reverse) and ``undirected=True`` adds each missing reverse. Duplicate edges are merged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fivefold.data.tables import read_edges, read_features, read_labels
from fivefold.errors import DataError, GraphError
from fivefold.graphs import Graph, coalesce, to_undirected

__all__ = ["LabelledGraph", "load_labelled_graph", "split_nodes"]

_MAX_INT32 = 2**31 - 1


@dataclass(frozen=True)
class LabelledGraph:
    """``graph`` (``x``, ``y`` with -1 for unlabelled nodes, no masks yet), ``node_ids`` (the original id of each
    node when they were remapped, else None) and ``summary`` (lines that say what was read)."""

    graph: Graph
    node_ids: np.ndarray | None
    summary: list[str] = field(default_factory=list)


def load_labelled_graph(
    edges: str | os.PathLike, labels: str | os.PathLike, *, features: str | os.PathLike | None = None,
    undirected: bool = False, remap_ids: bool = False,
) -> LabelledGraph:
    """Read a node-classification graph from files (see the module docstring for the formats and rules)."""
    edges, labels = Path(edges), Path(labels)
    edge_ids = read_edges(edges)  # [2, E] int
    if (edge_ids < 0).any():
        column = int(np.flatnonzero((edge_ids < 0).any(0))[0])
        raise DataError(f"edge list {edges}, edge {column}: node id {int(edge_ids[:, column].min())} is negative")
    label_nodes, label_values = read_labels(labels)
    if remap_ids and label_nodes is None:
        raise DataError(f"labels {labels}: with remapped node ids the labels need two columns, node,label")
    feature_ids, x = (None, None) if features is None else read_features(Path(features), keyed=remap_ids)
    summary: list[str] = []

    if remap_ids:
        used = np.unique(np.concatenate([edge_ids.ravel(), label_nodes]))
        num_nodes = len(used)
        edge_index = np.searchsorted(used, edge_ids)
        node_of_label = np.searchsorted(used, label_nodes)
        summary.append(f"node ids remapped: {num_nodes} distinct ids (from {used[0]} to {used[-1]}) -> "
                       f"0..{num_nodes - 1}")
        node_ids: np.ndarray | None = used
    else:
        largest = max(int(edge_ids.max(initial=-1)),
                      int(label_nodes.max(initial=-1)) if label_nodes is not None else len(label_values) - 1)
        num_nodes = largest + 1
        distinct = len(np.unique(np.concatenate([edge_ids.ravel()] + ([label_nodes] if label_nodes is not None
                                                                       else [np.arange(len(label_values))]))))
        if largest > _MAX_INT32 or num_nodes > 2 * distinct:
            raise DataError(
                f"node ids are sparse: they run up to {largest} but only {distinct} distinct ids appear, which "
                f"would make a graph of {num_nodes} nodes, mostly isolated. Pass --remap-ids (remap_ids=True) to "
                f"renumber them 0..{distinct - 1}; the original ids are kept (node_ids.csv)")
        edge_index, node_ids = edge_ids, None
        node_of_label = label_nodes if label_nodes is not None else np.arange(len(label_values))
        if label_nodes is None and len(label_values) != num_nodes:
            raise DataError(f"labels {labels} has {len(label_values)} rows (one per node) but the edges name nodes "
                            f"up to {largest}: give one row per node 0..{largest}, or two columns node,label")

    y = np.full(num_nodes, -1, dtype=np.int64)
    if len(np.unique(node_of_label)) != len(node_of_label):
        dup = int(np.flatnonzero(np.bincount(node_of_label) > 1)[0])
        raise DataError(f"labels {labels}: node {dup if node_ids is None else node_ids[dup]} is labelled twice")
    y[node_of_label] = label_values
    if (y >= 0).sum() == 0:
        raise DataError(f"labels {labels}: no node has a label")

    if x is None:
        if num_nodes > 5_000:
            raise DataError(f"{num_nodes} nodes and no --features: one-hot node features would need "
                            f"{num_nodes}^2 floats; pass features")
        x = np.eye(num_nodes, dtype=np.float32)
        summary.append("no features given: each node's feature is a one-hot vector of its index")
    elif feature_ids is not None:
        known = np.isin(feature_ids, node_ids)
        if not known.all():
            stray = int(feature_ids[~known][0])
            raise DataError(f"features {features}: a row for node {stray}, which appears in no edge or label")
        rows = np.full(num_nodes, -1, dtype=np.int64)
        rows[np.searchsorted(node_ids, feature_ids)] = np.arange(len(feature_ids))
        if (rows < 0).any():
            missing = int(node_ids[np.flatnonzero(rows < 0)[0]])
            raise DataError(f"features {features}: node {missing} has no row")
        x = x[rows]
    elif len(x) != num_nodes:
        if len(x) > num_nodes:
            raise DataError(f"features {features} has {len(x)} rows but the edges and labels name nodes 0.."
                            f"{num_nodes - 1}: rows {num_nodes}..{len(x) - 1} belong to no node")
        raise DataError(f"features {features} has {len(x)} rows but there are {num_nodes} nodes (0.."
                        f"{num_nodes - 1}): node {len(x)} has no row")

    try:
        graph = Graph(torch.from_numpy(np.ascontiguousarray(edge_index, dtype=np.int64)), num_nodes,
                      x=torch.from_numpy(np.ascontiguousarray(x)), y=torch.from_numpy(y))
    except GraphError as exc:
        raise DataError(f"your graph ({edges}, {labels}{'' if features is None else ', ' + str(features)}): "
                        f"{exc}") from None
    read = graph.num_edges
    graph = coalesce(graph)
    merged = read - graph.num_edges
    source, target = graph.edge_index.numpy()
    lacking = int((~np.isin(target * num_nodes + source, source * num_nodes + target)).sum())
    isolated = int((torch.bincount(graph.edge_index.reshape(-1), minlength=num_nodes) == 0).sum())
    line = f"edges: {read} read" + (f", {merged} duplicates merged" if merged else "")
    if lacking == 0:
        summary.append(f"{line}; every edge has its reverse (the graph is undirected)")
    elif undirected:
        graph = to_undirected(graph)
        summary.append(f"{line}; --undirected added the reverse of {lacking} edges: {graph.num_edges} edges")
    else:
        summary.append(f"{line}; kept DIRECTED as read: {lacking} of {graph.num_edges} edges lack their reverse, "
                       "so messages flow one way only (pass --undirected to add the reverse edges)")
    counts = np.bincount(y[y >= 0])
    summary.append(f"nodes: {num_nodes} ({isolated} isolated), {int((y >= 0).sum())} labelled in {len(counts)} "
                   f"classes (sizes {counts.tolist()}), features: {graph.x.shape[1]}")
    return LabelledGraph(graph, node_ids, summary)


def split_nodes(labels: torch.Tensor | np.ndarray, fractions: Sequence[float], seed: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train / validation / test masks over the labelled nodes (label >= 0), stratified: each class is shuffled
    with ``seed`` and cut in the proportions ``fractions`` (three numbers > 0 summing to 1). Each class of three or
    more nodes puts at least one node in every split. Unlabelled nodes are in no mask. ``DataError`` when a split
    would be empty (model selection needs validation nodes; accuracy needs test nodes)."""
    fractions = [float(f) for f in fractions]
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise DataError(f"split must be three fractions train,val,test > 0 summing to 1, got {fractions}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    masks = [np.zeros(len(labels), dtype=bool) for _ in range(3)]
    for c in np.unique(labels[labels >= 0]):
        members = rng.permutation(np.flatnonzero(labels == c))
        size = len(members)
        n_train = max(1, round(fractions[0] * size))
        n_val = round(fractions[1] * size)
        if size >= 3:  # at least one validation and one test node, taken from the training share
            n_val = max(1, min(n_val, size - 2))
            n_train = max(1, min(n_train, size - n_val - 1))
        masks[0][members[:n_train]] = True
        masks[1][members[n_train:n_train + n_val]] = True
        masks[2][members[n_train + n_val:]] = True
    for mask, name in zip(masks, ("training", "validation", "test"), strict=True):
        if not mask.any():
            raise DataError(f"the {name} split is empty: {int((labels >= 0).sum())} labelled nodes are too few for "
                            f"the split {fractions}; label more nodes or pass masks")
    return tuple(torch.from_numpy(m) for m in masks)
