"""Everything the mesh layers need, computed once per mesh and cached on disk: ``MeshOperators``.

Precomputation (the eigenbasis above all) is the slow part on large meshes, so ``mesh_operators(mesh, k_eig,
cache_dir=...)`` stores its arrays in ``cache_dir/<sha256 of the mesh>_<settings>.npz`` (written atomically) and reads
them back next time. The key covers the vertex coordinates, the faces, ``k_eig``, the Laplacian kind and
``OPERATORS_VERSION``, so a changed mesh or setting never reads a stale file.

Layers take the operators explicitly: ``GEMConv(x, ops)``, ``DiffusionNetBlock(x, ops)``, ``GeodesicConv(x, ops)``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from fivefold.errors import MeshError
from fivefold.meshes.mesh import Mesh
from fivefold.meshes.operators import (
    cotan_laplacian,
    edge_coordinates,
    gradient_operators,
    laplacian_eigenbasis,
    rotate_frames,
    tangent_frames,
)
from fivefold.ops import CSR

__all__ = ["MeshOperators", "mesh_operators", "OPERATORS_VERSION"]

OPERATORS_VERSION = 1


@dataclass(frozen=True)
class MeshOperators:
    """The precomputed operators of one mesh (torch tensors; float64 unless converted with ``.to(dtype)``).

    Attributes:
        vertices: ``[V, 3]``.
        frames: ``[V, 3, 3]`` rows ``(x, y, n)`` of each vertex's tangent frame.
        mass: ``[V]`` lumped mass (vertex areas).
        evals, evecs: ``[k]``, ``[V, k]`` the ``k`` lowest Laplace-Beltrami eigenpairs (``evecs^T M evecs = I``).
        edge_index: ``[2, E]`` directed mesh edges ``q -> p`` (both directions of every edge), sorted by target.
        angle, transport, length: ``[E]`` the polar angle of ``q`` in ``p``'s frame, the connection angle from
            ``q``'s frame to ``p``'s, and the edge length (see ``operators.edge_coordinates``).
        grad_x, grad_y: ``[nnz]`` values of the tangent gradient operators on the pattern ``grad_rows, grad_cols``.
    """

    vertices: Tensor
    frames: Tensor
    mass: Tensor
    evals: Tensor
    evecs: Tensor
    edge_index: Tensor
    angle: Tensor
    transport: Tensor
    length: Tensor
    grad_rows: Tensor
    grad_cols: Tensor
    grad_x: Tensor
    grad_y: Tensor

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def num_eigenpairs(self) -> int:
        return int(self.evals.shape[0])

    @property
    def edge_csr(self) -> CSR:
        """The edges as a CSR pattern (row = target ``p``); entry ``k`` is edge ``perm[k]``."""
        key = "_edge_csr"
        if key not in self.__dict__:
            object.__setattr__(self, key, CSR.from_coo(self.edge_index[1], self.edge_index[0], self.num_vertices,
                                                       self.num_vertices))
        return self.__dict__[key]

    @property
    def grad_csr(self) -> CSR:
        """The gradient operators' sparsity pattern as a CSR (row = the vertex whose gradient is taken)."""
        key = "_grad_csr"
        if key not in self.__dict__:
            object.__setattr__(self, key, CSR.from_coo(self.grad_rows, self.grad_cols, self.num_vertices,
                                                       self.num_vertices))
        return self.__dict__[key]

    def memo(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()``, once per operators object and ``key``: tables that layers derive from these operators
        (GEM-CNN's per-edge angular weights) are built on the first forward pass, not on every one. They stay in
        memory as long as the object (GEM-CNN's: ``[nnz, 5, 2]`` per input frequency and dtype). Operators are
        treated as immutable (``to`` and ``regauge`` return new objects, with an empty memo): editing their tensors
        in place would leave the memo stale."""
        memo = self.__dict__.setdefault("_memo", {})
        if key not in memo:
            memo[key] = compute()
        return memo[key]

    def to(self, dtype: torch.dtype) -> MeshOperators:
        """The floating-point arrays in ``dtype`` (index arrays unchanged)."""
        changes = {f.name: getattr(self, f.name).to(dtype) for f in fields(self)
                   if getattr(self, f.name).is_floating_point()}
        return replace(self, **changes)

    def regauge(self, angles: Tensor) -> MeshOperators:
        """The same operators in other gauges: every vertex's frame turned by ``angles [V]`` about its normal, and the
        angles, connection and gradients recomputed from the turned frames (what a gauge-equivariance test needs)."""
        if angles.shape != (self.num_vertices,):
            raise MeshError(f"regauge: angles must be [{self.num_vertices}], got {tuple(angles.shape)}")
        dtype = self.vertices.dtype
        frames = rotate_frames(self.frames.double(), angles.double())
        return replace(self, frames=frames.to(dtype), **_edge_arrays(self.vertices.double(), frames, self.edge_index,
                                                                     dtype))


def _edge_arrays(vertices: Tensor, frames: Tensor, edge_index: Tensor, dtype: torch.dtype) -> dict[str, Tensor]:
    angle, transport, length = edge_coordinates(vertices, frames, edge_index)
    gx, gy = gradient_operators(vertices, frames, edge_index)
    both = sp.csr_matrix(gx + 1j * gy).tocoo()  # one pattern for the two components
    return {"angle": angle.to(dtype), "transport": transport.to(dtype), "length": length.to(dtype),
            "grad_rows": torch.from_numpy(both.row.astype(np.int64)),
            "grad_cols": torch.from_numpy(both.col.astype(np.int64)),
            "grad_x": torch.from_numpy(both.data.real.copy()).to(dtype),
            "grad_y": torch.from_numpy(both.data.imag.copy()).to(dtype)}


def _compute(mesh: Mesh, k_eig: int, robust: bool) -> MeshOperators:
    vertices = mesh.vertices.double()
    L, M = cotan_laplacian(mesh, robust=robust)
    evals, evecs = laplacian_eigenbasis(L, M, k_eig)
    frames = tangent_frames(mesh)
    edges = mesh.edges
    both = torch.cat([edges, edges.flip(0)], dim=1)
    order = torch.argsort(both[1] * mesh.num_vertices + both[0])
    edge_index = both[:, order].contiguous()
    return MeshOperators(vertices=vertices, frames=frames, mass=torch.from_numpy(np.asarray(M.diagonal())),
                         evals=evals, evecs=evecs, edge_index=edge_index,
                         **_edge_arrays(vertices, frames, edge_index, torch.float64))


def mesh_operators(mesh: Mesh, k_eig: int = 128, *, robust: bool = False,
                   cache_dir: str | os.PathLike | None = None) -> MeshOperators:
    """All operators of ``mesh`` in float64: frames, mass, ``k_eig`` eigenpairs, edge coordinates and connection,
    gradient operators. With ``cache_dir``, read from / written to ``cache_dir`` (keyed by the mesh's content hash).

    ``k_eig`` is capped at ``V - 1``; ``robust`` selects the intrinsic-Delaunay Laplacian (see ``cotan_laplacian``).
    """
    if not isinstance(mesh, Mesh):
        raise MeshError(f"mesh_operators: expected a Mesh, got {type(mesh).__name__}")
    if isinstance(k_eig, bool) or not isinstance(k_eig, int) or k_eig < 1:
        raise MeshError(f"mesh_operators: k_eig must be a positive integer, got {k_eig!r}")
    k_eig = min(k_eig, mesh.num_vertices - 1)
    if cache_dir is None:
        return _compute(mesh, k_eig, robust)
    cache_dir = Path(cache_dir)
    kind = "robust" if robust else "cotan"
    path = cache_dir / f"{mesh.content_hash()[:40]}_k{k_eig}_{kind}_v{OPERATORS_VERSION}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as stored:
                return MeshOperators(**{f.name: torch.from_numpy(stored[f.name]) for f in fields(MeshOperators)})
        except Exception:  # a damaged or truncated cache file, whatever numpy raises for it, is recomputed
            pass
    ops = _compute(mesh, k_eig, robust)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + f".{os.getpid()}.partial.npz")
    np.savez(partial, **{f.name: getattr(ops, f.name).numpy() for f in fields(MeshOperators)})
    os.replace(partial, path)
    return ops
