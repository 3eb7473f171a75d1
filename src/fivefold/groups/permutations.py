"""The symmetric group S_n of node relabellings, the symmetry of graphs; too large to list, so it is sampled.

An element is a permutation ``p``, a ``[n]`` int64 tensor; it relabels node ``p[k]`` as ``k``, so node features move
as ``x -> x[p]``. Composition follows the action: applying ``b`` then ``a`` gives ``x[b][a] = x[b[a]]``, so
``compose(a, b) = b[a]``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fivefold.errors import GroupError

__all__ = ["SymmetricGroup"]


class SymmetricGroup:
    """S_n, the ``n!`` permutations of ``n`` nodes; ``assert_equivariant`` tests on a random sample of them."""

    def __init__(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise GroupError(f"SymmetricGroup(n): n must be a non-negative integer, got {n!r}")
        self.n = n
        self.name = f"S{n}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SymmetricGroup) and other.n == self.n

    def __hash__(self) -> int:
        return hash(("S", self.n))

    @property
    def identity(self) -> Tensor:
        return torch.arange(self.n)

    def compose(self, a: Tensor, b: Tensor) -> Tensor:
        """Apply ``b`` first, then ``a``."""
        return self._check(b)[self._check(a)]

    def inverse(self, a: Tensor) -> Tensor:
        inverse = torch.empty_like(self._check(a))
        inverse[a] = torch.arange(self.n)
        return inverse

    def sample(self, num: int, generator: torch.Generator | None = None) -> list[Tensor]:
        """``num`` permutations drawn uniformly."""
        return [torch.randperm(self.n, generator=generator) for _ in range(num)]

    def _check(self, a: Tensor) -> Tensor:
        if not isinstance(a, Tensor) or a.shape != (self.n,) or a.dtype != torch.int64 or \
                not torch.equal(torch.sort(a).values, torch.arange(self.n)):
            raise GroupError(f"{self.name}: an element must be a permutation of 0 .. {self.n - 1} as an int64 tensor")
        return a

    def __repr__(self) -> str:
        return f"S{self.n} (permutations of {self.n} nodes)"
