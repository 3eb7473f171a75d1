"""Layers on regular fields that are not convolutions: group pooling and equivariant batch norm.

Pointwise nonlinearities (``torch.relu``, ``nn.ELU``, ...) act on each tensor channel alone, so they commute with the
permutation of the group axis and with moving the grid: apply them to regular fields as they are. Spatial pooling
(``max_pool2d`` with even windows on even grids) is exact for 90-degree groups when the window tiling is symmetric.
"""

from __future__ import annotations

from torch import Tensor, nn

from fivefold.errors import FieldError
from fivefold.groups import FiniteGroup

__all__ = ["GroupPool", "GroupBatchNorm"]


def _split_fields(x: Tensor, group: FiniteGroup, fields: int | None, layer: str) -> Tensor:
    """``[B, C * |G|, *S] -> [B, C, |G|, *S]`` with a clear error when the channels do not fit."""
    if x.dim() < 2:
        raise FieldError(f"{layer}: input must be [B, C * |G|, ...], got shape {tuple(x.shape)}")
    order = group.order
    if x.shape[1] % order or (fields is not None and x.shape[1] != fields * order):
        want = f"{fields} regular fields of {group.name} = {fields * order}" if fields is not None else \
            f"a multiple of |{group.name}| = {order}"
        raise FieldError(f"{layer}: expected {want} channels (group axis innermost), got {x.shape[1]}")
    return x.reshape(x.shape[0], x.shape[1] // order, order, *x.shape[2:])


class GroupPool(nn.Module):
    """Pool each regular field over its group axis: ``[B, C * |G|, *S] -> [B, C, *S]``.

    The result is a scalar (trivial) field: invariant to the group axis permutation, still equivariant in space.
    Follow with global spatial pooling for an invariant vector.

    Args:
        group: the group of the regular fields.
        mode: ``"max"`` or ``"mean"``.
    """

    def __init__(self, group: FiniteGroup, mode: str = "max") -> None:
        super().__init__()
        if mode not in ("max", "mean"):
            raise ValueError(f"GroupPool: mode must be 'max' or 'mean', got {mode!r}")
        self.group = group
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        fields = _split_fields(x, self.group, None, "GroupPool")
        return fields.amax(dim=2) if self.mode == "max" else fields.mean(dim=2)

    def extra_repr(self) -> str:
        return f"group={self.group.name}, mode={self.mode}"


class GroupBatchNorm(nn.Module):
    """Batch norm of regular fields: one mean, variance, scale and shift per field, shared by its ``|G|`` channels
    (and all positions), so normalising commutes with the group action.

    Args:
        num_fields: regular fields C (the input has ``C * |G|`` channels).
        group: the group of the fields.
        eps, momentum, affine, track_running_stats: as ``torch.nn.BatchNorm2d``.

    Shapes:
        x: ``[B, C * |G|, *S]`` -> same.
    """

    def __init__(self, num_fields: int, group: FiniteGroup, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__()
        self.num_fields = num_fields
        self.group = group
        self.norm = nn.BatchNorm1d(num_fields, eps=eps, momentum=momentum, affine=affine,
                                   track_running_stats=track_running_stats)

    def forward(self, x: Tensor) -> Tensor:
        fields = _split_fields(x, self.group, self.num_fields, "GroupBatchNorm")
        flat = fields.reshape(x.shape[0], self.num_fields, -1)
        return self.norm(flat).reshape(x.shape)

    def extra_repr(self) -> str:
        return f"{self.num_fields}, group={self.group.name}"
