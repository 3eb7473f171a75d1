"""SMILES and 3D structures to graphs, features, splits, and the checks on bad input."""

import numpy as np
import pytest
import torch

from fivefold.errors import MoleculeError, OptionError
from fivefold.molecules import (
    ATOM_FEATURES,
    BOND_FEATURES,
    conformer,
    from_smiles,
    from_xyz,
    murcko_scaffold,
    random_split,
    scaffold_split,
    smiles_to_graphs,
    stratified_split,
)
from fivefold.molecules.features import _ATOM_BLOCKS

pytest.importorskip("rdkit")


def test_ethanol_graph_has_heavy_atoms_and_two_edges_per_bond():
    g = from_smiles("CCO")
    assert g.num_nodes == 3 and g.num_edges == 4
    assert g.x.shape == (3, ATOM_FEATURES) and g.edge_attr.shape == (4, BOND_FEATURES)
    assert g.edge_index.tolist() == [[0, 1, 1, 2], [1, 0, 2, 1]]  # bond k is edges 2k and 2k+1
    assert torch.equal(g.edge_attr[0::2], g.edge_attr[1::2])


def test_feature_blocks_are_one_hot_and_read_correctly():
    g = from_smiles("c1ccccc1O")  # phenol
    offsets = np.concatenate([[0], np.cumsum(_ATOM_BLOCKS)])
    for start, end in zip(offsets[:-1], offsets[1:], strict=True):
        assert torch.equal(g.x[:, start:end].sum(1), torch.ones(g.num_nodes))
    carbon, oxygen = 5, 7  # element columns: atomic number - 1
    assert g.x[0, carbon] == 1 and g.x[6, oxygen] == 1
    aromatic, ring, mass = ATOM_FEATURES - 3, ATOM_FEATURES - 2, ATOM_FEATURES - 1
    assert g.x[:6, aromatic].tolist() == [1] * 6 and g.x[6, aromatic] == 0
    assert g.x[:6, ring].tolist() == [1] * 6 and g.x[6, ring] == 0
    assert abs(float(g.x[6, mass]) - 0.15999) < 1e-4
    hydrogens = offsets[4]
    assert g.x[6, hydrogens + 1] == 1  # the hydroxyl O carries one H
    assert torch.equal(g.edge_attr[:, :5].sum(1), torch.ones(g.num_edges))
    assert g.edge_attr[0, 3] == 1  # ring bond: aromatic
    c_o = [k for k, (s, t) in enumerate(g.edge_index.T.tolist()) if (s, t) == (5, 6)][0]
    assert g.edge_attr[c_o, 0] == 1 and g.edge_attr[c_o, 6] == 0  # C-O: single, not in a ring


def test_charges_chirality_and_stereo_are_encoded():
    g = from_smiles("C[C@H](N)C(=O)[O-]")  # L-alanine carboxylate
    offsets = np.concatenate([[0], np.cumsum(_ATOM_BLOCKS)])
    charge, chirality = offsets[2], offsets[3]
    assert g.x[5, charge + 0] == 1  # -1 is the first charge column
    assert g.x[1, chirality + 0] == 0  # the stereocentre is tagged (not CHI_UNSPECIFIED)
    e = from_smiles("C/C=C/C")
    assert e.edge_attr[:, 7:].sum(1).tolist() == [1.0] * e.num_edges
    assert float(e.edge_attr[2, 7]) == 0  # the double bond's stereo is set (not STEREONONE)


@pytest.mark.parametrize("bad", ["C1CC", "not a smiles", "", "C(C"])
def test_invalid_smiles_raise_molecule_error(bad):
    with pytest.raises(MoleculeError, match="cannot parse"):
        from_smiles(bad)


