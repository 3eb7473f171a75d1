"""Geometric operators of a triangle mesh, as pure functions of the mesh (computed in float64 with numpy/scipy).

- ``face_areas``, ``face_normals``, ``vertex_normals`` (area weighted), ``vertex_areas`` (barycentric: a third of
  each adjacent face).
- ``cotan_laplacian(mesh) -> (L, M)``: the cotangent Laplacian (Pinkall & Polthier 1993; Meyer et al. 2003) as a
  symmetric positive semi-definite ``scipy.sparse`` matrix with zero row sums, and the lumped (barycentric) mass
  matrix. ``robust=True`` uses Sharp & Crane's intrinsic-Delaunay "robust Laplacian" (``robust_laplacian``, SGP 2020)
  instead, for meshes with poor or zero-area triangles. Our own cotangent code is a few vectorised numpy lines and needs
  no extra package; the robust one is theirs.
- ``laplacian_eigenbasis(L, M, k)``: the ``k`` smallest eigenpairs of ``L phi = lambda M phi`` (scipy's shift-invert
  Lanczos), ``M``-orthonormal.
- ``tangent_frames(mesh)``: an orthonormal frame ``(x, y, n)`` per vertex; the x axis is the first edge (to the
  neighbour of smallest index) projected onto the tangent plane, so frames move with the mesh under rigid motions.
- ``edge_coordinates(vertices, frames, edge_index) -> (angle, transport, length)``: for each directed edge ``q -> p``,
  the polar angle of ``q`` in ``p``'s frame (the discrete log map), and the discrete Levi-Civita connection: the angle
  by which a tangent vector written in ``q``'s frame turns when transported to ``p`` (``q``'s frame is rotated onto
  ``p``'s tangent plane by the smallest rotation taking ``n_q`` to ``n_p``, as in de Haan et al., ICLR 2021, App. B).
- ``gradient_operators(vertices, frames, edge_index) -> (Gx, Gy)``: per-vertex least-squares gradients in the tangent
  frame (DiffusionNet, Sharp et al. 2022, Sec. 3.3), as sparse matrices.
- ``geodesic_distance(mesh, source)``: the heat method (Crane, Weischedel & Wardetzky 2013) through potpourri3d.
- ``heat_kernel_signature(evals, evecs, times)`` (Sun, Ovsjanikov & Guibas 2009).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as sla
import torch
from torch import Tensor

from fivefold.errors import MeshError
from fivefold.meshes.mesh import Mesh

__all__ = ["face_areas", "face_normals", "vertex_normals", "vertex_areas", "cotan_laplacian", "laplacian_eigenbasis",
           "tangent_frames", "edge_coordinates", "gradient_operators", "geodesic_distance", "heat_kernel_signature",
           "hks_times", "rotate_frames"]


def _arrays(mesh: Mesh) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(mesh, Mesh):
        raise MeshError(f"expected a fivefold.meshes.Mesh, got {type(mesh).__name__}")
    return mesh.vertices.numpy().astype(np.float64), mesh.faces.numpy()


def _face_cross(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    return np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])


def face_areas(mesh: Mesh) -> Tensor:
    """``[F]`` float64: the area of each triangle."""
    v, f = _arrays(mesh)
    return torch.from_numpy(0.5 * np.linalg.norm(_face_cross(v, f), axis=1))


def face_normals(mesh: Mesh) -> Tensor:
    """``[F, 3]`` float64 unit normals (right-hand rule on the face's vertex order; zero for a zero-area face)."""
    v, f = _arrays(mesh)
    cross = _face_cross(v, f)
    norm = np.linalg.norm(cross, axis=1, keepdims=True)
    return torch.from_numpy(np.divide(cross, norm, out=np.zeros_like(cross), where=norm > 0))


def _vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    cross = _face_cross(v, f)  # |cross| = 2 area: area-weighted sum of face normals
    normals = np.zeros_like(v)
    for corner in range(3):
        np.add.at(normals, f[:, corner], cross)
    norm = np.linalg.norm(normals, axis=1, keepdims=True)
    lonely = norm[:, 0] <= 0
    normals = np.divide(normals, norm, out=np.zeros_like(normals), where=norm > 0)
    normals[lonely] = (0.0, 0.0, 1.0)  # a vertex in no face (or whose faces cancel): any unit vector will do
    return normals


def vertex_normals(mesh: Mesh) -> Tensor:
    """``[V, 3]`` float64 unit normals, the area-weighted mean of the adjacent faces' normals."""
    return torch.from_numpy(_vertex_normals(*_arrays(mesh)))


def _vertex_areas(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    third = np.linalg.norm(_face_cross(v, f), axis=1) / 6.0
    areas = np.zeros(v.shape[0])
    for corner in range(3):
        np.add.at(areas, f[:, corner], third)
    return areas


def vertex_areas(mesh: Mesh) -> Tensor:
    """``[V]`` float64 barycentric vertex areas (a third of each adjacent face); they sum to the surface area."""
    return torch.from_numpy(_vertex_areas(*_arrays(mesh)))


def cotan_laplacian(mesh: Mesh, *, robust: bool = False) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The cotangent Laplacian ``L`` and the lumped mass matrix ``M``, both ``[V, V]`` ``scipy.sparse`` float64.

    ``L`` is symmetric positive semi-definite with zero row sums: ``L_ij = -(cot a_ij + cot b_ij) / 2`` for an edge
    ``ij`` with opposite angles ``a_ij, b_ij``, ``L_ii = -sum_j L_ij``. ``M`` is diagonal, the barycentric vertex areas.
    ``x^T L x`` is the Dirichlet energy of the piecewise-linear function ``x``. ``robust=True``: the intrinsic
    Delaunay Laplacian of ``robust_laplacian`` (needs ``pip install fivefold[mesh]``); use it when the mesh has
    zero-area or needle triangles, where cotangents blow up.
    """
    v, f = _arrays(mesh)
    n = v.shape[0]
    if robust:
        try:
            import robust_laplacian
        except ImportError as error:  # pragma: no cover - depends on the environment
            raise MeshError("cotan_laplacian(robust=True) needs robust_laplacian: pip install 'fivefold[mesh]'") \
                from error
        L, M = robust_laplacian.mesh_laplacian(v, f.astype(np.int64))
        return sp.csr_matrix(L), sp.csr_matrix(M)
    double_area = np.linalg.norm(_face_cross(v, f), axis=1)
    if np.any(double_area <= 1e-300):
        row = int(np.flatnonzero(double_area <= 1e-300)[0])
        raise MeshError(f"cotan_laplacian: face {row} has zero area, its cotangents are infinite; "
                        f"pass robust=True (intrinsic Delaunay Laplacian)")
    rows, cols, values = [], [], []
    for corner in range(3):  # the angle at `corner` is opposite the edge (i, j)
        i, j, k = f[:, (corner + 1) % 3], f[:, (corner + 2) % 3], f[:, corner]
        a, b = v[i] - v[k], v[j] - v[k]
        cot = np.einsum("ij,ij->i", a, b) / double_area
        rows += [i, j]
        cols += [j, i]
        values += [-0.5 * cot, -0.5 * cot]
    rows, cols, values = np.concatenate(rows), np.concatenate(cols), np.concatenate(values)
    off = sp.coo_matrix((values, (rows, cols)), shape=(n, n)).tocsr()
    L = (off - sp.diags(np.asarray(off.sum(axis=1)).ravel())).tocsr()
    M = sp.diags(_vertex_areas(v, f)).tocsr()
    return L, M


def laplacian_eigenbasis(L: sp.spmatrix, M: sp.spmatrix, k: int) -> tuple[Tensor, Tensor]:
    """The ``k`` smallest eigenpairs of the generalised problem ``L phi = lambda M phi``.

    Returns:
        ``evals [k]`` (ascending, clamped at 0) and ``evecs [V, k]`` float64 with ``evecs^T M evecs = I``.
    """
    n = L.shape[0]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < n:
        raise MeshError(f"laplacian_eigenbasis: k must be an integer in [1, {n - 1}] for a mesh of {n} vertices, "
                        f"got {k!r}")
    mass = np.asarray(M.diagonal())
    if np.any(mass <= 0):
        raise MeshError(f"laplacian_eigenbasis: vertex {int(np.flatnonzero(mass <= 0)[0])} has zero mass (it is in "
                        f"no face of positive area); remove unreferenced vertices first")
    shift = 1e-8
    start = np.random.default_rng(0).standard_normal(n)  # a fixed Lanczos start: the same basis on every run
    for _attempt in range(4):
        try:
            evals, evecs = sla.eigsh((L + shift * M).tocsc(), k=k, M=M.tocsc(), sigma=0.0, which="LM", v0=start,
                                     ncv=min(n, max(2 * k + 1, k + 32)))
            break
        except (RuntimeError, sla.ArpackError):  # singular factorisation: shift further from the spectrum
            shift *= 100.0
    else:  # pragma: no cover - a pathological mesh
        raise MeshError("laplacian_eigenbasis: the eigensolver did not converge; try cotan_laplacian(robust=True)")
    order = np.argsort(evals)
    evals = np.clip(evals[order] - shift, 0.0, None)
    return torch.from_numpy(evals), torch.from_numpy(np.ascontiguousarray(evecs[:, order]))


def _first_neighbours(edges: np.ndarray, n: int) -> np.ndarray:
    """For every vertex, its neighbour of smallest index (-1 for a vertex in no edge)."""
    both = np.concatenate([edges, edges[::-1]], axis=1)
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, both[0], both[1])
    first[first == np.iinfo(np.int64).max] = -1
    return first


def _perpendicular(normals: np.ndarray) -> np.ndarray:
    """Some unit vector perpendicular to each normal."""
    helper = np.where(np.abs(normals[:, :1]) < 0.9, np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]]))
    out = np.cross(normals, helper)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def tangent_frames(mesh: Mesh, normals: Tensor | None = None) -> Tensor:
    """``[V, 3, 3]`` float64: rows ``(x, y, n)`` of an orthonormal, right-handed frame at each vertex.

    ``n`` is the vertex normal; ``x`` is the edge to the vertex's smallest-index neighbour, projected onto the tangent
    plane and normalised (so the frame turns with the mesh under a rigid motion); ``y = n x x``.
    """
    v, _f = _arrays(mesh)
    n = _vertex_normals(v, _f) if normals is None else normals.numpy().astype(np.float64)
    first = _first_neighbours(mesh.edges.numpy(), v.shape[0])
    direction = np.where(first[:, None] >= 0, v[np.maximum(first, 0)] - v, 0.0)
    direction -= np.einsum("ij,ij->i", direction, n)[:, None] * n
    length = np.linalg.norm(direction, axis=1, keepdims=True)
    scale = np.maximum(np.linalg.norm(v - v.mean(axis=0), axis=1).max(), 1e-300)
    good = length[:, 0] > 1e-12 * scale
    x = np.where(good[:, None], direction / np.where(length > 0, length, 1.0), _perpendicular(n))
    y = np.cross(n, x)
    return torch.from_numpy(np.stack([x, y, n], axis=1))


def rotate_frames(frames: Tensor, angles: Tensor) -> Tensor:
    """Frames turned about their normals by ``angles [V]`` radians (a gauge transformation): ``x' = cos x + sin y``,
    ``y' = -sin x + cos y``, ``n' = n``."""
    cos, sin = torch.cos(angles)[:, None], torch.sin(angles)[:, None]
    x, y, n = frames[:, 0], frames[:, 1], frames[:, 2]
    return torch.stack([cos * x + sin * y, -sin * x + cos * y, n], dim=1)


def _rotate_onto(u: np.ndarray, n_from: np.ndarray, n_to: np.ndarray) -> np.ndarray:
    """Apply to each ``u`` the smallest rotation taking unit ``n_from`` to unit ``n_to`` (Rodrigues)."""
    axis = np.cross(n_from, n_to)
    cos = np.einsum("ij,ij->i", n_from, n_to)[:, None]
    # R u = cos u + axis x u + axis (axis . u) / (1 + cos). For opposite normals (a fold) no rotation is smallest; take
    # the half-turn about u itself, which leaves u (a tangent vector of n_from) where it is.
    opposite = (1.0 + cos) < 1e-9
    rotated = cos * u + np.cross(axis, u) + axis * np.einsum("ij,ij->i", axis, u)[:, None] / np.where(opposite, 1.0,
                                                                                                       1.0 + cos)
    return np.where(opposite, u, rotated)


def edge_coordinates(vertices: Tensor, frames: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Polar coordinates of each directed edge ``q -> p`` (``edge_index[0] = q``, ``edge_index[1] = p``) and the
    connection along it.

    Returns (``[E]`` float64 each):
        angle: the angle of ``q - p``, projected onto ``p``'s tangent plane, in ``p``'s frame (``atan2(y, x)``).
        transport: the angle a tangent vector written in ``q``'s frame turns by when parallel-transported to ``p``:
            a vector at angle ``phi`` in ``q``'s frame arrives at angle ``phi + transport`` in ``p``'s frame.
        length: ``|q - p|``.
    """
    v = vertices.numpy().astype(np.float64)
    fr = frames.numpy().astype(np.float64)
    q, p = edge_index[0].numpy(), edge_index[1].numpy()
    d = v[q] - v[p]
    angle = np.arctan2(np.einsum("ij,ij->i", d, fr[p, 1]), np.einsum("ij,ij->i", d, fr[p, 0]))
    carried = _rotate_onto(fr[q, 0], fr[q, 2], fr[p, 2])
    transport = np.arctan2(np.einsum("ij,ij->i", carried, fr[p, 1]), np.einsum("ij,ij->i", carried, fr[p, 0]))
    return torch.from_numpy(angle), torch.from_numpy(transport), torch.from_numpy(np.linalg.norm(d, axis=1))


def gradient_operators(vertices: Tensor, frames: Tensor, edge_index: Tensor) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Sparse ``Gx, Gy [V, V]``: ``(Gx f)_p, (Gy f)_p`` are the components, in ``p``'s frame, of the least-squares
    gradient of the vertex function ``f`` over the edges into ``p`` (``min_g sum_q (g . e_pq - (f_q - f_p))^2``, with
    ``e_pq`` the edge projected onto ``p``'s tangent plane; a 1e-9 relative ridge keeps it defined at a vertex with one
    neighbour). Under a gauge rotation of ``p``'s frame the pair turns like a tangent vector."""
    v = vertices.numpy().astype(np.float64)
    fr = frames.numpy().astype(np.float64)
    q, p = edge_index[0].numpy(), edge_index[1].numpy()
    n = v.shape[0]
    d = v[q] - v[p]
    ex, ey = np.einsum("ij,ij->i", d, fr[p, 0]), np.einsum("ij,ij->i", d, fr[p, 1])
    # normal equations per vertex: A = sum e e^T (2 x 2), then g = A^-1 sum e (f_q - f_p)
    a = np.zeros((n, 3))
    np.add.at(a, p, np.stack([ex * ex, ex * ey, ey * ey], axis=1))
    scale = np.zeros(n)
    np.add.at(scale, p, ex * ex + ey * ey)
    ridge = 1e-9 * np.maximum(scale, 1e-300)
    axx, axy, ayy = a[:, 0] + ridge, a[:, 1], a[:, 2] + ridge
    det = axx * ayy - axy * axy
    ixx, ixy, iyy = ayy / det, -axy / det, axx / det
    wx = ixx[p] * ex + ixy[p] * ey  # coefficient of f_q in (Gx f)_p; -sum of them on f_p
    wy = ixy[p] * ex + iyy[p] * ey
    rows = np.concatenate([p, p])
    cols = np.concatenate([q, p])
    gx = sp.coo_matrix((np.concatenate([wx, -wx]), (rows, cols)), shape=(n, n)).tocsr()
    gy = sp.coo_matrix((np.concatenate([wy, -wy]), (rows, cols)), shape=(n, n)).tocsr()
    return gx, gy


def geodesic_distance(mesh: Mesh, source: int | list[int]) -> Tensor:
    """``[V]`` float64 geodesic distance from a vertex (or the nearest of several) by the heat method (potpourri3d;
    needs ``pip install fivefold[mesh]``). For many sources on one mesh, build
    ``potpourri3d.MeshHeatMethodDistanceSolver`` once, as ``experiments/faust_correspondence.py`` does."""
    try:
        import potpourri3d as pp3d
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise MeshError("geodesic_distance needs potpourri3d: pip install 'fivefold[mesh]'") from error
    v, f = _arrays(mesh)
    sources = [source] if isinstance(source, (int, np.integer)) else list(source)
    if not sources or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 0 <= s < v.shape[0]
                          for s in sources):
        raise MeshError(f"geodesic_distance: sources must be vertex indices in [0, {v.shape[0]}), got {source!r}")
    solver = pp3d.MeshHeatMethodDistanceSolver(v, f.astype(np.int64))
    if len(sources) == 1:
        return torch.from_numpy(np.asarray(solver.compute_distance(int(sources[0])), dtype=np.float64))
    return torch.from_numpy(np.asarray(solver.compute_distance_multisource([int(s) for s in sources]),
                                       dtype=np.float64))


def hks_times(evals: Tensor, count: int = 16) -> Tensor:
    """``count`` log-spaced diffusion times from ``4 ln 10 / lambda_max`` to ``4 ln 10 / lambda_1`` (Sun et al. 2009,
    Sec. 5), ``lambda_1`` the smallest non-zero eigenvalue."""
    positive = evals[evals > 1e-10 * evals.max().clamp_min(1e-300)]
    if positive.numel() == 0:
        raise MeshError("hks_times: no positive eigenvalue")
    low, high = 4 * math.log(10) / float(positive.max()), 4 * math.log(10) / float(positive.min())
    return torch.logspace(math.log10(low), math.log10(high), count, dtype=torch.float64)


def heat_kernel_signature(evals: Tensor, evecs: Tensor, times: Tensor) -> Tensor:
    """``[V, T]``: ``HKS(x, t) = sum_i exp(-lambda_i t) phi_i(x)^2``, each column divided by its ``M``-free mean
    ``sum_i exp(-lambda_i t)`` (scale-normalised as in Sun et al. 2009). Invariant to isometries and rigid motions."""
    weights = torch.exp(-evals[:, None] * times[None, :])  # [k, T]
    return (evecs.square() @ weights) / weights.sum(dim=0, keepdim=True)
