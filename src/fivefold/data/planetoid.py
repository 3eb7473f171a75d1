"""Planetoid citation graphs (Cora, CiteSeer, PubMed) with the public split of Yang, Cohen & Salakhutdinov (2016):
20 labelled nodes per class for training, 500 for validation, 1000 for testing.

The raw files are Python-2 pickles. They are unpickled only after their sha256 matches the value recorded here
(from the data folder's SOURCE.md), and with an unpickler that only admits the numpy/scipy classes they contain.
The embedded Cora shipped inside the package is a converted ``.npz`` (see :func:`load_embedded_cora`).
"""

from __future__ import annotations

import io
import os
import pickle
from importlib import resources
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from fivefold.data.files import data_root, require_file, verify
from fivefold.errors import DataError, check_option
from fivefold.graphs import Graph

__all__ = ["load_planetoid", "load_embedded_cora", "planetoid_to_npz", "PLANETOID_SHA256", "EMBEDDED_CORA_SHA256"]

PLANETOID_SHA256 = {
    "ind.citeseer.allx": "2ac30345d95c9ec933a817ee0bdd6a5f077f8c184a20e696910192d534414668",
    "ind.citeseer.ally": "f704b2d986dde6c2669934de1f3ae5696a6cf9455c0f6b2646a2d135ea0a1c95",
    "ind.citeseer.graph": "d79a4ef9d3e7169aee8946145f6b7306e35bc79bffad26346cfb94e10e9912a7",
    "ind.citeseer.test.index": "2af990671580b6b2df5d158d1038f8292e30c9cd821b5453f399659b25b723d4",
    "ind.citeseer.tx": "539a8906a2da97628d212f2fdd668c109a8b3f0d36574b59e5d3fd5b5303da21",
    "ind.citeseer.ty": "55e5bd1ba1e733a04598753ad1a8d57957f4b8f89e74519f41f4f4938767e4ce",
    "ind.citeseer.x": "d20de19150741e555de0ed037195630fc194114ebc7fd72ced62810148aa22f6",
    "ind.citeseer.y": "8ba87e515d8e3ee3cf52f6d2c5b86aa73f11ecad825a808455209ec26cd54924",
    "ind.cora.allx": "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543",
    "ind.cora.ally": "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71",
    "ind.cora.graph": "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d",
    "ind.cora.test.index": "297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875",
    "ind.cora.tx": "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a",
    "ind.cora.ty": "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad",
    "ind.cora.x": "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab",
    "ind.cora.y": "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1",
}
PUBMED_MISSING = "ind.pubmed.allx"
EMBEDDED_CORA = "cora.npz"
EMBEDDED_CORA_SHA256 = "9fcb57c2ac4bfff479a6832a2a6e189a2a44e21cfd50960bf839430fb1f13547"

