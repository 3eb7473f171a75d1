"""Layer-wise inference equals the full-graph forward pass, for every node or a subset, from a graph or a store."""

import numpy as np
import pytest
import torch

from fivefold.errors import GraphError, OptionError
from fivefold.graphs import GAT, GCN, GIN, Graph, GraphSAGE
from fivefold.scale import inference as inference_module
from fivefold.scale import layerwise_inference, write_store


def graph_with_loops(nodes: int = 70, edges: int = 400, seed: int = 0) -> Graph:
    generator = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, nodes, (2, edges), generator=generator)
    edge_index[:, :5] = torch.arange(5).repeat(2, 1)  # a few self-loops, which GCN's normalisation treats apart
    return Graph(edge_index, nodes, x=torch.randn(nodes, 6, generator=generator, dtype=torch.float64))


@pytest.mark.parametrize("make", [lambda: GraphSAGE(6, 3, hidden=8), lambda: GCN(6, 3, hidden=8),
                                  lambda: GAT(6, 3, hidden=4, heads=2), lambda: GIN(6, 3, hidden=8)])
def test_layerwise_equals_the_full_graph_forward(make, tmp_path, monkeypatch):
    torch.manual_seed(0)
    graph = graph_with_loops()
    model = make().double()
    model.train()
    model.eval()
    expected = model(graph.x, graph)
    model.train()
    everything = layerwise_inference(model, graph, chunk_size=16)
    assert model.training  # left as it was
    torch.testing.assert_close(everything, expected, rtol=0, atol=1e-10)
    subset = torch.tensor([5, 60, 2, 33])
    torch.testing.assert_close(layerwise_inference(model, graph, subset, chunk_size=3), expected[subset], rtol=0,
                               atol=1e-10)
    monkeypatch.setattr(inference_module, "_IN_MEMORY_BYTES", 0)  # hidden layer memory-mapped in tmp_path
    store = write_store(tmp_path / "g", graph)
    from_store = layerwise_inference(model, store, subset, chunk_size=7, workdir=tmp_path)
    x32 = torch.from_numpy(np.array(store.features)).double()
    model.eval()
    torch.testing.assert_close(from_store, model(x32, graph)[subset], rtol=0, atol=1e-10)
    assert [p.name for p in tmp_path.iterdir()] == ["g"]  # the scratch folder is gone


def test_bad_arguments_are_refused():
    graph = graph_with_loops()
    model = GraphSAGE(6, 3).double()
    with pytest.raises(GraphError, match="stages"):
        layerwise_inference(torch.nn.Linear(6, 3), graph)
    with pytest.raises(OptionError, match="chunk_size"):
        layerwise_inference(model, graph, chunk_size=0)
    with pytest.raises(GraphError, match="distinct"):
        layerwise_inference(model, graph, [1, 1])
    with pytest.raises(GraphError, match="lie in"):
        layerwise_inference(model, graph, [70])
    with pytest.raises(GraphError, match="features"):
        layerwise_inference(model, Graph(graph.edge_index, 70))
