"""Lifting and group convolutions on 2D and 3D grids (G-CNNs and steerable CNNs).

Cohen & Welling (2016), "Group Equivariant Convolutional Networks"; Winkels & Cohen (2018), "3D G-CNNs for Pulmonary
Nodule Detection"; Weiler & Cesa (2019), "General E(2)-Equivariant Steerable CNNs".

Update rule (cross-correlation, as torch's conv), with ``psi`` the learned base filter and ``M_h`` the matrix of ``h``:
- lifting, scalar input ``f: [B, C_in, *S]`` -> regular output ``[B, C_out * |G|, *S]``:
  ``y_{c,h}(p) = sum_{c', x} f_{c'}(p + x) psi_{c,c'}(M_h^-1 x)``;
- group convolution, regular input ``[B, C_in * |G|, *S]`` -> regular output ``[B, C_out * |G|, *S]``:
  ``y_{c,h}(p) = sum_{c', k, x} f_{c',k}(p + x) psi_{c,c'}(h^-1 k, M_h^-1 x)``.

Both are equivariant: moving the input by ``g`` moves the output by ``g`` in space and permutes its group axis
(``y_h -> y_{g^-1 h}``). Layers state their fields with field types (``fivefold.groups.FieldType``): the input is
``trivial_field(G, C_in)`` (a lifting convolution) or ``regular_field(G, C_in)``, the output
``regular_field(G, C_out)``;
a regular field occupies ``|G|`` tensor channels, group axis innermost (tensor channel ``c * |G| + h``). One class per
dimension: ``GroupConv2d(in_type, out_type, kernel_size)`` and ``GroupConv3d``. ``LiftingConv2d`` / ``LiftingConv3d``
and the field-count form ``GroupConv2d(C_in, C_out, k, group)`` are deprecated aliases kept for one release.

Once per forward, the filter bank is expanded into an ordinary ``[C_out * |G|, C_in * |G|, *k]`` weight (a gather or
one einsum, see ``fivefold.grids.basis``) and the convolution itself is torch's ``conv2d`` / ``conv3d``. In eval mode
the expanded weight is computed once without autograd and reused until the parameters change or ``train()`` is
called; it is never part of the ``state_dict``. Weight gradients therefore need train mode (input gradients work in
both). Equivariance is exact with stride 1 and the default "same" padding of odd kernels; strides and even kernels
shift the output grid by fractions of a pixel.
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fivefold.errors import FieldError, GroupError, check_option
from fivefold.grids.basis import PixelBasis, SteerableBasis
from fivefold.groups import FieldType, FiniteGroup, cube_rotations, cyclic, regular_field, trivial_field

__all__ = ["GroupConv2d", "GroupConv3d", "LiftingConv2d", "LiftingConv3d"]


def _check_legacy_counts(layer: str, in_channels, out_channels, group) -> None:
    """The checks of the older field-count forms: a finite group and positive field counts."""
    if not isinstance(group, FiniteGroup):
        raise GroupError(f"{layer}: group must be a fivefold.groups.FiniteGroup, got {group!r}")
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise FieldError(f"{layer}: {name} must be a positive integer (or pass FieldTypes), got {value!r}")


def _field_types(layer: str, in_type, out_type, group, default_group, warn_old: bool) -> tuple[FieldType, FieldType]:
    """The layer's field types; the older field-count form ``(C_in, C_out, k, group)`` converts (and warns)."""
    if isinstance(in_type, FieldType) and isinstance(out_type, FieldType):
        if group is not None:
            raise FieldError(f"{layer}: the group comes from the field types; do not pass group={group!r} as well")
        return in_type, out_type
    if isinstance(in_type, FieldType) or isinstance(out_type, FieldType):
        raise FieldError(f"{layer}: give both in_type and out_type as FieldTypes, got {in_type!r} and {out_type!r}")
    group = default_group if group is None else group
    _check_legacy_counts(layer, in_type, out_type, group)
    if warn_old:
        warnings.warn(f"{layer}(in_channels, out_channels, kernel_size, group) is deprecated: use "
                      f"{layer}(regular_field(group, C_in), regular_field(group, C_out), kernel_size)",
                      DeprecationWarning, stacklevel=3)
    return regular_field(group, in_type), regular_field(group, out_type)


