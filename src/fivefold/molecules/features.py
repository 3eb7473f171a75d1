"""Atom and bond features of molecular graphs, read from RDKit molecules. Versioned: ``FEATURES_VERSION`` changes
whenever a column changes, and a trained model records the version it was trained with.

Version 1 (the chemprop 2 "v2" featuriser's columns, plus ring membership of atoms, so that D-MPNN results compare
with chemprop's on the same inputs). Every categorical block is one-hot with a final "other" column:

Atoms (``ATOM_FEATURES = 73`` columns, in this order):

=====================  ====================================================  =======
block                  values                                                columns
=====================  ====================================================  =======
element                atomic numbers 1-36 and 53 (I), other                 38
degree                 0-5 neighbours, hydrogens included, other             7
formal charge          -1, -2, 1, 2, 0, other                                6
chirality              RDKit ChiralType 0-3, other                           5
hydrogens              total attached H 0-4, other                           6
hybridisation          S, SP, SP2, SP2D, SP3, SP3D, SP3D2, other             8
aromatic               1 if aromatic                                         1
in ring                1 if the atom is in a ring                            1
mass                   atomic mass / 100                                     1
=====================  ====================================================  =======

Bonds (``BOND_FEATURES = 14`` columns): bond type (single, double, triple, aromatic, other: 5; read from the bond
order, so a dative bond counts as single, where chemprop sets no type), conjugated (1), in ring (1), stereo (RDKit
BondStereo 0-5, other: 7).

Featurisation loops over atoms in Python (RDKit's API is per atom), collects small integer codes, and one-hot encodes a
whole molecule at once with numpy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FEATURES_VERSION", "ATOM_FEATURES", "BOND_FEATURES", "atom_features", "bond_features",
           "bonds_and_features"]

FEATURES_VERSION = 1

_ELEMENTS = list(range(1, 37)) + [53]
_ELEMENT_CODE = np.full(128, len(_ELEMENTS), dtype=np.int64)
_ELEMENT_CODE[_ELEMENTS] = np.arange(len(_ELEMENTS))
_CHARGES = {-1: 0, -2: 1, 1: 2, 2: 3, 0: 4}
_HYBRIDISATIONS = ("S", "SP", "SP2", "SP2D", "SP3", "SP3D", "SP3D2")
# (block sizes including the "other" column) for element, degree, charge, chirality, hydrogens, hybridisation
_ATOM_BLOCKS = (len(_ELEMENTS) + 1, 7, 6, 5, 6, 8)
_ATOM_OFFSETS = np.concatenate([[0], np.cumsum(_ATOM_BLOCKS)[:-1]])
ATOM_FEATURES = int(sum(_ATOM_BLOCKS)) + 3
_BOND_TYPES = {1.0: 0, 2.0: 1, 3.0: 2, 1.5: 3}
BOND_FEATURES = 14


def _hybridisation_codes() -> dict:
    from rdkit.Chem import HybridizationType

    return {getattr(HybridizationType, name): k for k, name in enumerate(_HYBRIDISATIONS)
            if hasattr(HybridizationType, name)}


_HYBRID_CACHE: dict = {}


def atom_features(mol) -> np.ndarray:
    """``[N, ATOM_FEATURES]`` float32 features of the atoms of an RDKit ``Mol``, in atom order."""
    if not _HYBRID_CACHE:
        _HYBRID_CACHE.update(_hybridisation_codes())
    n = mol.GetNumAtoms()
    element, hybrid, charges = _ELEMENT_CODE, _HYBRID_CACHE, _CHARGES
    rows, flags = [], []
    for k in range(n):
        atom = mol.GetAtomWithIdx(k)  # faster than iterating mol.GetAtoms(), a Python-level sequence wrapper
        rows.append((element[min(atom.GetAtomicNum(), 127)], min(atom.GetTotalDegree(), 6),
                     charges.get(atom.GetFormalCharge(), 5), min(int(atom.GetChiralTag()), 4),
                     min(atom.GetTotalNumHs(), 5), hybrid.get(atom.GetHybridization(), 7)))
        flags.append((atom.GetIsAromatic(), atom.IsInRing(), 0.01 * atom.GetMass()))
    codes = np.array(rows, dtype=np.int64).reshape(n, 6)
    out = np.zeros((n, ATOM_FEATURES), dtype=np.float32)
    out[np.arange(n)[:, None], codes + _ATOM_OFFSETS] = 1.0
    out[:, -3:] = np.array(flags, dtype=np.float32).reshape(n, 3)
    return out


def bond_features(mol) -> np.ndarray:
    """``[B, BOND_FEATURES]`` float32 features of the bonds of an RDKit ``Mol``, in bond order."""
    return bonds_and_features(mol)[1]


def bonds_and_features(mol) -> tuple[np.ndarray, np.ndarray]:
    """``(ends [B, 2] int64 begin and end atom of each bond, features [B, BOND_FEATURES] float32)``, one pass."""
    b = mol.GetNumBonds()
    rows = []
    for k in range(b):
        bond = mol.GetBondWithIdx(k)
        rows.append((bond.GetBeginAtomIdx(), bond.GetEndAtomIdx(), _BOND_TYPES.get(bond.GetBondTypeAsDouble(), 4),
                     7 + min(int(bond.GetStereo()), 6), bond.GetIsConjugated(), bond.IsInRing()))
    table = np.array(rows, dtype=np.int64).reshape(b, 6)
    ends, codes, flags = table[:, :2], table[:, 2:4], table[:, 4:6]
    out = np.zeros((b, BOND_FEATURES), dtype=np.float32)
    out[np.arange(b)[:, None], codes] = 1.0
    out[:, 5:7] = flags
    return ends, out
