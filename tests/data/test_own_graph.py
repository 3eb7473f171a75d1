"""Your own graph from files: label validation, sparse ids, feature rows, the directedness report, and the CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fivefold.data import load_edge_list, load_labelled_graph, split_nodes
from fivefold.errors import DataError

TRIANGLE = "source,target\n0,1\n1,2\n2,0\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("labels, message", [
    ("node,label\n0,0\n1,nan\n2,1\n", "line 3: label is NaN"),
    ("node,label\n0,0\n1,-1\n2,1\n", "line 3: label -1 is negative"),
    ("node,label\n0,0.7\n1,1.2\n2,2.9\n", "line 2: label 0.7 is not an integer class"),
    ("0,1,0\n1,0,1\n2,1,1\n", "expected one column (label) or two (node,label), got 3"),
    ("node,label\n0,0\n1,cat\n", "line 3: label 'cat' is not a number"),
    ("node,label\n0,0\n0,1\n2,1\n", "node 0 is labelled twice"),
])
def test_bad_labels_are_refused_with_the_line(tmp_path, labels, message):
    edges = write(tmp_path / "e.csv", TRIANGLE)
    with pytest.raises(DataError, match=message.replace("(", "\\(").replace(")", "\\)")):
        load_labelled_graph(edges, write(tmp_path / "y.csv", labels))


def test_bad_npy_labels(tmp_path):
    edges = write(tmp_path / "e.csv", TRIANGLE)
    for values, message in ((np.array([0.0, 0.7, 1.0]), "entry 1: label 0.7 is not an integer class"),
                            (np.array([0, -2, 1]), "entry 1: label -2 is negative"),
                            (np.zeros((3, 2)), "expected a 1-D array")):
        np.save(tmp_path / "y.npy", values)
        with pytest.raises(DataError, match=message):
            load_labelled_graph(edges, tmp_path / "y.npy")


def test_integer_valued_floats_and_empty_labels(tmp_path):
    read = load_labelled_graph(write(tmp_path / "e.csv", TRIANGLE), write(tmp_path / "y.csv", "1.0\n\n0\n\n"))
    assert read.graph.y.tolist() == [1, -1, 0]  # a blank line is an unlabelled node; trailing blank lines are not
    pairs = load_labelled_graph(tmp_path / "e.csv", write(tmp_path / "p.csv", "node,label\n2,1\n\n0,\n"))
    assert pairs.graph.y.tolist() == [-1, -1, 1]


def test_one_column_labels_must_cover_every_node(tmp_path):
    with pytest.raises(DataError, match="has 2 rows \\(one per node\\) but the edges name nodes up to 2"):
        load_labelled_graph(write(tmp_path / "e.csv", TRIANGLE), write(tmp_path / "y.csv", "label\n0\n1\n"))


def test_sparse_ids_are_refused_then_remapped(tmp_path):
    edges = write(tmp_path / "e.csv", "1000000000000,7\n7,42\n")
    labels = write(tmp_path / "y.csv", "1000000000000,1\n7,0\n42,1\n")
    with pytest.raises(DataError, match="node ids are sparse: they run up to 1000000000000 but only 3 distinct"):
        load_labelled_graph(edges, labels)
    read = load_labelled_graph(edges, labels, remap_ids=True)
    assert read.node_ids.tolist() == [7, 42, 1000000000000]
    assert read.graph.num_nodes == 3 and read.graph.y.tolist() == [0, 1, 1]
    assert sorted(map(tuple, read.graph.edge_index.t().tolist())) == [(0, 1), (2, 0)]
    features = write(tmp_path / "x.csv", "42,0.5,1\n7,1,2\n1000000000000,3,4\n")
    keyed = load_labelled_graph(edges, labels, features=features, remap_ids=True)
    assert keyed.graph.x.tolist() == [[1, 2], [0.5, 1], [3, 4]]
    with pytest.raises(DataError, match="a row for node 5, which appears in no edge or label"):
        load_labelled_graph(edges, labels, remap_ids=True, features=write(tmp_path / "x2.csv", "5,1\n7,1\n42,1\n"))


def test_feature_rows_must_match_the_nodes(tmp_path):
    edges, labels = write(tmp_path / "e.csv", TRIANGLE), write(tmp_path / "y.csv", "0\n1\n0\n")
    np.save(tmp_path / "x.npy", np.ones((5, 2), dtype=np.float32))
    with pytest.raises(DataError, match="rows 3..4 belong to no node"):
        load_labelled_graph(edges, labels, features=tmp_path / "x.npy")
    np.save(tmp_path / "x.npy", np.ones((2, 2), dtype=np.float32))
    with pytest.raises(DataError, match="node 2 has no row"):
        load_labelled_graph(edges, labels, features=tmp_path / "x.npy")
    with pytest.raises(DataError, match="line 2: a feature is NaN"):
        load_labelled_graph(edges, labels, features=write(tmp_path / "x.csv", "1,2\nnan,1\n3,3\n"))


def test_loader_says_whether_edges_are_directed(tmp_path):
    labels = write(tmp_path / "y.csv", "0\n1\n0\n")
    directed = load_labelled_graph(write(tmp_path / "e.csv", TRIANGLE), labels)
    assert any("kept DIRECTED as read: 3 of 3 edges lack their reverse" in line for line in directed.summary)
    assert directed.graph.num_edges == 3
    undirected = load_labelled_graph(tmp_path / "e.csv", labels, undirected=True)
    assert undirected.graph.num_edges == 6 and any("added the reverse of 3 edges" in s for s in undirected.summary)
    symmetric = load_labelled_graph(write(tmp_path / "s.csv", "0,1\n1,0\n1,2\n2,1\n1,2\n"), labels)
    assert any("1 duplicates merged; every edge has its reverse" in line for line in symmetric.summary)


def test_edge_list_labels_accept_csv_and_are_checked(tmp_path):
    graph = load_edge_list(write(tmp_path / "e.csv", TRIANGLE), labels=write(tmp_path / "y.csv", "0\n1\n1\n"))
    assert graph.y.tolist() == [0, 1, 1]
    with pytest.raises(DataError, match="line 2: label 0.7 is not an integer class"):
        load_edge_list(tmp_path / "e.csv", labels=write(tmp_path / "z.csv", "0\n0.7\n1\n"))


def test_split_is_stratified_and_seeded():
    labels = torch.tensor([0] * 10 + [1] * 20 + [-1] * 5)
    train, val, test = split_nodes(labels, (0.6, 0.2, 0.2), seed=3)
    assert int(train.sum()) == 18 and int(val.sum()) == 6 and int(test.sum()) == 6
    assert not bool((train & val).any() or (train & test).any() or (val & test).any())
    assert not bool((train | val | test)[30:].any())
    assert [m.tolist() for m in split_nodes(labels, (0.6, 0.2, 0.2), seed=3)] == [m.tolist() for m in
                                                                                 (train, val, test)]
    with pytest.raises(DataError, match="three fractions"):
        split_nodes(labels, (0.5, 0.2, 0.2))


def test_karate_club_from_the_command_line(tmp_path):
    """The README's worked example: networkx's karate club written to CSV, trained with --undirected."""
    nx = pytest.importorskip("networkx")
    graph = nx.karate_club_graph()
    write(tmp_path / "edges.csv", "source,target\n" + "".join(f"{u},{v}\n" for u, v in graph.edges()))
    write(tmp_path / "labels.csv", "node,club\n" + "".join(f"{n},{int(c == 'Officer')}\n"
                                                          for n, c in graph.nodes(data="club")))
    entry = Path(sys.executable).parent / "fivefold"
    command = [str(entry)] if entry.exists() else [sys.executable, "-m", "fivefold.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([*command, "train", "--edges", "edges.csv", "--labels", "labels.csv", "--undirected"],
                            cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "--undirected added the reverse of 78 edges: 156 edges" in result.stdout
    (run,) = list((tmp_path / "runs").iterdir())
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == "own" and config["split_sizes"] == [20, 6, 8] and config["undirected"]
    assert json.loads((run / "metrics.json").read_text())["status"] == "finished"
    predicted = subprocess.run([*command, "predict", str(run)], capture_output=True, text=True, env=env, timeout=600)
    assert predicted.returncode == 0, predicted.stderr
    assert len((run / "predictions.csv").read_text().splitlines()) == 35
    bad = subprocess.run([*command, "train", "--edges", "edges.csv"], cwd=tmp_path, capture_output=True, text=True,
                         env=env, timeout=600)
    assert bad.returncode == 2 and "needs both --edges and --labels" in bad.stderr


@pytest.mark.parametrize("labels, message", [
    ("node,label\n0,0\n1,inf\n2,1\n", "line 3: label inf is not a class number"),
    ("node,label\n0,0\n1,99999999999999999999\n2,1\n", "line 3: label 99999999999999999999 is not a class"),
    ("node,label\n0,0\n99999999999999999999,1\n", "line 3: node id 99999999999999999999 is larger than int64"),
])
def test_infinite_and_huge_values_are_refused(tmp_path, labels, message):
    with pytest.raises(DataError, match=message):
        load_labelled_graph(write(tmp_path / "e.csv", TRIANGLE), write(tmp_path / "y.csv", labels))


def test_byte_order_mark_and_leading_blank_label(tmp_path):
    edges = tmp_path / "e.csv"
    edges.write_bytes(b"\xef\xbb\xbf0,1\n1,2\n2,0\n")  # Excel's "CSV UTF-8": the first edge must not become a header
    read = load_labelled_graph(edges, write(tmp_path / "y.csv", "\n1\n0\n"))
    assert read.graph.num_edges == 3
    assert read.graph.y.tolist() == [-1, 1, 0]  # a leading blank line is node 0, unlabelled
    with pytest.raises(DataError, match="line 1: node id '0.5' is not an integer"):
        load_labelled_graph(write(tmp_path / "f.csv", "0.5,1\n1,2\n"), tmp_path / "y.csv")


def test_split_never_leaves_validation_or_test_empty():
    train, val, test = split_nodes(torch.tensor([0, 0, 0, 1, 1, 1]), (0.6, 0.2, 0.2))
    assert [int(m.sum()) for m in (train, val, test)] == [2, 2, 2]
    with pytest.raises(DataError, match="the validation split is empty"):
        split_nodes(torch.tensor([0, 1]), (0.6, 0.2, 0.2))
    with pytest.raises(DataError, match="three fractions train,val,test > 0"):
        split_nodes(torch.tensor([0, 1]), (1.0, 0.0, 0.0))


def test_overlapping_masks_are_refused(tmp_path):
    from fivefold.train.tasks import train_own_graph

    edges, labels = write(tmp_path / "e.csv", TRIANGLE), write(tmp_path / "y.csv", "0\n1\n0\n")
    with pytest.raises(DataError, match="the train and test masks share node 0"):
        train_own_graph(edges, labels, masks=([0, 1], [2], [0]), runs_dir=tmp_path / "runs", echo=lambda _: None)
