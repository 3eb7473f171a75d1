"""Message-passing speed: fivefold vs torch_geometric vs torch's CSR product, in one process.

Usage:
    .venv/bin/python benchmarks/message_passing.py [--sizes small large] [--repeats 3] [--out benchmarks/results]

Builds random directed graphs (N=1e5, E=1e6 "small" and N=1e6, E=1e7 "large"; F=64 in and out; edges drawn
uniformly), then times fivefold's and torch_geometric's GCNConv, SAGEConv (mean) and GATConv (1 head), forward and
forward+backward (gradient into the input features and all parameters), reporting the median of ``--repeats``
timed calls after one warm-up call. The floor is torch's own ``sparse_csr @ dense`` on the same adjacency (with
torch's autograd for the backward). fivefold computes its CSR view and normalisation once per graph and caches them
(a Graph never changes); the time of that first, cold call is reported separately.

torch_geometric is a peer, never a dependency: if it is not importable here, the script creates
``benchmarks/.venv-peer`` (torch==2.13.0, torch_geometric, fivefold) and re-runs itself there.
Prints a table and writes ``message_passing.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from _timing import ensure_peer, timed

HERE = Path(__file__).resolve().parent
SIZES = {"tiny": (10_000, 100_000), "small": (100_000, 1_000_000), "large": (1_000_000, 10_000_000)}


def bench_size(N: int, E: int, F: int, repeats: int, label: str) -> dict:
    import torch
    import torch_geometric.nn as pyg

    import fivefold.graphs as ff
    from fivefold.graphs import Graph

    edge_index = torch.randint(0, N, (2, E))
    x = torch.randn(N, F)
    grad = torch.randn(N, F)
    result: dict = {"num_nodes": N, "num_edges": E}
    # the floor: torch's CSR product on the same adjacency (rows = targets)
    graph = Graph(edge_index, N)
    csc = graph.csc()
    adjacency = torch.sparse_csr_tensor(csc.indptr, csc.indices, torch.ones(E), (N, N))
    xg = x.clone().requires_grad_()

    def floor_forward_backward():
        xg.grad = None
        torch.sparse.mm(adjacency, xg).backward(grad)

    result["csr_floor"] = {
        "forward": timed(lambda: torch.sparse.mm(adjacency, x), repeats),
        "forward_backward": timed(floor_forward_backward, repeats),
    }
    print(f"  {label} torch CSR floor: fwd {result['csr_floor']['forward']:.3f} s, "
          f"fwd+bwd {result['csr_floor']['forward_backward']:.3f} s", flush=True)
    layers = {
        "GCNConv": (ff.GCNConv(F, F), pyg.GCNConv(F, F)),
        "SAGEConv": (ff.SAGEConv(F, F), pyg.SAGEConv(F, F)),
        "GATConv": (ff.GATConv(F, F), pyg.GATConv(F, F)),
    }
    for name, (ours, theirs) in layers.items():
        fresh = Graph(edge_index, N)
        start = time.perf_counter()
        with torch.no_grad():
            ours(x, fresh)
        entry = {"fivefold_cold_first_call": time.perf_counter() - start}
        del fresh
        calls = {"fivefold": (ours, graph), "pyg": (theirs, edge_index)}
        for lib, (layer, structure) in calls.items():
            inp = x.clone().requires_grad_()

            def forward(layer=layer, structure=structure):
                with torch.no_grad():
                    layer(x, structure)

            def forward_backward(layer=layer, structure=structure, inp=inp):
                inp.grad = None
                layer.zero_grad(set_to_none=True)
                layer(inp, structure).backward(grad)

            entry[f"{lib}_forward"] = timed(forward, repeats)
            entry[f"{lib}_forward_backward"] = timed(forward_backward, repeats)
            print(f"  {label} {name} {lib}: fwd {entry[f'{lib}_forward']:.3f} s, "
                  f"fwd+bwd {entry[f'{lib}_forward_backward']:.3f} s", flush=True)
        for kind in ("forward", "forward_backward"):
            entry[f"speedup_vs_pyg_{kind}"] = entry[f"pyg_{kind}"] / entry[f"fivefold_{kind}"]
            entry[f"ratio_to_floor_{kind}"] = entry[f"fivefold_{kind}"] / result["csr_floor"][kind]
        result[name] = entry
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["small", "large"], choices=sorted(SIZES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    ensure_peer()

    import torch
    import torch_geometric

    torch.manual_seed(0)
    F = args.features
    results = {"torch": torch.__version__, "torch_geometric": torch_geometric.__version__,
               "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
               "repeats": args.repeats, "features": F, "sizes": {}}
    rows = []
    for size in args.sizes:
        size_result = bench_size(*SIZES[size], F, args.repeats, label=size)
        results["sizes"][size] = size_result
        rows += [(size, name, size_result[name]) for name in ("GCNConv", "SAGEConv", "GATConv")]

    header = (f"{'size':<6} {'layer':<9} {'ff fwd':>8} {'pyg fwd':>8} {'x':>6} {'ff f+b':>8} {'pyg f+b':>8} {'x':>6} "
              f"{'floor f':>8} {'floor f+b':>9} {'ff/floor f+b':>12} {'ff cold':>8}")
    print(header)
    for size, name, e in rows:
        floor = results["sizes"][size]["csr_floor"]
        print(f"{size:<6} {name:<9} {e['fivefold_forward']:8.3f} {e['pyg_forward']:8.3f} "
              f"{e['speedup_vs_pyg_forward']:6.2f} {e['fivefold_forward_backward']:8.3f} "
              f"{e['pyg_forward_backward']:8.3f} {e['speedup_vs_pyg_forward_backward']:6.2f} "
              f"{floor['forward']:8.3f} {floor['forward_backward']:9.3f} "
              f"{e['ratio_to_floor_forward_backward']:12.2f} "
              f"{e['fivefold_cold_first_call']:8.3f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "message_passing.json").write_text(json.dumps(results, indent=2))
    print(f"times in seconds (median of {args.repeats}); x = PyG time / fivefold time")
    print(f"wrote {out / 'message_passing.json'}")


if __name__ == "__main__":
    main()