def test_smiles_lists_skip_or_raise_with_the_row(capsys):
    graphs, rows = smiles_to_graphs(["CCO", "C1CC", "c1ccccc1", "bad"])
    assert len(graphs) == 2 and rows.tolist() == [0, 2]
    assert "skipped 2 of 4 rows" in capsys.readouterr().out
    with pytest.raises(MoleculeError, match="row 1"):
        smiles_to_graphs(["CCO", "C1CC"], on_invalid="raise")
    with pytest.raises(OptionError):
        smiles_to_graphs(["CCO"], on_invalid="drop")
    with pytest.raises(MoleculeError):
        from_smiles(42)


def test_from_xyz_builds_a_radius_graph_and_checks_its_input():
    water = from_xyz([8, 1, 1], [[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]], cutoff=1.2)
    assert water.x[:, 0].tolist() == [8.0, 1.0, 1.0] and water.pos.shape == (3, 3)
    assert {tuple(e) for e in water.edge_index.T.tolist()} == {(1, 0), (0, 1), (2, 0), (0, 2)}
    with pytest.raises(MoleculeError, match="not an element"):
        from_xyz([0, 1], torch.zeros(2, 3))
    with pytest.raises(MoleculeError, match=r"\[2, 3\]"):
        from_xyz([1, 1], torch.zeros(3, 3))
    with pytest.raises(MoleculeError, match="non-finite"):
        from_xyz([1, 1], torch.tensor([[0.0, 0.0, 0.0], [float("nan"), 0.0, 0.0]]))
    with pytest.raises(MoleculeError, match="integers"):
        from_xyz([1.5, 1.0], torch.zeros(2, 3))


def test_conformers_are_deterministic_and_chemically_sensible():
    a, b = conformer("CCO", seed=3), conformer("CCO", seed=3)
    assert torch.equal(a.pos, b.pos)
    assert sorted(a.x[:, 0].tolist()) == [1.0] * 6 + [6.0, 6.0, 8.0]
    distance = torch.cdist(a.pos, a.pos)
    assert 1.4 < float(distance[0, 1]) < 1.6  # a C-C bond


SMILES = ["c1ccccc1CC", "c1ccccc1CO", "c1ccccc1N", "C1CCCCC1C", "C1CCCCC1O", "CCO", "CCN", "CCCC", "c1ccncc1C",
          "c1ccncc1", "O=C1CCCC1", "O=C1CCCC1C"] * 5


def test_splits_partition_the_rows():
    for split in (random_split(len(SMILES), seed=1), scaffold_split(SMILES, seed=1),
                  stratified_split([k % 2 for k in range(len(SMILES))], seed=1)):
        joined = np.concatenate(split)
        assert sorted(joined.tolist()) == list(range(len(SMILES)))
    train, val, test = random_split(100, (0.8, 0.1, 0.1), seed=0)
    assert (len(train), len(val), len(test)) == (80, 10, 10)
    assert all(np.array_equal(a, b) for a, b in zip(random_split(100, seed=4), random_split(100, seed=4), strict=True))


def test_scaffold_split_keeps_each_scaffold_in_one_part():
    parts = scaffold_split(SMILES, (0.6, 0.2, 0.2), seed=0)
    owner = {}
    for k, part in enumerate(parts):
        for row in part:
            scaffold = murcko_scaffold(SMILES[row])
            assert owner.setdefault(scaffold, k) == k
    assert murcko_scaffold("CCO") == "" and murcko_scaffold("c1ccccc1CC") == "c1ccccc1"


def test_stratified_split_keeps_class_shares_and_bad_sizes_are_refused():
    labels = np.array([0] * 90 + [1] * 10)
    train, val, test = stratified_split(labels, seed=0)
    assert labels[train].sum() == 8 and labels[val].sum() == 1 and labels[test].sum() == 1
    with pytest.raises(MoleculeError):
        random_split(10, (0.5, 0.5, 0.5))
    with pytest.raises(MoleculeError):
        stratified_split(np.zeros((3, 2)))
    with pytest.raises(MoleculeError, match="row 1"):
        stratified_split(np.array([0.0, np.nan, 1.0]))
