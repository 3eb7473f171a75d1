"""Mesh layers: gauge equivariance, invariance to rigid motions and renumbering, slow references of the published
rules, gradchecks, bad input."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from fivefold.errors import FieldError
from fivefold.groups import SO2, FieldType, random_rotation, so2_band_field, so2_irrep, trivial_field
from fivefold.meshes import (
    GEMCNN,
    DiffusionNet,
    DiffusionNetBlock,
    GaugeLinear,
    GEMConv,
    GEMResBlock,
    GeodesicCNN,
    GeodesicConv,
    Mesh,
    RegularNonlinearity,
    cotan_laplacian,
    fourier_features,
    gem_kernel_basis,
    heat_kernel_signature,
    hks_times,
    mesh_operators,
)
from fivefold.testing import gauge_transform, random_gauge

from .conftest import bumpy_sphere


@pytest.fixture(scope="module")
def ops64(sphere_mesh):
    return mesh_operators(sphere_mesh, 24)


@pytest.fixture(autouse=True)
def _float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _rho(k, angle):
    if k == 0:
        return torch.ones(1, 1, dtype=torch.float64)
    c, s = math.cos(k * angle), math.sin(k * angle)
    return torch.tensor([[c, -s], [s, c]], dtype=torch.float64)


# -- kernel basis -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,m,count,own", [(0, 0, 1, 1), (0, 1, 2, 0), (2, 0, 2, 0), (1, 1, 4, 2), (1, 2, 4, 0),
                                           (2, 2, 4, 2), (3, 1, 4, 0)])
def test_kernel_basis_solves_the_constraint(n, m, count, own):
    """The spaces of de Haan et al. (2021), Table 1, and K(theta - g) = rho_out(-g) K(theta) rho_in(g)."""
    basis = gem_kernel_basis(n, m, n + m)
    assert basis.shape[0] == count and gem_kernel_basis(n, m, 0, self_interaction=True).shape[0] == own
    flat = basis.reshape(count, -1)
    torch.testing.assert_close(flat @ flat.T, torch.eye(count, dtype=torch.float64), rtol=0, atol=1e-12)
    gen = torch.Generator().manual_seed(n * 10 + m)
    for theta, g in (torch.rand(2, generator=gen, dtype=torch.float64) * 2 * math.pi for _ in range(5)):
        for b in basis:
            def kernel(t, b=b):
                return torch.einsum("f,fij->ij", fourier_features(torch.tensor([t]), n + m)[0], b)
            torch.testing.assert_close(kernel(float(theta - g)), _rho(m, -float(g)) @ kernel(float(theta))
                                       @ _rho(n, float(g)), rtol=0, atol=1e-12)


# -- GEMConv ----------------------------------------------------------------------------------------------------
FIELDS = [
    (so2_band_field(2, 2), so2_band_field(3, 2)),
    (trivial_field(SO2(), 3), so2_band_field(2, 1)),
    (FieldType(SO2(), [so2_irrep(3), so2_irrep(0), so2_irrep(1)]), FieldType(SO2(), [so2_irrep(2), so2_irrep(0)])),
    (so2_band_field(2, 1), trivial_field(SO2(), 4)),
    # three scalars and one frequency-1 field: the layer pads the latter's components to three channels
    (FieldType(SO2(), [so2_irrep(0), so2_irrep(1), so2_irrep(0), so2_irrep(0)]), so2_band_field(1, 1)),
]


@pytest.mark.parametrize("fields", FIELDS, ids=["band", "scalar-in", "mixed", "scalar-out", "padded"])
def test_gemconv_is_gauge_equivariant(sphere_mesh, ops64, fields):
    in_type, out_type = fields
    torch.manual_seed(0)
    conv = GEMConv(in_type, out_type)
    x = torch.randn(sphere_mesh.num_vertices, in_type.size)
    angles = random_gauge(sphere_mesh.num_vertices, torch.Generator().manual_seed(7))
    out = conv(x, ops64)
    turned = conv(gauge_transform(x, in_type, angles), ops64.regauge(angles))
    torch.testing.assert_close(turned, gauge_transform(out, out_type, angles), rtol=0,
                               atol=1e-10 * float(out.detach().abs().max()))


def _gemconv_reference(conv, x, ops):
    """The paper's rule written out edge by edge: out_p = K_self x_p + mean_q K(theta_pq) rho_in(g_qp) x_q."""
    weight, weight_self = conv.kernel_matrices()  # [F, C_in, C_out], [C_in, C_out]
    freqs = conv.in_frequencies
    out = x @ weight_self
    neighbours = [[] for _ in range(ops.num_vertices)]
    for e, p in enumerate(ops.edge_index[1].tolist()):
        neighbours[p].append(e)
    rows = []
    for edges in neighbours:
        total = torch.zeros(conv.out_type.size, dtype=torch.float64)
        for e in edges:
            q = int(ops.edge_index[0, e])
            transport = torch.block_diag(*[_rho(k, float(ops.transport[e])) for k in freqs])
            phi = fourier_features(ops.angle[e:e + 1], conv.degree)[0]
            kernel = torch.einsum("f,fio->oi", phi, weight)
            total = total + kernel @ (transport @ x[q])
        rows.append(total / max(len(edges), 1))
    out = out + torch.stack(rows)
    if conv.bias is not None:
        out[:, conv.bias_index] += conv.bias
    return out


