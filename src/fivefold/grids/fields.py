"""Layers on regular fields that are not convolutions: group pooling and equivariant batch norm.

Pointwise nonlinearities (``torch.relu``, ``nn.ELU``, ...) act on each tensor channel alone, so they commute with the
permutation of the group axis and with moving the grid: apply them to regular fields as they are. Spatial pooling
(``max_pool2d`` with even windows on even grids) is exact for 90-degree groups when the window tiling is symmetric.
"""

from __future__ import annotations

import warnings

from torch import Tensor, nn

from fivefold.errors import FieldError, GroupError, check_option
from fivefold.groups import FieldType, FiniteGroup, regular_field, trivial_field

__all__ = ["GroupPool", "GroupBatchNorm"]


def _regular_type(layer: str, in_type, legacy_fields: int | None = None) -> FieldType | FiniteGroup:
    """The layer's regular input type; a bare group (the older form) is kept, with a warning, as "any number of
    regular fields of this group" (``GroupPool``) or turned into ``legacy_fields`` regular fields."""
    if isinstance(in_type, FieldType):
        if not in_type.is_regular:
            raise FieldError(f"{layer}: in_type must be regular fields, got {in_type!r}")
        return in_type
    if not isinstance(in_type, FiniteGroup):
        raise GroupError(f"{layer}: in_type must be a FieldType of regular fields, got {in_type!r}")
    form = "GroupPool(group)" if legacy_fields is None else "GroupBatchNorm(num_fields, group)"
    warnings.warn(f"{form} is deprecated: pass the field type, {layer}(regular_field(group, n))",
                  DeprecationWarning, stacklevel=3)
    return in_type if legacy_fields is None else regular_field(in_type, legacy_fields)


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
        in_type: ``regular_field(G, C)``.
        mode: ``"max"`` or ``"mean"``.

    Attributes:
        out_type: ``trivial_field(G, C)``.
    """

    def __init__(self, in_type: FieldType, mode: str = "max") -> None:
        super().__init__()
        check_option(mode, ("max", "mean"), "mode", "GroupPool")
        in_type = _regular_type("GroupPool", in_type)
        self.in_type = in_type if isinstance(in_type, FieldType) else None
        self.group = in_type.group if isinstance(in_type, FieldType) else in_type
        self.mode = mode

    @property
    def out_type(self) -> FieldType | None:
        return None if self.in_type is None else trivial_field(self.group, len(self.in_type))

    def forward(self, x: Tensor) -> Tensor:
        fields = _split_fields(x, self.group, None if self.in_type is None else len(self.in_type), "GroupPool")
        return fields.amax(dim=2) if self.mode == "max" else fields.mean(dim=2)

    def extra_repr(self) -> str:
        return f"{self.in_type!r}, mode={self.mode}" if self.in_type is not None else \
            f"group={self.group.name}, mode={self.mode}"


class GroupBatchNorm(nn.Module):
    """Batch norm of regular fields: one mean, variance, scale and shift per field, shared by its ``|G|`` channels
    (and all positions), so normalising commutes with the group action.

    Args:
        in_type: ``regular_field(G, C)`` (the input has ``C * |G|`` channels).
        eps, momentum, affine, track_running_stats: as ``torch.nn.BatchNorm2d``.

    Shapes:
        x: ``[B, C * |G|, *S]`` -> same.
    """

    def __init__(self, in_type: FieldType, group: FiniteGroup | None = None, eps: float = 1e-5,
                 momentum: float = 0.1, affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__()
        if not isinstance(in_type, FieldType):  # the older form GroupBatchNorm(num_fields, group)
            if isinstance(in_type, bool) or not isinstance(in_type, int) or in_type < 1:
                raise FieldError(f"GroupBatchNorm: in_type must be a FieldType of regular fields, got {in_type!r}")
            in_type = _regular_type("GroupBatchNorm", group, legacy_fields=in_type)
        elif group is not None:
            raise FieldError("GroupBatchNorm: the group comes from in_type; do not pass it as well")
        else:
            in_type = _regular_type("GroupBatchNorm", in_type)
        self.in_type = in_type
        self.num_fields = len(in_type)
        self.group = in_type.group
        self.norm = nn.BatchNorm1d(self.num_fields, eps=eps, momentum=momentum, affine=affine,
                                   track_running_stats=track_running_stats)

    def forward(self, x: Tensor) -> Tensor:
        fields = _split_fields(x, self.group, self.num_fields, "GroupBatchNorm")
        flat = fields.reshape(x.shape[0], self.num_fields, -1)
        return self.norm(flat).reshape(x.shape)

    def extra_repr(self) -> str:
        return f"{self.in_type!r}"
