"""DiffusionNet: learned heat diffusion, tangent-gradient features and per-vertex MLPs.

Sharp, Attaiki, Crane & Ovsjanikov, "DiffusionNet: Discretization Agnostic Learning on Surfaces", ACM TOG 2022. A
block (their Fig. 2) is

    h   = diffuse_t(x)                      heat diffusion for a learned time t_c per channel, in the Laplace-Beltrami
                                            eigenbasis:  Phi (exp(-lambda t) * (Phi^T M x))                   (Sec. 3.2)
    g   = tanh(Re(conj(grad h) * (A grad h)))   gradients in each vertex's tangent frame as complex numbers, A a
                                            learned complex C x C matrix; the product is invariant to the frame
                                            (Sec. 3.3)
    out = x + MLP([x, h, g])                 a per-vertex MLP with a residual connection                   (Sec. 3.4)

The spectral diffusion is exact for the truncated basis; everything is linear in the mesh's operators, so the block
depends on the surface, not on its meshing, as far as the operators converge. The operators come precomputed
(``mesh_operators``); the gradient products run on ``fivefold.ops.spmm_mix``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from fivefold.errors import FieldError
from fivefold.meshes.precompute import MeshOperators
from fivefold.ops import spmm_mix

__all__ = ["LearnedTimeDiffusion", "SpatialGradientFeatures", "DiffusionNetBlock"]


class LearnedTimeDiffusion(nn.Module):
    """Heat diffusion of each channel for its own learned time ``t_c >= 0`` (spectral, truncated to the operators'
    eigenbasis). ``x: [V, C] -> [V, C]``."""

    def __init__(self, channels: int, init_time: float = 0.0) -> None:
        super().__init__()
        self.channels = channels
        self.time = nn.Parameter(torch.full((channels,), float(init_time)))

    def forward(self, x: Tensor, ops: MeshOperators) -> Tensor:
        evecs, evals, mass = ops.evecs.to(x.dtype), ops.evals.to(x.dtype), ops.mass.to(x.dtype)
        # the time is used clamped at 1e-8 (a time reaches 0, no diffusion, never below), but the gradient reaches the
        # raw parameter even where it sits below the clamp (clamp_min alone would pass zero there, and a time that
        # starts at 0, as in the paper, would never move); the reference code clamps the parameter in place instead
        time = self.time + (self.time.clamp_min(1e-8) - self.time).detach()
        spectral = evecs.T @ (mass[:, None] * x)  # [k, C]
        return evecs @ (torch.exp(-evals[:, None] * time[None, :]) * spectral)


class SpatialGradientFeatures(nn.Module):
    """``tanh(Re(conj(grad h) * (A grad h)))`` per channel, with ``A`` a learned complex ``C x C`` matrix: a
    gauge-invariant (frame-independent) feature of the local gradient directions. ``x: [V, C] -> [V, C]``.

    Args:
        channels: ``C``.
        rotations: let ``A`` have an imaginary part (rotate gradients), as the paper's default.
    """

    def __init__(self, channels: int, rotations: bool = True) -> None:
        super().__init__()
        self.real = nn.Linear(channels, channels, bias=False)
        self.imag = nn.Linear(channels, channels, bias=False) if rotations else None

    def forward(self, grad_x: Tensor, grad_y: Tensor) -> Tensor:
        if self.imag is None:
            bx, by = self.real(grad_x), self.real(grad_y)
        else:
            bx = self.real(grad_x) - self.imag(grad_y)
            by = self.real(grad_y) + self.imag(grad_x)
        return torch.tanh(grad_x * bx + grad_y * by)


class DiffusionNetBlock(nn.Module):
    """One DiffusionNet block (Sharp et al. 2022): diffusion, gradient features, MLP, residual.

    Args:
        width: channels in and out (``C``).
        hidden: the MLP's hidden widths (default two layers of ``width``).
        dropout: dropout inside the MLP (the paper's default 0.5; 0 in evaluation mode anyway).
        gradient_rotations: see ``SpatialGradientFeatures``.

    Shapes:
        ``x: [V, C] -> [V, C]``; ``ops``: the mesh's ``MeshOperators``.
    """

    def __init__(self, width: int, hidden: tuple[int, ...] | None = None, dropout: float = 0.5,
                 gradient_rotations: bool = True) -> None:
        super().__init__()
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise FieldError(f"DiffusionNetBlock: width must be a positive integer, got {width!r}")
        self.width = width
        self.diffusion = LearnedTimeDiffusion(width)
        self.gradient_features = SpatialGradientFeatures(width, gradient_rotations)
        sizes = [3 * width, *(hidden if hidden is not None else (width, width)), width]
        layers: list[nn.Module] = []
        for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            if k > 0:
                layers.append(nn.ReLU())
                if dropout > 0:
                    layers.append(nn.Dropout(dropout))
            layers.append(nn.Linear(a, b))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: Tensor, ops: MeshOperators) -> Tensor:
        if x.dim() != 2 or x.shape != (ops.num_vertices, self.width):
            raise FieldError(f"DiffusionNetBlock: x must be [{ops.num_vertices}, {self.width}], got {tuple(x.shape)}")
        diffused = self.diffusion(x, ops)
        csr = ops.grad_csr
        order = csr.perm
        # both tangent components in one product: each neighbour's row is read once for the two
        weights = torch.stack([ops.grad_x.to(x.dtype)[order], ops.grad_y.to(x.dtype)[order]], dim=1)  # [nnz, 2]
        grad_x, grad_y = spmm_mix(csr, diffused.unsqueeze(1), weights.unsqueeze(2)).unbind(1)
        gradient = self.gradient_features(grad_x, grad_y)
        return x + self.mlp(torch.cat([x, diffused, gradient], dim=1))
