"""The field types of the icosahedral CNN: fields of the gauge group C_6.

A frame on the icosahedral grid can be turned by multiples of 60 degrees (the six lattice directions), so the gauge
group is C_6 and a layer's fields are scalar (``trivial_field(n)``: one channel each) or regular (``regular_field(n)``:
six channels each, one per orientation, orientation axis innermost). They are ``fivefold.groups.FieldType``s like every
other domain's; these helpers fix the group.

Example::

    >>> from fivefold.spheres import regular_field, trivial_field
    >>> regular_field(4) + trivial_field(2)
    4×regular(C6) ⊕ 2×trivial
"""

from __future__ import annotations

import warnings

from fivefold.errors import FieldError, check_option
from fivefold.groups import FieldType, cyclic
from fivefold.groups import regular_field as _group_regular_field
from fivefold.groups import trivial_field as _group_trivial_field

__all__ = ["GAUGE_GROUP", "trivial_field", "regular_field"]

GAUGE_GROUP = cyclic(6)
ORIENTATIONS = GAUGE_GROUP.order


def trivial_field(n: int) -> FieldType:
    """``n`` scalar fields on the icosahedral grid (gauge invariant): ``n`` channels."""
    return _group_trivial_field(GAUGE_GROUP, n)


def regular_field(n: int) -> FieldType:
    """``n`` regular fields of the gauge group C_6: ``6 n`` channels, orientation axis innermost."""
    return _group_regular_field(GAUGE_GROUP, n)


def field_kind(field: FieldType | str, where: str) -> str:
    """``"trivial"`` or ``"regular"``: what every field of ``field`` is (a C_6 field type, or that name itself)."""
    if isinstance(field, FieldType):
        if field.group != GAUGE_GROUP:
            raise FieldError(f"{where}: icosahedral layers take fields of the gauge group C6, got {field!r}")
        if field.is_trivial:
            return "trivial"
        if field.is_regular:
            return "regular"
        raise FieldError(f"{where}: the fields must be all trivial or all regular, got {field!r}")
    check_option(field, ("trivial", "regular"), "field (a FieldType of C6, or the kind)", where)
    return field


def legacy_type(where: str, count: int, field: str, form: str) -> FieldType:
    """The field type an older call form meant (``count`` fields of kind ``field``), with a deprecation warning."""
    warnings.warn(f"{where}({form}) is deprecated: pass field types, e.g. {where}(regular_field(n), ...) from "
                  f"fivefold.spheres", DeprecationWarning, stacklevel=3)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise FieldError(f"{where}: the number of fields must be a positive integer, got {count!r}")
    return (regular_field if field_kind(field, where) == "regular" else trivial_field)(count)
