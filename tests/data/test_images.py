import gzip
import shutil

import numpy as np
import pytest
import torch

from fivefold.data import load_medmnist3d, load_mnist, load_spherical_mnist, project_digits
from fivefold.errors import ChecksumError, DataError, OptionError


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
    with pytest.raises(OptionError, match=r"split must be one of \('train', 'test'\)"):
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


def test_spherical_mnist(data_root):
    if not (data_root / "mnist-test").is_dir():
        pytest.skip("mnist-test not in the data folder")
    from fivefold.groups import random_rotations
    from fivefold.spheres import IcoGrid, project_image

    upright = load_spherical_mnist("test", False, data_root, r=3, limit=300)
    rotated = load_spherical_mnist("test", True, data_root, r=3, rotation_seed=7, limit=300)
    grid = IcoGrid(3)
    assert upright.signals.shape == (300, 1, 5, 8, 16) and upright.rotations is None and len(upright) == 300
    assert rotated.rotations.shape == (300, 3, 3) and rotated.name == "spherical-mnist/test/R"
    torch.testing.assert_close(rotated.rotations,
                               random_rotations(300, 3, torch.Generator().manual_seed(7), torch.float32))
    digits = load_mnist("test", data_root)
    assert torch.equal(upright.labels, digits.labels[:300])
    # sample 5, computed directly from its planar digit and rotation
    direct = project_image(digits.as_float()[5:6], grid.vertices, rotations=rotated.rotations[5:6])
    torch.testing.assert_close(rotated.signals[5:6], grid.to_charts(direct), rtol=0, atol=0)
    # the same digit, upright, carries the same ink (up to sampling), and all ink lies north of ~13 deg S when upright
    ink_up, ink_rot = grid.from_charts(upright.signals[5])[0], grid.from_charts(rotated.signals[5])[0]
    assert abs(float(ink_up.sum() - ink_rot.sum())) < 0.15 * float(ink_up.sum())
    assert float(ink_up[grid.vertices[:, 2] < -0.25].abs().sum()) == 0.0
    assert upright.subset(torch.tensor([1, 2])).signals.shape[0] == 2
    # already-loaded digits give the same set
    again = project_digits(digits.subset(torch.arange(300)), True, r=3, rotation_seed=7)
    assert torch.equal(again.signals, rotated.signals) and torch.equal(again.labels, rotated.labels)
    with pytest.raises(DataError, match="limit"):
        load_spherical_mnist("test", False, data_root, limit=0)
