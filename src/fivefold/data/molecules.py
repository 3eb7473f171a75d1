"""The real molecule sets: MoleculeNet CSVs (SMILES + targets), QM9 complete (3D geometry + 15 properties) and the
MD17-style ethanol sample (energies and forces). Every file's sha256 is checked before it is parsed.

- ``load_moleculenet(name)``: ``MoleculeTable(smiles, targets [n, T] float64 with NaN for a missing label,
  task_names, kind)`` for ``esol``, ``freesolv``, ``lipophilicity``, ``bbbp``, ``bace``, ``tox21``, ``hiv``.
- ``load_qm9()``: ``QM9`` arrays (atomic numbers, positions, per-molecule offsets, QM9 index, 15 properties in QM9's
  own units) and ``QM9.graphs(rows, cutoff)``; ``QM9_UNITS`` converts to the units papers report (meV, Debye, ...).
- ``load_md17_ethanol()``: ``(atomic_numbers [9], positions [2000, 9, 3], energies [2000] kcal/mol,
  forces [2000, 9, 3] kcal/mol/Angstrom)``.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from fivefold.data.files import data_root, require_file, verify
from fivefold.errors import DataError, OptionError
from fivefold.graphs import Graph, radius_graph

__all__ = ["MOLECULENET", "MoleculeTable", "load_moleculenet", "QM9", "QM9_PROPERTIES", "QM9_UNITS", "load_qm9",
           "load_md17_ethanol"]

# name -> (file, sha256, SMILES column, target columns (None: every column but SMILES), kind)
MOLECULENET = {
    "esol": ("moleculenet/delaney-processed.csv", "e91dc7027cbaeec3872a45b2522c46676e483c123b1c97172839d858a2f26d9c",
             "smiles", ["measured log solubility in mols per litre"], "regression"),
    "freesolv": ("moleculenet/SAMPL.csv", "a82c5da54d7615f02d77d327a602e152fb3ed604fc093c49fb806bff2fd2149d",
                 "smiles", ["expt"], "regression"),
    "lipophilicity": ("moleculenet/lipo.csv", "aa9bd9669188e35efd908758a75561bba402016d901fed2d0d949289abbcf31c",
                      "smiles", ["lipo"], "regression"),
    "bbbp": ("moleculenet/bbbp.csv", "a61e17872cbec0743a6147dc802a1f7550acfe8dc1053f881f4c42a3ce2dc597",
             "smiles", ["p_np"], "classification"),
    "bace": ("moleculenet/bace.csv", "847be1e38d3798c60df03e1aaf2ccd0f09f9ed89407de78e80463aa637088532",
             "mol", ["Class"], "classification"),
    "tox21": ("moleculenet/tox21.csv", "b58cc1f683e78e3c7a1bf7116e9aac0119804018d100f7b8cdb0857941c31aca",
              "smiles", None, "classification"),
    "hiv": ("moleculenet/hiv.csv.gz", "0a4a7390d6f22035c293e8e0d500655d76233b35f0f68ab128f3ceccdd97a297",
            "smiles", ["HIV_active"], "classification"),
}


@dataclass(frozen=True)
class MoleculeTable:
    """SMILES and targets of a MoleculeNet set. ``targets [n, T]`` float64, NaN where a label is missing."""

    name: str
    smiles: list[str]
    targets: np.ndarray
    task_names: list[str]
    kind: str  # "regression" or "classification"

    def __len__(self) -> int:
        return len(self.smiles)


def load_moleculenet(name: str, root: str | os.PathLike | None = None) -> MoleculeTable:
    """Load the MoleculeNet set ``name`` (see ``MOLECULENET``) from the data folder ``root`` (default
    ``$FIVEFOLD_DATA``)."""
    if name not in MOLECULENET:
        raise OptionError(f"load_moleculenet: unknown set {name!r}; choose one of {sorted(MOLECULENET)}")
    relative, digest, smiles_column, target_columns, kind = MOLECULENET[name]
    path = verify(require_file(data_root(root) / relative, name), digest)
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"))))
    header, body = rows[0], rows[1:]
    if smiles_column not in header:
        raise DataError(f"{path}: no column {smiles_column!r} (columns: {header})")
    columns = target_columns or [c for c in header if c != smiles_column]
    missing = [c for c in columns if c not in header]
    if missing:
        raise DataError(f"{path}: missing target column(s) {missing}")
    s_index = header.index(smiles_column)
    t_index = [header.index(c) for c in columns]
    smiles = [row[s_index].strip() for row in body]
    targets = np.array([[float(row[k]) if row[k].strip() else np.nan for k in t_index] for row in body])
    return MoleculeTable(name, smiles, targets.reshape(len(body), len(columns)), list(columns), kind)


QM9_FILES = {
    "geometry": ("qm9-full/qm9_geometry.npz", "03ea378e4084d4da1c2c5ab7a0886707a858872b3a4c8bff54601b76cbfa681e"),
    "properties": ("qm9-full/qm9_properties.npz", "f0f015bac25fdb01cc9a00db0ada343f7305300c8e2e9ab445bd89103f3c5709"),
}
QM9_PROPERTIES = ("A_GHz", "B_GHz", "C_GHz", "mu_debye", "alpha_bohr3", "homo_hartree", "lumo_hartree", "gap_hartree",
                  "r2_bohr2", "zpve_hartree", "U0_hartree", "U_hartree", "H_hartree", "G_hartree",
                  "Cv_cal_per_mol_K")
HARTREE_TO_MEV = 27211.386
# property -> (factor to the reported unit, the unit)
QM9_UNITS = {
    "mu_debye": (1.0, "D"), "alpha_bohr3": (1.0, "bohr^3"), "homo_hartree": (HARTREE_TO_MEV, "meV"),
    "lumo_hartree": (HARTREE_TO_MEV, "meV"), "gap_hartree": (HARTREE_TO_MEV, "meV"), "r2_bohr2": (1.0, "bohr^2"),
    "zpve_hartree": (HARTREE_TO_MEV, "meV"), "U0_hartree": (HARTREE_TO_MEV, "meV"),
    "U_hartree": (HARTREE_TO_MEV, "meV"),
    "H_hartree": (HARTREE_TO_MEV, "meV"), "G_hartree": (HARTREE_TO_MEV, "meV"), "Cv_cal_per_mol_K": (1.0, "cal/mol K"),
}


@dataclass(frozen=True)
class QM9:
    """QM9 complete: 130,831 molecules. ``z [A]`` int64 atomic numbers and ``pos [A, 3]`` float32 Angstrom for all
    atoms, molecule ``k`` is rows ``ptr[k]:ptr[k+1]``; ``index [M]`` QM9's molecule numbers; ``properties`` name ->
    ``[M]`` float64 in QM9's own units (Hartree, Debye, ...; energies are totals, not atomisation energies)."""

    z: np.ndarray
    pos: np.ndarray
    ptr: np.ndarray
    index: np.ndarray
    properties: dict[str, np.ndarray] = field(repr=False)

    def __len__(self) -> int:
        return len(self.index)

    def graphs(self, rows: Sequence[int] | np.ndarray, *, cutoff: float = 5.0,
               dtype: torch.dtype = torch.float32) -> list[Graph]:
        """Graphs of the molecules ``rows`` as ``from_xyz`` builds them (``x [n, 1]`` atomic numbers, ``pos``, the
        radius graph with ``cutoff``), made with one neighbour search over all their atoms."""
        rows = np.asarray(rows, dtype=np.int64)
        starts, ends = self.ptr[rows], self.ptr[rows + 1]
        counts = ends - starts
        atoms = np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)]) if len(rows) else \
            np.zeros(0, dtype=np.int64)
        pos = torch.from_numpy(self.pos[atoms]).to(dtype)
        z = torch.from_numpy(self.z[atoms]).to(dtype)[:, None]
        molecule = torch.from_numpy(np.repeat(np.arange(len(rows)), counts))
        source, target = radius_graph(pos, cutoff, molecule)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        edge_offsets = np.searchsorted(target.numpy(), offsets)  # edges come grouped by target, so by molecule
        out = []
        for k in range(len(rows)):
            a, b, e0, e1 = offsets[k], offsets[k + 1], edge_offsets[k], edge_offsets[k + 1]
            edge_index = torch.stack([source[e0:e1], target[e0:e1]]) - int(a)
            out.append(Graph(edge_index, int(b - a), x=z[a:b], pos=pos[a:b]))
        return out


