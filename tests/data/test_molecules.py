"""The real molecule sets load with their published sizes and values; corrupted files are refused."""

import shutil

import numpy as np
import pytest

from fivefold.data import QM9_PROPERTIES, load_md17_ethanol, load_moleculenet, load_qm9
from fivefold.errors import ChecksumError, OptionError


@pytest.mark.parametrize("name,rows,tasks,kind", [
    ("esol", 1128, 1, "regression"), ("freesolv", 642, 1, "regression"), ("lipophilicity", 4200, 1, "regression"),
    ("bbbp", 2039, 1, "classification"), ("bace", 1513, 1, "classification"), ("tox21", 7831, 12, "classification"),
    ("hiv", 41127, 1, "classification"),
])
def test_moleculenet_sets_load(data_root, name, rows, tasks, kind):
    table = load_moleculenet(name, data_root)
    assert len(table) == rows and table.targets.shape == (rows, tasks) and table.kind == kind
    assert all(isinstance(s, str) and s for s in table.smiles)
    if kind == "classification":
        labels = table.targets[~np.isnan(table.targets)]
        assert set(np.unique(labels)) <= {0.0, 1.0}
    if name == "tox21":
        assert np.isnan(table.targets).any()  # missing labels stay NaN
    else:
        assert not np.isnan(table.targets).any()


def test_esol_first_row_and_unknown_names(data_root):
    table = load_moleculenet("esol", data_root)
    assert table.smiles[1] == "Cc1occc1C(=O)Nc2ccccc2" and table.targets[1, 0] == -3.3
    with pytest.raises(OptionError):
        load_moleculenet("esol2", data_root)


def test_corrupted_moleculenet_file_is_refused(data_root, tmp_path):
    (tmp_path / "moleculenet").mkdir()
    target = tmp_path / "moleculenet" / "SAMPL.csv"
    shutil.copy(data_root / "moleculenet" / "SAMPL.csv", target)
    target.chmod(0o644)
    with open(target, "a") as handle:
        handle.write("x,C,1.0,1.0\n")
    with pytest.raises(ChecksumError):
        load_moleculenet("freesolv", tmp_path)


def test_qm9_complete_loads_with_methane_first(data_root):
    qm9 = load_qm9(data_root)
    assert len(qm9) == 130_831 and qm9.z.shape == (2_359_210,) and qm9.ptr[-1] == 2_359_210
    assert set(qm9.properties) == set(QM9_PROPERTIES)
    assert qm9.z[:5].tolist() == [6, 1, 1, 1, 1] and qm9.index[0] == 1
    assert qm9.properties["U0_hartree"][0] == -40.47893 and qm9.properties["gap_hartree"][0] == 0.5048
    methane, water = qm9.graphs([0, 2])
    assert methane.num_nodes == 5 and methane.num_edges == 20  # every pair within 5 Angstrom
    assert water.x[:, 0].tolist() == [8.0, 1.0, 1.0]


def test_md17_ethanol_sample_loads(data_root):
    z, pos, energy, forces = load_md17_ethanol(data_root)
    assert z.tolist() == [6, 6, 8, 1, 1, 1, 1, 1, 1]
    assert pos.shape == (2000, 9, 3) and forces.shape == (2000, 9, 3) and energy.shape == (2000,)
    assert abs(energy[0] - -97195.01189948035) < 1e-9 and abs(forces[0, 0, 0] - 26.23068692) < 1e-9


@pytest.mark.parametrize("name,molecules,atoms,bonds,sizes", [
    ("esol", 1128, 14991, 15428, [902, 113, 113]), ("freesolv", 642, 5600, 5385, [513, 64, 65]),
    ("bbbp", 2039, 49068, 52921, [1631, 204, 204]), ("bace", 1513, 51577, 55768, [1210, 151, 152]),
])
def test_ogb_molecular_sets_load_with_the_official_scaffold_split(data_root, name, molecules, atoms, bonds, sizes):
    from fivefold.data import load_ogb_molecules

    data = load_ogb_molecules(name, data_root)
    assert len(data.graphs) == len(data.smiles) == molecules and [len(p) for p in data.split] == sizes
    assert sum(g.num_nodes for g in data.graphs) == atoms and sum(g.num_edges for g in data.graphs) == 2 * bonds
    assert sorted(np.concatenate(data.split).tolist()) == list(range(molecules))
    first = data.graphs[0]
    assert first.x.shape[1] == 174 and first.edge_attr.shape[1] == 13
    assert float(first.x.sum()) == 9 * first.num_nodes  # nine one-hot blocks per atom
    assert first.edge_index[:, 0].tolist() == first.edge_index[:, 1].tolist()[::-1]  # each bond both ways
    assert float(first.graph_y[0]) == data.targets[0, 0]
