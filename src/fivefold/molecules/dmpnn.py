"""D-MPNN: directed message passing on bonds (Yang et al. 2019, "Analyzing Learned Molecular Representations for
Property Prediction", J. Chem. Inf. Model.), the model behind chemprop and the antibiotic screen of Stokes et al. 2020
("A Deep Learning Approach to Antibiotic Discovery", Cell).

Hidden states live on directed bonds ``v -> w``. A bond's message sums the states of the bonds entering ``v``, except
the reverse bond ``w -> v`` (so information does not flow straight back, unlike atom message passing):

    h0_vw = relu(W_i [x_v ; e_vw])
    m_vw  = sum_{u -> v} h_uv - h_wv
    h_vw  = relu(h0_vw + W_h m_vw)                        (depth - 1 times)
    h_v   = relu(W_o [x_v ; sum_{u -> v} h_uv])
    y     = FFN(sum_v h_v / 100)                         (one vector per molecule)

Invariant to renumbering the atoms and the bonds. Defaults are those of chemprop 2's ``chemprop train`` (hidden 300,
depth 3, no bias in W_i and W_h, one hidden FFN layer of 300, and its default ``norm`` aggregation: the sum of the atom
states divided by 100, which keeps the molecule's size in the vector, where a mean would not).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fivefold.errors import MoleculeError
from fivefold.graphs import Graph, global_mean_pool, global_sum_pool
from fivefold.molecules.features import ATOM_FEATURES, BOND_FEATURES
from fivefold.ops import scatter

__all__ = ["DMPNN", "reverse_edges"]


def _reverse(graph: Graph) -> Tensor:
    src, dst = graph.edge_index
    n = max(graph.num_nodes, 1)
    key = src * n + dst
    reverse_key = dst * n + src
    order = torch.argsort(key)
    position = torch.searchsorted(key[order], reverse_key).clamp(max=max(key.numel() - 1, 0))
    found = order[position] if key.numel() else position
    if key.numel() and not torch.equal(key[found], reverse_key):
        bad = int(torch.nonzero(key[found] != reverse_key)[0, 0])
        raise MoleculeError(f"D-MPNN needs every bond as two directed edges; edge {bad} "
                            f"({int(src[bad])} -> {int(dst[bad])}) has no reverse (build graphs with from_smiles)")
    return found


def reverse_edges(graph: Graph) -> Tensor:
    """``[E]``: the index of each edge's reverse edge (cached on the graph). Raises ``MoleculeError`` if one has
    none."""
    return graph.cached("reverse_edges", lambda: _reverse(graph))


class DMPNN(nn.Module):
    """Directed message-passing network for molecular property prediction.

    Args:
        targets: outputs per molecule.
        atom_features, bond_features: input widths (``from_smiles``'s by default).
        hidden: width of the bond states (300).
        depth: message-passing steps including the initial one (3, as chemprop counts).
        ffn_hidden, ffn_layers: the output network's hidden width and number of hidden layers (300, 1).
        dropout: after each message step and in the FFN.
        readout: ``"norm"`` (the sum of the atom states divided by ``readout_norm``, chemprop 2's default),
            ``"mean"`` or ``"sum"``.
        readout_norm: the divisor of the ``"norm"`` readout (100, chemprop's).

    Shapes: ``model(batch)``: a ``Batch`` (or ``Graph``) with ``x [N, atom_features]``,
    ``edge_attr [E, bond_features]`` -> ``[num_graphs, targets]``.
    """

    def __init__(self, targets: int = 1, *, atom_features: int = ATOM_FEATURES, bond_features: int = BOND_FEATURES,
                 hidden: int = 300, depth: int = 3, ffn_hidden: int = 300, ffn_layers: int = 1,
                 dropout: float = 0.0, readout: str = "norm", readout_norm: float = 100.0) -> None:
        super().__init__()
        if depth < 1:
            raise MoleculeError(f"DMPNN: depth must be at least 1, got {depth}")
        if readout not in ("norm", "mean", "sum"):
            raise MoleculeError(f"DMPNN: readout must be 'norm', 'mean' or 'sum', got {readout!r}")
        if not readout_norm > 0:
            raise MoleculeError(f"DMPNN: readout_norm must be positive, got {readout_norm!r}")
        self.atom_features, self.bond_features, self.depth, self.readout = atom_features, bond_features, depth, readout
        self.readout_norm = float(readout_norm)
        self.W_i = nn.Linear(atom_features + bond_features, hidden, bias=False)
        self.W_h = nn.Linear(hidden, hidden, bias=False)
        self.W_o = nn.Linear(atom_features + hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        layers: list[nn.Module] = []
        width = hidden
        for _ in range(ffn_layers):
            layers += [nn.Linear(width, ffn_hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = ffn_hidden
        layers.append(nn.Linear(width, targets))
        self.ffn = nn.Sequential(*layers)

    def encode(self, batch: Graph) -> Tensor:
        """``[N, hidden]`` atom states after message passing."""
        x, edge_attr = batch.x, batch.edge_attr
        if x is None or x.shape[1] != self.atom_features:
            raise MoleculeError(f"DMPNN: x must be [N, {self.atom_features}] atom features (from_smiles), got "
                                f"{None if x is None else tuple(x.shape)}")
        if batch.num_edges and (edge_attr is None or edge_attr.shape[1] != self.bond_features):
            raise MoleculeError(f"DMPNN: edge_attr must be [E, {self.bond_features}] bond features (from_smiles), got "
                                f"{None if edge_attr is None else tuple(edge_attr.shape)}")
        src, dst = batch.edge_index
        reverse = reverse_edges(batch)
        n = batch.num_nodes
        if batch.num_edges:
            h0 = self.W_i(torch.cat([x[src], edge_attr], dim=1))
        else:
            h0 = x.new_zeros(0, self.W_h.in_features)
        h = torch.relu(h0)
        for _ in range(self.depth - 1):
            incoming = scatter(h, dst, n, "sum")  # [N, hidden]: sum over bonds u -> v
            message = incoming[src] - h[reverse]  # bond v -> w: bonds into v, minus w -> v
            h = self.dropout(torch.relu(h0 + self.W_h(message)))
        atom_message = scatter(h, dst, n, "sum")
        return self.dropout(torch.relu(self.W_o(torch.cat([x, atom_message], dim=1))))

    def forward(self, batch: Graph) -> Tensor:
        atoms = self.encode(batch)
        if self.readout == "mean":
            pooled = global_mean_pool(atoms, batch)
        elif self.readout == "sum":
            pooled = global_sum_pool(atoms, batch)
        else:
            pooled = global_sum_pool(atoms, batch) / self.readout_norm
        return self.ffn(pooled)
