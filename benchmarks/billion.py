"""A billion-edge graph larger than RAM, on one machine: build the store, train GraphSAGE by mini-batches, evaluate.

Usage:
    .venv/bin/python benchmarks/billion.py [--nodes 100000000] [--edges 1000000000] [--features 128]
        [--batches 1000] [--eval-nodes 100000] [--workdir benchmarks/.scale-data] [--out benchmarks/results]
    .venv/bin/python benchmarks/billion.py --growth      # the same pipeline at 1e6, 1e7, 1e8 edges + table + PNG

Times here (2 cores, 24 GiB RAM): about 40 minutes for the billion-edge run (build and training; a finished build
is reused), about 8 minutes for ``--growth``.

1. Build (``fivefold.scale.rmat_store``): R-MAT edges (Graph500 a=.57, b=.19, c=.19, scrambled ids) with planted
   communities (8 classes, homophily 0.5), 128 float16 features per node, 60/20/20 train/validation/test masks,
   streamed through the two-pass builder into ``--workdir``. Skipped when a finished store is there (the build
   is resumable in that sense: a store either opens or is rebuilt); its measured build time and memory are kept
   beside it (``<store>.build.json``) and reported again. Free disk is checked first: if the store
   would not fit with 45 GB of room, the largest size that fits (halving nodes and edges) runs instead, and the
   JSON says so.
2. Train: GraphSAGE (128 -> 256 -> 8, mean aggregation, dropout 0.5, Adam lr 0.003) for ``--batches`` mini-batches
   of 1024 training seeds, fan-outs [15, 10]; the graph's structure (``indptr``, ``indices``: 4.8 GB) copied into
   memory for the sampler (``structure_in_memory``), the features (25.6 GB) left on disk and read for each batch
   with ``pread`` by 16 threads (so their pages sit in the OS page cache, not in the process), one batch
   prefetched. Reading the features through the memory map instead made the process's resident size jump by
   about 10 GB a batch here (on a fault this kernel maps whole large folios already in the page cache).
3. Evaluate on ``--eval-nodes`` test nodes (a seeded sample), with sampled neighbourhoods (fan-outs [15, 10]): exact
   layer-wise inference would need the features of nearly every node within two hops, which on R-MAT's hubs is
   most of the graph. For reference, the accuracy a node's own features allow (nearest class mean, with the
   generator's true means) is measured on the same nodes, and chance (the largest class's share).

Each phase runs in a child process under ``/usr/bin/time -v``, whose maximum resident set size is reported (the
target: under 16 GiB for the build and for training). Prints a table and writes ``billion.json`` (``--growth``:
``scale_growth.json`` and ``scale_growth.png``, with the billion-edge row taken from ``billion.json`` when present).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FANOUTS = [15, 10]
BATCH = 1024
NUM_CLASSES = 8
GROWTH = [(100_000, 1_000_000), (1_000_000, 10_000_000), (10_000_000, 100_000_000)]


def store_bytes(nodes: int, edges: int, features: int) -> int:
    """The store's size on disk: indptr, int32 indices, float16 features, int64 labels and three masks."""
    return 8 * (nodes + 1) + 4 * edges + 2 * nodes * features + 8 * nodes + 3 * nodes


def fitting_size(workdir: Path, nodes: int, edges: int, features: int, room: int = 45 * 10**9) -> tuple[int, int]:
    """The requested size, or the largest halving of it whose store fits in the free disk minus nothing but itself
    when less than ``room`` bytes are free."""
    free = shutil.disk_usage(workdir).free
    if free >= room:
        return nodes, edges
    while store_bytes(nodes, edges, features) * 1.1 > free and edges > 1000:
        nodes, edges = nodes // 2, edges // 2
    return nodes, edges


def store_path(workdir: Path, nodes: int, edges: int, features: int) -> Path:
    return workdir / f"rmat-{nodes}-{edges}-f{features}"


# ---------------------------------------------------------------------------------------------------- child phases


def phase_build(path: Path, nodes: int, edges: int, features: int) -> dict:
    from fivefold.scale import rmat_store

    start = time.perf_counter()
    rmat_store(path, nodes, edges, num_features=features, num_classes=NUM_CLASSES, feature_dtype="float16",
               overwrite=True, progress=True)
    return {"build_s": time.perf_counter() - start}


