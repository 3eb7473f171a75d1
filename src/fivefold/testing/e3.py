"""The E(3) action on molecules and point clouds, for ``assert_equivariant``: a random rotation or reflection, a
translation, and a renumbering of the atoms of every graph (and a reordering of its edges).

An element of ``E3()`` is an ``E3Element``: an orthogonal matrix ``R`` (``[3, 3]``, determinant +-1), a translation
``t`` (``[3]``) and a seed for the permutations. The actions:

- ``molecule_action()``: on a ``Graph`` or ``Batch``: ``pos -> pos R^T + t`` (a graph without ``pos``, such as a
  SMILES graph, is only renumbered); nodes renumbered inside each graph (``x``, ``pos``, ``y`` and the masks follow,
  ``edge_index`` relabelled), edges reordered inside each graph
  (``edge_attr``, ``edge_weight`` follow). A ``Batch`` stays a ``Batch`` with the same graphs in the same order.
- ``node_action(graph, field_type)``: on per-node outputs ``[N, C]`` of that graph: rows renumbered as the nodes were,
  channels transformed by ``field_type`` (an O(3) field type: ``o3_irreps("1o")`` for forces or displacements,
  ``o3_irreps("4x0e")`` for scalars).
- ``position_action(graph)``: on ``[N, 3]`` positions: renumbered, rotated and translated.
- ``"invariant"``: graph-level outputs (energies, properties) must not change.

Example::

    >>> import torch
    >>> from fivefold.graphs import Graph
    >>> from fivefold.testing import assert_equivariant, molecule_action
    >>> g = Graph(torch.tensor([[0, 1], [1, 0]]), pos=torch.randn(2, 3, dtype=torch.float64))
    >>> report = assert_equivariant(lambda m: (m.pos[0] - m.pos[1]).norm(), molecule_action(), "invariant", g,
    ...                             atol=1e-12)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from fivefold.groups import Action, FieldType, random_rotation

__all__ = ["E3", "E3Element", "molecule_action", "node_action", "position_action"]


@dataclass(frozen=True, eq=False)
class E3Element:
    """``x -> R x + t`` with the atoms of each graph renumbered by a permutation drawn from ``seed``."""

    matrix: Tensor
    translation: Tensor
    seed: int

    def _ranges(self, graph: Any, field: str) -> list[tuple[int, int]]:
        """Node (``field="ptr"``) or edge (``"edge_ptr"``) ranges of each graph of a batch; one range otherwise."""
        ptr = getattr(graph, field, None)
        if ptr is None:
            total = graph.num_nodes if field == "ptr" else graph.num_edges
            return [(0, total)]
        ptr = ptr.tolist()
        return list(zip(ptr[:-1], ptr[1:], strict=True))

    def _permutation(self, ranges: list[tuple[int, int]], salt: int) -> Tensor:
        generator = torch.Generator().manual_seed(self.seed * 2 + salt)
        parts = [start + torch.randperm(end - start, generator=generator) for start, end in ranges]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)

    def node_permutation(self, graph: Any) -> Tensor:
        """``perm [N]``: new node ``k`` is old node ``perm[k]`` (a permutation inside each graph of a batch)."""
        return self._permutation(self._ranges(graph, "ptr"), 0)

    def edge_permutation(self, graph: Any) -> Tensor:
        """``perm [E]``: new edge ``k`` is old edge ``perm[k]`` (inside each graph of a batch)."""
        return self._permutation(self._ranges(graph, "edge_ptr"), 1)

    def __repr__(self) -> str:
        kind = "reflection" if torch.det(self.matrix) < 0 else "rotation"
        return f"E3Element({kind}, t={[round(v, 3) for v in self.translation.tolist()]}, seed={self.seed})"


class E3:
    """The Euclidean group of 3D space with atom renumbering. ``sample`` draws Haar-random rotations, a point
    reflection with probability 1/2, Gaussian translations of scale 10, and permutation seeds."""

    name = "E(3)"

    def sample(self, num: int, generator: torch.Generator | None = None) -> list[E3Element]:
        out = []
        for _ in range(num):
            rotation = random_rotation(3, generator)
            if bool(torch.rand(1, generator=generator) < 0.5):
                rotation = -rotation
            translation = 10.0 * torch.randn(3, generator=generator, dtype=torch.float64)
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
            out.append(E3Element(rotation, translation, seed))
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, E3)

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return self.name


def _move(points: Tensor, g: E3Element) -> Tensor:
    return points @ g.matrix.to(points).T + g.translation.to(points)


def _act_on_graph(graph: Any, g: E3Element) -> Any:
    perm = g.node_permutation(graph).to(graph.device)
    new_id = torch.empty_like(perm)
    new_id[perm] = torch.arange(perm.numel(), device=perm.device)
    edge_perm = g.edge_permutation(graph).to(graph.device)
    changes: dict[str, Any] = {"edge_index": new_id[graph.edge_index[:, edge_perm]]}
    if graph.pos is not None:
        changes["pos"] = _move(graph.pos, g)[perm]
    for name in ("x", "y", "train_mask", "val_mask", "test_mask"):
        value = getattr(graph, name, None)
        if value is not None:
            changes[name] = value[perm]
    for name in ("edge_attr", "edge_weight"):
        value = getattr(graph, name)
        if value is not None:
            changes[name] = value[edge_perm]
    return graph.replace(**changes)


def molecule_action() -> Action:
    """E(3) and atom renumbering acting on a ``Graph`` / ``Batch`` (see the module docstring)."""
    return Action(E3(), _act_on_graph, "E(3) on molecules")


def node_action(graph: Any, field_type: FieldType) -> Action:
    """E(3) acting on per-node outputs ``[N, field_type.size]`` of ``graph``: rows renumbered as
    ``molecule_action`` renumbers the nodes, channels transformed by the O(3) ``field_type`` (translations leave
    them alone)."""

    def act(y: Tensor, g: E3Element) -> Tensor:
        perm = g.node_permutation(graph).to(y.device)
        return field_type.transform(y, g.matrix, dim=1)[perm]

    return Action(E3(), act, f"E(3) on node fields {field_type!r}")


def position_action(graph: Any) -> Action:
    """E(3) acting on per-node positions ``[N, 3]`` of ``graph`` (e.g. EGNN's updated coordinates)."""

    def act(points: Tensor, g: E3Element) -> Tensor:
        return _move(points, g)[g.node_permutation(graph).to(points.device)]

    return Action(E3(), act, "E(3) on positions")
