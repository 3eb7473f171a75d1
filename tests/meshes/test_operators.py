"""Operators: the Laplacian's algebra and spectrum, frames and connection, gradients, geodesics, HKS, the cache."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fivefold.errors import MeshError
from fivefold.meshes import (
    Mesh,
    cotan_laplacian,
    edge_coordinates,
    face_areas,
    geodesic_distance,
    heat_kernel_signature,
    hks_times,
    laplacian_eigenbasis,
    mesh_operators,
    rotate_frames,
    tangent_frames,
    vertex_areas,
    vertex_normals,
)
from fivefold.testing import random_gauge

from .conftest import bumpy_sphere


def _rigid(mesh: Mesh, seed: int = 1) -> Mesh:
    from fivefold.groups import random_rotation

    rotation = random_rotation(3, torch.Generator().manual_seed(seed))
    return Mesh(mesh.vertices @ rotation.T + torch.tensor([0.3, -2.0, 1.5], dtype=torch.float64), mesh.faces)


def _wrap(a: torch.Tensor) -> torch.Tensor:
    return torch.remainder(a + math.pi, 2 * math.pi) - math.pi


def test_laplacian_is_symmetric_psd_with_zero_row_sums(sphere_mesh):
    L, M = cotan_laplacian(sphere_mesh)
    assert isinstance(L, sp.csr_matrix) and L.shape == (sphere_mesh.num_vertices,) * 2
    assert abs(L - L.T).max() < 1e-14
    assert np.abs(np.asarray(L.sum(axis=1))).max() < 1e-12
    assert np.linalg.eigvalsh(L.toarray()).min() > -1e-10
    assert M.diagonal().sum() == pytest.approx(float(face_areas(sphere_mesh).sum()), rel=1e-12)
    assert np.allclose(M.diagonal(), vertex_areas(sphere_mesh).numpy())


def test_laplacian_is_the_dirichlet_energy(patch_mesh):
    """x^T L x = integral of |grad x|^2 for the piecewise-linear x; for a linear function on a flat patch that is
    |a|^2 times the area."""
    L, _ = cotan_laplacian(patch_mesh)
    a = np.array([0.7, -0.2])
    x = patch_mesh.vertices.numpy()[:, :2] @ a
    area = float(face_areas(patch_mesh).sum())
    assert x @ (L @ x) == pytest.approx(float(a @ a) * area, rel=1e-10)


def test_sphere_spectrum():
    """The unit sphere's Laplace-Beltrami eigenvalues are l (l + 1) with multiplicity 2 l + 1."""
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=4)
    mesh = Mesh(torch.from_numpy(np.asarray(sphere.vertices)), np.asarray(sphere.faces))
    evals, evecs = laplacian_eigenbasis(*cotan_laplacian(mesh), 16)
    expected = torch.tensor([0.0] + [2.0] * 3 + [6.0] * 5 + [12.0] * 7, dtype=torch.float64)
    torch.testing.assert_close(evals, expected, rtol=0.01, atol=1e-6)
    _, M = cotan_laplacian(mesh)
    gram = evecs.T @ torch.from_numpy(M @ evecs.numpy())
    torch.testing.assert_close(gram, torch.eye(16, dtype=torch.float64), rtol=0, atol=1e-10)


def test_robust_laplacian_agrees_on_a_good_mesh(sphere_mesh):
    ev1, _ = laplacian_eigenbasis(*cotan_laplacian(sphere_mesh), 8)
    ev2, _ = laplacian_eigenbasis(*cotan_laplacian(sphere_mesh, robust=True), 8)
    torch.testing.assert_close(ev1, ev2, rtol=0.05, atol=1e-8)


