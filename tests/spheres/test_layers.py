import pytest
import torch
from torch import nn

from fivefold.errors import FieldError, OptionError
from fivefold.groups import cyclic
from fivefold.groups import trivial_field as GroupTrivial
from fivefold.spheres import (
    HEX_DIRECTIONS,
    IcoBatchNorm,
    IcoConv,
    IcoGrid,
    IcoGroupPool,
    IcoPool,
    IcoUNet,
    IcoUnpool,
    average_singular,
    chart_action,
    pad_charts,
    regular_field,
    trivial_field,
)
from fivefold.testing import assert_equivariant

R = 2


def _charts(fields, field, r=R, batch=2, seed=0):
    grid = IcoGrid(r)
    channels = fields * (6 if field == "regular" else 1)
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, channels, 5, grid.n, 2 * grid.n, generator=generator, dtype=torch.float64)


def _type(field, n):
    return regular_field(n) if field == "regular" else trivial_field(n)


def _action(grid, field):
    """The 60 rotations acting on chart tensors of the given kind of field (any number of fields)."""
    return chart_action(grid, field)


@pytest.mark.parametrize("in_field,out_field", [("trivial", "regular"), ("regular", "regular"),
                                                ("regular", "trivial"), ("trivial", "trivial")])
def test_conv_exactly_equivariant_under_the_60_rotations(in_field, out_field):
    torch.manual_seed(0)
    grid = IcoGrid(R)
    conv = IcoConv(_type(in_field, 2), _type(out_field, 3), r=R).double()
    with torch.no_grad():
        conv.bias.normal_()
    assert_equivariant(conv, _action(grid, in_field), _action(grid, out_field), _charts(2, in_field),
                       atol=1e-12)


def test_network_exactly_equivariant():
    torch.manual_seed(1)
    grid, coarse = IcoGrid(R), IcoGrid(R - 1)
    net = nn.Sequential(
        IcoConv(trivial_field(1), regular_field(4), r=R), IcoBatchNorm(regular_field(4), r=R), nn.ReLU(),
        IcoPool(regular_field(4), r=R), IcoConv(regular_field(4), regular_field(4), r=R - 1), nn.ReLU(),
        IcoUnpool(regular_field(4), r=R), IcoConv(regular_field(4), trivial_field(2), r=R),
    ).double()
    assert_equivariant(net, _action(grid, "trivial"), _action(grid, "trivial"), _charts(1, "trivial", batch=3),
                       atol=1e-11)
    pooled = nn.Sequential(IcoConv(trivial_field(1), regular_field(3), r=R),
                           IcoPool(regular_field(3), "mean", r=R)).double()
    assert_equivariant(pooled, _action(grid, "trivial"), _action(coarse, "regular"), _charts(1, "trivial"),
                       atol=1e-12)
    group_pool = nn.Sequential(IcoConv(trivial_field(1), regular_field(3), r=R),
                               IcoGroupPool(regular_field(3), r=R)).double()
    assert_equivariant(group_pool, _action(grid, "trivial"), _action(grid, "trivial"), _charts(1, "trivial"),
                       atol=1e-12)


def test_a_planar_filter_is_not_equivariant():
    grid = IcoGrid(R)
    conv = nn.Conv3d(1, 1, (1, 3, 3), padding=(0, 1, 1)).double()
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(conv, _action(grid, "trivial"), _action(grid, "trivial"), _charts(1, "trivial"),
                           atol=1e-6)


