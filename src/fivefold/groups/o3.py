"""The rotation group SO(3), the orthogonal group O(3), their irreducible representations, real spherical harmonics
and Clebsch-Gordan coefficients: the field types of 3D point clouds and molecules.

Named as e3nn names them (Geiger & Smidt 2022, "e3nn: Euclidean Neural Networks"): the irreducible representation of
O(3) of degree ``l`` and parity ``p`` is ``"le"`` (``p = +1``, even) or ``"lo"`` (``p = -1``, odd), of dimension
``2l + 1``; a field type is written ``"8x0e + 4x1o + 2x2e"`` (``o3_irreps``). Scalars are ``0e``, vectors (positions,
forces) ``1o``, pseudovectors (a cross product) ``1e``, and the spherical harmonic of degree ``l`` is ``l`` with parity
``(-1)^l``.

Basis. Inside each irrep the ``2l + 1`` components are ordered ``m = -l .. l`` of the standard real spherical harmonics
(no Condon-Shortley phase) evaluated on the axes relabelled ``(x, y, z) -> (y, z, x)``: this is e3nn's choice, and it
makes the degree-1 harmonic the vector ``(x, y, z)`` itself, so ``D^1(R) = R``. Normalisation ``"component"``:
``sum_m Y_lm(u)^2 = 2l + 1`` for a unit vector ``u`` (e3nn's ``normalization="component"``, NequIP's choice).

The Wigner matrices ``D^l(R)`` are not tabulated from Euler angles: they are found from the harmonics themselves,
``D^l(R) = Y_l(R X) Y_l(X)^+`` for a fixed set ``X`` of generic unit vectors (``Y_l(R x) = D^l(R) Y_l(x)`` holds for
every ``x``, so the least-squares fit is exact up to rounding). The Clebsch-Gordan coefficients ``C^{l3}_{l1 l2}`` are
the null space of the equivariance constraint ``D^{l3}(R) C = C (D^{l1}(R) ⊗ D^{l2}(R))`` at a few random rotations;
they are real, unique up to sign, normalised to unit Frobenius norm, and cached.
"""

from __future__ import annotations

import math
import re
from functools import cache

import numpy as np
import torch
from torch import Tensor

from fivefold.errors import FieldError, GroupError, check_option
from fivefold.groups.fields import FieldType
from fivefold.groups.representations import Representation
from fivefold.groups.rotations import random_rotation

__all__ = ["SO3", "O3", "o3_irrep", "so3_irrep", "o3_irreps", "spherical_harmonics", "wigner_D",
           "clebsch_gordan", "irrep_slices"]

MAX_DEGREE = 8  # harmonics and Wigner matrices are built for 0 <= l <= MAX_DEGREE


def _check_degree(l: int, where: str) -> int:
    if isinstance(l, bool) or not isinstance(l, (int, np.integer)) or not 0 <= l <= MAX_DEGREE:
        raise GroupError(f"{where}: the degree l must be an integer in 0..{MAX_DEGREE}, got {l!r}")
    return int(l)


def _as_matrix(g, where: str) -> Tensor:
    """``g`` as a float64 CPU ``[3, 3]`` tensor, checked to be orthogonal (to 1e-5: float32 rotations pass)."""
    matrix = torch.as_tensor(g).detach().to("cpu", torch.float64)
    if matrix.shape != (3, 3):
        raise GroupError(f"{where}: an element of O(3) is a [3, 3] orthogonal matrix, got shape {tuple(matrix.shape)}")
    error = float((matrix.T @ matrix - torch.eye(3, dtype=torch.float64)).abs().max())
    if not error <= 1e-5:
        raise GroupError(f"{where}: the matrix is not orthogonal (max |g^T g - I| = {error:.3g}); an element of O(3) "
                         "is a rotation or a rotation times -1")
    return matrix


