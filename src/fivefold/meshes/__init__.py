"""Geodesics and gauges: triangle meshes, their operators, and mesh convolutions.

- ``Mesh`` (validated, immutable), ``load_mesh`` / ``save_mesh`` (trimesh), ``merge_meshes``, ``mesh.to_graph()``;
  ``to_pyg`` / ``from_pyg`` (torch_geometric's ``Data`` with ``pos``, ``face``), ``to_trimesh`` / ``from_trimesh``.
- Operators as pure functions (``cotan_laplacian``, ``laplacian_eigenbasis``, ``tangent_frames``, ``edge_coordinates``,
  ``gradient_operators``, ``geodesic_distance``, ``heat_kernel_signature``, ...) and ``mesh_operators``, which computes
  all a layer needs once and caches it on disk by content hash.
- Layers ``GEMConv`` (+ ``RegularNonlinearity``, ``GEMResBlock``, ``GaugeLinear``), ``DiffusionNetBlock``,
  ``GeodesicConv``; models ``GEMCNN``, ``DiffusionNet``, ``GeodesicCNN``. Features of gauge-equivariant layers are
  fields of SO(2) irreps (``fivefold.groups.so2_band_field``), turned by ``fivefold.groups.so2_rotate``.

Example::

    >>> import torch
    >>> from fivefold.meshes import Mesh, mesh_operators, DiffusionNet
    >>> octahedron = Mesh(torch.tensor([[1., 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]]),
    ...                   [[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
    >>> ops = mesh_operators(octahedron, k_eig=4)
    >>> DiffusionNet(3, 2, width=8, blocks=1)(octahedron.vertices, ops).shape
    torch.Size([6, 2])
"""

from fivefold.meshes.convert import from_pyg, from_trimesh, to_pyg, to_trimesh
from fivefold.meshes.diffusion import DiffusionNetBlock, LearnedTimeDiffusion, SpatialGradientFeatures
from fivefold.meshes.gem import (
    GaugeLinear,
    GEMConv,
    GEMResBlock,
    RegularNonlinearity,
    fourier_features,
    gem_kernel_basis,
)
from fivefold.meshes.geodesic import GeodesicConv
from fivefold.meshes.mesh import Mesh, load_mesh, merge_meshes, save_mesh
from fivefold.meshes.models import GEMCNN, DiffusionNet, GeodesicCNN, faces_from_vertices, global_mean
from fivefold.meshes.operators import (
    cotan_laplacian,
    edge_coordinates,
    face_areas,
    face_normals,
    geodesic_distance,
    gradient_operators,
    heat_kernel_signature,
    hks_times,
    laplacian_eigenbasis,
    rotate_frames,
    tangent_frames,
    vertex_areas,
    vertex_normals,
)
from fivefold.meshes.precompute import OPERATORS_VERSION, MeshOperators, mesh_operators

__all__ = [
    "Mesh", "load_mesh", "save_mesh", "merge_meshes", "to_pyg", "from_pyg", "to_trimesh", "from_trimesh",
    "face_areas", "face_normals", "vertex_normals", "vertex_areas", "cotan_laplacian", "laplacian_eigenbasis",
    "tangent_frames", "rotate_frames", "edge_coordinates", "gradient_operators", "geodesic_distance",
    "heat_kernel_signature", "hks_times",
    "MeshOperators", "mesh_operators", "OPERATORS_VERSION",
    "GEMConv", "GEMResBlock", "GaugeLinear", "RegularNonlinearity", "gem_kernel_basis", "fourier_features",
    "DiffusionNetBlock", "LearnedTimeDiffusion", "SpatialGradientFeatures", "GeodesicConv",
    "GEMCNN", "DiffusionNet", "GeodesicCNN", "faces_from_vertices", "global_mean",
]
