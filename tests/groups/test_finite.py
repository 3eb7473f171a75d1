import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fivefold.errors import GroupError
from fivefold.groups import (
    FiniteGroup,
    cube_rotations,
    cube_symmetries,
    cyclic,
    dihedral,
    icosahedral_rotations,
    trivial,
)

GROUPS = [cyclic(1), cyclic(4), cyclic(8), cyclic(16), dihedral(4), dihedral(8), dihedral(16), cube_rotations(),
          cube_symmetries(), icosahedral_rotations(), trivial(3)]
ORDERS = {"C1": 1, "C4": 4, "C8": 8, "C16": 16, "D4": 8, "D8": 16, "D16": 32, "O": 24, "O_h": 48, "I": 60, "1": 1}


@pytest.mark.parametrize("group", GROUPS, ids=repr)
def test_group_axioms(group):
    assert group.order == ORDERS[group.name] == len(group.elements)
    table = group.cayley_table
    e = group.identity
    for a in group.elements:
        assert group.compose(e, a) == a == group.compose(a, e)
        assert group.compose(a, group.inverse(a)) == e == group.compose(group.inverse(a), a)
        assert sorted(table[a]) == list(group.elements)  # Latin square
    a, b, c = np.meshgrid(*[np.arange(group.order)] * 3, indexing="ij")
    assert np.array_equal(table[table[a, b], c], table[a, table[b, c]])  # associativity


@pytest.mark.parametrize("group", GROUPS, ids=repr)
def test_composition_is_matrix_product(group):
    for a in group.elements:
        for b in group.elements:
            np.testing.assert_allclose(group.matrix(group.compose(a, b)), group.matrix(a) @ group.matrix(b),
                                       atol=1e-12)


def test_rotation_groups_have_determinant_one():
    for group in (cyclic(8), cube_rotations(), icosahedral_rotations()):
        np.testing.assert_allclose(np.linalg.det(group.matrices.numpy()), 1.0, atol=1e-12)
    dets = np.linalg.det(cube_symmetries().matrices.numpy())
    assert (np.round(dets) == 1).sum() == 24 and (np.round(dets) == -1).sum() == 24


def test_icosahedral_rotations_preserve_the_icosahedron():
    phi = (1 + math.sqrt(5)) / 2
    base = [(0, s1, s2 * phi) for s1 in (-1, 1) for s2 in (-1, 1)]
    vertices = np.array([np.roll(v, k) for v in base for k in range(3)], dtype=np.float64)
    for m in icosahedral_rotations().matrices.numpy():
        moved = vertices @ m.T
        distance = np.abs(moved[:, None, :] - vertices[None, :, :]).sum(-1).min(axis=1)
        assert distance.max() < 1e-9
    # element orders: 1 identity, 15 of order 2, 20 of order 3, 24 of order 5
    group = icosahedral_rotations()
    orders = []
    for g in group.elements:
        k, h = 1, g
        while h != 0:
            h, k = group.compose(g, h), k + 1
        orders.append(k)
    assert sorted(np.bincount(orders).tolist()) == sorted([0, 1, 15, 20, 0, 24])


def test_exact_grid_groups():
    assert all(g.acts_exactly_on_grids for g in (cyclic(4), dihedral(4), cube_symmetries()))
    assert not cyclic(8).acts_exactly_on_grids and not icosahedral_rotations().acts_exactly_on_grids


def test_dihedral_element_layout():
    d4 = dihedral(4)
    np.testing.assert_array_equal(d4.matrix(4), np.diag([1.0, -1.0]))  # F
    np.testing.assert_array_equal(d4.matrix(1), [[0.0, -1.0], [1.0, 0.0]])  # R by 90 degrees
    assert d4.compose(4, 1) == d4.compose(3, 4)  # F R = R^-1 F


@given(st.integers(1, 24), st.data())
@settings(max_examples=30, deadline=None)
def test_cyclic_composition_adds_angles(n, data):
    group = cyclic(n)
    a, b = data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, n - 1))
    assert group.compose(a, b) == (a + b) % n
    assert group.inverse(a) == (-a) % n


def test_bad_input():
    with pytest.raises(GroupError, match="positive integer"):
        cyclic(0)
    with pytest.raises(GroupError, match="not one of"):
        cyclic(4).compose(0, 4)
    with pytest.raises(GroupError, match="not one of"):
        cyclic(4).inverse(1.5)
    with pytest.raises(GroupError, match="not closed"):
        FiniteGroup("bad", np.stack([np.eye(2), np.array([[0.0, -1.0], [1.0, 0.0]])]))
    with pytest.raises(GroupError, match="identity"):
        FiniteGroup("bad", np.stack([-np.eye(2), np.eye(2)]))
    with pytest.raises(GroupError, match="orthogonal"):
        FiniteGroup("bad", np.stack([np.eye(2), 2 * np.eye(2)]))
    with pytest.raises(ValueError):  # GroupError is a ValueError
        trivial(4)


def test_sample_and_repr():
    group = cube_rotations()
    sample = group.sample(5, torch.Generator().manual_seed(0))
    assert len(sample) == 5 and all(0 <= g < 24 for g in sample)
    assert repr(group) == "O (order 24, acting on R^3)"
    assert cyclic(4) == cyclic(4) and cyclic(4) != cyclic(8)


def test_symmetric_group():
    from fivefold.groups import SymmetricGroup

    group = SymmetricGroup(5)
    a, b = group.sample(2, torch.Generator().manual_seed(0))
    x = torch.randn(5, 3)
    torch.testing.assert_close(x[b][a], x[group.compose(a, b)])
    assert torch.equal(group.compose(a, group.inverse(a)), group.identity)
    with pytest.raises(GroupError, match="permutation"):
        group.compose(torch.tensor([0, 0, 1, 2, 3]), b)
    with pytest.raises(GroupError):
        SymmetricGroup(-1)