def phase_train(path: Path, nodes: int, edges: int, features: int, batches: int, eval_nodes: int) -> dict:
    import numpy as np
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    from fivefold.graphs import GraphSAGE
    from fivefold.scale import NeighborLoader, NeighborSampler, RMat, open_store

    torch.manual_seed(0)
    store = open_store(path)
    store.advise("random")  # one page per fault, not 32: what the loader does too
    result: dict = {}
    train_nodes = np.flatnonzero(store.train_mask)
    start = time.perf_counter()
    loader = NeighborLoader(store, train_nodes, FANOUTS, batch_size=BATCH, seed=0, prefetch=1, degrees=False,
                            release_every=1, structure_in_memory=True)
    result["structure_load_s"] = time.perf_counter() - start
    # the sampler alone, on training seeds (the structure in memory, as in training)
    sampler = NeighborSampler(loader.sampler, FANOUTS, seed=1, degrees=False)
    rng = np.random.default_rng(0)
    probe = [rng.choice(train_nodes, BATCH, replace=False) for _ in range(110)]
    for seeds in probe[:10]:
        sampler.sample(seeds)
    start, sampled = time.perf_counter(), 0
    for seeds in probe[10:]:
        sampled += sum(block.csc.nnz for block in sampler.sample(seeds)[1])
    result["sampler_edges_per_s"] = sampled / (time.perf_counter() - start)

    model = GraphSAGE(features, NUM_CLASSES, hidden=256, dropout=0.5)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.003)
    done, edges_seen, losses = 0, 0, []
    bar = tqdm(total=batches, desc="training", unit="batch")
    start = time.perf_counter()
    while done < batches:
        for batch in loader:
            model.train()
            optimiser.zero_grad()
            loss = F.cross_entropy(model(batch.x, batch.blocks), batch.y)
            loss.backward()
            optimiser.step()
            done += 1
            edges_seen += sum(block.csc.nnz for block in batch.blocks)
            losses.append(float(loss.detach()))
            seconds = time.perf_counter() - start
            bar.set_postfix({"loss": f"{losses[-1]:.3f}", "edges/s": f"{edges_seen / seconds:,.0f}"}, refresh=False)
            bar.update(1)
            if done == batches:
                break
    bar.close()
    seconds = time.perf_counter() - start
    result.update({"train_s": seconds, "batches": done, "batches_per_s": done / seconds,
                   "train_edges_per_s": edges_seen / seconds, "first_loss": float(np.mean(losses[:20])),
                   "last_loss": float(np.mean(losses[-20:]))})
    store.release_pages()

    test_nodes = np.flatnonzero(store.test_mask)
    chosen = np.sort(np.random.default_rng(1).choice(test_nodes, min(eval_nodes, len(test_nodes)), replace=False))
    labels = np.asarray(store.labels[chosen])
    start = time.perf_counter()
    model.eval()
    evaluation = NeighborLoader(store, chosen, FANOUTS, batch_size=BATCH, shuffle=False, seed=2, degrees=False,
                                release_every=1)
    evaluation.sampler = NeighborSampler(loader.sampler, FANOUTS, seed=2, degrees=False)  # the in-memory structure
    with torch.no_grad():
        predicted = np.concatenate([model(batch.x, batch.blocks).argmax(1).numpy() for batch in evaluation])
    result["eval_s"] = time.perf_counter() - start
    result["eval_nodes"] = len(chosen)
    result["test_acc_sampled"] = float((predicted == labels).mean())
    generator = RMat(nodes, edges, num_features=features, num_classes=NUM_CLASSES)
    own = np.empty((len(chosen), NUM_CLASSES))
    for start in range(0, len(chosen), 4096):  # in blocks, releasing the mapped pages (see the module docstring)
        rows = np.asarray(store.features[chosen[start:start + 4096]], dtype=np.float32)
        own[start:start + 4096] = rows @ generator.means.T
        store.release_pages()
    result["own_features_nearest_mean_acc"] = float((own.argmax(1) == labels).mean())
    result["chance_acc"] = float(np.bincount(labels, minlength=NUM_CLASSES).max() / len(labels))
    return result


# ---------------------------------------------------------------------------------------------------- parent


def run_phase(args: list[str]) -> tuple[dict, int]:
    """Run this script's child phase under /usr/bin/time -v (its report in a file; the child's progress bars go to
    this terminal); ``(the child's JSON result, its peak resident bytes)``."""
    import tempfile

    command = [sys.executable, __file__, *args]
    timer = "/usr/bin/time" if Path("/usr/bin/time").exists() else None
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        if timer:
            command = [timer, "-v", "-o", report.name, *command]
        process = subprocess.run(command, stdout=subprocess.PIPE, text=True)
        if process.returncode != 0:
            raise SystemExit(f"phase {args[:2]} failed with exit code {process.returncode}")
        match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", report.read())
    peak = int(match.group(1)) * 1024 if match else -1
    return json.loads(process.stdout.strip().splitlines()[-1]), peak


def pipeline(workdir: Path, nodes: int, edges: int, features: int, batches: int, eval_nodes: int) -> dict:
    path = store_path(workdir, nodes, edges, features)
    size = [str(nodes), str(edges), str(features)]
    row: dict = {"nodes": nodes, "edges": edges, "features": features, "store": str(path)}
    from fivefold.errors import StoreError
    from fivefold.scale import open_store

    record = path.with_name(path.name + ".build.json")
    try:
        open_store(path)
        row["build"] = {**(json.loads(record.read_text()) if record.is_file() else {}), "reused": True}
        print(f"reusing the finished store {path}", flush=True)
    except StoreError:
        print(f"building {path} ({store_bytes(nodes, edges, features) / 1e9:.1f} GB) ...", flush=True)
        build, peak = run_phase(["--phase", "build", str(path), *size])
        row["build"] = {**build, "peak_rss_bytes": peak, "reused": False}
        record.write_text(json.dumps({**build, "peak_rss_bytes": peak}))
    row["disk_bytes"] = sum(f.stat().st_size for f in path.iterdir())
    print(f"training {batches} batches ...", flush=True)
    train, peak = run_phase(["--phase", "train", str(path), *size, str(batches), str(eval_nodes)])
    row["train"] = {**train, "peak_rss_bytes": peak}
    return row


