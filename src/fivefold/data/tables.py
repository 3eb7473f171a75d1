"""Reading tables of numbers from CSV/TSV and ``.npy`` files, with errors that name the file, the line and the value:
edge lists, labels and features (used by ``user`` and ``own_graph``).

Why not pandas: the files are small tables of numbers, and errors must name the line and the value, which
``numpy`` and ``csv`` do with no extra dependency.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

from fivefold.data.files import require_file
from fivefold.errors import DataError

_LARGEST_CLASS = 2**31 - 1
_LARGEST_ID = 2**63 - 1

__all__ = ["load_array", "read_edges", "read_labels", "read_features", "read_node_list"]


def load_array(path: Path, what: str) -> np.ndarray:
    require_file(path, what)
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{what}: {path} is not a readable .npy array ({exc})") from None
    if not isinstance(array, np.ndarray):
        array.close()
        raise DataError(f"{what}: {path} is an .npz archive; expected a single .npy array")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise DataError(f"{what}: {path} holds {array.dtype} values; expected numbers")
    return array


def _fast_edges(path: Path) -> np.ndarray | None:
    """The edge list read by numpy in one pass (large files), or None when it is not a clean table of integer
    pairs (then ``read_edges`` reads it line by line to report the first bad line)."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            first = handle.readline()
        header = 1 if first.strip() and not any(_is_number(c.strip()) for c in first.split(_delimiter(path))) else 0
        edges = np.loadtxt(path, delimiter=_delimiter(path), dtype=np.int64, skiprows=header, ndmin=2,
                           encoding="utf-8-sig")
    except (ValueError, UnicodeDecodeError, OverflowError):
        return None
    return edges if edges.shape[1] == 2 and (edges >= 0).all() else None


def read_edges(path: Path) -> np.ndarray:
    """``[2, E]`` int64 node ids from a CSV/TSV edge list (two integer ids per line; a first line without numbers
    is a header) or a ``.npy`` array ``[E, 2]`` / ``[2, E]``."""
    require_file(path, "edge list")
    if path.suffix == ".npy":
        edges = load_array(path, "edge list")
    else:
        edges = _fast_edges(path)
    if edges is None:  # numpy could not read it: read line by line to name the bad line
        rows = _text_rows(path, "edge list")
        edges = np.empty((len(rows), 2), dtype=np.int64)
        for i, (number, cells) in enumerate(rows):
            where = f"edge list {path}, line {number}"
            if len(cells) != 2:
                raise DataError(f"{where}: expected two columns (source{_delimiter(path)}target), got {len(cells)}")
            edges[i] = [_node_id(cells[0], where), _node_id(cells[1], where)]
    if edges.ndim != 2 or 2 not in edges.shape:
        raise DataError(f"edge list {path}: expected shape [E, 2] or [2, E], got {edges.shape}")
    if not np.issubdtype(edges.dtype, np.integer):
        raise DataError(f"edge list {path}: node ids must be integers, got {edges.dtype}")
    return edges if edges.shape[0] == 2 and edges.shape[1] != 2 else edges.T


def _delimiter(path: Path) -> str:
    return "\t" if path.suffix in (".tsv", ".tab") else ","


