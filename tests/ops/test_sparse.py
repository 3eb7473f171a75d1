import pytest
import torch

from fivefold.errors import OpsError
from fivefold.ops import CSR, sddmm, spmm, spmm_mix, spmm_terms_linear
from fivefold.testing import assert_close


def _random_csr(num_rows=7, num_cols=5, nnz=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    row = torch.randint(0, num_rows, (nnz,), generator=g)
    col = torch.randint(0, num_cols, (nnz,), generator=g)
    return CSR.from_coo(row, col, num_rows, num_cols), row, col


def _dense(csr, values):
    dense = torch.zeros(csr.num_rows, csr.num_cols, *values.shape[1:], dtype=values.dtype)
    for k in range(csr.nnz):
        dense[csr.rows[k], csr.indices[k]] += values[k]
    return dense


def test_from_coo_keeps_entries_and_order():
    csr, row, col = _random_csr()
    assert torch.equal(row[csr.perm], csr.rows)
    assert torch.equal(col[csr.perm], csr.indices)
    assert torch.equal(csr.degree(), torch.bincount(row, minlength=7))
    # stable: equal rows keep input order
    for i in range(csr.num_rows):
        seg = csr.perm[csr.indptr[i]:csr.indptr[i + 1]]
        assert torch.all(seg[1:] > seg[:-1])


def test_transpose_round_trip():
    csr, _, _ = _random_csr()
    t = csr.transpose()
    assert (t.num_rows, t.num_cols) == (csr.num_cols, csr.num_rows)
    assert torch.equal(csr.rows[t.perm], t.indices)
    assert torch.equal(csr.indices[t.perm], t.rows)
    assert t.transpose() is csr


@pytest.mark.float32
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_spmm_matches_dense(dtype):
    csr, _, _ = _random_csr()
    x = torch.randn(5, 4, dtype=dtype)
    w = torch.rand(csr.nnz, dtype=dtype)
    assert_close(spmm(csr, x, w), _dense(csr, w) @ x, terms=csr.num_cols)
    assert_close(spmm(csr, x), _dense(csr, torch.ones(csr.nnz, dtype=dtype)) @ x, terms=csr.num_cols)


def test_spmm_multihead_matches_loop():
    csr, _, _ = _random_csr()
    x = torch.randn(5, 3, 4, dtype=torch.float64)
    w = torch.rand(csr.nnz, 3, dtype=torch.float64)
    expected = torch.stack([_dense(csr, w[:, h]) @ x[:, h] for h in range(3)], dim=1)
    torch.testing.assert_close(spmm(csr, x, w), expected)


def test_spmm_gradcheck_features_and_values():
    csr, _, _ = _random_csr()
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    w = torch.rand(csr.nnz, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: spmm(csr, a, b), (x, w))
    assert torch.autograd.gradcheck(lambda a: spmm(csr, a), (x,))
    xh = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    wh = torch.rand(csr.nnz, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: spmm(csr, a, b), (xh, wh))


def test_sddmm_matches_gather():
    csr, _, _ = _random_csr()
    a = torch.randn(7, 4, dtype=torch.float64)
    b = torch.randn(5, 4, dtype=torch.float64)
    torch.testing.assert_close(sddmm(csr, a, b), (a[csr.rows] * b[csr.indices]).sum(-1))


def test_empty_rows_and_empty_matrix():
    csr = CSR.from_coo(torch.tensor([2, 2]), torch.tensor([0, 1]), 4, 2)
    out = spmm(csr, torch.ones(2, 3))
    assert torch.equal(out, torch.tensor([[0.0] * 3, [0.0] * 3, [2.0] * 3, [0.0] * 3]))
    empty = CSR.from_coo(torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long), 3, 3)
    assert torch.equal(spmm(empty, torch.ones(3, 2)), torch.zeros(3, 2))


