import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fivefold.errors import GraphError
from fivefold.graphs import (
    Batch,
    Graph,
    add_self_loops,
    coalesce,
    from_networkx,
    from_pyg,
    from_scipy,
    remove_self_loops,
    subgraph,
    to_networkx,
    to_pyg,
    to_scipy,
    to_undirected,
)


def _graph(**extra):
    edge_index = torch.tensor([[0, 1, 1, 2, 3], [1, 0, 2, 3, 3]])
    return Graph(edge_index, x=torch.randn(4, 3), **extra)


def test_basic_fields_and_inferred_num_nodes():
    g = Graph(torch.tensor([[0, 4], [1, 2]]))
    assert g.num_nodes == 5 and g.num_edges == 2
    g = _graph(y=torch.tensor([0, 1, 0, 1]))
    assert g.num_nodes == 4 and g.num_features == 3
    assert "num_edges=5" in repr(g)


def test_int32_edge_index_is_accepted_as_int64():
    g = Graph(torch.tensor([[0, 1], [1, 0]], dtype=torch.int32))
    assert g.edge_index.dtype == torch.long


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"edge_index": torch.tensor([[0, 5], [1, 0]]), "num_nodes": 3}, r"edge_index\[0, 1\] = 5 is out of range"),
        ({"edge_index": torch.tensor([[0, 1], [-2, 0]])}, r"edge_index\[1, 0\] = -2 is negative"),
        ({"edge_index": torch.tensor([[0.0, 1.0], [1.0, 0.0]])}, "integer dtype"),
        ({"edge_index": torch.tensor([0, 1, 2])}, "shape"),
        ({"edge_index": [[0, 1], [1, 0]]}, "torch.Tensor"),
        ({"edge_index": torch.tensor([[0, 1], [1, 0]]), "x": torch.randn(3, 2), "num_nodes": 2}, "x has 3 rows"),
        ({"edge_index": torch.tensor([[0, 1], [1, 0]]), "y": torch.tensor([0, 1, 1]), "num_nodes": 2}, "y has 3"),
        ({"edge_index": torch.tensor([[0, 1], [1, 0]]), "edge_attr": torch.randn(3, 2)}, "edge_attr has 3 rows"),
        ({"edge_index": torch.tensor([[0, 1], [1, 0]]), "x": torch.tensor([[1.0], [float("nan")]])},
         r"x\[1, 0\] = nan is not finite"),
        ({"edge_index": torch.tensor([[0, 1], [1, 0]]), "pos": torch.tensor([[1.0], [float("inf")]])},
         "pos.*not finite"),
        ({"edge_index": torch.tensor([[0, 1], [1, 0]]), "x": torch.ones(2, 2, dtype=torch.long)}, "floating"),
        ({"edge_index": torch.tensor([[0, 1], [1, 0]]), "train_mask": torch.tensor([1, 0])}, "bool"),
        ({"edge_index": torch.tensor([[0, 1], [1, 0]]), "num_nodes": -1}, "non-negative"),
    ],
)
def test_bad_graphs_raise_graph_error(kwargs, message):
    with pytest.raises(GraphError, match=message):
        Graph(**kwargs)
    assert issubclass(GraphError, ValueError)


def test_immutable_and_replace():
    g = _graph()
    with pytest.raises(GraphError, match="immutable"):
        g.x = torch.zeros(4, 3)
    h = g.replace(x=torch.zeros(4, 3))
    assert torch.equal(h.x, torch.zeros(4, 3)) and h.edge_index is g.edge_index
    with pytest.raises(GraphError, match="unknown"):
        g.replace(colour=1)


def test_csr_and_csc_views_are_cached_and_consistent():
    g = _graph()
    assert g.csr() is g.csr() and g.csc() is g.csc()
    csr, csc = g.csr(), g.csc()
    assert torch.equal(g.edge_index[0, csr.perm], csr.rows)
    assert torch.equal(g.edge_index[1, csr.perm], csr.indices)
    assert torch.equal(g.edge_index[1, csc.perm], csc.rows)
    assert torch.equal(g.edge_index[0, csc.perm], csc.indices)
    assert torch.equal(g.in_degree(), torch.tensor([1, 1, 1, 2]))
    assert torch.equal(g.out_degree(), torch.tensor([1, 2, 1, 1]))


