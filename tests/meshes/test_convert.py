"""``Mesh`` to and from torch_geometric's ``Data`` (``pos``, ``face``) and trimesh: the vertex order and faces survive
a round trip, PyG's own mesh transform sees the same edges as ``mesh.to_graph()``, and bad data is refused."""

import numpy as np
import pytest
import torch

from fivefold.errors import MeshError
from fivefold.meshes import from_pyg, from_trimesh, to_pyg, to_trimesh


def _edge_set(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return set(map(tuple, edge_index.t().tolist()))


def test_pyg_round_trip_and_edges(sphere_mesh):
    pytest.importorskip("torch_geometric")
    from torch_geometric.transforms import FaceToEdge

    data = to_pyg(sphere_mesh)
    assert data.face.shape == (3, sphere_mesh.num_faces) and torch.equal(data.pos, sphere_mesh.vertices)
    back = from_pyg(data)
    assert torch.equal(back.vertices, sphere_mesh.vertices) and torch.equal(back.faces, sphere_mesh.faces)
    theirs = FaceToEdge(remove_faces=False)(to_pyg(sphere_mesh)).edge_index
    ours = sphere_mesh.to_graph().edge_index
    assert _edge_set(theirs) == _edge_set(ours)
    data.pos += 1.0  # a copy: the mesh is immutable
    assert not torch.equal(data.pos, sphere_mesh.vertices)


def test_from_pyg_refuses_bad_data(sphere_mesh):
    pytest.importorskip("torch_geometric")
    from torch_geometric.data import Data

    with pytest.raises(MeshError, match="no face"):
        from_pyg(Data(pos=sphere_mesh.vertices))
    with pytest.raises(MeshError, match=r"\[3, F\]"):
        from_pyg(Data(pos=sphere_mesh.vertices, face=sphere_mesh.faces))  # [F, 3]: not PyG's layout
    faces = sphere_mesh.faces.t().clone()
    faces[2, 5] = faces[0, 5]  # a face that repeats a vertex
    with pytest.raises(MeshError, match="face 5"):
        from_pyg(Data(pos=sphere_mesh.vertices, face=faces))


def test_trimesh_round_trip_keeps_the_vertex_order(sphere_mesh):
    surface = to_trimesh(sphere_mesh)
    assert surface.vertices.shape == (sphere_mesh.num_vertices, 3)
    np.testing.assert_array_equal(surface.faces, sphere_mesh.faces.numpy())
    back = from_trimesh(surface, dtype=sphere_mesh.vertices.dtype)
    assert torch.equal(back.vertices, sphere_mesh.vertices) and torch.equal(back.faces, sphere_mesh.faces)
    with pytest.raises(MeshError, match="trimesh.Trimesh"):
        from_trimesh(object())
