"""SO(3)/O(3): real spherical harmonics, Wigner matrices, irreps as field types, Clebsch-Gordan coefficients. Exactness
in float64."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fivefold.errors import FieldError, GroupError, OptionError
from fivefold.groups import (
    O3,
    SO3,
    clebsch_gordan,
    irrep_slices,
    o3_irrep,
    o3_irreps,
    random_rotation,
    so3_irrep,
    spherical_harmonics,
    wigner_D,
)

EYE = torch.eye(3, dtype=torch.float64)


def _element(seed: int, reflect: bool) -> torch.Tensor:
    rotation = random_rotation(3, torch.Generator().manual_seed(seed))
    return -rotation if reflect else rotation


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), reflect=st.booleans(), lmax=st.integers(0, 5))
def test_harmonics_are_equivariant_under_o3(seed, reflect, lmax):
    g = _element(seed, reflect)
    vectors = torch.randn(40, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed + 1))
    y = spherical_harmonics(lmax, vectors)
    moved = spherical_harmonics(lmax, vectors @ g.T)
    for l in range(lmax + 1):
        block = slice(l * l, (l + 1) ** 2)
        expected = y[:, block] @ wigner_D(l, g).T
        assert torch.allclose(moved[:, block], expected, atol=1e-12, rtol=0)
        if reflect:  # the harmonic of degree l has parity (-1)^l
            assert torch.allclose(spherical_harmonics(lmax, -vectors)[:, block], (-1) ** l * y[:, block], atol=1e-13)


def test_harmonics_match_written_out_formulas():
    """Degrees 1 and 2 in e3nn's basis (standard real harmonics on axes relabelled (x, y, z) -> (y, z, x)),
    component normalisation."""
    v = torch.randn(30, 3, dtype=torch.float64)
    u = v / v.norm(dim=1, keepdim=True)
    x, y, z = u.unbind(1)
    y1 = math.sqrt(3) * torch.stack([x, y, z], dim=1)
    s15, s5 = math.sqrt(15), math.sqrt(5)
    y2 = torch.stack([s15 * z * x, s15 * x * y, s5 / 2 * (3 * y * y - 1), s15 * y * z, s15 / 2 * (z * z - x * x)],
                     dim=1)
    sh = spherical_harmonics(2, v)
    assert torch.allclose(sh[:, 0], torch.ones(30, dtype=torch.float64))
    assert torch.allclose(sh[:, 1:4], y1, atol=1e-14)
    assert torch.allclose(sh[:, 4:9], y2, atol=1e-13)


@pytest.mark.parametrize("normalization,expected", [("component", lambda l: 2 * l + 1), ("norm", lambda l: 1.0),
                                                    ("integral", lambda l: (2 * l + 1) / (4 * math.pi))])
def test_harmonics_normalisations(normalization, expected):
    sh = spherical_harmonics(4, torch.randn(50, 3, dtype=torch.float64), normalization=normalization)
    for l in range(5):
        total = sh[:, l * l:(l + 1) ** 2].pow(2).sum(1)
        assert torch.allclose(total, torch.full_like(total, expected(l)), atol=1e-12)


def test_harmonics_are_orthonormal_on_the_sphere():
    """Monte Carlo over 400,000 uniform directions: the Gram matrix of the "integral" harmonics is the identity."""
    u = torch.randn(400_000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y = spherical_harmonics(3, u, normalization="integral")
    gram = (y.T @ y) / u.shape[0] * 4 * math.pi
    assert (gram - torch.eye(16, dtype=torch.float64)).abs().max() < 0.02


def test_unnormalised_harmonics_are_homogeneous_polynomials_with_gradients():
    v = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    scaled = spherical_harmonics(2, 2.5 * v.detach(), normalize=False)
    base = spherical_harmonics(2, v.detach(), normalize=False)
    for l in range(3):
        assert torch.allclose(scaled[:, l * l:(l + 1) ** 2], 2.5**l * base[:, l * l:(l + 1) ** 2])
    assert torch.autograd.gradcheck(lambda t: spherical_harmonics(3, t), (v,))
    assert torch.autograd.gradcheck(lambda t: spherical_harmonics(3, t, normalize=False), (v,))


@pytest.mark.parametrize("l", range(5))
def test_wigner_matrices_form_an_orthogonal_representation(l):
    a, b = _element(1, False), _element(2, True)
    da, db = wigner_D(l, a), wigner_D(l, b)
    assert torch.allclose(wigner_D(l, a @ b), da @ db, atol=1e-12)
    assert torch.allclose(da @ da.T, torch.eye(2 * l + 1, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(wigner_D(l, EYE), torch.eye(2 * l + 1, dtype=torch.float64), atol=1e-12)
    if l == 1:
        assert torch.allclose(da, a, atol=1e-13)  # degree 1 is the vector itself


def test_o3_irreps_act_with_their_parity():
    g = _element(3, True)  # a reflection: -R
    rotation = -g
    assert torch.allclose(o3_irrep(1, -1)(g), g, atol=1e-13)  # a vector (1o) is reflected
    assert torch.allclose(o3_irrep(1, 1)(g), rotation, atol=1e-13)  # a pseudovector (1e) is not
    assert torch.allclose(o3_irrep(0, -1)(g), -torch.ones(1, 1, dtype=torch.float64))
    assert torch.allclose(o3_irrep(2, 1)(g), wigner_D(2, rotation), atol=1e-13)
    assert torch.allclose(so3_irrep(2)(rotation), wigner_D(2, rotation))
    with pytest.raises(GroupError, match="reflection"):
        so3_irrep(1)(g)


def test_o3_irreps_field_types_read_like_e3nn():
    hidden = o3_irreps("8x0e + 4x1o + 2x2e")
    assert hidden.size == 8 + 12 + 10 and len(hidden) == 14
    assert repr(hidden) == "8×0e ⊕ 4×1o ⊕ 2×2e"
    assert hidden.group == O3() and O3() != SO3()
    assert o3_irreps("1o") + o3_irreps("0e") == o3_irreps("1x1o + 0e")
    names = [name for name, _ in irrep_slices(o3_irreps("2x0e + 1o"))]
    assert names == ["0e", "0e", "1o"] and irrep_slices(o3_irreps("1o + 2e"))[1][1] == slice(3, 8)
    g = _element(4, True)
    x = torch.randn(5, hidden.size, dtype=torch.float64)
    moved = hidden.transform(x, g, dim=1)
    assert torch.allclose(moved[:, :8], x[:, :8])  # scalars unchanged
    assert torch.allclose(moved[:, 8:11], x[:, 8:11] @ g.T, atol=1e-13)  # vectors rotate and reflect
    back = hidden.transform(moved, O3().inverse(g), dim=1)
    assert torch.allclose(back, x, atol=1e-12)


@pytest.mark.parametrize("spec", ["", "8x0", "3xe", "0x1o", "1o +", "x1o", "1q"])
def test_bad_irreps_strings_are_refused(spec):
    with pytest.raises(FieldError):
        o3_irreps(spec)


def test_bad_degrees_and_elements_are_refused():
    with pytest.raises(GroupError):
        o3_irrep(-1, 1)
    with pytest.raises(GroupError):
        o3_irrep(1, 0)
    with pytest.raises(GroupError):
        wigner_D(1, torch.eye(2))
    with pytest.raises(GroupError, match="not orthogonal"):
        wigner_D(1, 2 * torch.eye(3))
    with pytest.raises(GroupError):
        clebsch_gordan(1, 1, 3)
    with pytest.raises(FieldError):
        spherical_harmonics(2, torch.randn(4, 2))
    with pytest.raises(OptionError):
        spherical_harmonics(2, torch.randn(4, 3), normalization="unit")


TRIPLES = [(a, b, c) for a in range(3) for b in range(3) for c in range(abs(a - b), a + b + 1)]


@pytest.mark.parametrize("l1,l2,l3", TRIPLES)
def test_clebsch_gordan_couplings_are_equivariant(l1, l2, l3):
    c = clebsch_gordan(l1, l2, l3)
    assert c.shape == (2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1)
    assert abs(float(c.norm()) - 1.0) < 1e-12
    g = _element(5, False)
    x = torch.randn(2 * l1 + 1, dtype=torch.float64)
    y = torch.randn(2 * l2 + 1, dtype=torch.float64)
    z = torch.einsum("i,j,ijk->k", x, y, c)
    moved = torch.einsum("i,j,ijk->k", wigner_D(l1, g) @ x, wigner_D(l2, g) @ y, c)
    assert torch.allclose(moved, wigner_D(l3, g) @ z, atol=1e-12)


def test_clebsch_gordan_recovers_the_dot_and_cross_products():
    x, y = torch.randn(3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    dot = torch.einsum("i,j,ijk->k", x, y, clebsch_gordan(1, 1, 0))
    assert torch.allclose(dot, (x @ y / math.sqrt(3)).reshape(1), atol=1e-13)
    cross = torch.einsum("i,j,ijk->k", x, y, clebsch_gordan(1, 1, 1))
    expected = torch.linalg.cross(x, y) / math.sqrt(6)
    assert torch.allclose(cross, expected, atol=1e-13) or torch.allclose(cross, -expected, atol=1e-13)
