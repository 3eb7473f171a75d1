"""Distributed training on one machine with 1 and 2 processes, the partitioners' quality, and a model of 8 and 64 hosts.

Usage:
    .venv/bin/python benchmarks/distributed.py [--nodes 10000000] [--edges 100000000] [--features 128] [--steps 80]
        [--small-nodes 1000000] [--small-edges 10000000] [--metis-max-edges 20000000]
        [--workdir benchmarks/.scale-data] [--out benchmarks/results]

About 9 minutes here (2 cores, 24 GiB) once the stores exist (building them: about 1.5 min more): 5 min of METIS
on the 1e7-edge store, 1 min to write the partitions, 2 min of training runs, 1 min of sampling for the model.

1. The store: the R-MAT graph of ``benchmarks/billion.py --growth``'s 1e8-edge row (1e7 nodes, 128 float16 features,
   8 planted classes), built by ``fivefold.scale.rmat_store`` into ``--workdir`` unless it is there.
2. Partitioners (measured), on that store and on the 1e7-edge one (1e6 nodes, built the same way): METIS (pymetis,
   on the symmetrised graph in memory, in a child process whose peak memory is read from ``/usr/bin/time -v``;
   skipped above ``--metis-max-edges``: at 1e8 edges it passed this machine's 24 GiB and was killed), Fennel, LDG and
   random, into 2, 8 and 64 parts: wall time, edge cut (share of in-edges whose source is in another part), node and
   in-edge balance (largest / mean).
3. Throughput (measured): ``torchrun -m fivefold.train.distributed`` on the store split in 2 by the partitioner with
   the lowest 2-way cut, and on the store as one part: GraphSAGE 128 -> 256 -> 8, fan-outs 15,10, 1,024 seeds per step
   in all (about 512 per process with 2 processes), ``--steps`` steps without evaluation. One process with 1 and
   with 2 threads, two processes with 1 thread each. Steps/s are taken over the steps after the first 10 (the page
   cache and allocator warm up); bytes sent per step and process (sampling requests and replies, feature rows, the
   counts before each exchange; not DDP's gradient all-reduce, reported separately as the model's parameter bytes)
   and peak resident memory per process from the trainer's ``metrics.json``.
4. The model of K = 8 and 64 hosts (modelled, not measured): weak scaling, each host training on 1,024 seeds of its
   own nodes per step. What a host must fetch at K is measured by sampling 8 batches of the training nodes of each of
   parts 0-3 with the single-process sampler on the Fennel partition into K parts and counting the frontier nodes and
   input rows owned elsewhere; bytes follow from the message format (checked against the measured bytes at K = 2). Time
   per step = the measured 1-process, 1-thread compute time + bytes / bandwidth + 10 all-to-all rounds x (K - 1)
   x 20 us latency + the gradient all-reduce (ring: 2 (K - 1) / K x parameter bytes / bandwidth + 2 (K - 1) x 20 us),
   with 10 and 100 Gbit/s links; nothing overlaps (a pessimistic bound). Memory per host: the store's bytes / K, the
   partition book (6 bytes a node), and the measured 1-process peak minus the store it had mapped.

Prints tables and writes ``distributed.json``.
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

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FANOUTS = [15, 10]
BATCH = 1024
HIDDEN = 256
NUM_CLASSES = 8
LATENCY_S = 20e-6
LINKS_GBIT = (10, 100)
METHODS = [("metis", "nodes+edges"), ("metis", "nodes"), ("fennel", "nodes+edges"), ("fennel", "nodes"),
           ("ldg", "nodes+edges"), ("ldg", "nodes"), ("random", "nodes")]


def build(path: Path, nodes: int, edges: int, features: int) -> dict:
    from fivefold.scale import open_store, rmat_store

    if (path / "manifest.json").is_file():
        open_store(path)
        return {"reused": True}
    start = time.perf_counter()
    rmat_store(path, nodes, edges, num_features=features, num_classes=NUM_CLASSES, feature_dtype="float16",
               overwrite=True, progress=True)
    return {"reused": False, "build_s": time.perf_counter() - start}


def metis_child(store_path: str, parts: int, balance: str, out: str) -> None:
    """Run in a child process: METIS on the store, the assignment saved to ``out``."""
    from fivefold.scale import open_store, partition_nodes

    store = open_store(store_path)
    start = time.perf_counter()
    assignment = partition_nodes(store, parts, method="metis", balance=balance)
    np.save(out, assignment)
    print(json.dumps({"seconds": time.perf_counter() - start}))


def run_metis(store_path: Path, parts: int, balance: str, workdir: Path) -> tuple[np.ndarray, dict]:
    out = workdir / f"metis-{parts}.npy"
    command = ["/usr/bin/time", "-v", sys.executable, __file__, "--metis-child", str(store_path), str(parts), balance,
               str(out)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"METIS failed:\n{done.stderr[-2000:]}")
    seconds = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1)) / 2**20
    assignment = np.load(out)
    out.unlink()
    return assignment, {"seconds": seconds, "peak_gib": peak}


def partitioners(store, store_path: Path, workdir: Path, metis_max_edges: int) -> tuple[list[dict], dict]:
    from fivefold.scale import partition_nodes, partition_report

    rows, assignments = [], {}
    for parts in (2, 8, 64):
        for method, balance in METHODS:
            if method == "metis":
                if store.num_edges > metis_max_edges:
                    continue
                assignment, extra = run_metis(store_path, parts, balance, workdir)
            else:
                start = time.perf_counter()
                assignment = partition_nodes(store, parts, method=method, balance=balance)
                extra = {"seconds": time.perf_counter() - start}
            report = partition_report(store, assignment)
            rows.append({"edges": store.num_edges, "parts": parts, "method": method, "balance": balance, **extra,
                         "edge_cut": report["edge_cut"],
                         "node_balance": report["node_balance"], "edge_balance": report["edge_balance"]})
            assignments[(parts, method, balance)] = assignment
            print(f"  {store.num_edges:.0e} edges, {parts:>3} parts, {method:<7} {balance:<12} "
                  f"{extra['seconds']:7.1f} s  edge cut {report['edge_cut']:.3f}  "
                  f"balance nodes {report['node_balance']:.3f} edges {report['edge_balance']:.3f}", flush=True)
    return rows, assignments


def train_run(partitions: Path, run_dir: Path, processes: int, threads: int, steps: int, io_threads: int = 0) -> dict:
    shutil.rmtree(run_dir, ignore_errors=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), NUMBA_NUM_THREADS=str(threads))
    command = [sys.executable, "-m", "torch.distributed.run", "--rdzv-backend=c10d", "--rdzv-endpoint=localhost:0",
               f"--nproc_per_node={processes}", "-m", "fivefold.train.distributed", "--partitions", str(partitions),
               "--run-dir", str(run_dir), "--steps", str(steps), "--no-eval", "--checkpoint-every", str(10**9),
               "--fanout", ",".join(map(str, FANOUTS)), "--batch-size", str(BATCH), "--no-progress",
               "--io-threads", str(io_threads)]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"training failed:\n{done.stderr[-3000:]}")
    wall = time.perf_counter() - start
    metrics = json.loads((run_dir / "metrics.json").read_text())
    log = [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    warm = [row for row in log if row["step"] >= 10]
    steady = (len(warm) - 1) / (warm[-1]["seconds"] - warm[0]["seconds"])
    final = metrics["final"]
    return {"processes": processes, "threads": threads, "steps": steps, "wall_s": wall,
            "steps_per_s": steady, "seeds_per_s": steady * BATCH,
            "bytes_per_step_per_process": final["bytes_per_step"], "edges_per_s_all_steps": final["edges_per_s"],
            "peak_rss_gib_per_process": final["peak_rss_gib_per_rank"]}


def remote_share(store, assignment: np.ndarray, parts: int, batch: int = BATCH, batches: int = 8,
                 seed: int = 0) -> dict:
    """What a host fetches per step of ``batch`` of its own training seeds, by the single-process sampler: frontier
    nodes (and their picks) per layer owned elsewhere, input rows owned elsewhere; the mean over ``batches`` batches
    of each of the first ``min(parts, 4)`` parts (R-MAT's hubs make the parts unequal)."""
    from fivefold.scale import NeighborSampler

    sampler = NeighborSampler(store, FANOUTS, seed=seed, degrees=False)
    rng = np.random.default_rng(seed)
    totals = {"remote_frontier": 0, "remote_picks": 0, "remote_inputs": 0, "inputs": 0, "edges": 0}
    hosts = range(min(parts, 4))
    for host in hosts:
        own = np.flatnonzero((assignment == host) & np.asarray(store.train_mask))
        for _ in range(batches):
            seeds = rng.choice(own, min(batch, len(own)), replace=False)
            inputs, blocks = sampler.sample(seeds)
            inputs = inputs.numpy()
            totals["inputs"] += len(inputs)
            totals["remote_inputs"] += int(np.count_nonzero(assignment[inputs] != host))
            for block in blocks:  # a block's destinations are a frontier; its edges their picks
                destinations = block.src_ids[:block.num_dst].numpy()
                remote = assignment[destinations] != host
                totals["remote_frontier"] += int(np.count_nonzero(remote))
                totals["remote_picks"] += int(np.diff(block.csc.indptr.numpy())[remote].sum())
                totals["edges"] += int(block.num_edges)
    return {key: value / (batches * len(hosts)) for key, value in totals.items()}


def message_bytes(share: dict, features: int, parts: int) -> float:
    """Bytes a host sends per step with the formats of ``fivefold.scale.distributed`` (symmetric traffic: what it
    asks for equals on average what it is asked): per layer an 8-byte local id per remote frontier node and a reply
    of an 8-byte count plus 8 bytes per pick; then an 8-byte id per remote input row and its float16 features; plus
    8 bytes of counts to every other host before each of the 4 variable-size exchanges."""
    sampling = 8 * share["remote_frontier"] * 2 + 8 * share["remote_picks"]
    rows = share["remote_inputs"] * (8 + 2 * features)
    return sampling + rows + 4 * 8 * (parts - 1)


def parameter_bytes(features: int) -> int:
    # SAGEConv: a linear for the neighbours' mean and one for the node itself, with one bias (see fivefold.graphs)
    from fivefold.graphs import GraphSAGE

    model = GraphSAGE(features, NUM_CLASSES, hidden=HIDDEN)
    return 4 * sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10_000_000)
    parser.add_argument("--edges", type=int, default=100_000_000)
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--small-nodes", type=int, default=1_000_000)
    parser.add_argument("--small-edges", type=int, default=10_000_000)
    parser.add_argument("--metis-max-edges", type=int, default=20_000_000)
    parser.add_argument("--workdir", type=Path, default=HERE / ".scale-data")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--io-threads", type=int, default=0, help="the trainer's --io-threads (0: features read "
                        "through the memory map; N: pread by N threads)")
    parser.add_argument("--metis-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.metis_child:
        metis_child(args.metis_child[0], int(args.metis_child[1]), args.metis_child[2], args.metis_child[3])
        return
    from fivefold.scale import open_store, partition_store

    args.workdir.mkdir(parents=True, exist_ok=True)
    store_path = args.workdir / f"rmat-{args.nodes}-{args.edges}-f{args.features}"
    print(f"store {store_path.name}", flush=True)
    built = build(store_path, args.nodes, args.edges, args.features)
    store = open_store(store_path)
    store_bytes = sum(entry["bytes"] for entry in store.manifest["arrays"].values())
    small_path = args.workdir / f"rmat-{args.small_nodes}-{args.small_edges}-f{args.features}"
    build(small_path, args.small_nodes, args.small_edges, args.features)
    print("partitioners (measured):", flush=True)
    partition_rows, _ = partitioners(open_store(small_path), small_path, args.workdir, args.metis_max_edges)
    large_rows, assignments = partitioners(store, store_path, args.workdir, args.metis_max_edges)
    partition_rows += large_rows
    written = {}
    for name, parts, balance in (("fennel", 2, "nodes+edges"), ("fennel", 2, "nodes"), ("single", 1, None)):
        target = args.workdir / f"{store_path.name}-{name}-{parts}-{balance or 'all'}"
        start = time.perf_counter()
        partition_store(store, target, parts, part=assignments[(2, name, balance)] if parts == 2 else None,
                        overwrite=True, progress=True)
        written[(parts, balance)] = {"path": target, "method": name, "balance": balance,
                                     "seconds": time.perf_counter() - start}
        print(f"  wrote {parts} part(s) ({name}, balance {balance}) in {time.perf_counter() - start:.0f} s",
              flush=True)
    print("training throughput (measured):", flush=True)
    runs = []
    for processes, threads, balance in ((1, 1, None), (1, 2, None), (2, 1, "nodes+edges"), (2, 1, "nodes")):
        row = train_run(written[(processes, balance)]["path"], args.workdir / "dist-run", processes, threads,
                        args.steps, args.io_threads)
        row["balance"] = balance
        runs.append(row)
        print(f"  {processes} process(es) x {threads} thread(s){f', balance {balance}' if balance else ''}: "
              f"{row['steps_per_s']:.2f} steps/s, {row['seeds_per_s']:,.0f} seeds/s, "
              f"{row['bytes_per_step_per_process']:,.0f} bytes/step/process, "
              f"peak {row['peak_rss_gib_per_process']:.2f} GiB/process", flush=True)
    print("remote reads per host and step (measured by sampling), and the model:", flush=True)
    shares = {parts: remote_share(store, assignments[(parts, "fennel", "nodes+edges")], parts) for parts in (2, 8, 64)}
    half = remote_share(store, assignments[(2, "fennel", "nodes+edges")], 2, batch=BATCH // 2)
    check = {"modelled_bytes_k2": message_bytes(half, args.features, 2),
             "measured_bytes_k2": runs[2]["bytes_per_step_per_process"],
             "note": f"the model's bytes for {BATCH // 2} seeds of one part (what each of the 2 measured processes "
                     "has per step) on the Fennel nodes+edges partition, against the measured run"}
    one = next(row for row in runs if row["processes"] == 1 and row["threads"] == 1)
    compute_s = 1 / one["steps_per_s"]
    params = parameter_bytes(args.features)
    model_rows = []
    for parts in (2, 8, 64):
        sent = message_bytes(shares[parts], args.features, parts)
        for gbit in LINKS_GBIT:
            bandwidth = gbit * 1e9 / 8
            exchange_s = sent / bandwidth + 10 * (parts - 1) * LATENCY_S
            allreduce_s = 2 * (parts - 1) / parts * params / bandwidth + 2 * (parts - 1) * LATENCY_S
            step_s = compute_s + exchange_s + allreduce_s
            memory = store_bytes / parts / 2**30 + 6 * args.nodes / 2**30 + \
                max(one["peak_rss_gib_per_process"] - store_bytes / 2**30, 0.0)
            model_rows.append({"hosts": parts, "link_gbit_s": gbit, "bytes_per_step": sent,
                               "remote_input_share": shares[parts]["remote_inputs"] / shares[parts]["inputs"],
                               "compute_s": compute_s, "exchange_s": exchange_s, "allreduce_s": allreduce_s,
                               "step_s": step_s, "seeds_per_s_all_hosts": parts * BATCH / step_s,
                               "speedup_over_one_host": parts * compute_s / step_s,
                               "memory_gib_per_host": memory})
    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "io_threads": args.io_threads,
              "store": {"path": str(store_path), "nodes": store.num_nodes, "edges": store.num_edges,
                        "bytes": store_bytes, **built},
              "partitioners": partition_rows, "written": [{**v, "path": str(v["path"])} for v in written.values()],
              "training": runs, "remote_shares": {str(k): v for k, v in shares.items()}, "bytes_check": check,
              "parameter_bytes": params, "model": model_rows,
              "model_assumptions": {"latency_s": LATENCY_S, "rounds_per_step": 10, "overlap": False,
                                    "seeds_per_host_and_step": BATCH, "compute": "measured 1 process x 1 thread"}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "distributed.json").write_text(json.dumps(result, indent=2))
    print("\n| edges | parts | method | balance | seconds | edge cut | node balance | edge balance |\n"
          "|---|---|---|---|---|---|---|---|")
    for row in partition_rows:
        peak = f" (peak {row['peak_gib']:.1f} GiB)" if "peak_gib" in row else ""
        print(f"| {row['edges']:.0e} | {row['parts']} | {row['method']} | {row['balance']} | "
              f"{row['seconds']:.1f}{peak} | {row['edge_cut']:.3f} | "
              f"{row['node_balance']:.3f} | {row['edge_balance']:.3f} |")
    print("\n| processes x threads | partition | steps/s | seeds/s | bytes sent per step and process | peak GiB per "
          "process |\n|---|---|---|---|---|---|")
    for row in runs:
        where = f"Fennel, {row['balance']}" if row["balance"] else "one part"
        print(f"| {row['processes']} x {row['threads']} | {where} | {row['steps_per_s']:.2f} | "
              f"{row['seeds_per_s']:,.0f} | "
              f"{row['bytes_per_step_per_process']:,.0f} | {row['peak_rss_gib_per_process']:.2f} |")
    print(f"\nbytes per step and process at K = 2, {BATCH // 2} seeds each: modelled "
          f"{check['modelled_bytes_k2']:,.0f}, measured {check['measured_bytes_k2']:,.0f}")
    print("\n| hosts | link Gbit/s | MB sent per step and host | remote input rows | step s (compute + exchange + "
          "all-reduce) | seeds/s, all hosts | speed-up over 1 host | GiB per host |\n|---|---|---|---|---|---|---|---|")
    for row in model_rows:
        print(f"| {row['hosts']} | {row['link_gbit_s']} | {row['bytes_per_step'] / 1e6:.2f} | "
              f"{row['remote_input_share']:.0%} | {row['step_s']:.3f} ({row['compute_s']:.3f} + {row['exchange_s']:.3f}"
              f" + {row['allreduce_s']:.4f}) | {row['seeds_per_s_all_hosts']:,.0f} | "
              f"{row['speedup_over_one_host']:.1f} | {row['memory_gib_per_host']:.2f} |")


if __name__ == "__main__":
    main()
