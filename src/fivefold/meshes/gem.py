"""Gauge-equivariant mesh convolution (GEM-CNN) and its regular nonlinearity.

de Haan, Weiler, Cohen & Welling, "Gauge Equivariant Mesh CNNs: Anisotropic convolutions on geometric graphs",
ICLR 2021. A feature at vertex ``p`` is a sum of SO(2) irreps expressed in ``p``'s tangent frame. The layer is

    out_p = K_self x_p + (1 / deg p) sum_{q -> p} K_neigh(theta_pq) rho_in(g_{q->p}) x_q

with ``theta_pq`` the angle of ``q`` in ``p``'s frame, ``g_{q->p}`` the connection (parallel transport of ``x_q``
into ``p``'s frame), and kernels that satisfy the gauge constraint

    K_neigh(theta - g) = rho_out(-g) K_neigh(theta) rho_in(g),     K_self = rho_out(-g) K_self rho_in(g),

so that turning every frame by any angle turns the output as the input (Sec. 4 of the paper). The paper writes the
solutions out (its Table 1); here they are computed as the null space of the constraint over trigonometric
polynomials (``gem_kernel_basis``), which gives the same spaces (1, 2, 2 and 4 functions for frequencies 0->0,
0->m, n->0 and n->m) and is tested against the constraint directly. The paper aggregates with a sum; we average over
the neighbours so the layer's scale does not depend on vertex degree (a per-vertex scalar, so still equivariant).

Implementation: ``K_neigh(theta)`` is a trigonometric polynomial in ``theta`` (from input frequency ``n`` only the
degrees ``|m - n|`` and ``m + n`` occur) and ``rho_n(g) = cos(n g) + sin(n g) J``, so the sum over the edges is a
set of sparse moments followed by a dense product with the kernel's coefficients; the neighbour's row is read once
per edge and no per-edge feature tensor is formed. For scalar inputs the moments are the real Fourier terms
``sum_e phi_f(theta_e) x_q``. For an input of frequency ``n > 0``, read as complex numbers ``a + i b`` per field
(``i`` acting as ``J``), they are ``A_k = sum_e e^{i (k theta_e + n g_e)} (a + i b)_q``, only for the degrees an
equivariant kernel reads, ``k = m - n`` and ``k = -(m + n)``: for fields of frequencies 0 and 1 that is 3 complex
moments of each frequency-1 field where the real Fourier terms need 5 (``GEMConv._block_map`` rewrites the
coefficients). Each output frequency ``m`` reads only its own moments (the Fourier terms of degree ``m``, the heads
``k`` that lead to ``m``, the own components of frequency ``m``), so the dense product is one block per output
frequency: for 16 fields of frequencies 0..1, 64 rows into the 16 scalars and 128 rows into the 32 others instead of
192 rows into all 48, 56 % of the multiply-adds. One fused op (``fivefold.ops.spmm_terms_linear``) forms the
moments a block of vertices at a time and applies the blocks while they are in the cache; ``_MomentLayout`` says
where each moment goes. Each complex moment is one of the op's rotations: per edge it reads ``cos`` and ``sin`` of
its phase and the field's two components once (9 per-edge values for fields of frequencies 0..1 in and out, where
the same moments as separate real terms need 15).
"""

from __future__ import annotations

import math
from functools import cache
from typing import NamedTuple

import numpy as np
import scipy.sparse
import torch
from torch import Tensor, nn

from fivefold.errors import FieldError
from fivefold.groups import SO2, FieldType, so2_frequencies
from fivefold.meshes.precompute import MeshOperators
from fivefold.ops import spmm_terms_linear

__all__ = ["GEMConv", "GEMResBlock", "GaugeLinear", "RegularNonlinearity", "gem_kernel_basis", "fourier_features"]


def _rho(k: int, angle: np.ndarray) -> np.ndarray:
    """``[..., d, d]`` the frequency-``k`` irrep at ``angle``."""
    if k == 0:
        return np.ones(np.shape(angle) + (1, 1))
    c, s = np.cos(k * angle), np.sin(k * angle)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def _fourier(angle: np.ndarray, degree: int) -> np.ndarray:
    """``[..., 1 + 2 degree]``: ``1, cos t, sin t, cos 2t, sin 2t, ...``."""
    columns = [np.ones_like(angle)]
    for k in range(1, degree + 1):
        columns += [np.cos(k * angle), np.sin(k * angle)]
    return np.stack(columns, -1)


def fourier_features(angle: Tensor, degree: int) -> Tensor:
    """``[E, 1 + 2 degree]``: ``1, cos t, sin t, ..., cos(degree t), sin(degree t)`` of each angle."""
    columns = [torch.ones_like(angle)]
    for k in range(1, degree + 1):
        columns += [torch.cos(k * angle), torch.sin(k * angle)]
    return torch.stack(columns, -1)


