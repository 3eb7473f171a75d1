"""NeighborLoader: every seed once per epoch, reproducible shuffles, the right features and labels from a graph or a
store, prefetching that changes nothing, errors raised in the caller, and a model trained through it."""

import threading

import numpy as np
import pytest
import torch

from fivefold.errors import GraphError, OptionError
from fivefold.graphs import Graph, GraphSAGE, to_undirected
from fivefold.scale import NeighborLoader, write_store
from fivefold.train import fit_node_classifier_minibatch


def labelled_graph(nodes: int = 120, seed: int = 0) -> Graph:
    generator = torch.Generator().manual_seed(seed)
    edges = torch.randint(0, nodes, (2, 6 * nodes), generator=generator)
    split = torch.rand(nodes, generator=generator)
    return to_undirected(Graph(edges, nodes, x=torch.randn(nodes, 8, generator=generator),
                               y=torch.randint(0, 3, (nodes,), generator=generator), train_mask=split < 0.6,
                               val_mask=(split >= 0.6) & (split < 0.8), test_mask=split >= 0.8))


def test_every_seed_once_per_epoch_and_reproducible():
    graph = labelled_graph()
    loader = NeighborLoader(graph, graph.train_mask, [4, 3], batch_size=16, seed=2)
    epochs = [[batch.seeds.tolist() for batch in loader] for _ in range(2)]
    expected = sorted(torch.nonzero(graph.train_mask).view(-1).tolist())
    for batches in epochs:
        assert sorted(sum(batches, [])) == expected and len(batches) == len(loader)
        assert all(len(b) == 16 for b in batches[:-1])
    assert epochs[0] != epochs[1]  # reshuffled
    again = NeighborLoader(graph, graph.train_mask, [4, 3], batch_size=16, seed=2)
    assert [[b.seeds.tolist() for b in again] for _ in range(2)] == epochs
    assert len(NeighborLoader(graph, graph.train_mask, [4], batch_size=16, drop_last=True)) == len(expected) // 16


@pytest.mark.parametrize("prefetch", [0, 2])
def test_features_and_labels_from_graph_and_store(tmp_path, prefetch):
    graph = labelled_graph()
    store = write_store(tmp_path / "g", graph)
    for source in (graph, store):
        for batch in NeighborLoader(source, np.arange(0, 120, 5), [5, 5], batch_size=7, prefetch=prefetch):
            assert torch.equal(batch.x, graph.x[batch.input_nodes])
            assert torch.equal(batch.y, graph.y[batch.seeds])
            assert torch.equal(batch.blocks[-1].src_ids[: len(batch.seeds)], batch.seeds)


def test_prefetch_changes_nothing():
    graph = labelled_graph()

    def batches(prefetch):
        loader = NeighborLoader(graph, graph.train_mask, [4, 3], batch_size=10, seed=1, prefetch=prefetch)
        return [(b.seeds.tolist(), b.input_nodes.tolist()) for b in loader]

    assert batches(0) == batches(1) == batches(3)


def test_errors_reach_the_caller_and_early_exit_does_not_hang(monkeypatch):
    graph = labelled_graph()
    loader = NeighborLoader(graph, graph.train_mask, [4], batch_size=8, prefetch=2)
    before = threading.active_count()
    for _ in loader:
        break
    assert threading.active_count() <= before + 1
    monkeypatch.setattr(loader.sampler, "sample", lambda seeds: (_ for _ in ()).throw(RuntimeError("disk gone")))
    with pytest.raises(RuntimeError, match="disk gone"):
        list(loader)
    with pytest.raises(OptionError, match="batch_size must be"):
        NeighborLoader(graph, graph.train_mask, [4], batch_size=0)
    with pytest.raises(GraphError, match="seed mask must have shape"):
        NeighborLoader(graph, torch.ones(5, dtype=torch.bool), [4])
    with pytest.raises(GraphError, match="needs node features"):
        NeighborLoader(Graph(graph.edge_index, graph.num_nodes), [0, 1], [4])


def test_two_layer_model_on_blocks_and_minibatch_training():
    graph = labelled_graph()
    torch.manual_seed(0)
    model = GraphSAGE(8, 3, hidden=16).double().eval()
    full = NeighborLoader(graph.replace(x=graph.x.double()), graph.val_mask, [-1, -1], batch_size=100)
    batch = next(iter(full))
    torch.testing.assert_close(model(batch.x, batch.blocks), model(graph.x.double(), graph)[batch.seeds],
                               rtol=0, atol=1e-10)
    with pytest.raises(GraphError, match="a Graph or a sequence of two Blocks"):
        model(batch.x, batch.blocks[:1])
    model = GraphSAGE(8, 3, hidden=16)
    loader = NeighborLoader(graph, graph.train_mask, [5, 5], batch_size=16)
    result = fit_node_classifier_minibatch(model, graph, loader, epochs=3, progress=False)
    assert len(result["history"]) == 3 and 0 <= result["test_acc"] <= 1


