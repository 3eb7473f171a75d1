import math

import numpy as np
import pytest
import torch

from fivefold.errors import FieldError
from fivefold.spheres import (
    IcoGrid,
    interpolate,
    project_image,
    regular_field,
    rotate_signal,
    sample_equirectangular,
    sample_healpix,
    sample_points,
    to_equirectangular,
    trivial_field,
    unit_vectors,
)
from fivefold.testing import assert_close, random_rotation


def smooth(points):
    return points[..., 0] + 2 * points[..., 1] - points[..., 2] ** 2


def test_interpolation_and_rotation():
    grid = IcoGrid(4)
    vertices = grid.vertices
    values = smooth(vertices)
    torch.testing.assert_close(interpolate(values, grid, vertices), values, atol=1e-12, rtol=0)
    rotation = random_rotation(3, torch.Generator().manual_seed(0))
    # arbitrary rotations: interpolation error of a smooth signal at r = 4 (measured 0.0036)
    assert (rotate_signal(values, grid, rotation) - smooth(vertices @ rotation)).abs().max() < 0.01
    matrix = grid.symmetry_group.matrix(7)  # symmetries of the grid: exact, a permutation of the vertices
    exact = torch.empty_like(values)
    exact[grid.rotation_permutation(matrix)] = values
    torch.testing.assert_close(rotate_signal(values, grid, matrix), exact, atol=1e-12, rtol=0)
    with pytest.raises(FieldError, match="rotation matrix"):
        rotate_signal(values, grid, np.diag([1.0, 1.0, -1.0]))


def test_equirectangular_round_trip():
    grid = IcoGrid(4)
    height, width = 64, 128
    lat = math.pi / 2 - (torch.arange(height, dtype=torch.float64) + 0.5) * math.pi / height
    lon = -math.pi + (torch.arange(width, dtype=torch.float64) + 0.5) * 2 * math.pi / width
    points = unit_vectors(lon[None, :].expand(height, width), lat[:, None].expand(height, width))
    image = smooth(points)
    on_grid = sample_equirectangular(image[None], grid)
    assert on_grid.shape == (1, grid.num_vertices)
    assert (on_grid[0] - smooth(grid.vertices)).abs().max() < 0.01
    back = to_equirectangular(on_grid[0], grid, height, width)
    assert back.shape == (height, width) and (back - image).abs().max() < 0.02
    with pytest.raises(FieldError):
        sample_equirectangular(torch.randn(1, 5), grid)


def test_scattered_points():
    grid = IcoGrid(2)
    vertices = grid.vertices
    # samples at the vertices themselves are recovered exactly, in any order
    order = torch.randperm(grid.num_vertices, generator=torch.Generator().manual_seed(0))
    values = smooth(vertices)
    torch.testing.assert_close(sample_points(vertices[order], values[order], grid), values)
    torch.testing.assert_close(sample_points(vertices[order], values[order], grid, "idw"), values)
    generator = torch.Generator().manual_seed(1)
    points = torch.randn(20000, 3, generator=generator, dtype=torch.float64)
    points = points / points.norm(dim=1, keepdim=True)
    assert (sample_points(points, smooth(points), grid, "idw") - values).abs().max() < 0.1
    with pytest.raises(FieldError):
        sample_points(points, smooth(points)[:10], grid)


def test_healpix_map():
    healpy = pytest.importorskip("healpy")  # in the test extra; optional for users (fivefold[sphere])
    nside = 64
    x, y, z = healpy.pix2vec(nside, np.arange(12 * nside**2))
    grid = IcoGrid(3)
    values = sample_healpix(x + 2 * y - z**2, grid)
    assert (values - smooth(grid.vertices)).abs().max() < 0.005  # bilinear on the HEALPix grid (measured 0.0009)


def test_project_image():
    from fivefold.spheres import project_image

    grid = IcoGrid(4)
    image = torch.zeros(1, 1, 28, 28, dtype=torch.float64)
    image[0, 0, 10:18, 10:18] = 1.0  # a bright square in the middle lands around the north pole
    on_sphere = project_image(image, grid.vertices)
    assert on_sphere.shape == (1, 1, grid.num_vertices)
    lit = grid.vertices[on_sphere[0, 0] > 0.5]
    assert len(lit) > 0 and (lit[:, 2] > 0.8).all()  # the square spans about 36 degrees around the pole
    assert (on_sphere[0, 0][grid.vertices[:, 2] < 0] == 0).all()
    # a rotation per image: projecting with R equals rotating the projected signal by R
    rotation = random_rotation(3, torch.Generator().manual_seed(3))
    rotated = project_image(image, grid.vertices, rotations=rotation[None])
    lit_rotated = grid.vertices[rotated[0, 0] > 0.5]
    assert torch.allclose(lit_rotated.mean(0) / lit_rotated.mean(0).norm(),
                          rotation @ (lit.mean(0) / lit.mean(0).norm()), atol=0.05)
    with pytest.raises(FieldError):
        project_image(image[0], grid.vertices)


