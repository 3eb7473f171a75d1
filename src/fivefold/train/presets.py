"""Paper hyper-parameters for the reference models, shared by the CLI and the experiment scripts."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from torch import nn

from fivefold.data import data_root_given, load_embedded_cora, load_planetoid
from fivefold.graphs import GAT, GCN, GIN, GINGraphClassifier, Graph, GraphSAGE, normalize_features
from fivefold.grids import GCNNClassifier, count_parameters
from fivefold.groups import FiniteGroup, cube_rotations, cyclic, dihedral, trivial
from fivefold.temporal import JODIE, TGAT, TGN, EdgeBank, EventStream, TemporalLinkModel

__all__ = [
    "GRAPH_PRESET", "IMAGE_MODELS", "NODE_PRESETS", "GraphPreset", "NodePreset", "build_graph_model",
    "build_image_model", "build_node_model", "image_widths", "load_node_task", "MOLECULE_MODELS",
    "MOLECULE_DEFAULTS", "build_molecule_model",
]


def load_node_task(task: str, data_root: str | os.PathLike | None) -> tuple[Graph, str]:
    """The graph of a node-classification task with row-normalised features, and where it came from.

    Cora falls back to the embedded copy when no data folder is named (neither ``data_root`` nor
    ``$FIVEFOLD_DATA``, as ``fivefold.data.data_root_given`` tells)."""
    if task == "cora" and not data_root_given(data_root):
        return normalize_features(load_embedded_cora()), "embedded"
    return normalize_features(load_planetoid(task, data_root)), "planetoid"


@dataclass(frozen=True)
class NodePreset:
    hidden: int
    dropout: float
    lr: float
    weight_decay: float
    epochs: int
    patience: int | None
    selection: str = "val_acc"
    decay_biases: bool = True

    def as_dict(self) -> dict:
        return asdict(self)


NODE_PRESETS = {
    # Kipf & Welling (2017): 16 hidden, dropout 0.5, lr 0.01, L2 5e-4, 200 epochs
    "gcn": NodePreset(hidden=16, dropout=0.5, lr=0.01, weight_decay=5e-4, epochs=200, patience=None),
    # Velickovic et al. (2018): 8 heads x 8, dropout 0.6, lr 0.005, L2 5e-4 (not on biases), patience 100, and the
    # checkpoint rule of their reference code
    "gat": NodePreset(hidden=8, dropout=0.6, lr=0.005, weight_decay=5e-4, epochs=1000, patience=100,
                      selection="acc_and_loss", decay_biases=False),
    "sage": NodePreset(hidden=64, dropout=0.5, lr=0.01, weight_decay=5e-4, epochs=200, patience=None),
    "gin": NodePreset(hidden=64, dropout=0.5, lr=0.01, weight_decay=5e-4, epochs=200, patience=None),
}


def build_node_model(name: str, in_channels: int, num_classes: int, hidden: int, dropout: float) -> nn.Module:
    if name == "gcn":
        return GCN(in_channels, num_classes, hidden=hidden, dropout=dropout)
    if name == "gat":
        return GAT(in_channels, num_classes, hidden=hidden, heads=8, dropout=dropout)
    if name == "sage":
        return GraphSAGE(in_channels, num_classes, hidden=hidden, dropout=dropout)
    if name == "gin":
        return GIN(in_channels, num_classes, hidden=hidden, dropout=dropout)
    raise ValueError(f"unknown node model {name!r}; choose from {sorted(NODE_PRESETS)}")


@dataclass(frozen=True)
class GraphPreset:
    """Xu et al. (2019), bio data sets: 5 layers (4 GIN + input), 2-layer MLPs, hidden 32, batch 32, dropout 0.5,
    Adam lr 0.01 halved every 50 epochs, 350 epochs of 50 mini-batches, GIN-0."""

    hidden: int = 32
    num_layers: int = 5
    dropout: float = 0.5
    lr: float = 0.01
    batch_size: int = 32
    epochs: int = 350
    iterations_per_epoch: int = 50

    def as_dict(self) -> dict:
        return asdict(self)


GRAPH_PRESET = GraphPreset()


def build_graph_model(in_channels: int, num_classes: int, preset: GraphPreset = GRAPH_PRESET) -> nn.Module:
    return GINGraphClassifier(in_channels, num_classes, hidden=preset.hidden, num_layers=preset.num_layers,
                              dropout=preset.dropout)


# Image and volume classifiers: the group of each model; "cnn" / "cnn3d" are the plain CNN twins (trivial group)
IMAGE_MODELS: dict[str, tuple[int, Callable[[], FiniteGroup]]] = {
    "cnn": (2, lambda: trivial(2)), "c4": (2, lambda: cyclic(4)), "d4": (2, lambda: dihedral(4)),
    "c8": (2, lambda: cyclic(8)), "cnn3d": (3, lambda: trivial(3)), "o": (3, cube_rotations),
}


def image_widths(base: int, dim: int) -> list[int]:
    """Fields per layer: ``[c, c, 2c, 2c, 4c]`` (2D) or ``[c, c, 2c, 2c, 8c]`` (3D, the last a 1x1x1 layer)."""
    return [base, base, 2 * base, 2 * base, 4 * base] if dim == 2 else [base, base, 2 * base, 2 * base, 8 * base]


def build_image_model(name: str, cnn_base: int, in_channels: int, num_classes: int, **kwargs) -> GCNNClassifier:
    """The ``GCNNClassifier`` for model ``name`` whose parameter count is nearest to the plain CNN of base width
    ``cnn_base`` (same dimension); ``kwargs`` go to ``GCNNClassifier`` (pooling, kernel sizes)."""
    if name not in IMAGE_MODELS:
        raise ValueError(f"unknown image model {name!r}; choose from {sorted(IMAGE_MODELS)}")
    dim, make_group = IMAGE_MODELS[name]

    def make(group: FiniteGroup, base: int) -> GCNNClassifier:
        return GCNNClassifier(in_channels, num_classes, group, image_widths(base, dim), **kwargs)

    target = count_parameters(make(trivial(dim), cnn_base))
    group = make_group()
    best = min(range(1, cnn_base + 1), key=lambda base: abs(count_parameters(make(group, base)) - target))
    return make(group, best)


STREAM_MODELS = ("tgn", "jodie", "tgat", "edgebank")


def build_stream_model(name: str, num_nodes: int, edge_dim: int = 0, *, time_scale: float = 1.0,
                       seed: int = 0) -> TemporalLinkModel:
    """A temporal link predictor with its paper's sizes (widths 100; TGN: 10 most recent neighbours; TGAT: 2 layers
    of the 20 most recent neighbours, DyGLib's setting for these streams, where the paper drew 20 uniformly: on
    CollegeMsg's validation events, seed 0, 4 epochs, recent gave an AP of 0.79-0.80 against 0.69-0.70 for 10 uniform
    draws; JODIE: ``time_scale`` normalises the time since a node's last event (``jodie_time_scale``), and dropout 0.1
    on its embedding, DyGLib's settings: on Enron's validation events, seeds 20-22, they raised the AP from 83.8 to
    86.5, and on CollegeMsg and Wikipedia they changed it by under 0.3)."""
    if name == "tgn":
        return TGN(num_nodes, edge_dim, seed=seed)
    if name == "jodie":
        return JODIE(num_nodes, edge_dim, time_scale=time_scale, dropout=0.1, seed=seed)
    if name == "tgat":
        return TGAT(num_nodes, edge_dim, neighbours=20, layers=2, strategy="recent", seed=seed)
    if name == "edgebank":
        return EdgeBank(num_nodes)
    raise ValueError(f"unknown stream model {name!r}; choose one of {STREAM_MODELS}")


def jodie_time_scale(stream: EventStream, events: Any) -> float:
    """JODIE's normaliser of the time since a node's last event, as DyGLib computes it (Yu et al. 2023,
    ``compute_src_dst_node_time_shifts``): the standard deviation over ``events`` of the time since the node's
    previous event in the same role (source or destination), a node's first event counting from the stream's start;
    DyGLib keeps one figure per role, here their mean (JODIE takes one scale). 1 when it is 0."""
    t = stream.t.numpy()[events] - float(stream.t[0])
    scales = []
    for nodes in (stream.src.numpy()[events], stream.dst.numpy()[events]):
        order = np.lexsort((t, nodes))
        sorted_nodes, sorted_t = nodes[order], t[order]
        first = np.r_[True, sorted_nodes[1:] != sorted_nodes[:-1]]
        gaps = np.where(first, sorted_t, sorted_t - np.r_[0.0, sorted_t[:-1]])
        scales.append(float(gaps.std()) if len(gaps) else 0.0)
    return float(np.mean(scales)) if min(scales) > 0 else 1.0


def node_gap_scale(stream: EventStream, events: Any) -> float:
    """The standard deviation of the time between a node's consecutive events among ``events`` (JODIE's
    normaliser of the time since a node's last update); 1 when there is no such gap."""
    node = np.concatenate([stream.src.numpy()[events], stream.dst.numpy()[events]])
    t = np.concatenate([stream.t.numpy()[events]] * 2)
    order = np.lexsort((t, node))
    node, t = node[order], t[order]
    gaps = np.diff(t)[np.diff(node) == 0]
    return float(gaps.std()) if len(gaps) and gaps.std() > 0 else 1.0


MOLECULE_MODELS = ("dmpnn", "gine")
MOLECULE_DEFAULTS = {"epochs": 50, "lr": 1e-3, "batch_size": 64, "hidden": 300}


def build_molecule_model(name: str, targets: int, hidden: int = 300, readout: str = "norm") -> nn.Module:
    """A molecular property model for SMILES graphs: ``"dmpnn"`` (chemprop's D-MPNN, depth 3, FFN of ``hidden``,
    ``readout`` as ``DMPNN`` takes it) or ``"gine"`` (5 GINE layers of ``hidden``)."""
    from fivefold.molecules import DMPNN, GINE

    if name == "dmpnn":
        return DMPNN(targets, hidden=hidden, ffn_hidden=hidden, readout=readout)
    if name == "gine":
        return GINE(targets, hidden=hidden)
    raise ValueError(f"unknown molecule model {name!r}; choose one of {MOLECULE_MODELS}")
