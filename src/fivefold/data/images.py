"""Image and volume data sets for the grid domain: MNIST (IDX files) and MedMNIST v2 3D sets (``.npz``).

MNIST: LeCun, Bottou, Bengio & Haffner (1998); files ``mnist-train/train-*-idx?-ubyte.gz`` and
``mnist-test/t10k-*-idx?-ubyte.gz`` under the data root. MedMNIST v2: Yang et al. (2023), Scientific Data 10, 41;
``adrenalmnist3d/adrenalmnist3d.npz`` (28^3) and ``adrenalmnist3d_64.npz`` (64^3), official train/val/test split.
Every file's sha256 is checked before it is parsed; ``.npz`` files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from fivefold.data.files import data_root, verify
from fivefold.errors import DataError, check_option

__all__ = ["ImageSet", "load_mnist", "load_medmnist3d", "IMAGE_SHA256"]

IMAGE_SHA256 = {
    "mnist-train/train-images-idx3-ubyte.gz": "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
    "mnist-train/train-labels-idx1-ubyte.gz": "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
    "mnist-test/t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "mnist-test/t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    "adrenalmnist3d/adrenalmnist3d.npz": "8ffd78c0f000265deb7cf4ee0b454136fb3170f9839ecaa7bb01adf9f88aa7d1",
    "adrenalmnist3d/adrenalmnist3d_64.npz": "124a53ea2c66c8ac1985a4c98ea6f34d1ab35bdab1dc50947f80d4a87e54057d",
}


@dataclass(frozen=True)
class ImageSet:
    """Labelled images or volumes.

    Fields:
        images: ``[N, C, H, W]`` or ``[N, C, D, H, W]`` uint8 (as stored; scale with ``as_float``).
        labels: ``[N]`` int64 class labels.
        name: where the set came from (``"mnist/train"``).
    """

    images: Tensor
    labels: Tensor
    name: str

    def __len__(self) -> int:
        return self.labels.shape[0]

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1

    def as_float(self) -> Tensor:
        """The images scaled to ``[0, 1]``, float32."""
        return self.images.to(torch.float32) / 255.0

    def subset(self, index: Tensor) -> ImageSet:
        """The images at ``index`` (a ``[K]`` int64 tensor)."""
        return ImageSet(self.images[index], self.labels[index], f"{self.name}[{len(index)}]")


def _read_idx(path, magic: int, what: str) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 8 or int.from_bytes(raw[:4], "big") != magic:
        raise DataError(f"{path}: not an IDX file of {what} (magic number {raw[:4].hex()}, expected {magic:08x})")
    count = int.from_bytes(raw[4:8], "big")
    if magic == 2051:
        rows, cols = int.from_bytes(raw[8:12], "big"), int.from_bytes(raw[12:16], "big")
        body = np.frombuffer(raw, np.uint8, offset=16)
        if body.size != count * rows * cols:
            raise DataError(f"{path}: header says {count} images of {rows}x{cols}, file holds {body.size} bytes")
        return body.reshape(count, rows, cols)
    body = np.frombuffer(raw, np.uint8, offset=8)
    if body.size != count:
        raise DataError(f"{path}: header says {count} labels, file holds {body.size}")
    return body


def load_mnist(split: str = "train", root: str | os.PathLike | None = None) -> ImageSet:
    """MNIST's 60,000 training or 10,000 test digits: images ``[N, 1, 28, 28]`` uint8, labels ``[N]``."""
    check_option(split, ("train", "test"), "split", "load_mnist")
    base = data_root(root)
    folder, stem = ("mnist-train", "train") if split == "train" else ("mnist-test", "t10k")
    images_path = f"{folder}/{stem}-images-idx3-ubyte.gz"
    labels_path = f"{folder}/{stem}-labels-idx1-ubyte.gz"
    images = _read_idx(verify(base / images_path, IMAGE_SHA256[images_path]), 2051, "images")
    labels = _read_idx(verify(base / labels_path, IMAGE_SHA256[labels_path]), 2049, "labels")
    if len(images) != len(labels):
        raise DataError(f"MNIST {split}: {len(images)} images but {len(labels)} labels")
    return ImageSet(torch.from_numpy(images.copy())[:, None], torch.from_numpy(labels.astype(np.int64)),
                    f"mnist/{split}")


def load_medmnist3d(name: str = "adrenalmnist3d", split: str = "train", root: str | os.PathLike | None = None,
                    size: int = 28) -> ImageSet:
    """A MedMNIST v2 3D set's official split: volumes ``[N, 1, size, size, size]`` uint8, labels ``[N]``."""
    check_option(split, ("train", "val", "test"), "split", "load_medmnist3d")
    if size not in (28, 64):
        raise DataError(f"MedMNIST 3D volumes come at size 28 or 64, not {size!r}")
    relative = f"{name}/{name}.npz" if size == 28 else f"{name}/{name}_64.npz"
    if relative not in IMAGE_SHA256:
        known = sorted({key.split("/")[0] for key in IMAGE_SHA256 if key.endswith(".npz")})
        raise DataError(f"unknown MedMNIST 3D set {name!r}; known: {known}")
    path = verify(data_root(root) / relative, IMAGE_SHA256[relative])
    with np.load(path, allow_pickle=False) as arrays:
        if f"{split}_images" not in arrays or f"{split}_labels" not in arrays:
            raise DataError(f"{path}: no {split}_images / {split}_labels arrays")
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"].reshape(-1)
    if images.shape[1:] != (size, size, size) or len(images) != len(labels):
        raise DataError(f"{path}: {split} images have shape {images.shape}, labels {labels.shape}")
    return ImageSet(torch.from_numpy(images.copy())[:, None], torch.from_numpy(labels.astype(np.int64)),
                    f"{name}/{split}")
