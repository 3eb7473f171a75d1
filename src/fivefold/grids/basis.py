"""Filter bases for group convolutions, and their transformed copies, precomputed once per layer.

A G-CNN filter bank is expanded from a base filter ``psi`` by transforming it with every group element ``h``:
``psi_h(x) = psi(M_h^-1 x)``. The layer stores ``psi`` in a basis and each basis precomputes how its functions look
after each ``h``, so the expansion in ``forward`` is a gather (pixel basis) or one small einsum (steerable basis).

- ``PixelBasis``: one delta per pixel/voxel; ``h`` permutes the kernel positions. Exact, for groups whose matrices
  are signed permutations (C_4, D_4, O, O_h); the G-CNN of Cohen & Welling (2016), "Group Equivariant Convolutional
  Networks", and its 3D form, Winkels & Cohen (2018), "3D G-CNNs for Pulmonary Nodule Detection".
- ``SteerableBasis``: circular harmonics times Gaussian radial rings, ``tau_j(r) cos(m phi)`` and
  ``tau_j(r) sin(m phi)``, evaluated analytically at ``M_h^-1 x`` and sampled on the kernel grid, so the rotated filter
  is the exact rotation of a smooth function (Cohen & Welling 2017, "Steerable CNNs"; Weiler, Hamprecht & Storath
  2018, "Learning Steerable Filters for Rotation Equivariant CNNs"; Weiler & Cesa 2019, "General E(2)-Equivariant
  Steerable CNNs"). Any rotation angle (C_8, C_16, D_n) works; equivariance on the pixel grid then holds up to the
  interpolation error of rotating the input. Rings sit at integer radii ``r = 0 .. (k - 1) / 2`` with Gaussian width
  0.4 pixel and carry frequencies ``m <= min(r, max_frequency)`` (``max_frequency`` = ``n / 2`` for C_n / D_n by
  default). Both choices were measured: on smooth inputs rotated by 45 degrees, a C_8 lifting layer with k = 5 has a
  relative L2 equivariance error of about 1 % with them, against 9-13 % with frequencies up to ``2 r`` and width 0.6
  (higher harmonics alias on the pixel grid; wider rings are clipped unevenly by the square kernel).

The buffers here are derived data: layers register them as non-persistent, so they never enter a ``state_dict``.
"""

from __future__ import annotations

import numpy as np
import torch

from fivefold.errors import GroupError
from fivefold.groups import FiniteGroup

__all__ = ["PixelBasis", "SteerableBasis", "kernel_coordinates"]


def kernel_coordinates(kernel_size: int, dim: int) -> np.ndarray:
    """``[kernel_size^dim, dim]`` centred coordinates of the kernel positions, in tensor-axis order (row-major)."""
    axis = np.arange(kernel_size, dtype=np.float64) - (kernel_size - 1) / 2
    grids = np.meshgrid(*([axis] * dim), indexing="ij")
    return np.stack([g.reshape(-1) for g in grids], axis=1)


class PixelBasis:
    """Kernel positions as the basis; ``index[h, s]`` is the position read by position ``s`` of ``psi_h``.

    Shapes:
        index: ``[|G|, k^d]`` int64, with ``psi_h.flatten()[s] = psi.flatten()[index[h, s]]``.
    """

    def __init__(self, group: FiniteGroup, kernel_size: int) -> None:
        if not group.acts_exactly_on_grids:
            raise GroupError(f"the pixel basis needs a group of signed permutations (C4, D4, O, O_h), not "
                             f"{group.name}; use basis='steerable' for other rotation angles")
        points = kernel_coordinates(kernel_size, group.dim)
        lookup = {tuple(np.round(2 * p).astype(int)): s for s, p in enumerate(points)}
        index = np.empty((group.order, len(points)), dtype=np.int64)
        for h in group.elements:
            source = points @ group.matrix(h)  # rows (M_h^-1 p)^T
            index[h] = [lookup[tuple(np.round(2 * q).astype(int))] for q in source]
        self.size = len(points)
        self.index = torch.from_numpy(index)


class SteerableBasis:
    """Circular harmonics times Gaussian rings on a 2D kernel, transformed by every group element.

    Args:
        group: a finite group acting on R^2.
        kernel_size: k (odd sizes centre the kernel on a pixel).
        max_frequency: highest angular frequency; default ``n // 2`` for C_n / D_n.
        ring_width: standard deviation of the Gaussian rings, in pixels.

    Shapes:
        functions: ``[|G|, B, k * k]`` float64: basis function ``b`` transformed by ``h``, sampled on the kernel.
    """

    def __init__(self, group: FiniteGroup, kernel_size: int, max_frequency: int | None = None,
                 ring_width: float = 0.4) -> None:
        if group.dim != 2:
            raise GroupError(f"steerable filters are 2D; {group.name} acts on R^{group.dim}")
        if max_frequency is None:
            max_frequency = max(group.n // 2, 1) if group.n else 4
        points = kernel_coordinates(kernel_size, 2)
        radii = np.arange(0.0, (kernel_size - 1) / 2 + 1e-9, 1.0)
        specs = [(r, m, part) for r in radii for m in range(0, min(int(r), max_frequency) + 1)
                 for part in (("cos",) if m == 0 else ("cos", "sin"))]
        identity = _evaluate(specs, points, ring_width)
        norms = np.linalg.norm(identity, axis=1)
        keep = norms > 1e-6 * norms.max()
        self.specs = [spec for spec, k in zip(specs, keep, strict=True) if k]
        functions = np.stack([_evaluate(self.specs, points @ group.matrix(h), ring_width) for h in group.elements])
        self.functions = torch.from_numpy(functions / norms[keep][None, :, None])
        self.size = len(self.specs)


def _evaluate(specs: list[tuple[float, int, str]], points: np.ndarray, width: float) -> np.ndarray:
    """``[len(specs), len(points)]`` values of ``exp(-(|x| - r)^2 / 2 w^2) * cos/sin(m phi)``, ``phi = atan2(x1, x0)``;
    harmonics with ``m > 0`` vanish at the origin, where the angle is undefined."""
    radius = np.linalg.norm(points, axis=1)
    angle = np.arctan2(points[:, 1], points[:, 0])
    values = []
    for r, m, part in specs:
        ring = np.exp(-((radius - r) ** 2) / (2 * width**2))
        harmonic = np.cos(m * angle) if part == "cos" else np.sin(m * angle)
        value = ring * harmonic
        if m > 0:
            value = np.where(radius < 1e-9, 0.0, value)
        values.append(value)
    return np.stack(values)