@cache
def gem_kernel_basis(n: int, m: int, degree: int, *, self_interaction: bool = False) -> Tensor:
    """An orthonormal basis of the gauge-equivariant kernels from frequency ``n`` to frequency ``m``.

    Args:
        n, m: input and output frequencies.
        degree: the highest Fourier degree of the kernel's angle dependence (``>= n + m`` gives the full space).
        self_interaction: the angle-independent kernels ``K_self`` instead.

    Returns:
        ``[B, 1 + 2 degree, d_m, d_n]`` float64: kernel ``b`` is ``K_b(theta) = sum_f basis[b, f] phi_f(theta)``
        (``phi = fourier_features``); for ``self_interaction`` only ``f = 0`` is non-zero.
    """
    d_n, d_m = (1 if n == 0 else 2), (1 if m == 0 else 2)
    terms = 1 if self_interaction else 1 + 2 * degree
    rng = np.random.default_rng(n * 1000 + m)
    samples = 8 * terms + 16
    theta, g = rng.uniform(0, 2 * np.pi, samples), rng.uniform(0, 2 * np.pi, samples)
    phi_shift = _fourier(theta - g, degree)[:, :terms]  # [S, F]
    phi = _fourier(theta, degree)[:, :terms]
    rho_out, rho_in = _rho(m, -g), _rho(n, g)  # [S, dm, dm], [S, dn, dn]
    # constraint, linear in the coefficients c[f, i, j]:  sum_f c_f (phi_f(theta - g) - rho_out c_f rho_in phi_f) = 0
    rows = []
    eye_out, eye_in = np.eye(d_m), np.eye(d_n)
    for s in range(samples):
        left = np.kron(eye_out, eye_in)  # vec(c) -> vec(c)
        right = np.kron(rho_out[s], rho_in[s].T)  # vec(A c B) = (A kron B^T) vec(c) for row-major vec
        rows.append(np.concatenate([phi_shift[s, f] * left - phi[s, f] * right for f in range(terms)], axis=1))
    system = np.concatenate(rows, axis=0)
    _, singular, vt = np.linalg.svd(system)
    rank = int((singular > 1e-9 * singular[0]).sum())
    null = vt[rank:]  # [B, terms * dm * dn], orthonormal
    basis = null.reshape(-1, terms, d_m, d_n)
    # only the Fourier degrees |m - n| and m + n survive; clear the round-off elsewhere so the layer can skip them
    basis = np.where(np.abs(basis) < 1e-10, 0.0, basis)
    # a fixed sign per basis kernel (the rotation within the null space may still differ between LAPACK builds;
    # GEMConv saves its bases with its weights for that reason)
    basis = np.stack([b * np.sign(b.flat[np.flatnonzero(np.abs(b) > 1e-8)[0]]) for b in basis]) if len(basis) else \
        basis
    full = np.zeros((basis.shape[0], 1 + 2 * degree, d_m, d_n))
    full[:, :terms] = basis
    return torch.from_numpy(full)


def _channel_groups(field_type: FieldType) -> dict[int, np.ndarray]:
    """Frequency -> ``[fields, d]`` channel indices of the fields of that frequency."""
    groups: dict[int, list[list[int]]] = {}
    start = 0
    for k in so2_frequencies(field_type):
        d = 1 if k == 0 else 2
        groups.setdefault(k, []).append(list(range(start, start + d)))
        start += d
    return {k: np.array(v, dtype=np.int64) for k, v in groups.items()}


def _check_so2_types(where: str, in_type: FieldType, out_type: FieldType) -> None:
    for name, field in (("in_type", in_type), ("out_type", out_type)):
        if not isinstance(field, FieldType) or not isinstance(field.group, SO2):
            raise FieldError(f"{where}: {name} must be a field type of SO(2) irreps, got {field!r}")


def _quarter_turn(frequencies: list[int]) -> tuple[Tensor, Tensor]:
    """Index and sign with ``J x = x[:, index] * sign``: ``(a, b) -> (-b, a)`` on every 2-dimensional field, zero on
    scalars, so that ``rho_n(g) = cos(ng) + sin(ng) J``."""
    index, sign, start = [], [], 0
    for k in frequencies:
        if k == 0:
            index.append(start)
            sign.append(0.0)
            start += 1
        else:
            index += [start + 1, start]
            sign += [-1.0, 1.0]
            start += 2
    return torch.tensor(index, dtype=torch.long), torch.tensor(sign)


def _edge_weights(ops: MeshOperators, key: tuple, compute) -> Tensor:
    """``compute()`` memoised on the operators object (geometry only), unless the angles carry gradients."""
    if ops.angle.requires_grad or ops.transport.requires_grad:
        return compute()
    return ops.memo(key, compute)


