"""Spherical MNIST (Cohen, Geiger, Koehler & Welling 2018; Cohen, Weiler, Kicanaoglu & Welling 2019): an Ico-CNN on
the icosahedral grid against a planar CNN on the longitude/latitude image of the same spherical digits.

Usage:
    FIVEFOLD_DATA=../shared/data .venv/bin/python experiments/spherical_mnist.py [--settings NN NR RR] [--seeds 0 1 2]
    .venv/bin/python experiments/spherical_mnist.py --summarise

Data: real MNIST (60,000 training and 10,000 test digits). Each digit is projected onto the northern hemisphere by
stereographic projection (``fivefold.spheres.project_image``, image square of half-width 0.8 in the projection
plane). Settings: N/N (no rotation), N/R (training digits on the north pole, test digits rotated by a uniformly random
rotation in SO(3)), R/R (both rotated). Rotations are drawn per image from ``torch.Generator().manual_seed(1000 +
seed)`` (training) and ``manual_seed(2026)`` (test, the same for every model and seed) and applied before projection,
so every sample is computed exactly from the planar digit, never re-interpolated.

Models (both: convolutions with batch norm and ReLU, a coarser grid after layers 0, 2 and 4, a global max, linear):
- Ico-CNN (``fivefold.spheres.IcoClassifier``) at resolution 4 (2,562 vertices), ``--widths`` regular C6 fields per
  layer (default 4, 8, 8, 12, 12, 16: half the library's default, which follows the layer plan of the deep S2CNN
  baseline of the Ico-CNN paper; halved for CPU time), ``IcoPool`` down to r = 1, the max over orientations, then
  over vertices. Invariant to the 60 icosahedral rotations exactly and to
  other rotations approximately.
- Planar CNN on the 32 x 64 longitude/latitude image of the same projection: 3x3 convolutions, 2x2 max pooling, the
  same widths scaled for about the Ico-CNN's parameter count.

Training: Adam (``--lr``, cosine decay), batch 32, ``--epochs`` over the training digits (all 60,000, or the first
``--train-limit``); the model after the last step is tested on all 10,000 test digits. Model inputs are projected
once per run. Each run appends a line to ``experiments/results/spherical_mnist.jsonl`` (resumable; a run is
identified by setting, model, seed, training-set size, epochs, widths and ``--pool``); ``--summarise`` writes
``spherical_mnist.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fivefold.data import ImageSet, load_mnist, project_digits
from fivefold.grids import count_parameters
from fivefold.groups import random_rotations
from fivefold.spheres import IcoClassifier, IcoGrid, project_image, unit_vectors
from fivefold.train import ShuffledBatches, cosine_schedule, fit, predict_proba

RESULTS = Path(__file__).resolve().parent / "results"
RESOLUTION = 4
POOL_AFTER = (0, 2, 4)
EQUIRECT = (32, 64)


class PlanarClassifier(nn.Module):
    """Planar CNN on the longitude/latitude image ``[B, 1, 32, 64]`` -> ``[B, 10]``, with the Ico-CNN's layer plan:
    3x3 convolutions with batch norm and ReLU, 2x2 pooling (``pool``: max or mean) after the layers in
    ``pool_after``, global max, linear."""

    def __init__(self, widths: list[int], pool_after: tuple[int, ...], classes: int = 10, pool: str = "max") -> None:
        super().__init__()
        self.pool = F.max_pool2d if pool == "max" else F.avg_pool2d
        channels = [1, *widths]
        self.convs = nn.ModuleList([nn.Conv2d(a, b, 3, padding=1)
                                    for a, b in zip(channels[:-1], channels[1:], strict=True)])
        self.norms = nn.ModuleList([nn.BatchNorm2d(b) for b in widths])
        self.pool_after = pool_after
        self.classifier = nn.Linear(widths[-1], classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            x = torch.relu(norm(conv(x)))
            if index in self.pool_after:
                x = self.pool(x, 2)
        return self.classifier(x.amax(dim=(2, 3)))


def equirectangular_points() -> torch.Tensor:
    height, width = EQUIRECT
    lat = math.pi / 2 - (torch.arange(height, dtype=torch.float64) + 0.5) * math.pi / height
    lon = -math.pi + (torch.arange(width, dtype=torch.float64) + 0.5) * 2 * math.pi / width
    return unit_vectors(lon[None, :].expand(height, width), lat[:, None].expand(height, width)).reshape(-1, 3)


def rotations(count: int, seed: int) -> torch.Tensor:
    """The rotations ``load_spherical_mnist(..., rotated=True, rotation_seed=seed)`` applies, float32."""
    return random_rotations(count, 3, torch.Generator().manual_seed(seed), torch.float32)


def to_model_input(model_name: str, images: torch.Tensor, rotation: torch.Tensor | None, grid: IcoGrid,
                   plane: torch.Tensor) -> torch.Tensor:
    if model_name == "ico":
        return grid.to_charts(project_image(images, grid.vertices, rotations=rotation))
    return project_image(images, plane, rotations=rotation).reshape(len(images), 1, *EQUIRECT)


def build(model_name: str, widths: list[int], pool: str = "max") -> nn.Module:
    """The Ico-CNN with ``widths`` regular fields, or the planar CNN with the same plan and widths scaled to about
    the Ico-CNN's parameter count; ``pool``: the pooling between resolutions ("max" or "mean")."""
    ico = IcoClassifier(1, 10, RESOLUTION, widths=widths, pool_after=POOL_AFTER, pool=pool)
    if model_name == "ico":
        return ico
    target = count_parameters(ico)
    factor = min((f / 8 for f in range(4, 200)),
                 key=lambda f: abs(count_parameters(PlanarClassifier([round(f * w) for w in widths], POOL_AFTER))
                                   - target))
    return PlanarClassifier([round(factor * w) for w in widths], POOL_AFTER, pool=pool)


