"""Per-vertex segmentation on the sphere with the icosahedral U-Net: the pipeline of the Ico-CNN's climate experiment
run on a STAND-IN task, because no labelled spherical segmentation data (CAM5 / ClimateNet) is in ../shared/data.

THIS IS NOT THE CLIMATE BENCHMARK. Its numbers say nothing about tropical cyclones or atmospheric rivers.

Usage:
    FIVEFOLD_DATA=../shared/data .venv/bin/python experiments/sphere_segmentation.py [--train 2000] [--epochs 2]

Stand-in data, built from real MNIST digits: every sample is a sphere at resolution ``--resolution`` carrying two
digits, each projected by stereographic projection (``fivefold.spheres.project_image``) after its own uniformly
random rotation in SO(3) (``torch.Generator().manual_seed(...)``, train and test drawn from disjoint seeds; training
digits from MNIST's training set, test digits from its test set). The input is the sum of the two projected images
(one channel); each vertex's label is 1 + the digit class where that digit's projected ink exceeds 0.5, else 0
(background; the second digit wins where they overlap): 11 classes, background dominant, as in climate-pattern
segmentation. Pipeline: loading with checksums, sampling onto the icosahedral grid, ``IcoUNet`` (one level per
``--widths`` entry), weighted cross-entropy (inverse class frequency), Adam (lr 2e-3, cosine decay, batch 16), and the
metrics of the Ico-CNN paper's climate table: per-class accuracy, their mean, and mean average precision
(``fivefold.spheres.segmentation_report``).

Writes ``experiments/results/sphere_segmentation.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from fivefold.data import load_mnist
from fivefold.grids import count_parameters
from fivefold.groups import random_rotations
from fivefold.spheres import IcoGrid, IcoUNet, project_image, segmentation_report
from fivefold.train import PrintRows, ShuffledBatches, cosine_schedule, fit

RESULTS = Path(__file__).resolve().parent / "results"


def make_spheres(images: torch.Tensor, labels: torch.Tensor, count: int, grid: IcoGrid, seed: int):
    """``count`` two-digit spheres: inputs ``[count, 1, 5, n, 2n]`` and labels ``[count, 5, n, 2n]``."""
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(images), (count, 2), generator=generator)
    inputs = torch.zeros(count, grid.num_vertices)
    targets = torch.zeros(count, grid.num_vertices, dtype=torch.int64)
    for slot in range(2):
        rotations = random_rotations(count, 3, generator, torch.float32)
        ink = project_image(images[picks[:, slot]], grid.vertices.float(), rotations=rotations)[:, 0]
        inputs = inputs + ink
        targets = torch.where(ink > 0.5, 1 + labels[picks[:, slot]][:, None], targets)
    return grid.to_charts(inputs)[:, None], grid.to_charts(targets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolution", type=int, default=4)
    parser.add_argument("--train", type=int, default=2000, help="training spheres")
    parser.add_argument("--test", type=int, default=500, help="test spheres")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--widths", nargs="+", type=int, default=[4, 8, 16, 32],
                        help="regular fields per U-Net level (level l at resolution r - l)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    grid = IcoGrid(args.resolution)
    train_set, test_set = load_mnist("train", args.data_root), load_mnist("test", args.data_root)
    x_train, y_train = make_spheres(train_set.as_float(), train_set.labels, args.train, grid, 100 + args.seed)
    x_test, y_test = make_spheres(test_set.as_float(), test_set.labels, args.test, grid, 2026)
    frequency = torch.bincount(y_train.flatten(), minlength=11).double()
    weight = (frequency.sum() / (11 * frequency.clamp(min=1))).float()
    model = IcoUNet(1, 11, args.resolution, args.widths)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    batches = ShuffledBatches(args.train, 16, args.seed)

    def loss(model: torch.nn.Module, index: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        return F.cross_entropy(model(x_train[index]), y_train[index], weight=weight), {"count": len(index)}

    start = time.perf_counter()
    history = fit(model, batches, loss=loss, optimiser=optimiser,
                  schedule=cosine_schedule(optimiser, args.epochs * len(batches)), epochs=args.epochs,
                  callbacks=[PrintRows(["train_loss"])], desc="IcoUNet")
    history = [{"epoch": row["epoch"], "train_loss": row["train_loss"]} for row in history]
    model.eval()
    with torch.no_grad():
        scores = torch.cat([F.softmax(model(x_test[i:i + 50]), dim=1) for i in range(0, args.test, 50)])
    report = segmentation_report(scores, y_test, 11)
    names = ["background"] + [f"digit {d}" for d in range(10)]
    result = {"stand_in": "two real MNIST digits per sphere, randomly rotated (NOT the climate benchmark)",
              "config": vars(args), "parameters": count_parameters(model), "seconds": time.perf_counter() - start,
              "history": history, **report}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sphere_segmentation.json").write_text(json.dumps(result, indent=2))
    lines = ["Stand-in task (two rotated MNIST digits per sphere; NOT the climate benchmark), test spheres:", "",
             "| class | accuracy | average precision |", "|---|---|---|"]
    lines += [f"| {name} | {acc:.3f} | {ap:.3f} |" for name, acc, ap in
              zip(names, report["per_class_accuracy"], report["average_precision"], strict=True)]
    lines += [f"| mean | {report['mean_accuracy']:.3f} | mAP {report['mAP']:.3f} |"]
    (out / "sphere_segmentation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
