"""Group representations: the trivial, the regular, and the irreducible ones of C_n, D_n and SO(2).

A representation ``rho`` assigns to each element ``g`` an invertible matrix with ``rho(a b) = rho(a) rho(b)``. It says
how a group element mixes the channels of a feature field: scalar (trivial) fields are left alone, regular fields are
permuted (``rho(g) e_h = e_{gh}``, the representation G-CNNs use), and the irreducible ones are the frequencies of
steerable filters (Cohen & Welling 2017, "Steerable CNNs"; Weiler & Cesa 2019, "General E(2)-Equivariant Steerable
CNNs").

Irreducible representations (``R(t)`` is the 2x2 rotation by ``t``; element ``R^r F^m`` as in ``dihedral``):
- C_n, frequency ``k``: ``k = 0`` trivial; ``k = n / 2`` (n even) the sign ``(-1)^r``; otherwise ``R(2 pi k r / n)``.
- D_n: ``(0, 0)`` trivial; ``(1, 0)`` the reflection sign ``(-1)^m``; for ``0 < k < n / 2`` the 2D
  ``R(2 pi k r / n) diag(1, -1)^m``; for n even also ``(0, n/2)``: ``(-1)^r`` and ``(1, n/2)``: ``(-1)^(r + m)``.
- SO(2), frequency ``k``: ``1`` for ``k = 0``, else ``R(k t)`` for the rotation by angle ``t``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from fivefold.errors import GroupError
from fivefold.groups.finite import FiniteGroup

__all__ = ["Representation", "trivial_representation", "regular_representation", "irreps", "SO2", "so2_irrep"]


class Representation:
    """A representation of a group: ``rho(g)``, an invertible ``dim x dim`` matrix with ``rho(a b) = rho(a) rho(b)``.

    For a finite group it is tabulated (``matrices[g]`` is ``rho(g)``); for a continuous group (``SO2()``; SO(3) and
    O(3) later) it is a function of the element.

    Args:
        name: what it is (``"trivial"``, ``"regular"``, ``"irrep(1)"``); ``label`` adds the group.
        group: the group represented.
        matrices: ``[order, dim, dim]`` float64, for a finite group.
        dim, function: for a continuous group, the dimension and ``g -> [dim, dim]`` float64 tensor.
    """

    def __init__(self, name: str, group, matrices: np.ndarray | None = None, *, dim: int | None = None,
                 function=None) -> None:
        self.name = name
        self.group = group
        if matrices is not None:
            matrices = np.array(matrices, dtype=np.float64)
            if matrices.ndim != 3 or matrices.shape[0] != group.order or matrices.shape[1] != matrices.shape[2]:
                raise GroupError(f"representation {name} of {group.name}: matrices must be [{group.order}, d, d], "
                                 f"got {tuple(matrices.shape)}")
            matrices.setflags(write=False)
            self._matrices, self._dim, self._function = matrices, matrices.shape[1], None
        else:
            if function is None or isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
                raise GroupError(f"representation {name} of {group.name}: give matrices (finite group), or dim >= 1 "
                                 f"and a function (continuous group)")
            self._matrices, self._dim, self._function = None, dim, function

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def is_finite(self) -> bool:
        """Whether it is tabulated (a representation of a finite group)."""
        return self._matrices is not None

    @property
    def matrices(self) -> Tensor:
        """``[order, dim, dim]`` float64 (finite groups only)."""
        if self._matrices is None:
            raise GroupError(f"{self.label}: a representation of a continuous group has no table; call it on an "
                             f"element instead")
        return torch.from_numpy(self._matrices.copy())

    def __call__(self, g) -> Tensor:
        if self._matrices is not None:
            return torch.from_numpy(self._matrices[self.group._check(g)].copy())
        return self._function(g)

    @property
    def is_permutation(self) -> bool:
        """Whether every ``rho(g)`` is a permutation matrix (trivial and regular representations): it then acts on
        channels by reindexing, exactly."""
        if self._matrices is None:
            return self.name == "trivial"
        m = self._matrices
        return bool(np.isin(m, (0.0, 1.0)).all() and (m.sum(axis=1) == 1).all() and (m.sum(axis=2) == 1).all())

    @property
    def label(self) -> str:
        """How it reads inside a field type: ``trivial``, ``regular(C4)``, ``irrep1(C8)``, ``irrep1,0(D4)``."""
        if self.name == "trivial":
            return "trivial"
        if getattr(self.group, "short_labels", False):  # O(3) irreps print as e3nn writes them: "1o"
            return self.name
        return f"{self.name.replace('(', '').replace(')', '')}({self.group.name})"

    def character(self) -> np.ndarray:
        """``[order]`` traces ``chi(g) = tr rho(g)`` (finite groups only)."""
        return np.trace(self.matrices.numpy(), axis1=1, axis2=2)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Representation):
            return NotImplemented
        if self is other:
            return True
        if (self.name, self.dim, self.is_finite) != (other.name, other.dim, other.is_finite) or \
                self.group != other.group:
            return False
        return not self.is_finite or np.array_equal(self._matrices, other._matrices)

    def __hash__(self) -> int:
        return hash((self.name, self.group.name, self.dim))

    def __repr__(self) -> str:
        return f"{self.name} of {self.group.name} (dim {self.dim})"


def trivial_representation(group) -> Representation:
    """``rho(g) = 1``: scalar fields (of a finite group, or of a continuous one such as ``SO2()``)."""
    if isinstance(group, FiniteGroup):
        return Representation("trivial", group, np.ones((group.order, 1, 1)))
    return Representation("trivial", group, dim=1, function=lambda g: torch.ones(1, 1, dtype=torch.float64))


def regular_representation(group: FiniteGroup) -> Representation:
    """``rho(g) e_h = e_{gh}``: the |G| x |G| permutation matrices of left multiplication."""
    order = group.order
    matrices = np.zeros((order, order, order))
    table = group.cayley_table
    for g in range(order):
        matrices[g, table[g], np.arange(order)] = 1.0
    return Representation("regular", group, matrices)


def irreps(group: FiniteGroup) -> list[Representation]:
    """All irreducible real representations of C_n or D_n, in the order listed in the module docstring."""
    n = group.n
    if group.family == "cyclic":
        return [_cyclic_irrep(group, k) for k in range(n // 2 + 1)]
    if group.family == "dihedral":
        found = [_dihedral_irrep(group, 0, 0), _dihedral_irrep(group, 1, 0)]
        found += [_dihedral_irrep(group, 1, k) for k in range(1, (n + 1) // 2)]
        if n % 2 == 0:
            found += [_dihedral_irrep(group, 0, n // 2), _dihedral_irrep(group, 1, n // 2)]
        return found
    raise GroupError(f"irreps: only cyclic and dihedral groups are tabulated, not {group.name}")


def _rotation(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def _cyclic_irrep(group: FiniteGroup, k: int) -> Representation:
    n = group.n
    if k == 0:
        return Representation("irrep(0)", group, np.ones((n, 1, 1)))
    if 2 * k == n:
        return Representation(f"irrep({k})", group, np.array([[[(-1.0) ** r]] for r in range(n)]))
    return Representation(f"irrep({k})", group, np.stack([_rotation(2 * math.pi * k * r / n) for r in range(n)]))


def _dihedral_irrep(group: FiniteGroup, j: int, k: int) -> Representation:
    n = group.n
    elements = [(r, m) for m in range(2) for r in range(n)]
    if k == 0:
        values = [[[(-1.0) ** (j * m)]] for r, m in elements]
    elif 2 * k == n:
        values = [[[(-1.0) ** (r + j * m)]] for r, m in elements]
    else:
        flip = np.diag([1.0, -1.0])
        values = [_rotation(2 * math.pi * k * r / n) @ np.linalg.matrix_power(flip, m) for r, m in elements]
    return Representation(f"irrep({j},{k})", group, np.array(values, dtype=np.float64))


class SO2:
    """The rotation group of the plane; an element is an angle in radians. Used to test steerable layers on
    random rotations (``assert_equivariant`` samples it)."""

    name = "SO(2)"
    dim = 2
    identity = 0.0

    def compose(self, a: float, b: float) -> float:
        return math.remainder(a + b, 2 * math.pi)

    def inverse(self, a: float) -> float:
        return math.remainder(-a, 2 * math.pi)

    def matrix(self, a: float) -> np.ndarray:
        return _rotation(a)

    def sample(self, num: int, generator: torch.Generator | None = None) -> list[float]:
        """``num`` angles drawn uniformly from ``[0, 2 pi)``."""
        return (torch.rand(num, generator=generator, dtype=torch.float64) * 2 * math.pi).tolist()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SO2)

    def __hash__(self) -> int:
        return hash("SO(2)")

    def __repr__(self) -> str:
        return "SO(2)"


def so2_irrep(frequency: int) -> Representation:
    """The irreducible representation of SO(2) of integer ``frequency >= 0``: angle -> ``[d, d]`` (``d = 1`` for
    frequency 0, else 2), named ``irrep(k)``; it can be called on an angle like a function."""
    if isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 0:
        raise GroupError(f"so2_irrep: frequency must be a non-negative integer, got {frequency!r}")

    def rho(angle: float) -> Tensor:
        if frequency == 0:
            return torch.ones(1, 1, dtype=torch.float64)
        return torch.from_numpy(_rotation(frequency * angle))

    return Representation(f"irrep({frequency})", SO2(), dim=1 if frequency == 0 else 2, function=rho)