def _reference_conv(conv, x):
    """The update rule written out: loop over vertices, their six neighbours and the orientations, carrying each
    neighbour's regular field into the centre's frame with the seam rotation."""
    grid = conv.grid
    n = grid.n
    o_in, o_out = conv.in_orientations, 6
    b = x.shape[0]
    values = grid.from_charts(average_singular(x, grid, conv.in_field))  # [B, C, V] (poles by the singular rule)
    if conv.in_field == "regular":
        values[..., -2:] = values[..., -2:].reshape(b, -1, 6, 2).mean(2, keepdim=True).expand(-1, -1, 6, -1) \
            .reshape(b, -1, 2)
    values = values.reshape(b, conv.in_channels, o_in, -1)
    index, shift = grid.pad_index, grid.pad_shift
    out = torch.zeros(b, conv.out_channels, o_out, grid.num_vertices - 2, dtype=x.dtype)
    w = conv.weight
    for k in range(5):
        for i in range(n):
            for j in range(2 * n):
                v = index[k, i + 1, j + 1]
                taps = [(v, 0)] + [(index[k, i + 1 + di, j + 1 + dj], shift[k, i + 1 + di, j + 1 + dj])
                                   for di, dj in HEX_DIRECTIONS]
                for t in range(o_out):
                    total = torch.zeros(b, conv.out_channels, dtype=x.dtype)
                    for m, (u, s_seam) in enumerate(taps):
                        tap = 0 if m == 0 else 1 + (m - 1 - t) % 6
                        for s in range(o_in):
                            feature = values[:, :, (s - s_seam) % o_in, u]  # the neighbour's field in v's frame
                            relative = (s - t) % 6 if o_in > 1 else 0
                            total += feature @ w[:, :, relative, tap].T
                    out[:, :, t, v] = total + conv.bias
    if conv.out_field == "trivial":
        out = out.mean(dim=2, keepdim=True)
    charts = out.reshape(b, -1, 5, n, 2 * n)
    return average_singular(charts, grid, conv.out_field)


@pytest.mark.parametrize("in_field,out_field", [("trivial", "regular"), ("regular", "regular"), ("regular", "trivial")])
def test_conv_matches_the_slow_reference(in_field, out_field):
    torch.manual_seed(2)
    conv = IcoConv(_type(in_field, 2), _type(out_field, 2), r=1).double()
    with torch.no_grad():
        conv.bias.normal_()
    x = _charts(2, in_field, r=1)
    torch.testing.assert_close(conv(x), _reference_conv(conv, x))


def test_pad_charts_reads_the_neighbour_table():
    grid = IcoGrid(2)
    ids = grid.to_charts(torch.arange(grid.num_vertices, dtype=torch.float64))[None, None]
    padded = pad_charts(ids, grid)
    n = grid.n
    for k in range(5):
        for i in range(n):
            for j in range(2 * n):
                v = int(ids[0, 0, k, i, j])
                for m, (di, dj) in enumerate(HEX_DIRECTIONS):
                    u = float(padded[0, 0, k, i + 1 + di, j + 1 + dj])
                    expected = int(grid.neighbours[v, m])
                    if grid.singular[v]:
                        continue
                    if grid.singular[expected]:  # an icosahedron vertex: the mean of its five neighbours
                        row = grid.neighbours[expected]
                        assert u == pytest.approx(float(torch.unique(row[row >= 0]).double().mean()))
                    else:
                        assert u == expected


def test_gradients_and_shapes():
    torch.manual_seed(0)
    conv = IcoConv(trivial_field(1), regular_field(2), r=2)
    x = torch.randn(2, 1, 5, 4, 8, requires_grad=True)
    y = conv(x)
    assert y.shape == (2, 12, 5, 4, 8)
    y.square().sum().backward()
    assert conv.weight.grad.abs().sum() > 0 and x.grad.abs().sum() > 0
    assert IcoPool(regular_field(2), r=2)(y).shape == (2, 12, 5, 2, 4)
    assert IcoUnpool(regular_field(2), r=3)(y).shape == (2, 12, 5, 8, 16)
    assert IcoGroupPool(regular_field(2), r=2)(y).shape == (2, 2, 5, 4, 8)
    assert set(conv.state_dict()) == {"weight", "bias"}


