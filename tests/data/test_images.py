import gzip
import shutil

import numpy as np
import pytest
import torch

from fivefold.data import load_medmnist3d, load_mnist
from fivefold.errors import ChecksumError, DataError


def test_mnist(data_root):
    if not (data_root / "mnist-test").is_dir():
        pytest.skip("mnist-test not in the data folder")
    test = load_mnist("test", data_root)
    assert test.images.shape == (10000, 1, 28, 28) and test.images.dtype == torch.uint8
    assert torch.bincount(test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert test.num_classes == 10 and 0.0 <= float(test.as_float().max()) <= 1.0
    if (data_root / "mnist-train").is_dir():
        train = load_mnist("train", data_root)
        assert len(train) == 60000 and train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_medmnist3d(data_root):
    if not (data_root / "adrenalmnist3d").is_dir():
        pytest.skip("adrenalmnist3d not in the data folder")
    sizes = {split: len(load_medmnist3d("adrenalmnist3d", split, data_root)) for split in ("train", "val", "test")}
    assert sizes == {"train": 1188, "val": 98, "test": 298}
    test = load_medmnist3d("adrenalmnist3d", "test", data_root)
    assert test.images.shape == (298, 1, 28, 28, 28) and torch.bincount(test.labels).tolist() == [229, 69]
    assert test.subset(torch.tensor([0, 5])).images.shape[0] == 2


def test_corrupted_and_wrong_files(tmp_path, data_root):
    if not (data_root / "mnist-test").is_dir():
        pytest.skip("mnist-test not in the data folder")
    shutil.copytree(data_root / "mnist-test", tmp_path / "mnist-test")
    path = tmp_path / "mnist-test" / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + bytes([1, 2, 3]))
    with pytest.raises(ChecksumError, match="corrupted"):
        load_mnist("test", tmp_path)
    with pytest.raises(DataError, match="split"):
        load_mnist("validation", tmp_path)
    with pytest.raises(DataError, match="unknown MedMNIST"):
        load_medmnist3d("organmnist3d", "train", tmp_path)
    with pytest.raises(DataError, match="missing"):
        load_medmnist3d("adrenalmnist3d", "train", tmp_path)


def test_idx_parser_rejects_bad_headers(tmp_path):
    from fivefold.data.images import _read_idx

    path = tmp_path / "bad.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(np.array([0, 0, 8, 3], np.uint8).tobytes() + (5).to_bytes(4, "big") + bytes(3))
    with pytest.raises(DataError, match="magic"):
        _read_idx(path, 2049, "labels")
    with gzip.open(path, "wb") as handle:
        handle.write((2049).to_bytes(4, "big") + (5).to_bytes(4, "big") + bytes(3))
    with pytest.raises(DataError, match="says 5 labels"):
        _read_idx(path, 2049, "labels")
