import shutil

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fivefold.data import (
    find_datasets,
    load_edge_list,
    load_embedded_cora,
    load_npz,
    load_planetoid,
    load_tu,
    stratified_folds,
)
from fivefold.errors import ChecksumError, DataError, OptionError


def test_cora_and_citeseer_public_split(data_root):
    cora = load_planetoid("cora", data_root)
    assert (cora.num_nodes, cora.num_edges, cora.num_features) == (2708, 10556, 1433)
    assert int(cora.y.max()) + 1 == 7
    assert (int(cora.train_mask.sum()), int(cora.val_mask.sum()), int(cora.test_mask.sum())) == (140, 500, 1000)
    assert torch.equal(torch.bincount(cora.y[cora.train_mask]), torch.full((7,), 20))
    assert cora.is_undirected() and not cora.has_self_loops()
    citeseer = load_planetoid("citeseer", data_root)
    assert (citeseer.num_nodes, citeseer.num_edges, citeseer.num_features) == (3327, 9104, 3703)
    assert int(citeseer.train_mask.sum()) == 120


def test_embedded_cora_equals_the_real_files(data_root):
    embedded, real = load_embedded_cora(), load_planetoid("cora", data_root)
    for field in ("edge_index", "x", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(getattr(embedded, field), getattr(real, field)), field


def test_corrupted_planetoid_file_fails_clearly(data_root, tmp_path):
    shutil.copytree(data_root / "planetoid", tmp_path / "planetoid")
    target = tmp_path / "planetoid" / "ind.cora.graph"
    target.chmod(0o644)
    payload = bytearray(target.read_bytes())
    payload[100] ^= 0xFF
    target.write_bytes(bytes(payload))
    with pytest.raises(ChecksumError, match="ind.cora.graph is corrupted"):
        load_planetoid("cora", tmp_path)
    (tmp_path / "planetoid" / "ind.cora.x").unlink()
    with pytest.raises(DataError, match="missing"):
        load_planetoid("cora", tmp_path)


def test_pubmed_and_unknown_sets_say_why(data_root):
    with pytest.raises(DataError, match="ind.pubmed.allx is missing"):
        load_planetoid("pubmed", data_root)
    with pytest.raises(OptionError, match="name must be one of"):
        load_planetoid("arxiv", data_root)
    with pytest.raises(DataError, match="does not exist"):
        load_planetoid("cora", data_root / "nowhere")


@pytest.mark.parametrize("name, graphs, nodes, edges, classes", [
    ("MUTAG", 188, 3371, 7442, 2), ("PROTEINS", 1113, 43471, 162088, 2), ("ENZYMES", 600, 19580, 74564, 6),
])
def test_tu_sets_match_published_statistics(data_root, name, graphs, nodes, edges, classes):
    loaded = load_tu(name, data_root)
    assert len(loaded) == graphs
    assert sum(g.num_nodes for g in loaded) == nodes
    assert sum(g.num_edges for g in loaded) == edges
    assert len({int(g.graph_y) for g in loaded}) == classes


def test_corrupted_tu_file_fails_clearly(data_root, tmp_path):
    shutil.copytree(data_root / "tudataset" / "MUTAG", tmp_path / "tudataset" / "MUTAG")
    target = tmp_path / "tudataset" / "MUTAG" / "MUTAG_A.txt"
    target.chmod(0o644)
    target.write_text(target.read_text().replace("2, 1", "2, 9", 1))
    with pytest.raises(ChecksumError, match="MUTAG_A.txt"):
        load_tu("MUTAG", tmp_path)


def test_stratified_folds_partition_and_balance():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    folds = stratified_folds(labels, k=10, seed=3)
    tests = np.concatenate([t for _, t in folds])
    assert sorted(tests.tolist()) == list(range(100))
    for train, test in folds:
        assert len(np.intersect1d(train, test)) == 0
        assert np.bincount(labels[test], minlength=3).tolist() == [5, 3, 2]


def test_find_datasets_reports_status(data_root):
    status = {info.name: s for info, _, s in find_datasets(data_root)}
    assert status["cora"] == "found" and status["MUTAG"] == "found"
    assert status["pubmed"].startswith("missing")


# ----- the user's own graphs --------------------------------------------------------------------------------------
def test_edge_list_csv_and_npy(tmp_path):
    (tmp_path / "edges.csv").write_text("source,target\n0,1\n1,2\n2,0\n")
    np.save(tmp_path / "x.npy", np.random.rand(3, 4))
    np.save(tmp_path / "y.npy", np.array([0, 1, 0]))
    g = load_edge_list(tmp_path / "edges.csv", features=tmp_path / "x.npy", labels=tmp_path / "y.npy")
    assert g.num_nodes == 3 and g.num_edges == 3 and g.x.shape == (3, 4)
    np.save(tmp_path / "edges.npy", np.array([[0, 1], [1, 2]]))
    assert load_edge_list(tmp_path / "edges.npy").num_edges == 2


def test_edge_list_bad_files(tmp_path):
    (tmp_path / "bad.csv").write_text("0,1\n1,x\n")
    with pytest.raises(DataError, match="line 2: node id .x. is not an integer"):
        load_edge_list(tmp_path / "bad.csv")
    (tmp_path / "ok.csv").write_text("0,1\n1,2\n")
    np.save(tmp_path / "x.npy", np.random.rand(5, 2))
    with pytest.raises(DataError, match="x has 5 rows"):
        load_edge_list(tmp_path / "ok.csv", features=tmp_path / "x.npy", num_nodes=3)
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match="not a readable"):
        load_edge_list(tmp_path / "ok.csv", features=tmp_path / "junk.npy")
    with pytest.raises(DataError, match="missing"):
        load_edge_list(tmp_path / "absent.csv")
    (tmp_path / "neg.csv").write_text("0,-1\n")
    with pytest.raises(DataError, match="negative"):
        load_edge_list(tmp_path / "neg.csv")


