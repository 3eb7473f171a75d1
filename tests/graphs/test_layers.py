"""Every layer: equals its published definition (slow loop reference, float64), equals torch_geometric's layer of
the same name with the same weights, is permutation-equivariant, passes gradients, and rejects bad input."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from fivefold.errors import GraphError, OptionError
from fivefold.graphs import EdgeConv, GATConv, GCNConv, GINConv, GINEConv, Graph, NNConv, SAGEConv
from fivefold.groups import SymmetricGroup
from fivefold.testing import Action, assert_close, assert_equivariant

F_IN, F_OUT, EDGE_DIM = 5, 4, 3


def random_graph(num_nodes, num_edges, seed, self_loops=True):
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=g)
    if not self_loops:
        edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    x = torch.randn(num_nodes, F_IN, generator=g, dtype=torch.float64)
    edge_attr = torch.randn(edge_index.shape[1], EDGE_DIM, generator=g, dtype=torch.float64)
    return Graph(edge_index, num_nodes, x=x, edge_attr=edge_attr)


def make_layers():
    torch.manual_seed(0)
    return {
        "gcn": GCNConv(F_IN, F_OUT),
        "gcn_improved": GCNConv(F_IN, F_OUT, improved=True),
        "sage_mean": SAGEConv(F_IN, F_OUT),
        "sage_mean_narrow": SAGEConv(F_IN, 2),
        "sage_max": SAGEConv(F_IN, F_OUT, aggr="max"),
        "gat": GATConv(F_IN, F_OUT, heads=3),
        "gat_mean": GATConv(F_IN, F_OUT, heads=2, concat=False),
        "gin": GINConv(nn.Sequential(nn.Linear(F_IN, 8), nn.ReLU(), nn.Linear(8, F_OUT)), train_eps=True),
        "gine": GINEConv(nn.Linear(F_IN, F_OUT), edge_dim=EDGE_DIM, in_channels=F_IN, train_eps=True),
        "edge": EdgeConv(nn.Sequential(nn.Linear(2 * F_IN, 6), nn.ReLU(), nn.Linear(6, F_OUT))),
        "nnconv": NNConv(F_IN, F_OUT, nn.Linear(EDGE_DIM, F_IN * F_OUT)),
    }


LAYERS = make_layers()


def run(layer, x, graph):
    return layer.double()(x, graph)


# ----- slow references: the published update rules, looping over nodes -------------------------------------------
def incoming(graph, i):
    return (graph.edge_index[1] == i).nonzero().flatten()


def ref_gcn(layer, x, graph):
    """A + diag(d): d_i = s, or 1 where node i already has a self-loop (torch_geometric's convention)."""
    s = layer.self_loop_weight
    keep = graph.edge_index[0] != graph.edge_index[1]
    src, dst = graph.edge_index[:, keep]
    diag = torch.full((graph.num_nodes,), s, dtype=x.dtype)
    diag[graph.edge_index[0, ~keep]] = 1.0
    deg = diag.index_add(0, dst, torch.ones(len(dst), dtype=x.dtype))
    h = x @ layer.lin.weight.t()
    out = torch.zeros(graph.num_nodes, h.shape[1], dtype=x.dtype)
    for i in range(graph.num_nodes):
        out[i] += diag[i] * h[i] / deg[i]
        for j in src[dst == i]:
            out[i] += h[j] / (deg[i].sqrt() * deg[j].sqrt())
    return out + layer.bias


def ref_sage(layer, x, graph):
    out = []
    for i in range(graph.num_nodes):
        nbrs = graph.edge_index[0, incoming(graph, i)]
        if len(nbrs) == 0:
            agg = torch.zeros(x.shape[1], dtype=x.dtype)
        else:
            agg = x[nbrs].mean(0) if layer.aggr == "mean" else x[nbrs].max(0).values
        out.append(layer.lin_neighbors(agg) + layer.lin_root(x[i]))
    return torch.stack(out)


def ref_gat(layer, x, graph):
    H, C = layer.heads, layer.out_channels
    h = (x @ layer.lin.weight.t()).view(-1, H, C)
    out = torch.zeros(graph.num_nodes, H, C, dtype=x.dtype)
    for i in range(graph.num_nodes):
        src = graph.edge_index[0, incoming(graph, i)]
        src = torch.cat([src[src != i], torch.tensor([i])])  # remove existing loops, add one
        for k in range(H):
            e = nn.functional.leaky_relu(h[src, k] @ layer.att_src[0, k] + h[i, k] @ layer.att_dst[0, k], 0.2)
            alpha = torch.softmax(e, 0)
            out[i, k] = (alpha.unsqueeze(-1) * h[src, k]).sum(0)
    out = out.reshape(graph.num_nodes, H * C) if layer.concat else out.mean(1)
    return out + layer.bias


def ref_gin(layer, x, graph):
    agg = torch.stack([x[graph.edge_index[0, incoming(graph, i)]].sum(0) for i in range(graph.num_nodes)])
    return layer.mlp((1 + layer.eps) * x + agg)


def ref_gine(layer, x, graph):
    e = layer.lin_edge(graph.edge_attr)
    rows = []
    for i in range(graph.num_nodes):
        ids = incoming(graph, i)
        rows.append(torch.relu(x[graph.edge_index[0, ids]] + e[ids]).sum(0))
    return layer.mlp((1 + layer.eps) * x + torch.stack(rows))


def ref_edge(layer, x, graph):
    out = torch.zeros(graph.num_nodes, F_OUT, dtype=x.dtype)
    for i in range(graph.num_nodes):
        src = graph.edge_index[0, incoming(graph, i)]
        if len(src):
            out[i] = layer.mlp(torch.cat([x[i].expand(len(src), -1), x[src] - x[i]], -1)).max(0).values
    return out


def ref_nnconv(layer, x, graph):
    out = x @ layer.lin_root.weight.t() + layer.bias
    for e in range(graph.num_edges):
        j, i = graph.edge_index[:, e]
        theta = layer.edge_network(graph.edge_attr[e]).view(F_IN, F_OUT)
        out[i] = out[i] + x[j] @ theta
    return out


REFERENCES = {
    "gcn": ref_gcn, "gcn_improved": ref_gcn, "sage_mean": ref_sage, "sage_mean_narrow": ref_sage,
    "sage_max": ref_sage, "gat": ref_gat, "gat_mean": ref_gat, "gin": ref_gin, "gine": ref_gine,
    "edge": ref_edge, "nnconv": ref_nnconv,
}


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_published_definition(name, seed):
    graph = random_graph(9, 30, seed)
    layer = LAYERS[name]
    with torch.no_grad():
        torch.testing.assert_close(run(layer, graph.x, graph), REFERENCES[name](layer, graph.x, graph))


# ----- permutation equivariance -----------------------------------------------------------------------------------
def permute(graph, perm):
    """Relabel node ``perm[k]`` as ``k``; edges are also shuffled to test order independence."""
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(len(perm))
    edge_order = torch.randperm(graph.num_edges, generator=torch.Generator().manual_seed(len(perm)))
    return Graph(inverse[graph.edge_index[:, edge_order]], graph.num_nodes, x=graph.x[perm],
                 edge_attr=graph.edge_attr[edge_order])


@pytest.mark.parametrize("name", sorted(LAYERS))
@settings(max_examples=10, deadline=None)
@given(num_nodes=st.integers(1, 12), num_edges=st.integers(0, 40), seed=st.integers(0, 10**6))
def test_permutation_equivariance(name, num_nodes, num_edges, seed):
    graph = random_graph(num_nodes, num_edges, seed)
    layer = LAYERS[name]
    nodes = SymmetricGroup(num_nodes)
    assert_equivariant(lambda g: run(layer, g.x, g), Action(nodes, permute, "relabelling"),
                       Action(nodes, lambda y, perm: y[perm], "relabelling"), graph, samples=3, atol=1e-10,
                       generator=torch.Generator().manual_seed(seed))


# ----- gradients ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_gradients_reach_inputs_and_parameters(name):
    graph = random_graph(6, 14, 3)
    layer = LAYERS[name].double()
    x = graph.x.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda inp: layer(inp, graph), (x,))
    layer.zero_grad()
    layer(x, graph).square().sum().backward()
    for pname, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname


