"""The icosahedral grid and its atlas of five charts (Cohen, Weiler, Kicanaoglu & Welling 2019, "Gauge Equivariant
Convolutional Networks and the Icosahedral CNN").

The grid at resolution ``r`` subdivides each edge of an icosahedron into ``n = 2^r`` segments and projects the
lattice points onto the unit sphere: ``10 * 4^r + 2`` vertices. The icosahedron has its poles ``N = (0, 0, 1)`` and
``S = -N``, an upper ring ``U_k`` at height ``1 / sqrt(5)`` and angle ``72 k`` degrees and a lower ring ``L_k`` at
height ``-1 / sqrt(5)`` and angle ``72 k + 36`` degrees.

Atlas: chart ``k`` (``k = 0..4``) is the strip of the four faces ``(N, U_k, U_k+1)``, ``(U_k, L_k, U_k+1)``,
``(U_k+1, L_k, L_k+1)``, ``(L_k, S, L_k+1)`` unfolded onto the axial lattice, with corners (in units of ``n``)
``U_k = (0, 0)``, ``N = (1, 0)``, ``L_k = (0, 1)``, ``U_k+1 = (1, 1)``, ``S = (0, 2)``, ``L_k+1 = (1, 2)``. Chart ``k``
owns the lattice points ``(i, j)`` with ``0 <= i < n`` and ``0 <= j < 2n``; together the charts own every vertex but
the two poles. A signal is stored as a chart tensor ``[B, C, 5, n, 2n]``. On the lattice, the six neighbours of
``(i, j)`` are ``(i, j) + d_m`` with the directions, in counter-clockwise order,
``d_0..d_5 = (1, 0), (1, 1), (0, 1), (-1, 0), (-1, -1), (0, -1)``: a 3x3 kernel without its ``(1, -1)`` and
``(-1, 1)`` corners.

Vertex order: the chart pixels in ``[5, n, 2n]`` row-major order, then ``N``, then ``S``. ``to_charts`` and
``from_charts`` are exact inverses on the chart pixels; ``from_charts`` gives each pole the mean of its five
neighbours (a chart tensor has no pixel for the poles).

Seams: the padding of chart ``k`` (one pixel on each side) comes from charts ``k - 1`` and ``k + 1``. Between two
charts the lattice frames differ by a rotation of 0 or +-60 degrees, recorded per padded pixel in ``pad_shift``; a
regular C_6 field is cyclically shifted by that many orientations when it crosses the seam (the gauge
transformation). The twelve icosahedron vertices have five neighbours, so one of their six lattice directions repeats
a neighbour (``singular`` marks them).
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
import torch
from torch import Tensor

from fivefold.errors import FieldError, GroupError
from fivefold.groups import FieldType, FiniteGroup, icosahedral_rotations
from fivefold.spheres.fields import field_kind

__all__ = ["IcoGrid", "HEX_DIRECTIONS", "icosahedron"]

HEX_DIRECTIONS = ((1, 0), (1, 1), (0, 1), (-1, 0), (-1, -1), (0, -1))
MAX_RESOLUTION = 10


def icosahedron() -> dict[str, np.ndarray]:
    """The 12 vertices: ``N``, ``S`` ``[3]`` and rings ``U``, ``L`` ``[5, 3]``."""
    z, rho = 1 / math.sqrt(5), 2 / math.sqrt(5)
    upper = np.array([[rho * math.cos(2 * math.pi * k / 5), rho * math.sin(2 * math.pi * k / 5), z] for k in range(5)])
    lower = np.array([[rho * math.cos(2 * math.pi * (k + 0.5) / 5), rho * math.sin(2 * math.pi * (k + 0.5) / 5), -z]
                      for k in range(5)])
    return {"N": np.array([0.0, 0.0, 1.0]), "S": np.array([0.0, 0.0, -1.0]), "U": upper, "L": lower}


class IcoGrid:
    """The icosahedral grid at resolution ``r`` with its chart atlas, neighbours and seam padding tables.

    Attributes:
        r, n: resolution and ``n = 2^r``.
        num_vertices: ``V = 10 * 4^r + 2``.
        vertices: ``[V, 3]`` float64 unit vectors.
        neighbours: ``[V, 6]`` int64, the neighbour in lattice direction ``d_m`` (poles: their 5 neighbours and -1).
        pad_index: ``[5, n + 2, 2n + 2]`` int64, the vertex read by each pixel of a padded chart (-1: unused corner).
        pad_shift: ``[5, n + 2, 2n + 2]`` int64, the frame rotation (in 60-degree steps) from the source pixel's chart
            to this chart.
        singular: ``[V]`` bool, the 12 icosahedron vertices.

    Example::

        >>> grid = IcoGrid(2)
        >>> grid.num_vertices, tuple(grid.vertices.shape)
        (162, (162, 3))
        >>> x = torch.randn(4, 3, grid.num_vertices)
        >>> grid.to_charts(x).shape
        torch.Size([4, 3, 5, 4, 8])
    """

    def __init__(self, r: int) -> None:
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not 0 <= r <= MAX_RESOLUTION:
            raise GroupError(f"IcoGrid: resolution r must be an integer in 0 .. {MAX_RESOLUTION}, got {r!r}")
        self.r = int(r)
        self.n = 2**r
        self.num_vertices = 10 * 4**r + 2
        self.north = self.num_vertices - 2
        self.south = self.num_vertices - 1
        self._positions = self._chart_positions()
        self._pad_index, self._pad_shift = self._padding_tables()

    # -- geometry -----------------------------------------------------------------------------------------------------
    def _chart_positions(self) -> np.ndarray:
        n, ico = self.n, icosahedron()
        i, j = np.meshgrid(np.arange(n) / n, np.arange(2 * n) / n, indexing="ij")
        charts = []
        for k in range(5):
            u0, u1, l0, l1 = ico["U"][k], ico["U"][(k + 1) % 5], ico["L"][k], ico["L"][(k + 1) % 5]
            a, b = i[..., None], j[..., None]
            bb = b - 1
            top = (1 - a) * u0 + (a - b) * ico["N"] + b * u1  # a >= b, b <= 1
            upper_middle = (1 - b) * u0 + (b - a) * l0 + a * u1  # a < b <= 1
            lower_middle = (1 - a) * l0 + (a - bb) * u1 + bb * l1  # b > 1, a >= b - 1
            bottom = (1 - bb) * l0 + (bb - a) * ico["S"] + a * l1  # b > 1, a < b - 1
            point = np.where(b <= 1, np.where(a >= b, top, upper_middle), np.where(a >= bb, lower_middle, bottom))
            charts.append(point)
        flat = np.concatenate([c.reshape(-1, 3) for c in charts] + [ico["N"][None], ico["S"][None]])
        return flat / np.linalg.norm(flat, axis=1, keepdims=True)

    @property
    def vertices(self) -> Tensor:
        """``[V, 3]`` float64 positions on the unit sphere."""
        return torch.from_numpy(self._positions.copy())

    def _pixel(self, k: int, i: int, j: int) -> int:
        return (k % 5) * self.n * 2 * self.n + i * 2 * self.n + j

    def _padding_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """For each chart, the vertex and frame rotation of every pixel of the chart padded by one on each side."""
        n = self.n
        index = -np.ones((5, n + 2, 2 * n + 2), dtype=np.int64)
        shift = np.zeros((5, n + 2, 2 * n + 2), dtype=np.int64)
        for k in range(5):
            index[k, 1:n + 1, 1:2 * n + 1] = self._pixel(k, 0, 0) + np.arange(n * 2 * n).reshape(n, 2 * n)

            def put(i, j, vertex, rotation, k=k):
                index[k, i + 1, j + 1] = vertex
                shift[k, i + 1, j + 1] = rotation

            for i in range(n):  # left column: chart k-1 across the edge U_k - N, frames rotated by +1
                put(i, -1, self._pixel(k - 1, n - 1, n - 1 - i), 1)
            for j in range(-1, n):  # bottom row, first half: chart k-1 across U_k - L_k, a translation
                put(-1, j, self._pixel(k - 1, n - 1, n + j), 0)
            for j in range(n, 2 * n):  # bottom row, second half: chart k-1 across L_k - S, rotated by -1
                put(-1, j, self._pixel(k - 1, 2 * n - 1 - j, 2 * n - 1), -1)
            put(n, 0, self.north, 0)
            for j in range(1, n):  # top row, first half: chart k+1 across N - U_k+1, rotated by -1
                put(n, j, self._pixel(k + 1, n - j, 0), -1)
            for j in range(n, 2 * n + 1):  # top row, second half: chart k+1 across U_k+1 - L_k+1, a translation
                put(n, j, self._pixel(k + 1, 0, j - n), 0)
            put(0, 2 * n, self.south, 0)
            for i in range(1, n):  # right column: chart k+1 across S - L_k+1, rotated by +1
                put(i, 2 * n, self._pixel(k + 1, 0, 2 * n - i), 1)
        return index, shift

    @property
    def pad_index(self) -> Tensor:
        return torch.from_numpy(self._pad_index.copy())

    @property
    def pad_shift(self) -> Tensor:
        return torch.from_numpy(self._pad_shift.copy())

    @cached_property
    def neighbours(self) -> Tensor:
        """``[V, 6]`` the neighbour of each vertex in each lattice direction ``d_m`` (poles: 5 neighbours, -1)."""
        n = self.n
        table = -np.ones((self.num_vertices, 6), dtype=np.int64)
        for m, (di, dj) in enumerate(HEX_DIRECTIONS):
            table[:-2, m] = self._pad_index[:, 1 + di:n + 1 + di, 1 + dj:2 * n + 1 + dj].reshape(-1)
        table[self.north, :5] = [self._pixel(k, n - 1, 0) for k in range(5)]
        table[self.south, :5] = [self._pixel(k, 0, 2 * n - 1) for k in range(5)]
        return torch.from_numpy(table)

    @cached_property
    def singular(self) -> Tensor:
        """``[V]`` True at the 12 vertices of the icosahedron (five neighbours)."""
        ico = icosahedron()
        corners = np.concatenate([ico["N"][None], ico["S"][None], ico["U"], ico["L"]])
        return torch.from_numpy((np.abs(self._positions @ corners.T - 1) < 1e-9).any(axis=1))

    # -- conversions --------------------------------------------------------------------------------------------------
    def to_charts(self, x: Tensor) -> Tensor:
        """Per-vertex ``[..., V]`` -> chart tensor ``[..., 5, n, 2n]``.

        The atlas has no pixel for the two poles (the last two vertices), so their values are dropped; keep them as
        ``x[..., -2:]`` and hand them back to ``from_charts(charts, poles=...)`` for an exact round trip. Layers do not
        need them: they set every one of the 12 icosahedron vertices from its neighbours."""
        if x.dim() < 1 or x.shape[-1] != self.num_vertices:
            raise FieldError(f"IcoGrid(r={self.r}).to_charts: the last axis must hold the {self.num_vertices} "
                             f"vertices, got shape {tuple(x.shape)}")
        return x[..., :-2].reshape(*x.shape[:-1], 5, self.n, 2 * self.n)

    def from_charts(self, x: Tensor, poles: Tensor | None = None, field: FieldType | str = "trivial") -> Tensor:
        """Chart tensor ``[..., 5, n, 2n]`` -> per-vertex ``[..., V]``.

        Args:
            x: the chart tensor; ``to_charts(from_charts(x)) == x`` exactly.
            poles: ``[..., 2]`` values of the north and south pole (e.g. ``v[..., -2:]`` of the per-vertex tensor
                ``v`` that was charted; then ``from_charts(to_charts(v), poles=v[..., -2:]) == v`` exactly), or None:
                each pole follows the singular-vertex rule of the layers, the mean of its five neighbours, and for
                regular fields also over the six orientations of each field.
            field: what the channels of ``x: [..., C, 5, n, 2n]`` are: a field type of ``fivefold.spheres``, or
                ``"trivial"`` / ``"regular"`` (regular: ``C`` in multiples of 6, orientation axis innermost).
        """
        self.check_charts(x, "from_charts")
        kind = field_kind(field, f"IcoGrid(r={self.r}).from_charts")
        flat = x.reshape(*x.shape[:-3], -1)
        if poles is not None:
            if tuple(poles.shape) != (*flat.shape[:-1], 2):
                raise FieldError(f"IcoGrid(r={self.r}).from_charts: poles must be [..., 2] = "
                                 f"{(*flat.shape[:-1], 2)}, got {tuple(poles.shape)}")
            return torch.cat([flat, poles.to(flat.dtype)], dim=-1)
        rule = flat[..., self.neighbours[[self.north, self.south], :5]].mean(dim=-1)  # [..., C, 2]
        if kind == "regular":
            if x.dim() < 4 or x.shape[-4] % 6 or (isinstance(field, FieldType) and x.shape[-4] != field.size):
                want = f"{field!r} = {field.size}" if isinstance(field, FieldType) else "a multiple of 6"
                raise FieldError(f"IcoGrid(r={self.r}).from_charts: regular fields need [..., C, 5, n, 2n] with C "
                                 f"{want} channels, got shape {tuple(x.shape)}")
            by_field = rule.reshape(*rule.shape[:-2], -1, 6, 2)
            rule = by_field.mean(dim=-2, keepdim=True).expand_as(by_field).reshape(rule.shape)
        return torch.cat([flat, rule], dim=-1)

    def check_charts(self, x: Tensor, where: str) -> None:
        """Raise ``FieldError`` (naming ``where``) unless ``x`` is a chart tensor ``[..., 5, n, 2n]`` of this grid."""
        if x.dim() < 3 or tuple(x.shape[-3:]) != (5, self.n, 2 * self.n):
            raise FieldError(f"IcoGrid(r={self.r}).{where}: expected a chart tensor [..., 5, {self.n}, {2 * self.n}], "
                             f"got shape {tuple(x.shape)}")

    # -- symmetry -----------------------------------------------------------------------------------------------------
    @cached_property
    def symmetry_group(self) -> FiniteGroup:
        """The 60 rotations of this grid's icosahedron (``icosahedral_rotations()`` turned to these axes)."""
        canonical = icosahedral_rotations()
        phi = (1 + math.sqrt(5)) / 2
        v0 = np.array([0.0, 1.0, phi]) / math.sqrt(1 + phi**2)
        v1 = np.array([0.0, -1.0, phi]) / math.sqrt(1 + phi**2)  # a neighbour of v0
        ico = icosahedron()
        align = _frame(ico["N"], ico["U"][0]) @ _frame(v0, v1).T
        matrices = np.einsum("ij,gjk,lk->gil", align, canonical.matrices.numpy(), align)
        return FiniteGroup("I", np.where(np.abs(matrices) < 1e-12, 0.0, matrices))

    def rotation_permutation(self, matrix: np.ndarray | Tensor) -> Tensor:
        """``[V]`` with ``perm[v]`` the vertex at ``matrix @ vertices[v]``; raises if the rotation does not map the
        grid onto itself. A k-d tree query (scipy), so memory stays ``O(V)`` at every resolution."""
        from scipy.spatial import cKDTree

        moved = self._positions @ np.asarray(matrix, dtype=np.float64).T
        distance, perm = cKDTree(self._positions).query(moved, k=1)
        if distance.max() > 1e-5:
            raise GroupError("the rotation does not map the icosahedral grid onto itself")
        return torch.from_numpy(perm.astype(np.int64))

    def rotation_gauge(self, matrix: np.ndarray | Tensor) -> tuple[Tensor, Tensor]:
        """How a symmetry rotation acts on fields: ``perm[v]`` (as ``rotation_permutation``) and ``shift[v]``, the
        number of 60-degree steps by which the frame at ``v``, carried by the rotation, differs from the frame at
        ``perm[v]`` (0 at the 12 icosahedron vertices, where regular fields are constant over orientations)."""
        perm = self.rotation_permutation(matrix)
        neighbours = self.neighbours
        carried = perm[neighbours[:, 0].clamp(min=0)]
        shift = (neighbours[perm] == carried[:, None]).to(torch.int64).argmax(dim=1)
        return perm, torch.where(self.singular, torch.zeros_like(shift), shift)

    def __repr__(self) -> str:
        return f"IcoGrid(r={self.r}: {self.num_vertices} vertices, charts [5, {self.n}, {2 * self.n}])"


def _frame(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """An orthonormal frame (columns) with first axis ``a`` and ``b`` in the span of the first two."""
    e1 = a / np.linalg.norm(a)
    e2 = b - (b @ e1) * e1
    e2 /= np.linalg.norm(e2)
    return np.stack([e1, e2, np.cross(e1, e2)], axis=1)
