"""Reference G-CNN classifiers for images and volumes; with ``group=trivial(d)`` they are ordinary CNNs, so a CNN
and a G-CNN of the same architecture can be compared at an equal parameter budget.

Architecture (Cohen & Welling 2016 use the same pattern of conv, norm, ReLU and pooling for their P4CNN):
lifting conv -> [group conv, group batch norm, ReLU] blocks with 2x spatial max pooling after some of them ->
group pooling (max over the group axis) -> global spatial mean -> linear classifier. The logits are invariant to the
group (exactly for C_4, D_4 and O on even grids whose pooling windows tile symmetrically).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from fivefold.grids.conv import GroupConv2d, GroupConv3d
from fivefold.grids.fields import GroupBatchNorm, GroupPool
from fivefold.groups import FiniteGroup, regular_field, trivial_field

__all__ = ["GCNNClassifier", "count_parameters"]


class GCNNClassifier(nn.Module):
    """A G-CNN image/volume classifier.

    Args:
        in_channels: scalar input channels.
        num_classes: outputs.
        group: a 2D group (images) or 3D group (volumes); ``trivial(2)`` / ``trivial(3)`` gives a plain CNN.
        widths: regular fields per conv layer; the first layer lifts.
        pool_after: indices of the layers followed by 2x max pooling.
        kernel_size: first layer's kernel; later layers use 3 unless ``kernel_sizes`` says otherwise.
        kernel_sizes: one odd kernel size per layer (overrides ``kernel_size``); a final 1x1 layer widens the
            invariant feature vector cheaply.
        dropout: before the classifier.
        basis: filter basis for 2D groups (``"auto"``: pixel when exact, else steerable).

    Shapes:
        x: ``[B, C, H, W]`` or ``[B, C, D, H, W]`` -> ``[B, num_classes]``.
    """

    def __init__(self, in_channels: int, num_classes: int, group: FiniteGroup, widths: Sequence[int],
                 pool_after: Sequence[int] = (1, 3), kernel_size: int = 5, dropout: float = 0.0,
                 basis: str = "auto", kernel_sizes: Sequence[int] | None = None) -> None:
        super().__init__()
        if kernel_sizes is None:
            kernel_sizes = [kernel_size] + [3] * (len(widths) - 1)
        if len(kernel_sizes) != len(widths):
            raise ValueError(f"GCNNClassifier: {len(widths)} widths but {len(kernel_sizes)} kernel sizes")
        self.group = group
        self.pool_after = set(pool_after)
        planar = group.dim == 2
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        in_type = trivial_field(group, in_channels)
        for layer, width in enumerate(widths):
            k = kernel_sizes[layer]
            out_type = regular_field(group, width)
            conv = GroupConv2d(in_type, out_type, k, basis=basis) if planar else GroupConv3d(in_type, out_type, k)
            self.convs.append(conv)
            self.norms.append(GroupBatchNorm(out_type))
            in_type = out_type
        self.group_pool = GroupPool(in_type, "max")
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(widths[-1], num_classes)
        self._max_pool = F.max_pool2d if planar else F.max_pool3d

    def features(self, x: Tensor) -> Tensor:
        """``[B, widths[-1]]`` group- and translation-invariant features."""
        for layer, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            x = F.relu(norm(conv(x)))
            if layer in self.pool_after:
                x = self._max_pool(x, 2)
        x = self.group_pool(x)
        return x.flatten(2).mean(dim=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.features(x)))


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
