"""The real mesh sets load with the sizes their SOURCE.md states; a corrupted file is refused."""

import shutil

import pytest
import torch

from fivefold.data import FAUST_TEMPLATE_VERTICES, load_faust_remeshed, load_psb, load_rna_sample
from fivefold.errors import ChecksumError, OptionError


@pytest.mark.parametrize("kind,low,high,total", [("iso", 6738, 7559, 142333), ("dense", 10523, 15987, 267971)])
def test_faust_remeshed(data_root, kind, low, high, total):
    data = load_faust_remeshed(kind, data_root)
    assert len(data) == 20 and data.faust_id == list(range(80, 100))
    sizes = [m.num_vertices for m in data.meshes]
    assert min(sizes) == low and max(sizes) == high and sum(sizes) == total
    for mesh, labels in zip(data.meshes, data.template_index, strict=True):
        assert labels.shape == (mesh.num_vertices,) and labels.dtype == torch.long
        assert 0 <= int(labels.min()) and int(labels.max()) < FAUST_TEMPLATE_VERTICES
        assert mesh.vertices.dtype == torch.float64


def test_psb(data_root):
    data = load_psb(data_root)
    assert len(data) == 200 and sum(m.num_vertices for m in data.meshes) == 1_376_493
    assert sum(m.num_faces for m in data.meshes) == 2_752_218
    assert data.category_names[7] == "Human" and len(data.of_category("Human")) == 20
    assert data.label_names[data.category_names.index("Human")] == ["foot", "hand", "head", "lowerarm", "lowerleg",
                                                                     "torso", "upperarm", "upperleg"]
    for mesh, labels, category in zip(data.meshes, data.face_labels, data.category, strict=True):
        assert labels.shape == (mesh.num_faces,) and int(labels.max()) < len(data.label_names[category])
    with pytest.raises(OptionError):
        data.of_category("Teddy")


def test_rna_sample(data_root):
    data = load_rna_sample(data_root)
    assert len(data.meshes) == 20 and sum(m.num_vertices for m in data.meshes) == 298_016
    assert data.names[0] == "4V83_BB"
    assert all(int(labels.min()) >= -1 and int(labels.max()) <= 258 for labels in data.vertex_labels)


def test_bad_kind_and_corrupted_file(data_root, tmp_path):
    with pytest.raises(OptionError, match="kind"):
        load_faust_remeshed("cloud", data_root)
    folder = tmp_path / "faust-remeshed-test"
    folder.mkdir()
    shutil.copy(data_root / "faust-remeshed-test" / "faust_remeshed_iso_dense.npz", folder)
    with open(folder / "faust_remeshed_iso_dense.npz", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    with pytest.raises(ChecksumError):
        load_faust_remeshed("iso", tmp_path)
