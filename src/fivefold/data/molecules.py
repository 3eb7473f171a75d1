"""The real molecule sets: MoleculeNet CSVs (SMILES + targets), QM9 complete (3D geometry + 15 properties) and the
MD17-style ethanol sample (energies and forces). Every file's sha256 is checked before it is parsed.

- ``load_moleculenet(name)``: ``MoleculeTable(smiles, targets [n, T] float64 with NaN for a missing label,
  task_names, kind)`` for ``esol``, ``freesolv``, ``lipophilicity``, ``bbbp``, ``bace``, ``tox21``, ``hiv``.
- ``load_qm9()``: ``QM9`` arrays (atomic numbers, positions, per-molecule offsets, QM9 index, 15 properties in QM9's
  own units) and ``QM9.graphs(rows, cutoff)``; ``QM9_UNITS`` converts to the units papers report (meV, Debye, ...).
- ``load_md17_ethanol()``: ``(atomic_numbers [9], positions [2000, 9, 3], energies [2000] kcal/mol,
  forces [2000, 9, 3] kcal/mol/Angstrom)``.
- ``load_ogb_molecules(name)``: OGB's ogbg-molesol, -molfreesolv, -molbbbp and -molbace with OGB's features (one-hot),
  their SMILES, and OGB's official scaffold split.
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
           "load_md17_ethanol", "OGBMolecules", "load_ogb_molecules", "OGB_ATOM_VALUES", "OGB_BOND_VALUES"]

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



# ----- OGB's molecular sets (official scaffold splits) ---------------------------------------------------------------
# OGB's integer atom and bond features and how many values each takes (ogb.utils.features: atomic number - 1,
# chirality, degree, formal charge + 5, hydrogens, radical electrons, hybridisation, aromatic, in ring; bond type,
# stereo, conjugated). ``load_ogb_molecules`` one-hot encodes them: 174 atom and 13 bond columns.
OGB_ATOM_VALUES = (119, 5, 12, 12, 10, 6, 6, 2, 2)
OGB_BOND_VALUES = (5, 6, 2)
OGB_FILES = {
    "bace": {
        "mapping/mol.csv.gz": "7a7aed697887bbd1ddcca1aa9e83d069d39e09d800e5961d20b80f1704ba86b5",
        "raw/edge-feat.csv.gz": "089c1ee7c5561a0e81623780d0808e10feb2aa789a48b1fef260ad3f3494013b",
        "raw/edge.csv.gz": "014e9475134c9c20300fda5d8115bd0c5f192185cd74c6f8921afc28f6359ce7",
        "raw/graph-label.csv.gz": "a93fed4e7bf6ef1fe8b6bd79e5a4eb984d9a5ccaa4f51d6cb1accecff836b632",
        "raw/node-feat.csv.gz": "bd031b6fd3d699c2ee4527e778e298bc0ae52439b9b720311789f83803a6025a",
        "raw/num-edge-list.csv.gz": "78e201ed1abfd581096a3e5ba32a18ccca8e872f89c05bec1f9e52f25a7a5f76",
        "raw/num-node-list.csv.gz": "ca6e661f0d4323c90543e9539971ba8695a763aac0df2e8e1c6d141985a9a2fa",
        "split/scaffold/test.csv.gz": "8e6ede054b28f5953912996c1d59c0d8b0c7ef252b3f2679c251d205c8438755",
        "split/scaffold/train.csv.gz": "5f20fb296650872fc91d8af37ed3afdd6d4cd32b52e53763d543bf1b6aa89b26",
        "split/scaffold/valid.csv.gz": "f06cb03da9a5f5609c4600f1e01148eb54779351086aede3305643335657bd66",
    },
    "bbbp": {
        "mapping/mol.csv.gz": "7ec2b3b15450d30547e0f9ce2e17d1ba88f43f71e2a5a4e9df69bbb03c34c5c7",
        "raw/edge-feat.csv.gz": "63c88ff2aa95429411dce45f9cba68a7e06bbc793524a9bc4ec13179a5cea125",
        "raw/edge.csv.gz": "1b5843cd8221fda188809da6e60c1c27b4831cc01c568ecbe362e3532b1ccb25",
        "raw/graph-label.csv.gz": "99ae33f3f36ac7fed4a755c4912a170c0f1810e0688e6fba76d75831d4686f4f",
        "raw/node-feat.csv.gz": "90b47004f3ce80a6495c8add546ae360d4c6e7356f5360664c0b041eac07df34",
        "raw/num-edge-list.csv.gz": "552429af844e8d806155bb5e8bd59308528dc8d7d34d6a3f19a27e0d910fc87f",
        "raw/num-node-list.csv.gz": "859b4d14247fc8d03b50661d17b453a23d966e3bfa22b66edb46d2e54acf36d6",
        "split/scaffold/test.csv.gz": "2561d4164f8e33163d6484bcce005578b7a3de3b00b4630c072bf56219a21451",
        "split/scaffold/train.csv.gz": "e1ae77b817d05b63af3ec5aa7ab1e170ebebc0849cb7712fe11b29a48999cc75",
        "split/scaffold/valid.csv.gz": "0b20d30453c99a703a672e0c023bea9e198315db3c92c094cfc610b9853b8ca6",
    },
    "esol": {
        "mapping/mol.csv.gz": "9d35028b2adf47376c1a74d89bb1f21aa584605d17eca8193b37b0c88ef2515d",
        "raw/edge-feat.csv.gz": "da5e2351193a7ef5cd3d4d78a9527797d52ca64e5af52ea4f14adcafdb0c1693",
        "raw/edge.csv.gz": "d4fbb9ea8127e76ac915bb650d61db36e5e5ae2695b2e869818e7632d7bec0af",
        "raw/graph-label.csv.gz": "049ab083983327bd4e2d0bcdb019d6ae4c0316ae676e6add0403a5a7e94c5cad",
        "raw/node-feat.csv.gz": "1500decb89013de31586a9725b3fe984b84cb2696f8411880ddbb09ecb3112f0",
        "raw/num-edge-list.csv.gz": "8cc54b817d1f5c999cfd69dc9c09aebdddee942f8fd95f2462fb53699eae9ce0",
        "raw/num-node-list.csv.gz": "57de66bbe53142b5bd7329e8aa5e7812dfbeffe80b6ba500b14e7d354aaa17ac",
        "split/scaffold/test.csv.gz": "3a2367389a4d0f2d3cada1ba19d82c83edcb4db58bd564273b14b8a33749cde2",
        "split/scaffold/train.csv.gz": "07a08a743001b8faa61ffb62130ac60e4f89355912fd798da7a471e233cb5d1b",
        "split/scaffold/valid.csv.gz": "fc4ddf102e27ab6436128e151dc1e83c9f2cf2be3e8c4007543dcf97bd13ff53",
    },
    "freesolv": {
        "mapping/mol.csv.gz": "81d2ed64f4366ba1459e4cdb697c080b14e220b73074380ee968b35ed65e175d",
        "raw/edge-feat.csv.gz": "4452afab3488e10c904273869772d56dbe8999d05f59c295c5da771b243b08d6",
        "raw/edge.csv.gz": "adafd5b17b4d744d165993e47b1c4b9594ab15b443d4b06914b556ce8068b981",
        "raw/graph-label.csv.gz": "70f2a5492e15e12efd8232e77de4bcc424a8592ebb59512df511c80047aa5dff",
        "raw/node-feat.csv.gz": "27bbc31354d94d402d5d3b4036192a0f8dd0cd522cf4ceb579b451e7e3b58098",
        "raw/num-edge-list.csv.gz": "e33e4a165783062b81f2d163907153f7cc19e6fc177b8039873b11f094d713c2",
        "raw/num-node-list.csv.gz": "ea4163f5cf6745a8f18f270fea7a492765057a8eafb1f54300a2febafb353df9",
        "split/scaffold/test.csv.gz": "03bd483c8c2b4997aa560dd9e2c201faacb1768fb6411df7cfc5b96959e73a6d",
        "split/scaffold/train.csv.gz": "6fbefde21d5380762445203528e5d8f4cee22b2ca57c40047a679c5528f48e83",
        "split/scaffold/valid.csv.gz": "b5c18ff6c6974d6da6f3567ba4eebc9c66f5670b93ea12e0a7bb4f6b82c16bda",
    },
}


@dataclass(frozen=True)
class OGBMolecules:
    """An OGB molecular set: ``graphs`` with OGB's features one-hot encoded (``x [n, 174]``, ``edge_attr [2B, 13]``,
    each bond as two directed edges ``2k`` and ``2k + 1``, ``graph_y [1]``), the same molecules' ``smiles`` (to
    featurise with ``from_smiles`` instead), ``targets [M, 1]`` and OGB's official scaffold ``split``
    ``(train, val, test)`` index arrays."""

    name: str
    graphs: list[Graph]
    smiles: list[str]
    targets: np.ndarray
    split: tuple[np.ndarray, np.ndarray, np.ndarray]
    kind: str


def _read_ints(path) -> np.ndarray:
    with gzip.open(path, "rt") as handle:
        return np.loadtxt(handle, delimiter=",", dtype=np.int64, ndmin=2)


def _one_hot(codes: np.ndarray, sizes: tuple[int, ...], where: str) -> np.ndarray:
    if codes.shape[1] != len(sizes):
        raise DataError(f"{where}: expected {len(sizes)} integer features per row, got {codes.shape[1]}")
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    bad = (codes < 0) | (codes >= np.array(sizes))
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise DataError(f"{where}: feature {column} of row {row} is {codes[row, column]}, outside "
                        f"0..{sizes[column] - 1}")
    out = np.zeros((len(codes), sum(sizes)), dtype=np.float32)
    out[np.arange(len(codes))[:, None], codes + offsets] = 1.0
    return out


def load_ogb_molecules(name: str, root: str | os.PathLike | None = None) -> OGBMolecules:
    """Load ``ogbg-mol<name>`` (``esol``, ``freesolv``, ``bbbp``, ``bace``) from ``<root>/ogbg-mol`` with OGB's
    scaffold split; every file's sha256 is checked."""
    if name not in OGB_FILES:
        raise OptionError(f"load_ogb_molecules: unknown set {name!r}; choose one of {sorted(OGB_FILES)}")
    base = data_root(root) / "ogbg-mol" / f"ogbg_mol{name}"
    paths = {rel: verify(require_file(base / rel, f"ogbg-mol{name}"), digest)
             for rel, digest in OGB_FILES[name].items()}
    atoms = _read_ints(paths["raw/num-node-list.csv.gz"])[:, 0]
    bonds = _read_ints(paths["raw/num-edge-list.csv.gz"])[:, 0]
    x = _one_hot(_read_ints(paths["raw/node-feat.csv.gz"]), OGB_ATOM_VALUES, f"ogbg-mol{name} node-feat")
    ends = _read_ints(paths["raw/edge.csv.gz"])
    bond_x = _one_hot(_read_ints(paths["raw/edge-feat.csv.gz"]), OGB_BOND_VALUES, f"ogbg-mol{name} edge-feat")
    with gzip.open(paths["raw/graph-label.csv.gz"], "rt") as handle:
        targets = np.loadtxt(handle, delimiter=",", dtype=np.float64, ndmin=2)
    if len(x) != atoms.sum() or len(ends) != bonds.sum() or len(targets) != len(atoms):
        raise DataError(f"ogbg-mol{name}: the counts of atoms, bonds and labels do not match their lists")
    with gzip.open(paths["mapping/mol.csv.gz"], "rt") as handle:
        rows = list(csv.DictReader(handle))
    smiles = [row["smiles"].strip() for row in rows]
    graphs = []
    atom_start = np.concatenate([[0], np.cumsum(atoms)])
    bond_start = np.concatenate([[0], np.cumsum(bonds)])
    for k in range(len(atoms)):
        local = ends[bond_start[k]:bond_start[k + 1]]
        edge_index = np.empty((2, 2 * len(local)), dtype=np.int64)
        edge_index[:, 0::2], edge_index[:, 1::2] = local.T, local.T[::-1]
        graphs.append(Graph(torch.from_numpy(edge_index), int(atoms[k]),
                            x=torch.from_numpy(x[atom_start[k]:atom_start[k + 1]]),
                            edge_attr=torch.from_numpy(np.repeat(bond_x[bond_start[k]:bond_start[k + 1]], 2, axis=0)),
                            graph_y=torch.from_numpy(targets[k])))
    split = tuple(np.sort(_read_ints(paths[f"split/scaffold/{part}.csv.gz"])[:, 0])
                  for part in ("train", "valid", "test"))
    kind = "regression" if name in ("esol", "freesolv") else "classification"
    return OGBMolecules(name, graphs, smiles, targets, split, kind)
