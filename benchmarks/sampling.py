"""Neighbour-sampling throughput: fivefold's NeighborSampler vs DGL's C++ sampler, on the same store and seeds.

Usage:
    .venv/bin/python benchmarks/sampling.py [--nodes 10000000] [--edges 100000000] [--batches 200] [--rounds 5]
        [--workdir benchmarks/.scale-data] [--out benchmarks/results] [--no-dgl]

About 6 minutes here on 2 cores the first time (1 min to build the R-MAT store, about 2 min to install DGL's venv),
2 minutes after that.

The graph is ``fivefold.scale.rmat_store`` (R-MAT, Graph500 parameters a=.57, b=.19, c=.19, scrambled ids) with
``--nodes`` nodes and ``--edges`` directed edges, built once in ``--workdir`` and reused. Seeds are batches of 1024
distinct nodes drawn uniformly among the nodes with at least one in-neighbour (R-MAT leaves most nodes without one;
a seed without neighbours samples nothing), the same batches for both samplers. Fan-outs [15, 10]: 15 in-neighbours
for each seed, then 10 for each node those reach, uniformly without replacement, giving two blocks (bipartite graphs
with relabelled ids, what a GNN layer consumes). Sampled edges per second = the edges in both blocks / wall time.

- fivefold: ``NeighborSampler(store, [15, 10], degrees=False).sample(seeds)``, the CSC arrays memory-mapped from
  the store (warm in the page cache), 2 numba threads. ``degrees=False``: like DGL's blocks, without the whole-graph
  degrees that only GCN needs (which cost about a fifth more).
- DGL: ``dgl.dataloading.NeighborSampler([10, 15]).sample_blocks(graph, seeds)`` (DGL lists fan-outs input layer
  first), its graph built from the same CSC arrays in memory, ``torch.set_num_threads(2)``. DGL is a peer, never a
  dependency: its last release on PyPI (2.1.0) supports torch <= 2.2.1, so the script makes
  ``benchmarks/.venv-dgl`` (python3.11, torch 2.2.1, dgl 2.1.0, numpy<2; about 5 GB, as PyPI's torch 2.2.1 wheel
  pulls in the CUDA libraries) and runs DGL there in a child process. It runs after fivefold, never at the same
  time, each sampler alone on the machine.

Each sampler warms up on 10 batches, then times ``--batches`` batches, ``--rounds`` times; the rounds alternate
between the samplers (DGL's child process waits for its turn, and each round starts after a 1 s pause in which the
other's idle threads stop spinning), so a drift in the machine's speed hits both alike.
The table shows the best and the median round. Prints a table and writes ``sampling.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DGL_VENV = HERE / ".venv-dgl"
FANOUTS = [15, 10]  # seeds' hop first (PyG's order)
BATCH = 1024
DGL_PACKAGES = ["torch==2.2.1", "dgl==2.1.0", "torchdata==0.7.1", "numpy<2", "pydantic", "pandas", "pyyaml",
                "requests", "scipy", "networkx", "psutil", "tqdm"]


def seed_batches(indptr, count: int, seed: int = 0):
    """``count`` batches of ``BATCH`` distinct nodes with at least one in-neighbour."""
    import numpy as np

    candidates = np.flatnonzero(np.diff(indptr) > 0)
    rng = np.random.default_rng(seed)
    order = rng.permutation(candidates)[: count * BATCH]
    return [order[i * BATCH:(i + 1) * BATCH] for i in range(count)]


def time_round(sample, batches) -> dict:
    edges = 0
    start = time.perf_counter()
    cpu = time.process_time()
    for seeds in batches:
        edges += sample(seeds)
    wall = time.perf_counter() - start
    return {"batches_per_s": len(batches) / wall, "edges_per_s": edges / wall, "edges_per_batch": edges / len(batches),
            "cpu_per_wall": (time.process_time() - cpu) / wall}


def fivefold_sampler(store_path: Path, batches: int):
    """``(sample, timed batches)`` for fivefold, warmed up."""
    import numpy as np

    from fivefold.scale import NeighborSampler, open_store

    store = open_store(store_path)
    sampler = NeighborSampler(store, FANOUTS, seed=0, degrees=False)  # as DGL: no whole-graph degrees
    np.asarray(store.indices).sum()  # read the arrays once: both samplers start with them in memory

    def sample(seeds):
        _, blocks = sampler.sample(seeds)
        return sum(block.csc.nnz for block in blocks)

    seeds = seed_batches(store.indptr, batches + 10)
    for batch in seeds[:10]:
        sample(batch)
    return sample, seeds[10:]


def dgl_child(store_path: Path, batches: int) -> None:
    """Runs inside the DGL venv: builds the graph, warms up, then times one round per line read from stdin."""
    os.environ.setdefault("DGLBACKEND", "pytorch")
    import dgl
    import numpy as np
    import torch

    torch.set_num_threads(2)
    indptr = np.load(store_path / "indptr.npy")
    indices = np.load(store_path / "indices.npy").astype(np.int64)
    no_ids = torch.tensor([], dtype=torch.int64)
    graph = dgl.graph(("csc", (torch.from_numpy(indptr), torch.from_numpy(indices), no_ids)),
                      num_nodes=len(indptr) - 1)
    graph.create_formats_()
    sampler = dgl.dataloading.NeighborSampler(list(reversed(FANOUTS)))

    def sample(seeds):
        _, _, blocks = sampler.sample_blocks(graph, torch.from_numpy(seeds))
        return sum(block.num_edges() for block in blocks)

    seeds = seed_batches(indptr, batches + 10)
    for batch in seeds[:10]:
        sample(batch)
    print("ready", flush=True)
    for _ in sys.stdin:
        print(json.dumps(time_round(sample, seeds[10:])), flush=True)


def ensure_dgl_venv() -> Path | None:
    python = DGL_VENV / "bin" / "python"
    if python.exists():
        return python
    interpreter = shutil.which("python3.11")
    if interpreter is None:
        print("DGL skipped: its last release needs python 3.11 (or older), which is not on PATH", flush=True)
        return None
    print(f"creating {DGL_VENV} (torch 2.2.1 + dgl 2.1.0, about 5 GB and 2 minutes)", flush=True)
    try:
        subprocess.run([interpreter, "-m", "venv", str(DGL_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *DGL_PACKAGES], check=True)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(DGL_VENV, ignore_errors=True)
        print(f"DGL skipped: its venv could not be installed ({exc})", flush=True)
        return None
    return python


def ensure_store(workdir: Path, nodes: int, edges: int) -> tuple[Path, dict]:
    from fivefold.errors import StoreError
    from fivefold.scale import open_store

    path = workdir / f"rmat-{nodes}-{edges}-nofeatures"
    try:
        open_store(path)
        return path, {"reused": True}
    except StoreError:
        pass
    code = ("import resource, time, sys; from fivefold.scale import rmat_store; t = time.perf_counter();"
            f"rmat_store({str(path)!r}, {nodes}, {edges}, num_features=0, overwrite=True, progress=True);"
            "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)")
    print(f"building {path} ...", flush=True)
    result = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    seconds, peak = result.stdout.split()[-2:]
    return path, {"reused": False, "build_s": float(seconds), "build_peak_rss_bytes": int(peak)}


def summary(rounds: list[dict]) -> dict:
    rates = [r["edges_per_s"] for r in rounds]
    return {"best_edges_per_s": max(rates), "median_edges_per_s": statistics.median(rates),
            "median_batches_per_s": statistics.median(r["batches_per_s"] for r in rounds),
            "edges_per_batch": rounds[0]["edges_per_batch"], "rounds": rounds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10_000_000)
    parser.add_argument("--edges", type=int, default=100_000_000)
    parser.add_argument("--batches", type=int, default=200, help="timed batches per round (default 200)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workdir", default=str(HERE / ".scale-data"), help="where the R-MAT store is kept")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--no-dgl", action="store_true", help="skip DGL (and its 5 GB venv)")
    parser.add_argument("--dgl-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dgl_child:
        dgl_child(Path(args.dgl_child), args.batches)
        return
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    store_path, build = ensure_store(workdir, args.nodes, args.edges)
    results: dict = {"nodes": args.nodes, "edges": args.edges, "fanouts": FANOUTS, "batch_size": BATCH,
                     "store": build, "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}}
    print(f"R-MAT store: {args.nodes:,} nodes, {args.edges:,} edges {build}", flush=True)
    sample, batches = fivefold_sampler(store_path, args.batches)
    python = None if args.no_dgl else ensure_dgl_venv()
    child = None
    if python is not None:
        child = subprocess.Popen([str(python), __file__, "--dgl-child", str(store_path), "--batches",
                                  str(args.batches)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "DGLBACKEND": "pytorch"})
        if child.stdout.readline().strip() != "ready":
            child.wait()
            results["dgl_error"] = f"the DGL child exited with {child.returncode}"
            print("DGL failed to start", flush=True)
            child = None
    rounds: dict[str, list] = {"fivefold": [], "dgl": []}
    for _ in range(args.rounds):
        time.sleep(1.0)  # let the other process's idle threads stop spinning before the clock starts
        rounds["fivefold"].append(time_round(sample, batches))
        time.sleep(1.0)
        if child is not None:
            child.stdin.write("round\n")
            child.stdin.flush()
            rounds["dgl"].append(json.loads(child.stdout.readline()))
    if child is not None:
        child.stdin.close()
        child.wait()
    results["fivefold"] = summary(rounds["fivefold"])
    if rounds["dgl"]:
        results["dgl"] = summary(rounds["dgl"])
        results["dgl"]["versions"] = "dgl 2.1.0, torch 2.2.1"
    print(f"\n{'sampler':<10} {'best edges/s':>14} {'median edges/s':>15} {'batches/s':>10} {'edges/batch':>12}")
    for name in ("fivefold", "dgl"):
        if name in results:
            row = results[name]
            print(f"{name:<10} {row['best_edges_per_s']:>14,.0f} {row['median_edges_per_s']:>15,.0f} "
                  f"{row['median_batches_per_s']:>10.1f} {row['edges_per_batch']:>12,.0f}")
    if "dgl" in results:
        results["speedup_median"] = results["fivefold"]["median_edges_per_s"] / results["dgl"]["median_edges_per_s"]
        print(f"fivefold / DGL (median rounds): {results['speedup_median']:.2f}x")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sampling.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {out / 'sampling.json'}")


if __name__ == "__main__":
    main()
