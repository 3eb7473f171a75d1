"""The molecular models: symmetry (atom renumbering; E(3) for the 3D models, float64 to 1e-10), forces, slow
references of each published rule, gradients, bad input."""

import math

import pytest
import torch
from torch.nn import functional as F

from fivefold.errors import MoleculeError
from fivefold.graphs import Batch, Graph
from fivefold.groups import clebsch_gordan, o3_irreps, spherical_harmonics
from fivefold.molecules import (
    ATOM_FEATURES,
    DMPNN,
    EGNN,
    GINE,
    EGNNLayer,
    SchNet,
    TensorProductConv,
    TensorProductNet,
    coupling_paths,
    energy_and_forces,
    from_smiles,
    from_xyz,
    reverse_edges,
)
from fivefold.testing import assert_close, assert_equivariant, molecule_action, node_action, position_action

pytest.importorskip("rdkit")

SMILES = ["CCO", "c1ccccc1", "CC(=O)Nc1ccc(O)cc1", "[Na+].[Cl-]", "C"]


def _double(batch: Batch) -> Batch:
    fields = {name: (value.double() if isinstance(value, torch.Tensor) and value.is_floating_point() else value)
              for name, value in batch.fields().items()}
    return batch.replace(**fields)


@pytest.fixture(scope="module")
def smiles_batch() -> Batch:
    return _double(Batch.from_graphs([from_smiles(s) for s in SMILES]))


def _random_molecule(seed: int, atoms: int) -> Graph:
    generator = torch.Generator().manual_seed(seed)
    z = torch.tensor([1, 6, 7, 8, 9])[torch.randint(0, 5, (atoms,), generator=generator)]
    pos = 1.6 * torch.randn(atoms, 3, generator=generator, dtype=torch.float64)
    return from_xyz(z, pos, cutoff=4.0, dtype=torch.float64)


@pytest.fixture(scope="module")
def batch3d() -> Batch:
    return Batch.from_graphs([_random_molecule(seed, atoms) for seed, atoms in ((0, 9), (1, 5), (2, 14), (3, 1))])


# ----- D-MPNN ----------------------------------------------------------------------------------------------------
def test_dmpnn_is_invariant_to_atom_and_bond_renumbering(smiles_batch):
    model = DMPNN(3, hidden=32, ffn_hidden=16).double()
    assert model(smiles_batch).shape == (len(SMILES), 3)
    assert_equivariant(model, molecule_action(), "invariant", smiles_batch, atol=1e-12, samples=6)


def _dmpnn_reference(model: DMPNN, graph: Graph) -> torch.Tensor:
    """Yang et al. 2019's rule, edge by edge."""
    edges = graph.edge_index.T.tolist()
    x, e = graph.x, graph.edge_attr
    h0 = [model.W_i(torch.cat([x[v], e[k]])) for k, (v, w) in enumerate(edges)]
    h = [torch.relu(t) for t in h0]
    for _ in range(model.depth - 1):
        new = []
        for k, (v, w) in enumerate(edges):
            message = sum((h[q] for q, (u, t) in enumerate(edges) if t == v and u != w), torch.zeros_like(h[k]))
            new.append(torch.relu(h0[k] + model.W_h(message)))
        h = new
    atoms = []
    for v in range(graph.num_nodes):
        incoming = sum((h[q] for q, (u, t) in enumerate(edges) if t == v), torch.zeros(model.W_h.in_features,
                                                                                        dtype=x.dtype))
        atoms.append(torch.relu(model.W_o(torch.cat([x[v], incoming]))))
    atoms = torch.stack(atoms)
    pooled = {"norm": atoms.sum(0, keepdim=True) / 100, "mean": atoms.mean(0, keepdim=True),
              "sum": atoms.sum(0, keepdim=True)}[model.readout]
    return model.ffn(pooled)


@pytest.mark.parametrize("readout", ["norm", "mean", "sum"])
@pytest.mark.parametrize("smiles", ["CC(=O)Nc1ccc(O)cc1", "C1CC1N", "C"])
def test_dmpnn_matches_the_published_rule(smiles, readout):
    graph = _double(Batch.from_graphs([from_smiles(smiles)]))
    model = DMPNN(2, hidden=12, ffn_hidden=8, depth=4, readout=readout).double()
    assert torch.allclose(model(graph), _dmpnn_reference(model, graph), atol=1e-12)