class O3:
    """The orthogonal group of 3D space (rotations and reflections); an element is a ``[3, 3]`` orthogonal matrix.

    ``sample`` draws Haar-random elements: a random rotation, multiplied by ``-I`` (a point reflection) with probability
    1/2, so that tests see both components of the group."""

    name = "O(3)"
    dim = 3
    short_labels = True  # representations print as "1o", not "1o(O(3))"

    @property
    def identity(self) -> Tensor:
        return torch.eye(3, dtype=torch.float64)

    def compose(self, a, b) -> Tensor:
        return _as_matrix(a, "compose") @ _as_matrix(b, "compose")

    def inverse(self, a) -> Tensor:
        return _as_matrix(a, "inverse").T.clone()

    def matrix(self, a) -> np.ndarray:
        return _as_matrix(a, "matrix").numpy()

    def sample(self, num: int, generator: torch.Generator | None = None) -> list[Tensor]:
        out = []
        for _ in range(num):
            rotation = random_rotation(3, generator)
            flip = bool(torch.rand(1, generator=generator) < 0.5)
            out.append(-rotation if flip else rotation)
        return out

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return self.name


class SO3(O3):
    """The rotation group of 3D space; an element is a ``[3, 3]`` rotation matrix (determinant +1)."""

    name = "SO(3)"

    def sample(self, num: int, generator: torch.Generator | None = None) -> list[Tensor]:
        return [random_rotation(3, generator) for _ in range(num)]


