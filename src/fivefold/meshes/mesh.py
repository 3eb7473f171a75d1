"""``Mesh``: an immutable, validated triangle mesh, and its reading and writing.

A mesh is vertices ``[V, 3]`` and triangles ``[F, 3]`` (vertex indices, counter-clockwise seen from outside). Like
``graphs.Graph`` it is checked once when built, so operators and kernels never meet a bad index: vertices must be
finite, faces in range and non-degenerate (no repeated vertex, non-zero area), and every edge must border at most two
faces (a manifold mesh, possibly with boundary). Errors name the first bad vertex, face or edge.

Files (OBJ, OFF, PLY, STL, ...) are read and written through trimesh, the well-kept mesh I/O library, without its
"processing" (no vertex merging or reordering: the vertex order of the file is the vertex order of the mesh, so
per-vertex labels stay aligned).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from fivefold.errors import MeshError
from fivefold.graphs import Graph

__all__ = ["Mesh", "load_mesh", "save_mesh", "merge_meshes"]


class Mesh:
    """A triangle mesh: ``vertices [V, 3]`` (floating point) and ``faces [F, 3]`` (int64 vertex indices).

    Args:
        vertices: ``[V, 3]`` tensor, numpy array (dtype kept) or nested list of finite numbers; integers and lists
            take torch's default dtype.
        faces: ``[F, 3]`` array-like of integers in ``[0, V)``.
        check_manifold: also refuse an edge shared by three or more faces (default ``True``).
        allow_degenerate: keep zero-area faces (raw scans and molecular surfaces have them; use the robust
            Laplacian on such meshes). A face that repeats a vertex is always refused.

    Raises:
        MeshError: naming the first bad vertex, face or edge.

    Attributes (read-only): ``vertices``, ``faces``, ``num_vertices``, ``num_faces``, ``edges`` (``[2, E]`` each
    undirected edge once, smaller index first, sorted).
    """

    __slots__ = ("vertices", "faces", "_cache")

    def __init__(self, vertices, faces, *, check_manifold: bool = True, allow_degenerate: bool = False) -> None:
        vertices = _as_vertices(vertices)
        faces = _as_faces(faces, vertices.shape[0])
        _check_degenerate(vertices, faces, allow_degenerate)
        put = object.__setattr__
        put(self, "vertices", vertices)
        put(self, "faces", faces)
        put(self, "_cache", {})
        if check_manifold:
            _check_manifold(self)

    def __setattr__(self, name, value) -> None:
        raise AttributeError(f"Mesh is immutable: build a new Mesh instead of setting {name!r}")

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def edges(self) -> Tensor:
        """``[2, E]`` int64: every undirected edge once, ``edges[0] < edges[1]``, sorted."""
        if "edges" not in self._cache:
            self._cache["edges"] = torch.from_numpy(_edge_table(self.faces.numpy())[0])
        return self._cache["edges"]

    @property
    def boundary_edges(self) -> Tensor:
        """``[2, B]`` int64: the edges that border one face only (empty for a closed surface)."""
        edges, counts = _edge_table(self.faces.numpy())
        return torch.from_numpy(edges[:, counts == 1])

    def to_graph(self) -> Graph:
        """The mesh's edge graph: each mesh edge as two directed edges, ``pos`` the vertices (float), no features."""
        edges = self.edges
        edge_index = torch.cat([edges, edges.flip(0)], dim=1)
        return Graph(edge_index, self.num_vertices, pos=self.vertices)

    def content_hash(self) -> str:
        """sha256 of the vertex coordinates (as float64) and faces (as int64): the key of the operator cache."""
        digest = hashlib.sha256()
        digest.update(np.ascontiguousarray(self.vertices.numpy(), dtype=np.float64).tobytes())
        digest.update(np.ascontiguousarray(self.faces.numpy(), dtype=np.int64).tobytes())
        return digest.hexdigest()

    def to(self, dtype: torch.dtype) -> Mesh:
        """The same mesh with vertices in another floating dtype."""
        return Mesh(self.vertices.to(dtype), self.faces, check_manifold=False, allow_degenerate=True)

    def __repr__(self) -> str:
        return f"Mesh(num_vertices={self.num_vertices}, num_faces={self.num_faces}, dtype={self.vertices.dtype})"


def _as_vertices(vertices) -> Tensor:
    if isinstance(vertices, np.ndarray):
        vertices = torch.from_numpy(np.ascontiguousarray(vertices))
    elif not isinstance(vertices, Tensor):  # nested lists: floats take torch's default dtype
        try:
            vertices = torch.tensor(vertices)
        except (TypeError, ValueError, RuntimeError) as error:
            raise MeshError(f"Mesh: vertices must be a [V, 3] array of numbers: {error}") from error
    vertices = vertices.detach().cpu()
    if vertices.dim() != 2 or vertices.shape[1] != 3:
        raise MeshError(f"Mesh: vertices must be [V, 3], got shape {tuple(vertices.shape)}")
    if not vertices.is_floating_point():
        if vertices.dtype == torch.bool or vertices.is_complex():
            raise MeshError(f"Mesh: vertices must be real numbers, got {vertices.dtype}")
        vertices = vertices.to(torch.get_default_dtype())
    bad = ~torch.isfinite(vertices).all(dim=1)
    if bad.any():
        row = int(bad.nonzero()[0, 0])
        raise MeshError(f"Mesh: vertex {row} is not finite: {vertices[row].tolist()}")
    return vertices.contiguous()