class _GroupConvNd(nn.Module):
    def __init__(
        self, in_type: FieldType, out_type: FieldType, kernel_size: int, *, spatial_dims: int, stride: int,
        padding: int | None, dilation: int, bias: bool, basis: str, max_frequency: int | None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        for option, value in (("kernel_size", kernel_size), ("stride", stride), ("dilation", dilation)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise FieldError(f"{name}: {option} must be a positive integer, got {value!r}")
        group = in_type.group
        if out_type.group != group:
            raise GroupError(f"{name}: in_type is a field of {group.name} but out_type of {out_type.group.name}")
        if not isinstance(group, FiniteGroup):
            raise GroupError(f"{name}: group convolutions need a finite group, got {group!r}")
        if not (in_type.is_trivial or in_type.is_regular):
            raise FieldError(f"{name}: in_type must be all trivial fields (a lifting convolution) or all regular "
                             f"fields, got {in_type!r}")
        if not out_type.is_regular:
            raise FieldError(f"{name}: out_type must be regular fields, got {out_type!r} (follow with GroupPool "
                             f"for scalar outputs)")
        lifting = in_type.is_trivial
        in_channels, out_channels = len(in_type), len(out_type)
        if group.dim != spatial_dims:
            raise GroupError(f"{type(self).__name__} convolves {spatial_dims}D grids, but {group.name} acts on "
                             f"R^{group.dim}")
        check_option(basis, ("auto", "pixel", "steerable"), "basis", name)
        if basis == "auto":
            basis = "pixel" if group.acts_exactly_on_grids else "steerable"
        self.in_type, self.out_type = in_type, out_type
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.group = group
        self.spatial_dims = spatial_dims
        self.lifting = lifting
        self.stride = stride
        self.padding = dilation * (kernel_size - 1) // 2 if padding is None else padding
        self.dilation = dilation
        self.basis = basis
        self.in_group_size = 1 if lifting else group.order

        table, inverses = torch.tensor(group.cayley_table), torch.tensor(group.inverses)
        group_index = torch.zeros(group.order, 1, dtype=torch.int64) if lifting else table[inverses]
        if basis == "pixel":
            pixels = PixelBasis(group, kernel_size)
            flat = group_index[:, :, None] * pixels.size + pixels.index[:, None, :]  # [|G|, G_in, k^d]
            self.register_buffer("_flat_index", flat.reshape(-1), persistent=False)
            basis_size = pixels.size
        else:
            steerable = SteerableBasis(group, kernel_size, max_frequency)
            self.register_buffer("_group_index", group_index, persistent=False)
            self.register_buffer("_functions", steerable.functions.to(torch.get_default_dtype()), persistent=False)
            basis_size = steerable.size
        self.basis_size = basis_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, self.in_group_size, basis_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self._cache: tuple[tuple, tuple[Tensor, Tensor | None]] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He initialisation of the expanded filter: each tap has variance ``2 / fan_in`` on average. With pixels as
        the basis that is the usual ``fan_in = C_in * G_in * k^d``; the steerable basis functions have unit norm, so
        a coefficient's variance spreads over the kernel and ``B`` functions take the place of ``k^d`` taps."""
        fan_in = self.in_channels * self.in_group_size * self.basis_size
        nn.init.normal_(self.weight, std=math.sqrt(2.0 / fan_in))
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        self._cache = None

    # -- filter expansion -------------------------------------------------------------------------------------------
    def expand_filter(self) -> tuple[Tensor, Tensor | None]:
        """The ordinary conv weight ``[C_out * |G|, C_in * G_in, *k]`` and bias ``[C_out * |G|]``."""
        order, k, d = self.group.order, self.kernel_size, self.spatial_dims
        out_c, in_c, in_g = self.out_channels, self.in_channels, self.in_group_size
        if self.basis == "pixel":
            gathered = self.weight.reshape(out_c, in_c, -1).index_select(2, self._flat_index)
            filters = gathered.reshape(out_c, in_c, order, in_g, k**d)
        else:
            coefficients = self.weight[:, :, self._group_index]  # [C_out, C_in, |G|, G_in, B]
            filters = torch.einsum("oihgb,hbs->oihgs", coefficients, self._functions.to(self.weight.dtype))
        weight = filters.permute(0, 2, 1, 3, 4).reshape(out_c * order, in_c * in_g, *([k] * d))
        bias = self.bias.repeat_interleave(order) if self.bias is not None else None
        return weight, bias

    def _filter(self) -> tuple[Tensor, Tensor | None]:
        if self.training:
            self._cache = None
            return self.expand_filter()
        key = (self.weight._version, self.weight.data_ptr(), self.weight.dtype, self.weight.device,
               None if self.bias is None else (self.bias._version, self.bias.data_ptr()))
        if self._cache is None or self._cache[0] != key:
            with torch.no_grad():
                self._cache = (key, self.expand_filter())
        return self._cache[1]

    def train(self, mode: bool = True) -> _GroupConvNd:
        self._cache = None
        return super().train(mode)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self._cache = None
        super()._load_from_state_dict(*args, **kwargs)

    # -- forward ------------------------------------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        weight, bias = self._filter()
        conv = F.conv2d if self.spatial_dims == 2 else F.conv3d
        return conv(x, weight, bias, self.stride, self.padding, self.dilation)

    def _check_input(self, x: Tensor) -> None:
        name = type(self).__name__
        expected = self.in_channels * self.in_group_size
        if x.dim() != self.spatial_dims + 2:
            axes = ", ".join(["H", "W"] if self.spatial_dims == 2 else ["D", "H", "W"])
            raise FieldError(f"{name}: input must be [B, C, {axes}], got shape {tuple(x.shape)}")
        if x.shape[1] != expected:
            what = (f"{self.in_channels} scalar channels" if self.lifting else
                    f"{self.in_channels} regular fields of {self.group.name} = {expected} channels "
                    f"(group axis innermost)")
            hint = " (did you mean in_type=trivial_field(...) for the first layer?)" if not self.lifting and \
                x.shape[1] == self.in_channels else ""
            raise FieldError(f"{name}: expected {what}, got {x.shape[1]} channels{hint}")
        if not x.is_floating_point():
            raise FieldError(f"{name}: input must be floating point, got {x.dtype}")

    def extra_repr(self) -> str:
        text = f"{self.in_type!r} -> {self.out_type!r}, kernel_size={self.kernel_size}, basis={self.basis}"
        if self.basis == "steerable":
            text += f" ({self.basis_size} functions)"
        if self.stride != 1:
            text += f", stride={self.stride}"
        if self.bias is None:
            text += ", bias=False"
        return text


class GroupConv2d(_GroupConvNd):
    """Group convolution on images: ``[B, in_type.size, H, W] -> [B, out_type.size, H, W]``.

    Args:
        in_type: ``trivial_field(G, C_in)`` (scalar image channels: a lifting convolution) or
            ``regular_field(G, C_in)``; ``G`` a 2D ``FiniteGroup``. C_4, D_4 (and C_2, D_2) are exact with the pixel
            basis; C_n, D_n for other n use the steerable basis.
        out_type: ``regular_field(G, C_out)`` (``C_out * |G|`` tensor channels).
        kernel_size: odd kernel size k.
        basis: ``"auto"`` (pixel when exact, else steerable), ``"pixel"`` or ``"steerable"``.
        max_frequency: highest circular harmonic of the steerable basis (default ``n // 2``).

    Example::

        >>> import torch
        >>> from fivefold.groups import cyclic, regular_field, trivial_field
        >>> c4 = cyclic(4)
        >>> conv = GroupConv2d(trivial_field(c4, 1), regular_field(c4, 8), 5)
        >>> conv(torch.randn(2, 1, 28, 28)).shape
        torch.Size([2, 32, 28, 28])
    """

    def __init__(self, in_type: FieldType, out_type: FieldType, kernel_size: int, group: FiniteGroup | None = None,
                 *, stride: int = 1, padding: int | None = None, dilation: int = 1, bias: bool = True,
                 basis: str = "auto", max_frequency: int | None = None) -> None:
        in_type, out_type = _field_types(type(self).__name__, in_type, out_type, group, cyclic(4),
                                         warn_old=type(self) is GroupConv2d)
        super().__init__(in_type, out_type, kernel_size, spatial_dims=2, stride=stride, padding=padding,
                         dilation=dilation, bias=bias, basis=basis, max_frequency=max_frequency)


class GroupConv3d(_GroupConvNd):
    """Group convolution on voxels: ``[B, in_type.size, D, H, W] -> [B, out_type.size, D, H, W]``.

    ``in_type``: ``trivial_field(G, C_in)`` (lifting) or ``regular_field(G, C_in)``; ``out_type``:
    ``regular_field(G, C_out)``; ``G`` a 3D group of signed permutations, e.g. the 24 cube rotations
    ``cube_rotations()`` or ``cube_symmetries()`` (O_h), exact on voxel grids (Winkels & Cohen 2018).
    """

    def __init__(self, in_type: FieldType, out_type: FieldType, kernel_size: int, group: FiniteGroup | None = None,
                 *, stride: int = 1, padding: int | None = None, dilation: int = 1, bias: bool = True) -> None:
        in_type, out_type = _field_types(type(self).__name__, in_type, out_type, group,
                                         cube_rotations(), warn_old=type(self) is GroupConv3d)
        super().__init__(in_type, out_type, kernel_size, spatial_dims=3, stride=stride, padding=padding,
                         dilation=dilation, bias=bias, basis="pixel", max_frequency=None)


def _lifting_types(layer: str, in_channels: int, out_channels: int, group: FiniteGroup) -> tuple[FieldType, FieldType]:
    warnings.warn(f"{layer} is deprecated: use GroupConv{layer[-2:]}(trivial_field(group, C_in), "
                  f"regular_field(group, C_out), kernel_size)", DeprecationWarning, stacklevel=3)
    _check_legacy_counts(layer, in_channels, out_channels, group)
    return trivial_field(group, in_channels), regular_field(group, out_channels)


class LiftingConv2d(GroupConv2d):
    """Deprecated alias: ``GroupConv2d(trivial_field(group, in_channels), regular_field(group, out_channels), k)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, group: FiniteGroup | None = None, *,
                 stride: int = 1, padding: int | None = None, dilation: int = 1, bias: bool = True,
                 basis: str = "auto", max_frequency: int | None = None) -> None:
        in_type, out_type = _lifting_types("LiftingConv2d", in_channels, out_channels,
                                           cyclic(4) if group is None else group)
        super().__init__(in_type, out_type, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         bias=bias, basis=basis, max_frequency=max_frequency)


class LiftingConv3d(GroupConv3d):
    """Deprecated alias: ``GroupConv3d(trivial_field(group, in_channels), regular_field(group, out_channels), k)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, group: FiniteGroup | None = None, *,
                 stride: int = 1, padding: int | None = None, dilation: int = 1, bias: bool = True) -> None:
        in_type, out_type = _lifting_types("LiftingConv3d", in_channels, out_channels,
                                           cube_rotations() if group is None else group)
        super().__init__(in_type, out_type, kernel_size, stride=stride, padding=padding, dilation=dilation,
                         bias=bias)