def test_self_loops_coalesce_undirected():
    g = _graph(edge_attr=torch.arange(5.0).unsqueeze(-1))
    assert g.has_self_loops()
    no = remove_self_loops(g)
    assert not no.has_self_loops() and no.num_edges == 4
    loops = add_self_loops(g, fill_value=-1.0)
    assert loops.num_edges == 4 + 4 and loops.edge_attr[-4:].eq(-1).all()
    dup = Graph(torch.tensor([[0, 0, 1], [1, 1, 0]]), edge_attr=torch.tensor([1.0, 2.0, 3.0]))
    merged = coalesce(dup)
    assert merged.num_edges == 2 and torch.equal(merged.edge_attr, torch.tensor([3.0, 3.0]))
    und = to_undirected(Graph(torch.tensor([[0, 1], [1, 2]])))
    assert und.is_undirected() and und.num_edges == 4
    assert not Graph(torch.tensor([[0], [1]])).is_undirected()


def test_subgraph_relabels_and_slices():
    g = _graph(y=torch.tensor([5, 6, 7, 8]), edge_attr=torch.arange(5.0))
    s = subgraph(g, torch.tensor([1, 2, 3]))
    assert s.num_nodes == 3
    assert torch.equal(s.y, torch.tensor([6, 7, 8]))
    assert torch.equal(s.edge_index, torch.tensor([[0, 1, 2], [1, 2, 2]]))
    assert torch.equal(s.edge_attr, torch.tensor([2.0, 3.0, 4.0]))
    mask = torch.tensor([True, True, False, False])
    assert subgraph(g, mask).num_edges == 2
    with pytest.raises(GraphError):
        subgraph(g, torch.tensor([7]))


def test_batch_round_trip():
    graphs = [
        Graph(torch.tensor([[0, 1], [1, 2]]), x=torch.randn(3, 2), graph_y=torch.tensor(1),
              edge_attr=torch.randn(2, 4)),
        Graph(torch.empty(2, 0, dtype=torch.long), x=torch.randn(1, 2), graph_y=torch.tensor(0),
              edge_attr=torch.randn(0, 4)),
        Graph(torch.tensor([[1], [0]]), x=torch.randn(2, 2), graph_y=torch.tensor(1), edge_attr=torch.randn(1, 4)),
    ]
    batch = Batch.from_graphs(graphs)
    assert batch.num_graphs == 3 and batch.num_nodes == 6 and batch.num_edges == 3
    assert torch.equal(batch.batch, torch.tensor([0, 0, 0, 1, 2, 2]))
    assert torch.equal(batch.edge_index, torch.tensor([[0, 1, 5], [1, 2, 4]]))
    assert torch.equal(batch.graph_y, torch.tensor([1, 0, 1]))
    for original, back in zip(graphs, batch.to_graphs(), strict=True):
        assert torch.equal(original.edge_index, back.edge_index)
        assert torch.equal(original.x, back.x)
        assert torch.equal(original.edge_attr, back.edge_attr)
        assert torch.equal(original.graph_y, back.graph_y)
    assert isinstance(batch.to("cpu"), Batch)


def test_batch_rejects_mixed_fields_and_empty():
    with pytest.raises(GraphError, match="has no x"):
        Batch.from_graphs([_graph(), Graph(torch.tensor([[0], [1]]))])
    with pytest.raises(GraphError, match="empty"):
        Batch.from_graphs([])


def test_networkx_round_trip():
    g = _graph(y=torch.tensor([0, 1, 2, 3]))
    nxg = to_networkx(g)
    assert nxg.number_of_edges() == 5
    back = from_networkx(nxg)
    assert torch.equal(back.edge_index, g.edge_index)
    assert torch.equal(back.x, g.x) and torch.equal(back.y, g.y)
    karate = from_networkx(nx.karate_club_graph())
    assert karate.num_nodes == 34 and karate.num_edges == 2 * 78 and karate.is_undirected()


def test_scipy_round_trip():
    g = _graph()
    weights = torch.arange(1.0, 6.0)
    matrix = to_scipy(g, weights)
    assert matrix.shape == (4, 4) and matrix[1, 2] == 3.0
    back, w = from_scipy(matrix)
    assert back.num_edges == 5
    dense = np.zeros((4, 4))
    dense[back.edge_index[0].numpy(), back.edge_index[1].numpy()] = w.numpy()
    np.testing.assert_allclose(dense, matrix.toarray())
    with pytest.raises(GraphError):
        from_scipy(sp.random(3, 4, density=0.5))


def test_pyg_round_trip():
    pytest.importorskip("torch_geometric")
    g = _graph(y=torch.tensor([0, 1, 0, 1]))
    data = to_pyg(g)
    assert data.num_nodes == 4 and torch.equal(data.edge_index, g.edge_index)
    back = from_pyg(data)
    assert torch.equal(back.x, g.x) and torch.equal(back.y, g.y)
