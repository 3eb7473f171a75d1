import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from fivefold.errors import GraphError
from fivefold.graphs import (
    Batch,
    GINGraphClassifier,
    GlobalAttentionPool,
    Graph,
    global_max_pool,
    global_mean_pool,
    global_sum_pool,
)

torch.manual_seed(0)
ATTENTION = GlobalAttentionPool(nn.Linear(4, 1), nn.Linear(4, 3)).double()
CLASSIFIER = GINGraphClassifier(4, 3, hidden=8, num_layers=3).double().eval()
READOUTS = {
    "sum": global_sum_pool, "mean": global_mean_pool, "max": global_max_pool, "attention": ATTENTION,
    "gin_classifier": CLASSIFIER,
}


def _graph(num_nodes, seed):
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, 3 * num_nodes), generator=g)
    return Graph(edge_index, num_nodes, x=torch.randn(num_nodes, 4, generator=g, dtype=torch.float64))


def _permuted(graph, perm):
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(len(perm))
    return Graph(inverse[graph.edge_index], graph.num_nodes, x=graph.x[perm])


@pytest.mark.parametrize("name", sorted(READOUTS))
@settings(max_examples=10, deadline=None)
@given(sizes=st.lists(st.integers(1, 8), min_size=1, max_size=4), seed=st.integers(0, 10**6))
def test_readouts_are_permutation_invariant_per_graph(name, sizes, seed):
    readout = READOUTS[name]
    graphs = [_graph(n, seed + i) for i, n in enumerate(sizes)]
    perms = [torch.randperm(n, generator=torch.Generator().manual_seed(seed + i)) for i, n in enumerate(sizes)]
    batch = Batch.from_graphs(graphs)
    shuffled = Batch.from_graphs([_permuted(g, p) for g, p in zip(graphs, perms, strict=True)])
    with torch.no_grad():
        out, out_shuffled = readout(batch.x, batch), readout(shuffled.x, shuffled)
    assert out.shape[0] == len(graphs)
    torch.testing.assert_close(out, out_shuffled)
    # batching does not mix graphs: each row equals the readout of that graph alone
    with torch.no_grad():
        for i, g in enumerate(graphs):
            torch.testing.assert_close(out[i:i + 1], readout(g.x, g))


def test_pool_values():
    batch = Batch.from_graphs([Graph(torch.empty(2, 0, dtype=torch.long), x=torch.tensor([[1.0], [3.0]])),
                               Graph(torch.empty(2, 0, dtype=torch.long), x=torch.tensor([[-2.0]]))])
    assert torch.equal(global_sum_pool(batch.x, batch), torch.tensor([[4.0], [-2.0]]))
    assert torch.equal(global_mean_pool(batch.x, batch), torch.tensor([[2.0], [-2.0]]))
    assert torch.equal(global_max_pool(batch.x, batch), torch.tensor([[3.0], [-2.0]]))


def test_attention_readout_gradients():
    batch = Batch.from_graphs([_graph(3, 0), _graph(5, 1)])
    x = batch.x.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda inp: ATTENTION(inp, batch), (x,))


def test_readout_rejects_wrong_rows():
    batch = Batch.from_graphs([_graph(3, 0)])
    with pytest.raises(GraphError):
        global_sum_pool(torch.randn(4, 4), batch)