# ----- agreement with torch_geometric -------------------------------------------------------------------------------
def pyg_pair(name):
    pyg = pytest.importorskip("torch_geometric.nn")
    ours = LAYERS[name]
    if name == "gcn":
        theirs = pyg.GCNConv(F_IN, F_OUT)
        theirs.lin.weight.data.copy_(ours.lin.weight)
        theirs.bias.data.copy_(ours.bias)
    elif name == "sage_mean" or name == "sage_max":
        theirs = pyg.SAGEConv(F_IN, F_OUT, aggr=ours.aggr)
        theirs.lin_l.weight.data.copy_(ours.lin_neighbors.weight)
        theirs.lin_l.bias.data.copy_(ours.lin_neighbors.bias)
        theirs.lin_r.weight.data.copy_(ours.lin_root.weight)
    elif name == "gat":
        theirs = pyg.GATConv(F_IN, F_OUT, heads=3)
        theirs.lin.weight.data.copy_(ours.lin.weight)
        theirs.att_src.data.copy_(ours.att_src)
        theirs.att_dst.data.copy_(ours.att_dst)
        theirs.bias.data.copy_(ours.bias)
    elif name == "gin":
        theirs = pyg.GINConv(ours.mlp, train_eps=True)
        theirs.eps.data.copy_(ours.eps)
    elif name == "gine":
        theirs = pyg.GINEConv(ours.mlp, train_eps=True, edge_dim=EDGE_DIM)
        theirs.eps.data.copy_(ours.eps)
        theirs.lin.load_state_dict(ours.lin_edge.state_dict())
    elif name == "edge":
        theirs = pyg.EdgeConv(ours.mlp, aggr="max")
    elif name == "nnconv":
        theirs = pyg.NNConv(F_IN, F_OUT, ours.edge_network, aggr="add")
        theirs.lin.weight.data.copy_(ours.lin_root.weight)
        theirs.bias.data.copy_(ours.bias)
    return ours, theirs


