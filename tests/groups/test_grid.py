import numpy as np
import pytest
import torch

from fivefold.errors import FieldError, GroupError, OptionError
from fivefold.groups import SO2, act_on_grid, cube_symmetries, cyclic, dihedral, permute_group_axis, transform_grid
from fivefold.groups.grid import _resample_grid


def test_exact_action_is_a_representation():
    x = torch.randn(2, 3, 5, 5)
    for group in (dihedral(4), cube_symmetries()):
        shape = (2, 3) + (5,) * group.dim
        x = torch.randn(shape)
        for a in group.elements:
            for b in (1, 3, group.order - 1):
                left = transform_grid(transform_grid(x, group.matrix(b)), group.matrix(a))
                torch.testing.assert_close(left, transform_grid(x, group.matrix(group.compose(a, b))), rtol=0, atol=0)


def test_exact_action_agrees_with_interpolation():
    for group in (dihedral(4), cube_symmetries()):
        x = torch.randn((1, 2) + (6,) * group.dim, dtype=torch.float64)
        for g in group.elements:
            m = torch.tensor(group.matrix(g))
            torch.testing.assert_close(transform_grid(x, m), _resample_grid(x, m), rtol=0, atol=1e-12)


def test_rot90_convention():
    # the 90-degree element of C4 sends the centred index p = (i, j) to (-j, i)
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 0, 1] = 1.0  # p = (-1, 0)
    y = transform_grid(x, cyclic(4).matrix(1))
    assert y[0, 0, 1, 0] == 1.0 and y.sum() == 1.0  # M p = (0, -1)


def test_interpolated_rotation_composes_approximately():
    so2 = SO2()
    ax = torch.arange(33, dtype=torch.float64) - 16
    x = torch.exp(-((ax[:, None] - 4) ** 2 + ax[None, :] ** 2) / 18.0)[None, None]
    twice = transform_grid(transform_grid(x, so2.matrix(0.4)), so2.matrix(0.5))
    once = transform_grid(x, so2.matrix(0.9))
    assert (twice - once).abs().max() < 0.05  # bilinear resampling blurs a little each time
    assert (once - x).abs().max() > 0.5  # the blob did move


def test_regular_action_permutes_the_group_axis():
    group = cyclic(4)
    x = torch.arange(8.0).reshape(1, 8)  # two fields
    y = permute_group_axis(x, group, 1)
    assert y.tolist() == [[3.0, 0.0, 1.0, 2.0, 7.0, 4.0, 5.0, 6.0]]  # y_h = x_{h - 1}
    field = torch.randn(2, 8, 5, 5)
    for a in group.elements:
        for b in group.elements:
            two = act_on_grid(act_on_grid(field, group, b, "regular"), group, a, "regular")
            torch.testing.assert_close(two, act_on_grid(field, group, group.compose(a, b), "regular"))


def test_bad_input():
    with pytest.raises(FieldError, match="multiple of"):
        permute_group_axis(torch.randn(1, 6), cyclic(4), 1)
    with pytest.raises(FieldError, match="acts on 2D"):
        act_on_grid(torch.randn(1, 1, 4, 4, 4), cyclic(4), 1)
    with pytest.raises(FieldError, match="equal spatial sizes"):
        transform_grid(torch.randn(1, 1, 4, 5), cyclic(4).matrix(1))
    with pytest.raises(GroupError):
        transform_grid(torch.randn(1, 1, 4, 4), np.eye(4))
    with pytest.raises(OptionError, match=r"\('trivial', 'regular'\)"):
        act_on_grid(torch.randn(1, 1, 4, 4), cyclic(4), 1, "vector")


def test_rotate_images_matches_transform_grid():
    from fivefold.groups import SO2, rotate_images

    x = torch.randn(4, 2, 9, 9, dtype=torch.float64)
    angles = torch.tensor([0.0, 0.7, -2.0, torch.pi / 2], dtype=torch.float64)
    out = rotate_images(x, angles)
    for n in range(4):
        torch.testing.assert_close(out[n], transform_grid(x[n], SO2().matrix(float(angles[n]))), atol=1e-12, rtol=0)
    with pytest.raises(FieldError):
        rotate_images(x, angles[:2])
