import numpy as np
import pytest
import torch

from fivefold.errors import FieldError, GroupError
from fivefold.spheres import HEX_DIRECTIONS, IcoGrid, icosahedron


@pytest.mark.parametrize("r", [0, 1, 2, 3])
def test_vertices_and_neighbours(r):
    grid = IcoGrid(r)
    points = grid.vertices.numpy()
    assert points.shape == (10 * 4**r + 2, 3)
    np.testing.assert_allclose(np.linalg.norm(points, axis=1), 1.0, atol=1e-12)
    cosines = points @ points.T
    np.fill_diagonal(cosines, -2)
    assert cosines.max() < 1 - 1e-9  # all distinct
    table = grid.neighbours.numpy()
    distinct = np.array([len(set(row[row >= 0])) for row in table])
    singular = grid.singular.numpy()
    assert singular.sum() == 12 and (distinct[singular] == 5).all() and (distinct[~singular] == 6).all()
    for v, row in enumerate(table):  # the relation is symmetric
        for u in row[row >= 0]:
            assert v in table[u]
    # neighbours are the nearest vertices: no other vertex is closer than the farthest neighbour by more than 20 %
    angles = np.arccos(np.clip(points @ points.T, -1, 1))
    nearest = np.sort(angles, axis=1)[:, 1]
    for v, row in enumerate(table):
        assert (angles[v, row[row >= 0]] <= 1.2 * nearest[v]).all()


@pytest.mark.parametrize("r", [1, 2, 3])
def test_padding_agrees_with_neighbours_and_frames(r):
    """A padded pixel and its in-chart lattice neighbour are mesh neighbours, in the direction given by the frame
    rotation ``pad_shift`` recorded for the seam."""
    grid = IcoGrid(r)
    n, table = grid.n, grid.neighbours.numpy()
    index, shift, singular = grid.pad_index.numpy(), grid.pad_shift.numpy(), grid.singular.numpy()
    checked = 0
    for k in range(5):
        for a in range(n + 2):
            for b in range(2 * n + 2):
                u = index[k, a, b]
                inside = 1 <= a <= n and 1 <= b <= 2 * n
                if u < 0 or inside or singular[u]:
                    continue
                for m, (di, dj) in enumerate(HEX_DIRECTIONS):
                    if 1 <= a + di <= n and 1 <= b + dj <= 2 * n:
                        assert table[u][(m - shift[k, a, b]) % 6] == index[k, a + di, b + dj]
                        checked += 1
    assert checked > 0
    assert set(np.unique(index[:, 1:-1, 1:-1])) == set(range(grid.num_vertices - 2))


@pytest.mark.parametrize("r", [1, 2])
def test_symmetry_group_maps_grid_and_frames(r):
    grid = IcoGrid(r)
    group = grid.symmetry_group
    assert group.order == 60
    table = grid.neighbours
    for h in group.elements:
        perm, shift = grid.rotation_gauge(group.matrix(h))
        assert sorted(perm.tolist()) == list(range(grid.num_vertices))
        regular = ~grid.singular
        for m in range(6):  # every direction turns by the same number of steps
            moved = table[perm][regular, (m + shift[regular]) % 6]
            assert torch.equal(moved, perm[table[regular, m]])


def test_chart_round_trips():
    grid = IcoGrid(2)
    x = torch.randn(3, 4, grid.num_vertices)
    charts = grid.to_charts(x)
    assert charts.shape == (3, 4, 5, 4, 8)
    back = grid.from_charts(charts)
    torch.testing.assert_close(back[..., :-2], x[..., :-2], rtol=0, atol=0)
    torch.testing.assert_close(back[..., -2], x[..., grid.neighbours[grid.north, :5]].mean(-1))
    torch.testing.assert_close(grid.to_charts(grid.from_charts(charts)), charts, rtol=0, atol=0)
    # with the poles kept aside, the round trip is exact on every vertex
    torch.testing.assert_close(grid.from_charts(charts, poles=x[..., -2:]), x, rtol=0, atol=0)
    with pytest.raises(FieldError, match="poles must be"):
        grid.from_charts(charts, poles=x[..., -1:])
    # the chart layout: in chart k, pixel (0, 0) is U_k and pixel (0, n) is L_k
    ico = icosahedron()
    ids = grid.to_charts(torch.arange(grid.num_vertices))
    for k in range(5):
        np.testing.assert_allclose(grid.vertices[ids[k, 0, 0]].numpy(), ico["U"][k], atol=1e-12)
        np.testing.assert_allclose(grid.vertices[ids[k, 0, grid.n]].numpy(), ico["L"][k], atol=1e-12)


