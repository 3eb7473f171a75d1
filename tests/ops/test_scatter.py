import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fivefold.errors import OpsError, OptionError
from fivefold.ops import REDUCTIONS, scatter, segment, segment_softmax


def _reference(src, index, n, reduce):
    out = torch.zeros(n, *src.shape[1:], dtype=src.dtype)
    for i in range(n):
        rows = src[index == i]
        if len(rows) == 0:
            continue
        out[i] = {"sum": rows.sum(0), "mean": rows.mean(0), "max": rows.max(0).values,
                  "min": rows.min(0).values}[reduce]
    return out


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 30), st.integers(1, 8), st.sampled_from(["sum", "mean", "max", "min"]), st.integers(0, 10**6))
def test_scatter_matches_reference(num_rows, n, reduce, seed):
    g = torch.Generator().manual_seed(seed)
    src = torch.randn(num_rows, 3, generator=g, dtype=torch.float64)
    index = torch.randint(0, n, (num_rows,), generator=g)
    torch.testing.assert_close(scatter(src, index, n, reduce), _reference(src, index, n, reduce))


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_scatter_gradcheck(reduce):
    torch.manual_seed(0)
    src = torch.randn(12, 3, dtype=torch.float64, requires_grad=True)
    index = torch.tensor([0, 0, 1, 2, 2, 2, 4, 4, 0, 1, 2, 4])
    assert torch.autograd.gradcheck(lambda s: scatter(s, index, 5, reduce), (src,))


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_segment_equals_scatter(reduce):
    src = torch.randn(7, 2, dtype=torch.float64, requires_grad=True)
    indptr = torch.tensor([0, 2, 2, 5, 7])
    index = torch.tensor([0, 0, 2, 2, 2, 3, 3])
    torch.testing.assert_close(segment(src, indptr, reduce), scatter(src, index, 4, reduce))
    assert torch.autograd.gradcheck(lambda s: segment(s, indptr, reduce), (src,))


def test_segment_softmax_sums_to_one_and_gradcheck():
    src = torch.randn(9, 2, dtype=torch.float64, requires_grad=True)
    index = torch.tensor([0, 1, 1, 0, 3, 3, 3, 1, 0])
    out = segment_softmax(src, index, 4)
    torch.testing.assert_close(scatter(out, index, 4, "sum")[[0, 1, 3]], torch.ones(3, 2, dtype=torch.float64))
    assert torch.autograd.gradcheck(lambda s: segment_softmax(s, index, 4), (src,))


def test_segment_softmax_is_stable_for_large_scores():
    out = segment_softmax(torch.tensor([1000.0, 1001.0]), torch.tensor([0, 0]), 1)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.sum(), torch.tensor(1.0))


@pytest.mark.parametrize(
    "index, message",
    [
        (torch.tensor([0, 5]), "out of range"),
        (torch.tensor([0, -1]), "out of range"),
        (torch.tensor([0.0, 1.0]), "int64"),
        (torch.tensor([[0, 1]]), "1-D"),
    ],
)
def test_scatter_rejects_bad_index(index, message):
    with pytest.raises(OpsError, match=message):
        scatter(torch.randn(2, 3), index, 3)


def test_scatter_rejects_length_mismatch_and_bad_reduce():
    with pytest.raises(OpsError, match="rows"):
        scatter(torch.randn(3, 2), torch.tensor([0, 1]), 2)
    with pytest.raises(OptionError, match="reduce"):
        scatter(torch.randn(2, 2), torch.tensor([0, 1]), 2, "median")


def test_segment_rejects_bad_indptr():
    with pytest.raises(OpsError, match="non-decreasing"):
        segment(torch.randn(3, 2), torch.tensor([0, 2, 1, 3]))
    with pytest.raises(OpsError, match="rows"):
        segment(torch.randn(3, 2), torch.tensor([0, 2, 4]))


def test_validate_false_skips_only_the_index_checks():
    src = torch.randn(5, 2, dtype=torch.float64)
    index = torch.tensor([0, 2, 2, 1, 0])
    for reduce in REDUCTIONS:
        torch.testing.assert_close(scatter(src, index, 3, reduce, validate=False), scatter(src, index, 3, reduce))
    torch.testing.assert_close(segment_softmax(src, index, 3, validate=False), segment_softmax(src, index, 3))
    with pytest.raises(OpsError, match="out of range"):
        scatter(src, torch.tensor([0, 3, 1, 1, 0]), 3)
    with pytest.raises(OptionError, match="reduce must be one of"):  # options are still checked
        scatter(src, index, 3, "median", validate=False)