def _edge_terms(ops: MeshOperators, layout: _MomentLayout, dtype: torch.dtype) -> Tensor:
    """``[nnz, T + 2Q]``: each term's per-edge weight (``_MomentLayout.term_specs``), then each rotation's
    ``(cos phi, sin phi)`` with ``phi = k theta + n g`` (``rotation_specs``), divided by the target's degree, in the
    edge CSR's entry order."""

    def compute() -> Tensor:
        csr = ops.edge_csr
        theta = ops.angle.to(dtype)[csr.perm]
        transport = ops.transport.to(dtype)[csr.perm]
        norm = (1.0 / csr.degree().clamp_min(1).to(dtype))[csr.rows]
        columns = []
        for kind, k, n in layout.term_specs:  # weight kind(k theta + n g)
            phase = k * theta + n * transport
            columns.append({"cos": torch.cos, "sin": torch.sin}[kind](phase))
        for k, n in layout.rotation_specs:
            phase = k * theta + n * transport
            columns += [torch.cos(phase), torch.sin(phase)]
        if not columns:
            return theta.new_zeros(csr.nnz, 0)
        return torch.stack(columns, dim=1) * norm[:, None]

    return _edge_weights(ops, ("gem_edge_terms", layout.key, dtype), compute)


class _Group(NamedTuple):
    """One group of ``C`` moments: ``own`` (the vertex's own component), ``fourier`` (a scalar input's real Fourier
    term ``term``) or ``re`` / ``im`` (a part of ``A_head`` for input frequency ``frequency``); ``channels``: the
    input channel of each field (fewer than ``C`` where the frequency has fewer fields)."""

    kind: str
    channels: tuple[int, ...]
    term: int = 0
    frequency: int = 0
    head: int = 0


class _MomentLayout:
    """How ``GEMConv`` lays out its moments for ``fivefold.ops.spmm_terms_linear``.

    The input is read component by component, ``[V, P, C]``: the scalars, then for each frequency ``n > 0`` its
    fields' first and second components, ``C`` the most fields of any input frequency (zero channels pad the
    others). The moments form one block of groups per output frequency ``m``, each group ``C`` wide, holding only
    what ``m`` reads: the own components of frequency ``m``; a scalar input's Fourier terms of degree ``m``
    (``1`` for ``m = 0``, ``cos m theta`` and ``sin m theta`` otherwise); for each input frequency ``n > 0`` the real
    and imaginary parts of ``A_k`` for ``k = m - n`` and, if ``m > 0``, ``k = -(m + n)``. The block's weight maps its
    groups to ``m``'s output channels, component by component (``_block_map``). For 16 fields of frequencies 0..1 in
    and out: 4 groups (64 rows) into the 16 scalar outputs and 8 groups (128 rows) into the 32 others, where one
    product over every moment would have 192 rows into all 48 outputs."""

    def __init__(self, in_groups: dict[int, np.ndarray], out_groups: dict[int, np.ndarray]) -> None:
        self.channels = max(len(index) for index in in_groups.values())
        parts: dict[tuple[int, int], int] = {}  # (frequency, component) -> part
        gather = []
        num_in = sum(index.size for index in in_groups.values())
        for n, index in sorted(in_groups.items()):
            for component in range(index.shape[1]):
                parts[(n, component)] = len(parts)
                column = index[:, component].tolist()
                gather += column + [num_in] * (self.channels - len(column))  # num_in: the zero column
        self.padded = any(len(index) < self.channels for index in in_groups.values())
        self.input_gather = np.asarray(gather, dtype=np.int64)
        # a band of equal copies (frequencies 0..M side by side, each copy its own field) is a transpose away
        self.input_is_transpose = not self.padded and np.array_equal(
            self.input_gather, np.arange(num_in).reshape(self.channels, -1).T.reshape(-1))
        specs: list[tuple[str, int, int]] = []
        rotation_specs: list[tuple[int, int]] = []
        term_index, own_index, rotation_index = [], [], []
        self.block_groups: list[list[_Group]] = []
        self.block_columns: list[list[int]] = []
        for m, out_index in sorted(out_groups.items()):
            # (group, its terms as (part, weight spec), its own part or None, the rotation it starts or None)
            entries: list[tuple[_Group, list[tuple[int, tuple[str, int, int]]], int | None,
                                tuple[int, int, int, int] | None]] = []
            if m in in_groups:
                for component in range(in_groups[m].shape[1]):
                    entries.append((_Group("own", tuple(in_groups[m][:, component].tolist())), [],
                                    parts[(m, component)], None))
            if 0 in in_groups:
                scalars = tuple(in_groups[0][:, 0].tolist())
                for term, kind in ([(0, "cos")] if m == 0 else [(2 * m - 1, "cos"), (2 * m, "sin")]):
                    entries.append((_Group("fourier", scalars, term=term), [(parts[(0, 0)], (kind, m, 0))], None,
                                    None))
            for n in sorted(k for k in in_groups if k > 0):
                for k in [m - n] + ([-(m + n)] if m > 0 else []):
                    # exp(i phi) (a + i b) = (cos phi a - sin phi b) + i (sin phi a + cos phi b), phi = k theta + n g:
                    # one rotation of the parts (a, b) into the groups (re, im)
                    entries.append((_Group("re", tuple(in_groups[n][:, 0].tolist()), frequency=n, head=k), [], None,
                                    (parts[(n, 0)], parts[(n, 1)], k, n)))
                    entries.append((_Group("im", tuple(in_groups[n][:, 1].tolist()), frequency=n, head=k), [], None,
                                    None))
            first = sum(len(groups) for groups in self.block_groups)
            for group, (_, terms, own, rotation) in enumerate(entries, start=first):
                term_index += [(group, part) for part, _ in terms]
                specs += [spec for _, spec in terms]
                if own is not None:
                    own_index.append((group, own))
                if rotation is not None:
                    part_re, part_im, k, n = rotation
                    rotation_index.append((group, group + 1, part_re, part_im))
                    rotation_specs.append((k, n))
            self.block_groups.append([entry for entry, _, _, _ in entries])
            self.block_columns.append(out_index.T.reshape(-1).tolist())  # component by component
        self.term_specs = specs
        self.rotation_specs = rotation_specs
        self.key = (tuple(specs), tuple(rotation_specs))
        self.term_index = np.asarray(term_index, dtype=np.int64).reshape(-1, 2)
        self.rotation_index = np.asarray(rotation_index, dtype=np.int64).reshape(-1, 4)
        self.own_index = np.asarray(own_index, dtype=np.int64).reshape(-1, 2)


