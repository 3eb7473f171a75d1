import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fivefold.groups import cyclic, trivial_field
from fivefold.testing import SAFETY, assert_close, assert_equivariant, collect_reports, float_tolerance


def test_rule_scales_with_epsilon_terms_and_output():
    eps32 = torch.finfo(torch.float32).eps
    assert float_tolerance(torch.float32, 1.0) == pytest.approx(SAFETY * eps32)
    assert float_tolerance(torch.float32, 6.0, terms=100) == pytest.approx(SAFETY * eps32 * 10 * 6.0)
    assert float_tolerance(torch.float64, 6.0, terms=100) < 1e-12
    # results smaller than 1 compare at the scale of unit inputs' rounding, never at 0
    assert float_tolerance(torch.float32, 0.0) == float_tolerance(torch.float32, 1.0)
    with pytest.raises(TypeError, match="floating"):
        float_tolerance(torch.int64, 1.0)
    with pytest.raises(ValueError, match="terms"):
        float_tolerance(torch.float32, 1.0, terms=0)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5000), st.integers(0, 2**31 - 1))
def test_rule_accepts_any_summation_order(terms, seed):
    """The rule's premise: summing the same float32 products in another order (sequentially from either end, or
    pairwise as blocked kernels do) stays within the tolerance of the result's scale (the largest of 32 outputs)."""
    generator = torch.Generator().manual_seed(seed)
    products = torch.randn(terms, 32, generator=generator) * torch.randn(terms, 32, generator=generator)
    exact = products.double().sum(0)
    tolerance = float_tolerance(torch.float32, float(exact.abs().max()), terms)
    for total in (products.cumsum(0)[-1], products.flip(0).cumsum(0)[-1], products.sum(0)):
        assert float((total.double() - exact).abs().max()) <= tolerance


def test_assert_close_passes_rounding_and_fails_real_errors():
    torch.manual_seed(0)
    weight = torch.randn(64, 32, dtype=torch.float64)
    x = torch.randn(16, 64, dtype=torch.float64)
    exact = x @ weight
    rounded = x.float() @ weight.float()
    error = assert_close(rounded, exact, terms=64)
    assert 0 < error <= float_tolerance(torch.float32, float(exact.abs().max()), 64)
    wrong = rounded.clone()
    wrong[3, 5] += 1e-3 * float(exact.abs().max())  # one output off by 0.1 % of the scale
    with pytest.raises(AssertionError, match="tolerance"):
        assert_close(wrong, exact, terms=64)
    with pytest.raises(AssertionError, match="tolerance"):
        assert_close(torch.full((2,), math.nan), torch.zeros(2))
    with pytest.raises(AssertionError, match="shapes"):
        assert_close(torch.zeros(2), torch.zeros(3))


def test_equivariance_uses_the_rule_and_reports_margins():
    torch.manual_seed(0)
    scalar = trivial_field(cyclic(4), 1)
    x = torch.randn(2, 1, 9, 9)
    with collect_reports() as reports:
        report = assert_equivariant(lambda t: 3 * t, scalar, scalar, x)
        with pytest.raises(AssertionError):  # a shift is not a rotation, in float32 too
            assert_equivariant(lambda t: t.roll(1, -1), scalar, scalar, x)
    assert report.tolerance == pytest.approx(float_tolerance(torch.float32, report.output_scale))
    assert report.margin == math.inf and report.dtype == torch.float32
    assert len(reports) == 2 and reports[1].worst_error > reports[1].tolerance
    # an explicit bound replaces the rule
    assert assert_equivariant(lambda t: t, scalar, scalar, x.double(), atol=1e-10).tolerance == 1e-10