# ----- real spherical harmonics --------------------------------------------------------------------------------------
def _legendre_coefficients(l: int, m: int) -> list[tuple[float, int, int]]:
    """Terms ``(c, a, b)`` of ``Pi_l^m(z, r) = sum c r^a z^b``: the z-part of the real harmonic in Cartesian form,
    ``sqrt((l-m)!/(l+m)!) sum_k (-1)^k 2^-l C(l,k) C(2l-2k,l) (l-2k)!/(l-2k-m)! r^(2k) z^(l-2k-m)``."""
    norm = math.sqrt(math.factorial(l - m) / math.factorial(l + m))
    terms = []
    for k in range((l - m) // 2 + 1):
        c = ((-1) ** k) * 2.0 ** (-l) * math.comb(l, k) * math.comb(2 * l - 2 * k, l) \
            * math.factorial(l - 2 * k) / math.factorial(l - 2 * k - m)
        terms.append((norm * c, 2 * k, l - 2 * k - m))
    return terms


def _harmonics(lmax: int, x: Tensor, y: Tensor, z: Tensor, r2: Tensor) -> list[Tensor]:
    """Standard real harmonics (axes as given), component-normalised, degrees 0..lmax, each ``[..., 2l + 1]``.

    Polynomials of degree l in (x, y, z) (r2 = x^2 + y^2 + z^2 enters only through even powers), so they are smooth
    everywhere, including at the origin."""
    # A_m + i B_m = (x + i y)^m
    a, b = [torch.ones_like(x)], [torch.zeros_like(x)]
    for _ in range(lmax):
        a_prev, b_prev = a[-1], b[-1]
        a.append(x * a_prev - y * b_prev)
        b.append(x * b_prev + y * a_prev)
    z_powers = [torch.ones_like(z)]
    r2_powers = [torch.ones_like(z)]
    for _ in range(lmax):
        z_powers.append(z_powers[-1] * z)
        r2_powers.append(r2_powers[-1] * r2)
    out = []
    for l in range(lmax + 1):
        scale = math.sqrt(2 * l + 1)
        components = []
        for m in range(-l, l + 1):
            pi = sum(c * r2_powers[p // 2] * z_powers[q] for c, p, q in _legendre_coefficients(l, abs(m)))
            if m == 0:
                components.append(scale * pi)
            elif m > 0:
                components.append(scale * math.sqrt(2.0) * pi * a[m])
            else:
                components.append(scale * math.sqrt(2.0) * pi * b[-m])
        out.append(torch.stack(components, dim=-1))
    return out


def spherical_harmonics(lmax: int, vectors: Tensor, *, normalize: bool = True,
                        normalization: str = "component") -> Tensor:
    """Real spherical harmonics of degrees ``0..lmax`` of ``vectors``, concatenated: ``[..., (lmax + 1)^2]``.

    Args:
        lmax: the highest degree (``0 <= lmax <= 8``).
        vectors: ``[..., 3]`` (x, y, z).
        normalize: evaluate on ``vectors / |vectors|`` (the angular part only; a zero vector gives 0 for l > 0). When
            False the harmonics are the homogeneous polynomials ``|v|^l Y_l(v / |v|)``.
        normalization: ``"component"`` (``sum_m Y_lm^2 = 2l + 1`` on the unit sphere), ``"norm"`` (``= 1``) or
            ``"integral"`` (orthonormal on the sphere: ``= (2l + 1) / (4 pi)``).

    Equivariance: ``spherical_harmonics(l, v @ R.T) = spherical_harmonics(l, v) @ D(R).T`` with ``D = wigner_D``,
    also for reflections (degree ``l`` has parity ``(-1)^l``).
    """
    lmax = _check_degree(lmax, "spherical_harmonics")
    check_option(normalization, ("component", "norm", "integral"), "normalization", "spherical_harmonics")
    if not isinstance(vectors, Tensor) or vectors.shape[-1:] != (3,):
        raise FieldError(f"spherical_harmonics: vectors must be a tensor [..., 3], got "
                         f"{tuple(vectors.shape) if isinstance(vectors, Tensor) else type(vectors).__name__}")
    if normalize:
        length = vectors.norm(dim=-1, keepdim=True)
        vectors = vectors / torch.where(length > 0, length, torch.ones_like(length))
    # e3nn's basis: the standard harmonics on relabelled axes (x, y, z) -> (y, z, x), so that degree 1 is (x, y, z)
    x, y, z = vectors[..., 2], vectors[..., 0], vectors[..., 1]
    r2 = (vectors * vectors).sum(-1)
    parts = _harmonics(lmax, x, y, z, r2)
    if normalization == "norm":
        parts = [p / math.sqrt(2 * l + 1) for l, p in enumerate(parts)]
    elif normalization == "integral":
        parts = [p / math.sqrt(4 * math.pi) for p in parts]
    return torch.cat(parts, dim=-1)


# ----- Wigner matrices and Clebsch-Gordan coefficients ---------------------------------------------------------------
@cache
def _fit_points(l: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed generic unit vectors X ``[P, 3]`` and the pseudo-inverse of ``Y_l(X)`` (``[P, 2l+1]``) used to read off
    Wigner matrices."""
    rng = np.random.default_rng(12345 + l)
    points = rng.standard_normal((4 * (2 * l + 1), 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    values = spherical_harmonics(l, torch.from_numpy(points))[:, l * l:].numpy()
    return points, np.linalg.pinv(values)


def wigner_D(l: int, g) -> Tensor:
    """``[2l + 1, 2l + 1]`` float64: the matrix of the O(3) element ``g`` (a ``[3, 3]`` orthogonal matrix) on the
    degree-``l`` harmonics, ``Y_l(R x) = D^l(R) Y_l(x)``. For a reflection it includes the harmonics' parity
    ``(-1)^l``; ``o3_irrep`` applies the parity of the irrep instead."""
    l = _check_degree(l, "wigner_D")
    matrix = _as_matrix(g, "wigner_D")
    if l == 0:
        return torch.ones(1, 1, dtype=torch.float64)
    points, inverse = _fit_points(l)
    rotated = torch.from_numpy(points) @ matrix.T
    values = spherical_harmonics(l, rotated)[:, l * l:]
    return (values.T @ torch.from_numpy(inverse).T).contiguous()


def _proper(matrix: Tensor) -> tuple[Tensor, bool]:
    """``(R, reflected)`` with ``g = R`` or ``g = -R`` and ``R`` a rotation."""
    if torch.det(matrix) < 0:
        return -matrix, True
    return matrix, False


def o3_irrep(l: int, parity: int) -> Representation:
    """The irreducible representation ``"le"`` (``parity = 1``) or ``"lo"`` (``parity = -1``) of O(3):
    ``rho(R) = D^l(R)`` for a rotation and ``rho(-R) = parity * D^l(R)``."""
    l = _check_degree(l, "o3_irrep")
    if parity not in (1, -1):
        raise GroupError(f"o3_irrep: parity must be 1 (even, 'e') or -1 (odd, 'o'), got {parity!r}")

    def rho(g) -> Tensor:
        rotation, reflected = _proper(_as_matrix(g, "o3_irrep"))
        d = wigner_D(l, rotation)
        return -d if reflected and parity == -1 else d

    return Representation(f"{l}{'e' if parity == 1 else 'o'}", O3(), dim=2 * l + 1, function=rho)


def so3_irrep(l: int) -> Representation:
    """The irreducible representation of SO(3) of degree ``l`` (named ``"l"``): ``rho(R) = D^l(R)``."""
    l = _check_degree(l, "so3_irrep")

    def rho(g) -> Tensor:
        matrix = _as_matrix(g, "so3_irrep")
        if torch.det(matrix) < 0:
            raise GroupError("so3_irrep: the element is a reflection (det -1), not a rotation; use o3_irrep")
        return wigner_D(l, matrix)

    return Representation(str(l), SO3(), dim=2 * l + 1, function=rho)


_TERM = re.compile(r"^\s*(?:(\d+)\s*x\s*)?(\d+)([eo])\s*$")


def o3_irreps(spec: str) -> FieldType:
    """A field type of O(3) from e3nn's notation: ``o3_irreps("8x0e + 4x1o + 2x2e")`` is 8 scalars, 4 vectors and
    2 even degree-2 fields (8 + 12 + 10 = 30 channels), in that order. Each copy of an irrep is one field; ``repr``
    prints ``8×0e ⊕ 4×1o ⊕ 2×2e``."""
    if not isinstance(spec, str) or not spec.strip():
        raise FieldError(f"o3_irreps: give a string such as '8x0e + 4x1o', got {spec!r}")
    reprs: list[Representation] = []
    for term in spec.split("+"):
        match = _TERM.match(term)
        if match is None:
            raise FieldError(f"o3_irreps: cannot read {term.strip()!r} in {spec!r}; write terms like '4x1o' or '2e'")
        count = int(match.group(1) or 1)
        if count < 1:
            raise FieldError(f"o3_irreps: {term.strip()!r} has multiplicity 0")
        reprs += [o3_irrep(int(match.group(2)), 1 if match.group(3) == "e" else -1)] * count
    return FieldType(O3(), reprs)


def irrep_slices(field_type: FieldType) -> list[tuple[str, slice]]:
    """``[(name, channels)]``: where each field of an O(3)/SO(3) field type sits on the channel axis."""
    out, start = [], 0
    for rep in field_type.reprs:
        out.append((rep.name, slice(start, start + rep.dim)))
        start += rep.dim
    return out


@cache
def _clebsch_gordan(l1: int, l2: int, l3: int) -> np.ndarray:
    generator = torch.Generator().manual_seed(7 + 100 * l1 + 10 * l2 + l3)
    d1, d2, d3 = 2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1
    blocks = []
    for _ in range(3):
        rotation = random_rotation(3, generator)
        a = torch.kron(wigner_D(l1, rotation), wigner_D(l2, rotation)).numpy()  # [d1 d2, d1 d2]
        b = wigner_D(l3, rotation).numpy()  # [d3, d3]
        # vec(C) with C [d3, d1 d2]: D3 C - C A = 0  ->  (I ⊗ D3 - A^T ⊗ I) vec_col(C) = 0
        blocks.append(np.kron(np.eye(d1 * d2), b) - np.kron(a.T, np.eye(d3)))
    _, singular, vt = np.linalg.svd(np.concatenate(blocks), full_matrices=False)
    solution = vt[-1].reshape(d1 * d2, d3).T  # column-major vec -> C [d3, d1 d2]
    if singular[-1] > 1e-9 or (len(singular) > 1 and singular[-2] < 1e-6):
        raise GroupError(f"clebsch_gordan: no unique coupling of degrees {l1} and {l2} to {l3}")
    c = solution.reshape(d3, d1, d2).transpose(1, 2, 0)  # [d1, d2, d3]
    c /= np.linalg.norm(c)
    first = c.flat[np.argmax(np.abs(c) > 1e-9)]  # fix the sign: the first non-zero entry is positive
    c = np.where(np.abs(c) < 1e-14, 0.0, c * np.sign(first))
    c.setflags(write=False)
    return c


def clebsch_gordan(l1: int, l2: int, l3: int) -> Tensor:
    """``[2l1+1, 2l2+1, 2l3+1]`` float64 coupling coefficients: ``z_k = sum_ij C_ijk x_i y_j`` maps a degree-``l1``
    field ``x`` and a degree-``l2`` field ``y`` to a degree-``l3`` field, equivariantly
    (``|l1 - l2| <= l3 <= l1 + l2``).
    Unit Frobenius norm. Parity: the product has parity ``p1 p2``."""
    l1, l2, l3 = (_check_degree(v, "clebsch_gordan") for v in (l1, l2, l3))
    if not abs(l1 - l2) <= l3 <= l1 + l2:
        raise GroupError(f"clebsch_gordan: degrees {l1} and {l2} do not couple to {l3} (need |l1-l2| <= l3 <= l1+l2)")
    return torch.from_numpy(_clebsch_gordan(l1, l2, l3).copy())