def test_dmpnn_default_readout_is_chemprops_norm_aggregation(smiles_batch):
    """chemprop 2's ``chemprop train`` sums the atom states and divides by 100 (``--aggregation norm``)."""
    model = DMPNN(1, hidden=8, ffn_hidden=4).double()
    assert model.readout == "norm" and model.readout_norm == 100.0
    atoms = model.encode(smiles_batch)
    expected = torch.stack([atoms[smiles_batch.batch == g].sum(0) / 100 for g in range(smiles_batch.num_graphs)])
    assert torch.allclose(model(smiles_batch), model.ffn(expected), atol=1e-12)


def test_gine_on_molecular_graphs_is_invariant_to_renumbering(smiles_batch):
    model = GINE(2, hidden=16, layers=3).double().eval()  # eval: batch norm with its running statistics
    assert model(smiles_batch).shape == (len(SMILES), 2)
    assert_equivariant(model, molecule_action(), "invariant", smiles_batch, atol=1e-12, samples=6)
    with pytest.raises(MoleculeError, match="atom features"):
        model(smiles_batch.replace(x=smiles_batch.x[:, :5]))


def test_dmpnn_gradients_and_bad_inputs(smiles_batch):
    model = DMPNN(1, hidden=8, ffn_hidden=4, depth=3).double()
    small = _double(Batch.from_graphs([from_smiles("CC(N)=O"), from_smiles("C#N")]))
    x = small.x.clone().requires_grad_(True)
    edge_attr = small.edge_attr.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, e: model(small.replace(x=a, edge_attr=e)), (x, edge_attr),
                                    fast_mode=True)
    with pytest.raises(MoleculeError, match="atom features"):
        model(smiles_batch.replace(x=smiles_batch.x[:, :10]))
    one_way = Graph(torch.tensor([[0], [1]]), x=torch.zeros(2, ATOM_FEATURES, dtype=torch.float64),
                    edge_attr=torch.zeros(1, 14, dtype=torch.float64))
    with pytest.raises(MoleculeError, match="no reverse"):
        model(one_way)
    g = from_smiles("CCO")
    assert reverse_edges(g).tolist() == [1, 0, 3, 2]
    with pytest.raises(MoleculeError, match="readout must be"):
        DMPNN(1, readout="max")
    with pytest.raises(MoleculeError, match="readout_norm"):
        DMPNN(1, readout_norm=0.0)


# ----- 3D models ---------------------------------------------------------------------------------------------------
def _models():
    return {"schnet": SchNet(2, hidden=16, filters=16, interactions=2, cutoff=4.0),
            "egnn": EGNN(2, hidden=16, layers=2), "egnn_coords": EGNN(2, hidden=16, layers=2, update_coords=True),
            "tensor_product": TensorProductNet(2, channels=8, layers=2, cutoff=4.0)}


@pytest.mark.parametrize("name", list(_models()))
def test_3d_models_are_e3_invariant(name, batch3d):
    model = _models()[name].double()
    assert model(batch3d).shape == (4, 2)
    assert_equivariant(model, molecule_action(), "invariant", batch3d, atol=1e-10, samples=8)


@pytest.mark.parametrize("name", ["schnet", "egnn_coords", "tensor_product"])
def test_forces_are_equivariant_and_conservative(name, batch3d):
    model = _models()[name]
    model = type(model)(1, **{k: v for k, v in _kwargs(name).items()}).double()
    forces = lambda b: energy_and_forces(model, b)[1]  # noqa: E731
    assert_equivariant(forces, molecule_action(), node_action(batch3d, o3_irreps("1o")), batch3d, atol=1e-10,
                       samples=6)
    # conservative: the work along a small displacement equals the energy change
    energy, f = energy_and_forces(model, batch3d)
    step = 1e-6 * torch.randn_like(batch3d.pos)
    moved, _ = energy_and_forces(model, batch3d.replace(pos=batch3d.pos + step))
    assert abs(float((moved - energy).sum().detach() + (f * step).sum().detach())) < 1e-10


def _kwargs(name):
    return {"schnet": dict(hidden=16, filters=16, interactions=2, cutoff=4.0),
            "egnn_coords": dict(hidden=16, layers=2, update_coords=True),
            "tensor_product": dict(channels=8, layers=2, cutoff=4.0)}[name]


