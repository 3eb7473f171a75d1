import pytest
import torch

from fivefold.errors import OpsError
from fivefold.ops import CSR, sddmm, spmm, spmm_mix
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
