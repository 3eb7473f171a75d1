"""Ready-made mesh networks: ``GEMCNN``, ``DiffusionNet`` and ``GeodesicCNN``, each ``model(x, ops) -> [V, out]``
(per-vertex outputs; ``faces_from_vertices`` averages them onto faces, ``global_mean`` pools a mesh to one vector).

Each is a stack of its paper's layer between per-vertex linear maps. Inputs are per-vertex scalars (xyz, or the
heat-kernel signature, which is invariant to rigid motions and isometries).
"""

from __future__ import annotations

from torch import Tensor, nn

from fivefold.errors import FieldError
from fivefold.groups import SO2, so2_band_field, trivial_field
from fivefold.meshes.diffusion import DiffusionNetBlock
from fivefold.meshes.gem import GEMConv, GEMResBlock, RegularNonlinearity
from fivefold.meshes.geodesic import GeodesicConv
from fivefold.meshes.precompute import MeshOperators

__all__ = ["GEMCNN", "DiffusionNet", "GeodesicCNN", "faces_from_vertices", "global_mean"]


def _positive(name: str, value: int, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FieldError(f"{where}: {name} must be a positive integer, got {value!r}")


def faces_from_vertices(x: Tensor, faces: Tensor) -> Tensor:
    """``[F, C]``: the mean of each face's three vertex rows of ``x [V, C]``."""
    return x[faces].mean(dim=1)


def global_mean(x: Tensor, mass: Tensor) -> Tensor:
    """``[C]``: the area-weighted mean of ``x [V, C]`` over the surface (``mass [V]`` the vertex areas)."""
    weights = mass.to(x.dtype)
    return (weights[:, None] * x).sum(dim=0) / weights.sum()


class GEMCNN(nn.Module):
    """A GEM-CNN (de Haan et al. 2021): scalar input, ``layers`` gauge-equivariant convolutions on band-limited
    fields of frequencies ``0..max_frequency`` with the regular nonlinearity, scalar output of each vertex.

    Args:
        in_channels, out_channels: scalar widths in and out.
        copies: band-limited fields per hidden layer (``copies * (2 M + 1)`` channels).
        max_frequency: ``M``.
        layers: number of ``GEMConv`` layers (>= 2).
        samples: angles of the regular nonlinearity (default ``4 M + 4``).
        head: hidden width of the per-vertex MLP after the last convolution (0: a linear map).
        residual: group the convolutions in pairs as ``GEMResBlock``s with skip connections (the architecture of
            the paper's FAUST network; ``layers`` must then be even).
    """

    def __init__(self, in_channels: int, out_channels: int, *, copies: int = 16, max_frequency: int = 2,
                 layers: int = 4, samples: int | None = None, head: int = 0, residual: bool = False) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("copies", copies)):
            _positive(name, value, "GEMCNN")
        if isinstance(layers, bool) or not isinstance(layers, int) or layers < 2:
            raise FieldError(f"GEMCNN: layers must be an integer >= 2, got {layers!r}")
        if residual and layers % 2:
            raise FieldError(f"GEMCNN: residual blocks hold two convolutions each, so layers must be even, "
                             f"got {layers}")
        hidden = so2_band_field(copies, max_frequency)
        scalars_in = trivial_field(SO2(), in_channels)
        scalars_out = trivial_field(SO2(), head or out_channels)
        self.residual = residual
        if residual:
            types = [scalars_in] + [hidden] * (layers // 2 - 1) + [scalars_out]
            self.blocks = nn.ModuleList(
                GEMResBlock(a, hidden, b, samples=samples, last=i == layers // 2 - 1)
                for i, (a, b) in enumerate(zip(types[:-1], types[1:], strict=True)))
        else:
            self.convs = nn.ModuleList([GEMConv(scalars_in, hidden)])
            self.convs.extend(GEMConv(hidden, hidden) for _ in range(layers - 2))
            self.nonlinearities = nn.ModuleList(RegularNonlinearity(hidden, samples) for _ in range(layers - 1))
            self.last = GEMConv(hidden, scalars_out)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(head, out_channels)) if head else nn.Identity()

    def forward(self, x: Tensor, ops: MeshOperators) -> Tensor:
        if self.residual:
            for block in self.blocks:
                x = block(x, ops)
            return self.head(x)
        for conv, nonlinearity in zip(self.convs, self.nonlinearities, strict=True):
            x = nonlinearity(conv(x, ops))
        return self.head(self.last(x, ops))


class DiffusionNet(nn.Module):
    """DiffusionNet (Sharp et al. 2022): a linear map to ``width``, ``blocks`` DiffusionNet blocks, a linear map out.

    Args:
        in_channels, out_channels: widths in and out.
        width: the blocks' width (the paper uses 128 or 256).
        blocks: number of blocks (the paper's default 4).
        dropout: dropout inside each block's MLP.
    """

    def __init__(self, in_channels: int, out_channels: int, *, width: int = 128, blocks: int = 4,
                 dropout: float = 0.5) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("width", width),
                            ("blocks", blocks)):
            _positive(name, value, "DiffusionNet")
        self.first = nn.Linear(in_channels, width)
        self.blocks = nn.ModuleList(DiffusionNetBlock(width, dropout=dropout) for _ in range(blocks))
        self.last = nn.Linear(width, out_channels)

    def forward(self, x: Tensor, ops: MeshOperators) -> Tensor:
        x = self.first(x)
        for block in self.blocks:
            x = block(x, ops)
        return self.last(x)


class GeodesicCNN(nn.Module):
    """Geodesic convolutions with angular max pooling (Masci et al. 2015), ReLU between them.

    Args:
        in_channels, out_channels: widths in and out.
        width: hidden width; layers: number of ``GeodesicConv`` layers (>= 1); rotations: see ``GeodesicConv``.
    """

    def __init__(self, in_channels: int, out_channels: int, *, width: int = 64, layers: int = 4,
                 rotations: int = 8) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("width", width),
                            ("layers", layers)):
            _positive(name, value, "GeodesicCNN")
        sizes = [in_channels] + [width] * layers
        self.convs = nn.ModuleList(GeodesicConv(a, b, rotations=rotations)
                                   for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.last = nn.Linear(width, out_channels)

    def forward(self, x: Tensor, ops: MeshOperators) -> Tensor:
        for conv in self.convs:
            x = conv(x, ops).relu()
        return self.last(x)
