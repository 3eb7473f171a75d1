"""Radial parts of 3D molecular networks: distance expansions and smooth cutoffs.

- ``GaussianBasis``: ``exp(-gamma (d - mu_k)^2)`` on evenly spaced centres (SchNet, Schuett et al. 2017).
- ``BesselBasis``: ``sqrt(2 / c) sin(k pi d / c) / d`` (DimeNet, Gasteiger et al. 2020; NequIP), optionally with
  trainable frequencies.
- ``cosine_cutoff``: ``(cos(pi d / c) + 1) / 2`` inside the cutoff, 0 outside (SchNet's, Behler's).
- ``polynomial_cutoff``: the smooth envelope of DimeNet with ``p = 6``: value and first derivatives vanish at ``c``,
  so energies and forces are continuous when an atom crosses the cutoff.

All act elementwise on a ``[E]`` tensor of distances and return ``[E, K]`` (bases) or ``[E]`` (cutoffs).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["GaussianBasis", "BesselBasis", "cosine_cutoff", "polynomial_cutoff"]


class GaussianBasis(nn.Module):
    """``K`` Gaussians centred evenly on ``[start, stop]``, width set by their spacing: ``gamma = 0.5 / spacing^2``."""

    def __init__(self, start: float = 0.0, stop: float = 5.0, num: int = 50) -> None:
        super().__init__()
        self.register_buffer("centres", torch.linspace(start, stop, num), persistent=False)
        spacing = (stop - start) / max(num - 1, 1)
        self.gamma = 0.5 / spacing**2

    def forward(self, distance: Tensor) -> Tensor:
        return torch.exp(-self.gamma * (distance[:, None] - self.centres.to(distance)) ** 2)


class BesselBasis(nn.Module):
    """``K`` radial Bessel functions ``sqrt(2/c) sin(k pi d / c) / d``, ``k = 1..K`` (finite at ``d = 0``)."""

    def __init__(self, cutoff: float = 5.0, num: int = 8, trainable: bool = True) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        frequencies = torch.arange(1, num + 1, dtype=torch.float32) * math.pi
        self.frequencies = nn.Parameter(frequencies, requires_grad=trainable)

    def forward(self, distance: Tensor) -> Tensor:
        d = distance[:, None] / self.cutoff
        arg = self.frequencies.to(distance) * d
        safe = torch.where(d > 0, d, torch.ones_like(d))
        value = torch.where(d > 0, torch.sin(arg) / safe, self.frequencies.to(distance).expand_as(arg))
        return math.sqrt(2.0 / self.cutoff) * value / self.cutoff


def cosine_cutoff(distance: Tensor, cutoff: float) -> Tensor:
    """``0.5 (cos(pi d / c) + 1)`` for ``d < c``, else 0."""
    return torch.where(distance < cutoff, 0.5 * (torch.cos(math.pi * distance / cutoff) + 1.0),
                       torch.zeros_like(distance))


def polynomial_cutoff(distance: Tensor, cutoff: float, p: int = 6) -> Tensor:
    """DimeNet's envelope ``1 - (p+1)(p+2)/2 u^p + p(p+2) u^(p+1) - p(p+1)/2 u^(p+2)`` with ``u = d / c``, 0 beyond."""
    u = distance / cutoff
    value = 1.0 - (p + 1) * (p + 2) / 2 * u**p + p * (p + 2) * u ** (p + 1) - p * (p + 1) / 2 * u ** (p + 2)
    return torch.where(u < 1.0, value, torch.zeros_like(u))
