"""Spherical MNIST (Cohen, Geiger, Koehler & Welling 2018, "Spherical CNNs"; used again by Cohen, Weiler,
Kicanaoglu & Welling 2019, "Gauge Equivariant Convolutional Networks and the Icosahedral CNN"): real MNIST digits
projected onto the sphere and sampled on the icosahedral grid, unrotated (N) or each under its own uniformly random
rotation (R). The settings N/N, N/R and R/R pair a training set and a test set of these kinds.

Built from ``load_mnist`` (checksummed IDX files), ``fivefold.spheres.project_image`` (stereographic projection onto
the northern hemisphere, then the rotation) and ``fivefold.groups.random_rotations``. Every sample is computed from
the planar digit directly, never re-interpolated from another spherical sample.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import Tensor

from fivefold.data.images import ImageSet, load_mnist
from fivefold.errors import DataError
from fivefold.groups import random_rotations
from fivefold.spheres import IcoGrid, project_image

__all__ = ["SphericalImageSet", "load_spherical_mnist", "project_digits"]


@dataclass(frozen=True)
class SphericalImageSet:
    """Labelled signals on the icosahedral grid.

    Fields:
        signals: ``[N, C, 5, 2^r, 2^(r+1)]`` float32 chart tensors (``grid.from_charts`` gives per-vertex values).
        labels: ``[N]`` int64.
        rotations: ``[N, 3, 3]`` the rotation applied to each sample, or None (unrotated).
        grid: the ``IcoGrid`` the signals live on.
        name: where the set came from (``"spherical-mnist/train/R"``).
    """

    signals: Tensor
    labels: Tensor
    rotations: Tensor | None
    grid: IcoGrid
    name: str

    def __len__(self) -> int:
        return self.labels.shape[0]

    def subset(self, index: Tensor) -> SphericalImageSet:
        """The samples at ``index`` (a ``[K]`` int64 tensor)."""
        rotations = None if self.rotations is None else self.rotations[index]
        return SphericalImageSet(self.signals[index], self.labels[index], rotations, self.grid,
                                 f"{self.name}[{len(index)}]")


def load_spherical_mnist(split: str = "train", rotated: bool = False, root: str | os.PathLike | None = None, *,
                         r: int = 4, rotation_seed: int = 0, half_width: float = 0.8,
                         limit: int | None = None) -> SphericalImageSet:
    """MNIST's training or test digits on the icosahedral grid at resolution ``r``.

    Args:
        split: ``"train"`` (60,000 digits) or ``"test"`` (10,000).
        rotated: False: every digit centred on the north pole, upright (the "N" sets); True: digit ``i`` rotated by
            the ``i``-th draw of ``random_rotations`` from ``torch.Generator().manual_seed(rotation_seed)`` (the "R"
            sets; the same seed gives the same rotations).
        root: the data folder holding ``mnist-train/`` and ``mnist-test/`` (default ``$FIVEFOLD_DATA``).
        r: grid resolution (r = 4: 2,562 vertices, about 4 degrees apart).
        half_width: half the side of the digit's square in the stereographic plane (0.8: a cap of about 77 degrees).
        limit: only the first ``limit`` digits.

    Returns: a ``SphericalImageSet`` with ``signals: [N, 1, 5, 2^r, 2^(r+1)]`` in ``[0, 1]``.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise DataError(f"load_spherical_mnist: limit must be a positive integer or None, got {limit!r}")
    digits = load_mnist(split, root)
    if limit is not None:
        digits = digits.subset(torch.arange(min(limit, len(digits))))
    return project_digits(digits, rotated, r=r, rotation_seed=rotation_seed, half_width=half_width,
                          name=f"spherical-mnist/{split}/{'R' if rotated else 'N'}")


def project_digits(digits: ImageSet, rotated: bool = False, *, r: int = 4, rotation_seed: int = 0,
                   half_width: float = 0.8, name: str | None = None) -> SphericalImageSet:
    """Planar images already loaded (an ``ImageSet`` of ``[N, C, H, W]``) on the icosahedral grid, as
    ``load_spherical_mnist`` puts MNIST there (same arguments, same rotations for the same seed)."""
    if digits.images.dim() != 4:
        raise DataError(f"project_digits: images must be [N, C, H, W], got {tuple(digits.images.shape)}")
    grid = IcoGrid(r)
    images = digits.as_float()
    rotations = None
    if rotated:
        rotations = random_rotations(len(images), 3, torch.Generator().manual_seed(rotation_seed), torch.float32)
    chunks = []
    for start in range(0, len(images), 2000):
        chunk_rotations = None if rotations is None else rotations[start:start + 2000]
        chunks.append(project_image(images[start:start + 2000], grid.vertices, half_width, chunk_rotations))
    signals = grid.to_charts(torch.cat(chunks))
    return SphericalImageSet(signals, digits.labels, rotations, grid,
                             name or f"{digits.name}/sphere/{'R' if rotated else 'N'}")
