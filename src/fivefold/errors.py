"""The fivefold error hierarchy.

Every error fivefold raises on bad input derives from :class:`FivefoldError`, and also from the builtin
exception a Python user would expect (``ValueError`` for bad values, ``OSError`` for bad files), so
``except ValueError`` keeps working. Messages say what was wrong, where, and what to do.
"""

__all__ = ["FivefoldError", "GraphError", "OpsError", "GroupError", "FieldError", "DataError", "ChecksumError"]


class FivefoldError(Exception):
    """Base class of every error fivefold raises on purpose."""


class GraphError(FivefoldError, ValueError):
    """A graph (edge index, features, labels, masks) is malformed; the message names the field and position."""


class OpsError(FivefoldError, ValueError):
    """An op (scatter, segment, sparse product) got arguments it cannot use safely."""


class GroupError(FivefoldError, ValueError):
    """A group or representation is used wrongly: an element out of range, a set of matrices that is not closed,
    a group acting on the wrong number of dimensions."""


class FieldError(FivefoldError, ValueError):
    """A feature tensor does not match the field type a layer expects (channel count, group axis, spatial dims)."""


class DataError(FivefoldError, OSError):
    """A data file is missing, has the wrong format, or cannot be parsed."""


class ChecksumError(DataError):
    """A data file's sha256 does not match the recorded one: it is corrupted or not the expected file."""
