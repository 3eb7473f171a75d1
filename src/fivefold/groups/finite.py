"""Finite groups as data: elements, their composition (Cayley table), inverses and their action on coordinates.

Every group here is a finite group of orthogonal ``d x d`` matrices (``d = 2`` for the plane, ``3`` for space): the
element ``g`` acts on a coordinate vector ``p`` by ``p -> M_g p``. Elements are the integers ``0 .. order - 1``, with
``0`` the identity; ``compose(a, b)`` is the element whose matrix is ``M_a @ M_b`` (first ``b``, then ``a``).

Groups:
- ``cyclic(n)``: C_n, rotations by ``2 pi k / n``; element ``k``.
- ``dihedral(n)``: D_n, rotations and reflections; element ``m * n + k`` is ``R^k F^m`` with ``F`` the reflection
  ``diag(1, -1)`` (the second coordinate changes sign).
- ``cube_rotations()``: O, the 24 rotations of the cube (signed permutation matrices of determinant 1).
- ``cube_symmetries()``: O_h, O with reflections (all 48 signed permutation matrices; element ``24 + k`` is ``-M_k``).
- ``icosahedral_rotations()``: I, the 60 rotations of the icosahedron with vertices ``(0, +-1, +-phi)`` and their
  cyclic permutations.
- ``trivial(dim)``: the group with one element, so that an ordinary CNN is a G-CNN for it.

Groups whose matrices are signed permutations (C_1, C_2, C_4, D_1, D_2, D_4, O, O_h) map the pixel/voxel grid onto
itself: their action on grids is exact (``FiniteGroup.acts_exactly_on_grids``).
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from fivefold.errors import GroupError

__all__ = [
    "FiniteGroup", "cyclic", "dihedral", "cube_rotations", "cube_symmetries", "icosahedral_rotations", "trivial",
]

_MATCH_TOLERANCE = 1e-8


class FiniteGroup:
    """A finite group of orthogonal matrices, identified by its elements ``0 .. order - 1``.

    Args:
        name: how the group prints (``"C4"``, ``"D4"``, ``"O"``).
        matrices: ``[order, d, d]`` orthogonal matrices, the identity first; they must be closed under products.
        family: ``"cyclic"``, ``"dihedral"`` or ``None``; with ``n`` it names the irreducible representations.
        n: the ``n`` of C_n / D_n.
    """

    def __init__(self, name: str, matrices: np.ndarray, family: str | None = None, n: int | None = None) -> None:
        matrices = np.asarray(matrices, dtype=np.float64)
        if matrices.ndim != 3 or matrices.shape[1] != matrices.shape[2] or matrices.shape[0] < 1:
            raise GroupError(f"group {name}: matrices must have shape [order, d, d], got {tuple(matrices.shape)}")
        dim = matrices.shape[1]
        if not np.allclose(matrices[0], np.eye(dim), atol=_MATCH_TOLERANCE):
            raise GroupError(f"group {name}: element 0 must be the identity matrix")
        gram = np.einsum("gij,gkj->gik", matrices, matrices)
        if not np.allclose(gram, np.eye(dim), atol=1e-9):
            raise GroupError(f"group {name}: matrices must be orthogonal (M M^T = I)")
        self.name = name
        self.family = family
        self.n = n
        self._matrices = matrices
        self._matrices.setflags(write=False)
        self._cayley = _cayley_table(name, matrices)
        self._inverses = np.argmax(self._cayley == 0, axis=1)

    # -- the group as data ------------------------------------------------------------------------------------------
    @property
    def order(self) -> int:
        """Number of elements |G|."""
        return self._matrices.shape[0]

    @property
    def dim(self) -> int:
        """Dimension d of the space the group acts on (2 for images, 3 for volumes)."""
        return self._matrices.shape[1]

    @property
    def elements(self) -> range:
        """The elements, ``0 .. order - 1`` (0 is the identity)."""
        return range(self.order)

    @property
    def identity(self) -> int:
        return 0

    @property
    def cayley_table(self) -> np.ndarray:
        """``[order, order]`` int array: ``table[a, b] = compose(a, b)``. Read-only."""
        view = self._cayley.view()
        view.setflags(write=False)
        return view

    @property
    def inverses(self) -> np.ndarray:
        """``[order]`` int array: ``inverses[a] = inverse(a)``."""
        view = self._inverses.view()
        view.setflags(write=False)
        return view

    def compose(self, a: int, b: int) -> int:
        """The product ``a b`` (apply ``b`` first, then ``a``): ``M_{ab} = M_a M_b``."""
        return int(self._cayley[self._check(a), self._check(b)])

    def inverse(self, a: int) -> int:
        """The element ``a^-1`` with ``compose(a, inverse(a)) == identity``."""
        return int(self._inverses[self._check(a)])

    def matrix(self, a: int) -> np.ndarray:
        """The ``[d, d]`` orthogonal matrix by which ``a`` acts on coordinates."""
        return self._matrices[self._check(a)].copy()

    @property
    def matrices(self) -> Tensor:
        """All matrices, ``[order, d, d]`` float64."""
        return torch.from_numpy(self._matrices.copy())

    @cached_property
    def acts_exactly_on_grids(self) -> bool:
        """True when every matrix is a signed permutation, so the group maps a centred grid onto itself."""
        rounded = np.round(self._matrices)
        if not np.allclose(rounded, self._matrices, atol=1e-9):
            return False
        return bool(np.all(np.abs(rounded).sum(axis=1) == 1) and np.all(np.abs(rounded).sum(axis=2) == 1))

    def sample(self, num: int, generator: torch.Generator | None = None) -> list[int]:
        """``num`` elements drawn uniformly with replacement."""
        return torch.randint(self.order, (num,), generator=generator).tolist()

    def _check(self, a: int) -> int:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not 0 <= a < self.order:
            raise GroupError(f"{self.name}: element {a!r} is not one of 0 .. {self.order - 1}")
        return int(a)

    def __repr__(self) -> str:
        return f"{self.name} (order {self.order}, acting on R^{self.dim})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FiniteGroup):
            return NotImplemented
        return self.name == other.name and np.array_equal(self._matrices, other._matrices)

    def __hash__(self) -> int:
        return hash((self.name, self.order, self.dim))


def _cayley_table(name: str, matrices: np.ndarray) -> np.ndarray:
    order = matrices.shape[0]
    flat = matrices.reshape(order, -1)
    products = np.einsum("aij,bjk->abik", matrices, matrices).reshape(order * order, -1)
    distance = ((products[:, None, :] - flat[None, :, :]) ** 2).sum(-1)
    table = distance.argmin(axis=1)
    if distance[np.arange(order * order), table].max() > _MATCH_TOLERANCE:
        raise GroupError(f"group {name}: the matrices are not closed under multiplication")
    table = table.reshape(order, order)
    if any(len(set(row)) != order for row in table):
        raise GroupError(f"group {name}: two elements have the same matrix")
    return table


def _rotation_2d(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def _snap(matrix: np.ndarray) -> np.ndarray:
    """Round entries that are within float error of -1, 0, 1, so 90-degree rotations are exact."""
    rounded = np.round(matrix)
    return np.where(np.abs(matrix - rounded) < 1e-12, rounded, matrix)


def cyclic(n: int) -> FiniteGroup:
    """C_n: the ``n`` rotations of the plane by ``2 pi k / n``, element ``k``."""
    _check_n(n, "cyclic")
    return FiniteGroup(f"C{n}", np.stack([_snap(_rotation_2d(2 * math.pi * k / n)) for k in range(n)]), "cyclic", n)


def dihedral(n: int) -> FiniteGroup:
    """D_n: ``n`` rotations and ``n`` reflections (order ``2n``); element ``m * n + k`` is ``R^k F^m``."""
    _check_n(n, "dihedral")
    flip = np.diag([1.0, -1.0])
    rotations = [_snap(_rotation_2d(2 * math.pi * k / n)) for k in range(n)]
    return FiniteGroup(f"D{n}", np.stack(rotations + [r @ flip for r in rotations]), "dihedral", n)


def trivial(dim: int = 2) -> FiniteGroup:
    """The group with only the identity, acting on R^dim: a G-CNN for it is an ordinary CNN."""
    if dim not in (2, 3):
        raise GroupError(f"trivial group: dim must be 2 or 3, got {dim!r}")
    return FiniteGroup("C1" if dim == 2 else "1", np.eye(dim)[None], "cyclic" if dim == 2 else None, 1)


def cube_rotations() -> FiniteGroup:
    """O: the 24 rotations of the cube, as signed permutation matrices (generated by 90-degree turns about the
    first and last axes, listed in breadth-first order from the identity)."""
    turn_last = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    turn_first = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    return FiniteGroup("O", _closure([turn_last, turn_first], 24))


def cube_symmetries() -> FiniteGroup:
    """O_h: the 48 symmetries of the cube (rotations, then ``-R`` for each rotation ``R``)."""
    rotations = cube_rotations()._matrices
    return FiniteGroup("O_h", np.concatenate([rotations, -rotations]))


def icosahedral_rotations() -> FiniteGroup:
    """I: the 60 rotations of the icosahedron with vertices ``(0, +-1, +-phi)`` and cyclic permutations, generated
    by the 72-degree turn about the vertex ``(0, 1, phi)`` and the half-turn about the last axis."""
    phi = (1 + math.sqrt(5)) / 2
    axis = np.array([0.0, 1.0, phi]) / math.sqrt(1 + phi**2)
    return FiniteGroup("I", _closure([_axis_angle(axis, 2 * math.pi / 5), np.diag([-1.0, -1.0, 1.0])], 60))


def _axis_angle(axis: np.ndarray, angle: float) -> np.ndarray:
    x, y, z = axis
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def _closure(generators: list[np.ndarray], expected: int) -> np.ndarray:
    """All products of the generators, breadth first from the identity."""
    found = [np.eye(generators[0].shape[0])]
    frontier = list(found)
    while frontier:
        new = []
        for element in frontier:
            for generator in generators:
                product = _snap(generator @ element)
                if not any(np.abs(product - known).max() < 1e-9 for known in found):
                    found.append(product)
                    new.append(product)
        frontier = new
        if len(found) > expected:
            break
    if len(found) != expected:
        raise GroupError(f"closure of the generators has {len(found)} elements, expected {expected}")
    return np.stack(found)


def _check_n(n: int, what: str) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise GroupError(f"{what}(n): n must be a positive integer, got {n!r}")