class GEMConv(nn.Module):
    """Gauge-equivariant mesh convolution between fields of SO(2) irreps (de Haan et al., ICLR 2021).

    Args:
        in_type, out_type: field types of ``SO2()`` irreps (e.g. ``so2_band_field(16, 2)``, or
            ``trivial_field(SO2(), 3)`` for xyz input).
        bias: a learned bias on the output's scalar (frequency-0) channels, the only gauge-invariant ones.

    Shapes:
        ``x: [V, in_type.size]`` -> ``[V, out_type.size]``; ``ops``: the mesh's ``MeshOperators``.
    """

    def __init__(self, in_type: FieldType, out_type: FieldType, *, bias: bool = True) -> None:
        super().__init__()
        _check_so2_types("GEMConv", in_type, out_type)
        self.in_type, self.out_type = in_type, out_type
        self.in_frequencies = so2_frequencies(in_type)
        self.out_frequencies = so2_frequencies(out_type)
        self.degree = max(self.in_frequencies) + max(self.out_frequencies)
        in_groups, out_groups = _channel_groups(in_type), _channel_groups(out_type)
        self._pairs: list[tuple[int, int]] = []
        fan_in = {m: 0 for m in out_groups}
        for n, in_index in in_groups.items():
            for m in out_groups:
                fan_in[m] += len(in_index) * (gem_kernel_basis(n, m, self.degree).shape[0]
                                              + gem_kernel_basis(n, m, 0, self_interaction=True).shape[0])
        for n, in_index in in_groups.items():
            for m, out_index in out_groups.items():
                neigh = gem_kernel_basis(n, m, self.degree)
                own = gem_kernel_basis(n, m, 0, self_interaction=True)[:, :1]
                tag = f"{n}_{m}"
                std = math.sqrt(1.0 / max(fan_in[m], 1))
                # the bases are saved with the weights: a null space has no canonical basis, and another LAPACK
                # build could return a rotated one, which would give the same weights another meaning
                self.register_buffer(f"basis_{tag}", neigh.to(torch.get_default_dtype()))
                self.register_buffer(f"self_basis_{tag}", own.to(torch.get_default_dtype()))
                self.register_buffer(f"rows_{tag}", torch.from_numpy(in_index.reshape(-1)), persistent=False)
                self.register_buffer(f"cols_{tag}", torch.from_numpy(out_index.reshape(-1)), persistent=False)
                self.register_parameter(f"weight_{tag}", nn.Parameter(
                    torch.randn(len(out_index), len(in_index), neigh.shape[0]) * std))
                self.register_parameter(f"self_weight_{tag}", nn.Parameter(
                    torch.randn(len(out_index), len(in_index), own.shape[0]) * std))
                self._pairs.append((n, m))
        self._in_channels = {n: torch.from_numpy(index.reshape(-1)) for n, index in sorted(in_groups.items())}
        quarter_index, quarter_sign = _quarter_turn(self.in_frequencies)
        # per input frequency n > 0, J restricted to its channels, which _block_map needs to rewrite the kernel's
        # coefficients onto the moments A_k = sum_e exp(i k theta_e) rho_n(g_e) x_q that the layer forms
        for n, channels in self._in_channels.items():
            if n == 0:
                continue
            position = {int(c): j for j, c in enumerate(channels.tolist())}
            quarter = torch.zeros(len(channels), len(channels))  # J restricted to these channels: (J x)_j
            for j, c in enumerate(channels.tolist()):
                quarter[j, position[int(quarter_index[c])]] = quarter_sign[c]
            self.register_buffer(f"quarter_t_{n}", quarter.T.contiguous(), persistent=False)
        scalars = [i for i, k in enumerate(self._out_offsets()) if k is not None]
        self.register_buffer("bias_index", torch.tensor(scalars, dtype=torch.long), persistent=False)
        self.bias = nn.Parameter(torch.zeros(len(scalars))) if bias and scalars else None
        self._layout = _MomentLayout(in_groups, out_groups)
        for name, index in (("input_gather", self._layout.input_gather), ("term_index", self._layout.term_index),
                            ("rotation_index", self._layout.rotation_index), ("own_index", self._layout.own_index)):
            self.register_buffer(name, torch.from_numpy(index), persistent=False)
        for b, columns in enumerate(self._layout.block_columns):
            self.register_buffer(f"block_columns_{b}", torch.tensor(columns, dtype=torch.long), persistent=False)
        self._assembly_cache: tuple | None = None

    def _out_offsets(self) -> list[int | None]:
        """For each output channel, its index if it is a scalar channel, else None."""
        out, start = [], 0
        for k in self.out_frequencies:
            out += [start] if k == 0 else [None, None]
            start += 1 if k == 0 else 2
        return out

    def _assembly(self, device: torch.device) -> tuple[tuple[Tensor, Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]:
        """Two maps ``(source, target, coefficient)`` from the concatenated weights (each pair's neighbour weights,
        then its self weights), ``flat[target] += weights[source] * coefficient``: into the kernel's coefficients
        ``[F * C_in * C_out + C_in * C_out]`` (``kernel_matrices``), and into the forward pass's blocks
        (``_block_sizes``). Built from the bases once, and again only when a basis buffer changes
        (``load_state_dict``) or the device does."""
        bases = [getattr(self, f"{kind}basis_{n}_{m}") for n, m in self._pairs for kind in ("", "self_")]
        key = (device, tuple(b._version for b in bases), tuple(b.data_ptr() for b in bases))
        if self._assembly_cache is not None and self._assembly_cache[0] == key:
            return self._assembly_cache[1]
        terms = 1 + 2 * self.degree
        c_in, c_out = self.in_type.size, self.out_type.size
        sources, targets, coefficients, offset = [], [], [], 0
        for n, m in self._pairs:
            tag = f"{n}_{m}"
            rows = getattr(self, f"rows_{tag}").cpu().numpy()  # [A * dn]: (a, j) -> input channel
            cols = getattr(self, f"cols_{tag}").cpu().numpy()  # [O * dm]: (o, i) -> output channel
            for kind, base in (("", 0), ("self_", terms * c_in * c_out)):
                basis = getattr(self, f"{kind}basis_{tag}").detach().cpu().double().numpy()  # [B, F, dm, dn]
                outs, ins, count = getattr(self, f"{kind}weight_{tag}").shape  # [O, A, B]
                d_m, d_n = basis.shape[2], basis.shape[3]
                b, f, i, j = np.nonzero(basis)
                o, a = np.meshgrid(np.arange(outs), np.arange(ins), indexing="ij")
                o, a = o.reshape(-1, 1), a.reshape(-1, 1)  # every weight's (o, a) against every basis entry
                sources.append((offset + (o * ins + a) * count + b).reshape(-1))
                targets.append((base + f * c_in * c_out + rows[a * d_n + j] * c_out + cols[o * d_m + i]).reshape(-1))
                coefficients.append(np.broadcast_to(basis[b, f, i, j], (outs * ins, len(b))).reshape(-1))
                offset += outs * ins * count
        source, target, coefficient = (np.concatenate(sources), np.concatenate(targets), np.concatenate(coefficients))
        full = (torch.from_numpy(source).to(device), torch.from_numpy(target).to(device),
                torch.from_numpy(coefficient).to(device))
        # the forward pass's blocks are linear in the kernel's coefficients, so composing the two maps gives them
        # straight from the weights, in one gather and one index_add as well
        to_full = scipy.sparse.csr_matrix((coefficient, (target, source)),
                                          shape=(terms * c_in * c_out + c_in * c_out, offset))
        composed = (self._block_map() @ to_full).tocoo()
        blocks = (torch.from_numpy(composed.col.astype(np.int64)).to(device),
                  torch.from_numpy(composed.row.astype(np.int64)).to(device),
                  torch.from_numpy(composed.data).to(device))
        self._assembly_cache = (key, (full, blocks))
        return self._assembly_cache[1]

    def _block_sizes(self) -> list[int]:
        """Sizes of the forward pass's weight blocks, flattened: per output frequency ``m``,
        ``[groups_m * C, d_m * fields_m]`` (``_MomentLayout``)."""
        layout = self._layout
        return [len(groups) * layout.channels * len(columns) for groups, columns in
                zip(layout.block_groups, layout.block_columns, strict=True)]

    def _block_map(self) -> scipy.sparse.csr_matrix:
        """The linear map from the kernel's flattened coefficients ``[W (F, C_in, C_out), W_self (C_in, C_out)]``
        to the forward pass's weight blocks (``_block_sizes``), one per output frequency ``m``, whose rows are the
        moments ``m`` reads (``_MomentLayout``) and whose columns are ``m``'s output channels.

        An own component reads ``W_self``; a scalar input's Fourier term ``f`` reads ``W[f]``. For an input of
        frequency ``n > 0``, with ``C_k = sum_e cos(k theta_e) y_e`` and ``S_k = sum_e sin(k theta_e) y_e``
        (``y_e = rho_n(g_e) x_q``, the real Fourier moments the coefficients ``W_f`` act on) and
        ``A_{+-k} = C_k +- J S_k``, the layer's sum ``C_0 W_0 + sum_k (C_k W_cos k + S_k W_sin k)`` equals
        ``sum_k A_k W'_k`` over every degree ``-K..K`` with ``W'_0 = W_0`` and
        ``W'_k = (W_cos |k| - sign(k) J^T W_sin |k|) / 2``. For an equivariant kernel ``W'_k`` vanishes unless
        ``k = m - n`` or ``k = -(m + n)`` (``m > 0``) for an output frequency ``m``, and a scalar input's term
        unless its degree is ``m``: those are the only moments kept (3 of the 5 real terms of a frequency-1 field
        into frequencies 0 and 1), each in the one block that reads it."""
        terms = 1 + 2 * self.degree
        c_in, c_out = self.in_type.size, self.out_type.size
        layout = self._layout
        rows, cols, values = [], [], []
        offset = 0
        for groups, columns in zip(layout.block_groups, layout.block_columns, strict=True):
            out = np.asarray(columns)  # this block's output channels, in its column order
            width = len(columns)

            def add(row: int, f: int, channel: int, value: float, out=out, width=width, offset=offset) -> None:
                rows.append(offset + row * width + np.arange(width))
                cols.append((f * c_in + channel) * c_out + out)
                values.append(np.full(width, value))

            for g, group in enumerate(groups):
                for j, channel in enumerate(group.channels):
                    row = g * layout.channels + j
                    if group.kind == "own":
                        add(row, terms, channel, 1.0)  # W_self sits after the F terms of W
                    elif group.kind == "fourier":
                        add(row, group.term, channel, 1.0)
                    else:  # the real (part 0) or imaginary (part 1) part of A_k for input frequency n
                        n, k = group.frequency, group.head
                        channels = self._in_channels[n].tolist()
                        r = channels.index(channel)
                        if k == 0:
                            add(row, 0, channel, 1.0)
                            continue
                        quarter_t = getattr(self, f"quarter_t_{n}").cpu().numpy()
                        add(row, 2 * abs(k) - 1, channel, 0.5)
                        for col in np.flatnonzero(quarter_t[r]):
                            add(row, 2 * abs(k), channels[col], -0.5 * (1 if k > 0 else -1) * float(quarter_t[r, col]))
            offset += len(groups) * layout.channels * width
        return scipy.sparse.csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                                       shape=(offset, terms * c_in * c_out + c_in * c_out))

    def kernel_matrices(self) -> tuple[Tensor, Tensor]:
        """``(W [F, C_in, C_out], W_self [C_in, C_out])``: the layer's kernel as Fourier coefficients
        (``K_neigh(theta) = sum_f phi_f(theta) W[f]^T``), ``W[f, (a, j), (o, i)] = sum_b w[o, a, b] basis[b, f, i, j]``
        for every pair of frequencies, assembled in one gather and one ``index_add``."""
        terms = 1 + 2 * self.degree
        c_in, c_out = self.in_type.size, self.out_type.size
        flat = self._assembled(0, terms * c_in * c_out + c_in * c_out)
        return flat[:terms * c_in * c_out].view(terms, c_in, c_out), flat[terms * c_in * c_out:].view(c_in, c_out)

    def _assembled(self, which: int, size: int) -> Tensor:
        """``[size]``: the weights through map ``which`` of ``_assembly`` (one gather, one ``index_add``)."""
        weights = torch.cat([getattr(self, f"{kind}weight_{n}_{m}").reshape(-1) for n, m in self._pairs
                             for kind in ("", "self_")])
        source, target, coefficient = self._assembly(weights.device)[which]
        return weights.new_zeros(size).index_add(0, target, weights[source] * coefficient.to(weights.dtype))

    def forward(self, x: Tensor, ops: MeshOperators) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_type.size or x.shape[0] != ops.num_vertices:
            raise FieldError(f"GEMConv: x must be [{ops.num_vertices}, {self.in_type.size}] for {self.in_type!r}, "
                             f"got {tuple(x.shape)}")
        layout = self._layout
        # x component by component: [V, P, C], the scalars' channels, then each frequency's first and second
        # components (zero channels pad a frequency with fewer fields)
        if layout.input_is_transpose:
            components = x.view(x.shape[0], layout.channels, -1).transpose(1, 2)
        else:
            padded = torch.cat([x, x.new_zeros(x.shape[0], 1)], dim=1) if layout.padded else x
            components = padded.index_select(1, self.input_gather).view(x.shape[0], -1, layout.channels)
        # per edge and term, the weight of a neighbour's component in a moment: phi_f(theta) / deg for a scalar
        # input's Fourier term; for an input of frequency n > 0, read as complex numbers a + i b per field (J = i),
        # the real and imaginary parts of exp(i (k theta + n g)) for the moments A_k the kernel reads
        values = _edge_terms(ops, layout, x.dtype)
        # the kernel's coefficients, one block per output frequency (_block_map); the scalar outputs carry the bias
        sizes = self._block_sizes()
        flat = self._assembled(1, sum(sizes)).to(x.dtype)
        blocks = [(len(groups), weight.view(len(groups) * layout.channels, len(columns)),
                   getattr(self, f"block_columns_{b}"))
                  for b, (groups, columns, weight) in enumerate(zip(layout.block_groups, layout.block_columns,
                                                                    torch.split(flat, sizes), strict=True))]
        bias = None
        if self.bias is not None:
            bias = x.new_zeros(self.out_type.size).index_put((self.bias_index,), self.bias.to(x.dtype))
        return spmm_terms_linear(ops.edge_csr, components, values, self.term_index, self.own_index, blocks, bias,
                                 rotation_index=self.rotation_index)

    def extra_repr(self) -> str:
        return f"{self.in_type!r} -> {self.out_type!r}"