def test_bad_inputs_raise():
    with pytest.raises(OpsError, match="out of range"):
        CSR.from_coo(torch.tensor([0, 9]), torch.tensor([0, 1]), 3, 3)
    with pytest.raises(OpsError, match="int64"):
        CSR.from_coo(torch.tensor([0, 1], dtype=torch.int32), torch.tensor([0, 1]), 3, 3)
    csr, _, _ = _random_csr()
    with pytest.raises(OpsError, match="columns"):
        spmm(csr, torch.randn(6, 2))
    with pytest.raises(OpsError, match="entries"):
        spmm(csr, torch.randn(5, 2), torch.rand(3))
    with pytest.raises(OpsError, match="floating"):
        spmm(csr, torch.ones(5, 2, dtype=torch.long))


def test_hand_built_invalid_csr_is_rejected_before_any_kernel():
    with pytest.raises(OpsError, match="indices"):
        CSR(torch.tensor([0, 2]), torch.tensor([0, 10**9]), torch.tensor([0, 1]), 1)
    with pytest.raises(OpsError, match="indptr"):
        CSR(torch.tensor([0, 3]), torch.tensor([0, 0]), torch.tensor([0, 1]), 1)
    with pytest.raises(OpsError, match="non-negative"):
        CSR.from_coo(torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long), -1, 3)