@pytest.mark.parametrize("fields", FIELDS, ids=["band", "scalar-in", "mixed", "scalar-out", "padded"])
def test_gemconv_matches_the_written_out_rule(patch_mesh, fields):
    """Also checks that the moments the layer skips (complex degrees no equivariant kernel reads) carry nothing."""
    ops = mesh_operators(patch_mesh, 8)
    torch.manual_seed(1)
    in_type, out_type = fields
    conv = GEMConv(in_type, out_type)
    if conv.bias is not None:
        with torch.no_grad():
            conv.bias.normal_()
    x = torch.randn(patch_mesh.num_vertices, in_type.size)
    torch.testing.assert_close(conv(x, ops), _gemconv_reference(conv, x, ops), rtol=0, atol=1e-12)


def test_gemconv_kernel_follows_loaded_bases():
    """The kernel's assembly is cached from the bases; loading other bases (as a checkpoint from another LAPACK
    build may carry) must rebuild it."""
    torch.manual_seed(3)
    conv = GEMConv(so2_band_field(1, 1), so2_band_field(1, 1)).double()
    before = conv.kernel_matrices()[0].detach().clone()
    state = conv.state_dict()
    state["basis_1_1"] = -state["basis_1_1"]
    conv.load_state_dict(state)
    fresh = GEMConv(so2_band_field(1, 1), so2_band_field(1, 1)).double()
    fresh.load_state_dict(state)
    after = conv.kernel_matrices()[0]
    assert not torch.equal(after, before)
    assert torch.equal(after, fresh.kernel_matrices()[0])


@pytest.mark.parametrize("copies", [1, 2])  # one field per frequency, and several (components regrouped)
def test_gemconv_gradcheck(copies):
    mesh = bumpy_sphere(subdivisions=0)
    ops = mesh_operators(mesh, 4)
    torch.manual_seed(2)
    conv = GEMConv(so2_band_field(copies, 1), so2_band_field(1, 2))
    x = torch.randn(mesh.num_vertices, 3 * copies, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: conv(x, ops), (x, conv.weight_1_2, conv.bias))


def test_gemconv_bad_input(ops64):
    conv = GEMConv(so2_band_field(1, 1), so2_band_field(1, 1))
    with pytest.raises(FieldError, match=r"x must be \[162, 3\]"):
        conv(torch.randn(162, 4), ops64)
    with pytest.raises(FieldError, match="SO\\(2\\) irreps"):
        GEMConv(so2_band_field(1, 1), 3)


# -- regular nonlinearity and GEM-CNN ----------------------------------------------------------------------
def test_regular_nonlinearity_is_exact_on_multiples_of_its_sampling():
    field = so2_band_field(3, 2)
    act = RegularNonlinearity(field, samples=10)
    x = torch.randn(50, field.size)
    gen = torch.Generator().manual_seed(0)
    on_grid = random_gauge(50, gen, multiple_of=2 * math.pi / 10)
    torch.testing.assert_close(act(gauge_transform(x, field, on_grid)), gauge_transform(act(x), field, on_grid),
                               rtol=0, atol=1e-12)
    anywhere = random_gauge(50, gen)
    error = (act(gauge_transform(x, field, anywhere)) - gauge_transform(act(x), field, anywhere)).abs().max()
    finer = RegularNonlinearity(field, samples=64)
    error_fine = (finer(gauge_transform(x, field, anywhere)) - gauge_transform(finer(x), field, anywhere)).abs().max()
    assert error_fine < error  # approximate off the grid, better with more samples
    # a band-limited function is reconstructed exactly through the identity "activation"
    identity = RegularNonlinearity(field, samples=10, activation=lambda v: v)
    torch.testing.assert_close(identity(x), x, rtol=0, atol=1e-12)


