"""Real data sets: loaders with checksum checks, splits, the embedded Cora, and loaders for your own graphs.

Data are read from a folder passed as ``root`` or named by ``$FIVEFOLD_DATA``; nothing is ever downloaded.
"""

from fivefold.data.files import data_root, data_root_given, sha256, verify
from fivefold.data.images import ImageSet, load_medmnist3d, load_mnist
from fivefold.data.meshes import (
    FAUST_TEMPLATE_VERTICES,
    PSB,
    FaustRemeshed,
    RNASurfaces,
    load_faust_remeshed,
    load_psb,
    load_rna_sample,
)
from fivefold.data.molecules import (
    MOLECULENET,
    QM9,
    QM9_PROPERTIES,
    QM9_UNITS,
    MoleculeTable,
    OGBMolecules,
    load_md17_ethanol,
    load_moleculenet,
    load_ogb_molecules,
    load_qm9,
)
from fivefold.data.own_graph import LabelledGraph, load_labelled_graph, split_nodes
from fivefold.data.planetoid import load_embedded_cora, load_planetoid
from fivefold.data.registry import DATASETS, find_datasets
from fivefold.data.spherical import SphericalImageSet, load_spherical_mnist, project_digits
from fivefold.data.streams import STREAMS, load_stream
from fivefold.data.tu import load_tu, stratified_folds
from fivefold.data.user import load_edge_list, load_npz

__all__ = [
    "DATASETS", "ImageSet", "STREAMS", "LabelledGraph", "SphericalImageSet", "data_root", "data_root_given",
    "find_datasets",
    "load_edge_list", "load_embedded_cora", "load_labelled_graph", "load_medmnist3d", "load_mnist", "load_npz",
    "load_planetoid", "load_spherical_mnist", "load_stream", "load_tu", "project_digits", "sha256", "split_nodes",
    "stratified_folds", "verify", "MOLECULENET", "QM9", "QM9_PROPERTIES", "QM9_UNITS", "MoleculeTable",
    "load_md17_ethanol", "load_moleculenet", "load_qm9", "OGBMolecules", "load_ogb_molecules",
    "FAUST_TEMPLATE_VERTICES", "FaustRemeshed", "load_faust_remeshed", "PSB", "load_psb", "RNASurfaces",
    "load_rna_sample",
]
