"""Uniformly random rotations (Haar measure on SO(d)): the continuous group that the finite groups here sit in.

Used to rotate data (Spherical MNIST's N/R and R/R settings) and to test approximate equivariance.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fivefold.errors import GroupError

__all__ = ["random_rotation", "random_rotations"]


def random_rotation(dim: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64) -> Tensor:
    """A rotation matrix ``[dim, dim]`` drawn uniformly (Haar measure) from SO(dim): the QR decomposition of a
    Gaussian matrix with the signs of R's diagonal moved into Q (Mezzadri 2007), then one column flipped if needed."""
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise GroupError(f"random_rotation: dim must be a positive integer, got {dim!r}")
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q.to(dtype)


def random_rotations(count: int, dim: int = 3, generator: torch.Generator | None = None,
                     dtype: torch.dtype = torch.float64) -> Tensor:
    """``[count, dim, dim]``: ``count`` independent ``random_rotation`` draws, in order from ``generator`` (so a seed
    gives the same rotations however they are batched afterwards)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise GroupError(f"random_rotations: count must be a non-negative integer, got {count!r}")
    if count == 0:
        return torch.zeros(0, dim, dim, dtype=dtype)
    return torch.stack([random_rotation(dim, generator, dtype) for _ in range(count)])
