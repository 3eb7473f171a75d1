"""Molecules: graphs from SMILES (RDKit, the optional extra ``fivefold[mol]``) and from 3D structures, molecular
splits, and the models: D-MPNN and GINE on 2D graphs; SchNet, EGNN and a tensor-product network on 3D structures.

Symmetry: every model is invariant to renumbering the atoms; the 3D models are also invariant (scalar outputs) or
equivariant (forces, vector and higher-degree node features, EGNN's coordinates) under rotations, reflections and
translations; ``fivefold.testing.molecule_action`` is the E(3) action their tests use.

Example::

    >>> from fivefold.graphs import Batch
    >>> from fivefold.molecules import DMPNN, from_smiles
    >>> batch = Batch.from_graphs([from_smiles("CCO"), from_smiles("c1ccccc1")])
    >>> DMPNN(targets=1)(batch).shape
    torch.Size([2, 1])
"""

from fivefold.molecules.convert import atomic_numbers, conformer, from_smiles, from_xyz, smiles_to_graphs
from fivefold.molecules.dmpnn import DMPNN, reverse_edges
from fivefold.molecules.egnn import EGNN, EGNNLayer
from fivefold.molecules.equivariant import TensorProductConv, TensorProductNet, coupling_paths, energy_and_forces
from fivefold.molecules.features import ATOM_FEATURES, BOND_FEATURES, FEATURES_VERSION, atom_features, bond_features
from fivefold.molecules.gine import GINE
from fivefold.molecules.radial import BesselBasis, GaussianBasis, cosine_cutoff, polynomial_cutoff
from fivefold.molecules.schnet import SchNet
from fivefold.molecules.splits import murcko_scaffold, random_split, scaffold_split, stratified_split

__all__ = [
    "from_smiles", "smiles_to_graphs", "from_xyz", "conformer", "atomic_numbers",
    "ATOM_FEATURES", "BOND_FEATURES", "FEATURES_VERSION", "atom_features", "bond_features",
    "DMPNN", "GINE", "reverse_edges", "SchNet", "EGNN", "EGNNLayer", "TensorProductConv", "TensorProductNet",
    "coupling_paths", "energy_and_forces",
    "GaussianBasis", "BesselBasis", "cosine_cutoff", "polynomial_cutoff",
    "random_split", "scaffold_split", "stratified_split", "murcko_scaffold",
]