def load_qm9(root: str | os.PathLike | None = None) -> QM9:
    """Load QM9 complete from ``<root>/qm9-full`` (checksums checked)."""
    base = data_root(root)
    paths = {key: verify(require_file(base / rel, "qm9"), digest) for key, (rel, digest) in QM9_FILES.items()}
    with np.load(paths["geometry"]) as geometry, np.load(paths["properties"]) as props:
        if not np.array_equal(geometry["index"], props["index"]):
            raise DataError("qm9: the geometry and property files list different molecules")
        return QM9(geometry["Z"].astype(np.int64), geometry["R"], geometry["ptr"].astype(np.int64),
                   geometry["index"].astype(np.int64), {name: props[name] for name in QM9_PROPERTIES})


MD17_ETHANOL = ("md17-ethanol-sample/ethanol_sampledata.xyz.gz",
                "a7308895806a82c42765d169b37cd78c5814720f6835ff794ba99ad4cb649ad6")
_SYMBOLS = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}


def load_md17_ethanol(root: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                         np.ndarray]:
    """The 2,000 ethanol configurations: ``(z [9], pos [2000, 9, 3], energy [2000], forces [2000, 9, 3])`` in
    Angstrom and kcal/mol (see its SOURCE.md: likely a subsample of MD17, not verified)."""
    path = verify(require_file(data_root(root) / MD17_ETHANOL[0], "md17-ethanol"), MD17_ETHANOL[1])
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    frames, energies, z = [], [], None
    k = 0
    while k < len(lines):
        if not lines[k].strip():
            k += 1
            continue
        count = int(lines[k])
        comment = lines[k + 1]
        energy = [part.split("=", 1)[1] for part in comment.split() if part.startswith("energy=")]
        if not energy:
            raise DataError(f"{path}: frame at line {k + 2} has no energy= field")
        rows = [line.split() for line in lines[k + 2:k + 2 + count]]
        symbols = [row[0] for row in rows]
        frame_z = np.array([_SYMBOLS[s] for s in symbols])
        if z is None:
            z = frame_z
        elif not np.array_equal(z, frame_z):
            raise DataError(f"{path}: frame at line {k + 1} lists other atoms than the first frame")
        frames.append(np.array([[float(v) for v in row[1:7]] for row in rows]))
        energies.append(float(energy[0]))
        k += 2 + count
    data = np.stack(frames)
    return z, data[:, :, :3], np.array(energies), data[:, :, 3:]
