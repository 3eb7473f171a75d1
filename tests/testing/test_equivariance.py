import pytest
import torch

from fivefold.groups import SO2, FieldType, cyclic, dihedral, regular_field, transform_grid, trivial_field
from fivefold.testing import Action, assert_equivariant, grid_action, random_rotation


def test_reports_the_worst_element():
    c4 = trivial_field(cyclic(4), 1)
    x = torch.randn(1, 1, 9, 9, dtype=torch.float64)
    report = assert_equivariant(lambda t: 2 * t, c4, c4, x)
    assert report.worst_error == 0 and len(report.errors) == 4 and "4 elements" in str(report)


def test_catches_a_module_that_is_not_equivariant():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 1, 3, padding=1).double()
    scalar = trivial_field(cyclic(4), 1)
    with pytest.raises(AssertionError, match="not equivariant under C4"):
        assert_equivariant(conv, scalar, scalar, torch.randn(1, 1, 9, 9, dtype=torch.float64))
    # a shift of the output (a wrong action) is caught too, in float32 under the float rule
    d4 = trivial_field(dihedral(4), 1)
    with pytest.raises(AssertionError):
        assert_equivariant(lambda t: t.roll(1, -1), d4, d4, torch.randn(1, 1, 6, 6))


def test_regular_fields_permute_channels_and_move_the_grid():
    c4 = cyclic(4)
    fields = regular_field(c4, 2)
    # swapping two orientations of each field does not commute with the regular action
    with pytest.raises(AssertionError):
        assert_equivariant(lambda t: t[:, [1, 0, 2, 3, 5, 4, 6, 7]], fields, fields,
                           torch.randn(1, 8, 5, 5, dtype=torch.float64))
    # the group axis alone ([B, C] after spatial pooling) transforms by the representation
    pooled = lambda t: t.mean(dim=(-1, -2))  # noqa: E731
    assert_equivariant(pooled, fields, fields, torch.randn(2, 8, 5, 5, dtype=torch.float64), atol=1e-12)
    mixed = fields + trivial_field(c4, 1)
    assert_equivariant(lambda t: 3 * t, mixed, mixed, torch.randn(2, 9, 5, 5, dtype=torch.float64), atol=0)


def test_callable_actions_and_elements():
    group = cyclic(4)
    sign = Action(group, lambda x, g: -x if g % 2 else x, "sign")
    # f(x) = x^2 is invariant to the sign action on the input
    report = assert_equivariant(lambda t: t**2, sign, "invariant", torch.randn(5), elements=[1, 3])
    assert set(report.errors) == {1, 3} and "sign of C4" in repr(sign)
    with pytest.raises(ValueError, match="input's group is C4, the output's D4"):
        assert_equivariant(lambda t: t, sign, Action(dihedral(4), lambda x, g: x), torch.randn(5))
    with pytest.raises(ValueError, match="FieldType or an Action"):
        assert_equivariant(lambda t: t, "invariant", "invariant", torch.randn(5))


def test_continuous_group_is_sampled():
    ax = torch.arange(21, dtype=torch.float64) - 10
    radial = torch.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / 8)[None, None]

    def radial_profile(t):  # the sum over the image is invariant to rotation (up to resampling)
        return t.sum(dim=(-1, -2))

    report = assert_equivariant(radial_profile, trivial_field(SO2(), 1), "invariant", radial, samples=5, rtol=0.01,
                                generator=torch.Generator().manual_seed(0))
    assert len(report.errors) == 5
    with pytest.raises(ValueError, match="does not act on grids"):
        grid_action(FieldType(_Other(), [_other_rep()]))


class _Other:
    name = "X"

    def __eq__(self, other):
        return isinstance(other, _Other)

    def __hash__(self):
        return 0


def _other_rep():
    from fivefold.groups import Representation

    return Representation("trivial", _Other(), dim=1, function=lambda g: torch.ones(1, 1))


def test_older_call_form_still_works_and_warns():
    c4 = cyclic(4)
    conv = torch.nn.Conv2d(1, 1, 3, padding=1).double()
    x = torch.randn(1, 1, 9, 9, dtype=torch.float64)
    with pytest.warns(DeprecationWarning, match="deprecated"):
        report = assert_equivariant(lambda t: 2 * t, c4, x, "trivial", "trivial")
    assert report.worst_error == 0
    with pytest.warns(DeprecationWarning), pytest.raises(AssertionError, match="not equivariant under C4"):
        assert_equivariant(conv, c4, x, "trivial", "trivial")
    with pytest.warns(DeprecationWarning):
        old = assert_equivariant(lambda t: t, c4, torch.randn(2, 8, 5, 5), "regular", "regular", atol=0)
    assert old.worst_error == 0
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="finite group"):
        grid_action(SO2(), "regular")
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="unknown field type"):
        grid_action(c4, "vector")


def test_random_rotation():
    generator = torch.Generator().manual_seed(0)
    for dim in (2, 3):
        r = random_rotation(dim, generator)
        torch.testing.assert_close(r @ r.T, torch.eye(dim, dtype=torch.float64))
        assert torch.det(r) == pytest.approx(1.0)
    x = torch.randn(1, 1, 7, 7, dtype=torch.float64)
    assert transform_grid(x, random_rotation(2, generator)).shape == x.shape


def test_nan_and_inf_never_pass():
    c4 = trivial_field(cyclic(4), 1)
    x = torch.randn(1, 1, 5, 5, dtype=torch.float64)

    def nan_unless_original(t):  # fine on x itself, NaN on every moved copy
        return t if torch.equal(t, x) else t * float("nan")

    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(nan_unless_original, c4, c4, x)
    with pytest.raises(AssertionError, match="not finite"):
        assert_equivariant(lambda t: t * float("inf"), c4, c4, x, atol=1e-10)


def test_deprecation_warnings_point_at_the_caller():
    import warnings

    from fivefold.grids import GroupConv2d
    from fivefold.spheres import IcoConv

    for make in (lambda: GroupConv2d(1, 2, 3), lambda: IcoConv(1, 2)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            make()
        assert caught and all(w.filename == __file__ for w in caught), [w.filename for w in caught]
    with pytest.warns(DeprecationWarning):  # the older form keeps its old default bound, 1e-5
        report = assert_equivariant(lambda t: t, cyclic(4), torch.randn(1, 1, 5, 5))
    assert report.tolerance == 1e-5