def test_bad_input():
    conv = IcoConv(regular_field(2), regular_field(3), r=2)
    with pytest.raises(FieldError, match=r"2×regular\(C6\)"):
        conv(torch.randn(1, 10, 5, 4, 8))
    with pytest.raises(FieldError):
        conv(torch.randn(1, 12, 5, 4, 4))
    with pytest.raises(OptionError, match=r"\('trivial', 'regular'\)"), pytest.warns(DeprecationWarning):
        IcoConv(1, 1, "vector", "regular", r=1)
    with pytest.raises(FieldError, match="multiples of 6"):
        pad_charts(torch.randn(1, 4, 5, 4, 8), IcoGrid(2), "regular")
    with pytest.raises(FieldError, match=r"expected 1×regular\(C6\) = 6 channels, got 12"):
        pad_charts(torch.randn(1, 12, 5, 4, 8), IcoGrid(2), regular_field(1))
    with pytest.raises(FieldError, match=r"4×regular\(C6\)"):
        IcoBatchNorm(regular_field(4), r=2)(torch.randn(2, 12, 5, 4, 8))
    with pytest.raises(FieldError, match=r"4×regular\(C6\) = 24 channels"):
        IcoPool(regular_field(4), r=2)(torch.randn(2, 12, 5, 4, 8))
    with pytest.raises(FieldError, match="gauge group C6"):
        IcoConv(GroupTrivial(cyclic(4), 1), regular_field(1))
    with pytest.raises(FieldError, match="all trivial or all regular"):
        IcoConv(regular_field(1) + trivial_field(1), regular_field(1))
    with pytest.raises(FieldError, match="in_type must be regular"):
        IcoGroupPool(trivial_field(2))
    with pytest.raises(OptionError, match=r"mode must be one of \('max', 'mean'\)"):
        IcoPool(regular_field(1), "median")


@pytest.mark.parametrize("old, new", [
    (lambda: IcoConv(2, 3, "regular", "trivial", r=2), lambda: IcoConv(regular_field(2), trivial_field(3), r=2)),
    (lambda: IcoConv(1, 2), lambda: IcoConv(trivial_field(1), regular_field(2))),
    (lambda: IcoBatchNorm(3, r=2), lambda: IcoBatchNorm(regular_field(3), r=2)),
    (lambda: IcoBatchNorm(2, "trivial"), lambda: IcoBatchNorm(trivial_field(2))),
])
def test_deprecated_sphere_forms_warn_and_build_the_same_layer(old, new):
    torch.manual_seed(0)
    with pytest.warns(DeprecationWarning, match="deprecated"):
        legacy = old()
    torch.manual_seed(0)
    current = new()
    assert legacy.in_type == current.in_type and repr(legacy) == repr(current)
    for key, value in current.state_dict().items():  # same shapes, same draws: checkpoints and seeds still hold
        assert torch.equal(legacy.state_dict()[key], value)


def test_field_type_layers_are_equivariant_through_actions():
    torch.manual_seed(2)
    grid = IcoGrid(R)
    hidden = regular_field(2)
    net = nn.Sequential(IcoConv(trivial_field(1), hidden), IcoBatchNorm(hidden), nn.ReLU(), IcoPool(hidden),
                        IcoUnpool(hidden), IcoGroupPool(hidden)).double().eval()
    report = assert_equivariant(net, chart_action(grid, trivial_field(1)), chart_action(grid, trivial_field(2)),
                                _charts(1, "trivial"), atol=1e-11)
    assert len(report.errors) == 60


@pytest.mark.parametrize("make", [lambda: IcoConv(trivial_field(1), regular_field(1), r=0),
                                  lambda: IcoPool(trivial_field(1), r=1), lambda: IcoPool(trivial_field(1), r=0),
                                  lambda: IcoUnpool(trivial_field(1), r=1),
                                  lambda: IcoGroupPool(regular_field(1), r=0),
                                  lambda: IcoBatchNorm(regular_field(1), r=0),
                                  lambda: IcoUNet(1, 2, 2, widths=(4, 4, 4)),
                                  lambda: IcoConv(trivial_field(1), regular_field(1), r=True)])
def test_resolutions_too_coarse_are_rejected_at_construction(make):
    with pytest.raises(FieldError, match="r >="):
        make()


def test_batch_norm_checks_the_grid_and_field_count():
    with pytest.raises(FieldError, match="expected a chart tensor"):
        IcoBatchNorm(trivial_field(1), r=2)(torch.randn(2, 1, 5, 8, 16))  # an r = 3 tensor
    with pytest.raises(FieldError, match="positive integer"), pytest.warns(DeprecationWarning):
        IcoBatchNorm(0, r=2)


@pytest.mark.parametrize("field", ["trivial", "regular"])
def test_custom_autograd_rules_gradcheck(field):
    grid = IcoGrid(1)
    x = _charts(1, field, r=1, batch=1).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: pad_charts(t, grid, field), (x,))
    assert torch.autograd.gradcheck(lambda t: average_singular(t * 1.0, grid, field, inplace=True), (x,))
    conv = IcoConv(_type(field, 1), regular_field(2), r=1).double()
    assert torch.autograd.gradcheck(conv, (x,))