def test_regular_nonlinearity_bad_field():
    with pytest.raises(FieldError, match="frequencies 0..M"):
        RegularNonlinearity(FieldType(SO2(), [so2_irrep(1), so2_irrep(0)]))
    with pytest.raises(FieldError, match="samples"):
        RegularNonlinearity(so2_band_field(1, 2), samples=4)


# -- GaugeLinear and the residual block -------------------------------------------------------------------------------
def test_gauge_linear_commutes_with_every_frame_rotation():
    in_type = FieldType(SO2(), [so2_irrep(0), so2_irrep(1), so2_irrep(2), so2_irrep(1), so2_irrep(3)])
    out_type = FieldType(SO2(), [so2_irrep(1), so2_irrep(0), so2_irrep(2), so2_irrep(0), so2_irrep(4)])
    torch.manual_seed(0)
    layer = GaugeLinear(in_type, out_type)
    with torch.no_grad():
        layer.bias.normal_()
    x = torch.randn(50, in_type.size)
    angles = torch.rand(50) * 2 * math.pi  # any angle: the map is pointwise, so exact for all
    torch.testing.assert_close(layer(gauge_transform(x, in_type, angles)),
                               gauge_transform(layer(x), out_type, angles), rtol=0, atol=1e-12)
    # frequency 4 is not in the input: its output field is zero
    assert layer(x)[:, -2:].abs().max() == 0


def test_gauge_linear_matches_the_written_out_map():
    """Frequency 1, one field in and out: y = (a I + b J) x with J the quarter turn, plus nothing else."""
    field = FieldType(SO2(), [so2_irrep(1)])
    layer = GaugeLinear(field, field)
    a, b = layer.weight_1.item(), layer.turn_weight_1.item()
    x = torch.randn(7, 2)
    expected = x @ torch.tensor([[a, -b], [b, a]]).T
    torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-14)


def test_gauge_linear_gradcheck_and_bad_input():
    layer = GaugeLinear(so2_band_field(2, 1), so2_band_field(1, 2))
    x = torch.randn(5, so2_band_field(2, 1).size, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))
    with pytest.raises(FieldError, match="GaugeLinear: x must be"):
        layer(torch.randn(5, 4))
    with pytest.raises(FieldError, match="SO\\(2\\) irreps"):
        GaugeLinear(trivial_field(SO2(), 2), "scalars")


def test_gem_res_block_is_gauge_equivariant(sphere_mesh, ops64):
    torch.manual_seed(6)
    in_type, hidden = trivial_field(SO2(), 3), so2_band_field(2, 2)
    block = GEMResBlock(in_type, hidden, hidden, samples=8)
    x = torch.randn(sphere_mesh.num_vertices, 3)
    angles = random_gauge(sphere_mesh.num_vertices, torch.Generator().manual_seed(7), multiple_of=2 * math.pi / 8)
    out = block(x, ops64)
    assert isinstance(block.skip, GaugeLinear)
    torch.testing.assert_close(block(x, ops64.regauge(angles)), gauge_transform(out, hidden, angles), rtol=0,
                               atol=1e-10 * float(out.detach().abs().max()))
    # the same type in and out: the skip is the identity, and it is added
    same = GEMResBlock(hidden, hidden, hidden, samples=8, last=True)
    assert isinstance(same.skip, torch.nn.Identity)
    with torch.no_grad():
        for p in same.conv2.parameters():
            p.zero_()
    torch.testing.assert_close(same(out, ops64), out, rtol=0, atol=0)


def test_residual_gemcnn_is_gauge_invariant_and_needs_even_layers(sphere_mesh, ops64):
    torch.manual_seed(8)
    model = GEMCNN(3, 5, copies=2, max_frequency=2, layers=4, samples=8, head=6, residual=True)
    x = sphere_mesh.vertices
    angles = random_gauge(sphere_mesh.num_vertices, torch.Generator().manual_seed(9), multiple_of=2 * math.pi / 8)
    out = model(x, ops64)
    assert out.shape == (sphere_mesh.num_vertices, 5) and len(model.blocks) == 2
    torch.testing.assert_close(model(x, ops64.regauge(angles)), out, rtol=0,
                               atol=1e-10 * float(out.detach().abs().max()))
    with pytest.raises(FieldError, match="layers must be even"):
        GEMCNN(3, 5, layers=3, residual=True)


