"""Small meshes for the mesh tests: a bumpy sphere (closed, curved, irregular) and a flat patch with boundary."""

import numpy as np
import pytest
import torch
from scipy.spatial import Delaunay

from fivefold.meshes import Mesh


def bumpy_sphere(subdivisions: int = 2, seed: int = 0) -> Mesh:
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=subdivisions)
    rng = np.random.default_rng(seed)
    vertices = np.asarray(sphere.vertices) * (1.0 + 0.15 * rng.uniform(-1, 1, (len(sphere.vertices), 1)))
    return Mesh(torch.from_numpy(vertices), np.asarray(sphere.faces))


def flat_patch(n: int = 150, seed: int = 0) -> Mesh:
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, 1, (n, 2))
    faces = Delaunay(points).simplices
    # drop sliver triangles on the hull (Delaunay makes some with tiny area)
    v = np.concatenate([points, np.zeros((n, 1))], axis=1)
    area = 0.5 * np.abs(np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])[:, 2])
    faces = faces[area > 1e-4]
    used = np.unique(faces)
    remap = -np.ones(n, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return Mesh(torch.from_numpy(v[used]), remap[faces])


@pytest.fixture(scope="session")
def sphere_mesh() -> Mesh:
    return bumpy_sphere()


@pytest.fixture(scope="session")
def patch_mesh() -> Mesh:
    return flat_patch()
