import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from fivefold.errors import FieldError, GroupError, OptionError
from fivefold.grids import GroupConv2d, GroupConv3d, LiftingConv2d, LiftingConv3d
from fivefold.grids.conv import _GroupConvNd
from fivefold.groups import (
    cube_rotations,
    cube_symmetries,
    cyclic,
    dihedral,
    regular_field,
    transform_grid,
    trivial,
    trivial_field,
)
from fivefold.testing import assert_close, assert_equivariant

from .conftest import disk, smooth_field

STEERABLE_RTOL = 0.03  # documented: smooth inputs, k = 5, any rotation of C_8 / C_16 / D_8 (measured about 1-1.7 %)


def _regular_input(group, fields, size, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn((2, fields * group.order) + (size,) * group.dim, generator=generator, dtype=dtype)


# float32: the tolerance is fivefold.testing's float rule (16 eps sqrt(terms) max|y|), terms = the products summed into
# one output (input channels x filter volume); exactness itself is proven by the float64 tests below
@pytest.mark.float32
@pytest.mark.parametrize("group", [cyclic(4), dihedral(4)], ids=repr)
@pytest.mark.parametrize("kernel_size", [3, 5])
def test_exact_2d_equivariance_float32(group, kernel_size):
    torch.manual_seed(0)
    image, hidden, out = trivial_field(group, 3), regular_field(group, 4), regular_field(group, 5)
    lift = GroupConv2d(image, hidden, kernel_size)
    x = torch.randn(2, 3, 15, 15)
    assert_equivariant(lift, image, hidden, x, terms=3 * kernel_size**2)
    conv = GroupConv2d(hidden, out, kernel_size)
    assert_equivariant(conv, hidden, out, _regular_input(group, 4, 15), terms=4 * group.order * kernel_size**2)


@pytest.mark.float32
@pytest.mark.parametrize("group", [cube_rotations(), cube_symmetries()], ids=repr)
def test_exact_3d_equivariance_float32(group):
    torch.manual_seed(0)
    volume, hidden = trivial_field(group, 2), regular_field(group, 2)
    lift = GroupConv3d(volume, hidden, 3)
    assert_equivariant(lift, volume, hidden, torch.randn(2, 2, 7, 7, 7), terms=2 * 27)
    conv = GroupConv3d(hidden, hidden, 3)
    assert_equivariant(conv, hidden, hidden, _regular_input(group, 2, 7), terms=2 * group.order * 27)


@given(st.sampled_from([cyclic(4), dihedral(4)]), st.integers(1, 3), st.integers(1, 3), st.sampled_from([1, 3, 5]),
       st.integers(5, 12), st.integers(0, 2**16))
@settings(max_examples=20, deadline=None)
def test_group_conv_equivariance_property(group, fields_in, fields_out, kernel_size, size, seed):
    torch.manual_seed(seed)
    in_type, out_type = regular_field(group, fields_in), regular_field(group, fields_out)
    conv = GroupConv2d(in_type, out_type, kernel_size).double()
    x = _regular_input(group, fields_in, size, torch.float64, seed)
    assert_equivariant(conv, in_type, out_type, x, atol=1e-10)


def _reference_group_conv(x, weight, bias, group, lifting):
    """The published rule written out: for each output orientation h, rotate every filter by h and cycle its
    group axis by h^-1, then correlate (float64)."""
    out_c, in_c = weight.shape[:2]
    k = weight.shape[-1]
    outputs = []
    for h in group.elements:
        filters = weight.reshape(out_c, in_c, -1, k, k)
        if not lifting:
            index = torch.tensor([group.compose(group.inverse(h), g) for g in group.elements])
            filters = filters[:, :, index]
        filters = transform_grid(filters, group.matrix(h)).reshape(out_c, -1, k, k)
        outputs.append(F.conv2d(x, filters, bias, padding=k // 2))
    return torch.stack(outputs, dim=2).reshape(x.shape[0], out_c * group.order, *x.shape[2:])


@pytest.mark.parametrize("group", [cyclic(4), dihedral(4)], ids=repr)
def test_matches_the_published_rule(group):
    torch.manual_seed(1)
    lift = GroupConv2d(trivial_field(group, 2), regular_field(group, 3), 3).double()
    x = torch.randn(2, 2, 9, 9, dtype=torch.float64)
    with torch.no_grad():
        lift.bias.normal_()
    expected = _reference_group_conv(x, lift.weight.reshape(3, 2, 3, 3), lift.bias, group, lifting=True)
    torch.testing.assert_close(lift(x), expected)
    conv = GroupConv2d(regular_field(group, 3), regular_field(group, 2), 3).double()
    x = _regular_input(group, 3, 9, torch.float64)
    expected = _reference_group_conv(x, conv.weight.reshape(2, 3, group.order, 3, 3), conv.bias, group, lifting=False)
    torch.testing.assert_close(conv(x), expected)


@pytest.mark.float32
def test_trivial_group_is_an_ordinary_conv():
    torch.manual_seed(0)
    conv = GroupConv2d(trivial_field(trivial(2), 3), regular_field(trivial(2), 4), 3)
    x = torch.randn(2, 3, 8, 8)
    expected = F.conv2d(x, conv.weight.reshape(4, 3, 3, 3), conv.bias, padding=1)
    assert_close(conv(x), expected, terms=3 * 9)


@pytest.mark.parametrize("group", [cyclic(8), cyclic(16), dihedral(8)], ids=repr)
def test_steerable_exact_on_right_angles(group):
    torch.manual_seed(0)
    hidden, out = regular_field(group, 2), regular_field(group, 3)
    conv = GroupConv2d(hidden, out, 5).double()
    assert conv.basis == "steerable"
    right_angles = [g for g in group.elements if group.matrix(g).round().tolist() == group.matrix(g).tolist()]
    assert len(right_angles) == (4 if group.family == "cyclic" else 8)
    x = _regular_input(group, 2, 11, torch.float64)
    assert_equivariant(conv, hidden, out, x, elements=right_angles, atol=1e-10)


@pytest.mark.parametrize("group", [cyclic(8), cyclic(16), dihedral(8)], ids=repr)
def test_steerable_equivariant_up_to_interpolation(group):
    torch.manual_seed(0)
    image, four, two = trivial_field(group, 1), regular_field(group, 4), regular_field(group, 2)
    lift = GroupConv2d(image, four, 5).double()
    mask = disk(33, 11.5)
    assert_equivariant(lift, image, four, smooth_field(1, 33), rtol=STEERABLE_RTOL, mask=mask)
    conv = GroupConv2d(two, two, 5).double()
    x = smooth_field(2 * group.order, 33, seed=1)
    assert_equivariant(conv, two, two, x, rtol=STEERABLE_RTOL, mask=mask)
    # the same check fails for filters that are not steered: rotate pixels by the nearest right angle instead
    free = torch.nn.Conv2d(1, 4 * group.order, 5, padding=2).double()
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(free, image, four, smooth_field(1, 33), rtol=STEERABLE_RTOL, mask=mask)


def test_steerable_filter_is_the_rotated_filter():
    c8 = cyclic(8)
    torch.manual_seed(0)
    lift = GroupConv2d(trivial_field(c8, 1), regular_field(c8, 2), 5).double()
    weight, _ = lift.expand_filter()
    weight = weight.reshape(2, 8, 5, 5)
    for h in range(8):
        rotated = transform_grid(weight[:, 0], c8.matrix(h))
        if h % 2 == 0:  # right angles: exact pixel rotation
            torch.testing.assert_close(weight[:, h], rotated, atol=1e-12, rtol=0)
        else:  # 45-degree steps are new filters, sampled from the rotated smooth function
            assert all((weight[:, h] - weight[:, j]).abs().max() > 1e-3 for j in range(0, 8, 2))


def test_gradients_flow_and_gradcheck():
    torch.manual_seed(0)
    c4, c8, o = regular_field(cyclic(4), 2), regular_field(cyclic(8), 1), regular_field(cube_rotations(), 1)
    cases = ((GroupConv2d(c4, c4, 3).double(), torch.randn(1, 8, 5, 5, dtype=torch.float64)),
             (GroupConv2d(c8, c8, 3).double(), torch.randn(1, 8, 5, 5, dtype=torch.float64)),
             (GroupConv3d(o, o, 3).double(), torch.randn(1, 24, 3, 3, 3, dtype=torch.float64)))
    for conv, x in cases:
        x.requires_grad_(True)
        conv(x).square().sum().backward()
        assert conv.weight.grad.abs().sum() > 0 and conv.bias.grad.abs().sum() > 0 and x.grad.abs().sum() > 0
        assert torch.autograd.gradcheck(lambda w, x, conv=conv: _with_weight(conv, w, x), (conv.weight.detach()
                                        .clone().requires_grad_(), x.detach()), eps=1e-6, atol=1e-5)


def _with_weight(conv, weight, x):
    return torch.func.functional_call(conv, {"weight": weight, "bias": conv.bias}, (x,))


def test_state_dict_round_trip():
    torch.manual_seed(0)
    in_type, out_type = regular_field(cyclic(8), 2), regular_field(cyclic(8), 3)
    conv = GroupConv2d(in_type, out_type, 5)
    assert set(conv.state_dict()) == {"weight", "bias"}  # the basis and the filter cache are derived, not state
    twin = GroupConv2d(in_type, out_type, 5)
    twin.load_state_dict(conv.state_dict())
    x = torch.randn(2, 16, 9, 9)
    torch.testing.assert_close(twin(x), conv(x))
    conv.eval()
    conv(x)
    assert set(conv.state_dict()) == {"weight", "bias"}


def test_eval_cache_is_reused_and_invalidated():
    torch.manual_seed(0)
    hidden = regular_field(cyclic(4), 2)
    conv = GroupConv2d(hidden, hidden, 3)
    x = torch.randn(1, 8, 7, 7)
    conv.eval()
    first = conv(x)
    cached = conv._cache[1][0]
    conv(x)
    assert conv._cache[1][0] is cached  # reused
    with torch.no_grad():
        conv.weight.mul_(2.0)  # an optimiser step or load_state_dict changes the parameter in place
    bias = conv.bias.repeat_interleave(4)[:, None, None]
    torch.testing.assert_close(conv(x) - bias, 2 * (first - bias))
    conv.train()
    assert conv._cache is None
    conv(x).sum().backward()
    assert conv.weight.grad is not None
    conv.eval()
    twin = GroupConv2d(hidden, hidden, 3).eval()
    twin(x)
    twin.load_state_dict(conv.state_dict())
    torch.testing.assert_close(twin(x), conv(x))


def test_wrong_channel_counts_give_clear_errors():
    c4 = cyclic(4)
    conv = GroupConv2d(regular_field(c4, 3), regular_field(c4, 4), 3)
    with pytest.raises(FieldError, match="3 regular fields of C4 = 12 channels"):
        conv(torch.randn(1, 10, 8, 8))
    with pytest.raises(FieldError, match=r"did you mean in_type=trivial_field"):
        conv(torch.randn(1, 3, 8, 8))
    with pytest.raises(FieldError, match=r"\[B, C, H, W\]"):
        conv(torch.randn(12, 8, 8))
    o = cube_rotations()
    with pytest.raises(FieldError, match="2 scalar channels"):
        GroupConv3d(trivial_field(o, 2), regular_field(o, 1), 3)(torch.randn(1, 3, 5, 5, 5))
    with pytest.raises(FieldError, match="floating point"):
        GroupConv2d(trivial_field(c4, 1), regular_field(c4, 1), 3)(torch.ones(1, 1, 4, 4, dtype=torch.int64))


def test_bad_construction():
    o, c4, c8 = cube_rotations(), cyclic(4), cyclic(8)
    with pytest.raises(GroupError, match="acts on R\\^3"):
        GroupConv2d(trivial_field(o, 1), regular_field(o, 1), 3)
    with pytest.raises(GroupError, match="basis='steerable'"):
        GroupConv2d(trivial_field(c8, 1), regular_field(c8, 1), 3, basis="pixel")
    with pytest.raises(GroupError, match="steerable filters are 2D"):
        _GroupConvNd(trivial_field(o, 1), regular_field(o, 1), 3, spatial_dims=3, stride=1, padding=None,
                     dilation=1, bias=True, basis="steerable", max_frequency=None)
    with pytest.raises(FieldError, match="kernel_size"):
        GroupConv2d(regular_field(c4, 1), regular_field(c4, 1), 0)
    with pytest.raises(OptionError, match=r"basis must be one of \('auto', 'pixel', 'steerable'\)"):
        GroupConv2d(regular_field(c4, 1), regular_field(c4, 1), 3, basis="fourier")
    with pytest.raises(GroupError, match="in_type is a field of C4 but out_type of C8"):
        GroupConv2d(regular_field(c4, 1), regular_field(c8, 1), 3)
    with pytest.raises(FieldError, match="out_type must be regular fields"):
        GroupConv2d(regular_field(c4, 1), trivial_field(c4, 1), 3)
    with pytest.raises(FieldError, match="all trivial fields .* or all regular"):
        GroupConv2d(regular_field(c4, 1) + trivial_field(c4, 1), regular_field(c4, 1), 3)
    with pytest.raises(FieldError, match="both in_type and out_type"):
        GroupConv2d(regular_field(c4, 1), 3, 3)


def test_shapes_and_repr():
    d4 = dihedral(4)
    conv = GroupConv2d(regular_field(d4, 2), regular_field(d4, 3), 3, stride=2)
    assert conv(torch.randn(1, 16, 8, 8)).shape == (1, 24, 4, 4)
    assert "2×regular(D4) -> 3×regular(D4)" in repr(conv) and "stride=2" in repr(conv)
    o = cube_rotations()
    lift = GroupConv3d(trivial_field(o, 1), regular_field(o, 2), 3)
    assert lift(torch.randn(1, 1, 4, 4, 4)).shape == (1, 48, 4, 4, 4)


@pytest.mark.parametrize("old, new", [
    (lambda: LiftingConv2d(2, 3, 5, dihedral(4)),
     lambda: GroupConv2d(trivial_field(dihedral(4), 2), regular_field(dihedral(4), 3), 5)),
    (lambda: GroupConv2d(3, 2, 3, cyclic(8)),
     lambda: GroupConv2d(regular_field(cyclic(8), 3), regular_field(cyclic(8), 2), 3)),
    (lambda: LiftingConv3d(1, 2, 3), lambda: GroupConv3d(trivial_field(cube_rotations(), 1),
                                                         regular_field(cube_rotations(), 2), 3)),
    (lambda: GroupConv3d(2, 1, 3), lambda: GroupConv3d(regular_field(cube_rotations(), 2),
                                                       regular_field(cube_rotations(), 1), 3)),
])
def test_deprecated_call_forms_warn_and_build_the_same_layer(old, new):
    torch.manual_seed(0)
    with pytest.warns(DeprecationWarning, match="deprecated"):
        legacy = old()
    torch.manual_seed(0)
    current = new()
    assert (legacy.in_type, legacy.out_type) == (current.in_type, current.out_type)
    for key, value in current.state_dict().items():  # same shapes, same draws: old checkpoints and seeds still hold
        assert torch.equal(legacy.state_dict()[key], value)
