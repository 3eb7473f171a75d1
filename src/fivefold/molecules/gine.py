"""GINE on molecular graphs: the graph core's ``GINEConv`` (Hu et al. 2020, "Strategies for Pre-training Graph Neural
Networks", the edge-feature form of GIN, Xu et al. 2019) with atom and bond features from ``from_smiles``.

    h_i^0     = W_in x_i
    h_i^{t+1} = MLP_t((1 + eps) h_i^t + sum_{j -> i} relu(h_j^t + W_e^t e_ji)),  then batch norm and ReLU
    y         = FFN(mean_i h_i^T)

Invariant to renumbering atoms and bonds; it sees the molecular graph only (no geometry).
"""

from __future__ import annotations

from torch import Tensor, nn

from fivefold.errors import MoleculeError
from fivefold.graphs import GINEConv, Graph, global_mean_pool
from fivefold.molecules.features import ATOM_FEATURES, BOND_FEATURES

__all__ = ["GINE"]


class GINE(nn.Module):
    """Molecular property model built from ``fivefold.graphs.GINEConv`` layers.

    Args:
        targets: outputs per molecule.
        hidden: width (300).
        layers: message-passing layers (5, as in Hu et al. 2020).
        dropout: after each layer.
        atom_features, bond_features: input widths (``from_smiles``'s by default).

    Shapes: ``model(batch)`` with ``x [N, atom_features]``, ``edge_attr [E, bond_features]`` ->
    ``[num_graphs, targets]``.
    """

    def __init__(self, targets: int = 1, *, hidden: int = 300, layers: int = 5, dropout: float = 0.0,
                 atom_features: int = ATOM_FEATURES, bond_features: int = BOND_FEATURES) -> None:
        super().__init__()
        self.atom_features = atom_features
        self.embed = nn.Linear(atom_features, hidden)
        self.convs = nn.ModuleList(
            GINEConv(nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.BatchNorm1d(2 * hidden), nn.ReLU(),
                                   nn.Linear(2 * hidden, hidden)), edge_dim=bond_features, in_channels=hidden)
            for _ in range(layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, targets))

    def forward(self, batch: Graph) -> Tensor:
        if batch.x is None or batch.x.shape[1] != self.atom_features:
            raise MoleculeError(f"GINE: x must be [N, {self.atom_features}] atom features (from_smiles), got "
                                f"{None if batch.x is None else tuple(batch.x.shape)}")
        h = self.embed(batch.x)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = conv(h, batch)
            if h.shape[0] > 1 or not self.training:  # batch statistics need two atoms (a batch of one methane)
                h = norm(h)
            h = self.dropout(h.relu())
        return self.head(global_mean_pool(h, batch))
