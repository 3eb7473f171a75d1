"""``Action``: a group together with how it acts on tensors of one kind (a grid field, a graph's nodes, a sphere's
charts). Domains build their actions (``fivefold.spheres.chart_action``); ``fivefold.testing.assert_equivariant``
tries every element of the action's group."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

__all__ = ["Action"]


class Action:
    """How a group acts on tensors: ``action(x, g)`` is ``g . x``.

    Args:
        group: the group acting (its elements are tried by ``assert_equivariant``).
        function: ``(x, g) -> x'``.
        name: how it prints.
    """

    def __init__(self, group, function: Callable[[Tensor, Any], Tensor], name: str = "action") -> None:
        self.group = group
        self.function = function
        self.name = name

    def __call__(self, x: Tensor, g) -> Tensor:
        return self.function(x, g)

    def __repr__(self) -> str:
        return f"{self.name} of {self.group.name}"