def show(rows: list[dict]) -> None:
    print(f"\n{'edges':>14} {'nodes':>12} {'build s':>8} {'build RSS':>10} {'disk GB':>8} {'sampler e/s':>12} "
          f"{'train b/s':>9} {'train e/s':>11} {'train RSS':>10} {'test acc':>8} {'own-feat':>8}")
    for row in rows:
        build, train = row["build"], row["train"]
        gib = 2**30
        print(f"{row['edges']:>14,} {row['nodes']:>12,} {build.get('build_s', float('nan')):>8.0f} "
              f"{build.get('peak_rss_bytes', -gib) / gib:>9.2f}G {row['disk_bytes'] / 1e9:>8.2f} "
              f"{train['sampler_edges_per_s']:>12,.0f} {train['batches_per_s']:>9.2f} "
              f"{train['train_edges_per_s']:>11,.0f} {train['peak_rss_bytes'] / gib:>9.2f}G "
              f"{train['test_acc_sampled']:>8.3f} {train['own_features_nearest_mean_acc']:>8.3f}")


def plot(rows: list[dict], file: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = [row["edges"] for row in rows]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    built = [(row["edges"], row["build"]) for row in rows if "build_s" in row["build"]]
    axes[0].loglog([e for e, _ in built], [b["build_s"] for _, b in built], "o-")
    axes[0].set(xlabel="edges", ylabel="seconds", title="store build time")
    axes[1].loglog([e for e, _ in built], [b["peak_rss_bytes"] / 2**30 for _, b in built], "o-", label="build")
    axes[1].loglog(edges, [row["train"]["peak_rss_bytes"] / 2**30 for row in rows], "s-", label="training")
    axes[1].axhline(16, color="grey", linestyle=":", label="16 GiB")
    axes[1].set(xlabel="edges", ylabel="GiB", title="peak resident memory")
    axes[1].legend()
    axes[2].semilogx(edges, [row["train"]["sampler_edges_per_s"] / 1e6 for row in rows], "o-", label="sampler alone")
    axes[2].semilogx(edges, [row["train"]["train_edges_per_s"] / 1e6 for row in rows], "s-", label="training")
    axes[2].set(xlabel="edges", ylabel="million sampled edges / s", title="throughput (fan-outs 15,10)")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(file, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100_000_000)
    parser.add_argument("--edges", type=int, default=1_000_000_000)
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--eval-nodes", type=int, default=100_000)
    parser.add_argument("--workdir", default=str(HERE / ".scale-data"))
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--growth", action="store_true", help="run 1e6, 1e7 and 1e8 edges and draw the growth plot")
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        kind, path, *numbers = args.phase
        numbers = [int(n) for n in numbers]
        result = phase_build(Path(path), *numbers) if kind == "build" else phase_train(Path(path), *numbers)
        print(json.dumps(result))
        return
    workdir, out = Path(args.workdir), Path(args.out)
    workdir.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(),
               "ram_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")}
    began = time.perf_counter()
    if args.growth:
        rows = [pipeline(workdir, n, e, args.features, 200, 20_000) for n, e in GROWTH]
        billion = out / "billion.json"
        if billion.is_file():
            rows.append(json.loads(billion.read_text())["run"])
        show(rows)
        plot(rows, out / "scale_growth.png")
        (out / "scale_growth.json").write_text(json.dumps({"rows": rows, "machine": machine, "note": (
            "rows at 1e6-1e8 edges: 200 training batches, 20,000 evaluation nodes; the 1e9 row from billion.json")},
            indent=2))
        print(f"wrote {out / 'scale_growth.json'} and {out / 'scale_growth.png'} in "
              f"{time.perf_counter() - began:.0f} s")
        return
    nodes, edges = fitting_size(workdir, args.nodes, args.edges, args.features)
    if (nodes, edges) != (args.nodes, args.edges):
        print(f"not enough free disk for {args.edges:,} edges: running {edges:,} edges, {nodes:,} nodes", flush=True)
    row = pipeline(workdir, nodes, edges, args.features, args.batches, args.eval_nodes)
    show([row])
    result = {"run": row, "requested": {"nodes": args.nodes, "edges": args.edges}, "machine": machine,
              "total_s": time.perf_counter() - began}
    (out / "billion.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {out / 'billion.json'}; total {result['total_s'] / 60:.1f} min")


if __name__ == "__main__":
    main()
