"""The graph store: round trip with an in-memory Graph, memory-mapped arrays, and refusal of damaged stores."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from fivefold.errors import StoreError
from fivefold.graphs import GCNConv, Graph
from fivefold.scale import NeighborSampler, open_store, write_store


def small_graph(nodes: int = 30, edges: int = 120, seed: int = 0) -> Graph:
    generator = torch.Generator().manual_seed(seed)
    masks = torch.rand(nodes, generator=generator)
    return Graph(torch.randint(0, nodes, (2, edges), generator=generator), nodes,
                 x=torch.randn(nodes, 5, generator=generator), y=torch.randint(0, 3, (nodes,), generator=generator),
                 train_mask=masks < 0.5, val_mask=(masks >= 0.5) & (masks < 0.7), test_mask=masks >= 0.7)


def test_round_trip_and_memory_mapping(tmp_path):
    graph = small_graph()
    store = write_store(tmp_path / "g", graph)
    assert (store.num_nodes, store.num_edges, store.num_features) == (30, 120, 5)
    assert isinstance(store.indices, np.memmap) and store.indices.dtype == np.int32
    back = store.to_graph()
    for name in ("x", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(getattr(back, name), getattr(graph, name)), name
    key = lambda g: sorted(map(tuple, g.edge_index.t().tolist()))  # noqa: E731
    assert key(back) == key(graph)
    reopened = open_store(tmp_path / "g", verify=True)
    assert np.array_equal(reopened.indptr, graph.csc().indptr.numpy())
    half = write_store(tmp_path / "h", graph, feature_dtype="float16")
    assert half.features.dtype == np.float16
    torch.testing.assert_close(torch.from_numpy(np.array(half.features, dtype=np.float32)), graph.x, rtol=1e-3,
                               atol=1e-3)


def test_sampler_reads_a_store_like_the_graph(tmp_path):
    graph = small_graph(nodes=60, edges=400)
    store = write_store(tmp_path / "g", graph)
    seeds = torch.tensor([1, 4, 9, 16])
    from_graph = NeighborSampler(graph, [3, 2], seed=5).sample(seeds)
    from_store = NeighborSampler(store, [3, 2], seed=5).sample(seeds)
    assert torch.equal(from_graph[0], from_store[0])
    for a, b in zip(from_graph[1], from_store[1], strict=True):
        assert torch.equal(a.csc.indices, b.csc.indices) and torch.equal(a.src_degree, b.src_degree)
    x = torch.from_numpy(np.array(store.features))[from_store[0]].double()
    conv = GCNConv(5, 2).double()
    assert conv(x, from_store[1][0]).shape == (from_store[1][0].num_dst, 2)


def test_damaged_stores_are_refused(tmp_path):
    graph = small_graph()
    write_store(tmp_path / "g", graph)
    with pytest.raises(StoreError, match="already exists"):
        write_store(tmp_path / "g", graph)
    indices = tmp_path / "g" / "indices.npy"
    original = indices.read_bytes()
    indices.write_bytes(original[:-8])
    with pytest.raises(StoreError, match="indices.npy has .* bytes, the manifest says"):
        open_store(tmp_path / "g")
    tampered = bytearray(original)
    tampered[-1] ^= 0xFF
    indices.write_bytes(bytes(tampered))
    open_store(tmp_path / "g")  # sizes agree: only a full check sees it
    with pytest.raises(StoreError, match="does not match its sha256"):
        open_store(tmp_path / "g", verify=True)
    indices.unlink()
    with pytest.raises(StoreError, match="indices.npy is missing"):
        open_store(tmp_path / "g")
    with pytest.raises(StoreError, match="manifest.json is missing"):
        open_store(tmp_path / "nothing")
    manifest = tmp_path / "g" / "manifest.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "version": 99}))
    with pytest.raises(StoreError, match="this fivefold reads"):
        open_store(tmp_path / "g")


def test_killed_write_leaves_nothing_that_opens(tmp_path):
    """A writer killed mid-way (here: before its rename) leaves only a temporary folder, which does not open."""
    code = ("import os, torch, fivefold.scale.store as s; from fivefold.graphs import Graph;"
            "s.os.replace = lambda *a: os._exit(9);"  # die just before the rename into place
            f"s.write_store({str(tmp_path / 'g')!r}, Graph(torch.randint(0, 50, (2, 200)), 50))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 9
    assert not (tmp_path / "g").exists()
    leftovers = list(tmp_path.iterdir())
    assert leftovers and all(p.name.startswith(".g.tmp-") for p in leftovers)
    with pytest.raises(StoreError):
        open_store(tmp_path / "g")


def _rows(store):
    return [sorted(store.indices[store.indptr[i]:store.indptr[i + 1]].tolist()) for i in range(store.num_nodes)]


@pytest.mark.parametrize("chunk,in_memory_bytes", [(7, 1 << 30), (50, 0), (1000, 1 << 30), (1000, 0)])
def test_streaming_build_equals_the_in_memory_store(tmp_path, chunk, in_memory_bytes):
    """Assembled in memory or in a memory-mapped file (``in_memory_bytes=0``), the same store."""
    graph = small_graph(nodes=40, edges=300, seed=3)
    edges = graph.edge_index.numpy()
    chunks = [edges[:, i:i + chunk] for i in range(0, edges.shape[1], chunk)]
    from fivefold.scale import build_store

    built = build_store(tmp_path / "b", chunks, 40, features=graph.x.numpy(), labels=graph.y.numpy(),
                        in_memory_bytes=in_memory_bytes)
    direct = write_store(tmp_path / "d", graph)
    assert built.num_edges == direct.num_edges == 300
    assert np.array_equal(built.indptr, direct.indptr) and _rows(built) == _rows(direct)
    assert all(row == sorted(row) for row in _rows(built))
    assert np.array_equal(built.features, direct.features) and np.array_equal(built.labels, direct.labels)
    open_store(tmp_path / "b", verify=True)


def test_streaming_build_symmetrizes_and_dedupes(tmp_path):
    from fivefold.graphs import coalesce, to_undirected
    from fivefold.scale import build_store

    graph = small_graph(nodes=25, edges=200, seed=4)
    files = []
    for k, part in enumerate(np.array_split(graph.edge_index.numpy().T, 3)):
        np.save(tmp_path / f"part{k}.npy", part)
        files.append(tmp_path / f"part{k}.npy")
    built = build_store(tmp_path / "s", files, 25, symmetrize=True, dedupe=True)
    expected = write_store(tmp_path / "e", coalesce(to_undirected(Graph(graph.edge_index, 25))))
    assert np.array_equal(built.indptr, expected.indptr) and _rows(built) == _rows(expected)
    mapped = build_store(tmp_path / "m", files, 25, symmetrize=True, dedupe=True, in_memory_bytes=0)
    assert np.array_equal(mapped.indptr, expected.indptr) and _rows(mapped) == _rows(expected)
    plain = build_store(tmp_path / "p", files, 25, symmetrize=True)
    assert plain.num_edges == 400


def test_streaming_build_refuses_bad_chunks_and_leaves_nothing(tmp_path):
    from fivefold.scale import build_store

    with pytest.raises(StoreError, match="edge chunk 1 has node ids outside"):
        build_store(tmp_path / "x", [np.array([[0, 1]]), np.array([[2, 9]])], 5)
    assert not list(tmp_path.iterdir())
    calls = []

    def changing():
        calls.append(1)
        return [(np.array([0, 1]), np.array([1, 2 if len(calls) == 1 else 0]))]

    with pytest.raises(StoreError, match="second pass over edge_chunks gave other edges"):
        build_store(tmp_path / "y", changing, 3)
    assert not list(tmp_path.iterdir())


def test_killed_streaming_build_leaves_nothing_that_opens(tmp_path):
    code = ("import os, numpy as np, fivefold.scale.store as s;"
            "s._kernels.scatter_edges = lambda *a: os._exit(9);"  # die in the middle of the second pass
            f"s.build_store({str(tmp_path / 'g')!r}, [np.random.default_rng(0).integers(0, 50, (2, 500))], 50)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 9, result.stderr
    assert not (tmp_path / "g").exists()
    with pytest.raises(StoreError, match="manifest.json is missing"):
        open_store(tmp_path / "g")
    (leftover,) = [p for p in tmp_path.iterdir() if p.name.startswith(".g.tmp-")]
    from fivefold.scale import build_store

    build_store(tmp_path / "g", [np.array([[0, 1]])], 2)  # the next build clears the dead builder's folder
    assert not leftover.exists() and open_store(tmp_path / "g").num_edges == 1


def test_streaming_build_reads_csv_and_parquet_edge_files(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from fivefold.scale import build_store

    graph = small_graph(nodes=40, edges=300, seed=6)
    src, dst = graph.edge_index.numpy()
    np.savetxt(tmp_path / "plain.csv", np.stack([src, dst], 1), fmt="%d", delimiter=",")
    with open(tmp_path / "named.csv", "w") as handle:  # named columns, not in the first two places
        handle.write("weight,dst,src\n" + "".join(f"1.5,{d},{s}\n" for s, d in zip(src, dst, strict=True)))
    pq.write_table(pa.table({"src": src, "dst": dst}), tmp_path / "edges.parquet", row_group_size=64)
    direct = write_store(tmp_path / "d", Graph(graph.edge_index, 40))
    for name in ("plain.csv", "named.csv", "edges.parquet"):
        built = build_store(tmp_path / name.replace(".", "_"), [tmp_path / name], 40)
        assert np.array_equal(built.indptr, direct.indptr) and _rows(built) == _rows(direct), name
    (tmp_path / "bad.csv").write_text("src,dst\n0,1\n2,x\n")
    with pytest.raises(StoreError, match="bad.csv"):
        build_store(tmp_path / "bad", [tmp_path / "bad.csv"], 40)
    (tmp_path / "one.csv").write_text("0\n1\n")
    with pytest.raises(StoreError, match="one.csv has 1 column"):
        build_store(tmp_path / "one", [tmp_path / "one.csv"], 40)
    with pytest.raises(StoreError, match="does not exist"):
        build_store(tmp_path / "none", [tmp_path / "missing.csv"], 40)
    assert not (tmp_path / "bad").exists()


def test_streaming_build_takes_features_from_a_function_and_masks(tmp_path):
    from fivefold.scale import build_store

    graph = small_graph(nodes=40, edges=100, seed=7)
    x = graph.x.numpy()
    built = build_store(tmp_path / "f", [graph.edge_index.numpy()], 40, features=lambda a, b: x[a:b],
                        rows_per_copy=7, train_mask=graph.train_mask.numpy(), test_mask=graph.test_mask.numpy())
    assert np.array_equal(built.features, x) and np.array_equal(built.train_mask, graph.train_mask.numpy())
    assert built.val_mask is None
    broken = x.copy()
    broken[33, 2] = np.nan
    with pytest.raises(StoreError, match="NaN or infinite values in rows 28..34"):
        build_store(tmp_path / "n", [graph.edge_index.numpy()], 40, features=lambda a, b: broken[a:b],
                    rows_per_copy=7)
    with pytest.raises(StoreError, match="train_mask must be a boolean array"):
        build_store(tmp_path / "m", [graph.edge_index.numpy()], 40, train_mask=np.ones(40))
