"""The R-MAT generator: a pure function of its seed, chunking-independent, skewed, with a learnable planted signal."""

import numpy as np
import pytest

from fivefold.errors import OptionError
from fivefold.scale import RMat, open_store, rmat_store
from fivefold.scale.rmat import _scramble


def test_scramble_is_a_permutation_and_its_inverse_undoes_it():
    for num_nodes in (1, 2, 7, 1000, 1025):
        graph = RMat(num_nodes, 0, num_classes=1, seed=3)
        forward = np.array([_scramble(i, num_nodes, graph.half, graph.keys, False) for i in range(num_nodes)])
        assert sorted(forward.tolist()) == list(range(num_nodes))
        back = np.array([_scramble(int(i), num_nodes, graph.half, graph.keys, True) for i in forward])
        assert np.array_equal(back, np.arange(num_nodes))
    assert not np.array_equal(forward, np.arange(1025))


def test_edges_depend_on_the_seed_only_not_on_chunks_or_threads(tmp_path):
    graph = RMat(5000, 20000, num_features=6, seed=1)
    src, dst = graph.edges(0, 20000)
    parts = [graph.edges(first, min(777, 20000 - first)) for first in range(0, 20000, 777)]
    assert np.array_equal(src, np.concatenate([p[0] for p in parts]))
    assert np.array_equal(dst, np.concatenate([p[1] for p in parts]))
    assert src.min() >= 0 and max(src.max(), dst.max()) < 5000
    again = RMat(5000, 20000, num_features=6, seed=1)
    assert np.array_equal(again.edges(0, 20000)[0], src)
    assert not np.array_equal(RMat(5000, 20000, seed=2).edges(0, 20000)[0], src)
    a = rmat_store(tmp_path / "a", 5000, 20000, num_features=6, seed=1, chunk_edges=999)
    b = rmat_store(tmp_path / "b", 5000, 20000, num_features=6, seed=1)
    for name in ("indptr", "indices", "features", "labels", "train_mask", "val_mask", "test_mask"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    open_store(tmp_path / "a", verify=True)


def test_degrees_are_skewed_and_communities_balanced_and_homophilous():
    num_nodes, num_edges = 1 << 14, 1 << 18
    graph = RMat(num_nodes, num_edges, num_classes=4, homophily=0.5, seed=0)
    src, dst = graph.edges(0, num_edges)
    degree = np.bincount(dst, minlength=num_nodes)
    assert degree.max() > 50 * degree.mean()  # heavy tail: R-MAT's hubs
    labels = graph.labels()
    assert np.array_equal(np.bincount(labels), [num_nodes // 4] * 4)  # residues of a permutation of 0..N-1
    same = (labels[src] == labels[dst]).mean()
    without = RMat(num_nodes, num_edges, num_classes=4, homophily=0.0, seed=0)
    base = (labels[without.edges(0, num_edges)[0]] == labels[without.edges(0, num_edges)[1]]).mean()
    assert abs(same - (0.5 + 0.5 * base)) < 0.01  # half the sources moved into their target's community
    assert base > 0.25 + 0.05  # R-MAT itself already links low bits


def test_features_carry_a_signal_that_neighbours_strengthen():
    """Nearest-class-mean on a node's own features beats chance (0.25); adding its in-neighbours' mean beats that
    (nodes with at least 5 in-neighbours; 0.38 and 0.50 for this seed)."""
    graph = RMat(20000, 200000, num_features=16, num_classes=4, seed=5)
    x, y = graph.features(0, graph.num_nodes), graph.labels()
    assert x.dtype == np.float32 and abs(float(x.std()) - 1.0) < 0.05
    src, dst = graph.edges(0, graph.num_edges)
    total = np.zeros_like(x)
    np.add.at(total, dst, x[src])
    degree = np.bincount(dst, minlength=graph.num_nodes)
    smoothed = x + 2 * total / np.maximum(degree, 1)[:, None]

    def accuracy(features):
        scores = features @ graph.means.T
        return float((scores.argmax(1) == y)[degree >= 5].mean())

    own, with_neighbours = accuracy(x), accuracy(smoothed)
    assert own > 0.3 and with_neighbours > own + 0.08
    rows = graph.features(100, 150)
    assert np.array_equal(rows, x[100:150])


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(OptionError, match="num_nodes"):
        RMat(0, 10)
    with pytest.raises(OptionError, match="a \\+ b \\+ c"):
        RMat(10, 10, a=0.6, b=0.3, c=0.3)
    with pytest.raises(OptionError, match="homophily"):
        RMat(10, 10, homophily=1.5)
    with pytest.raises(OptionError, match="split"):
        rmat_store(tmp_path / "x", 10, 10, split=(0.9, 0.5))
    assert not (tmp_path / "x").exists()


def test_parameters_that_never_land_inside_are_an_error_not_a_hang():
    with pytest.raises(OptionError, match="almost no edge falls inside"):
        RMat(1000, 10, a=0.0, b=0.0, c=0.0).edges(0, 10)  # d = 1: every id is 1023 >= 1000
    src, dst = RMat(1024, 10, a=0.0, b=0.0, c=0.0).edges(0, 10)  # a power of two: the one corner is inside
    assert len(set(src.tolist())) == 1 and np.array_equal(src, dst)
