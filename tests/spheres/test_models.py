"""The Ico-CNN models: the U-Net is equivariant, the classifier invariant, to the grid's 60 rotations."""

import pytest
import torch

from fivefold.spheres import IcoClassifier, IcoGrid, IcoUNet, chart_action, trivial_field
from fivefold.testing import assert_equivariant


def test_unet_is_equivariant():
    torch.manual_seed(0)
    grid = IcoGrid(3)
    net = IcoUNet(1, 3, 3, (2, 3, 4)).double()
    x = torch.randn(2, 1, 5, 8, 16, dtype=torch.float64)
    assert net(x).shape == (2, 3, 5, 8, 16)
    scalars = chart_action(grid, "trivial")
    assert_equivariant(net, scalars, scalars, x, elements=list(range(0, 60, 6)), atol=1e-11)
    with pytest.raises(ValueError, match="levels"):
        IcoUNet(1, 2, 1, (2, 3, 4))


def test_classifier_is_invariant():
    torch.manual_seed(0)
    grid = IcoGrid(3)
    net = IcoClassifier(2, 5, 3, widths=(2, 3, 3), pool_after=(0, 1)).double().eval()
    x = torch.randn(3, 2, 5, 8, 16, dtype=torch.float64)
    assert net(x).shape == (3, 5)
    action = chart_action(grid, trivial_field(2))
    assert_equivariant(net, action, "invariant", x, atol=1e-12)
    net.train()(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(ValueError, match="poolings need r"):
        IcoClassifier(1, 2, 2, widths=(2, 2, 2), pool_after=(0, 1))
    with pytest.raises(ValueError, match="pool_after"):
        IcoClassifier(1, 2, 4, widths=(2, 2), pool_after=(1,))
    with pytest.raises(ValueError, match="readout"):
        IcoClassifier(1, 2, 4, readout="sum")
    mean_net = IcoClassifier(2, 5, 3, widths=(2, 3), pool_after=(0,), readout="mean").double().eval()
    assert_equivariant(mean_net, action, "invariant", x, atol=1e-12)
