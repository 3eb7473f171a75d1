"""Where does the Ico-CNN's accuracy go in the N/R setting? Train on north-pole digits, test the same digits moved.

Usage:
    FIVEFOLD_DATA=../shared/data .venv/bin/python experiments/spherical_mnist_probe.py [--centre vertex|face]

An Ico-CNN (``experiments/spherical_mnist.py``'s model, widths 4, 8, 8, 12, 12, 16) is trained on the first 10,000
training digits, unrotated, 2 epochs. ``--centre vertex`` (default) leaves them on the north pole, which is one of the
icosahedron's 12 five-neighbour vertices; ``--centre face`` moves every digit, training and test alike, by one fixed
rotation that takes the pole to the centre of the face (N, U0, U1), i.e. the same as orienting the grid so that the
digits' centre is a face centre, 37 degrees from the nearest five-neighbour vertex.
The first 2,000 test digits are then scored unrotated and after rotations drawn per digit
(``torch.Generator().manual_seed(5)``):
- a rotation of the grid's icosahedral group (the model is exactly invariant to these: same accuracy expected);
- a spin about the polar axis by a uniform angle (the digit stays centred on the pole);
- a tilt by a fixed angle about the x axis (the digit's centre leaves the pole);
- a uniformly random rotation in SO(3) (the N/R test condition, ``manual_seed(2026)``).
The probe rotations act about the digits' centre (``R_centre @ R``). Writes
``experiments/results/spherical_mnist_probe[_face].{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from spherical_mnist import build, equirectangular_points, project_all, rotations, train_classifier

from fivefold.data import load_mnist
from fivefold.spheres import IcoGrid, icosahedron

RESULTS = Path(__file__).resolve().parent / "results"
WIDTHS = [4, 8, 8, 12, 12, 16]


def spins(angles: torch.Tensor) -> torch.Tensor:
    """``[N, 3, 3]`` rotations about the z axis."""
    c, s, zero, one = torch.cos(angles), torch.sin(angles), torch.zeros_like(angles), torch.ones_like(angles)
    return torch.stack([torch.stack([c, -s, zero], -1), torch.stack([s, c, zero], -1),
                        torch.stack([zero, zero, one], -1)], -2).float()


def tilt(degrees: float, count: int) -> torch.Tensor:
    t = math.radians(degrees)
    matrix = torch.tensor([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])
    return matrix.float().expand(count, 3, 3).contiguous()


def centre_rotation(centre: str) -> torch.Tensor:
    """``[3, 3]``: the identity (``vertex``), or the shortest rotation from the north pole to the centre of the face
    (N, U0, U1) (``face``)."""
    if centre == "vertex":
        return torch.eye(3)
    ico = icosahedron()
    target = torch.as_tensor(ico["N"] + ico["U"][0] + ico["U"][1])
    target = target / target.norm()
    pole = torch.tensor([0.0, 0.0, 1.0], dtype=target.dtype)
    axis = torch.linalg.cross(pole, target)
    sine, cosine = axis.norm(), torch.dot(pole, target)
    k = axis / sine
    cross = torch.tensor([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]], dtype=target.dtype)
    return (torch.eye(3, dtype=target.dtype) + sine * cross + (1 - cosine) * cross @ cross).float()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--centre", choices=["vertex", "face"], default="vertex",
                        help="where the unrotated digits sit on the grid")
    args = parser.parse_args()
    torch.set_num_threads(1)
    train_set, test_set = load_mnist("train", args.data_root), load_mnist("test", args.data_root)
    grid, plane = IcoGrid(4), equirectangular_points()
    images, labels = train_set.as_float()[:10000], train_set.labels[:10000]
    test_images, test_labels = test_set.as_float()[:2000], test_set.labels[:2000]
    move = centre_rotation(args.centre)

    def placed(rotation: torch.Tensor | None, count: int) -> torch.Tensor | None:
        """The rotation per digit: ``rotation`` about the digits' centre, or None when the centre is the pole."""
        if args.centre == "vertex":
            return rotation
        return move.expand(count, 3, 3) if rotation is None else move @ rotation

    torch.manual_seed(0)
    model = build("ico", WIDTHS)
    train_classifier(model, project_all("ico", images, placed(None, len(images)), grid, plane), labels, epochs=2,
                     batch_size=32, lr=2e-3, seed=0)
    model.eval()

    @torch.no_grad()
    def accuracy(rotation: torch.Tensor | None) -> float:
        x = project_all("ico", test_images, placed(rotation, len(test_images)), grid, plane)
        return float((model(x).argmax(dim=1) == test_labels).double().mean())

    n, generator = len(test_images), torch.Generator().manual_seed(5)
    group = grid.symmetry_group
    icosahedral = torch.stack([torch.as_tensor(group.matrix(int(k)))
                               for k in torch.randint(group.order, (n,), generator=generator)]).float()
    results = {"unrotated (N/N)": accuracy(None),
               "icosahedral rotation": accuracy(move.T @ icosahedral @ move),  # total: icosahedral @ move
               "spin about the digits' centre": accuracy(spins(torch.rand(n, generator=generator) * 2 * math.pi))}
    for degrees in (10, 20, 40, 80):
        results[f"tilt {degrees} deg"] = accuracy(tilt(degrees, n))
    results["random SO(3) (N/R)"] = accuracy(rotations(n, 2026))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "spherical_mnist_probe" + ("" if args.centre == "vertex" else f"_{args.centre}")
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2))
    lines = ["| test digits | accuracy % |", "|---|---|"] + [f"| {k} | {100 * v:.2f} |" for k, v in results.items()]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