def project_all(model_name: str, images: torch.Tensor, rotation: torch.Tensor | None, grid: IcoGrid,
                plane: torch.Tensor) -> torch.Tensor:
    """Model inputs for every image, computed once (in chunks)."""
    return torch.cat([to_model_input(model_name, images[i:i + 2000], None if rotation is None else
                                     rotation[i:i + 2000], grid, plane) for i in range(0, len(images), 2000)])


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    path = Path(args.out) / "spherical_mnist.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    train_set, test_set = load_mnist("train", args.data_root), load_mnist("test", args.data_root)
    train_digits = train_set.subset(torch.arange(args.train_limit)) if args.train_limit else train_set
    train_images, train_labels = train_digits.as_float(), train_digits.labels
    key = {"train_size": len(train_images), "epochs": args.epochs, "widths": list(args.widths), "pool": args.pool}
    finished = {(r["setting"], r["model"], r["seed"]) for r in _runs(path)
                if all(r.get(k, "max" if k == "pool" else None) == v for k, v in key.items())}
    grid, plane = IcoGrid(RESOLUTION), equirectangular_points()
    test_rotations = rotations(len(test_images := test_set.as_float()), 2026)
    for seed in args.seeds:
        train_rotations = rotations(len(train_images), 1000 + seed)
        for model_name in args.models:
            todo = [s for s in args.settings if (s, model_name, seed) not in finished]
            if not todo:
                continue
            if model_name == "ico":  # the library's Spherical MNIST
                def ico_set(digits: ImageSet, rotated: bool, rotation_seed: int) -> torch.Tensor:
                    return project_digits(digits, rotated, r=RESOLUTION, rotation_seed=rotation_seed).signals

                inputs = {"test N": ico_set(test_set, False, 0), "test R": ico_set(test_set, True, 2026)}
                if "NN" in todo or "NR" in todo:
                    inputs["train N"] = ico_set(train_digits, False, 0)
                if "RR" in todo:
                    inputs["train R"] = ico_set(train_digits, True, 1000 + seed)
            else:  # the same digits and rotations, sampled on the longitude/latitude image
                inputs = {"test N": project_all(model_name, test_images, None, grid, plane),
                          "test R": project_all(model_name, test_images, test_rotations, grid, plane)}
                if "NN" in todo or "NR" in todo:
                    inputs["train N"] = project_all(model_name, train_images, None, grid, plane)
                if "RR" in todo:
                    inputs["train R"] = project_all(model_name, train_images, train_rotations, grid, plane)
            # N/N and N/R share the model trained on unrotated digits; R/R has its own.
            for train_kind, settings in (("N", [t for t in todo if t in ("NN", "NR")]), ("R", [t for t in todo
                                                                                             if t == "RR"])):
                if not settings:
                    continue
                torch.manual_seed(seed)
                model = build(model_name, args.widths, args.pool)
                start = time.perf_counter()
                train_classifier(model, inputs[f"train {train_kind}"], train_labels, epochs=args.epochs,
                                 batch_size=args.batch_size, lr=args.lr, seed=seed)
                seconds = time.perf_counter() - start
                for setting in settings:
                    x_test = inputs["test N" if setting == "NN" else "test R"]
                    predicted = predict_proba(model, x_test).argmax(dim=1)
                    record = {"setting": setting, "model": model_name, "seed": seed,
                              "test_acc": float((predicted == test_set.labels).double().mean()),
                              "parameters": count_parameters(model),
                              "steps": args.epochs * (len(train_images) // args.batch_size),
                              "train_seconds": seconds, **key}
                    with open(path, "a") as handle:
                        handle.write(json.dumps(record) + "\n")
                    print(f"{setting} {model_name:6s} seed {seed}: test {100 * record['test_acc']:.2f} % "
                          f"({record['parameters']} parameters, {seconds:.0f} s)", flush=True)


def train_classifier(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, *, epochs: int, batch_size: int,
                     lr: float, seed: int) -> None:
    """``fivefold.train.fit``: Adam with cosine learning-rate decay, reshuffled epochs of full batches."""
    batches = ShuffledBatches(len(x), batch_size, seed, drop_last=True)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    fit(model, batches, loss=lambda model, index: F.cross_entropy(model(x[index]), labels[index]),
        optimiser=optimiser, schedule=cosine_schedule(optimiser, epochs * len(batches)), epochs=epochs,
        desc=type(model).__name__)


def _runs(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def summarise(out: Path) -> None:
    """One table per configuration (training-set size, epochs, widths, pooling): mean +- std over seeds (seed count)."""
    runs = [r for r in _runs(out / "spherical_mnist.jsonl") if "widths" in r]
    names = {"ico": "Ico-CNN (fivefold, r = 4)", "planar": "planar CNN on the 32 x 64 lon/lat image"}
    lines = []
    def config_of(r: dict) -> tuple:
        return r["train_size"], r["epochs"], tuple(r["widths"]), r.get("pool", "max")

    for config in sorted({config_of(r) for r in runs}):
        lines += [f"### {config[0]} training digits, {config[1]} epochs, widths {list(config[2])}, {config[3]} pooling",
                  "",
                  "| model | parameters | N/N | N/R | R/R |", "|---|---|---|---|---|"]
        for model_name in ("ico", "planar"):
            chosen = [r for r in runs if r["model"] == model_name
                      and config_of(r) == config]
            if not chosen:
                continue
            cells = []
            for setting in ("NN", "NR", "RR"):
                values = 100 * np.array([r["test_acc"] for r in chosen if r["setting"] == setting])
                cells.append(f"{values.mean():.2f} +- {values.std():.2f} ({len(values)})" if len(values) else "-")
            lines.append(f"| {names[model_name]} | {chosen[0]['parameters']} | " + " | ".join(cells) + " |")
        lines.append("")
    (out / "spherical_mnist.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=["NN", "NR", "RR"], choices=["NN", "NR", "RR"])
    parser.add_argument("--models", nargs="+", default=["ico", "planar"], choices=["ico", "planar"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--widths", nargs="+", type=int, default=[4, 8, 8, 12, 12, 16],
                        help="regular fields of the Ico-CNN's convolutions (half the library default, for CPU time)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--pool", choices=["max", "mean"], default="max", help="pooling between resolutions")
    parser.add_argument("--train-limit", type=int, default=0, help="use only the first N training digits (smoke runs)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--summarise", action="store_true")
    args = parser.parse_args()
    if args.summarise:
        summarise(Path(args.out))
    else:
        run(args)


if __name__ == "__main__":
    main()