class GaugeLinear(nn.Module):
    """The pointwise gauge-equivariant linear map between fields of SO(2) irreps (no neighbours): for each frequency
    ``k`` that both types hold, ``y_j = sum_i (a_ji + b_ji J) x_i`` over the input fields ``i`` of frequency ``k``
    (``b`` only for ``k > 0``; ``J`` the quarter turn). By Schur's lemma these are all the linear maps that commute
    with every frame rotation; output fields of a frequency the input lacks are zero. GEM-CNN's residual blocks use it
    on the skip path when the block changes the field type.

    Args:
        in_type, out_type: field types of ``SO2()`` irreps.
        bias: a learned bias on the output's scalar channels.

    Shapes:
        ``x: [V, in_type.size]`` -> ``[V, out_type.size]``.
    """

    def __init__(self, in_type: FieldType, out_type: FieldType, *, bias: bool = True) -> None:
        super().__init__()
        _check_so2_types("GaugeLinear", in_type, out_type)
        self.in_type, self.out_type = in_type, out_type
        in_groups, out_groups = _channel_groups(in_type), _channel_groups(out_type)
        self.frequencies = sorted(set(in_groups) & set(out_groups))
        for k in self.frequencies:
            n_in, n_out = len(in_groups[k]), len(out_groups[k])
            std = math.sqrt(1.0 / (n_in * (1 if k == 0 else 2)))
            self.register_buffer(f"rows_{k}", torch.from_numpy(in_groups[k]), persistent=False)  # [n_in, d]
            self.register_buffer(f"cols_{k}", torch.from_numpy(out_groups[k].reshape(-1)), persistent=False)
            self.register_parameter(f"weight_{k}", nn.Parameter(torch.randn(n_out, n_in) * std))
            if k > 0:
                self.register_parameter(f"turn_weight_{k}", nn.Parameter(torch.randn(n_out, n_in) * std))
        quarter_index, quarter_sign = _quarter_turn(so2_frequencies(in_type))
        self.register_buffer("quarter_index", quarter_index, persistent=False)
        self.register_buffer("quarter_sign", quarter_sign, persistent=False)
        scalars = out_groups.get(0, np.zeros((0, 1), dtype=np.int64)).reshape(-1)
        self.register_buffer("bias_index", torch.from_numpy(scalars), persistent=False)
        self.bias = nn.Parameter(torch.zeros(len(scalars))) if bias and len(scalars) else None

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_type.size:
            raise FieldError(f"GaugeLinear: x must be [V, {self.in_type.size}] for {self.in_type!r}, "
                             f"got {tuple(x.shape)}")
        out = x.new_zeros(x.shape[0], self.out_type.size)
        x_quarter = x[:, self.quarter_index] * self.quarter_sign.to(x.dtype)  # J x
        for k in self.frequencies:
            rows = getattr(self, f"rows_{k}")  # [n_in, d]
            y = torch.einsum("vid,oi->vod", x[:, rows], getattr(self, f"weight_{k}"))
            if k > 0:
                y = y + torch.einsum("vid,oi->vod", x_quarter[:, rows], getattr(self, f"turn_weight_{k}"))
            out = out.index_copy(1, getattr(self, f"cols_{k}"), y.reshape(x.shape[0], -1))
        if self.bias is not None:
            out = out.index_add(1, self.bias_index, self.bias.expand(x.shape[0], -1))
        return out

    def extra_repr(self) -> str:
        return f"{self.in_type!r} -> {self.out_type!r}"


