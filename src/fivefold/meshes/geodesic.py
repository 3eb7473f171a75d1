"""Geodesic convolution on local polar patches.

Masci, Boscaini, Bronstein & Vandergheynst, "Geodesic convolutional neural networks on Riemannian manifolds"
(ICCV Workshops 2015), in the learnable-patch form of MoNet (Monti et al., "Geometric deep learning on graphs and
manifolds using mixture model CNNs", CVPR 2017).

Around each vertex ``p`` the neighbours ``q`` get polar coordinates ``(rho_pq, theta_pq)``: ``rho`` the distance
(for the 1-ring the edge length, a first-order geodesic distance) divided by the mesh's mean edge length, ``theta`` the
angle in ``p``'s tangent frame. ``J`` Gaussian bins ``w_j(rho, theta) = exp(-(rho - mu_j)^2 / 2 s_j^2 -
wrap(theta - nu_j)^2 / 2 r_j^2)`` with learned centres and widths read the patch,

    patch_j(p) = sum_q w_j(rho_pq, theta_pq) x_q / sum_q w_j(rho_pq, theta_pq),
    out_p      = W_0 x_p + sum_j W_j patch_j(p) + b.

The angle origin of a patch is the arbitrary tangent frame. Masci et al. remove that ambiguity with *angular max
pooling*: the filter is applied at ``R`` rotations (``theta -> theta + 2 pi r / R``) and the largest response is kept
per output channel. With ``rotations = R > 1`` the layer is exactly invariant to frame rotations by multiples of
``2 pi / R`` and approximately to others; with ``rotations = 1`` it is MoNet, which depends on the frames.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from fivefold.errors import FieldError
from fivefold.meshes.precompute import MeshOperators
from fivefold.ops import spmm_mix

__all__ = ["GeodesicConv"]


class GeodesicConv(nn.Module):
    """Convolution on geodesic polar patches with Gaussian bins (Masci et al. 2015; Monti et al. 2017).

    Args:
        in_channels, out_channels: feature widths.
        radial, angular: the bins are initialised on a ``radial x angular`` polar grid (``J = radial * angular``).
        rotations: ``R`` for angular max pooling (1: none, plain MoNet).
        bias: add a learned bias.

    Shapes:
        ``x: [V, in_channels] -> [V, out_channels]``; ``ops``: the mesh's ``MeshOperators``.
    """

    def __init__(self, in_channels: int, out_channels: int, *, radial: int = 2, angular: int = 8,
                 rotations: int = 8, bias: bool = True) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("radial", radial),
                            ("angular", angular), ("rotations", rotations)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise FieldError(f"GeodesicConv: {name} must be a positive integer, got {value!r}")
        self.in_channels, self.out_channels, self.rotations = in_channels, out_channels, rotations
        bins = radial * angular
        rho = (torch.arange(radial, dtype=torch.float64) + 0.5) * (1.5 / radial)
        theta = torch.arange(angular, dtype=torch.float64) * (2 * math.pi / angular)
        self.rho_centre = nn.Parameter(rho.repeat_interleave(angular).to(torch.get_default_dtype()))
        self.theta_centre = nn.Parameter(theta.repeat(radial).to(torch.get_default_dtype()))
        self.log_rho_width = nn.Parameter(torch.full((bins,), math.log(0.75 / radial)))
        self.log_theta_width = nn.Parameter(torch.full((bins,), math.log(math.pi / angular)))
        scale = 1.0 / math.sqrt(in_channels * (bins + 1))
        self.weight = nn.Parameter(torch.randn(bins, in_channels, out_channels) * scale)
        self.self_weight = nn.Parameter(torch.randn(in_channels, out_channels) * scale)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def bin_weights(self, rho: Tensor, theta: Tensor) -> Tensor:
        """``[..., J]``: the Gaussian bins at the polar coordinates ``rho, theta [...]`` (broadcast together)."""
        wrapped = torch.remainder(theta[..., None] - self.theta_centre + math.pi, 2 * math.pi) - math.pi
        return torch.exp(-0.5 * ((rho[..., None] - self.rho_centre) / self.log_rho_width.exp()).square()
                         - 0.5 * (wrapped / self.log_theta_width.exp()).square())

    def forward(self, x: Tensor, ops: MeshOperators) -> Tensor:
        if x.dim() != 2 or x.shape != (ops.num_vertices, self.in_channels):
            raise FieldError(f"GeodesicConv: x must be [{ops.num_vertices}, {self.in_channels}], got "
                             f"{tuple(x.shape)}")
        csr = ops.edge_csr
        entries = csr.perm
        length = ops.length.to(x.dtype)
        rho = length[entries] / length.mean().clamp_min(torch.finfo(x.dtype).tiny)
        theta = ops.angle.to(x.dtype)[entries]
        # W_j applied before the patch sum (both are linear): one [V, J, C_out] product serves every rotation
        transformed = torch.einsum("vc,jco->vjo", x, self.weight)
        rows = csr.rows
        turns = torch.arange(self.rotations, dtype=x.dtype, device=x.device) * (2 * math.pi / self.rotations)
        w = self.bin_weights(rho[:, None], theta[:, None] + turns)  # [nnz, R, J]
        total = torch.zeros(x.shape[0], *w.shape[1:], dtype=w.dtype, device=w.device).index_add_(0, rows, w)
        normalised = w / total.clamp_min(1e-12)[rows]
        # every rotation's response sum_j W_j patch_j in one product: each neighbour's [J, C_out] row read once
        responses = spmm_mix(csr, transformed, normalised)  # [V, R, C_out]
        out = responses.amax(dim=1) + x @ self.self_weight
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"{self.in_channels} -> {self.out_channels}, bins={self.weight.shape[0]}, rotations={self.rotations}"