@pytest.mark.parametrize("mode", ["max", "mean"])
def test_pool_matches_the_neighbourhood_rule(mode):
    """Each coarse vertex takes the max / mean of its fine vertex and that vertex's six neighbours (scalar fields:
    regular ones also turn at the seams, which the equivariance tests cover)."""
    fine, coarse = IcoGrid(3), IcoGrid(2)
    x = average_singular(_charts(3, "trivial", r=3), fine)
    pooled = IcoPool(trivial_field(x.shape[1]), mode, r=3)(x)
    values = fine.from_charts(x)  # [B, C, V]
    m, n = coarse.n, fine.n
    singular = coarse.singular[:-2].reshape(5, m, 2 * m)
    for k in range(5):
        for a in range(m):
            for b in range(2 * m):
                if singular[k, a, b]:
                    continue
                vertex = k * n * 2 * n + 2 * a * 2 * n + 2 * b
                block = torch.cat([torch.tensor([vertex]), fine.neighbours[vertex]])
                taps = values[..., block]
                expected = taps.amax(dim=-1) if mode == "max" else taps.mean(dim=-1)
                torch.testing.assert_close(pooled[..., k, a, b], expected)


def test_batch_norm_statistics_skip_the_icosahedron_vertices():
    grid = IcoGrid(3)
    norm = IcoBatchNorm(regular_field(2), r=3).double()
    x = 3 + 2 * _charts(2, "regular", r=3, batch=4)
    singular_pixels = torch.nonzero(grid.singular[:-2]).flatten()
    mean, var, count = norm._statistics(x, singular_pixels)
    regular = torch.nonzero(~grid.singular[:-2]).flatten()
    sample = x.reshape(4, 2, 6, -1)[..., regular].transpose(0, 1).reshape(2, -1)
    assert count == sample.shape[1]
    torch.testing.assert_close(mean, sample.mean(dim=1))
    torch.testing.assert_close(var, sample.var(dim=1, unbiased=False))
    out = norm(x).reshape(4, 2, 6, -1)[..., regular].transpose(0, 1).reshape(2, -1)
    torch.testing.assert_close(out.mean(dim=1), torch.zeros(2, dtype=torch.float64), atol=1e-10, rtol=0)
    torch.testing.assert_close(out.var(dim=1, unbiased=False), torch.ones(2, dtype=torch.float64), atol=1e-4, rtol=0)


def test_unpool_against_the_geometry():
    """Fine vertices on a coarse vertex keep its value; the others (edge midpoints) take the mean of the two coarse
    vertices nearest to them, found from the vertex positions alone (the 12 icosahedron vertices follow the
    singular rule, in the input as in the output)."""
    fine, coarse = IcoGrid(3), IcoGrid(2)
    torch.manual_seed(0)
    charts = average_singular(torch.randn(1, 1, 5, 4, 8, dtype=torch.float64), coarse, "trivial")
    values = coarse.from_charts(charts)[0, 0]
    out = fine.from_charts(IcoUnpool(trivial_field(charts.shape[1]), r=3)(charts))[0, 0]
    closeness = fine.vertices @ coarse.vertices.T  # [V_fine, V_coarse] cosines
    top = closeness.topk(2, dim=1)
    on_coarse = top.values[:, 0] > 1 - 1e-12
    midpoint = ~on_coarse & ~fine.singular
    expected = torch.where(on_coarse, values[top.indices[:, 0]], values[top.indices].mean(dim=1))
    regular = ~fine.singular
    torch.testing.assert_close(out[regular], expected[regular])
    assert midpoint.sum() == fine.num_vertices - coarse.num_vertices


def _geometric_rings(grid: IcoGrid) -> torch.Tensor:
    """``[V, 6]``: each vertex's six nearest vertices, ordered counter-clockwise about the outward normal, found from
    the positions alone (no chart, seam or frame table); the 12 icosahedron vertices get -1."""
    positions = grid.vertices
    rings = torch.full((grid.num_vertices, 6), -1, dtype=torch.int64)
    nearest = (positions @ positions.T).topk(7, dim=1).indices[:, 1:]
    for v in torch.nonzero(~grid.singular).flatten().tolist():
        p = positions[v]
        tangent = positions[nearest[v]] - p
        e1 = tangent[0] - (tangent[0] @ p) * p
        e2 = torch.linalg.cross(p, e1)
        angles = torch.atan2(tangent @ e2, tangent @ e1)
        rings[v] = nearest[v][torch.argsort(angles)]
    return rings