def test_gemcnn_scalar_outputs_are_gauge_invariant(sphere_mesh, ops64):
    torch.manual_seed(3)
    model = GEMCNN(3, 5, copies=2, max_frequency=2, layers=3, samples=8)
    x = sphere_mesh.vertices
    angles = random_gauge(sphere_mesh.num_vertices, torch.Generator().manual_seed(4), multiple_of=2 * math.pi / 8)
    out = model(x, ops64)
    torch.testing.assert_close(model(x, ops64.regauge(angles)), out, rtol=0,
                               atol=1e-10 * float(out.detach().abs().max()))


def _renumbered(mesh, seed=0):
    perm = torch.randperm(mesh.num_vertices, generator=torch.Generator().manual_seed(seed))
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(len(perm))
    return Mesh(mesh.vertices[perm], inverse[mesh.faces]), perm


def _moved(mesh, seed=0):
    rotation = random_rotation(3, torch.Generator().manual_seed(seed))
    return Mesh(mesh.vertices @ rotation.T + torch.tensor([1.0, -0.5, 2.0]), mesh.faces)


def _hks(mesh, ops):
    return heat_kernel_signature(ops.evals, ops.evecs, hks_times(ops.evals, 6))


MODELS = {
    "gem": lambda: GEMCNN(6, 4, copies=2, max_frequency=1, layers=2, samples=6),
    "gem-residual": lambda: GEMCNN(6, 4, copies=2, max_frequency=1, layers=4, samples=6, residual=True),
    "diffusion": lambda: DiffusionNet(6, 4, width=8, blocks=2, dropout=0.0),
    "geodesic": lambda: GeodesicCNN(6, 4, width=8, layers=2, rotations=4),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_models_are_invariant_to_rigid_motions(sphere_mesh, ops64, name):
    torch.manual_seed(5)
    model = MODELS[name]()
    out = model(_hks(sphere_mesh, ops64), ops64)
    moved = _moved(sphere_mesh)
    moved_ops = mesh_operators(moved, 24)
    # HKS is recomputed on the moved mesh: the whole pipeline is invariant, up to the eigensolver's round-off
    torch.testing.assert_close(model(_hks(moved, moved_ops), moved_ops), out, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["diffusion"])
def test_models_are_equivariant_to_renumbering(sphere_mesh, ops64, name):
    """DiffusionNet does not depend on the frames, so renumbering vertices (which picks other frame axes) permutes
    its output rows exactly. GEM-CNN's and the geodesic CNN's outputs change with the frames only through their
    sampled nonlinearity / angular pooling (tested above on the exact gauge multiples)."""
    torch.manual_seed(6)
    model = MODELS[name]()
    x = torch.randn(sphere_mesh.num_vertices, 6)
    out = model(x, ops64)
    renumbered, perm = _renumbered(sphere_mesh)
    torch.testing.assert_close(model(x[perm], mesh_operators(renumbered, 24)), out[perm], rtol=1e-6, atol=1e-8)


# -- DiffusionNet ------------------------------------------------------------------------------------------------------
def test_diffusion_block_is_gauge_invariant(sphere_mesh, ops64):
    torch.manual_seed(7)
    block = DiffusionNetBlock(6, dropout=0.0)
    with torch.no_grad():
        block.diffusion.time.uniform_(0.0, 0.1)
    x = torch.randn(sphere_mesh.num_vertices, 6)
    angles = random_gauge(sphere_mesh.num_vertices, torch.Generator().manual_seed(8))
    out = block(x, ops64)
    torch.testing.assert_close(block(x, ops64.regauge(angles)), out, rtol=0, atol=1e-12)


def test_diffusion_matches_the_heat_equation():
    """With the full eigenbasis, spectral diffusion is exp(-t M^-1 L) x."""
    mesh = bumpy_sphere(subdivisions=1)
    n = mesh.num_vertices
    ops = mesh_operators(mesh, n - 1)
    L, M = cotan_laplacian(mesh)
    block = DiffusionNetBlock(3, dropout=0.0)
    times = torch.tensor([0.0, 0.02, 0.3])
    with torch.no_grad():
        block.diffusion.time.copy_(times)
    x = torch.randn(n, 3)
    with torch.no_grad():
        out = block.diffusion(x, ops)
    # the basis holds all eigenvectors but the last (eigsh takes k < n): add that one's decay by hand
    mass = M.diagonal()
    lambda_max = scipy.linalg.eigh(L.toarray(), np.diag(mass), eigvals_only=True).max()
    evecs = ops.evecs.numpy()
    for c, t in enumerate(times.tolist()):
        xc = x[:, c].numpy()
        missing = xc - evecs @ (evecs.T @ (mass * xc))
        heat = scipy.linalg.expm(-t * (L.toarray() / mass[:, None])) @ xc
        # (ARPACK asked for 41 of 42 eigenpairs returns them to about 1e-7)
        np.testing.assert_allclose(out[:, c].numpy() + math.exp(-lambda_max * t) * missing, heat, atol=1e-6)


def test_gradient_features_reference(ops64):
    """tanh(Re(conj(z) (A z))) with z = grad_x + i grad_y and A = real + i imag, written with complex numbers."""
    torch.manual_seed(9)
    block = DiffusionNetBlock(4, dropout=0.0)
    gx, gy = torch.randn(10, 4), torch.randn(10, 4)
    z = torch.complex(gx, gy)
    a = torch.complex(block.gradient_features.real.weight, block.gradient_features.imag.weight)
    expected = torch.tanh((z.conj() * (z @ a.T)).real)
    torch.testing.assert_close(block.gradient_features(gx, gy), expected, rtol=0, atol=1e-12)


def test_diffusion_block_gradcheck():
    mesh = bumpy_sphere(subdivisions=0)
    ops = mesh_operators(mesh, 6)
    torch.manual_seed(10)
    block = DiffusionNetBlock(3, dropout=0.0)
    with torch.no_grad():
        block.diffusion.time.fill_(0.05)
    x = torch.randn(mesh.num_vertices, 3, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, t: block(x, ops), (x, block.diffusion.time))


def test_diffusion_bad_input(ops64):
    with pytest.raises(FieldError, match=r"x must be \[162, 4\]"):
        DiffusionNetBlock(4)(torch.randn(162, 5), ops64)
    with pytest.raises(FieldError, match="width"):
        DiffusionNetBlock(0)


# -- geodesic convolution ----------------------------------------------------------------------------------------------
def test_geodesic_conv_angular_pooling_removes_the_gauge(sphere_mesh, ops64):
    torch.manual_seed(11)
    conv = GeodesicConv(3, 5, rotations=6)
    x = torch.randn(sphere_mesh.num_vertices, 3)
    angles = random_gauge(sphere_mesh.num_vertices, torch.Generator().manual_seed(12), multiple_of=2 * math.pi / 6)
    out = conv(x, ops64)
    torch.testing.assert_close(conv(x, ops64.regauge(angles)), out, rtol=0, atol=1e-9)
    plain = GeodesicConv(3, 5, rotations=1)  # MoNet: depends on the frames
    assert (plain(x, ops64.regauge(angles)) - plain(x, ops64)).abs().max() > 1e-3


def test_geodesic_conv_matches_the_written_out_rule(patch_mesh):
    ops = mesh_operators(patch_mesh, 8)
    torch.manual_seed(13)
    conv = GeodesicConv(2, 3, radial=2, angular=3, rotations=2)
    x = torch.randn(patch_mesh.num_vertices, 2)
    mean_length = float(ops.length.mean())
    rows = []
    for p in range(patch_mesh.num_vertices):
        edges = (ops.edge_index[1] == p).nonzero()[:, 0]
        best = None
        for r in range(2):
            response = torch.zeros(3)
            for j in range(6):
                weights, patch = 0.0, torch.zeros(2)
                for e in edges.tolist():
                    rho = float(ops.length[e]) / mean_length
                    theta = float(ops.angle[e]) + math.pi * r
                    dtheta = math.remainder(theta - float(conv.theta_centre[j].detach()), 2 * math.pi)
                    w = math.exp(-0.5 * ((rho - float(conv.rho_centre[j])) / math.exp(float(conv.log_rho_width[j])))
                                 ** 2 - 0.5 * (dtheta / math.exp(float(conv.log_theta_width[j]))) ** 2)
                    weights += w
                    patch = patch + w * x[int(ops.edge_index[0, e])]
                response = response + (patch / max(weights, 1e-12)) @ conv.weight[j]
            best = response if best is None else torch.maximum(best, response)
        rows.append(best + x[p] @ conv.self_weight + conv.bias)
    torch.testing.assert_close(conv(x, ops), torch.stack(rows), rtol=0, atol=1e-10)


def test_geodesic_conv_gradcheck():
    mesh = bumpy_sphere(subdivisions=0)
    ops = mesh_operators(mesh, 4)
    torch.manual_seed(14)
    conv = GeodesicConv(2, 2, radial=1, angular=3, rotations=1)
    x = torch.randn(mesh.num_vertices, 2, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, c: conv(x, ops), (x, conv.rho_centre))


def test_geodesic_conv_bad_input(ops64):
    with pytest.raises(FieldError, match=r"x must be \[162, 3\]"):
        GeodesicConv(3, 2)(torch.randn(10, 3), ops64)
    with pytest.raises(FieldError, match="rotations"):
        GeodesicConv(3, 2, rotations=0)


# -- isometry robustness -----------------------------------------------------------------------------------------------
def _strip(bend: float) -> Mesh:
    """A 3 x 1 rectangle, triangulated, rolled onto a cylinder of angle ``bend`` (an isometry for any bend)."""
    nx, ny = 30, 10
    u, v = np.meshgrid(np.linspace(0, 3, nx), np.linspace(0, 1, ny), indexing="ij")
    u, v = u.ravel(), v.ravel()
    if bend == 0:
        points = np.stack([u, v, np.zeros_like(u)], axis=1)
    else:
        radius = 3 / bend
        points = np.stack([radius * np.sin(u / radius), v, radius * (1 - np.cos(u / radius))], axis=1)
    index = np.arange(nx * ny).reshape(nx, ny)
    a, b, c, d = index[:-1, :-1].ravel(), index[1:, :-1].ravel(), index[1:, 1:].ravel(), index[:-1, 1:].ravel()
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    return Mesh(torch.from_numpy(points), faces)


def test_diffusionnet_is_robust_to_bending():
    """Bending a strip is an isometry: the intrinsic operators (Laplacian, mass, connection, gradients) do not change
    in the continuum, so neither do DiffusionNet's outputs on intrinsic input (HKS); the discrete change is small."""
    torch.manual_seed(15)
    model = DiffusionNet(6, 3, width=16, blocks=2, dropout=0.0)
    flat, bent = _strip(0.0), _strip(math.pi)
    outs = []
    for mesh in (flat, bent):
        ops = mesh_operators(mesh, 32)
        outs.append(model(_hks(mesh, ops), ops))
    change = float((outs[0] - outs[1]).norm() / outs[0].norm())
    # the bent strip's edges are chords of the cylinder, shorter than on the flat strip by about (h / R)^2 / 24 = 5e-4
    # (h the grid spacing, R the radius): the outputs move by the same order, 2.5e-4 when this was written
    assert change < 1e-3


def test_diffusion_times_learn_from_zero(sphere_mesh, ops64):
    """The times start at 0 (as in the paper) and still get gradients: the clamp must not block them."""
    model = DiffusionNet(3, 2, width=4, blocks=2, dropout=0.0)
    assert all(float(block.diffusion.time.abs().max()) == 0 for block in model.blocks)
    model(sphere_mesh.vertices, ops64).square().sum().backward()
    assert all(float(block.diffusion.time.grad.abs().sum()) > 0 for block in model.blocks)


def test_layers_do_not_depend_on_the_edge_order(sphere_mesh, ops64):
    """The operators' edges listed in another order (so the sparse pattern's permutation is not the identity) give
    the same outputs."""
    from dataclasses import replace

    order = torch.randperm(ops64.edge_index.shape[1], generator=torch.Generator().manual_seed(0))
    shuffled = replace(ops64, edge_index=ops64.edge_index[:, order], angle=ops64.angle[order],
                       transport=ops64.transport[order], length=ops64.length[order])
    grad_order = torch.randperm(ops64.grad_rows.shape[0], generator=torch.Generator().manual_seed(1))
    shuffled = replace(shuffled, grad_rows=ops64.grad_rows[grad_order], grad_cols=ops64.grad_cols[grad_order],
                       grad_x=ops64.grad_x[grad_order], grad_y=ops64.grad_y[grad_order])
    assert not torch.equal(shuffled.edge_csr.perm, torch.arange(len(order)))
    torch.manual_seed(16)
    field = so2_band_field(2, 2)
    x = torch.randn(sphere_mesh.num_vertices, field.size)
    for layer in (GEMConv(field, field), GeodesicConv(field.size, 3, rotations=3)):
        torch.testing.assert_close(layer(x, shuffled), layer(x, ops64), rtol=0, atol=1e-12)
    block = DiffusionNetBlock(field.size, dropout=0.0)
    torch.testing.assert_close(block(x, shuffled), block(x, ops64), rtol=0, atol=1e-12)
