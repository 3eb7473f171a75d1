"""Conversions between ``Mesh`` and torch_geometric's ``Data`` (``pos`` ``[V, 3]``, ``face`` ``[3, F]``, as PyG's
FAUST and mesh transforms hold a mesh) and trimesh's ``Trimesh``. Both libraries are optional: each is imported inside
the function that needs it.

Only the surface converts: per-vertex labels or features of a PyG ``Data`` (``y``, ``x``) keep the vertex order, so
read them from the ``Data`` itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fivefold.errors import MeshError
from fivefold.meshes.mesh import Mesh, _trimesh

__all__ = ["to_pyg", "from_pyg", "to_trimesh", "from_trimesh"]


def to_pyg(mesh: Mesh) -> Any:
    """A ``torch_geometric.data.Data`` with ``pos`` (the vertices) and ``face`` (``[3, F]``, the faces transposed),
    both copies: changing them in place leaves the (immutable) mesh alone."""
    try:
        from torch_geometric.data import Data
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("to_pyg needs torch_geometric: pip install torch_geometric") from exc
    return Data(pos=mesh.vertices.clone(), face=mesh.faces.t().contiguous())


def from_pyg(data: Any, **options: Any) -> Mesh:
    """A ``Mesh`` from a ``Data`` with ``pos`` ``[V, 3]`` and ``face`` ``[3, F]``, validated like any mesh.

    Args:
        data: the mesh.
        options: passed to ``Mesh`` (``check_manifold``, ``allow_degenerate``).
    """
    pos, face = getattr(data, "pos", None), getattr(data, "face", None)
    if pos is None or face is None:
        raise MeshError("from_pyg: a mesh needs data.pos [V, 3] and data.face [3, F]; "
                        f"this data has {'no pos' if pos is None else 'no face'}")
    if face.dim() != 2 or face.shape[0] != 3:
        raise MeshError(f"from_pyg: data.face must be [3, F] (PyG's layout), got {tuple(face.shape)}")
    return Mesh(pos, face.t(), **options)


def to_trimesh(mesh: Mesh) -> Any:
    """A ``trimesh.Trimesh`` with the same vertices and faces, in the same order (no merging or reordering)."""
    return _trimesh().Trimesh(mesh.vertices.detach().cpu().numpy(), mesh.faces.cpu().numpy(), process=False)


def from_trimesh(surface: Any, *, dtype: torch.dtype | None = None, **options: Any) -> Mesh:
    """A ``Mesh`` from a ``trimesh.Trimesh`` (vertex order kept), validated like any mesh.

    Args:
        surface: the trimesh.
        dtype: the vertices' dtype (default: torch's default dtype, as ``load_mesh``).
        options: passed to ``Mesh`` (``check_manifold``, ``allow_degenerate``).
    """
    vertices, faces = getattr(surface, "vertices", None), getattr(surface, "faces", None)
    if vertices is None or faces is None:
        raise MeshError(f"from_trimesh: expected a trimesh.Trimesh, got {type(surface).__name__}")
    return Mesh(torch.as_tensor(np.asarray(vertices), dtype=dtype or torch.get_default_dtype()),
                np.ascontiguousarray(faces), **options)
