"""Part segmentation and mesh classification on the labelled Princeton Segmentation Benchmark (10 of its categories).

Segmentation, per category: 3 random splits of its 20 meshes into 12 training and 8 test meshes (split ``s`` draws a
permutation with seed ``s``); every face's part label is predicted as the mean of its three vertices' outputs; face
accuracy plain (fraction of faces) and area-weighted (fraction of surface area). Classification: 5 random splits of
each category into 16 training and 4 test meshes; the area-weighted mean of the per-vertex features is classified.

Models: DiffusionNet (Sharp et al. 2022), GEM-CNN (de Haan et al. 2021: four gauge-equivariant convolutions on 16
fields of frequencies 0..2 with the regular nonlinearity, as in the FAUST experiment's ``gemcnn``, and a per-vertex
head of width 64; added after the DiffusionNet and GCN tables had been seen, its settings fixed before its runs) and
the graph core's GCN on the mesh's edge graph (the isotropic baseline), on heat-kernel signatures (Sun et al. 2009;
16 log-spaced times from the first mesh's spectrum, the same for every mesh), which do not depend on the meshes'
arbitrary orientations. Meshes are centred and scaled to unit area. The
settings were fixed before any run (DiffusionNet's defaults at width 64; no tuning, so no validation split): Adam
1e-3, one mesh per step, ``--minutes`` of CPU time per run (operators and features are built before the clock
starts), the final weights tested.

Usage:
    FIVEFOLD_DATA=../shared/data .venv/bin/python experiments/psb_segmentation.py [--task segmentation|classification]
        [--models diffusionnet gcn gemcnn] [--minutes 1.5] [--threads 1] [--report]

Writes ``runs/*.json`` under ``--out`` (finished runs are skipped, so several processes can share the work) and with
``--report`` ``psb.md``, ``psb.json`` and ``psb_parts.png`` (a test mesh coloured by predicted part).
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

from fivefold.data import load_psb
from fivefold.meshes import (
    GEMCNN,
    DiffusionNet,
    Mesh,
    face_areas,
    faces_from_vertices,
    global_mean,
    heat_kernel_signature,
    hks_times,
    mesh_operators,
)
from fivefold.train import ShuffledBatches, TimeBudget, fit

ROOT = Path(__file__).resolve().parents[1]
K_EIG = 128
WIDTH = 64


MODELS = {
    "diffusionnet": lambda c, k: DiffusionNet(c, k, width=WIDTH, blocks=4, dropout=0.5),
    "gcn": lambda c, k: MeshGCN(c, k, width=WIDTH),
    "gemcnn": lambda c, k: GEMCNN(c, k, copies=16, max_frequency=2, layers=4, head=WIDTH),
}


class Item:
    """One mesh centred and scaled to unit area, its operators (cached on disk), edge graph and HKS features (at one
    set of diffusion times shared by every mesh: the times of the first mesh, as all have unit area)."""

    times: torch.Tensor | None = None

    def __init__(self, mesh: Mesh, cache: Path) -> None:
        v = mesh.vertices
        area = float(face_areas(mesh).sum())
        self.mesh = Mesh((v - v.mean(dim=0)) / area ** 0.5, mesh.faces)
        self.ops = mesh_operators(self.mesh, K_EIG, cache_dir=cache)
        self.ops32 = self.ops.to(torch.float32)
        self.graph = self.mesh.to_graph()
        if Item.times is None:
            Item.times = hks_times(self.ops.evals, 16)
        self.features = heat_kernel_signature(self.ops.evals, self.ops.evecs, Item.times).float()
        self.face_area = face_areas(self.mesh).float()


def vertex_outputs(model, item: Item) -> torch.Tensor:
    return model(item.features, item) if isinstance(model, MeshGCN) else model(item.features, item.ops32)


def run_segmentation(model_name: str, category: str, split: int, minutes: float, items: list, data) -> dict:
    chosen = data.of_category(category)
    order = np.random.default_rng(split).permutation(len(chosen))
    train = [chosen[i] for i in order[:12]]
    test = [chosen[i] for i in order[12:]]
    classes = len(data.label_names[data.category[chosen[0]]])
    for k in train + test:  # operators and features before the clock starts
        items[k]
    torch.manual_seed(split)
    model = MODELS[model_name](16, classes)

    def loss(model, index):
        model.train()
        k = train[int(index[0])]
        logits = faces_from_vertices(vertex_outputs(model, items[k]), items[k].mesh.faces)
        return nn.functional.cross_entropy(logits, data.face_labels[k])

    budget = TimeBudget(minutes * 60, clock="cpu")
    began = time.perf_counter()
    history = fit(model, ShuffledBatches(len(train), 1, seed=split), loss=loss,
                  optimiser=torch.optim.Adam(model.parameters(), lr=1e-3), epochs=10_000, callbacks=[budget],
                  progress=False, desc=f"{model_name}-{category}-{split}")
    model.eval()
    correct = faces = 0
    area_correct = area = 0.0
    predictions = {}
    with torch.no_grad():
        for k in test:
            predicted = faces_from_vertices(vertex_outputs(model, items[k]), items[k].mesh.faces).argmax(dim=1)
            right = predicted == data.face_labels[k]
            correct += int(right.sum())
            faces += len(right)
            area_correct += float(items[k].face_area[right].sum())
            area += float(items[k].face_area.sum())
            predictions[str(k)] = predicted.numpy().astype(np.int8).tolist()
    result = {"task": "segmentation", "model": model_name, "category": category, "split": split,
              "face_accuracy": correct / faces, "area_accuracy": area_correct / area, "epochs": history[-1]["epoch"],
              "cpu_seconds": budget.spent(), "wall_seconds": time.perf_counter() - began, "test": test,
              "first_test_prediction": predictions[str(test[0])]}
    print(f"{model_name} {category} split {split}: faces {result['face_accuracy']:.3f}, area "
          f"{result['area_accuracy']:.3f} after {result['epochs']} epochs", flush=True)
    return result


class Classifier(nn.Module):
    def __init__(self, backbone: nn.Module, classes: int) -> None:
        super().__init__()
        self.backbone, self.head = backbone, nn.Linear(WIDTH, classes)

    def forward(self, item: Item) -> torch.Tensor:
        return self.head(global_mean(vertex_outputs(self.backbone, item), item.ops.mass))


def run_classification(model_name: str, split: int, minutes: float, items: list, data) -> dict:
    rng = np.random.default_rng(100 + split)
    train, test = [], []
    for name in data.category_names:
        chosen = np.array(data.of_category(name))[rng.permutation(20)]
        train += chosen[:16].tolist()
        test += chosen[16:].tolist()
    for k in train + test:  # operators and features before the clock starts
        items[k]
    torch.manual_seed(split)
    model = Classifier(MODELS[model_name](16, WIDTH), len(data.category_names))
    labels = torch.tensor(data.category)

    def loss(model, index):
        model.train()
        k = train[int(index[0])]
        return nn.functional.cross_entropy(model(items[k])[None], labels[k:k + 1])

    budget = TimeBudget(minutes * 60, clock="cpu")
    history = fit(model, ShuffledBatches(len(train), 1, seed=split), loss=loss,
                  optimiser=torch.optim.Adam(model.parameters(), lr=1e-3), epochs=10_000, callbacks=[budget],
                  progress=False, desc=f"{model_name}-classification-{split}")
    model.eval()
    with torch.no_grad():
        predicted = [int(model(items[k]).argmax()) for k in test]
    accuracy = float(np.mean([p == data.category[k] for p, k in zip(predicted, test, strict=True)]))
    print(f"{model_name} classification split {split}: accuracy {accuracy:.3f} after {history[-1]['epoch']} epochs",
          flush=True)
    return {"task": "classification", "model": model_name, "split": split, "accuracy": accuracy,
            "epochs": history[-1]["epoch"], "cpu_seconds": budget.spent()}


def report(out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = [json.loads(p.read_text()) for p in sorted((out / "runs").glob("*.json"))]
    data = load_psb()
    table: dict = {}
    for r in results:
        if r["task"] == "segmentation":
            table.setdefault((r["model"], r["category"]), []).append(r)
    models = sorted({m for m, _ in table})
    lines = ["| category | " + " | ".join(f"{m}: faces | {m}: area" for m in models) + " |",
             "|---|" + "---|---|" * len(models)] if models else []
    summary = {}
    for category in data.category_names if models else []:
        cells = []
        for m in models:
            runs = table.get((m, category), [])
            if not runs:
                cells += ["-", "-"]
                continue
            for key in ("face_accuracy", "area_accuracy"):
                values = 100 * np.array([r[key] for r in runs])
                summary[f"{m}/{category}/{key}"] = [float(values.mean()), float(values.std()), len(values)]
                cells.append(f"{values.mean():.1f} ± {values.std():.1f} ({len(values)})")
        lines.append(f"| {category} | " + " | ".join(cells) + " |")
    for m in models:
        means = [summary[f"{m}/{c}/area_accuracy"][0] for c in data.category_names if f"{m}/{c}/area_accuracy" in
                 summary]
        if means:
            summary[f"{m}/mean_area_accuracy"] = float(np.mean(means))
    classification = [r for r in results if r["task"] == "classification"]
    lines.append("")
    for m in sorted({r["model"] for r in classification}):
        values = 100 * np.array([r["accuracy"] for r in classification if r["model"] == m])
        summary[f"{m}/classification"] = [float(values.mean()), float(values.std()), len(values)]
        lines.append(f"Classification (10 classes, 16 train / 4 test each), {m}: {values.mean():.1f} ± "
                     f"{values.std():.1f} % over {len(values)} splits")
    (out / "psb.md").write_text("\n".join(lines) + "\n")
    (out / "psb.json").write_text(json.dumps(summary, indent=1))
    print("\n".join(lines))
    shown = [r for r in results if r["task"] == "segmentation" and r["category"] == "Human"
             and r["model"] == "diffusionnet"]
    if shown:
        r = shown[0]
        k = r["test"][0]
        mesh = data.meshes[k]
        v, f = mesh.vertices.numpy(), mesh.faces.numpy()
        # PSB meshes come in arbitrary poses: show them in their principal axes (longest one upright)
        centred = v - v.mean(axis=0)
        axes = np.linalg.svd(centred, full_matrices=False)[2]
        v = centred @ axes[[1, 2, 0]].T
        names = data.label_names[data.category[k]]
        fig = plt.figure(figsize=(10, 7))
        shown_labels = (("true parts", data.face_labels[k].numpy()),
                        ("predicted (DiffusionNet, HKS)", np.array(r["first_test_prediction"])))
        for panel, (title, labels) in enumerate(shown_labels):
            ax = fig.add_subplot(1, 2, panel + 1, projection="3d")
            surface = ax.plot_trisurf(v[:, 0], v[:, 1], v[:, 2], triangles=f, linewidth=0, antialiased=False,
                                      cmap="tab10", vmin=0, vmax=9)
            surface.set_array(labels.astype(float))
            for axis, low, high in zip("xyz", v.min(axis=0), v.max(axis=0), strict=True):
                getattr(ax, f"set_{axis}lim")(low, high)
            ax.set_box_aspect(np.ptp(v, axis=0), zoom=1.2)
            ax.view_init(elev=5, azim=-90)
            ax.set_axis_off()
            ax.set_title(title)
        colours = plt.get_cmap("tab10")
        fig.legend(handles=[plt.matplotlib.patches.Patch(color=colours(i), label=name)
                            for i, name in enumerate(names)], loc="lower center", ncol=len(names), fontsize=8)
        fig.suptitle(f"PSB Human model {data.model_id[k]} (a test mesh of split {r['split']}), face part labels",
                     fontsize=10)
        fig.savefig(out / "psb_parts.png", dpi=110, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=("segmentation", "classification"), default="segmentation")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--categories", nargs="*", default=None, help="segmentation: these categories only")
    parser.add_argument("--splits", type=int, nargs="*", default=None,
                        help="which splits (default 0 1 2 for segmentation, 0-4 for classification)")
    parser.add_argument("--minutes", type=float, default=1.5, help="CPU minutes of training per run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "experiments" / "results" / "psb")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache" / "mesh_operators")
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    (args.out / "runs").mkdir(parents=True, exist_ok=True)
    if args.report:
        report(args.out)
        return
    data = load_psb()
    Item(data.meshes[0], args.cache)  # fixes the shared HKS times
    items: dict[int, Item] = {}

    def item(k: int) -> Item:
        if k not in items:
            items[k] = Item(data.meshes[k], args.cache)
        return items[k]

    class Lazy:  # items[k] builds mesh k's operators on first use (cached on disk)
        def __getitem__(self, k: int) -> Item:
            return item(k)

    if args.task == "segmentation":
        for category in args.categories or data.category_names:
            for split in args.splits if args.splits is not None else (0, 1, 2):
                for model_name in args.models:
                    path = args.out / "runs" / f"seg-{model_name}-{category}-{split}.json"
                    if not path.is_file():
                        path.write_text(json.dumps(run_segmentation(model_name, category, split, args.minutes,
                                                                    Lazy(), data)))
    else:
        for split in args.splits if args.splits is not None else range(5):
            for model_name in args.models:
                path = args.out / "runs" / f"cls-{model_name}-{split}.json"
                if not path.is_file():
                    path.write_text(json.dumps(run_classification(model_name, split, args.minutes, Lazy(), data)))


if __name__ == "__main__":
    main()
