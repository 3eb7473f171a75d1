"""unique_ids: the result of torch.unique(return_inverse=True), by the dense table and by sorting; bad ids refused."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fivefold.errors import OpsError
from fivefold.ops import unique_ids


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.integers(0, 199), max_size=300), extra=st.sampled_from([0, 1, 10**6]))
def test_unique_ids_equals_torch_unique(values, extra):
    """Both regimes: size 200 (the dense table whenever there are at least 7 ids) and a large size (sorting)."""
    ids = torch.tensor(values, dtype=torch.long)
    distinct, inverse = unique_ids(ids, 200 + extra)
    expected, expected_inverse = torch.unique(ids, return_inverse=True)
    assert torch.equal(distinct, expected)
    assert torch.equal(inverse, expected_inverse)
    assert distinct.dtype == inverse.dtype == torch.long


def test_unique_ids_takes_int32_ids():
    distinct, inverse = unique_ids(torch.tensor([5, 3, 5, 0], dtype=torch.int32), 8)
    assert distinct.tolist() == [0, 3, 5] and inverse.tolist() == [2, 1, 2, 0]


@pytest.mark.parametrize(("ids", "match"), [
    (torch.tensor([0, 8]), r"\[0, 8\)"),
    (torch.tensor([-1, 2]), r"\[0, 8\)"),
    (torch.tensor([1.0, 2.0]), "integer"),
    (torch.tensor([[1, 2]]), "1-D"),
])
def test_unique_ids_refuses_bad_ids(ids, match):
    with pytest.raises(OpsError, match=match):
        unique_ids(ids, 8)
