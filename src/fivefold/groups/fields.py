"""Field types: how a symmetry group acts on the channels of a feature tensor.

A field type is a group and a list of its representations; the channels of a feature tensor are the direct sum of
those representations, in order (escnn's ``FieldType``, e3nn's ``Irreps``). It is the one way a layer in any domain
states what it takes and gives: grids and spheres use the trivial and regular representations of finite groups,
meshes the irreducible representations of SO(2), molecules those of SO(3) and O(3). Features stay plain tensors: a
field type describes a tensor's channel axis, it does not wrap the tensor.

Example::

    >>> from fivefold.groups import cyclic, regular_field, trivial_field
    >>> c4 = cyclic(4)
    >>> hidden = regular_field(c4, 8) + trivial_field(c4, 2)
    >>> hidden
    8×regular(C4) ⊕ 2×trivial
    >>> hidden.size, len(hidden)
    (34, 10)
    >>> hidden.transform(torch.arange(34.0)[None], 1)[0, :8].tolist()   # regular fields: the group axis cycles
    [3.0, 0.0, 1.0, 2.0, 7.0, 4.0, 5.0, 6.0]
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import Tensor

from fivefold.errors import FieldError, GroupError
from fivefold.groups.finite import FiniteGroup
from fivefold.groups.representations import Representation, regular_representation, trivial_representation

__all__ = ["FieldType", "trivial_field", "regular_field", "irreps_field"]


class FieldType:
    """A group and the representations its feature channels carry: ``rho = rho_1 ⊕ rho_2 ⊕ ...``.

    Immutable; equal when the group and the representations are equal, in order.

    Args:
        group: the group acting (``FiniteGroup``, ``SO2()``, ...).
        reprs: representations of ``group``, one per field, in channel order (at least one).

    Attributes:
        size: tensor channels (the sum of the representations' dimensions).
        len(field_type): number of fields.
    """

    __slots__ = ("_group", "_reprs", "_size")

    def __init__(self, group, reprs: Iterable[Representation]) -> None:
        reprs = tuple(reprs)
        if not reprs:
            raise FieldError("FieldType: needs at least one representation")
        for k, rep in enumerate(reprs):
            if not isinstance(rep, Representation):
                raise FieldError(f"FieldType: reprs[{k}] is {type(rep).__name__}, not a fivefold.groups.Representation")
            if rep.group != group:
                raise GroupError(f"FieldType: reprs[{k}] ({rep.label}) represents {rep.group.name}, not {group.name}")
        object.__setattr__(self, "_group", group)
        object.__setattr__(self, "_reprs", reprs)
        object.__setattr__(self, "_size", sum(rep.dim for rep in reprs))

    def __setattr__(self, name, value) -> None:
        raise AttributeError("FieldType is immutable")

    @property
    def group(self):
        return self._group

    @property
    def reprs(self) -> tuple[Representation, ...]:
        return self._reprs

    @property
    def size(self) -> int:
        """Tensor channels: the sum of the representations' dimensions."""
        return self._size

    def __len__(self) -> int:
        return len(self._reprs)

    # -- what kind of fields -----------------------------------------------------------------------------------------
    def count(self, name: str) -> int:
        """How many fields carry the representation called ``name`` (``"trivial"``, ``"regular"``, ...)."""
        return sum(rep.name == name for rep in self._reprs)

    @property
    def is_trivial(self) -> bool:
        """Every field is a scalar (trivial) field."""
        return self.count("trivial") == len(self)

    @property
    def is_regular(self) -> bool:
        """Every field is a regular field (``|G|`` channels, group axis innermost)."""
        return self.count("regular") == len(self)

    # -- the action on a channel axis --------------------------------------------------------------------------------
    def representation(self, g) -> Tensor:
        """``[size, size]`` float64: the block-diagonal ``rho_1(g) ⊕ rho_2(g) ⊕ ...``."""
        return torch.block_diag(*(rep(g) for rep in self._reprs))

    def transform(self, x: Tensor, g, dim: int = 1) -> Tensor:
        """Act with ``g`` on the channel axis ``dim`` of ``x`` (nothing else moves): ``x_c -> sum_d rho(g)_cd x_d``.

        Permutation representations (trivial, regular) reindex channels, exactly; others multiply in ``x.dtype``.
        """
        if x.shape[dim] != self._size:
            raise FieldError(f"{self!r}: axis {dim} of the tensor must have {self._size} channels, "
                             f"got shape {tuple(x.shape)}")
        if self.is_trivial:
            return x
        matrix = self.representation(g)
        if all(rep.is_permutation for rep in self._reprs):
            index = torch.as_tensor(np.argmax(matrix.numpy(), axis=1), device=x.device)
            return x.index_select(dim, index)
        moved = torch.tensordot(matrix.to(dtype=x.dtype, device=x.device), x.movedim(dim, 0), dims=1)
        return moved.movedim(0, dim)

    # -- direct sums and comparison ----------------------------------------------------------------------------------
    def __add__(self, other: FieldType) -> FieldType:
        """Direct sum ``self ⊕ other``: the channels of ``self`` first."""
        if not isinstance(other, FieldType):
            return NotImplemented
        if other.group != self._group:
            raise GroupError(f"direct sum of field types of different groups: {self._group.name} and "
                             f"{other.group.name}")
        return FieldType(self._group, self._reprs + other.reprs)

    def __mul__(self, times: int) -> FieldType:
        """``n`` copies side by side: ``field_type * 3 = field_type ⊕ field_type ⊕ field_type``."""
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            return NotImplemented
        return FieldType(self._group, self._reprs * times)

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldType):
            return NotImplemented
        return self._group == other.group and self._reprs == other.reprs

    def __hash__(self) -> int:
        return hash((self._group.name, self._reprs))

    def __repr__(self) -> str:
        runs: list[list] = []
        for rep in self._reprs:
            if runs and runs[-1][0] == rep:
                runs[-1][1] += 1
            else:
                runs.append([rep, 1])
        return " ⊕ ".join(f"{count}×{rep.label}" for rep, count in runs)


def _count(n: int, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise FieldError(f"{what}: the number of fields must be a positive integer, got {n!r}")
    return int(n)


def trivial_field(group, n: int) -> FieldType:
    """``n`` scalar fields of ``group`` (finite, or continuous such as ``SO2()``): ``n`` channels that no group element
    changes (only their positions move)."""
    return FieldType(group, [trivial_representation(group)] * _count(n, "trivial_field"))


def regular_field(group: FiniteGroup, n: int) -> FieldType:
    """``n`` regular fields of the finite ``group``: ``n * |G|`` channels, group axis innermost, permuted by
    ``g``: channel ``c * |G| + h`` moves to ``c * |G| + g h``."""
    if not isinstance(group, FiniteGroup):
        raise GroupError(f"regular_field: regular fields need a finite group, not {group!r}")
    return FieldType(group, [regular_representation(group)] * _count(n, "regular_field"))


def irreps_field(reprs: Iterable[Representation]) -> FieldType:
    """A field type from irreducible representations of one group (e.g. ``[so2_irrep(0), so2_irrep(1)]``)."""
    reprs = list(reprs)
    if not reprs:
        raise FieldError("irreps_field: needs at least one representation")
    return FieldType(reprs[0].group, reprs)
