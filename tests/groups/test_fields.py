import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fivefold.errors import FieldError, GroupError
from fivefold.groups import (
    SO2,
    FieldType,
    cube_rotations,
    cyclic,
    dihedral,
    irreps,
    irreps_field,
    regular_field,
    regular_representation,
    so2_irrep,
    trivial_field,
)
from fivefold.groups import FieldType as Alias


def test_repr_size_and_direct_sums_read_like_the_maths():
    c4 = cyclic(4)
    field = regular_field(c4, 8) + trivial_field(c4, 2)
    assert repr(field) == "8×regular(C4) ⊕ 2×trivial"
    assert (field.size, len(field), field.count("regular"), field.count("trivial")) == (34, 10, 8, 2)
    assert regular_field(c4, 1) * 3 == regular_field(c4, 3) == 3 * regular_field(c4, 1)
    assert repr(irreps_field(irreps(dihedral(4)))) == \
        "1×irrep0,0(D4) ⊕ 1×irrep1,0(D4) ⊕ 1×irrep1,1(D4) ⊕ 1×irrep0,2(D4) ⊕ 1×irrep1,2(D4)"
    so2 = irreps_field([so2_irrep(0), so2_irrep(1), so2_irrep(1), so2_irrep(2)])  # meshes' SO(2) fields
    assert repr(so2) == "1×irrep0(SO(2)) ⊕ 2×irrep1(SO(2)) ⊕ 1×irrep2(SO(2))" and so2.size == 7
    assert field.is_trivial is False and trivial_field(c4, 3).is_trivial and regular_field(c4, 2).is_regular


def test_value_semantics():
    c4 = cyclic(4)
    assert regular_field(cyclic(4), 2) == regular_field(c4, 2)  # groups built twice are equal
    assert hash(regular_field(cyclic(4), 2)) == hash(regular_field(c4, 2))
    assert regular_field(c4, 2) != regular_field(dihedral(2), 2) and regular_field(c4, 2) != trivial_field(c4, 8)
    field = regular_field(c4, 1)
    with pytest.raises(AttributeError, match="immutable"):
        field.size = 3
    assert Alias is FieldType


def test_bad_field_types_are_refused():
    c4, d4 = cyclic(4), dihedral(4)
    with pytest.raises(GroupError, match="different groups"):
        regular_field(c4, 1) + regular_field(d4, 1)
    with pytest.raises(GroupError, match="represents D4, not C4"):
        FieldType(c4, [regular_representation(d4)])
    with pytest.raises(FieldError, match="at least one"):
        FieldType(c4, [])
    with pytest.raises(FieldError, match="not a fivefold.groups.Representation"):
        FieldType(c4, ["regular"])
    with pytest.raises(FieldError, match="positive integer"):
        regular_field(c4, 0)
    with pytest.raises(GroupError, match="finite group"):
        regular_field(SO2(), 1)
    with pytest.raises(FieldError, match="axis 1 of the tensor must have 4 channels"):
        regular_field(c4, 1).transform(torch.zeros(2, 5), 1)


@pytest.mark.parametrize("group", [cyclic(4), dihedral(4), cyclic(8), cube_rotations()], ids=repr)
def test_transform_is_a_representation_of_the_group(group):
    """rho(a) rho(b) = rho(ab) on tensors, for permutation fields (reindexed) and irreps (multiplied) alike."""
    field = regular_field(group, 2) + trivial_field(group, 1)
    if group.dim == 2:
        field = field + irreps_field(irreps(group))
    x = torch.randn(3, field.size, 2, dtype=torch.float64)
    for a in group.elements:
        for b in list(group.elements)[:6]:
            left = field.transform(field.transform(x, b), a)
            torch.testing.assert_close(left, field.transform(x, group.compose(a, b)), atol=1e-12, rtol=0)
    torch.testing.assert_close(field.transform(x, 0), x, atol=0, rtol=0)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 4), st.integers(0, 3), st.floats(-6.0, 6.0), st.floats(-6.0, 6.0))
def test_so2_field_transform_composes(k, channel_axis, a, b):
    field = irreps_field([so2_irrep(0)] + [so2_irrep(j) for j in range(1, k + 1)])
    shape = [2, 3, 2, 2]
    shape[channel_axis] = field.size
    x = torch.randn(shape, dtype=torch.float64)
    left = field.transform(field.transform(x, b, channel_axis), a, channel_axis)
    torch.testing.assert_close(left, field.transform(x, a + b, channel_axis), atol=1e-12, rtol=0)


def test_regular_transform_matches_the_group_axis_permutation():
    from fivefold.groups import permute_group_axis

    d4 = dihedral(4)
    x = torch.randn(2, 24, 3, 3)
    for g in d4.elements:
        assert torch.equal(regular_field(d4, 3).transform(x, g), permute_group_axis(x, d4, g))
