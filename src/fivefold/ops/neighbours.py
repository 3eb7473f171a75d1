"""Neighbour search in 3D: all pairs within a cutoff (cell lists) and k nearest neighbours (k-d tree).

``radius_pairs`` bins points into cubes of side ``cutoff``, sorts the cubes, and compares each point only with the
points of its own and the 26 adjacent cubes: linear in the number of points for a fixed cutoff and density (an all-pairs
distance matrix is quadratic, and a molecule batch of 64 QM9 molecules has 1,150 atoms but only ~20 partners per atom
within 5 Angstrom). The loop is a numba kernel, run twice (count, then fill), parallel over points. Points of different
graphs of a batch never pair: the graph id is part of each cube's key.

``knn_pairs`` queries scipy's ``cKDTree`` (a well-kept k-d tree; we do not write our own) on points lifted to 4D with
the graph id times a separation larger than any distance, so that neighbours never cross graphs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numba import njit, prange
from torch import Tensor

from fivefold.errors import OpsError
from fivefold.ops.threads import sync_numba_threads

__all__ = ["radius_pairs", "knn_pairs"]


@njit(cache=True, inline="always")
def _compare(b0, x0, y0, z0, b1, x1, y1, z1):  # pragma: no cover - compiled
    if b0 != b1:
        return -1 if b0 < b1 else 1
    if x0 != x1:
        return -1 if x0 < x1 else 1
    if y0 != y1:
        return -1 if y0 < y1 else 1
    if z0 != z1:
        return -1 if z0 < z1 else 1
    return 0


@njit(cache=True)
def _find_cell(keys, b, x, y, z):  # pragma: no cover - compiled
    """Index of the cube (b, x, y, z) in the sorted ``keys [C, 4]``, or -1."""
    lo, hi = 0, keys.shape[0] - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        c = _compare(keys[mid, 0], keys[mid, 1], keys[mid, 2], keys[mid, 3], b, x, y, z)
        if c == 0:
            return mid
        if c < 0:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1


@njit(cache=True, inline="always")
def _scan(pos, order, i, first, last, cutoff2, loop, fill, out, at, found):  # pragma: no cover - compiled
    """Points ``order[first:last]`` within the cutoff of point ``i``: counted from ``found``, and written to
    ``out[at + found]`` when ``fill``. Returns the new count."""
    for s in range(first, last):
        j = order[s]
        if j == i and not loop:
            continue
        d0 = pos[j, 0] - pos[i, 0]
        d1 = pos[j, 1] - pos[i, 1]
        d2 = pos[j, 2] - pos[i, 2]
        if d0 * d0 + d1 * d1 + d2 * d2 < cutoff2:
            if fill:
                out[at + found] = j
            found += 1
    return found


@njit(cache=True, parallel=True)
def _radius_kernel(pos, batch, cells, order, keys, starts, cutoff2, loop, counts, offsets, out):  # pragma: no cover
    """For each point i: the points j with |p_j - p_i|^2 < cutoff2 in i's and the adjacent cubes. With ``offsets``
    empty, only counts them into ``counts``; else writes j into ``out[offsets[i]:]``."""
    fill = offsets.shape[0] > 0
    for i in prange(pos.shape[0]):
        found = 0
        for dx in range(-1, 2):
            for dy in range(-1, 2):
                for dz in range(-1, 2):
                    c = _find_cell(keys, batch[i], cells[i, 0] + dx, cells[i, 1] + dy, cells[i, 2] + dz)
                    if c >= 0:
                        at = offsets[i] if fill else 0
                        found = _scan(pos, order, i, starts[c], starts[c + 1], cutoff2, loop, fill, out, at, found)
        counts[i] = found


@njit(cache=True, parallel=True)
def _radius_dense_kernel(pos, batch, cells, shape, order, starts, cutoff2, loop, counts, offsets,
                         out):  # pragma: no cover - compiled
    """``_radius_kernel`` for a dense table of cubes: cube (b, x, y, z) is row ``((b nx + x) ny + y) nz + z`` of
    ``starts``, so finding a cube is arithmetic, not a search."""
    fill = offsets.shape[0] > 0
    nx, ny, nz = shape[0], shape[1], shape[2]
    for i in prange(pos.shape[0]):
        found = 0
        for dx in range(-1, 2):
            x = cells[i, 0] + dx
            if x < 0 or x >= nx:
                continue
            for dy in range(-1, 2):
                y = cells[i, 1] + dy
                if y < 0 or y >= ny:
                    continue
                z0 = max(cells[i, 2] - 1, 0)
                z1 = min(cells[i, 2] + 1, nz - 1)
                row = ((batch[i] * nx + x) * ny + y) * nz  # cubes z0..z1 are consecutive rows
                at = offsets[i] if fill else 0
                found = _scan(pos, order, i, starts[row + z0], starts[row + z1 + 1], cutoff2, loop, fill, out, at,
                              found)
        counts[i] = found


def _check_points(pos: Tensor, batch: Tensor | None, where: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(pos, Tensor) or pos.dim() != 2 or pos.shape[1] != 3 or not pos.is_floating_point():
        raise OpsError(f"{where}: pos must be a float tensor [N, 3], got "
                       f"{tuple(pos.shape) if isinstance(pos, Tensor) else type(pos).__name__}")
    points = pos.detach().to("cpu", torch.float64).numpy()
    if not np.isfinite(points).all():
        row = int(np.argwhere(~np.isfinite(points))[0, 0])
        raise OpsError(f"{where}: pos has a non-finite coordinate at row {row}")
    if batch is None:
        return points, np.zeros(points.shape[0], dtype=np.int64)
    if not isinstance(batch, Tensor) or batch.dim() != 1 or batch.shape[0] != pos.shape[0] or \
            batch.is_floating_point() or batch.dtype == torch.bool:
        raise OpsError(f"{where}: batch must be an integer tensor [N] with one graph id per point (N = "
                       f"{pos.shape[0]}), got {tuple(batch.shape) if isinstance(batch, Tensor) else batch!r}")
    ids = batch.detach().to("cpu", torch.int64).numpy()
    if ids.size and ids.min() < 0:
        raise OpsError(f"{where}: batch has a negative graph id at row {int(np.argmax(ids < 0))}")
    return points, ids


def radius_pairs(pos: Tensor, cutoff: float, batch: Tensor | None = None, *, loop: bool = False) -> tuple[Tensor,
                                                                                                          Tensor]:
    """All ordered pairs ``(j, i)`` of points of the same graph with ``|pos_j - pos_i| < cutoff``.

    Args:
        pos: ``[N, 3]`` float coordinates.
        cutoff: positive distance.
        batch: ``[N]`` graph id of every point (points of different graphs never pair); ``None``: one graph.
        loop: include ``(i, i)``.

    Returns: ``(source, target)``, each ``[P]`` int64 on ``pos``'s device, grouped by target in increasing order
    (within a target, in cube order). Both orders of every pair are present.
    """
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float)) or not math.isfinite(cutoff) or cutoff <= 0:
        raise OpsError(f"radius_pairs: cutoff must be a positive finite number, got {cutoff!r}")
    points, ids = _check_points(pos, batch, "radius_pairs")
    n = points.shape[0]
    if n == 0:
        empty = torch.zeros(0, dtype=torch.long, device=pos.device)
        return empty, empty.clone()
    lowest = points.min(axis=0)
    span = float((points.max(axis=0) - lowest).max())
    if span / cutoff > 2.0**40:
        raise OpsError(f"radius_pairs: the points span {span:.3g} but the cutoff is {cutoff:.3g}; more than 2^40 "
                       "cubes per axis cannot be indexed (rescale the coordinates or use a larger cutoff)")
    cells = np.floor((points - lowest) / cutoff).astype(np.int64)
    shape = cells.max(axis=0) + 1
    graphs = int(ids.max()) + 1
    cutoff2 = float(cutoff) ** 2
    if float(graphs) * float(np.prod(shape.astype(np.float64))) <= 8.0 * n + 4096:
        # few cubes: a dense table (the usual case: molecules, point clouds, meshes)
        cell_id = ((ids * shape[0] + cells[:, 0]) * shape[1] + cells[:, 1]) * shape[2] + cells[:, 2]
        order = np.argsort(cell_id, kind="stable").astype(np.int64)
        starts = np.zeros(graphs * int(np.prod(shape)) + 1, dtype=np.int64)
        np.cumsum(np.bincount(cell_id, minlength=starts.shape[0] - 1), out=starts[1:])

        def run(counts, offsets, out):
            _radius_dense_kernel(points, ids, cells, shape, order, starts, cutoff2, loop, counts, offsets, out)
    else:
        # sparse points in a large box: only the occupied cubes, sorted, found by binary search
        order = np.lexsort((cells[:, 2], cells[:, 1], cells[:, 0], ids)).astype(np.int64)
        sorted_keys = np.column_stack([ids[order], cells[order]])
        new_cell = np.ones(n, dtype=bool)
        new_cell[1:] = (sorted_keys[1:] != sorted_keys[:-1]).any(axis=1)
        keys = np.ascontiguousarray(sorted_keys[new_cell])
        starts = np.append(np.flatnonzero(new_cell), n).astype(np.int64)

        def run(counts, offsets, out):
            _radius_kernel(points, ids, cells, order, keys, starts, cutoff2, loop, counts, offsets, out)
    counts = np.zeros(n, dtype=np.int64)
    no_offsets = np.zeros(0, dtype=np.int64)
    sync_numba_threads()  # the kernels run on torch's thread count
    run(counts, no_offsets, no_offsets)
    offsets = np.zeros(n, dtype=np.int64)
    np.cumsum(counts[:-1], out=offsets[1:])
    source = np.empty(int(counts.sum()), dtype=np.int64)
    run(counts, offsets, source)
    target = np.repeat(np.arange(n, dtype=np.int64), counts)
    return torch.from_numpy(source).to(pos.device), torch.from_numpy(target).to(pos.device)


def knn_pairs(pos: Tensor, k: int, batch: Tensor | None = None, *, loop: bool = False) -> tuple[Tensor, Tensor]:
    """For every point ``i``, its ``k`` nearest points ``j`` of the same graph: pairs ``(j, i)``.

    Args:
        pos: ``[N, 3]`` float coordinates.
        k: neighbours per point (a graph with fewer than ``k + 1`` points gives all its other points).
        batch: ``[N]`` graph id of every point; ``None``: one graph.
        loop: count ``i`` itself as one of its neighbours.

    Returns: ``(source, target)``, grouped by target, nearest first (equidistant neighbours in no promised order).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise OpsError(f"knn_pairs: k must be a positive integer, got {k!r}")
    from scipy.spatial import cKDTree

    points, ids = _check_points(pos, batch, "knn_pairs")
    n = points.shape[0]
    if n == 0:
        empty = torch.zeros(0, dtype=torch.long, device=pos.device)
        return empty, empty.clone()
    span = float(np.ptp(points, axis=0).max()) if n > 1 else 0.0
    separation = 4.0 * span + 1.0  # farther than any within-graph distance
    lifted = np.column_stack([points, ids.astype(np.float64) * separation])
    asked = min(n, int(k) + (0 if loop else 1))
    distance, index = cKDTree(lifted).query(lifted, k=asked)
    distance, index = distance.reshape(n, asked), index.reshape(n, asked)
    target = np.repeat(np.arange(n), asked).reshape(n, asked)
    keep = (index < n) & (ids[np.minimum(index, n - 1)] == ids[:, None])
    if not loop:
        keep &= index != target
    # at most k per target (without loops one slot was kept for the point itself, which may not be first on ties)
    rank = np.cumsum(keep, axis=1)
    keep &= rank <= k
    return (torch.from_numpy(index[keep].astype(np.int64)).to(pos.device),
            torch.from_numpy(target[keep].astype(np.int64)).to(pos.device))
