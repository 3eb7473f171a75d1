"""Shape correspondence as vertex labelling on the remeshed FAUST shapes: GEM-CNN, DiffusionNet and a GCN baseline,
from xyz and from heat-kernel signatures (HKS).

NOT the published FAUST protocol: FAUST's training shapes 0-79 are not in the data folder. Here the models train on
subject 8 (shapes 80-88, ``iso`` remeshing), choose their epoch on shape 89 (validation), and are tested on subject 9
(shapes 90-99), on ``iso`` and on ``dense`` (a different, non-uniform remeshing: discretisation robustness). Every
vertex's class is its FAUST-template vertex (6,890 classes).

Usage:
    FIVEFOLD_DATA=../shared/data .venv/bin/python experiments/faust_correspondence.py \
        [--runs diffusionnet:xyz gemcnn:hks ...] [--minutes 12] [--threads 1] [--report]

Each run trains for ``--minutes`` of CPU time on ``--threads`` threads (one mesh per step, Adam 1e-3), keeps the
weights of the best validation accuracy and writes ``runs/<model>-<input>.json`` under ``--out``; runs are skipped
when their file exists, so several processes can share the list. ``--report`` collects them into ``faust.md``,
``faust.json``, the cumulative geodesic-error plot ``faust_geodesic_error.png`` and a picture of a test shape coloured
by its geodesic error (``faust_error_mesh.png``).

Metrics: the fraction of test vertices given exactly their template vertex, and the geodesic error: on the test shape,
the geodesic distance (heat method) from the vertex to where the predicted template vertex lies, divided by the square
root of the shape's area. A template vertex's place on a test shape is the mean position of the vertices labelled with
it on that pose's ``iso`` and ``dense`` meshes (the same surface); a prediction naming a template vertex that neither
remeshing kept counts as an infinite error (the table gives their share). Geodesic errors are measured on the same 500
random vertices of every test shape for every model (one heat solve per sampled vertex, shared), accuracy on all
vertices.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from _mesh_models import MeshGCN
from torch import nn

from fivefold.data import FAUST_TEMPLATE_VERTICES, load_faust_remeshed
from fivefold.meshes import (
    GEMCNN,
    DiffusionNet,
    MeshOperators,
    heat_kernel_signature,
    hks_times,
    mesh_operators,
    vertex_areas,
)
from fivefold.train import KeepBest, ShuffledBatches, TimeBudget, fit

ROOT = Path(__file__).resolve().parents[1]
K_EIG = 128
HKS_COUNT = 16
SAMPLE = 500
TRAIN, VALIDATION, TEST = list(range(80, 89)), [89], list(range(90, 100))


MODELS = {
    "diffusionnet": lambda c: DiffusionNet(c, FAUST_TEMPLATE_VERTICES, width=128, blocks=4, dropout=0.5),
    "gemcnn": lambda c: GEMCNN(c, FAUST_TEMPLATE_VERTICES, copies=16, max_frequency=2, layers=4, head=128),
    "gcn": lambda c: MeshGCN(c, FAUST_TEMPLATE_VERTICES),
    # the shape of the paper's FAUST network (de Haan et al.'s reference code): three residual blocks of two
    # convolutions, 16 copies of frequencies 0..2; added after the first runs, when the plain stack's validation
    # accuracy stayed under 1 % (chosen on validation, see the README)
    "gemres": lambda c: GEMCNN(c, FAUST_TEMPLATE_VERTICES, copies=16, max_frequency=2, layers=6, head=128,
                               residual=True),
}


class MeshInput:
    """What a model needs of one mesh: operators (float32), the edge graph, the features and the labels."""

    def __init__(self, mesh, labels, ops: MeshOperators, features: torch.Tensor) -> None:
        self.mesh, self.labels, self.ops32 = mesh, labels, ops.to(torch.float32)
        self.graph = mesh.to_graph()
        self.features = features.float()


def features_of(mesh, ops: MeshOperators, kind: str, times: torch.Tensor) -> torch.Tensor:
    if kind == "xyz":
        return mesh.vertices - (ops.mass[:, None] * mesh.vertices).sum(0) / ops.mass.sum()  # centred on the surface
    return heat_kernel_signature(ops.evals, ops.evecs, times)


def load_inputs(kind: str, cache: Path) -> tuple[dict, dict]:
    """Per remeshing and FAUST id: MeshInput for xyz and for HKS."""
    sets = {name: load_faust_remeshed(name) for name in ("iso", "dense")}
    ops = {name: [mesh_operators(m, K_EIG, cache_dir=cache) for m in data.meshes] for name, data in sets.items()}
    times = hks_times(ops["iso"][0].evals, HKS_COUNT)  # one set of diffusion times for every shape (shape 80's)
    inputs = {}
    for name, data in sets.items():
        for k, (mesh, labels, fid) in enumerate(zip(data.meshes, data.template_index, data.faust_id, strict=True)):
            inputs[(name, fid)] = MeshInput(mesh, labels, ops[name][k], features_of(mesh, ops[name][k], kind, times))
    return sets, inputs


def call(model, item: MeshInput) -> torch.Tensor:
    """``[V, 6890]`` logits: the GCN reads the edge graph, the mesh models the operators."""
    return model(item.features, item) if isinstance(model, MeshGCN) else model(item.features, item.ops32)


def predict(model, item: MeshInput) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return call(model, item).argmax(dim=1)


def run_one(model_name: str, input_kind: str, minutes: float, cache: Path, seed: int) -> dict:
    _, inputs = load_inputs(input_kind, cache)
    train = [inputs[("iso", f)] for f in TRAIN]
    val = inputs[("iso", VALIDATION[0])]
    torch.manual_seed(seed)
    model = MODELS[model_name](train[0].features.shape[1])

    def loss(model, index):
        model.train()
        item = train[int(index[0])]
        return nn.functional.cross_entropy(call(model, item), item.labels)

    def validation(model):
        return {"val_accuracy": float((predict(model, val) == val.labels).float().mean())}

    keep = KeepBest(lambda row, best: best is None or row["val_accuracy"] > best["val_accuracy"])
    budget = TimeBudget(minutes * 60, clock="cpu")
    began = time.perf_counter()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = fit(model, ShuffledBatches(len(train), 1, seed=seed), loss=loss, optimiser=optimiser, epochs=10_000,
                  metrics=validation, callbacks=[keep, budget], progress=False, desc=f"{model_name}-{input_kind}")
    result = {"model": model_name, "input": input_kind, "seed": seed, "epochs": history[-1]["epoch"],
              "best_epoch": keep.best_row["epoch"], "val_accuracy": keep.best_row["val_accuracy"],
              "cpu_seconds": budget.spent(), "wall_seconds": time.perf_counter() - began,
              "parameters": sum(p.numel() for p in model.parameters()),
              "curve": [{"epoch": r["epoch"], "train_loss": r["train_loss"], "val_accuracy": r["val_accuracy"]}
                        for r in history]}
    for remeshing in ("iso", "dense"):
        predictions = {}
        correct = total = 0
        for fid in TEST:
            item = inputs[(remeshing, fid)]
            predicted = predict(model, item)
            correct += int((predicted == item.labels).sum())
            total += len(predicted)
            predictions[str(fid)] = predicted.numpy().astype(np.int16)
        result[f"{remeshing}_accuracy"] = correct / total
        result[f"{remeshing}_predictions"] = predictions
    print(f"{model_name}-{input_kind}: val {result['val_accuracy']:.4f} (epoch {result['best_epoch']} of "
          f"{result['epochs']}), test iso {result['iso_accuracy']:.4f}, dense {result['dense_accuracy']:.4f}",
          flush=True)
    return result


# -- geodesic errors ---------------------------------------------------------------------------------------------------
def template_positions(sets: dict, fid: int) -> tuple[np.ndarray, np.ndarray]:
    """``[6890, 3]``: where each template vertex lies on pose ``fid`` (mean over both remeshings); and which are
    known."""
    total, count = np.zeros((FAUST_TEMPLATE_VERTICES, 3)), np.zeros(FAUST_TEMPLATE_VERTICES)
    for data in sets.values():
        k = data.faust_id.index(fid)
        labels = data.template_index[k].numpy()
        np.add.at(total, labels, data.meshes[k].vertices.numpy())
        np.add.at(count, labels, 1)
    known = count > 0
    total[known] /= count[known, None]
    return total, known


def geodesic_sample(sets: dict, out: Path) -> dict:
    """For every test shape: SAMPLE random vertices, the heat-method distance from each to every vertex, the square
    root of the area (cached in ``geodesic_sample.npz``)."""
    path = out / "geodesic_sample.npz"
    if path.is_file():
        with np.load(path) as stored:
            return {key: stored[key] for key in stored.files}
    import potpourri3d as pp3d

    stored = {}
    rng = np.random.default_rng(0)
    for remeshing, data in sets.items():
        for fid in TEST:
            mesh = data.meshes[data.faust_id.index(fid)]
            solver = pp3d.MeshHeatMethodDistanceSolver(mesh.vertices.numpy(), mesh.faces.numpy())
            sample = rng.choice(mesh.num_vertices, SAMPLE, replace=False)
            stored[f"{remeshing}_{fid}_sample"] = sample
            stored[f"{remeshing}_{fid}_distance"] = np.stack([solver.compute_distance(int(v)) for v in sample]
                                                             ).astype(np.float32)
            stored[f"{remeshing}_{fid}_scale"] = np.sqrt(float(vertex_areas(mesh).sum()))
    np.savez(path, **stored)
    return stored


def geodesic_errors(result: dict, sets: dict, sample: dict, remeshing: str, normalise: str = "area") -> np.ndarray:
    """Geodesic error of the sampled vertices of every test shape divided by the square root of its area
    (``normalise="area"``) or by its geodesic diameter (``"diameter"``, as DiffusionNet's benchmark code reports it;
    estimated as the largest distance from the 500 sampled vertices); inf where the predicted template vertex is on
    neither remeshing of the pose."""
    from scipy.spatial import cKDTree

    errors = []
    data = sets[remeshing]
    for fid in TEST:
        mesh = data.meshes[data.faust_id.index(fid)]
        positions, known = template_positions(sets, fid)
        tree = cKDTree(mesh.vertices.numpy())
        vertices = sample[f"{remeshing}_{fid}_sample"]
        predicted = np.asarray(result[f"{remeshing}_predictions"][str(fid)])[vertices].astype(np.int64)
        target = tree.query(positions[predicted])[1]
        distance = sample[f"{remeshing}_{fid}_distance"][np.arange(len(vertices)), target]
        scale = sample[f"{remeshing}_{fid}_scale"] if normalise == "area" else \
            sample[f"{remeshing}_{fid}_distance"].max()  # the sampled sources' largest distance: the diameter
        errors.append(np.where(known[predicted], distance / scale, np.inf))
    return np.concatenate(errors)


def _save_run(result: dict, path: Path) -> None:
    """The scores as JSON, the predicted template vertices (int16) beside them as a compressed npz."""
    arrays = {}
    for remeshing in ("iso", "dense"):
        predictions = result.pop(f"{remeshing}_predictions")
        arrays.update({f"{remeshing}_{fid}": np.asarray(predictions[str(fid)], dtype=np.int16) for fid in TEST})
    np.savez_compressed(path.with_suffix(".npz"), **arrays)
    path.write_text(json.dumps(result))


def _load_run(path: Path) -> dict:
    result = json.loads(path.read_text())
    if "iso_predictions" in result:  # an older run kept them inline: move them out
        _save_run(result, path)
    with np.load(path.with_suffix(".npz")) as stored:
        for remeshing in ("iso", "dense"):
            result[f"{remeshing}_predictions"] = {str(fid): stored[f"{remeshing}_{fid}"] for fid in TEST}
    return result


def report(out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = {name: load_faust_remeshed(name) for name in ("iso", "dense")}
    sample = geodesic_sample(sets, out)
    results = [_load_run(p) for p in sorted((out / "runs").glob("*.json"))]
    rows, curves = [], {}
    for r in results:
        row = {k: r[k] for k in ("model", "input", "seed", "epochs", "best_epoch", "val_accuracy", "iso_accuracy",
                                 "dense_accuracy", "cpu_seconds", "parameters")}
        for remeshing in ("iso", "dense"):
            errors = geodesic_errors(r, sets, sample, remeshing)
            curves[(r["model"], r["input"], remeshing)] = errors
            finite = errors[np.isfinite(errors)]
            row[f"{remeshing}_mean_geodesic_error"] = float(finite.mean())
            row[f"{remeshing}_unplaced"] = float(np.isinf(errors).mean())
            row[f"{remeshing}_within_0.05"] = float((errors <= 0.05).mean())
            by_diameter = geodesic_errors(r, sets, sample, remeshing, "diameter")
            finite_by_diameter = by_diameter[np.isfinite(by_diameter)]
            row[f"{remeshing}_mean_error_percent_of_diameter"] = float(100 * finite_by_diameter.mean())
        rows.append(row)
    (out / "faust.json").write_text(json.dumps(rows, indent=1))
    lines = ["| model | input | val acc | test acc iso | test acc dense | mean geo. err. iso | dense | "
             "% of diameter iso | dense | err <= 0.05 iso | dense | not placed iso | dense | epochs (best) | CPU min |",
             "|" + "---|" * 15]
    for row in rows:
        lines.append(f"| {row['model']} | {row['input']} | {100 * row['val_accuracy']:.1f} % | "
                     f"{100 * row['iso_accuracy']:.1f} % | {100 * row['dense_accuracy']:.1f} % | "
                     f"{row['iso_mean_geodesic_error']:.4f} | {row['dense_mean_geodesic_error']:.4f} | "
                     f"{row['iso_mean_error_percent_of_diameter']:.2f} | "
                     f"{row['dense_mean_error_percent_of_diameter']:.2f} | "
                     f"{100 * row['iso_within_0.05']:.1f} % | {100 * row['dense_within_0.05']:.1f} % | "
                     f"{100 * row['iso_unplaced']:.1f} % | {100 * row['dense_unplaced']:.1f} % | "
                     f"{row['epochs']} ({row['best_epoch']}) | {row['cpu_seconds'] / 60:.1f} |")
    (out / "faust.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    radii = np.linspace(0, 0.25, 200)
    for ax, remeshing in zip(axes, ("iso", "dense"), strict=True):
        for (model, kind, which), errors in sorted(curves.items()):
            if which == remeshing:
                ax.plot(radii, [(errors <= r).mean() for r in radii], label=f"{model} ({kind})")
        ax.set_title(f"trained on iso 80-88, tested on {remeshing} 90-99")
        ax.set_xlabel("geodesic error / sqrt(area)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction of vertices")
    axes[1].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "faust_geodesic_error.png", dpi=120)
    best = max(results, key=lambda r: r["val_accuracy"])
    _error_picture(best, sets, out)


def _error_picture(result: dict, sets: dict, out: Path) -> None:
    """Test shape 90 (dense) coloured by the geodesic error of the best model's prediction at every vertex."""
    import matplotlib.pyplot as plt
    import potpourri3d as pp3d
    from scipy.spatial import cKDTree

    data = sets["dense"]
    fid = TEST[0]
    mesh = data.meshes[data.faust_id.index(fid)]
    positions, known = template_positions(sets, fid)
    predicted = np.asarray(result["dense_predictions"][str(fid)]).astype(np.int64)
    target = cKDTree(mesh.vertices.numpy()).query(positions[predicted])[1]
    solver = pp3d.MeshHeatMethodDistanceSolver(mesh.vertices.numpy(), mesh.faces.numpy())
    scale = np.sqrt(float(vertex_areas(mesh).sum()))
    errors = np.zeros(mesh.num_vertices)
    for t in np.unique(target):  # one solve per distinct predicted place
        chosen = np.flatnonzero(target == t)
        errors[chosen] = solver.compute_distance(int(t))[chosen] / scale
    errors[~known[predicted]] = errors.max()
    v, f = mesh.vertices.numpy(), mesh.faces.numpy()
    fig = plt.figure(figsize=(5, 7))
    ax = fig.add_subplot(projection="3d")
    shown = ax.plot_trisurf(v[:, 0], v[:, 2], v[:, 1], triangles=f, linewidth=0, antialiased=False, cmap="magma_r")
    shown.set_array(np.clip(errors[f].mean(axis=1), 0, 0.1))
    shown.set_clim(0.0, 0.1)  # the colour scale was set from the heights when the surface was drawn
    ax.set_box_aspect(np.ptp(v[:, [0, 2, 1]], axis=0), zoom=1.2)
    ax.view_init(elev=10, azim=-90)
    ax.set_axis_off()
    fig.colorbar(shown, ax=ax, shrink=0.6, label="geodesic error / sqrt(area) (clipped at 0.1)")
    ax.set_title(f"{result['model']} ({result['input']}, best validation accuracy), FAUST {fid} dense")
    fig.savefig(out / "faust_error_mesh.png", dpi=110, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="*", default=[f"{m}:{i}" for m in MODELS for i in ("xyz", "hks")],
                        help=f"model:input pairs (models: {', '.join(MODELS)}; inputs: xyz, hks)")
    parser.add_argument("--minutes", type=float, default=12.0, help="CPU minutes of training per run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "faust")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "mesh_operators",
                        help="where the mesh operators are cached")
    parser.add_argument("--report", action="store_true", help="only collect the finished runs into tables and plots")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    (args.out / "runs").mkdir(parents=True, exist_ok=True)
    if args.report:
        report(args.out)
        return
    for spec in args.runs:
        model_name, input_kind = spec.split(":")
        path = args.out / "runs" / f"{model_name}-{input_kind}-seed{args.seed}.json"
        if path.is_file():
            continue
        _save_run(run_one(model_name, input_kind, args.minutes, args.cache, args.seed), path)


if __name__ == "__main__":
    main()