@pytest.mark.float32
@pytest.mark.parametrize("name", ["gcn", "sage_mean", "sage_max", "gat", "gin", "gine", "edge", "nnconv"])
def test_matches_torch_geometric_float32(name):
    ours, theirs = pyg_pair(name)
    ours, theirs = ours.float(), theirs.float()
    graph = random_graph(50, 300, 7)
    x = graph.x.float()
    ea = graph.edge_attr.float()
    with torch.no_grad():
        mine = ours(x, graph, ea) if name in ("gine", "nnconv") else ours(x, graph)
        if name in ("gine", "nnconv"):
            peer = theirs(x, graph.edge_index, ea)
        else:
            peer = theirs(x, graph.edge_index)
    # float rule: each output sums (largest in-degree + 1) neighbours' messages, each a product over <= 8 channels
    max_in_degree = int(torch.bincount(graph.edge_index[1], minlength=graph.num_nodes).max())
    assert_close(mine, peer, terms=8 * (max_in_degree + 1))


# ----- bad input ----------------------------------------------------------------------------------------------------
def test_layers_reject_bad_features():
    graph = random_graph(5, 8, 0)
    layer = GCNConv(F_IN, F_OUT).double()
    with pytest.raises(GraphError, match="shape"):
        layer(torch.randn(4, F_IN, dtype=torch.float64), graph)
    with pytest.raises(GraphError, match="features but the layer expects"):
        layer(torch.randn(5, F_IN + 1, dtype=torch.float64), graph)
    with pytest.raises(GraphError, match="floating"):
        layer(torch.ones(5, F_IN, dtype=torch.long), graph)
    with pytest.raises(GraphError, match="Graph"):
        layer(graph.x, graph.edge_index)
    with pytest.raises(GraphError, match="edge_weight"):
        layer(graph.x, graph, edge_weight=torch.ones(3))
    nn_layer = NNConv(F_IN, F_OUT, nn.Linear(EDGE_DIM, 7)).double()
    with pytest.raises(GraphError, match="edge_network"):
        nn_layer(graph.x, graph)
    plain = Graph(graph.edge_index, 5, x=graph.x)
    with pytest.raises(GraphError, match="edge features"):
        LAYERS["gine"].double()(plain.x, plain)
    with pytest.raises(OptionError, match=r"aggr must be one of \('mean', 'max'\), got 'median'"):
        SAGEConv(3, 3, aggr="median")


def test_gcn_edge_weight_matches_scaled_graph():
    graph = random_graph(8, 20, 5, self_loops=False)
    layer = GCNConv(F_IN, F_OUT).double()
    ones = layer(graph.x, graph, torch.ones(graph.num_edges, dtype=torch.float64))
    torch.testing.assert_close(ones, layer(graph.x, graph))


@pytest.mark.parametrize("options", [{"improved": True}, {"add_self_loops": False}, {}])
def test_gcn_self_loop_conventions_match_torch_geometric(options):
    pyg = pytest.importorskip("torch_geometric.nn")
    graph = random_graph(30, 120, 11)  # has self-loops
    assert graph.has_self_loops()
    ours = GCNConv(F_IN, F_OUT, **options).double()
    theirs = pyg.GCNConv(F_IN, F_OUT, **options).double()
    theirs.lin.weight.data.copy_(ours.lin.weight)
    theirs.bias.data.copy_(ours.bias)
    weight = torch.rand(graph.num_edges, dtype=torch.float64)
    with torch.no_grad():
        if not options.get("improved"):
            # torch_geometric ignores improved=True when no edge weights are given (its fill value only applies to
            # given weights); fivefold follows the definition A + 2I in both cases
            torch.testing.assert_close(ours(graph.x, graph), theirs(graph.x, graph.edge_index))
        torch.testing.assert_close(ours(graph.x, graph, weight), theirs(graph.x, graph.edge_index, weight))


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layers_run_on_a_batch_like_on_each_graph(name):
    from fivefold.graphs import Batch

    graphs = [random_graph(5, 12, 20), random_graph(7, 15, 21)]
    batch = Batch.from_graphs(graphs)
    layer = LAYERS[name].double().eval()
    with torch.no_grad():
        out = run(layer, batch.x, batch)
        expected = torch.cat([run(layer, g.x, g) for g in graphs])
    torch.testing.assert_close(out, expected)


def test_gat_value_dropout_only_in_training():
    torch.manual_seed(0)
    graph = Graph(torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]]), num_nodes=4)
    x = torch.randn(4, 5)
    plain = GATConv(5, 3, heads=2)
    dropped = GATConv(5, 3, heads=2, value_dropout=0.5)
    dropped.load_state_dict(plain.state_dict())
    plain.eval()
    dropped.eval()
    torch.testing.assert_close(dropped(x, graph), plain(x, graph))
    dropped.train()
    assert not torch.allclose(dropped(x, graph), plain(x, graph))
