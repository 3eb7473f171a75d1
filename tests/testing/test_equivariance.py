import pytest
import torch

from fivefold.groups import SO2, cyclic, dihedral, transform_grid
from fivefold.testing import assert_equivariant, grid_action, random_rotation


def test_reports_the_worst_element():
    group = cyclic(4)
    x = torch.randn(1, 1, 9, 9, dtype=torch.float64)
    report = assert_equivariant(lambda t: 2 * t, group, x, "trivial", "trivial")
    assert report.worst_error == 0 and len(report.errors) == 4 and "4 elements" in str(report)


def test_catches_a_module_that_is_not_equivariant():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 1, 3, padding=1).double()
    with pytest.raises(AssertionError, match="not equivariant under C4"):
        assert_equivariant(conv, cyclic(4), torch.randn(1, 1, 9, 9, dtype=torch.float64), "trivial", "trivial")
    # a shift of the output (a wrong action) is caught too
    with pytest.raises(AssertionError):
        assert_equivariant(lambda t: t.roll(1, -1), dihedral(4), torch.randn(1, 1, 6, 6), "trivial", "trivial")


def test_callable_actions_and_elements():
    group = cyclic(4)

    def negate_on_odd(x, g):
        return -x if g % 2 else x

    # f(x) = x^2 is invariant to the sign action on the input
    report = assert_equivariant(lambda t: t**2, group, torch.randn(5), negate_on_odd, "invariant", elements=[1, 3])
    assert set(report.errors) == {1, 3}


def test_continuous_group_is_sampled():
    ax = torch.arange(21, dtype=torch.float64) - 10
    radial = torch.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / 8)[None, None]

    def radial_profile(t):  # the sum over the image is invariant to rotation (up to resampling)
        return t.sum(dim=(-1, -2))

    report = assert_equivariant(radial_profile, SO2(), radial, "trivial", "invariant", samples=5, rtol=0.01,
                                generator=torch.Generator().manual_seed(0))
    assert len(report.errors) == 5
    with pytest.raises(ValueError, match="finite group"):
        grid_action(SO2(), "regular")
    with pytest.raises(ValueError, match="unknown field type"):
        grid_action(cyclic(4), "vector")


def test_random_rotation():
    generator = torch.Generator().manual_seed(0)
    for dim in (2, 3):
        r = random_rotation(dim, generator)
        torch.testing.assert_close(r @ r.T, torch.eye(dim, dtype=torch.float64))
        assert torch.det(r) == pytest.approx(1.0)
    x = torch.randn(1, 1, 7, 7, dtype=torch.float64)
    assert transform_grid(x, random_rotation(2, generator)).shape == x.shape