def _text_rows(path: Path, what: str, keep_blank: bool = False) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of a CSV/TSV file (UTF-8, with or without a byte-order mark). A first line with no
    number in it is a header and skipped. Blank lines are skipped, or with ``keep_blank`` kept as ``[""]`` (trailing
    ones are always dropped)."""
    require_file(path, what)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = [(number, [cell.strip() for cell in row] or [""])
                    for number, row in enumerate(csv.reader(handle, delimiter=_delimiter(path)), start=1)]
    except UnicodeDecodeError:
        raise DataError(f"{what} {path} is not a UTF-8 text file; expected CSV/TSV or .npy") from None
    except csv.Error as exc:
        raise DataError(f"{what} {path} is not a readable CSV/TSV file ({exc})") from None
    while rows and not any(rows[-1][1]):
        rows.pop()
    first = next((i for i, (_, cells) in enumerate(rows) if any(cells)), None)
    if first is not None and not any(_is_number(cell) for cell in rows[first][1]):
        del rows[first]  # the header
    if not keep_blank:
        rows = [row for row in rows if any(row[1])]
    return rows


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _class_of(text: str, where: str) -> int:
    """A label field as a class number, or a ``DataError`` naming ``where`` and the value."""
    try:
        value = int(text) if text.lstrip("-").isdigit() else float(text)
    except ValueError:
        raise DataError(f"{where}: label {text!r} is not a number; labels are classes 0, 1, 2, ...") from None
    return _check_class(value, where)


def _check_class(value: float | int, where: str) -> int:
    if value != value:
        raise DataError(f"{where}: label is NaN; leave the field empty for an unlabelled node")
    if value < 0:
        raise DataError(f"{where}: label {value!r} is negative; labels are classes 0, 1, 2, ...")
    if not math.isfinite(value) or value > _LARGEST_CLASS:
        raise DataError(f"{where}: label {value!r} is not a class number (at most {_LARGEST_CLASS})")
    if value != int(value):
        raise DataError(f"{where}: label {value!r} is not an integer class; labels are classes 0, 1, 2, ...")
    return int(value)


def read_labels(path: str | os.PathLike) -> tuple[np.ndarray | None, np.ndarray]:
    """``(nodes, labels)`` from a labels file: ``nodes`` is None for the one-column and ``.npy`` forms (position =
    node); ``labels`` is int64 with -1 for an unlabelled node. Bad labels raise ``DataError`` naming the line."""
    path = Path(path)
    if path.suffix == ".npy":
        values = load_array(path, "labels")
        if values.ndim != 1:
            raise DataError(f"labels {path}: expected a 1-D array [N] of classes, got shape {values.shape}")
        with np.errstate(invalid="ignore"):
            bad = (values < 0) | (values > _LARGEST_CLASS)
            if np.issubdtype(values.dtype, np.floating):
                bad |= ~np.isfinite(values) | (values != np.round(values))
        if bad.any():  # the first bad entry, named by the same check as a CSV line
            first = int(np.flatnonzero(bad)[0])
            _check_class(values[first].item(), f"labels {path}, entry {first}")
        return None, values.astype(np.int64)
    rows = _text_rows(path, "labels", keep_blank=True)
    if not rows:
        raise DataError(f"labels {path} holds no rows")
    width = len(rows[0][1])
    if width == 2:  # a blank line means nothing in the node,label form; in the one-column form, an unlabelled node
        rows = [(number, cells) for number, cells in rows if any(cells)]
    if width not in (1, 2):
        raise DataError(f"labels {path}, line {rows[0][0]}: expected one column (label) or two (node,label), got "
                        f"{width}; multi-label or one-hot labels are not supported")
    nodes, labels = [], []
    for number, cells in rows:
        where = f"labels {path}, line {number}"
        if len(cells) != width:
            raise DataError(f"{where}: expected {width} column(s) like the first row, got {len(cells)}")
        if width == 2:
            nodes.append(_node_id(cells[0], where))
        labels.append(-1 if cells[-1] == "" else _class_of(cells[-1], where))
    return (np.array(nodes, dtype=np.int64) if width == 2 else None), np.array(labels, dtype=np.int64)


def _node_id(text: str, where: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise DataError(f"{where}: node id {text!r} is not an integer") from None
    if value < 0:
        raise DataError(f"{where}: node id {value} is negative")
    if value > _LARGEST_ID:
        raise DataError(f"{where}: node id {value} is larger than int64 allows ({_LARGEST_ID})")
    return value


def read_features(path: Path, keyed: bool) -> tuple[np.ndarray | None, np.ndarray]:
    """``(ids, rows)``: ``ids`` is the first column when ``keyed`` (CSV only), else None."""
    if path.suffix == ".npy":
        if keyed:
            raise DataError(f"features {path}: with remapped node ids the features must be a CSV whose first column "
                            "is the node id (a .npy array cannot say which row is which node)")
        values = load_array(path, "features")
        if values.ndim != 2:
            raise DataError(f"features {path}: expected [N, F], got shape {values.shape}")
        return None, values.astype(np.float32)
    rows = _text_rows(path, "features")
    if not rows:
        raise DataError(f"features {path} holds no rows")
    width = len(rows[0][1])
    ids, table = [], np.empty((len(rows), width - keyed), dtype=np.float32)
    for i, (number, cells) in enumerate(rows):
        where = f"features {path}, line {number}"
        if len(cells) != width:
            raise DataError(f"{where}: expected {width} columns like the first row, got {len(cells)}")
        if keyed:
            ids.append(_node_id(cells[0], where))
        try:
            table[i] = [float(cell) for cell in cells[keyed:]]
        except ValueError:
            raise DataError(f"{where}: features must be numbers, got {cells[keyed:]}") from None
    if not np.isfinite(table).all():
        first = int(np.flatnonzero(~np.isfinite(table).all(1))[0])
        raise DataError(f"features {path}, line {rows[first][0]}: a feature is NaN or infinite")
    return (np.array(ids, dtype=np.int64) if keyed else None), table


def read_node_list(path: str | os.PathLike) -> np.ndarray:
    """Node ids from a file: one per line (CSV/TSV, header optional), or a ``.npy`` array of ids or a boolean mask."""
    path = Path(path)
    if path.suffix == ".npy":
        values = load_array(path, "node list")
        if values.ndim != 1:
            raise DataError(f"node list {path}: expected a 1-D array of node ids or a boolean mask, got shape "
                            f"{values.shape}")
        if values.dtype == np.bool_:
            return np.flatnonzero(values)
        if not np.issubdtype(values.dtype, np.integer):
            raise DataError(f"node list {path}: expected integer node ids or a boolean mask, got {values.dtype}")
        return values.astype(np.int64)
    rows = _text_rows(path, "node list")
    ids = []
    for number, cells in rows:
        where = f"node list {path}, line {number}"
        if len(cells) != 1:
            raise DataError(f"{where}: expected one node id per line, got {len(cells)} columns")
        ids.append(_node_id(cells[0], where))
    return np.array(ids, dtype=np.int64)
