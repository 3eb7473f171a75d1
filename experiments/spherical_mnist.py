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

Models (``--width`` regular fields / channels):
- Ico-CNN at resolution 4 (2,562 vertices): lifting ``IcoConv`` (trivial -> regular C6), two ``IcoConv`` blocks with
  ``IcoPool`` to r = 3 and r = 2, batch norm, ReLU, orientation max (``IcoGroupPool``), mean over all vertices, linear.
  Invariant to the 60 icosahedral rotations exactly and to other rotations approximately.
- Planar CNN on the 32 x 64 longitude/latitude image of the same projection: three 3x3 conv blocks with 2x max
  pooling, global mean, linear; channels chosen for about the Ico-CNN's parameter count.

Training: Adam (lr 1e-3, cosine decay), batch 32, ``--epochs`` over the 60,000 digits. Each run appends a line to
``experiments/results/spherical_mnist.jsonl`` (resumable); ``--summarise`` writes ``spherical_mnist.md``.
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

from fivefold.data import load_mnist
from fivefold.grids import count_parameters
from fivefold.spheres import IcoBatchNorm, IcoConv, IcoGrid, IcoGroupPool, IcoPool, project_image, unit_vectors
from fivefold.testing import random_rotation

RESULTS = Path(__file__).resolve().parent / "results"
RESOLUTION = 4
EQUIRECT = (32, 64)