def test_releasing_pages_changes_no_batch(tmp_path):
    graph = labelled_graph()
    store = write_store(tmp_path / "g", graph)

    def batches(release_every):
        loader = NeighborLoader(store, graph.train_mask, [4, 3], batch_size=10, seed=1, release_every=release_every)
        return [(b.seeds.tolist(), b.x.tolist()) for b in loader]

    assert batches(None) == batches(1) == batches(3)
    store.release_pages()
    assert np.array_equal(store.features, graph.x.numpy())  # still readable after the release
    with pytest.raises(OptionError, match="release_every"):
        NeighborLoader(store, graph.train_mask, [4], release_every=0)


def test_pinned_memory_needs_cuda_and_batches_move():
    graph = labelled_graph()
    if not torch.cuda.is_available():
        with pytest.raises(OptionError, match="pin_memory=True needs CUDA"):
            NeighborLoader(graph, graph.train_mask, [4], pin_memory=True)
    batch = next(iter(NeighborLoader(graph, graph.train_mask, [4, 3], batch_size=8)))
    moved = batch.to("cpu")
    assert torch.equal(moved.x, batch.x) and len(moved.blocks) == 2


def test_sorted_gather_equals_indexing(tmp_path):
    """The loader's gather (rows read in sorted order, by indexing or by a reader) returns the rows plain indexing
    returns, in the index's order."""
    from fivefold.scale.loader import _gather

    rows = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float16, shape=(50_000, 3))
    rows[:] = np.random.default_rng(0).standard_normal((50_000, 3))
    index = np.random.default_rng(1).integers(0, 50_000, 9000)
    assert np.array_equal(_gather(rows, index), rows[index])
    assert np.array_equal(_gather(rows, index, lambda ordered: np.asarray(rows)[ordered]), rows[index])


def test_reading_rows_through_the_file_equals_indexing(tmp_path):
    """The loader reads a store's feature rows with pread (runs of consecutive rows in one read), never through the
    map, and gets what indexing gets; the structure can be copied into memory without changing any batch."""
    from concurrent.futures import ThreadPoolExecutor

    from fivefold.scale.loader import _gather_file

    rows = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float16, shape=(5000, 3))
    rows[:] = np.random.default_rng(0).standard_normal((5000, 3))
    rows.flush()
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    index = np.concatenate([np.random.default_rng(1).integers(0, 5000, 900), np.arange(100, 140), [4999, 0]])
    files = [open(tmp_path / "x.npy", "rb") for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:
        assert np.array_equal(_gather_file(mapped, files, index, pool), mapped[index])
    assert np.array_equal(_gather_file(mapped, files[:1], index, None), mapped[index])
    for handle in files:
        handle.close()
    graph = labelled_graph()
    store = write_store(tmp_path / "g", graph)

    def batches(**options):
        loader = NeighborLoader(store, graph.train_mask, [4, 3], batch_size=10, seed=1, **options)
        return [(b.seeds.tolist(), b.input_nodes.tolist(), b.x.tolist()) for b in loader]

    assert batches() == batches(structure_in_memory=True) == batches(io_threads=1)


def test_structure_copied_in_blocks_equals_the_store(tmp_path):
    from fivefold.scale.loader import _InMemoryStructure

    store = write_store(tmp_path / "g", labelled_graph())
    copied = _InMemoryStructure(store, block=7)
    assert np.array_equal(copied.indptr, store.indptr) and np.array_equal(copied.indices, store.indices)
    assert not isinstance(copied.indices, np.memmap) and copied.num_nodes == store.num_nodes


def test_a_batch_with_fewer_rows_than_reader_threads(tmp_path):
    """A store batch of one input row read by 16 threads: 15 threads have nothing to read (this used to raise
    'memoryview: cannot cast view with zeros in shape')."""
    graph = Graph(torch.tensor([[0, 1], [1, 2]]), 5, x=torch.randn(5, 3), y=torch.zeros(5, dtype=torch.long))
    store = write_store(tmp_path / "store", graph)
    batch = next(iter(NeighborLoader(store, torch.tensor([4]), [2], batch_size=1, prefetch=0, io_threads=16)))
    assert batch.x.shape == (1, 3) and torch.equal(batch.x, graph.x[batch.input_nodes])