_ALLOWED_CLASSES = {
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("scipy.sparse.csr", "csr_matrix"), ("scipy.sparse._csr", "csr_matrix"),
    ("scipy.sparse.lil", "lil_matrix"), ("scipy.sparse._lil", "lil_matrix"),
    ("collections", "defaultdict"), ("builtins", "list"), ("__builtin__", "list"), ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"), ("__builtin__", "object"), ("builtins", "object"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        if (module, name) not in _ALLOWED_CLASSES:
            raise DataError(f"refusing to unpickle {module}.{name}: not a numpy/scipy array class")
        return super().find_class(module, name)


def _unpickle(path: Path) -> object:
    with open(path, "rb") as handle:
        return _RestrictedUnpickler(io.BytesIO(handle.read()), encoding="latin1").load()


def _raw_arrays(name: str, folder: Path) -> dict[str, np.ndarray]:
    """Features, labels, edges and split of one Planetoid set, in the standard node order."""
    if name == "pubmed":
        raise DataError(f"PubMed is incomplete in this data folder: {PUBMED_MISSING} is missing")
    check_option(name, ("cora", "citeseer"), "name", "load_planetoid")
    parts = {}
    for part in ("x", "y", "tx", "ty", "allx", "ally", "graph"):
        file = f"ind.{name}.{part}"
        parts[part] = _unpickle(verify(require_file(folder / file, name), PLANETOID_SHA256[file]))
    index_file = verify(require_file(folder / f"ind.{name}.test.index", name),
                        PLANETOID_SHA256[f"ind.{name}.test.index"])
    test_index = np.array([int(line) for line in index_file.read_text().split()], dtype=np.int64)
    test_sorted = np.sort(test_index)
    tx, ty = sp.csr_matrix(parts["tx"]), np.asarray(parts["ty"])
    if name == "citeseer":  # isolated test nodes have no rows in tx/ty: fill the gaps with zeros
        full = np.arange(test_sorted.min(), test_sorted.max() + 1)
        tx_full = sp.lil_matrix((len(full), tx.shape[1]))
        tx_full[test_sorted - test_sorted.min(), :] = tx
        ty_full = np.zeros((len(full), ty.shape[1]))
        ty_full[test_sorted - test_sorted.min(), :] = ty
        tx, ty = sp.csr_matrix(tx_full), ty_full
    features = sp.vstack([sp.csr_matrix(parts["allx"]), tx]).tolil()
    features[test_index, :] = features[test_sorted, :]
    labels = np.vstack([np.asarray(parts["ally"]), ty])
    labels[test_index, :] = labels[test_sorted, :]
    num_nodes = features.shape[0]
    graph_dict = parts["graph"]
    src = np.array([s for s, nbrs in graph_dict.items() for _ in nbrs], dtype=np.int64)
    dst = np.array([t for nbrs in graph_dict.values() for t in nbrs], dtype=np.int64)
    # undirected, no duplicates, no self-loops, sorted by (source, target)
    keys = np.unique(np.concatenate([src * num_nodes + dst, dst * num_nodes + src]))
    edges = np.stack([keys // num_nodes, keys % num_nodes])
    edges = edges[:, edges[0] != edges[1]]
    num_train = np.asarray(parts["y"]).shape[0]
    features = sp.csr_matrix(features)
    return {
        "feature_indptr": features.indptr.astype(np.int64),
        "feature_indices": features.indices.astype(np.int32),
        "feature_values": features.data.astype(np.float32),
        "num_features": np.int64(features.shape[1]),
        "labels": labels.argmax(1).astype(np.int64),
        "edge_index": edges.astype(np.int32),
        "train": np.arange(num_train, dtype=np.int64),
        "val": np.arange(num_train, num_train + 500, dtype=np.int64),
        "test": test_sorted[:1000].astype(np.int64),
    }


def _graph_from_arrays(arrays: dict[str, np.ndarray]) -> Graph:
    num_nodes = len(arrays["labels"])
    features = sp.csr_matrix(
        (arrays["feature_values"], arrays["feature_indices"], arrays["feature_indptr"]),
        shape=(num_nodes, int(arrays["num_features"])),
    )
    masks = {}
    for split in ("train", "val", "test"):
        mask = torch.zeros(num_nodes, dtype=torch.bool)
        mask[torch.from_numpy(arrays[split])] = True
        masks[f"{split}_mask"] = mask
    return Graph(
        torch.from_numpy(arrays["edge_index"].astype(np.int64)), num_nodes,
        x=torch.from_numpy(features.toarray().astype(np.float32)), y=torch.from_numpy(arrays["labels"]), **masks,
    )


def load_planetoid(name: str, root: str | os.PathLike | None = None) -> Graph:
    """Load ``"cora"`` or ``"citeseer"`` from ``<root>/planetoid`` (``root`` defaults to ``$FIVEFOLD_DATA``).

    Returns a ``Graph`` with binary bag-of-words ``x: [N, F]``, ``y: [N]``, and the public split as masks.
    Cora: 2,708 nodes, 10,556 directed edges (5,278 undirected), 1,433 features, 7 classes.
    CiteSeer: 3,327 nodes, 9,104 directed edges, 3,703 features, 6 classes.
    """
    return _graph_from_arrays(_raw_arrays(name.lower(), data_root(root) / "planetoid"))


def planetoid_to_npz(name: str, root: str | os.PathLike | None, out: str | os.PathLike) -> None:
    """Convert a Planetoid set to the compressed ``.npz`` form the package embeds."""
    np.savez_compressed(out, **_raw_arrays(name.lower(), data_root(root) / "planetoid"))


def load_embedded_cora() -> Graph:
    """Cora as shipped inside the package (checked against its sha256 before loading); no data folder needed."""
    resource = resources.files("fivefold.data") / "embedded" / EMBEDDED_CORA
    with resources.as_file(resource) as path:
        verify(Path(path), EMBEDDED_CORA_SHA256)
        with np.load(path, allow_pickle=False) as arrays:
            return _graph_from_arrays(dict(arrays))
