"""Rotation-equivariant CNNs on 2D and 3D grids: lifting and group convolutions (exact for C_4, D_4 and the cube
group O; steerable for C_n, D_n), group pooling and equivariant batch norm.

Fields: a scalar field is one tensor channel; a regular field of a group G occupies |G| tensor channels with the group
axis innermost, ``[B, C * |G|, *spatial]``. Layer channel arguments count fields.

Example::

    >>> import torch
    >>> from fivefold.groups import cyclic
    >>> from fivefold.grids import GroupConv2d, GroupPool, LiftingConv2d
    >>> c4 = cyclic(4)
    >>> x = torch.randn(2, 1, 28, 28)
    >>> y = GroupConv2d(8, 8, 3, c4)(torch.relu(LiftingConv2d(1, 8, 5, c4)(x)))   # [2, 32, 28, 28]
    >>> GroupPool(c4)(y).shape                                                     # invariant to C4's axis
    torch.Size([2, 8, 28, 28])
"""

from fivefold.grids.basis import PixelBasis, SteerableBasis
from fivefold.grids.conv import GroupConv2d, GroupConv3d, LiftingConv2d, LiftingConv3d
from fivefold.grids.fields import GroupBatchNorm, GroupPool
from fivefold.grids.models import GCNNClassifier, count_parameters

__all__ = [
    "LiftingConv2d", "GroupConv2d", "LiftingConv3d", "GroupConv3d", "GroupPool", "GroupBatchNorm",
    "GCNNClassifier", "count_parameters", "PixelBasis", "SteerableBasis",
]
