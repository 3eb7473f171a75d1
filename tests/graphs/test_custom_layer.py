"""The README's "Writing your own layer" example runs, is permutation-equivariant, and reads edge inputs by the rule."""

import re
from pathlib import Path

import pytest
import torch
from torch import nn

from fivefold.errors import GraphError, OptionError
from fivefold.graphs import GCNConv, Graph, edge_input, permute_nodes

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_blocks() -> list[str]:
    section = README.read_text().split("## Writing your own layer", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_layer_and_its_equivariance_test_run():
    blocks = _readme_blocks()
    assert len(blocks) == 2
    namespace: dict = {}
    torch.manual_seed(0)
    exec(compile(blocks[0] + blocks[1], "README.md", "exec"), namespace)  # the README's own assert_equivariant call
    layer_class, graph = namespace["WeightedMaxConv"], namespace["graph"]
    layer = layer_class(4, 3).double()
    # the rule: the argument wins over graph.edge_weight; without either, plain max aggregation
    weights = torch.rand(graph.num_edges, dtype=torch.float64)
    explicit = layer(graph.x, graph, weights)
    torch.testing.assert_close(explicit, layer(graph.x, graph.replace(edge_weight=weights)))
    assert not torch.allclose(explicit, layer(graph.x, graph))
    # a layer that is not equivariant fails the README's check
    from fivefold.groups import SymmetricGroup
    from fivefold.testing import Action, assert_equivariant

    nodes = SymmetricGroup(graph.num_nodes)
    with pytest.raises(AssertionError, match="not equivariant"):
        assert_equivariant(lambda g: layer(g.x, g) + torch.arange(g.num_nodes, dtype=g.x.dtype)[:, None],
                           Action(nodes, permute_nodes), Action(nodes, lambda y, p: y[p]), graph, atol=1e-12)


def test_edge_inputs_follow_one_rule():
    torch.manual_seed(0)
    edge_index = torch.tensor([[0, 1, 2, 2], [1, 2, 0, 1]])
    weights = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=torch.float64)
    graph = Graph(edge_index, 3, x=torch.randn(3, 2, dtype=torch.float64), edge_weight=weights)
    plain = graph.replace(edge_weight=None)
    assert edge_input("edge_weight", None, graph) is weights and edge_input("edge_weight", None, plain) is None
    assert edge_input("edge_attr", None, graph) is None
    with pytest.raises(OptionError, match="one of"):
        edge_input("weights", None, graph)
    gcn = GCNConv(2, 2).double()
    torch.testing.assert_close(gcn(graph.x, graph), gcn(plain.x, plain, weights))  # the graph's weights are read
    torch.testing.assert_close(gcn(graph.x, graph, torch.ones(4, dtype=torch.float64)), gcn(plain.x, plain))


def test_edge_weight_is_a_validated_graph_field_that_transforms_carry():
    from fivefold.graphs import Batch, add_self_loops, coalesce, remove_self_loops, subgraph, to_scipy, to_undirected

    edge_index = torch.tensor([[0, 1, 1, 2], [1, 2, 2, 2]])
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0])
    graph = Graph(edge_index, 3, edge_weight=weights)
    with pytest.raises(GraphError, match="edge_weight"):
        Graph(edge_index, 3, edge_weight=torch.ones(3))
    with pytest.raises(GraphError, match=r"edge_weight must have shape \[E\]"):
        Graph(edge_index, 3, edge_weight=torch.ones(4, 2))
    with pytest.raises(GraphError, match="edge_weight"):
        Graph(edge_index, 3, edge_weight=torch.tensor([1.0, float("nan"), 1.0, 1.0]))
    assert torch.equal(remove_self_loops(graph).edge_weight, torch.tensor([1.0, 2.0, 3.0]))
    assert torch.equal(add_self_loops(graph, 0.5).edge_weight, torch.tensor([1.0, 2.0, 3.0, 0.5, 0.5, 0.5]))
    assert torch.equal(coalesce(graph).edge_weight, torch.tensor([1.0, 5.0, 4.0]))  # the duplicate 1 -> 2 adds up
    assert to_undirected(graph).edge_weight.shape == (to_undirected(graph).num_edges,)
    assert torch.equal(subgraph(graph, torch.tensor([1, 2])).edge_weight, torch.tensor([2.0, 3.0, 4.0]))
    assert to_scipy(graph).toarray()[1, 2] == 5.0
    batch = Batch.from_graphs([graph, graph])
    assert torch.equal(batch.edge_weight, torch.cat([weights, weights]))
    assert all(torch.equal(g.edge_weight, weights) for g in batch.to_graphs())


def test_permute_nodes_moves_every_node_field():
    graph = Graph(torch.tensor([[0, 1], [1, 2]]), 3, x=torch.arange(3.0)[:, None], y=torch.tensor([5, 6, 7]),
                  edge_weight=torch.tensor([1.0, 2.0]))
    perm = torch.tensor([2, 0, 1])
    moved = permute_nodes(graph, perm)
    assert torch.equal(moved.x[:, 0], torch.tensor([2.0, 0.0, 1.0])) and torch.equal(moved.y, torch.tensor([7, 5, 6]))
    assert torch.equal(moved.edge_index, torch.tensor([[1, 2], [2, 0]])) and torch.equal(moved.edge_weight,
                                                                                         graph.edge_weight)
    with pytest.raises(GraphError, match="permutation"):
        permute_nodes(graph, torch.tensor([0, 0, 1]))


def test_learned_edge_weights_on_the_graph_are_read_at_every_call():
    torch.manual_seed(0)
    weight = nn.Parameter(torch.ones(4))
    graph = Graph(torch.tensor([[0, 1, 2, 2], [1, 2, 0, 1]]), 3, x=torch.randn(3, 2), edge_weight=weight)
    gcn = GCNConv(2, 2)
    for _ in range(2):  # a second backward works: nothing built from the weights is cached
        gcn(graph.x, graph).sum().backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0
    with torch.no_grad():
        weight.mul_(3.0)
    torch.testing.assert_close(gcn(graph.x, graph), gcn(graph.x, graph, weight.detach()))


def test_converters_carry_edge_weight():
    pytest.importorskip("networkx")
    import scipy.sparse as sp

    from fivefold.graphs import from_networkx, from_scipy, to_networkx, to_scipy

    graph = Graph(torch.tensor([[0, 1], [1, 2]]), 3, edge_weight=torch.tensor([0.5, 2.0]))
    back = from_networkx(to_networkx(graph))
    assert torch.equal(back.edge_weight, graph.edge_weight)
    matrix = sp.csr_matrix(([0.5, 2.0], ([0, 1], [1, 2])), shape=(3, 3))
    again, weights = from_scipy(matrix)
    assert torch.equal(again.edge_weight, weights) and (to_scipy(again) != matrix).nnz == 0
