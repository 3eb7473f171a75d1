"""Moving spherical signals onto and off the icosahedral grid, and rotating them.

- ``sample_equirectangular``: a longitude/latitude image onto the grid's vertices (bilinear, longitude wraps).
- ``sample_points``: values at scattered points onto the vertices (nearest point, or inverse-distance weighting of
  the ``k`` nearest), with scipy's ``cKDTree`` (the well-kept k-d tree; no reason to write our own).
- ``sample_healpix``: a HEALPix map, through ``healpy.get_interp_val`` (``pip install fivefold[sphere]``).
- ``interpolate``: per-vertex values at arbitrary unit vectors, by barycentric interpolation on the grid's triangles.
- ``to_equirectangular``: per-vertex values to a longitude/latitude image (for plots), by ``interpolate``.
- ``project_image``: planar images onto the northern hemisphere by stereographic projection, optionally rotated by a
  rotation per image (Spherical MNIST, as in Cohen, Geiger, Koehler & Welling 2018, "Spherical CNNs").
- ``rotate_signal``: ``(R . f)(x) = f(R^T x)`` for any rotation ``R`` in SO(3), by ``interpolate`` (exact when ``R``
  is a symmetry of the grid; for those, ``rotate_charts`` also turns regular fields).

Conventions: longitude in ``[-pi, pi)`` from the +x axis towards +y, latitude in ``[-pi/2, pi/2]`` (+z is north).
Pixel ``(i, j)`` of an ``H x W`` equirectangular image has its centre at latitude ``pi/2 - (i + 1/2) pi / H`` and
longitude ``-pi + (j + 1/2) 2 pi / W``. Per-vertex tensors are ``[..., V]`` in the grid's vertex order.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from fivefold.errors import FieldError, check_option
from fivefold.spheres.grid import IcoGrid

__all__ = [
    "lonlat", "unit_vectors", "sample_equirectangular", "sample_points", "sample_healpix", "interpolate",
    "to_equirectangular", "rotate_signal", "project_image",
]


def _check_floating(values: Tensor, where: str, hint: str = "") -> None:
    """Interpolation weights are real numbers: integer or boolean values would be truncated silently."""
    if not torch.is_floating_point(values):
        raise FieldError(f"{where}: values must be floating point (they are interpolated), got {values.dtype}; "
                         f"convert with .float(){hint}")


def lonlat(points: Tensor) -> tuple[Tensor, Tensor]:
    """Longitude and latitude (radians) of unit vectors ``[..., 3]``."""
    lon = torch.atan2(points[..., 1], points[..., 0])
    lat = torch.asin(points[..., 2].clamp(-1.0, 1.0))
    return lon, lat


def unit_vectors(lon: Tensor, lat: Tensor) -> Tensor:
    """``[..., 3]`` unit vectors at longitude ``lon`` and latitude ``lat``."""
    return torch.stack([torch.cos(lat) * torch.cos(lon), torch.cos(lat) * torch.sin(lon), torch.sin(lat)], dim=-1)


def sample_equirectangular(image: Tensor, grid: IcoGrid) -> Tensor:
    """``[..., H, W]`` longitude/latitude image -> ``[..., V]`` vertex values, bilinear (longitude wraps around;
    between the outermost pixel rows and the poles, towards the mean of that row, the image's value at the pole)."""
    if image.dim() < 2 or image.shape[-1] < 2 or image.shape[-2] < 2:
        raise FieldError(f"sample_equirectangular: image must be [..., H, W] with H, W >= 2, got {tuple(image.shape)}")
    _check_floating(image, "sample_equirectangular")
    height, width = image.shape[-2:]
    lon, lat = lonlat(grid.vertices.to(image.device))
    exact_row = (math.pi / 2 - lat) / math.pi * height - 0.5  # in [-0.5, H - 0.5]
    row = exact_row.clamp(0, height - 1)
    col = (lon + math.pi) / (2 * math.pi) * width - 0.5
    r0 = row.floor().long().clamp(0, height - 2)
    c0 = col.floor().long()
    fr = (row - r0).to(image.dtype)
    fc = (col - c0).to(image.dtype)
    c0, c1 = c0 % width, (c0 + 1) % width
    top = image[..., r0, c0] * (1 - fc) + image[..., r0, c1] * fc
    bottom = image[..., r0 + 1, c0] * (1 - fc) + image[..., r0 + 1, c1] * fc
    value = top * (1 - fr) + bottom * fr
    # polar caps: blend towards the pole value over the last half pixel
    north = (-exact_row / 0.5).clamp(0, 1).to(image.dtype)
    south = ((exact_row - (height - 1)) / 0.5).clamp(0, 1).to(image.dtype)
    value = value * (1 - north) + image[..., :1, :].mean(dim=-1) * north
    return value * (1 - south) + image[..., -1:, :].mean(dim=-1) * south


def sample_points(points: Tensor, values: Tensor, grid: IcoGrid, method: str = "nearest", k: int = 4) -> Tensor:
    """Scattered samples -> ``[..., V]`` vertex values.

    Args:
        points: ``[P, 3]`` unit vectors (or ``[P, 2]`` longitude/latitude in radians).
        values: ``[..., P]``.
        method: ``"nearest"`` (the closest point's value) or ``"idw"`` (inverse-distance weights of the ``k``
            nearest points; a vertex that coincides with a point takes its value).
    """
    from scipy.spatial import cKDTree

    if points.dim() != 2 or points.shape[1] not in (2, 3) or values.shape[-1] != points.shape[0]:
        raise FieldError(f"sample_points: points must be [P, 3] or [P, 2] and values [..., P]; got "
                         f"{tuple(points.shape)} and {tuple(values.shape)}")
    check_option(method, ("nearest", "idw"), "method", "sample_points")
    if points.shape[0] == 0:
        raise FieldError("sample_points: no points given (P = 0)")
    xyz = unit_vectors(points[:, 0], points[:, 1]) if points.shape[1] == 2 else points
    xyz = xyz / xyz.norm(dim=1, keepdim=True).clamp(min=1e-300)  # directions: points need not be unit vectors
    tree = cKDTree(xyz.detach().cpu().double().numpy())
    if method == "nearest":  # any dtype: labels stay labels
        _, nearest = tree.query(grid.vertices.numpy(), k=1)
        return values[..., torch.from_numpy(nearest).to(values.device)]
    _check_floating(values, "sample_points(method='idw')", ", or use method='nearest' for labels")
    k = min(k, points.shape[0])
    distance, nearest = tree.query(grid.vertices.numpy(), k=k)
    distance, nearest = distance.reshape(-1, k), nearest.reshape(-1, k)
    weights = 1.0 / np.maximum(distance, 1e-12) ** 2
    weights /= weights.sum(axis=1, keepdims=True)
    w = torch.from_numpy(weights).to(values.device, values.dtype)
    return (values[..., torch.from_numpy(nearest).to(values.device)] * w).sum(-1)


def sample_healpix(healpix_map: np.ndarray, grid: IcoGrid, nest: bool = False) -> Tensor:
    """A HEALPix map ``[12 * nside^2]`` -> ``[V]`` vertex values (healpy's bilinear interpolation)."""
    try:
        import healpy
    except ImportError as error:
        raise ImportError("sample_healpix needs healpy: pip install fivefold[sphere]") from error
    lon, lat = lonlat(grid.vertices)
    theta = (math.pi / 2 - lat).numpy()
    phi = np.mod(lon.numpy(), 2 * math.pi)
    return torch.from_numpy(np.asarray(healpy.get_interp_val(np.asarray(healpix_map), theta, phi, nest=nest)))


@lru_cache(maxsize=8)
def _triangles(r: int) -> tuple[np.ndarray, np.ndarray]:
    """``[T, 3]`` vertex triples of the grid's triangles and ``[V, 6]`` triangles incident to each vertex."""
    grid = IcoGrid(r)
    index = grid.pad_index.numpy()
    n = grid.n
    found = set()
    for k in range(5):
        for i in range(0, n + 1):
            for j in range(0, 2 * n + 1):
                a, diagonal = index[k, i, j], index[k, i + 1, j + 1]
                for b, c in ((index[k, i, j + 1], diagonal), (index[k, i + 1, j], diagonal)):
                    triple = (a, b, c)
                    if min(triple) >= 0 and len(set(triple)) == 3:
                        found.add(tuple(sorted(triple)))
    triangles = np.array(sorted(found), dtype=np.int64)
    incident = -np.ones((grid.num_vertices, 6), dtype=np.int64)
    fill = np.zeros(grid.num_vertices, dtype=np.int64)
    for t, triple in enumerate(triangles):
        for v in triple:
            if fill[v] < 6:
                incident[v, fill[v]] = t
                fill[v] += 1
    return triangles, incident


def interpolate(values: Tensor, grid: IcoGrid, points: Tensor) -> Tensor:
    """Values ``[..., V]`` on the grid at unit vectors ``points: [P, 3]`` -> ``[..., P]``, barycentric on the
    spherical triangle (projected to the flat triangle of the three vertices) that contains each point."""
    from scipy.spatial import cKDTree

    if values.shape[-1] != grid.num_vertices:
        raise FieldError(f"interpolate: values must be [..., {grid.num_vertices}], got {tuple(values.shape)}")
    _check_floating(values, "interpolate")
    triangles, incident = _triangles(grid.r)
    vertices = grid.vertices.numpy()
    query = points.detach().cpu().double().numpy().reshape(-1, 3)
    query = query / np.linalg.norm(query, axis=1, keepdims=True)
    _, nearest = cKDTree(vertices).query(query, k=1)
    candidates = incident[nearest]  # [P, 6]
    corners = vertices[triangles[np.maximum(candidates, 0)]]  # [P, 6, 3, 3]
    # solve q * s = a + u (b - a) + v (c - a) for the ray through q; weights (1 - u - v, u, v)
    a, b, c = corners[..., 0, :], corners[..., 1, :], corners[..., 2, :]
    system = np.stack([query[:, None, :].repeat(6, 1), a - b, a - c], axis=-1)  # columns: q, a-b, a-c
    rhs = a
    solution = np.linalg.solve(system, rhs[..., None])[..., 0]
    u, v = solution[..., 1], solution[..., 2]
    weights = np.stack([1 - u - v, u, v], axis=-1)
    inside = (weights.min(axis=-1) >= -1e-9) & (candidates >= 0) & (solution[..., 0] > 0)
    choice = np.where(inside.any(axis=1), inside.argmax(axis=1), 0)
    rows = np.arange(len(query))
    chosen = triangles[np.maximum(candidates[rows, choice], 0)]  # [P, 3]
    w = np.clip(weights[rows, choice], 0, None)
    w /= w.sum(axis=1, keepdims=True)
    index = torch.from_numpy(chosen).to(values.device)
    weight = torch.from_numpy(w).to(values.device, values.dtype)
    return (values[..., index] * weight).sum(-1).reshape(*values.shape[:-1], *points.shape[:-1])


def to_equirectangular(values: Tensor, grid: IcoGrid, height: int = 64, width: int = 128) -> Tensor:
    """``[..., V]`` vertex values -> ``[..., height, width]`` longitude/latitude image (pixel centres as in the
    module docstring), for plotting."""
    lat = math.pi / 2 - (torch.arange(height, dtype=torch.float64) + 0.5) * math.pi / height
    lon = -math.pi + (torch.arange(width, dtype=torch.float64) + 0.5) * 2 * math.pi / width
    points = unit_vectors(lon[None, :].expand(height, width), lat[:, None].expand(height, width))
    return interpolate(values, grid, points)


def rotate_signal(values: Tensor, grid: IcoGrid, rotation: Tensor | np.ndarray) -> Tensor:
    """The scalar signal ``[..., V]`` rotated by ``rotation`` (``[3, 3]`` in SO(3)): ``out(v) = f(R^T v)``.

    A float32 rotation is accepted up to float32 rounding (it is then re-orthonormalised in float64)."""
    given = torch.as_tensor(np.asarray(rotation))
    r = given.to(torch.float64)
    tolerance = 1e-9 if given.dtype == torch.float64 else 1e-5
    if r.shape != (3, 3) or not torch.allclose(r @ r.T, torch.eye(3, dtype=torch.float64), atol=tolerance) or \
            torch.det(r) < 0:
        raise FieldError("rotate_signal: rotation must be a 3x3 rotation matrix (orthogonal, determinant 1)")
    u, _, vh = torch.linalg.svd(r)
    return interpolate(values, grid, grid.vertices @ (u @ vh))


def project_image(images: Tensor, points: Tensor, half_width: float = 0.8,
                  rotations: Tensor | None = None) -> Tensor:
    """Project planar images onto the sphere: ``out[b, c, p] = image_b(u, v)`` with ``(u, v) = (x, y) / (1 + z)`` the
    stereographic projection (from the south pole) of ``R_b^T points[p]``; the image spans ``[-half_width,
    half_width]^2`` in ``(u, v)`` (row 0 at ``v = +half_width``, column 0 at ``u = -half_width``), bilinear, zero
    outside and on the southern hemisphere.

    Args:
        images: ``[B, C, H, W]``.
        points: ``[P, 3]`` unit vectors (e.g. ``IcoGrid(r).vertices`` or an equirectangular grid flattened).
        half_width: half the side of the image square in the projection plane (0.8 covers a cap of about 77 deg).
        rotations: ``[B, 3, 3]`` rotation per image (the N/R and R/R settings), or None (digits on the north pole).

    Returns: ``[B, C, P]``.
    """
    if images.dim() != 4 or points.dim() != 2 or points.shape[1] != 3:
        raise FieldError(f"project_image: images must be [B, C, H, W] and points [P, 3]; got {tuple(images.shape)} "
                         f"and {tuple(points.shape)}")
    _check_floating(images, "project_image", " (uint8 digits: .float() / 255)")
    batch = images.shape[0]
    pts = points.to(images.dtype).to(images.device).expand(batch, -1, -1)
    if rotations is not None:
        if rotations.shape != (batch, 3, 3):
            raise FieldError(f"project_image: rotations must be [{batch}, 3, 3], got {tuple(rotations.shape)}")
        pts = pts @ rotations.to(images.dtype).to(images.device)  # rows (R^T p)^T
    denominator = 1 + pts[..., 2]
    north = denominator > 1  # z > 0
    u = pts[..., 0] / denominator.clamp(min=1e-6) / half_width
    v = pts[..., 1] / denominator.clamp(min=1e-6) / half_width
    grid = torch.stack([u, -v], dim=-1)[:, None]  # [B, 1, P, 2]: grid_sample's x to the right, y down
    sampled = torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                                              align_corners=False)[:, :, 0]  # [B, C, P]
    return sampled * north[:, None].to(images.dtype)
