"""Mesh validation, immutability, edges, graph conversion, file round trips."""

import math

import numpy as np
import pytest
import torch

from fivefold.errors import MeshError
from fivefold.graphs import Graph
from fivefold.meshes import Mesh, load_mesh, merge_meshes, save_mesh

TETRA_V = [[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
TETRA_F = [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]


def test_tetrahedron_edges_and_graph():
    mesh = Mesh(TETRA_V, TETRA_F)
    assert mesh.num_vertices == 4 and mesh.num_faces == 4
    assert mesh.vertices.dtype == torch.get_default_dtype() and mesh.faces.dtype == torch.long
    assert mesh.edges.tolist() == [[0, 0, 0, 1, 1, 2], [1, 2, 3, 2, 3, 3]]
    assert mesh.boundary_edges.shape == (2, 0)
    graph = mesh.to_graph()
    assert isinstance(graph, Graph) and graph.num_nodes == 4 and graph.edge_index.shape == (2, 12)
    assert torch.equal(graph.pos, mesh.vertices)


def test_open_mesh_boundary():
    mesh = Mesh(TETRA_V, TETRA_F[:3])
    assert sorted(map(tuple, mesh.boundary_edges.T.tolist())) == [(1, 2), (1, 3), (2, 3)]


def test_immutable():
    mesh = Mesh(TETRA_V, TETRA_F)
    with pytest.raises(AttributeError, match="immutable"):
        mesh.vertices = torch.zeros(4, 3)


@pytest.mark.parametrize("vertices, faces, message", [
    ([[0.0, 0], [1, 0], [0, 1]], [[0, 1, 2]], r"vertices must be \[V, 3\]"),
    (TETRA_V, [[0, 1]], r"faces must be \[F, 3\]"),
    (TETRA_V, [[0.0, 1, 2]], "integer vertex indices"),
    (TETRA_V, [[0, 1, 2], [0, 1, 4]], r"face 1 \[0, 1, 4\] has a vertex index outside \[0, 4\)"),
    (TETRA_V, [[0, 1, 2], [0, -1, 2]], "face 1"),
    (TETRA_V, [[0, 1, 2], [1, 1, 2]], r"face 1 \[1, 1, 2\] repeats a vertex"),
    ([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [0, 1, 0]], [[0, 1, 3], [0, 1, 2]], "face 1 .* zero area"),
    ([[0.0, 0, 0], [math.nan, 0, 0], [0, 1, 0]], [[0, 1, 2]], r"vertex 1 is not finite"),
    ([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1]], [[0, 1, 2], [1, 0, 3], [0, 1, 4]],
     r"edge \(0, 1\) borders 3 faces"),
    ([[True, False, True]], [[0, 0, 0]], "real numbers"),
])
def test_bad_meshes_are_named(vertices, faces, message):
    with pytest.raises(MeshError, match=message):
        Mesh(vertices, faces)


def test_degenerate_allowed_when_asked():
    vertices = [[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [0, 1, 0]]
    mesh = Mesh(vertices, [[0, 1, 3], [0, 1, 2]], allow_degenerate=True)
    assert mesh.num_faces == 2
    with pytest.raises(MeshError, match="repeats"):
        Mesh(vertices, [[0, 0, 1]], allow_degenerate=True)


def test_non_manifold_allowed_when_asked():
    vertices = [[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1]]
    assert Mesh(vertices, [[0, 1, 2], [1, 0, 3], [0, 1, 4]], check_manifold=False).num_faces == 3


def test_content_hash_tracks_the_arrays():
    a = Mesh(TETRA_V, TETRA_F)
    assert a.content_hash() == Mesh(TETRA_V, TETRA_F).content_hash()
    moved = np.array(TETRA_V)
    moved[0, 0] = 1e-9
    assert a.content_hash() != Mesh(moved, TETRA_F).content_hash()
    assert a.content_hash() != Mesh(TETRA_V, [TETRA_F[i] for i in (1, 0, 2, 3)]).content_hash()


def test_merge_meshes(sphere_mesh):
    tetra = Mesh(torch.tensor(TETRA_V, dtype=torch.float64), TETRA_F)
    merged, batch = merge_meshes([tetra, sphere_mesh])
    assert merged.num_vertices == 4 + sphere_mesh.num_vertices
    assert torch.equal(merged.faces[4:], sphere_mesh.faces + 4)
    assert batch.tolist() == [0] * 4 + [1] * sphere_mesh.num_vertices
    with pytest.raises(MeshError):
        merge_meshes([])


@pytest.mark.parametrize("suffix", [".obj", ".off", ".ply"])
def test_file_round_trip(tmp_path, sphere_mesh, suffix):
    path = save_mesh(sphere_mesh, tmp_path / f"shape{suffix}")
    assert not list(tmp_path.glob("*.partial"))
    back = load_mesh(path, dtype=torch.float64)
    assert torch.equal(back.faces, sphere_mesh.faces)
    torch.testing.assert_close(back.vertices, sphere_mesh.vertices, rtol=0, atol=1e-6)


def test_obj_keeps_unreferenced_vertices_and_seams(tmp_path):
    """Vertex i of the file is vertex i of the mesh, even when a vertex is unused or faces carry texture indices."""
    (tmp_path / "unused.obj").write_text("v 9 9 9\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n"
                                         "f 2 3 4\nf 2 4 5\nf 2 5 3\nf 3 5 4\n")
    mesh = load_mesh(tmp_path / "unused.obj", dtype=torch.float64)
    assert mesh.num_vertices == 5 and mesh.vertices[0].tolist() == [9.0, 9.0, 9.0]
    (tmp_path / "seams.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nvt 0 0\nvt 1 0\nvt 0 1\nvt 1 1\n"
                                        "f 1/1 3/2 2/3\nf 1/4 2/1 4/2\nf 1/3 4/4 3/1\nf 2/2 3/3 4/4\n")
    seams = load_mesh(tmp_path / "seams.obj", dtype=torch.float64)
    assert seams.num_vertices == 4 and seams.faces.tolist()[0] == [0, 2, 1]


def test_file_errors(tmp_path, sphere_mesh):
    with pytest.raises(MeshError, match="no file"):
        load_mesh(tmp_path / "missing.obj")
    (tmp_path / "broken.off").write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n")
    with pytest.raises(MeshError, match="broken.off"):
        load_mesh(tmp_path / "broken.off")
    with pytest.raises(MeshError, match="unknown format"):
        save_mesh(sphere_mesh, tmp_path / "shape.xyz")