def test_zero_area_needs_the_robust_laplacian():
    vertices = [[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [0, 1, 0], [1, 1, 0]]
    mesh = Mesh(vertices, [[0, 1, 3], [0, 1, 2], [1, 4, 3]], allow_degenerate=True, check_manifold=False)
    with pytest.raises(MeshError, match="face 1 has zero area.*robust=True"):
        cotan_laplacian(mesh)
    L, _ = cotan_laplacian(mesh, robust=True)
    assert np.isfinite(L.data).all()


def test_eigenbasis_bad_k(sphere_mesh):
    L, M = cotan_laplacian(sphere_mesh)
    with pytest.raises(MeshError, match="k must be"):
        laplacian_eigenbasis(L, M, sphere_mesh.num_vertices)


def test_frames_are_orthonormal_right_handed_and_move_with_the_mesh(sphere_mesh):
    frames = tangent_frames(sphere_mesh)
    gram = frames @ frames.transpose(1, 2)
    torch.testing.assert_close(gram, torch.eye(3, dtype=torch.float64).expand_as(gram), rtol=0, atol=1e-12)
    assert torch.allclose(torch.linalg.det(frames), torch.ones(len(frames), dtype=torch.float64))
    torch.testing.assert_close(frames[:, 2], vertex_normals(sphere_mesh))
    from fivefold.groups import random_rotation

    rotation = random_rotation(3, torch.Generator().manual_seed(1))
    moved = _rigid(sphere_mesh)
    torch.testing.assert_close(tangent_frames(moved), frames @ rotation.T, rtol=0, atol=1e-12)


def test_edge_coordinates_on_a_flat_patch(patch_mesh):
    """On a plane the log map is exact and transport is the difference of the frames' angles; parallel transport
    around any triangle comes back to where it started (no curvature)."""
    frames = tangent_frames(patch_mesh)
    edges = patch_mesh.edges
    edge_index = torch.cat([edges, edges.flip(0)], dim=1)
    angle, transport, length = edge_coordinates(patch_mesh.vertices, frames, edge_index)
    q, p = edge_index
    d = patch_mesh.vertices[q] - patch_mesh.vertices[p]
    sign = frames[p, 2, 2]  # +1 or -1: the normal's side of the plane
    frame_angle = torch.atan2(frames[:, 0, 1], frames[:, 0, 0])
    expected = _wrap(sign * (torch.atan2(d[:, 1], d[:, 0]) - frame_angle[p]))
    torch.testing.assert_close(_wrap(angle - expected), torch.zeros_like(angle), rtol=0, atol=1e-12)
    torch.testing.assert_close(length, d.norm(dim=1))
    lookup = {(int(a), int(b)): float(t) for a, b, t in zip(q, p, transport, strict=True)}
    for i, j, k in patch_mesh.faces.tolist():
        loop = lookup[(i, j)] + lookup[(j, k)] + lookup[(k, i)]
        assert abs(math.remainder(loop, 2 * math.pi)) < 1e-12


def test_total_holonomy_is_four_pi(sphere_mesh):
    """Transport once around a triangle turns a vector by (about) the Gaussian curvature it encloses; summed over the
    faces of the bumpy sphere that is 4 pi (Gauss-Bonnet, up to the discretisation of the connection)."""
    ops = mesh_operators(sphere_mesh, 8)
    lookup = {(int(a), int(b)): float(t) for a, b, t in zip(*ops.edge_index, ops.transport, strict=True)}
    total = sum(math.remainder(lookup[(i, j)] + lookup[(j, k)] + lookup[(k, i)], 2 * math.pi)
                for i, j, k in sphere_mesh.faces.tolist())
    assert total == pytest.approx(4 * math.pi, rel=0.1)


def test_regauge_follows_the_transformation_rule(sphere_mesh):
    ops = mesh_operators(sphere_mesh, 8)
    angles = random_gauge(sphere_mesh.num_vertices, torch.Generator().manual_seed(3))
    turned = ops.regauge(angles)
    q, p = ops.edge_index
    torch.testing.assert_close(_wrap(turned.angle - (ops.angle - angles[p])), torch.zeros_like(ops.angle),
                               rtol=0, atol=1e-12)
    torch.testing.assert_close(_wrap(turned.transport - (ops.transport - angles[p] + angles[q])),
                               torch.zeros_like(ops.angle), rtol=0, atol=1e-12)
    torch.testing.assert_close(turned.frames, rotate_frames(ops.frames, angles))
    with pytest.raises(MeshError, match="angles must be"):
        ops.regauge(angles[:-1])


def test_gradient_of_a_linear_function(patch_mesh):
    ops = mesh_operators(patch_mesh, 8)
    a = torch.tensor([0.3, -1.0, 0.0], dtype=torch.float64)
    f = ops.vertices @ a
    n = ops.num_vertices
    gx = torch.zeros(n, dtype=torch.float64).index_add_(0, ops.grad_rows, ops.grad_x * f[ops.grad_cols])
    gy = torch.zeros(n, dtype=torch.float64).index_add_(0, ops.grad_rows, ops.grad_y * f[ops.grad_cols])
    torch.testing.assert_close(gx, ops.frames[:, 0] @ a, rtol=0, atol=1e-4)
    torch.testing.assert_close(gy, ops.frames[:, 1] @ a, rtol=0, atol=1e-4)


def test_geodesic_distance_flat_and_sphere(patch_mesh):
    import trimesh

    d = geodesic_distance(patch_mesh, 0)
    euclid = (patch_mesh.vertices - patch_mesh.vertices[0]).norm(dim=1)
    # the patch is convex, so geodesics are straight; the heat method is first-order accurate on this coarse mesh
    assert (d - euclid).abs().mean() < 0.03 and (d - euclid).abs().max() < 0.1
    sphere = trimesh.creation.icosphere(subdivisions=4)
    mesh = Mesh(torch.from_numpy(np.asarray(sphere.vertices)), np.asarray(sphere.faces))
    d = geodesic_distance(mesh, 0)
    great_circle = torch.arccos((mesh.vertices @ mesh.vertices[0]).clamp(-1, 1))
    assert (d - great_circle).abs().max() < 0.05
    two = geodesic_distance(mesh, [0, 5])
    assert abs(float(two[0])) < 1e-9 and abs(float(two[5])) < 1e-9 and two.max() < d.max()
    with pytest.raises(MeshError, match="sources"):
        geodesic_distance(mesh, mesh.num_vertices)


def test_hks_is_rigid_motion_invariant(sphere_mesh):
    evals, evecs = laplacian_eigenbasis(*cotan_laplacian(sphere_mesh), 32)
    times = hks_times(evals, 8)
    hks = heat_kernel_signature(evals, evecs, times)
    evals2, evecs2 = laplacian_eigenbasis(*cotan_laplacian(_rigid(sphere_mesh)), 32)
    torch.testing.assert_close(heat_kernel_signature(evals2, evecs2, times), hks, rtol=1e-6, atol=1e-9)
    assert hks.shape == (sphere_mesh.num_vertices, 8) and times[0] < times[-1]


def test_operator_cache(tmp_path, sphere_mesh):
    first = mesh_operators(sphere_mesh, 8, cache_dir=tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and "_k8_cotan_" in files[0].name
    again = mesh_operators(sphere_mesh, 8, cache_dir=tmp_path)
    torch.testing.assert_close(again.evecs, first.evecs, rtol=0, atol=0)
    assert torch.equal(again.edge_index, first.edge_index)
    mesh_operators(bumpy_sphere(seed=5), 8, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    files[0].write_bytes(b"damaged")
    repaired = mesh_operators(sphere_mesh, 8, cache_dir=tmp_path)
    torch.testing.assert_close(repaired.evals, first.evals)
    whole = files[0].read_bytes()
    files[0].write_bytes(whole[:len(whole) // 2])  # truncated, as by a full disk
    torch.testing.assert_close(mesh_operators(sphere_mesh, 8, cache_dir=tmp_path).evals, first.evals)


def test_operators_float32_conversion(sphere_mesh):
    ops = mesh_operators(sphere_mesh, 8).to(torch.float32)
    assert ops.evecs.dtype == torch.float32 and ops.edge_index.dtype == torch.long
    with pytest.raises(MeshError, match="k_eig"):
        mesh_operators(sphere_mesh, 0)
