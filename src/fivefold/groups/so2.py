"""Fields of SO(2) irreps, batched over many angles: the field types of gauge-equivariant mesh layers.

On a surface every vertex has its own tangent frame, and the frame can be turned by any angle (a *gauge*
transformation). A feature of frequency ``k`` (the irrep ``so2_irrep(k)``) turns by ``k`` times that angle: frequency 0
is a scalar, frequency 1 a tangent vector, frequency 2 a 2-tensor such as a line field. Layers hold a ``FieldType`` of
such irreps; this module reads off their frequencies and applies ``rho(angle_v)`` to every vertex at once, which is
what a gauge transformation and parallel transport both do.

Example::

    >>> from fivefold.groups import so2_band_field, so2_frequencies
    >>> field = so2_band_field(2, 2)          # two copies of frequencies 0, 1, 2 (a band-limited regular field)
    >>> field.size, so2_frequencies(field)
    (10, [0, 1, 2, 0, 1, 2])
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

from fivefold.errors import FieldError
from fivefold.groups.fields import FieldType
from fivefold.groups.representations import SO2, so2_irrep

__all__ = ["so2_frequencies", "so2_band_field", "so2_rotate"]

_IRREP = re.compile(r"irrep\((\d+)\)")


def so2_frequencies(field_type: FieldType) -> list[int]:
    """The frequency of each field of an SO(2) field type, in channel order (``trivial`` counts as 0)."""
    if not isinstance(field_type, FieldType) or not isinstance(field_type.group, SO2):
        raise FieldError(f"expected a field type of SO(2) irreps, got {field_type!r}")
    frequencies = []
    for rep in field_type.reprs:
        if rep.name == "trivial":
            frequencies.append(0)
            continue
        match = _IRREP.fullmatch(rep.name)
        if match is None:
            raise FieldError(f"{field_type!r}: {rep.name} is not an irrep of SO(2); build fields with so2_irrep(k)")
        frequencies.append(int(match.group(1)))
    return frequencies


def so2_band_field(copies: int, max_frequency: int) -> FieldType:
    """``copies`` band-limited regular fields: each copy is frequencies ``0, 1, ..., max_frequency`` side by side
    (``1 + 2 * max_frequency`` channels per copy), the layout the regular nonlinearity of GEM-CNN samples."""
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise FieldError(f"so2_band_field: copies must be a positive integer, got {copies!r}")
    if isinstance(max_frequency, bool) or not isinstance(max_frequency, int) or max_frequency < 0:
        raise FieldError(f"so2_band_field: max_frequency must be a non-negative integer, got {max_frequency!r}")
    return FieldType(SO2(), [so2_irrep(k) for k in range(max_frequency + 1)] * copies)


def so2_rotate(x: Tensor, field_type: FieldType, angles: Tensor) -> Tensor:
    """``rho(angles[n]) x[n]`` for every row: each frequency-``k`` pair of channels turns by ``k * angles[n]``.

    Args:
        x: ``[N, C]`` features, ``C = field_type.size``.
        field_type: a field type of SO(2) irreps.
        angles: ``[N]`` radians (or a float, the same for every row).

    Returns:
        ``[N, C]`` in ``x``'s dtype; differentiable in ``x`` and ``angles``.
    """
    frequencies = so2_frequencies(field_type)
    if x.dim() != 2 or x.shape[1] != field_type.size:
        raise FieldError(f"so2_rotate: x must be [N, {field_type.size}] for {field_type!r}, got {tuple(x.shape)}")
    angles = torch.as_tensor(angles, dtype=x.dtype, device=x.device)
    if angles.dim() == 0:
        angles = angles.expand(x.shape[0])
    if angles.shape != (x.shape[0],):
        raise FieldError(f"so2_rotate: angles must be [{x.shape[0]}], got {tuple(angles.shape)}")
    parts, start = [], 0
    for k in frequencies:
        if k == 0:
            parts.append(x[:, start:start + 1])
            start += 1
            continue
        a, b = x[:, start], x[:, start + 1]
        cos, sin = torch.cos(k * angles), torch.sin(k * angles)
        parts.append(torch.stack((cos * a - sin * b, sin * a + cos * b), dim=1))
        start += 2
    return torch.cat(parts, dim=1)