def test_egnn_layer_moves_coordinates_equivariantly(batch3d):
    layer = EGNNLayer(6, update_coords=True).double()
    torch.nn.init.normal_(layer.phi_x[-1].weight)  # large coordinate updates, so the check is not trivial
    h = torch.randn(batch3d.num_nodes, 6, dtype=torch.float64)
    before = layer(h, batch3d.pos, batch3d.edge_index)[1].detach()
    assert float((before - batch3d.pos).abs().max()) > 1e-3
    # each atom's features travel with it: its original row number rides in x[:, 1]
    rows = torch.arange(batch3d.num_nodes, dtype=torch.float64)[:, None]
    tagged = batch3d.replace(x=torch.cat([batch3d.x, rows], dim=1))

    def coordinates(b):
        return layer(h[b.x[:, 1].long()], b.pos, b.edge_index)[1]

    assert_equivariant(coordinates, molecule_action(), position_action(tagged), tagged, atol=1e-10, samples=6)


def test_tensor_product_node_features_are_o3_equivariant(batch3d):
    model = TensorProductNet(1, channels=4, layers=2, cutoff=4.0).double()
    assert repr(model.field_type) == "4×0e ⊕ 4×1o ⊕ 4×2e"
    features = model.node_features(batch3d)
    assert features.shape == (batch3d.num_nodes, model.field_type.size)
    assert float(features[:, 4:].detach().abs().max()) > 1e-6  # the higher degrees are not zero
    assert_equivariant(model.node_features, molecule_action(), node_action(batch3d, model.field_type), batch3d,
                       atol=1e-10, samples=6)


def _schnet_reference(model: SchNet, graph: Graph) -> torch.Tensor:
    """Schuett et al.'s rule atom by atom: h_i += out(sum_j into(h_j) * W(d_ij))."""
    z, pos = graph.x[:, 0].long(), graph.pos
    h = model.embedding(z)
    edges = graph.edge_index.T.tolist()
    for block in model.interactions:
        new = []
        for i in range(graph.num_nodes):
            total = torch.zeros(block.into.out_features, dtype=pos.dtype)
            for j, t in edges:
                if t != i:
                    continue
                d = (pos[j] - pos[i]).norm()
                centres = model.basis.centres.to(pos)
                rbf = torch.exp(-model.basis.gamma * (d - centres) ** 2)
                envelope = 0.5 * (math.cos(math.pi * float(d) / model.cutoff) + 1) if d < model.cutoff else 0.0
                total = total + block.into(h[j]) * block.filter(rbf) * envelope
            new.append(h[i] + block.out(total))
        h = torch.stack(new)
    return model.head(h).sum(0, keepdim=True)


def test_schnet_matches_the_published_rule():
    graph = _random_molecule(7, 6)
    model = SchNet(1, hidden=8, filters=6, interactions=2, gaussians=10, cutoff=4.0).double()
    assert torch.allclose(model(graph), _schnet_reference(model, graph), atol=1e-12)


