"""The data sets fivefold knows, where they are expected, and whether they are present."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fivefold.data.files import data_root

__all__ = ["DatasetInfo", "DATASETS", "find_datasets"]


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    task: str
    folder: str
    required: tuple[str, ...]
    description: str


DATASETS = {
    "cora": DatasetInfo("cora", "node classification", "planetoid", ("ind.cora.graph",),
                        "Cora citation graph, public Planetoid split (also embedded in the package)"),
    "citeseer": DatasetInfo("citeseer", "node classification", "planetoid", ("ind.citeseer.graph",),
                            "CiteSeer citation graph, public Planetoid split"),
    "pubmed": DatasetInfo("pubmed", "node classification", "planetoid", ("ind.pubmed.graph", "ind.pubmed.allx"),
                          "PubMed citation graph, public Planetoid split"),
    "MUTAG": DatasetInfo("MUTAG", "graph classification", "tudataset/MUTAG", ("MUTAG_A.txt",),
                         "188 nitroaromatic molecules, mutagenic or not"),
    "PROTEINS": DatasetInfo("PROTEINS", "graph classification", "tudataset/PROTEINS", ("PROTEINS_A.txt",),
                            "1,113 proteins, enzyme or not"),
    "ENZYMES": DatasetInfo("ENZYMES", "graph classification", "tudataset/ENZYMES", ("ENZYMES_A.txt",),
                           "600 enzymes in 6 EC classes"),
    "mnist": DatasetInfo("mnist", "image classification", "mnist-train", ("train-images-idx3-ubyte.gz",),
                         "MNIST 60,000 training digits (test digits in mnist-test/)"),
    "mnist-test": DatasetInfo("mnist-test", "image classification", "mnist-test", ("t10k-images-idx3-ubyte.gz",),
                              "MNIST 10,000 test digits"),
    "adrenalmnist3d": DatasetInfo("adrenalmnist3d", "volume classification", "adrenalmnist3d",
                                  ("adrenalmnist3d.npz",), "MedMNIST v2 AdrenalMNIST3D, 1,584 CT shapes at 28^3"),
    "wikipedia": DatasetInfo("wikipedia", "temporal link prediction", "jodie-wikipedia", ("wikipedia.csv.gz",),
                             "JODIE Wikipedia edits: 157,474 events, 9,227 nodes, ban labels (no LIWC features)"),
    "enron": DatasetInfo("enron", "temporal link prediction", "enron-temporal", ("ml_enron.txt.gz",),
                         "Enron e-mails: 125,235 events among 184 people"),
    "collegemsg": DatasetInfo("collegemsg", "temporal link prediction", "collegemsg", ("CollegeMsg.txt",),
                              "SNAP CollegeMsg: 59,835 messages among 1,899 users"),
    "esol": DatasetInfo("esol", "molecular regression", "moleculenet", ("delaney-processed.csv",),
                        "MoleculeNet ESOL: aqueous solubility of 1,128 compounds (SMILES)"),
    "freesolv": DatasetInfo("freesolv", "molecular regression", "moleculenet", ("SAMPL.csv",),
                            "MoleculeNet FreeSolv: hydration free energy of 642 molecules (SMILES)"),
    "lipophilicity": DatasetInfo("lipophilicity", "molecular regression", "moleculenet", ("lipo.csv",),
                                 "MoleculeNet Lipophilicity: logD of 4,200 compounds (SMILES)"),
    "bbbp": DatasetInfo("bbbp", "molecular classification", "moleculenet", ("bbbp.csv",),
                        "MoleculeNet BBBP: blood-brain barrier penetration of 2,039 compounds (SMILES)"),
    "bace": DatasetInfo("bace", "molecular classification", "moleculenet", ("bace.csv",),
                        "MoleculeNet BACE: 1,513 beta-secretase inhibitors, active or not (SMILES)"),
    "tox21": DatasetInfo("tox21", "molecular classification", "moleculenet", ("tox21.csv",),
                         "MoleculeNet Tox21: 7,831 compounds x 12 toxicity assays (SMILES)"),
    "hiv": DatasetInfo("hiv", "molecular classification", "moleculenet", ("hiv.csv.gz",),
                       "MoleculeNet HIV: 41,127 compounds, active against HIV or not (SMILES)"),
    "ogbg-molesol": DatasetInfo(
        "ogbg-molesol", "molecular regression", "ogbg-mol/ogbg_molesol", ("raw/node-feat.csv.gz",),
        "OGB's ESOL: OGB features and the official scaffold split"),
    "ogbg-molfreesolv": DatasetInfo(
        "ogbg-molfreesolv", "molecular regression", "ogbg-mol/ogbg_molfreesolv", ("raw/node-feat.csv.gz",),
        "OGB's FreeSolv: OGB features and the official scaffold split"),
    "ogbg-molbbbp": DatasetInfo(
        "ogbg-molbbbp", "molecular classification", "ogbg-mol/ogbg_molbbbp", ("raw/node-feat.csv.gz",),
        "OGB's BBBP: OGB features and the official scaffold split"),
    "ogbg-molbace": DatasetInfo(
        "ogbg-molbace", "molecular classification", "ogbg-mol/ogbg_molbace", ("raw/node-feat.csv.gz",),
        "OGB's BACE: OGB features and the official scaffold split"),
    "qm9": DatasetInfo("qm9", "3D molecular regression", "qm9-full", ("qm9_geometry.npz", "qm9_properties.npz"),
                       "QM9 complete: 130,831 molecules, 3D geometry and 15 quantum-chemical properties"),
    "md17-ethanol": DatasetInfo("md17-ethanol", "energies and forces", "md17-ethanol-sample",
                                ("ethanol_sampledata.xyz.gz",),
                                "2,000 ethanol MD configurations with energies and forces (a sample, not a benchmark)"),
    "faust-remeshed": DatasetInfo(
        "faust-remeshed", "mesh correspondence", "faust-remeshed-test", ("faust_remeshed_iso_dense.npz",),
        "FAUST shapes 80-99 remeshed (iso, dense) with the template vertex of every vertex; not FAUST 0-79"),
    "psb": DatasetInfo("psb", "mesh segmentation and classification", "psb-labeled-meshes",
                       ("psb_labeled_10class.npz",),
                       "Labelled Princeton Segmentation Benchmark, 10 categories: 200 meshes, a part label per face"),
    "rna-surface-sample": DatasetInfo(
        "rna-surface-sample", "mesh segmentation", "rna-surface-seg-sample", ("rna_test20.npz",),
        "20 RNA molecular-surface meshes, a region label per vertex (a sample, not a benchmark)"),
    "nodulemnist3d": DatasetInfo("nodulemnist3d", "volume classification", "nodulemnist3d", ("nodulemnist3d.npz",),
                                 "MedMNIST v2 NoduleMNIST3D lung nodules (not yet in the data folder)"),
}


def find_datasets(root: str | os.PathLike | None) -> list[tuple[DatasetInfo, Path | None, str]]:
    """For each known set: its info, its folder (or None) and a status (``found`` / what is missing)."""
    rows = []
    base = None
    if root is not None or os.environ.get("FIVEFOLD_DATA"):
        base = Path(root if root is not None else os.environ["FIVEFOLD_DATA"]).expanduser()
        data_root(base)  # a clear error when it is missing or a file
    for info in DATASETS.values():
        if base is None:
            rows.append((info, None, "no data folder (set FIVEFOLD_DATA or pass --data-root)"))
            continue
        folder = base / info.folder
        missing = [f for f in info.required if not (folder / f).is_file()]
        rows.append((info, folder, "found" if not missing else f"missing {', '.join(missing)}"))
    return rows