def test_npz_graph(tmp_path):
    adj = sp.random(6, 6, density=0.4, format="csr", random_state=0)
    attr = sp.random(6, 3, density=0.5, format="csr", random_state=1)
    np.savez(tmp_path / "g.npz", adj_data=adj.data, adj_indices=adj.indices, adj_indptr=adj.indptr,
             adj_shape=adj.shape, attr_data=attr.data, attr_indices=attr.indices, attr_indptr=attr.indptr,
             attr_shape=attr.shape, labels=np.arange(6) % 2)
    g = load_npz(tmp_path / "g.npz")
    assert g.num_nodes == 6 and g.num_edges == adj.nnz
    np.testing.assert_allclose(g.x.numpy(), attr.toarray(), rtol=1e-6)
    np.savez(tmp_path / "bad.npz", something=np.zeros(3))
    with pytest.raises(DataError, match="adj_data"):
        load_npz(tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a readable"):
        load_npz(tmp_path / "junk.npz")


def test_malformed_inputs_raise_data_error_not_raw_tracebacks(tmp_path):
    adj = sp.csr_matrix(np.array([[0, 1], [1, 0]], dtype=np.float32))
    np.savez(tmp_path / "badattr.npz", adj_data=adj.data, adj_indices=adj.indices, adj_indptr=adj.indptr,
             adj_shape=adj.shape, attr_data=np.ones(1), attr_indices=np.array([-1]), attr_indptr=np.array([0, 1, 1]),
             attr_shape=np.array([2, 3]))
    with pytest.raises(DataError, match="inconsistent"):
        load_npz(tmp_path / "badattr.npz")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(DataError, match="single .npy"):
        load_npz(tmp_path / "plain.npy")
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)))
    with pytest.raises(DataError, match="not a UTF-8 text file"):
        load_edge_list(tmp_path / "binary.csv")
    np.save(tmp_path / "labels.npy", np.array(["a", "b"]))
    (tmp_path / "e.csv").write_text("0,1\n")
    with pytest.raises(DataError, match="expected numbers"):
        load_edge_list(tmp_path / "e.csv", labels=tmp_path / "labels.npy")


def test_malformed_tu_set_is_rejected(tmp_path):
    folder = tmp_path / "tudataset" / "TOY"
    folder.mkdir(parents=True)
    (folder / "TOY_A.txt").write_text("1, 3\n3, 1\n")
    (folder / "TOY_graph_indicator.txt").write_text("1\n1\n2\n")
    (folder / "TOY_graph_labels.txt").write_text("0\n1\n")
    with pytest.raises(DataError, match="different graphs"):
        load_tu("TOY", tmp_path)
    (folder / "TOY_graph_indicator.txt").write_text("1\n1\n3\n")
    with pytest.raises(DataError, match="graph ids"):
        load_tu("TOY", tmp_path)