def test_approximately_equivariant_under_arbitrary_rotations():
    """Between icosahedral rotations, equivariance holds up to interpolation: a smooth signal rotated by random
    rotations in SO(3) gives a relative error of about 0.7 % at r = 4, against about 60 % for planar filters on the
    charts (measured)."""
    from torch import nn

    from fivefold.spheres import IcoConv

    torch.manual_seed(0)
    grid = IcoGrid(4)
    vertices = grid.vertices
    signal = torch.sin(2 * vertices[:, 0]) + vertices[:, 1] * vertices[:, 2] + 0.5 * vertices[:, 2] ** 2
    x = grid.to_charts(signal)[None, None]
    ico = nn.Sequential(IcoConv(trivial_field(1), regular_field(4), r=4), nn.ReLU(),
                        IcoConv(regular_field(4), trivial_field(1), r=4)).double()
    planar = nn.Sequential(nn.Conv3d(1, 4, (1, 3, 3), padding=(0, 1, 1)), nn.ReLU(),
                           nn.Conv3d(4, 1, (1, 3, 3), padding=(0, 1, 1))).double()
    regular = ~grid.singular
    for model, bound in ((ico, lambda e: e < 0.02), (planar, lambda e: e > 0.2)):
        for seed in range(2):
            rotation = random_rotation(3, torch.Generator().manual_seed(seed))
            rotated_input = grid.to_charts(rotate_signal(signal, grid, rotation))[None, None]
            with torch.no_grad():
                output = grid.from_charts(model(x))[0, 0]
                output_of_rotated = grid.from_charts(model(rotated_input))[0, 0]
            expected = rotate_signal(output, grid, rotation)
            error = (output_of_rotated - expected)[regular].norm() / expected[regular].norm()
            assert bound(float(error)), float(error)


def test_integer_values_are_rejected_where_they_would_be_interpolated():
    grid = IcoGrid(2)
    labels = torch.randint(0, 3, (grid.num_vertices,))
    with pytest.raises(FieldError, match="floating point"):
        interpolate(labels, grid, grid.vertices[:5])
    with pytest.raises(FieldError, match="floating point"):
        to_equirectangular(labels, grid, 8, 16)
    with pytest.raises(FieldError, match="floating point"):
        sample_equirectangular(torch.randint(0, 3, (8, 16)), grid)
    with pytest.raises(FieldError, match="uint8"):
        project_image(torch.zeros(1, 1, 28, 28, dtype=torch.uint8), grid.vertices)
    points = unit_vectors(torch.rand(50) * 6 - 3, torch.rand(50) * 3 - 1.5)
    point_labels = torch.randint(0, 3, (50,))
    with pytest.raises(FieldError, match="method='nearest'"):
        sample_points(points, point_labels, grid, method="idw")
    nearest = sample_points(points, point_labels, grid, method="nearest")  # labels stay integer labels
    assert nearest.dtype == torch.int64 and set(nearest.unique().tolist()) <= {0, 1, 2}


def test_sample_points_normalises_directions_and_rejects_no_points():
    grid = IcoGrid(2)
    points = unit_vectors(torch.rand(40, dtype=torch.float64) * 6 - 3, torch.rand(40, dtype=torch.float64) * 3 - 1.5)
    values = smooth(points)
    for method in ("nearest", "idw"):
        scaled = sample_points(3.5 * points, values, grid, method)
        assert torch.allclose(scaled, sample_points(points, values, grid, method), atol=1e-12)
    with pytest.raises(FieldError, match="P = 0"):
        sample_points(torch.zeros(0, 3), torch.zeros(0), grid)


@pytest.mark.float32
def test_rotate_signal_accepts_float32_rotations():
    grid = IcoGrid(3)
    values = smooth(grid.vertices)
    rotation = random_rotation(3, torch.Generator().manual_seed(3))
    exact = rotate_signal(values, grid, rotation.double())
    # float32 rotation: a rotated direction (3 terms) then interpolation over a triangle (3 terms)
    assert_close(rotate_signal(values, grid, rotation.float()), exact.float(), terms=9)
    with pytest.raises(FieldError, match="rotation matrix"):
        rotate_signal(values, grid, 1.01 * rotation.float())


def test_rotation_permutation_at_high_resolution():
    grid = IcoGrid(6)  # 40,962 vertices: the permutation is a k-d tree query, not a [V, V] matrix
    g = grid.symmetry_group
    perm = grid.rotation_permutation(g.matrix(11))
    assert torch.equal(torch.sort(perm).values, torch.arange(grid.num_vertices))
    assert torch.allclose(grid.vertices[perm], grid.vertices @ torch.as_tensor(g.matrix(11)).T, atol=1e-9)
