"""Mesh operators and layers: how the precomputation and a layer's forward+backward grow with the vertex count.

Usage:
    FIVEFOLD_DATA=../shared/data .venv/bin/python benchmarks/meshes.py [--levels 0 2 4] [--k-eig 64] [--threads 1]

Meshes: FAUST shape 80 (``iso`` remeshing, 6,742 vertices, a real scan) subdivided ``level`` times by trimesh's
midpoint subdivision (4x the faces each time): about 6.7e3, 1.1e5 and 1.7e6 vertices for levels 0, 2 and 4.

Precomputation, each timed once (seconds): fivefold's cotangent Laplacian against ``robust_laplacian.mesh_laplacian``
(the intrinsic-Delaunay Laplacian DiffusionNet's authors use; DiffusionNet's own reference code is not a pip package),
the eigenbasis (``k_eig`` pairs, scipy shift-invert Lanczos), frames + connection + gradient operators, and one
heat-method geodesic solve (potpourri3d: its factorisation and one distance). Layers, median of ``--repeats``
forward+backward calls with gradients into input and weights, on 48 channels: ``GEMConv`` (16 band-limited fields of
frequencies 0..1), ``DiffusionNetBlock`` (width 48), ``GeodesicConv`` (8 rotations) and the graph core's ``GCNConv``
on the mesh's edge graph; the output's gradient is a fixed dense random tensor. GEMConv and GCNConv are timed
alternately (the order swapped every round), and GEM / GCN is the median of the per-round ratios. Target: a GEM-CNN
layer within 3x of a GCN layer. Writes ``meshes.json`` and ``meshes.png`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from _timing import timed

from fivefold.data import load_faust_remeshed
from fivefold.graphs import GCNConv
from fivefold.groups import so2_band_field
from fivefold.meshes import (
    DiffusionNetBlock,
    GEMConv,
    GeodesicConv,
    Mesh,
    cotan_laplacian,
    edge_coordinates,
    gradient_operators,
    laplacian_eigenbasis,
    mesh_operators,
    tangent_frames,
)

HERE = Path(__file__).resolve().parent
CHANNELS = 48


def subdivided(level: int) -> Mesh:
    import trimesh

    base = load_faust_remeshed("iso").meshes[0]
    vertices, faces = base.vertices.numpy(), base.faces.numpy()
    for _ in range(level):
        vertices, faces = trimesh.remesh.subdivide(vertices, faces)
    return Mesh(torch.from_numpy(np.ascontiguousarray(vertices)), np.ascontiguousarray(faces))


def once(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def step(module, x, *extra):
    """One forward+backward call of a layer that keeps ``x``'s shape. The output's gradient is a fixed random tensor,
    dense as in training (the gradient of ``out.sum()`` is a broadcast view, which every product that consumes it
    copies first)."""
    grad = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=x.dtype)

    def run() -> None:
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x, *extra).backward(grad)

    return run


def measure(level: int, k_eig: int, repeats: int, geodesic_max_vertices: int) -> dict:
    import potpourri3d as pp3d
    import robust_laplacian

    mesh = subdivided(level)
    v, f = mesh.vertices.numpy(), mesh.faces.numpy()
    row = {"level": level, "vertices": mesh.num_vertices, "faces": mesh.num_faces}
    row["laplacian_s"], (L, M) = once(lambda: cotan_laplacian(mesh))
    row["robust_laplacian_s"], _ = once(lambda: robust_laplacian.mesh_laplacian(v, f))
    row["eigenbasis_s"], _ = once(lambda: laplacian_eigenbasis(L, M, k_eig))
    edges = mesh.edges
    edge_index = torch.cat([edges, edges.flip(0)], dim=1)

    def connection():
        frames = tangent_frames(mesh)
        edge_coordinates(mesh.vertices, frames, edge_index)
        gradient_operators(mesh.vertices, frames, edge_index)

    row["frames_connection_gradients_s"], _ = once(connection)
    row["geodesic_factor_s"], solver = once(lambda: pp3d.MeshHeatMethodDistanceSolver(v, f))
    row["geodesic_solve_s"], _ = once(lambda: solver.compute_distance(0))
    row["all_operators_s"], ops = once(lambda: mesh_operators(mesh, k_eig))
    ops = ops.to(torch.float32)
    graph = mesh.to_graph()
    torch.manual_seed(0)
    field = so2_band_field(16, 1)
    x = torch.randn(mesh.num_vertices, CHANNELS, requires_grad=True)
    layers = {
        "gemconv": (GEMConv(field, field), ops),
        "diffusionnet_block": (DiffusionNetBlock(CHANNELS, dropout=0.0), ops),
        "geodesic_conv": (GeodesicConv(CHANNELS, CHANNELS, rotations=8), ops),
        "gcn": (GCNConv(CHANNELS, CHANNELS), graph),
    }
    if mesh.num_vertices > geodesic_max_vertices:  # too slow to time at this size on 1 thread: left out (None)
        del layers["geodesic_conv"]
        row["geodesic_conv_s"] = None
    runs = {name: step(layer, x, context) for name, (layer, context) in layers.items()}
    for name in ("diffusionnet_block", "geodesic_conv"):
        if name in runs:
            row[f"{name}_s"] = timed(runs[name], repeats)
    # GEM and GCN alternate, in the order GEM, GCN in even rounds and GCN, GEM in odd ones, so a drift of the
    # machine's speed, or one layer's effect on the caches, hits both alike
    samples: dict[str, list[float]] = {"gemconv": [], "gcn": []}
    for name in samples:
        runs[name]()  # warm-up
    for round_ in range(repeats):
        for name in (("gemconv", "gcn") if round_ % 2 == 0 else ("gcn", "gemconv")):
            start = time.perf_counter()
            runs[name]()
            samples[name].append(time.perf_counter() - start)
    for name, times in samples.items():
        row[f"{name}_s"] = statistics.median(times)
    row["gem_over_gcn"] = statistics.median(g / c for g, c in zip(samples["gemconv"], samples["gcn"], strict=True))
    print(f"level {level}: {mesh.num_vertices:,} vertices: "
          + ", ".join(f"{k} {v:.3g}" for k, v in row.items()
                      if v is not None and (k.endswith("_s") or k == "gem_over_gcn")), flush=True)
    return row


COLUMNS = ["vertices", "laplacian_s", "robust_laplacian_s", "eigenbasis_s", "frames_connection_gradients_s",
           "geodesic_factor_s", "geodesic_solve_s", "all_operators_s", "gemconv_s", "diffusionnet_block_s",
           "geodesic_conv_s", "gcn_s", "gem_over_gcn"]


def report(rows: list[dict], meta: dict, out: Path) -> None:
    """Prints the table and writes ``meshes.json`` and ``meshes.png`` to ``out``."""
    print("| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS))
    for row in rows:
        print("| " + " | ".join(f"{row[c]:,}" if c == "vertices" else "-" if row[c] is None else f"{row[c]:.3g}"
                                for c in COLUMNS) + " |")
    out.mkdir(parents=True, exist_ok=True)
    (out / "meshes.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    n = [r["vertices"] for r in rows]
    for key in COLUMNS[1:8]:
        axes[0].loglog(n, [r[key] for r in rows], "o-", label=key[:-2])
    for key in COLUMNS[8:12]:
        timed_rows = [r for r in rows if r[key] is not None]
        axes[1].loglog([r["vertices"] for r in timed_rows], [r[key] for r in timed_rows], "o-", label=key[:-2])
    axes[0].set_title(f"precomputation (k_eig = {meta['k_eig']})")
    axes[1].set_title(f"layer forward + backward ({CHANNELS} channels, {meta['threads']} thread)")
    for ax in axes:
        ax.set_xlabel("vertices")
        ax.set_ylabel("seconds")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "meshes.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", nargs="+", type=int, default=[0, 2, 4])
    parser.add_argument("--k-eig", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--geodesic-max-vertices", type=int, default=200_000,
                        help="time GeodesicConv only on meshes up to this size (8 s a call at 1.1e5 vertices, idle)")
    parser.add_argument("--merge", type=Path, nargs="+", metavar="JSON",
                        help="instead of measuring, join the rows of earlier runs' meshes.json (same threads and "
                             "k_eig) into one table, meshes.json and meshes.png under --out")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    if args.merge:
        runs = [json.loads(path.read_text()) for path in args.merge]
        if len({(r["meta"]["threads"], r["meta"]["k_eig"]) for r in runs}) != 1:
            parser.error("--merge: the runs differ in threads or k_eig")
        rows = sorted((row for r in runs for row in r["rows"]), key=lambda row: row["vertices"])
        report(rows, {**runs[0]["meta"], "merged_from": [str(path) for path in args.merge]}, args.out)
        return
    torch.set_num_threads(args.threads)
    rows = [measure(level, args.k_eig, args.repeats, args.geodesic_max_vertices) for level in args.levels]
    meta = {"machine": platform.processor() or platform.machine(), "threads": args.threads, "k_eig": args.k_eig,
            "channels": CHANNELS, "torch": torch.__version__}
    report(rows, meta, args.out)


if __name__ == "__main__":
    main()
