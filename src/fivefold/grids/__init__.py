"""Rotation-equivariant CNNs on 2D and 3D grids: lifting and group convolutions (exact for C_4, D_4 and the cube
group O; steerable for C_n, D_n), group pooling and equivariant batch norm.

Fields are stated with field types (``fivefold.groups``): a scalar field (``trivial_field``) is one tensor channel; a
regular field (``regular_field``) of a group G occupies |G| tensor channels with the group axis innermost,
``[B, C * |G|, *spatial]``. Every layer takes its input field type first.

Example::

    >>> import torch
    >>> from fivefold.groups import cyclic, regular_field, trivial_field
    >>> from fivefold.grids import GroupConv2d, GroupPool
    >>> c4 = cyclic(4)
    >>> image, hidden = trivial_field(c4, 1), regular_field(c4, 8)
    >>> x = torch.randn(2, 1, 28, 28)
    >>> y = GroupConv2d(hidden, hidden, 3)(torch.relu(GroupConv2d(image, hidden, 5)(x)))   # [2, 32, 28, 28]
    >>> GroupPool(hidden)(y).shape                                                         # invariant to C4's axis
    torch.Size([2, 8, 28, 28])
"""

from fivefold.grids.basis import PixelBasis, SteerableBasis
from fivefold.grids.conv import GroupConv2d, GroupConv3d, LiftingConv2d, LiftingConv3d
from fivefold.grids.fields import GroupBatchNorm, GroupPool
from fivefold.grids.models import GCNNClassifier, count_parameters

__all__ = [
    "GroupConv2d", "GroupConv3d", "GroupPool", "GroupBatchNorm", "LiftingConv2d", "LiftingConv3d",
    "GCNNClassifier", "count_parameters", "PixelBasis", "SteerableBasis",
]
