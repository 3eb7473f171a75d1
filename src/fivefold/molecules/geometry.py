"""What 3D molecular layers share: checked inputs (atomic numbers, positions, edges) and edge vectors."""

from __future__ import annotations

import torch
from torch import Tensor

from fivefold.errors import MoleculeError
from fivefold.graphs import Graph
from fivefold.molecules.convert import atomic_numbers

__all__ = ["edge_vectors", "molecule_inputs"]


def molecule_inputs(batch: Graph, where: str) -> tuple[Tensor, Tensor]:
    """``(atomic numbers [N] int64, positions [N, 3])`` of a 3D molecule batch, checked."""
    if batch.pos is None or batch.pos.dim() != 2 or batch.pos.shape[1] != 3:
        raise MoleculeError(f"{where}: the batch needs pos [N, 3] (3D molecules: build them with from_xyz)")
    return atomic_numbers(batch), batch.pos


def edge_vectors(pos: Tensor, edge_index: Tensor) -> tuple[Tensor, Tensor]:
    """``(vectors [E, 3], lengths [E])``: ``pos[j] - pos[i]`` for each edge ``j -> i`` (the neighbour seen from the
    centre). Lengths are differentiable, also at 0 (where the gradient is taken as 0)."""
    vectors = pos[edge_index[0]] - pos[edge_index[1]]
    squared = (vectors * vectors).sum(dim=1)
    safe = torch.where(squared > 0, squared, torch.ones_like(squared))
    lengths = torch.where(squared > 0, safe.sqrt(), torch.zeros_like(squared))
    return vectors, lengths
