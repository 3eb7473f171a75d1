"""EGNN: E(n)-equivariant graph neural network (Satorras, Hoogeboom & Welling, ICML 2021, "E(n) Equivariant Graph
Neural Networks").

One layer, for the edges ``j -> i`` of the graph:

    m_ij = phi_e(h_i, h_j, |x_i - x_j|^2, a_ij)              (a_ij optional edge features)
    m_ij = m_ij * sigmoid(phi_inf(m_ij))                    (attention, the paper's QM9 setting)
    x_i' = x_i + mean_j (x_i - x_j) phi_x(m_ij)             (when coordinates are updated)
    h_i' = h_i + phi_h(h_i, sum_j m_ij)

Features ``h`` are invariant and coordinates ``x`` equivariant under rotations, reflections and translations, and
both under renumbering the nodes. ``EGNN`` stacks layers on an atomic-number embedding and sums a node MLP per
molecule; on QM9 the paper does not update coordinates (``update_coords=False``, its default here).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fivefold.graphs import Graph, global_sum_pool
from fivefold.molecules.geometry import molecule_inputs
from fivefold.ops import scatter

__all__ = ["EGNN", "EGNNLayer"]


class EGNNLayer(nn.Module):
    """One E(n)-equivariant layer (module docstring).

    Args:
        hidden: feature width (in and out).
        edge_features: width of ``a_ij`` (0: none).
        update_coords: also return updated coordinates.
        attention: gate messages with ``sigmoid(phi_inf(m_ij))``.

    Shapes: ``h [N, hidden]``, ``pos [N, 3]``, ``edge_index [2, E]``, ``edge_attr [E, edge_features]`` ->
    ``(h' [N, hidden], pos' [N, 3])`` (``pos'`` is ``pos`` when coordinates are not updated).
    """

    def __init__(self, hidden: int, *, edge_features: int = 0, update_coords: bool = True,
                 attention: bool = True) -> None:
        super().__init__()
        self.edge_features, self.update_coords = edge_features, update_coords
        self.phi_e = nn.Sequential(nn.Linear(2 * hidden + 1 + edge_features, hidden), nn.SiLU(),
                                   nn.Linear(hidden, hidden), nn.SiLU())
        self.phi_inf = nn.Sequential(nn.Linear(hidden, 1), nn.Sigmoid()) if attention else None
        self.phi_h = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        if update_coords:
            last = nn.Linear(hidden, 1, bias=False)
            nn.init.xavier_uniform_(last.weight, gain=0.001)  # start near the identity map on coordinates
            self.phi_x = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), last)

    def forward(self, h: Tensor, pos: Tensor, edge_index: Tensor,
                edge_attr: Tensor | None = None) -> tuple[Tensor, Tensor]:
        j, i = edge_index
        difference = pos[i] - pos[j]  # [E, 3]
        squared = (difference * difference).sum(dim=1, keepdim=True)
        inputs = [h[i], h[j], squared]
        if self.edge_features:
            inputs.append(edge_attr)
        m = self.phi_e(torch.cat(inputs, dim=1))
        if self.phi_inf is not None:
            m = m * self.phi_inf(m)
        if self.update_coords:
            pos = pos + scatter(difference * self.phi_x(m), i, pos.shape[0], "mean", validate=False)
        aggregated = scatter(m, i, h.shape[0], "sum", validate=False)
        h = h + self.phi_h(torch.cat([h, aggregated], dim=1))
        return h, pos


class EGNN(nn.Module):
    """EGNN for molecular properties (module docstring).

    Args:
        targets: outputs per molecule.
        hidden: width (128).
        layers: number of EGNN layers (7 in the paper's QM9 runs).
        update_coords: update coordinates between layers (off for QM9, as in the paper).
        attention: gate messages (on, as in the paper's QM9 runs).

    Shapes: ``model(batch)`` with ``x [N, 1]`` atomic numbers and ``pos [N, 3]`` -> ``[num_graphs, targets]``;
    ``model.embed(batch)`` -> ``(h [N, hidden], pos' [N, 3])``.
    """

    def __init__(self, targets: int = 1, *, hidden: int = 128, layers: int = 7, update_coords: bool = False,
                 attention: bool = True, max_z: int = 118) -> None:
        super().__init__()
        self.embedding = nn.Embedding(max_z + 1, hidden)
        self.layers = nn.ModuleList(EGNNLayer(hidden, update_coords=update_coords, attention=attention)
                                    for _ in range(layers))
        self.node_head = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.graph_head = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, targets))

    def embed(self, batch: Graph) -> tuple[Tensor, Tensor]:
        z, pos = molecule_inputs(batch, "EGNN")
        h = self.embedding(z)
        for layer in self.layers:
            h, pos = layer(h, pos, batch.edge_index)
        return h, pos

    def forward(self, batch: Graph) -> Tensor:
        h, _ = self.embed(batch)
        return self.graph_head(global_sum_pool(self.node_head(h), batch))