class IcoClassifier(nn.Module):
    """Ico-CNN classifier: ``[B, 1, 5, 16, 32]`` chart tensor at r = 4 -> ``[B, 10]``."""

    def __init__(self, width: int, classes: int = 10, r: int = RESOLUTION) -> None:
        super().__init__()
        self.grid = IcoGrid(r - 2)
        self.layers = nn.ModuleList([
            IcoConv(1, width, "trivial", "regular", r=r), IcoBatchNorm(width, "regular", r=r),
            IcoPool(r, "regular"),
            IcoConv(width, 2 * width, "regular", "regular", r=r - 1), IcoBatchNorm(2 * width, "regular", r=r - 1),
            IcoPool(r - 1, "regular"),
            IcoConv(2 * width, 2 * width, "regular", "regular", r=r - 2),
            IcoBatchNorm(2 * width, "regular", r=r - 2),
        ])
        self.group_pool = IcoGroupPool(r - 2)
        self.classifier = nn.Linear(2 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
            if isinstance(layer, IcoBatchNorm):
                x = torch.relu(x)
        x = self.grid.from_charts(self.group_pool(x))  # [B, F, V] including the poles
        return self.classifier(x.mean(dim=-1))


class PlanarClassifier(nn.Module):
    """Planar CNN on the longitude/latitude image ``[B, 1, 32, 64]`` -> ``[B, 10]``."""

    def __init__(self, width: int, classes: int = 10) -> None:
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(1, width, 3, padding=1), nn.Conv2d(width, 2 * width, 3, padding=1),
                                    nn.Conv2d(2 * width, 2 * width, 3, padding=1)])
        self.norms = nn.ModuleList([nn.BatchNorm2d(width), nn.BatchNorm2d(2 * width), nn.BatchNorm2d(2 * width)])
        self.classifier = nn.Linear(2 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            x = torch.relu(norm(conv(x)))
            if index < 2:
                x = F.max_pool2d(x, 2)
        return self.classifier(x.mean(dim=(2, 3)))


def equirectangular_points() -> torch.Tensor:
    height, width = EQUIRECT
    lat = math.pi / 2 - (torch.arange(height, dtype=torch.float64) + 0.5) * math.pi / height
    lon = -math.pi + (torch.arange(width, dtype=torch.float64) + 0.5) * 2 * math.pi / width
    return unit_vectors(lon[None, :].expand(height, width), lat[:, None].expand(height, width)).reshape(-1, 3)


def rotations(count: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.stack([random_rotation(3, generator) for _ in range(count)]).to(torch.float32)


def to_model_input(model_name: str, images: torch.Tensor, rotation: torch.Tensor | None, grid: IcoGrid,
                   plane: torch.Tensor) -> torch.Tensor:
    if model_name == "ico":
        return grid.to_charts(project_image(images, grid.vertices, rotations=rotation))
    return project_image(images, plane, rotations=rotation).reshape(len(images), 1, *EQUIRECT)


def build(model_name: str, width: int) -> nn.Module:
    if model_name == "ico":
        return IcoClassifier(width)
    target = count_parameters(IcoClassifier(width))
    planar = min(range(1, 8 * width), key=lambda w: abs(count_parameters(PlanarClassifier(w)) - target))
    return PlanarClassifier(planar)


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    path = Path(args.out) / "spherical_mnist.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    finished = {(r["setting"], r["model"], r["seed"]) for r in _runs(path)}
    train_set, test_set = load_mnist("train", args.data_root), load_mnist("test", args.data_root)
    train_images, test_images = train_set.as_float(), test_set.as_float()
    if args.train_limit:
        train_images, train_labels = train_images[:args.train_limit], train_set.labels[:args.train_limit]
    else:
        train_labels = train_set.labels
    grid, plane = IcoGrid(RESOLUTION), equirectangular_points()
    test_rotations = rotations(len(test_images), 2026)
    for seed in args.seeds:
        train_rotations = rotations(len(train_images), 1000 + seed)
        for setting in args.settings:
            for model_name in args.models:
                if (setting, model_name, seed) in finished:
                    continue
                torch.manual_seed(seed)
                model = build(model_name, args.width)
                optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
                steps = args.epochs * len(train_images) // args.batch_size
                schedule = torch.optim.lr_scheduler.LambdaLR(
                    optimiser, lambda step, steps=steps: 0.5 * (1 + math.cos(math.pi * step / steps)))
                generator = torch.Generator().manual_seed(seed)
                start, step = time.perf_counter(), 0
                while step < steps:
                    for index in torch.randperm(len(train_images), generator=generator).split(args.batch_size):
                        if step >= steps:
                            break
                        rotation = train_rotations[index] if setting == "RR" else None
                        x = to_model_input(model_name, train_images[index], rotation, grid, plane)
                        loss = F.cross_entropy(model.train()(x), train_labels[index])
                        optimiser.zero_grad()
                        loss.backward()
                        optimiser.step()
                        schedule.step()
                        step += 1
                seconds = time.perf_counter() - start
                model.eval()
                correct = 0
                with torch.no_grad():
                    for index in torch.arange(len(test_images)).split(500):
                        rotation = test_rotations[index] if setting in ("NR", "RR") else None
                        x = to_model_input(model_name, test_images[index], rotation, grid, plane)
                        correct += int((model(x).argmax(1) == test_set.labels[index]).sum())
                record = {"setting": setting, "model": model_name, "seed": seed, "test_acc": correct / len(test_images),
                          "parameters": count_parameters(model), "epochs": args.epochs, "steps": steps,
                          "train_size": len(train_images), "train_seconds": seconds}
                with open(path, "a") as handle:
                    handle.write(json.dumps(record) + "\n")
                print(f"{setting} {model_name:6s} seed {seed}: test {100 * record['test_acc']:.2f} % "
                      f"({record['parameters']} parameters, {seconds:.0f} s)", flush=True)


def _runs(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def summarise(out: Path) -> None:
    runs = _runs(out / "spherical_mnist.jsonl")
    names = {"ico": "Ico-CNN (fivefold, r = 4)", "planar": "planar CNN on the 32 x 64 lon/lat image"}
    lines = ["| model | parameters | N/N | N/R | R/R |", "|---|---|---|---|---|"]
    for model_name in ("ico", "planar"):
        chosen = [r for r in runs if r["model"] == model_name]
        if not chosen:
            continue
        cells = []
        for setting in ("NN", "NR", "RR"):
            values = 100 * np.array([r["test_acc"] for r in chosen if r["setting"] == setting])
            cells.append(f"{values.mean():.2f} +- {values.std():.2f} ({len(values)})" if len(values) else "-")
        lines.append(f"| {names[model_name]} | {chosen[0]['parameters']} | " + " | ".join(cells) + " |")
    (out / "spherical_mnist.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=["NN", "NR", "RR"], choices=["NN", "NR", "RR"])
    parser.add_argument("--models", nargs="+", default=["ico", "planar"], choices=["ico", "planar"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--width", type=int, default=8, help="regular fields of the Ico-CNN's first layer")
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
