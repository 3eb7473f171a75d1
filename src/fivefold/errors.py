"""The fivefold error hierarchy.

Every error fivefold raises on bad input derives from :class:`FivefoldError`, and also from the builtin
exception a Python user would expect (``ValueError`` for bad values, ``OSError`` for bad files), so
``except ValueError`` keeps working. Messages say what was wrong, where, and what to do.
"""

__all__ = [
    "FivefoldError", "OptionError", "GraphError", "OpsError", "GroupError", "FieldError", "DataError", "ChecksumError",
    "RunError", "StoreError", "StreamError", "MoleculeError", "MeshError", "check_option",
]


class FivefoldError(Exception):
    """Base class of every error fivefold raises on purpose."""


class OptionError(FivefoldError, ValueError):
    """An argument that takes one of a fixed set of values (a mode, an aggregation, a split name) got another; the
    message names the argument and lists the values it takes. Raised the same way by every part of fivefold."""


def check_option(value: object, allowed: tuple, name: str, where: str) -> None:
    """Raise ``OptionError`` unless ``value`` is one of ``allowed``: ``"<where>: <name> must be one of (...), got
    <value>"``."""
    if value not in allowed:
        raise OptionError(f"{where}: {name} must be one of {tuple(allowed)}, got {value!r}")


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


class RunError(FivefoldError, OSError):
    """A run folder cannot be written (the runs directory is a file or read-only, the disk is full) or a saved run
    cannot be used (it did not finish, its checkpoint is missing or does not match its recorded sha256)."""


class StoreError(FivefoldError, OSError):
    """A graph store on disk cannot be written or opened: a missing, truncated, resized or tampered array file, a
    manifest that does not match, or a target folder that already exists."""


class StreamError(FivefoldError, ValueError):
    """A temporal event stream is malformed: ids, times or features of different lengths, negative or non-integer
    node ids, non-finite times, or times that go backwards (the message names the first bad row)."""


class MoleculeError(FivefoldError, ValueError):
    """A molecule cannot be read or is malformed: a SMILES that RDKit cannot parse (the message quotes it and, for a
    list, names its row), atomic numbers out of range, positions that are not ``[N, 3]`` finite numbers."""


class MeshError(FivefoldError, ValueError):
    """A triangle mesh is malformed: vertices that are not ``[V, 3]`` finite numbers, faces that are not ``[F, 3]``
    integers in range, a degenerate face (a repeated vertex or zero area), an edge shared by more than two faces
    (non-manifold), or a mesh file that cannot be read; the message names the bad vertex, face or edge."""