def test_lifting_conv_agrees_with_a_reference_built_from_positions_only():
    """``IcoConv`` trivial -> regular against ``y_t(v) = w_0 x(v) + sum_k w_{1+k} x(ring_{k + t + s_v}(v))`` with the
    ring of six neighbours ordered from the positions alone: the gauge (each vertex's first direction, ``s_v``) is
    free, but it must be one cyclic shift per vertex for all six orientations, and the sense of rotation must be the
    same at every vertex, seams included. (A scalar input does not turn at a seam: the seams' frame rotation for
    regular inputs is checked by the exact-equivariance tests, which fail when one seam pixel's shift is off by one.)"""
    torch.manual_seed(0)
    grid = IcoGrid(2)
    conv = IcoConv(trivial_field(1), regular_field(1), r=2, bias=False).double()
    x = average_singular(torch.randn(1, 1, 5, 4, 8, dtype=torch.float64), grid)
    with torch.no_grad():
        out = grid.from_charts(conv(x))[0].T  # [V, 6]: orientation t at each vertex
    values = grid.from_charts(x)[0, 0]
    w = conv.weight[0, 0, 0].detach()  # [7]
    rings = _geometric_rings(grid)
    senses = set()
    for v in torch.nonzero(~grid.singular).flatten().tolist():
        found = False
        for sense, ring in (("ccw", rings[v]), ("cw", rings[v].flip(0))):
            neighbour_values = values[ring]
            for shift in range(6):
                reference = torch.stack([w[0] * values[v] + sum(w[1 + k] * neighbour_values[(k + t + shift) % 6]
                                                                for k in range(6)) for t in range(6)])
                if torch.allclose(out[v], reference, atol=1e-10):
                    senses.add(sense)
                    found = True
        assert found, f"vertex {v}: no gauge matches the reference"
    assert len(senses) == 1  # one sense of rotation for the whole grid


def test_layers_without_a_resolution_follow_their_input():
    """Built without ``r``, each layer reads the resolution from its input and gives what the layer built for that
    resolution gives, with the same weights, at every resolution."""
    torch.manual_seed(0)
    free = IcoConv(trivial_field(1), regular_field(2)).double()
    for r in (1, 2, 3):
        fixed = IcoConv(trivial_field(1), regular_field(2), r=r).double()
        fixed.load_state_dict(free.state_dict())
        x = _charts(1, "trivial", r=r)
        y = free(x)
        torch.testing.assert_close(y, fixed(x), rtol=0, atol=0)
        hidden = regular_field(2)
        torch.testing.assert_close(IcoGroupPool(hidden)(y), IcoGroupPool(hidden, r=r)(y), rtol=0, atol=0)
        torch.testing.assert_close(IcoUnpool(hidden)(y), IcoUnpool(hidden, r=r + 1)(y), rtol=0, atol=0)
        norm, norm_r = IcoBatchNorm(hidden).double(), IcoBatchNorm(hidden, r=r).double()
        torch.testing.assert_close(norm(y), norm_r(y), rtol=0, atol=0)
        if r >= 2:
            torch.testing.assert_close(IcoPool(hidden)(y), IcoPool(hidden, r=r)(y), rtol=0, atol=0)
    grid = IcoGrid(2)
    assert_equivariant(nn.Sequential(IcoConv(trivial_field(1), regular_field(2)), IcoPool(regular_field(2)),
                                     IcoConv(regular_field(2), trivial_field(1)))
                       .double(), _action(grid, "trivial"), _action(IcoGrid(1), "trivial"), _charts(1, "trivial"),
                       atol=1e-12)
    with pytest.raises(FieldError, match="r >= 2"):
        IcoPool(trivial_field(1))(_charts(1, "trivial", r=1))
    with pytest.raises(FieldError, match="chart tensor"):
        free(torch.randn(1, 1, 5, 3, 6))
    with pytest.raises(FieldError, match="r=2"):
        IcoConv(trivial_field(1), regular_field(1), r=2)(_charts(1, "trivial", r=3))
