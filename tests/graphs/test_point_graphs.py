"""radius_graph (cell lists) and knn_graph against brute force, invariance to rigid motions, bad inputs."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fivefold.errors import GraphError, OpsError
from fivefold.graphs import knn_graph, radius_graph
from fivefold.groups import random_rotation


def _points(seed: int, n: int, graphs: int, spread: float):
    generator = torch.Generator().manual_seed(seed)
    pos = spread * torch.rand(n, 3, generator=generator, dtype=torch.float64)
    batch = torch.sort(torch.randint(0, graphs, (n,), generator=generator)).values
    return pos, batch


def _brute_radius(pos, batch, cutoff, loop):
    distance = torch.cdist(pos, pos)
    close = (distance < cutoff) & (batch[:, None] == batch[None, :])
    if not loop:
        close.fill_diagonal_(False)
    target, source = torch.nonzero(close, as_tuple=True)
    return {(int(s), int(t)) for s, t in zip(source, target, strict=True)}


def _pairs(edge_index):
    return {(int(s), int(t)) for s, t in edge_index.T}


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 120), graphs=st.integers(1, 4),
       spread=st.sampled_from([1.0, 5.0, 1e4]), cutoff=st.floats(0.05, 3.0), loop=st.booleans())
def test_radius_graph_equals_brute_force(seed, n, graphs, spread, cutoff, loop):
    """spread 1e4 with a small cutoff takes the sparse path (binary search over occupied cubes)."""
    pos, batch = _points(seed, n, graphs, spread)
    edge_index = radius_graph(pos, cutoff, batch, loop=loop)
    assert edge_index.dtype == torch.long and edge_index.shape[0] == 2
    assert _pairs(edge_index) == _brute_radius(pos, batch, cutoff, loop)
    assert len(_pairs(edge_index)) == edge_index.shape[1]  # no duplicates
    if edge_index.shape[1]:
        assert bool((edge_index[1][1:] >= edge_index[1][:-1]).all())  # grouped by centre


def test_radius_graph_is_invariant_to_rigid_motions_and_float32_works():
    pos, batch = _points(0, 200, 3, 4.0)
    rotation = random_rotation(3, torch.Generator().manual_seed(1))
    moved = pos @ rotation.T + torch.tensor([100.0, -3.0, 7.0], dtype=torch.float64)
    assert _pairs(radius_graph(pos, 1.2, batch)) == _pairs(radius_graph(moved, 1.2, batch))
    assert _pairs(radius_graph(pos.float(), 1.2, batch)) <= _brute_radius(pos, batch, 1.2 + 1e-5, False)


def test_max_num_neighbors_keeps_the_nearest():
    pos, _ = _points(2, 80, 1, 2.0)
    edge_index = radius_graph(pos, 1.0, max_num_neighbors=3)
    distance = torch.cdist(pos, pos)
    for i in range(80):
        mine = edge_index[0][edge_index[1] == i]
        within = torch.nonzero((distance[i] < 1.0) & (torch.arange(80) != i)).flatten()
        expected = within[torch.argsort(distance[i, within])][:3]
        assert set(mine.tolist()) == set(expected.tolist())


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 90), graphs=st.integers(1, 4), k=st.integers(1, 8),
       loop=st.booleans())
def test_knn_graph_equals_brute_force(seed, n, graphs, k, loop):
    pos, batch = _points(seed, n, graphs, 3.0)
    edge_index = knn_graph(pos, k, batch, loop=loop)
    distance = torch.cdist(pos, pos)
    distance[batch[:, None] != batch[None, :]] = float("inf")
    if not loop:
        distance.fill_diagonal_(float("inf"))
    for i in range(n):
        available = int(torch.isfinite(distance[i]).sum())
        expected = set(torch.argsort(distance[i])[:min(k, available)].tolist())
        assert set(edge_index[0][edge_index[1] == i].tolist()) == expected


@pytest.mark.parametrize("call", [
    lambda: radius_graph(torch.randn(5, 2), 1.0),
    lambda: radius_graph(torch.tensor([[0.0, 0.0, float("nan")]]), 1.0),
    lambda: radius_graph(torch.randn(5, 3), -1.0),
    lambda: radius_graph(torch.randn(5, 3), float("inf")),
    lambda: radius_graph(torch.randn(5, 3), 1.0, torch.zeros(4, dtype=torch.long)),
    lambda: radius_graph(torch.randn(5, 3), 1.0, torch.tensor([0, 0, -1, 1, 1])),
    lambda: radius_graph(torch.randn(5, 3, dtype=torch.float64).long(), 1.0),
    lambda: knn_graph(torch.randn(5, 3), 0),
    lambda: knn_graph(torch.randn(5, 3), 2, torch.zeros(5)),
])
def test_bad_point_inputs_are_refused(call):
    with pytest.raises(OpsError):
        call()


def test_bad_max_num_neighbors_is_refused():
    with pytest.raises(GraphError):
        radius_graph(torch.randn(5, 3), 1.0, max_num_neighbors=0)