class GEMResBlock(nn.Module):
    """The residual block of de Haan et al.'s FAUST network: two gauge-equivariant convolutions with the regular
    nonlinearity between them and a skip connection,

        y = sigma(conv2(sigma(conv1(x))) + skip(x)),

    ``skip`` the identity when the block keeps the field type, else a ``GaugeLinear`` map; the outer ``sigma`` is
    left out when ``last``.

    Args:
        in_type: the input field type (SO(2) irreps).
        hidden: the field type between the convolutions (``so2_band_field``, as the nonlinearity samples it).
        out_type: the output field type (``so2_band_field``, or scalars, unless ``last``).
        samples: angles of the regular nonlinearities.
        last: leave out the outer nonlinearity.

    Shapes:
        ``x: [V, in_type.size]`` -> ``[V, out_type.size]``; ``ops``: the mesh's ``MeshOperators``.
    """

    def __init__(self, in_type: FieldType, hidden: FieldType, out_type: FieldType, *, samples: int | None = None,
                 last: bool = False) -> None:
        super().__init__()
        self.conv1 = GEMConv(in_type, hidden)
        self.nonlinearity1 = RegularNonlinearity(hidden, samples)
        self.conv2 = GEMConv(hidden, out_type)
        self.skip = nn.Identity() if in_type == out_type else GaugeLinear(in_type, out_type, bias=False)
        self.nonlinearity2 = nn.Identity() if last else RegularNonlinearity(out_type, samples)

    def forward(self, x: Tensor, ops: MeshOperators) -> Tensor:
        y = self.conv2(self.nonlinearity1(self.conv1(x, ops)), ops)
        return self.nonlinearity2(y + self.skip(x))