def test_bad_input():
    with pytest.raises(GroupError, match="resolution"):
        IcoGrid(-1)
    with pytest.raises(GroupError, match="resolution"):
        IcoGrid(11)
    with pytest.raises(GroupError, match="resolution"):
        IcoGrid(2.0)
    assert IcoGrid(np.int64(2)).num_vertices == 162  # numpy integers are integers
    grid = IcoGrid(1)
    with pytest.raises(FieldError, match="42 vertices"):
        grid.to_charts(torch.randn(2, 40))
    with pytest.raises(FieldError, match=r"\[..., 5, 2, 4\]"):
        grid.from_charts(torch.randn(2, 5, 4, 4))
    with pytest.raises(GroupError, match="onto itself"):
        grid.rotation_permutation(np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))


def _rotate_vertex_field(values, grid, matrix, orientations):
    """The action of a rotation on per-vertex values ``[B, C, V]`` (C = fields * orientations), written from the
    grid's vertex permutation and frame shifts alone: ``out[perm[v]] = values[v]``, orientations turned by ``shift``."""
    perm, shift = grid.rotation_gauge(matrix)
    b, c, v = values.shape
    split = values.reshape(b, c // orientations, orientations, v)
    if orientations > 1:
        index = (torch.arange(orientations)[:, None] - shift[None, :]) % orientations
        split = split.gather(2, index.expand(b, c // orientations, -1, -1))
    out = torch.empty_like(split)
    out[..., perm] = split
    return out.reshape(b, c, v)


def test_from_charts_follows_the_layers_rule_for_regular_fields_poles_included():
    from torch import nn

    from fivefold.spheres import IcoConv, regular_field, rotate_charts, trivial_field

    torch.manual_seed(0)
    grid = IcoGrid(2)
    out_type = regular_field(2)
    net = nn.Sequential(IcoConv(trivial_field(1), regular_field(3)), nn.ReLU(), IcoConv(regular_field(3), out_type))
    net = net.double()
    x = torch.randn(2, 1, 5, grid.n, 2 * grid.n, dtype=torch.float64)
    with torch.no_grad():
        y = grid.from_charts(net(x), field=out_type)
        naive = grid.from_charts(net(x))  # the per-channel pole mean of scalar fields
        worst, worst_naive = 0.0, 0.0
        for g in grid.symmetry_group.elements:
            matrix = grid.symmetry_group.matrix(g)
            moved = grid.from_charts(net(rotate_charts(x, grid, matrix)), field=out_type)
            worst = max(worst, float((moved - _rotate_vertex_field(y, grid, matrix, 6)).abs().max()))
            moved_naive = grid.from_charts(net(rotate_charts(x, grid, matrix)))
            worst_naive = max(worst_naive, float((moved_naive - _rotate_vertex_field(naive, grid, matrix, 6))
                                                 [..., -2:].abs().max()))
    assert worst < 1e-12  # every vertex, the poles included
    assert worst_naive > 1e-3  # reading regular fields as scalars breaks equivariance at the poles
    with pytest.raises(FieldError, match="multiple of 6"):
        grid.from_charts(torch.zeros(1, 4, 5, grid.n, 2 * grid.n), field="regular")
    with pytest.raises(FieldError, match=r"2×regular\(C6\) = 12"):
        grid.from_charts(torch.zeros(1, 6, 5, grid.n, 2 * grid.n), field=out_type)
