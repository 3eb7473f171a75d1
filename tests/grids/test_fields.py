import pytest
import torch

from fivefold.errors import FieldError, OptionError
from fivefold.grids import GCNNClassifier, GroupBatchNorm, GroupPool, count_parameters
from fivefold.groups import cube_rotations, cyclic, dihedral, regular_field, trivial, trivial_field
from fivefold.testing import assert_equivariant


@pytest.mark.parametrize("mode", ["max", "mean"])
def test_group_pool_is_invariant(mode):
    group = dihedral(4)
    fields = regular_field(group, 3)
    pool = GroupPool(fields, mode)
    assert pool.out_type == trivial_field(group, 3)
    x = torch.randn(2, 3 * 8, 6, 6, dtype=torch.float64)
    assert pool(x).shape == (2, 3, 6, 6)
    assert_equivariant(pool, fields, pool.out_type, x, atol=1e-12)
    flat = torch.randn(4, 24, dtype=torch.float64)
    assert_equivariant(pool, fields, "invariant", flat, atol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_group_batch_norm_is_equivariant(training):
    fields = regular_field(cyclic(4), 3)
    norm = GroupBatchNorm(fields).double()
    with torch.no_grad():
        norm.norm.weight.normal_()
        norm.norm.bias.normal_()
    x = 3 * torch.randn(4, 12, 5, 5, dtype=torch.float64) + 1
    if not training:
        norm(x)  # accumulate running statistics first
    norm.train(training)
    assert_equivariant(norm, fields, fields, x, atol=1e-12)
    if training:  # each field is standardised over batch, group axis and space
        y = GroupBatchNorm(fields, affine=False).double()(x).reshape(4, 3, -1)
        torch.testing.assert_close(y.mean(dim=(0, 2)), torch.zeros(3, dtype=torch.float64), atol=1e-12, rtol=0)


def test_field_layers_reject_wrong_channels():
    c4 = cyclic(4)
    with pytest.raises(FieldError, match="2 regular fields of C4 = 8"):
        GroupPool(regular_field(c4, 2))(torch.randn(1, 6, 3, 3))
    with pytest.raises(FieldError, match="2 regular fields of C4 = 8"):
        GroupBatchNorm(regular_field(c4, 2))(torch.randn(2, 12, 3, 3))
    with pytest.raises(OptionError, match=r"mode must be one of \('max', 'mean'\)"):
        GroupPool(regular_field(c4, 1), "sum")
    with pytest.raises(FieldError, match="must be regular fields"):
        GroupPool(trivial_field(c4, 1))
    with pytest.raises(FieldError, match="must be regular fields"):
        GroupBatchNorm(trivial_field(c4, 1))


def test_deprecated_field_layer_forms_warn_and_match():
    c4 = cyclic(4)
    x = torch.randn(2, 12, 3, 3)
    with pytest.warns(DeprecationWarning):
        legacy_pool = GroupPool(c4)  # any number of regular fields
    assert torch.equal(legacy_pool(x), GroupPool(regular_field(c4, 3))(x))
    with pytest.raises(FieldError, match="multiple of"):
        legacy_pool(torch.randn(1, 6, 3, 3))
    with pytest.warns(DeprecationWarning):
        legacy_norm = GroupBatchNorm(3, c4)
    assert legacy_norm.in_type == regular_field(c4, 3)
    assert torch.equal(legacy_norm(x), GroupBatchNorm(regular_field(c4, 3))(x))


@pytest.mark.parametrize("group", [cyclic(4), dihedral(4)], ids=repr)
def test_classifier_is_invariant(group):
    torch.manual_seed(0)
    model = GCNNClassifier(1, 10, group, [2, 2, 3, 3], pool_after=(1, 3)).double().eval()
    x = torch.randn(3, 1, 28, 28, dtype=torch.float64)
    assert_equivariant(model, trivial_field(group, 1), "invariant", x, atol=1e-10)


def test_3d_classifier_is_invariant_and_cnn_is_not():
    torch.manual_seed(0)
    group = cube_rotations()
    model = GCNNClassifier(1, 2, group, [1, 2], pool_after=(0,), kernel_size=3).double().eval()
    x = torch.randn(2, 1, 8, 8, 8, dtype=torch.float64)
    assert_equivariant(model, trivial_field(group, 1), "invariant", x, atol=1e-10)
    cnn = GCNNClassifier(1, 2, trivial(3), [4, 8], pool_after=(0,), kernel_size=3).double().eval()
    with pytest.raises(AssertionError):
        assert_equivariant(cnn, trivial_field(group, 1), "invariant", x, atol=1e-6)


def test_classifier_trains_and_counts_parameters():
    torch.manual_seed(0)
    model = GCNNClassifier(1, 3, cyclic(8), [2, 2])
    assert count_parameters(model) == sum(p.numel() for p in model.parameters())
    x, y = torch.randn(6, 1, 12, 12), torch.tensor([0, 1, 2, 0, 1, 2])
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
