"""Blocks and the neighbour sampler: full fan-out equals the full graph for every layer (float64), sampled edges are
real edges, fan-outs are respected, sampling is reproducible, uniform and independent of the thread count."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fivefold.errors import GraphError, OptionError
from fivefold.graphs import Block, GATConv, GCNConv, GINConv, Graph, SAGEConv, to_undirected
from fivefold.scale import NeighborSampler

LAYERS = {
    "gcn": lambda: GCNConv(6, 5),
    "gcn-improved": lambda: GCNConv(6, 5, improved=True),
    "gcn-no-loops": lambda: GCNConv(6, 5, add_self_loops=False),
    "sage-mean": lambda: SAGEConv(6, 5),
    "sage-max": lambda: SAGEConv(6, 5, aggr="max"),
    "gat": lambda: GATConv(6, 3, heads=2),
    "gin": lambda: GINConv(torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 5))),
}
WIDTH = {"gat": 6}


def random_graph(seed: int, nodes: int = 40, edges: int = 160, undirected: bool = True) -> Graph:
    generator = torch.Generator().manual_seed(seed)
    graph = Graph(torch.randint(0, nodes, (2, edges), generator=generator), nodes)
    return to_undirected(graph) if undirected else graph


def two_layers(name: str):
    torch.manual_seed(0)
    first = LAYERS[name]().double()
    width = WIDTH.get(name, 5)
    second = (GATConv(width, 4) if name == "gat" else GCNConv(width, 4) if name.startswith("gcn") else
              SAGEConv(width, 4) if name.startswith("sage") else GINConv(torch.nn.Linear(width, 4))).double()
    return first, second


@pytest.mark.parametrize("name", sorted(LAYERS))
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), undirected=st.booleans(), fan_all=st.booleans())
def test_full_fanout_blocks_equal_the_full_graph(name, seed, undirected, fan_all):
    graph = random_graph(seed, undirected=undirected)
    x = torch.randn(graph.num_nodes, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    first, second = two_layers(name)
    seeds = torch.randperm(graph.num_nodes, generator=torch.Generator().manual_seed(seed))[:7]
    fanout = -1 if fan_all else int(graph.in_degree().max())
    input_nodes, blocks = NeighborSampler(graph, [fanout, fanout], seed=seed).sample(seeds)
    full = second(torch.relu(first(x, graph)), graph)[seeds]
    mini = second(torch.relu(first(x[input_nodes], blocks[0])), blocks[1])
    torch.testing.assert_close(mini, full, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_block_layers_ignore_how_extra_sources_are_numbered(name):
    """Permutation equivariance on a block: renumbering the sources that are not destinations changes nothing."""
    graph = random_graph(3)
    input_nodes, blocks = NeighborSampler(graph, [4], seed=1).sample(torch.tensor([0, 5, 9]))
    block = blocks[0]
    x = torch.randn(block.num_src, 6, dtype=torch.float64)
    perm = torch.cat([torch.arange(block.num_dst), block.num_dst + torch.randperm(block.num_src - block.num_dst)])
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(len(perm))
    moved = Block(type(block.csc)(block.csc.indptr, inverse[block.csc.indices], block.csc.perm, block.num_src),
                  block.num_src, block.num_dst, src_degree=block.src_degree[perm], src_loops=block.src_loops[perm])
    layer = LAYERS[name]().double()
    torch.testing.assert_close(layer(x[perm], moved), layer(x, block), rtol=0, atol=1e-12)


def test_sampled_edges_are_edges_and_fanouts_hold():
    graph = random_graph(7, nodes=200, edges=2000, undirected=False)
    edges = set(zip(*graph.edge_index.tolist(), strict=True))
    degree = graph.in_degree()
    for replace in (False, True):
        sampler = NeighborSampler(graph, [5, 3], replace=replace, seed=11)
        _, blocks = sampler.sample(torch.arange(0, 200, 9))
        for block, fanout in zip(blocks, [3, 5], strict=True):
            ids = block.src_ids
            dst, src = ids[block.csc.rows], ids[block.csc.indices]
            assert all((int(s), int(d)) in edges for s, d in zip(src, dst, strict=True))
            counts = block.in_degree()
            full = degree[ids[: block.num_dst]]
            expected = torch.where(full == 0, 0, fanout) if replace else torch.minimum(full, torch.tensor(fanout))
            assert torch.equal(counts, expected)
            if not replace:  # no edge position drawn twice: pairs repeat only as often as the graph repeats them
                pairs = list(zip(dst.tolist(), src.tolist(), strict=True))
                multiplicity = {}
                for s, d in zip(*graph.edge_index.tolist(), strict=True):
                    multiplicity[(d, s)] = multiplicity.get((d, s), 0) + 1
                assert all(pairs.count(p) <= multiplicity[p] for p in set(pairs))
        assert torch.equal(blocks[-1].src_ids[: blocks[-1].num_dst], torch.arange(0, 200, 9))
        loops = torch.bincount(graph.edge_index[1][graph.edge_index[0] == graph.edge_index[1]], minlength=200)
        assert torch.equal(blocks[0].src_degree, (degree - loops)[blocks[0].src_ids])
        assert torch.equal(blocks[0].src_loops, loops[blocks[0].src_ids])


def test_reproducible_and_seed_dependent():
    graph = random_graph(5, nodes=300, edges=3000)

    def draw(seed):
        sampler = NeighborSampler(graph, [4, 4], seed=seed)
        return [sampler.sample(torch.arange(20))[1][0].src_ids.tolist() for _ in range(3)]

    assert draw(1) == draw(1)
    assert draw(1) != draw(2)
    first = draw(1)
    assert first[0] != first[1]  # successive calls draw afresh


def test_sampling_is_uniform_on_a_star():
    """Chi-square: the 20 leaves of a star are drawn equally often (5 of 20 per call, 2,000 calls)."""
    from scipy.stats import chisquare

    leaves = torch.arange(1, 21)
    graph = Graph(torch.stack([leaves, torch.zeros(20, dtype=torch.long)]), 21)
    sampler = NeighborSampler(graph, [5], seed=0)
    counts = np.zeros(21)
    for _ in range(2000):
        _, (block,) = sampler.sample(torch.tensor([0]))
        picked = block.src_ids[block.csc.indices].numpy()
        assert len(set(picked.tolist())) == 5
        counts += np.bincount(picked, minlength=21)
    assert counts[0] == 0 and counts.sum() == 10_000
    assert chisquare(counts[1:]).pvalue > 1e-3
    with_replacement = NeighborSampler(graph, [5], replace=True, seed=0)
    draws = np.concatenate([with_replacement.sample(torch.tensor([0]))[1][0].src_ids[1:].numpy()
                            for _ in range(500)])
    assert chisquare(np.bincount(draws, minlength=21)[1:]).pvalue > 1e-3


def test_same_blocks_with_one_or_two_threads():
    code = ("import torch; from fivefold.graphs import Graph; from fivefold.scale import NeighborSampler;"
            "g = Graph(torch.randint(0, 5000, (2, 60000), generator=torch.Generator().manual_seed(0)), 5000);"
            "_, b = NeighborSampler(g, [10, 5], seed=3).sample(torch.arange(0, 5000, 7));"
            "print(sum(int(x.src_ids.sum()) * 31 + int(x.csc.indices.sum()) for x in b))")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                              env={"NUMBA_NUM_THREADS": threads, "PATH": "/usr/bin:/bin"}).stdout.strip()
               for threads in ("1", "2")}
    assert len(outputs) == 1 and outputs != {""}


def test_bad_input_is_refused():
    graph = random_graph(1)
    with pytest.raises(OptionError, match="fanouts must be"):
        NeighborSampler(graph, [])
    with pytest.raises(OptionError, match="fanouts must be"):
        NeighborSampler(graph, [0])
    with pytest.raises(OptionError, match="seed must be"):
        NeighborSampler(graph, [2], seed=-1)
    sampler = NeighborSampler(graph, [2])
    with pytest.raises(GraphError, match="seed node 40 is out of range"):
        sampler.sample(torch.tensor([1, 40]))
    with pytest.raises(GraphError, match="distinct"):
        sampler.sample(torch.tensor([1, 1]))
    with pytest.raises(GraphError, match="Graph or a store"):
        NeighborSampler(object(), [2])


def test_block_checks_and_gcn_needs_degrees():
    block = Block.from_edges(torch.tensor([2, 3]), torch.tensor([0, 1]), 4, 2)
    assert (block.num_src, block.num_dst, block.num_edges) == (4, 2, 2)
    with pytest.raises(GraphError, match="needs the whole graph's degrees"):
        GCNConv(3, 2)(torch.randn(4, 3), block)
    with pytest.raises(GraphError, match=r"must have shape \[4, F\] for this block"):
        SAGEConv(3, 2)(torch.randn(2, 3), block)
    with pytest.raises(GraphError, match="must not exceed num_src"):
        Block(block.csc, 1, 2)
    with pytest.raises(GraphError, match="src_degree must be an int64 tensor of shape"):
        Block(block.csc, 4, 2, src_degree=torch.ones(3, dtype=torch.long))
    with pytest.raises(AttributeError):
        block.num_src = 5
    assert SAGEConv(3, 2)(torch.randn(4, 3), block).shape == (2, 2)


@pytest.mark.parametrize("id_dtype", [np.int32, np.int64])
def test_relabel_matches_a_dictionary_even_with_many_collisions(id_dtype):
    """The hash-table relabelling gives the ids a dict gives (frontier first, then first appearance), also when the
    ids collide a lot (multiples of the table size) and when the table is barely large enough."""
    from fivefold.scale import _kernels

    rng = np.random.default_rng(0)
    cases = [(rng.permutation(1000)[:37], rng.integers(0, 1000, 500)),
             (np.arange(5) * 4096, np.concatenate([np.arange(40) * 4096, np.arange(5) * 4096])),  # same low bits
             (np.array([], dtype=np.int64), rng.integers(0, 3, 50)), (np.array([7]), np.array([], dtype=np.int64))]
    for frontier, picks in cases:
        frontier, picks = frontier.astype(np.int64), picks.astype(np.int64)
        ids: dict[int, int] = {}
        for node in [*frontier.tolist(), *picks.tolist()]:
            ids.setdefault(node, len(ids))
        table = np.full((_kernels.table_capacity(len(frontier) + len(picks)), 2), -1, dtype=id_dtype)
        sources, local = _kernels.relabel(frontier, picks, table)
        assert sources.tolist() == list(ids) and local.tolist() == [ids[p] for p in picks.tolist()]


def test_sampling_without_degrees_gives_the_same_blocks():
    graph = random_graph(3)
    with_degrees = NeighborSampler(graph, [4, 3], seed=2).sample([1, 2, 3])
    without = NeighborSampler(graph, [4, 3], seed=2, degrees=False).sample([1, 2, 3])
    assert torch.equal(with_degrees[0], without[0])
    for a, b in zip(with_degrees[1], without[1], strict=True):
        assert torch.equal(a.csc.indices, b.csc.indices) and b.src_degree is None and b.src_loops is None
    with pytest.raises(GraphError, match="degrees=False"):
        GCNConv(1, 1)(torch.ones(without[1][0].num_src, 1), without[1][0])