def test_double_backward_is_refused_clearly():
    csr, _, _ = _random_csr()
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(spmm(csr, x).pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|differentiable"):
        grad.sum().backward()


def test_torch_path_casts_values_to_feature_dtype():
    from fivefold.ops.sparse import _spmm_forward

    csr, _, _ = _random_csr()
    x = torch.randn(5, 1, 3, dtype=torch.bfloat16)
    out = _spmm_forward(csr, x, torch.rand(csr.nnz, 1))
    assert out.dtype == torch.bfloat16


def _spmm_mix_loop(csr, x, values):
    out = torch.zeros(csr.num_rows, values.shape[1], x.shape[2], dtype=x.dtype)
    for e in range(csr.nnz):
        out[csr.rows[e]] += values[e] @ x[csr.indices[e]]
    return out


@pytest.mark.parametrize("nnz", [20, 3000])
def test_spmm_mix_matches_loop_and_gradcheck(nnz):
    csr, _, _ = _random_csr(num_rows=40, num_cols=30, nnz=nnz, seed=1)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(30, 2, 5, dtype=torch.float64, generator=g, requires_grad=True)
    values = torch.randn(nnz, 3, 2, dtype=torch.float64, generator=g, requires_grad=True)
    assert_close(spmm_mix(csr, x, values), _spmm_mix_loop(csr, x, values), terms=64)
    if nnz == 20:
        assert torch.autograd.gradcheck(lambda a, b: spmm_mix(csr, a, b), (x, values))
    else:  # gradients equal autograd's through the loop
        weights = torch.randn(40, 3, 5, dtype=torch.float64, generator=g)
        mine = torch.autograd.grad((spmm_mix(csr, x, values) * weights).sum(), (x, values))
        theirs = torch.autograd.grad((_spmm_mix_loop(csr, x, values) * weights).sum(), (x, values))
        for a, b in zip(mine, theirs, strict=True):
            assert_close(a, b, terms=256)


@pytest.mark.parametrize("threads", [1, 2])  # the serial scatter and the row-parallel transposed product
def test_spmm_mix_gradient_on_one_and_two_threads(threads):
    """A product above the parallel threshold: its gradient in x takes the transposed, row-parallel kernel on two
    threads and the serial scatter on one; both equal autograd's through torch ops."""
    csr, _, _ = _random_csr(num_rows=400, num_cols=300, nnz=20000, seed=3)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(300, 2, 8, dtype=torch.float64, generator=g, requires_grad=True)
    values = torch.randn(20000, 3, 2, dtype=torch.float64, generator=g)
    weights = torch.randn(400, 3, 8, dtype=torch.float64, generator=g)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        (mine,) = torch.autograd.grad((spmm_mix(csr, x, values) * weights).sum(), (x,))
    finally:
        torch.set_num_threads(before)
    messages = torch.einsum("ehp,epc->ehc", values, x.index_select(0, csr.indices))
    reference = torch.zeros(400, 3, 8, dtype=torch.float64).index_add(0, csr.rows, messages)
    (theirs,) = torch.autograd.grad((reference * weights).sum(), (x,))
    assert_close(mine, theirs, terms=512)


def test_spmm_mix_torch_path_for_other_dtypes():
    """Dtypes the kernels do not take (here bfloat16) go through torch ops, with the same result to bfloat16's
    precision."""
    from fivefold.ops.sparse import _spmm_mix_forward

    csr, _, _ = _random_csr()
    x, values = torch.randn(5, 2, 3, dtype=torch.bfloat16), torch.randn(csr.nnz, 4, 2, dtype=torch.bfloat16)
    out = _spmm_mix_forward(csr, x, values)
    assert out.dtype == torch.bfloat16
    expected = _spmm_mix_loop(csr, x.double(), values.double())
    assert float((out.double() - expected).abs().max()) <= 0.05 * float(expected.abs().max())


def test_spmm_mix_bad_inputs_raise():
    csr, _, _ = _random_csr()
    x, values = torch.randn(5, 2, 3), torch.randn(csr.nnz, 4, 2)
    with pytest.raises(OpsError, match="x must be"):
        spmm_mix(csr, x[:, 0], values)
    with pytest.raises(OpsError, match="rows but"):
        spmm_mix(csr, x[:4], values)
    with pytest.raises(OpsError, match="values must be"):
        spmm_mix(csr, x, values[:, :, :1])
    with pytest.raises(OpsError, match="values must be"):
        spmm_mix(csr, x, values[:-1])


# -- spmm_terms_linear: sparse moments and a block-diagonal linear map, fused ---------------------------------------
def _terms_problem(num_rows=9, nnz=40, seed=0, dtype=torch.float64):
    """A square pattern, x [N, 3, 4], six terms into five groups (two terms share group 4, group 2 has none), two
    rotations (the second into groups a term also writes), three own components (two into group 2), two blocks whose
    output columns interleave."""
    csr, _, _ = _random_csr(num_rows=num_rows, num_cols=num_rows, nnz=nnz, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(num_rows, 3, 4, dtype=dtype, generator=g, requires_grad=True)
    terms = torch.tensor([[0, 0], [1, 1], [1, 2], [3, 0], [4, 2], [4, 1]])
    own = torch.tensor([[2, 0], [3, 1], [2, 0]])
    rotations = torch.tensor([[1, 3, 1, 2], [4, 0, 0, 2]])
    values = torch.randn(csr.nnz, len(terms) + 2 * len(rotations), dtype=dtype, generator=g)
    weights = [torch.randn(2 * 4, 3, dtype=dtype, generator=g, requires_grad=True),
               torch.randn(3 * 4, 5, dtype=dtype, generator=g, requires_grad=True)]
    columns = [torch.tensor([5, 0, 2]), torch.tensor([1, 3, 4, 6, 7])]
    bias = torch.randn(8, dtype=dtype, generator=g, requires_grad=True)
    return csr, x, terms, rotations, own, values, weights, columns, bias


def _terms_loop(csr, x, terms, rotations, own, values, weights, columns, bias):
    """The rule written out: each entry's terms and rotations (complex products), each own component, then each
    block's product into its columns."""
    moments = torch.zeros(csr.num_rows, 5, x.shape[2], dtype=x.dtype)
    for e in range(csr.nnz):
        for t, (group, part) in enumerate(terms.tolist()):
            moments[csr.rows[e], group] += values[e, t] * x[csr.indices[e], part]
        for q, (group_re, group_im, part_re, part_im) in enumerate(rotations.tolist()):
            turn = torch.complex(values[e, len(terms) + 2 * q], values[e, len(terms) + 2 * q + 1])
            turned = turn * torch.complex(x[csr.indices[e], part_re], x[csr.indices[e], part_im])
            moments[csr.rows[e], group_re] += turned.real
            moments[csr.rows[e], group_im] += turned.imag
    for group, part in own.tolist():
        moments[:, group] += x[:, part]
    flat = moments.reshape(csr.num_rows, -1)
    out = torch.zeros(csr.num_rows, 8, dtype=x.dtype)
    out[:, columns[0]] = flat[:, :8] @ weights[0]
    out[:, columns[1]] = flat[:, 8:] @ weights[1]
    return out + bias


def _blocks(weights, columns):
    return [(2, weights[0], columns[0]), (3, weights[1], columns[1])]


@pytest.mark.parametrize("block_rows", [1, 4, 2048])
def test_spmm_terms_linear_matches_the_written_out_rule_and_gradcheck(block_rows):
    csr, x, terms, rotations, own, values, weights, columns, bias = _terms_problem()

    def fused(x, w0, w1, b):
        return spmm_terms_linear(csr, x, values, terms, own, _blocks([w0, w1], columns), b, rotation_index=rotations,
                                 block_rows=block_rows)

    out = fused(x, *weights, bias)
    assert_close(out, _terms_loop(csr, x, terms, rotations, own, values, weights, columns, bias), terms=64)
    assert torch.autograd.gradcheck(fused, (x, *weights, bias))
    assert_close(fused(x, *weights, None), out - bias, terms=64)
    # without rotations: the terms' columns alone
    plain = spmm_terms_linear(csr, x, values[:, :len(terms)], terms, own, _blocks(weights, columns), bias,
                              block_rows=block_rows)
    assert_close(plain, _terms_loop(csr, x, terms, rotations[:0], own, values, weights, columns, bias), terms=64)
    # an input without a gradient (a first layer's coordinates) skips x's scatter; the weights' gradients stay
    probe = torch.randn_like(out)
    with_x = torch.autograd.grad((fused(x, *weights, bias) * probe).sum(), weights)
    without_x = torch.autograd.grad((fused(x.detach(), *weights, bias) * probe).sum(), weights)
    for a, b in zip(with_x, without_x, strict=True):
        assert torch.equal(a, b)


def test_spmm_terms_linear_unfused_when_values_need_a_gradient():
    """Values that need a gradient take the torch-ops form: same output, and a gradient for the values too."""
    csr, x, terms, rotations, own, values, weights, columns, bias = _terms_problem()
    values = values.clone().requires_grad_()
    out = spmm_terms_linear(csr, x, values, terms, own, _blocks(weights, columns), bias, rotation_index=rotations)
    reference = _terms_loop(csr, x, terms, rotations, own, values, weights, columns, bias)
    assert_close(out, reference, terms=64)
    probe = torch.randn_like(out)
    mine = torch.autograd.grad((out * probe).sum(), (x, values, *weights))
    theirs = torch.autograd.grad((reference * probe).sum(), (x, values, *weights))
    for a, b in zip(mine, theirs, strict=True):
        assert_close(a, b, terms=64)


@pytest.mark.parametrize("threads", [1, 2])  # the serial scatter per block, and the row-parallel transposed product
def test_spmm_terms_linear_gradient_on_one_and_two_threads(threads):
    csr, x, terms, rotations, own, values, weights, columns, bias = _terms_problem(num_rows=600, nnz=30000, seed=5)
    probe = torch.randn(600, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        out = spmm_terms_linear(csr, x, values, terms, own, _blocks(weights, columns), bias, rotation_index=rotations,
                                block_rows=128)
        mine = torch.autograd.grad((out * probe).sum(), (x, *weights, bias))
    finally:
        torch.set_num_threads(before)
    # the same maths in torch ops (values needing a gradient take that form)
    reference = spmm_terms_linear(csr, x, values.clone().requires_grad_(), terms, own, _blocks(weights, columns),
                                  bias, rotation_index=rotations)
    theirs = torch.autograd.grad((reference * probe).sum(), (x, *weights, bias))
    assert_close(out, reference, terms=512)
    for a, b in zip(mine, theirs, strict=True):
        assert_close(a, b, terms=4096)


@pytest.mark.float32
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels", [3, 8, 11])
def test_spmm_terms_linear_vector_lanes_and_their_remainder(dtype, channels):
    """The kernels move channels a 32-byte vector at a time (8 float32 or 4 float64 lanes) and the rest one by one:
    channel counts below, at and past one vector agree with the torch-ops form, output and gradients."""
    g = torch.Generator().manual_seed(channels)
    csr, _, _ = _random_csr(num_rows=50, num_cols=50, nnz=400, seed=channels)
    x = torch.randn(50, 3, channels, dtype=dtype, generator=g, requires_grad=True)
    terms, own = torch.tensor([[0, 0], [2, 1]]), torch.tensor([[1, 2]])
    rotations = torch.tensor([[3, 1, 1, 2], [0, 2, 2, 0]])
    values = torch.randn(csr.nnz, 6, dtype=dtype, generator=g)
    weight = torch.randn(4 * channels, 5, dtype=dtype, generator=g, requires_grad=True)
    blocks = [(4, weight, torch.arange(5))]
    probe = torch.randn(50, 5, dtype=dtype, generator=g)
    outs, grads = [], []
    for v in (values, values.clone().requires_grad_()):  # fused kernels, then the torch-ops form
        out = spmm_terms_linear(csr, x, v, terms, own, blocks, rotation_index=rotations, block_rows=16)
        outs.append(out)
        grads.append(torch.autograd.grad((out * probe).sum(), (x, weight)))
    assert_close(outs[0], outs[1], terms=64)
    for a, b in zip(*grads, strict=True):
        assert_close(a, b, terms=512)


def test_spmm_terms_linear_bad_inputs_raise():
    csr, x, terms, rotations, own, values, weights, columns, bias = _terms_problem()
    values = values[:, :len(terms)]  # no rotations unless given
    blocks = _blocks(weights, columns)
    with pytest.raises(OpsError, match="x must be"):
        spmm_terms_linear(csr, x[:, 0], values, terms, own, blocks)
    with pytest.raises(OpsError, match="name each output column"):
        spmm_terms_linear(csr, x, values, terms, own, [blocks[0], (3, weights[1], torch.tensor([1, 3, 4, 6, 6]))])
    with pytest.raises(OpsError, match="block 1's weight must be"):
        spmm_terms_linear(csr, x, values, terms, own, [blocks[0], (2, weights[1], columns[1])])
    with pytest.raises(OpsError, match=r"term_index\[0, 1\] = 3 is not a part"):
        spmm_terms_linear(csr, x, values, torch.tensor([[0, 3]] * len(terms)), own, blocks)
    with pytest.raises(OpsError, match=r"own_index\[0, 0\] = 5 is not a group"):
        spmm_terms_linear(csr, x, values, terms, torch.tensor([[5, 0]]), blocks)
    with pytest.raises(OpsError, match=r"rotation_index\[1, 1\] = 7 is not a group"):
        spmm_terms_linear(csr, x, values, terms, own, blocks, rotation_index=torch.tensor([[0, 1, 0, 1], [0, 7, 0, 1]]))
    with pytest.raises(OpsError, match=r"rotation_index\[0, 3\] = -1 is not a part"):
        spmm_terms_linear(csr, x, values, terms, own, blocks, rotation_index=torch.tensor([[0, 1, 0, -1]]))
    with pytest.raises(OpsError, match="rotation 0 .* two different groups"):
        spmm_terms_linear(csr, x, values, terms, own, blocks, rotation_index=torch.tensor([[1, 1, 0, 1]]))
    with pytest.raises(OpsError, match="rotation 0 .* two different parts"):
        spmm_terms_linear(csr, x, values, terms, own, blocks, rotation_index=torch.tensor([[0, 1, 2, 2]]))
    with pytest.raises(OpsError, match="rotation_index must be an int64"):
        spmm_terms_linear(csr, x, values, terms, own, blocks, rotation_index=torch.tensor([[0, 1, 0]]))
    with pytest.raises(OpsError, match="values must be"):
        spmm_terms_linear(csr, x, values[:, :2], terms, own, blocks)
    with pytest.raises(OpsError, match=r"T \+ 2Q=10"):  # the rotations' columns missing
        spmm_terms_linear(csr, x, values, terms, own, blocks, rotation_index=rotations)
    with pytest.raises(OpsError, match="bias must be"):
        spmm_terms_linear(csr, x, values, terms, own, blocks, bias[:3])
    with pytest.raises(OpsError, match="block_rows"):
        spmm_terms_linear(csr, x, values, terms, own, blocks, block_rows=0)
    rectangular, _, _ = _random_csr(num_rows=4, num_cols=9, nnz=10)
    with pytest.raises(OpsError, match="square pattern"):
        spmm_terms_linear(rectangular, x, torch.randn(10, len(terms), dtype=x.dtype), terms, own, blocks)
