"""SchNet: continuous-filter convolutions on interatomic distances (Schuett, Kindermans, Sauceda, Chmiela, Tkatchenko &
Mueller, NeurIPS 2017, "SchNet: A continuous-filter convolutional neural network for modeling quantum
interactions"; the 2018 J. Chem. Phys. paper for the cosine cutoff).

    h_i  = embedding(Z_i)
    W_ij = Dense(ssp(Dense(rbf(d_ij)))) * cos_cutoff(d_ij)              (filter from the distance only)
    h_i += Dense(ssp(Dense(sum_j W_ij * Dense(h_j))))                      (T interaction blocks)
    y    = sum_i Dense(ssp(Dense(h_i)))                                    (or mean)

``ssp(x) = softplus(x) - log 2``. Only distances enter: the output is invariant to rotations, reflections,
translations and atom renumbering (E(3) x S_N).
"""

from __future__ import annotations

import math

from torch import Tensor, nn
from torch.nn import functional as F

from fivefold.graphs import Graph, global_mean_pool, global_sum_pool
from fivefold.molecules.geometry import edge_vectors, molecule_inputs
from fivefold.molecules.radial import GaussianBasis, cosine_cutoff
from fivefold.ops import scatter

__all__ = ["SchNet", "ShiftedSoftplus"]


class ShiftedSoftplus(nn.Module):
    """``softplus(x) - log 2`` (zero at zero)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.softplus(x) - math.log(2.0)


class _Interaction(nn.Module):
    def __init__(self, hidden: int, filters: int, gaussians: int) -> None:
        super().__init__()
        self.filter = nn.Sequential(nn.Linear(gaussians, filters), ShiftedSoftplus(), nn.Linear(filters, filters))
        self.into = nn.Linear(hidden, filters, bias=False)
        self.out = nn.Sequential(nn.Linear(filters, hidden), ShiftedSoftplus(), nn.Linear(hidden, hidden))

    def forward(self, h: Tensor, basis: Tensor, envelope: Tensor, edge_index: Tensor) -> Tensor:
        weights = self.filter(basis) * envelope[:, None]  # [E, filters]
        messages = self.into(h)[edge_index[0]] * weights
        return self.out(scatter(messages, edge_index[1], h.shape[0], "sum", validate=False))


class SchNet(nn.Module):
    """SchNet for molecular properties.

    Args:
        targets: outputs per molecule.
        hidden, filters: atom and filter widths (128, 128).
        interactions: number of interaction blocks (6 in the paper's QM9 runs).
        gaussians: radial basis size (50 Gaussians on ``[0, cutoff]``).
        cutoff: distance where filters vanish (Angstrom); the batch's edges should include every pair closer than it
            (``from_xyz(..., cutoff=...)``), pairs beyond it get a zero filter.
        readout: ``"sum"`` (extensive properties: energies) or ``"mean"``.

    Shapes: ``model(batch)`` with ``x [N, 1]`` atomic numbers and ``pos [N, 3]`` -> ``[num_graphs, targets]``.
    """

    def __init__(self, targets: int = 1, *, hidden: int = 128, filters: int = 128, interactions: int = 6,
                 gaussians: int = 50, cutoff: float = 5.0, readout: str = "sum", max_z: int = 118) -> None:
        super().__init__()
        self.cutoff, self.readout = float(cutoff), readout
        self.embedding = nn.Embedding(max_z + 1, hidden)
        self.basis = GaussianBasis(0.0, cutoff, gaussians)
        self.interactions = nn.ModuleList(_Interaction(hidden, filters, gaussians) for _ in range(interactions))
        self.head = nn.Sequential(nn.Linear(hidden, hidden // 2), ShiftedSoftplus(), nn.Linear(hidden // 2, targets))

    def atom_outputs(self, batch: Graph) -> Tensor:
        """``[N, targets]`` per-atom contributions before the readout."""
        z, pos = molecule_inputs(batch, "SchNet")
        _, distance = edge_vectors(pos, batch.edge_index)
        basis, envelope = self.basis(distance), cosine_cutoff(distance, self.cutoff)
        h = self.embedding(z)
        for block in self.interactions:
            h = h + block(h, basis, envelope, batch.edge_index)
        return self.head(h)

    def forward(self, batch: Graph) -> Tensor:
        atoms = self.atom_outputs(batch)
        return global_sum_pool(atoms, batch) if self.readout == "sum" else global_mean_pool(atoms, batch)
