"""Train / validation / test splits of molecule sets: random, scaffold (Bemis-Murcko) and stratified.

The scaffold split is the balanced one of Yang et al. 2019 ("Analyzing Learned Molecular Representations for Property
Prediction", chemprop): molecules are grouped by their Bemis-Murcko scaffold (Bemis & Murcko 1996) so that no scaffold
is in two parts; scaffold sets too large for the validation or test part go to training first, the rest in a seeded
random order, filling training, then validation, then test. It measures generalisation to new chemotypes and is harder
than a random split.

Every function returns ``(train, val, test)`` int64 index arrays, disjoint, covering every row, each sorted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from fivefold.errors import MoleculeError
from fivefold.molecules.convert import _parse, rdkit

__all__ = ["random_split", "scaffold_split", "stratified_split", "murcko_scaffold"]


def _check_sizes(sizes: Sequence[float]) -> tuple[float, float, float]:
    if len(sizes) != 3 or any(not 0 <= s <= 1 for s in sizes) or abs(sum(sizes) - 1) > 1e-9:
        raise MoleculeError(f"split sizes must be three fractions (train, val, test) summing to 1, got {tuple(sizes)}")
    return tuple(float(s) for s in sizes)


def _counts(n: int, sizes: tuple[float, float, float]) -> tuple[int, int]:
    train = int(round(sizes[0] * n))
    val = int(round(sizes[1] * n))
    return train, min(val, n - train)


def _sorted(*parts) -> tuple[np.ndarray, ...]:
    return tuple(np.sort(np.asarray(p, dtype=np.int64)) for p in parts)


def random_split(n: int, sizes: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0):
    """A seeded random split of ``n`` rows."""
    sizes = _check_sizes(sizes)
    order = np.random.default_rng(seed).permutation(n)
    train, val = _counts(n, sizes)
    return _sorted(order[:train], order[train:train + val], order[train + val:])


def murcko_scaffold(smiles: str, include_chirality: bool = False) -> str:
    """The Bemis-Murcko scaffold of a molecule as a canonical SMILES ("" for an acyclic molecule)."""
    rdkit()
    from rdkit.Chem.Scaffolds import MurckoScaffold

    return MurckoScaffold.MurckoScaffoldSmiles(mol=_parse(smiles, "murcko_scaffold"),
                                               includeChirality=include_chirality)


def scaffold_split(smiles: Sequence[str], sizes: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0):
    """The balanced scaffold split (module docstring) of the molecules ``smiles``."""
    sizes = _check_sizes(sizes)
    n = len(smiles)
    groups: dict[str, list[int]] = defaultdict(list)
    for row, text in enumerate(smiles):
        groups[murcko_scaffold(text)].append(row)
    train_size, val_size = _counts(n, sizes)
    test_size = n - train_size - val_size
    sets = list(groups.values())
    big = [s for s in sets if len(s) > val_size / 2 or len(s) > test_size / 2]
    small = [s for s in sets if not (len(s) > val_size / 2 or len(s) > test_size / 2)]
    rng = np.random.default_rng(seed)
    rng.shuffle(big)
    rng.shuffle(small)
    train: list[int] = []
    val: list[int] = []
    test: list[int] = []
    for scaffold_set in big + small:
        if len(train) + len(scaffold_set) <= train_size:
            train += scaffold_set
        elif len(val) + len(scaffold_set) <= val_size:
            val += scaffold_set
        else:
            test += scaffold_set
    return _sorted(train, val, test)


def stratified_split(labels, sizes: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0):
    """A seeded random split that keeps each class's share in every part (classification sets: ``labels [n]``
    integer classes)."""
    sizes = _check_sizes(sizes)
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise MoleculeError(f"stratified_split: labels must be one class per row [n], got shape {labels.shape}")
    if labels.dtype.kind == "f" and np.isnan(labels).any():
        raise MoleculeError(f"stratified_split: label of row {int(np.argmax(np.isnan(labels)))} is missing (NaN); "
                            "every row needs a class")
    rng = np.random.default_rng(seed)
    parts: tuple[list, list, list] = ([], [], [])
    for value in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == value))
        train, val = _counts(len(rows), sizes)
        parts[0].extend(rows[:train])
        parts[1].extend(rows[train:train + val])
        parts[2].extend(rows[train + val:])
    return _sorted(*parts)