def test_egnn_layer_matches_the_published_rule():
    graph = _random_molecule(8, 7)
    layer = EGNNLayer(5).double()
    h = torch.randn(7, 5, dtype=torch.float64)
    new_h, new_pos = layer(h, graph.pos, graph.edge_index)
    for i in range(7):
        neighbours = [j for j, t in graph.edge_index.T.tolist() if t == i]
        m_sum, shift = torch.zeros(5, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
        for j in neighbours:
            d2 = ((graph.pos[i] - graph.pos[j]) ** 2).sum()
            m = layer.phi_e(torch.cat([h[i], h[j], d2.reshape(1)]))
            m = m * layer.phi_inf(m)
            m_sum = m_sum + m
            shift = shift + (graph.pos[i] - graph.pos[j]) * layer.phi_x(m)
        expected_h = h[i] + layer.phi_h(torch.cat([h[i], m_sum]))
        expected_pos = graph.pos[i] + (shift / len(neighbours) if neighbours else 0.0)
        assert torch.allclose(new_h[i], expected_h, atol=1e-12)
        assert torch.allclose(new_pos[i], expected_pos, atol=1e-12)


def test_tensor_product_conv_matches_the_rule_edge_by_edge():
    graph = _random_molecule(9, 6)
    conv = TensorProductConv(3, 2, radial=4, avg_neighbours=3.0).double()
    generator = torch.Generator().manual_seed(0)
    h = {l: torch.randn(6, 3, 2 * l + 1, dtype=torch.float64, generator=generator) for l in range(3)}
    vectors = graph.pos[graph.edge_index[0]] - graph.pos[graph.edge_index[1]]
    sh = spherical_harmonics(2, vectors)
    harmonics = {l: sh[:, l * l:(l + 1) ** 2] for l in range(3)}
    basis = torch.randn(graph.num_edges, 4, dtype=torch.float64, generator=generator)
    envelope = torch.rand(graph.num_edges, dtype=torch.float64, generator=generator)
    out = conv(h, harmonics, basis, envelope, graph.edge_index)
    weights = conv.radial(basis).view(-1, len(conv.paths), 3) * envelope[:, None, None]
    aggregated = {l: torch.zeros(6, 3, 2 * l + 1, dtype=torch.float64) for l in range(3)}
    for e, (j, i) in enumerate(graph.edge_index.T.tolist()):
        for p, (l1, l2, l3) in enumerate(coupling_paths(2)):
            c = clebsch_gordan(l1, l2, l3) * math.sqrt(2 * l3 + 1)
            for u in range(3):
                aggregated[l3][i, u] += weights[e, p, u] * torch.einsum("a,b,abk->k", h[l1][j, u], harmonics[l2][e], c)
    mixed = {l: torch.einsum("nci,dc->ndi", aggregated[l] / 3.0, conv.mix[l]) +
             torch.einsum("nci,dc->ndi", h[l], conv.skip[l]) for l in range(3)}
    scalars = mixed[0][:, :, 0] + conv.bias
    gates = torch.sigmoid(conv.gate(scalars)).view(6, 2, 3)
    assert torch.allclose(out[0][:, :, 0], F.silu(scalars), atol=1e-12)
    for l in (1, 2):
        assert torch.allclose(out[l], mixed[l] * gates[:, l - 1, :, None], atol=1e-12)
    assert coupling_paths(1) == [(0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 0)]


def test_tensor_product_gradients():
    model = TensorProductNet(1, channels=4, layers=1, cutoff=4.0).double()
    small = Batch.from_graphs([_random_molecule(5, 4)])
    pos = small.pos.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: model(small.replace(pos=p)), (pos,))


@pytest.mark.float32
def test_tensor_product_float32_matches_float64(batch3d):
    model32 = TensorProductNet(1, channels=4, layers=2, cutoff=4.0)
    batch32 = batch3d.replace(x=batch3d.x.float(), pos=batch3d.pos.float())
    model64 = TensorProductNet(1, channels=4, layers=2, cutoff=4.0)
    model64.load_state_dict(model32.state_dict())
    assert_close(model32(batch32), model64.double()(batch3d).float(), terms=200)


def test_3d_models_refuse_graphs_without_geometry(smiles_batch, batch3d):
    for model in _models().values():
        with pytest.raises(MoleculeError):
            model(smiles_batch)  # x holds SMILES features, not atomic numbers; no pos
    with pytest.raises(MoleculeError, match="pos"):
        SchNet(1)(batch3d.replace(pos=None))
    with pytest.raises(MoleculeError, match="energies"):
        energy_and_forces(SchNet(2).double(), batch3d)


@pytest.mark.parametrize("name", ["schnet", "tensor_product"])
def test_energy_is_continuous_where_an_atom_crosses_the_cutoff(name):
    """Just inside the cutoff the pair is an edge, just outside it is not; the energies must agree."""
    model = {"schnet": SchNet(1, hidden=8, filters=8, interactions=2, cutoff=5.0),
             "tensor_product": TensorProductNet(1, channels=4, layers=2, cutoff=5.0)}[name].double()
    energies = []
    for distance in (5.0 - 1e-7, 5.0 + 1e-7):
        pair = from_xyz([6, 8], [[0.0, 0.0, 0.0], [distance, 0.0, 0.0]], cutoff=5.0, dtype=torch.float64)
        assert pair.num_edges == (2 if distance < 5.0 else 0)
        energies.append(float(model(pair).detach()))
    assert abs(energies[0] - energies[1]) < 1e-9


def test_the_e3_action_carries_node_masks_with_their_nodes(batch3d):
    marked = batch3d.replace(train_mask=batch3d.x[:, 0] == 1.0)  # the hydrogens
    moved = molecule_action()(marked, molecule_action().group.sample(1, torch.Generator().manual_seed(0))[0])
    assert torch.equal(moved.train_mask, moved.x[:, 0] == 1.0)
