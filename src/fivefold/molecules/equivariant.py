"""A tensor-product equivariant network on O(3) irreps up to degree 2, in the style of NequIP (Batzner et al. 2022,
"E(3)-equivariant graph neural networks for data-efficient and accurate interatomic potentials", Nat. Commun.) and
Tensor Field Networks (Thomas et al. 2018).

Node features are ``C`` channels of each irrep ``0e, 1o, 2e, ...`` up to ``lmax`` (the field type
``o3_irreps("Cx0e + Cx1o + Cx2e")``: degree ``l`` with parity ``(-1)^l``), held as a dict ``{l: [N, C, 2l + 1]}``. One
interaction, for the edges ``j -> i`` with ``r_ij = pos_j - pos_i``:

    w_ij^p      = MLP(Bessel(|r_ij|)) * envelope(|r_ij|)                    [C] weights per path p = (l1, l2, l3)
    m_ij^{l3}   = sum_{p: l1 x l2 -> l3} w_ij^p  (h_j^{l1} ⊗ Y^{l2}(r_ij))_{l3}   (Clebsch-Gordan product, per channel)
    a_i^{l3}    = sum_j m_ij^{l3} / avg_neighbours
    h_i^{l}     <- Linear_l(a_i^l) + Skip_l(h_i^l)                          (channel mixing within each degree)
    gate:  h^0 <- silu(h^0),  h^l <- sigmoid(G_l h^0) * h^l  (l > 0)

Paths obey the triangle rule ``|l1 - l2| <= l3 <= l1 + l2`` and parity ``l1 + l2 + l3`` even (so no cross products:
every feature keeps its natural parity and the network is O(3)-, not only SO(3)-equivariant). The energy is a sum over
atoms of an MLP of the scalars; forces are its negative gradient with respect to the positions (``energy_and_forces``),
so they are exactly equivariant and conservative.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fivefold.errors import MoleculeError
from fivefold.graphs import Graph, global_sum_pool
from fivefold.groups import FieldType, clebsch_gordan, o3_irreps, spherical_harmonics
from fivefold.molecules.geometry import edge_vectors, molecule_inputs
from fivefold.molecules.radial import BesselBasis, polynomial_cutoff
from fivefold.ops import scatter

__all__ = ["TensorProductConv", "TensorProductNet", "energy_and_forces", "coupling_paths"]


def coupling_paths(lmax: int) -> list[tuple[int, int, int]]:
    """The paths ``(l1, l2, l3)``: feature degree ``l1`` times harmonic degree ``l2`` into degree ``l3``, all
    ``<= lmax``, with ``|l1 - l2| <= l3 <= l1 + l2`` and ``l1 + l2 + l3`` even."""
    return [(l1, l2, l3) for l1 in range(lmax + 1) for l2 in range(lmax + 1) for l3 in range(lmax + 1)
            if abs(l1 - l2) <= l3 <= l1 + l2 and (l1 + l2 + l3) % 2 == 0]


def feature_type(channels: int, lmax: int) -> FieldType:
    """``o3_irreps("Cx0e + Cx1o + Cx2e ...")``: the field type of the concatenated node features."""
    return o3_irreps(" + ".join(f"{channels}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(lmax + 1)))


class TensorProductConv(nn.Module):
    """One interaction block (module docstring).

    Args:
        channels: ``C``, channels per degree.
        lmax: highest degree of features and harmonics.
        radial: size of the radial basis the weights are computed from.
        radial_hidden: width of the radial MLP.
        avg_neighbours: the aggregated messages are divided by it (a constant scale; NequIP divides by its square
            root).

    Shapes: ``h {l: [N, C, 2l+1]}`` (degrees missing from ``h`` are zero), ``harmonics {l: [E, 2l+1]}``,
    ``basis [E, radial]`` (the radial basis), ``envelope [E]`` (the cutoff envelope: the weights are multiplied by
    it, so a message fades to exactly zero at the cutoff), ``edge_index [2, E]`` -> ``{l: [N, C, 2l+1]}`` for every
    ``l <= lmax``.
    """

    def __init__(self, channels: int, lmax: int = 2, *, radial: int = 8, radial_hidden: int = 64,
                 avg_neighbours: float = 10.0) -> None:
        super().__init__()
        self.channels, self.lmax, self.avg_neighbours = channels, lmax, float(avg_neighbours)
        self.paths = coupling_paths(lmax)
        for p, (l1, l2, l3) in enumerate(self.paths):
            # kept in float64, so that .double() gives exact couplings (.float() rounds them)
            self.register_buffer(f"cg_{p}", clebsch_gordan(l1, l2, l3) * (2 * l3 + 1) ** 0.5, persistent=False)
        self.radial = nn.Sequential(nn.Linear(radial, radial_hidden), nn.SiLU(),
                                    nn.Linear(radial_hidden, len(self.paths) * channels))
        self.mix = nn.ParameterList(nn.Parameter(torch.randn(channels, channels) / channels**0.5)
                                    for _ in range(lmax + 1))
        self.skip = nn.ParameterList(nn.Parameter(torch.randn(channels, channels) / channels**0.5)
                                     for _ in range(lmax + 1))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.gate = nn.Linear(channels, channels * lmax) if lmax > 0 else None

    def forward(self, h: dict[int, Tensor], harmonics: dict[int, Tensor], basis: Tensor, envelope: Tensor,
                edge_index: Tensor) -> dict[int, Tensor]:
        source, target = edge_index
        n = h[0].shape[0]
        weights = (self.radial(basis) * envelope[:, None]).view(-1, len(self.paths), self.channels)  # [E, P, C]
        messages: dict[int, Tensor] = {}
        for p, (l1, l2, l3) in enumerate(self.paths):
            if l1 not in h:
                continue
            coupling = torch.einsum("ej,ijk->eik", harmonics[l2], getattr(self, f"cg_{p}").to(basis))  # [E, d1, d3]
            product = torch.bmm(h[l1][source], coupling) * weights[:, p, :, None]  # [E, C, d3]
            messages[l3] = product if l3 not in messages else messages[l3] + product
        out: dict[int, Tensor] = {}
        for l in range(self.lmax + 1):
            mixed = torch.zeros(n, self.channels, 2 * l + 1, dtype=basis.dtype, device=basis.device)
            if l in messages:
                aggregated = scatter(messages[l], target, n, "sum", validate=False) / self.avg_neighbours
                mixed = torch.einsum("nci,dc->ndi", aggregated, self.mix[l].to(basis))
            if l in h:
                mixed = mixed + torch.einsum("nci,dc->ndi", h[l], self.skip[l].to(basis))
            out[l] = mixed
        scalars = out[0][:, :, 0] + self.bias.to(basis)
        if self.gate is not None:
            gates = torch.sigmoid(self.gate(scalars)).view(n, self.lmax, self.channels)
            for l in range(1, self.lmax + 1):
                out[l] = out[l] * gates[:, l - 1, :, None]
        out[0] = nn.functional.silu(scalars)[:, :, None]
        return out


class TensorProductNet(nn.Module):
    """An O(3)-equivariant interatomic network with features up to degree ``lmax`` (module docstring).

    Args:
        targets: outputs per molecule (energies or other invariant properties).
        channels: channels per degree (32).
        lmax: highest degree (2).
        layers: interaction blocks (3).
        cutoff: radial cutoff in Angstrom (5.0); the batch's edges should include every pair closer than it.
        radial: Bessel functions in the radial basis (8).
        avg_neighbours: message normalisation (10).

    Shapes: ``model(batch)`` with ``x [N, 1]`` atomic numbers and ``pos [N, 3]`` -> ``[num_graphs, targets]``;
    ``model.node_features(batch)`` -> ``[N, feature_type(channels, lmax).size]`` equivariant node features.
    """

    def __init__(self, targets: int = 1, *, channels: int = 32, lmax: int = 2, layers: int = 3, cutoff: float = 5.0,
                 radial: int = 8, avg_neighbours: float = 10.0, max_z: int = 118) -> None:
        super().__init__()
        if not 0 <= lmax <= 4:
            raise MoleculeError(f"TensorProductNet: lmax must be in 0..4, got {lmax}")
        self.lmax, self.cutoff, self.channels = lmax, float(cutoff), channels
        self.field_type = feature_type(channels, lmax)
        self.embedding = nn.Embedding(max_z + 1, channels)
        self.basis = BesselBasis(cutoff, radial)
        self.blocks = nn.ModuleList(TensorProductConv(channels, lmax, radial=radial, avg_neighbours=avg_neighbours)
                                    for _ in range(layers))
        self.head = nn.Sequential(nn.Linear(channels, channels), nn.SiLU(), nn.Linear(channels, targets))

    def _features(self, batch: Graph) -> dict[int, Tensor]:
        z, pos = molecule_inputs(batch, "TensorProductNet")
        vectors, distance = edge_vectors(pos, batch.edge_index)
        sh = spherical_harmonics(self.lmax, vectors)
        harmonics = {l: sh[:, l * l:(l + 1) ** 2] for l in range(self.lmax + 1)}
        basis, envelope = self.basis(distance), polynomial_cutoff(distance, self.cutoff)
        h: dict[int, Tensor] = {0: self.embedding(z).to(pos.dtype)[:, :, None]}
        for block in self.blocks:
            h = block(h, harmonics, basis, envelope, batch.edge_index)
        return h

    def node_features(self, batch: Graph) -> Tensor:
        """``[N, field_type.size]``: the last block's features, laid out as ``self.field_type``."""
        h = self._features(batch)
        return torch.cat([h[l].reshape(h[l].shape[0], -1) for l in range(self.lmax + 1)], dim=1)

    def forward(self, batch: Graph) -> Tensor:
        h = self._features(batch)
        return global_sum_pool(self.head(h[0][:, :, 0]), batch)


def energy_and_forces(model: nn.Module, batch: Graph, *, create_graph: bool | None = None) -> tuple[Tensor, Tensor]:
    """``(energy [num_graphs, 1], forces [N, 3])`` with ``forces = -d energy / d pos``.

    ``model(batch)`` must return one energy per molecule. ``create_graph`` (default: ``model.training``) keeps the
    graph of the gradient so a loss on the forces can be trained."""
    if batch.pos is None:
        raise MoleculeError("energy_and_forces: the batch has no pos")
    create = model.training if create_graph is None else create_graph
    with torch.enable_grad():  # forces need the gradient even where the caller evaluates under no_grad
        pos = batch.pos.detach().requires_grad_(True)
        energy = model(batch.replace(pos=pos))
        if energy.dim() != 2 or energy.shape[1] != 1:
            raise MoleculeError(f"energy_and_forces: the model must return [num_graphs, 1] energies, got "
                                f"{tuple(energy.shape)}")
        (gradient,) = torch.autograd.grad(energy.sum(), pos, create_graph=create)
    if not create:
        energy, gradient = energy.detach(), gradient.detach()
    return energy, -gradient