def _as_faces(faces, num_vertices: int) -> Tensor:
    if not isinstance(faces, Tensor):
        faces = torch.as_tensor(np.asarray(faces))
    faces = faces.detach().cpu()
    if faces.dim() != 2 or faces.shape[1] != 3:
        raise MeshError(f"Mesh: faces must be [F, 3] (triangles), got shape {tuple(faces.shape)}")
    if faces.is_floating_point() or faces.is_complex() or faces.dtype == torch.bool:
        raise MeshError(f"Mesh: faces must hold integer vertex indices, got {faces.dtype}")
    faces = faces.to(torch.long).contiguous()
    if faces.numel():
        bad = ((faces < 0) | (faces >= num_vertices)).any(dim=1)
        if bad.any():
            row = int(bad.nonzero()[0, 0])
            raise MeshError(f"Mesh: face {row} {faces[row].tolist()} has a vertex index outside [0, {num_vertices})")
    return faces


def _check_degenerate(vertices: Tensor, faces: Tensor, allow_zero_area: bool) -> None:
    f = faces.numpy()
    repeated = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        raise MeshError(f"Mesh: face {row} {f[row].tolist()} repeats a vertex (degenerate triangle)")
    if allow_zero_area:
        return
    v = vertices.numpy().astype(np.float64, copy=False)
    cross = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    zero = ~np.any(cross != 0.0, axis=1)
    if zero.any():
        row = int(np.flatnonzero(zero)[0])
        raise MeshError(f"Mesh: face {row} {f[row].tolist()} has zero area (its vertices are collinear or "
                        f"coincide); repair the mesh, or pass allow_degenerate=True and use the robust Laplacian")


def _edge_table(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges ``[2, E]`` (sorted, smaller index first) and how many faces border each."""
    if faces.shape[0] == 0:
        return np.zeros((2, 0), dtype=np.int64), np.zeros(0, dtype=np.int64)
    half = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]], axis=0)
    half.sort(axis=1)
    base = np.int64(half.max()) + 1
    keys, counts = np.unique(half[:, 0] * base + half[:, 1], return_counts=True)
    return np.stack([keys // base, keys % base]), counts


def _check_manifold(mesh: Mesh) -> None:
    f = mesh.faces.numpy()
    edges, counts = _edge_table(f)
    mesh._cache["edges"] = torch.from_numpy(edges)
    bad = counts > 2
    if bad.any():
        a, b = (int(i) for i in edges[:, np.flatnonzero(bad)[0]])
        touching = np.flatnonzero(((f == a).any(axis=1)) & ((f == b).any(axis=1)))
        raise MeshError(f"Mesh: edge ({a}, {b}) borders {len(touching)} faces {touching[:6].tolist()} (a manifold "
                        f"edge borders at most 2); split the non-manifold edge or pass check_manifold=False")


def merge_meshes(meshes: Sequence[Mesh]) -> tuple[Mesh, Tensor]:
    """The disjoint union of several meshes (one mesh with several components) and ``batch [V]``, the mesh each
    vertex came from. Operators of the union are the block-diagonal stack of the parts' operators."""
    if not meshes:
        raise MeshError("merge_meshes: needs at least one mesh")
    offsets = np.cumsum([0] + [m.num_vertices for m in meshes])
    dtype = meshes[0].vertices.dtype
    vertices = torch.cat([m.vertices.to(dtype) for m in meshes])
    faces = torch.cat([m.faces + int(o) for m, o in zip(meshes, offsets[:-1], strict=True)])
    batch = torch.repeat_interleave(torch.arange(len(meshes)), torch.tensor([m.num_vertices for m in meshes]))
    return Mesh(vertices, faces, check_manifold=False, allow_degenerate=True), batch


def load_mesh(path: str | os.PathLike, *, dtype: torch.dtype | None = None) -> Mesh:
    """Read a triangle mesh file (OBJ, OFF, PLY, STL, ... anything trimesh reads) without merging, dropping or
    reordering vertices (unreferenced vertices and texture seams included). Quads and polygons are split into
    triangles by trimesh. Needs ``pip install fivefold[mesh]``."""
    trimesh = _trimesh()
    path = Path(path)
    if not path.is_file():
        raise MeshError(f"load_mesh: no file at {path}")
    try:
        loaded = trimesh.load(path, process=False, maintain_order=True, force="mesh")
    except Exception as error:  # trimesh raises many kinds; say which file failed and why
        raise MeshError(f"load_mesh: cannot read {path}: {error}") from error
    vertices = np.asarray(loaded.vertices)
    return Mesh(torch.as_tensor(vertices, dtype=dtype or torch.get_default_dtype()), np.asarray(loaded.faces))


def save_mesh(mesh: Mesh, path: str | os.PathLike) -> Path:
    """Write ``mesh`` to ``path``; the format follows the suffix (``.obj``, ``.off``, ``.ply``, ``.stl``). Written to a
    temporary file first and renamed, so a crash never leaves half a file."""
    trimesh = _trimesh()
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in ("obj", "off", "ply", "stl"):
        raise MeshError(f"save_mesh: unknown format {path.suffix!r}; use .obj, .off, .ply or .stl")
    shape = trimesh.Trimesh(mesh.vertices.numpy().astype(np.float64), mesh.faces.numpy(), process=False)
    partial = path.with_name(path.name + ".partial")
    shape.export(partial, file_type=suffix)
    os.replace(partial, path)
    return path


def _trimesh():
    try:
        import trimesh
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise MeshError("mesh files and trimesh conversions need trimesh: pip install 'fivefold[mesh]'") from error
    return trimesh
