"""One error class per kind of mistake: an option outside its allowed values raises ``OptionError`` in every domain,
naming the argument and listing the values it takes."""

import pytest
import torch

from fivefold.errors import FivefoldError, OptionError, check_option
from fivefold.graphs import Graph, SAGEConv, coalesce, edge_input
from fivefold.grids import GroupConv2d, GroupPool
from fivefold.groups import act_on_grid, cyclic, regular_field
from fivefold.ops import scatter
from fivefold.spheres import IcoClassifier, IcoGroupPool, IcoPool, sample_points
from fivefold.spheres import regular_field as ico_regular
from fivefold.train import fit

C4 = regular_field(cyclic(4), 1)
GRAPH = Graph(torch.tensor([[0], [1]]), 2)
BAD_OPTIONS = {
    "scatter reduce": lambda: scatter(torch.zeros(1), torch.zeros(1, dtype=torch.long), 1, "median"),
    "coalesce reduce": lambda: coalesce(GRAPH, "median"),
    "SAGEConv aggr": lambda: SAGEConv(2, 2, aggr="sum"),
    "edge input": lambda: edge_input("weights", None, GRAPH),
    "GroupConv2d basis": lambda: GroupConv2d(C4, C4, 3, basis="fourier"),
    "GroupPool mode": lambda: GroupPool(C4, "sum"),
    "act_on_grid field": lambda: act_on_grid(torch.zeros(1, 1, 3, 3), cyclic(4), 1, "vector"),
    "IcoPool mode": lambda: IcoPool(ico_regular(1), "sum"),
    "IcoGroupPool mode": lambda: IcoGroupPool(ico_regular(1), "sum"),
    "IcoClassifier readout": lambda: IcoClassifier(1, 2, 4, readout="sum"),
    "sample_points method": lambda: sample_points(torch.randn(3, 3), torch.randn(3), None, "cubic"),
    "fit schedule_every": lambda: fit(torch.nn.Linear(1, 1), [0], loss=None, optimiser=None, epochs=1,
                                      schedule_every="batch"),
}


@pytest.mark.parametrize("name", sorted(BAD_OPTIONS))
def test_option_errors_are_one_class_and_list_the_choices(name):
    with pytest.raises(OptionError, match=r"must be one of \(.+\), got '") as caught:
        BAD_OPTIONS[name]()
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, FivefoldError)


def test_check_option():
    check_option("max", ("max", "mean"), "mode", "here")
    with pytest.raises(OptionError, match=r"here: mode must be one of \('max', 'mean'\), got 'sum'"):
        check_option("sum", ("max", "mean"), "mode", "here")