class RegularNonlinearity(nn.Module):
    """GEM-CNN's regular nonlinearity on band-limited fields (de Haan et al. 2021, Sec. 5): read each copy of
    frequencies ``0..M`` as a function on the circle, sample it at ``N`` equally spaced angles, apply ``activation``
    pointwise, and project back onto frequencies ``0..M`` (least squares).

    Exactly gauge equivariant for frame rotations by multiples of ``2 pi / N``, approximately for others (the error
    falls as ``N`` grows).

    Args:
        field_type: ``so2_band_field(copies, M)``.
        samples: ``N`` (default ``4 M + 4``).
        activation: a pointwise function (default ReLU).
    """

    def __init__(self, field_type: FieldType, samples: int | None = None, activation=torch.relu) -> None:
        super().__init__()
        frequencies = so2_frequencies(field_type)
        top = max(frequencies)
        band = list(range(top + 1))
        if len(frequencies) % len(band) or frequencies != band * (len(frequencies) // len(band)):
            raise FieldError(f"RegularNonlinearity: needs copies of frequencies 0..M side by side "
                             f"(so2_band_field), got {field_type!r}")
        samples = 4 * top + 4 if samples is None else samples
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2 * top + 1:
            raise FieldError(f"RegularNonlinearity: samples must be an integer >= 2 M + 1 = {2 * top + 1}, "
                             f"got {samples!r}")
        self.field_type, self.samples, self.activation = field_type, samples, activation
        self.copies, self.width = len(frequencies) // len(band), 2 * top + 1
        angles = 2 * np.pi * np.arange(samples) / samples
        synthesis = _fourier(angles, top)  # [N, 2M+1]
        self.register_buffer("synthesis", torch.from_numpy(synthesis).to(torch.get_default_dtype()),
                             persistent=False)
        self.register_buffer("analysis", torch.from_numpy(np.linalg.pinv(synthesis)).to(torch.get_default_dtype()),
                             persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.field_type.size:
            raise FieldError(f"RegularNonlinearity: x must have {self.field_type.size} channels, got {x.shape[-1]}")
        coefficients = x.reshape(*x.shape[:-1], self.copies, self.width)
        values = self.activation(coefficients @ self.synthesis.to(x.dtype).T)  # [..., copies, N]
        return (values @ self.analysis.to(x.dtype).T).reshape(x.shape)

    def extra_repr(self) -> str:
        return f"{self.field_type!r}, samples={self.samples}"
