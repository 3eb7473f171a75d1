"""The real mesh sets in the data folder, with their checksums checked before they are parsed.

- ``load_faust_remeshed(kind)``: FAUST shapes 80-99 (2 subjects x 10 poses) remeshed by Sharp et al. (2022) ``iso``
  (isotropic) or ``dense`` (non-uniform density); every vertex carries the index (0..6889) of its FAUST-template vertex.
  FAUST's training shapes 0-79 are not in the folder, so the published protocol cannot be run from it.
- ``load_psb()``: 10 categories of the labelled Princeton Segmentation Benchmark (Kalogerakis et al. 2010):
  200 meshes, a part label per face, a category per mesh.
- ``load_rna_sample()``: 20 RNA molecular-surface meshes (Poulenard et al. 2019) with a region label per vertex; raw
  meshes with zero-area triangles (use the robust Laplacian). A sample: not for benchmark numbers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from fivefold.data.files import data_root, require_file, verify
from fivefold.errors import check_option
from fivefold.meshes import Mesh

__all__ = ["FaustRemeshed", "load_faust_remeshed", "PSB", "load_psb", "RNASurfaces", "load_rna_sample",
           "FAUST_TEMPLATE_VERTICES"]

FAUST_TEMPLATE_VERTICES = 6890
_FAUST = ("faust-remeshed-test/faust_remeshed_iso_dense.npz",
          "644114029ff7dfb7712e59c09d0d973c1b6d954739fdd86873910bfa04684b15")
_PSB = ("psb-labeled-meshes/psb_labeled_10class.npz",
        "7e2ea4e875539f3ba3c49ddb947ebac1632dacfefe08f83c6cfec9353471b3ea")
_RNA = ("rna-surface-seg-sample/rna_test20.npz", "ed3a082d2b62544c9e06f4bdc31fc346f1f760b16b8000c86615dfef66e6bb96")


def _open(entry: tuple[str, str], root, what: str):
    path = verify(require_file(data_root(root) / entry[0], what), entry[1])
    return np.load(path, allow_pickle=False)


def _split(vertices, faces, vert_ptr, face_ptr, **mesh_options) -> list[Mesh]:
    return [Mesh(torch.from_numpy(np.ascontiguousarray(vertices[vert_ptr[k]:vert_ptr[k + 1]], dtype=np.float64)),
                 torch.from_numpy(faces[face_ptr[k]:face_ptr[k + 1]].astype(np.int64)), **mesh_options)
            for k in range(len(vert_ptr) - 1)]


@dataclass(frozen=True)
class FaustRemeshed:
    """``meshes[k]`` (float64), ``template_index[k] [V_k]`` int64 (0..6889), ``faust_id[k]`` (80..99; subject
    ``id // 10``, pose ``id % 10``) and the remeshing ``kind``."""

    kind: str
    meshes: list[Mesh]
    template_index: list[torch.Tensor]
    faust_id: list[int]

    def __len__(self) -> int:
        return len(self.meshes)


def load_faust_remeshed(kind: str = "iso", root: str | os.PathLike | None = None) -> FaustRemeshed:
    """FAUST 80-99 remeshed ``kind`` = ``"iso"`` or ``"dense"`` (see the module docstring)."""
    check_option(kind, ("iso", "dense"), "kind", "load_faust_remeshed")
    with _open(_FAUST, root, "the remeshed FAUST shapes") as z:
        meshes = _split(z[f"{kind}_vertices"], z[f"{kind}_faces"], z[f"{kind}_vert_ptr"], z[f"{kind}_face_ptr"])
        ptr = z[f"{kind}_vert_ptr"]
        index = z[f"{kind}_template_index"].astype(np.int64)
        labels = [torch.from_numpy(index[ptr[k]:ptr[k + 1]].copy()) for k in range(len(ptr) - 1)]
        ids = [int(i) for i in z["faust_id"]]
    return FaustRemeshed(kind, meshes, labels, ids)


@dataclass(frozen=True)
class PSB:
    """``meshes[k]`` (float64, coordinates exactly as the OFF files wrote them), ``face_labels[k] [F_k]`` int64 (index
    into ``label_names[category[k]]``), ``category[k]`` (index into ``category_names``), ``model_id[k]``."""

    meshes: list[Mesh]
    face_labels: list[torch.Tensor]
    category: list[int]
    category_names: list[str]
    label_names: list[list[str]]
    model_id: list[int]

    def __len__(self) -> int:
        return len(self.meshes)

    def of_category(self, name: str) -> list[int]:
        """Indices of the meshes of one category (by name)."""
        check_option(name, tuple(self.category_names), "category", "PSB.of_category")
        c = self.category_names.index(name)
        return [k for k, cat in enumerate(self.category) if cat == c]


def load_psb(root: str | os.PathLike | None = None) -> PSB:
    """The labelled Princeton Segmentation Benchmark subset (10 categories x 20 meshes)."""
    with _open(_PSB, root, "the labelled Princeton Segmentation Benchmark") as z:
        vertices = z["vertices_1e6"].astype(np.float64) * 1e-6
        vert_ptr, face_ptr = z["vert_ptr"], z["face_ptr"]
        meshes = _split(vertices, z["faces"], vert_ptr, face_ptr)
        labels = z["face_label"].astype(np.int64)
        face_labels = [torch.from_numpy(labels[face_ptr[k]:face_ptr[k + 1]].copy()) for k in range(len(meshes))]
        names, label_ptr = [str(s) for s in z["label_names"]], z["label_ptr"]
        label_names = [names[label_ptr[c]:label_ptr[c + 1]] for c in range(len(label_ptr) - 1)]
        return PSB(meshes, face_labels, [int(c) for c in z["category"]], [str(s) for s in z["category_names"]],
                   label_names, [int(i) for i in z["model_id"]])


@dataclass(frozen=True)
class RNASurfaces:
    """``meshes[k]`` (float64 Angstrom, zero-area faces kept), ``vertex_labels[k] [V_k]`` int64 region ids (the data
    set's README: -1..258; add 1 for 260 classes), ``names[k]`` PDB chain ids."""

    meshes: list[Mesh]
    vertex_labels: list[torch.Tensor]
    names: list[str]


def load_rna_sample(root: str | os.PathLike | None = None) -> RNASurfaces:
    """The 20-mesh sample of the RNA surface segmentation set (see the module docstring)."""
    with _open(_RNA, root, "the RNA surface sample") as z:
        ptr = z["vert_ptr"]
        meshes = _split(z["vertices"], z["faces"], ptr, z["face_ptr"], allow_degenerate=True)
        labels = z["vertex_label"].astype(np.int64)
        return RNASurfaces(meshes, [torch.from_numpy(labels[ptr[k]:ptr[k + 1]].copy()) for k in range(len(meshes))],
                           [str(s) for s in z["names"]])
