"""The checks a layer runs on its inputs before any kernel, public so that a user's layer checks exactly as ours do
(the graph itself was checked when it was built).

One rule for edge inputs: every edge input a layer takes (``edge_weight``, ``edge_attr``) is the argument passed to
``forward`` when there is one, else the ``Graph``'s field of the same name, else absent. ``edge_input`` applies it.
"""

from __future__ import annotations

from torch import Tensor

from fivefold.errors import GraphError, check_option
from fivefold.graphs.block import Block
from fivefold.graphs.graph import EDGE_FIELDS, Graph

__all__ = ["check_features", "check_edge_weight", "check_edge_attr", "edge_input"]


def check_features(x: Tensor, graph: Graph | Block, channels: int | None = None, name: str = "x") -> None:
    """``x`` must be a floating ``[N, F]`` tensor on the graph's device (``N = num_src`` for a ``Block``), with
    ``F == channels`` if given."""
    if not isinstance(graph, (Graph, Block)):
        raise GraphError(f"expected a fivefold Graph or Block as the second argument, got {type(graph).__name__}")
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise GraphError(f"{name} must be a floating-point tensor of shape [N, F]")
    rows = graph.num_src if isinstance(graph, Block) else graph.num_nodes
    what = "block (its source nodes)" if isinstance(graph, Block) else "graph"
    if x.dim() != 2 or x.shape[0] != rows:
        raise GraphError(f"{name} must have shape [{rows}, F] for this {what}, got {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise GraphError(f"{name} has {x.shape[1]} features but the layer expects {channels}")
    if x.device != graph.device:
        raise GraphError(f"{name} is on {x.device} but the graph is on {graph.device}; use graph.to(x.device)")


def edge_input(name: str, value: Tensor | None, graph: Graph) -> Tensor | None:
    """The edge input ``name`` by the rule above: ``value`` if given, else ``graph.<name>`` (possibly None)."""
    check_option(name, EDGE_FIELDS, "the edge input", "edge_input")
    return getattr(graph, name) if value is None else value


def check_edge_weight(edge_weight: Tensor | None, graph: Graph) -> Tensor | None:
    """``edge_weight`` (the argument, else ``graph.edge_weight``, else None) as a floating ``[E]`` tensor."""
    edge_weight = edge_input("edge_weight", edge_weight, graph)
    if edge_weight is None:
        return None
    if not isinstance(edge_weight, Tensor) or edge_weight.dim() != 1 or edge_weight.shape[0] != graph.num_edges:
        raise GraphError(f"edge_weight must have shape [{graph.num_edges}] (one weight per edge)")
    if not edge_weight.is_floating_point():
        raise GraphError(f"edge_weight must be floating point, got {edge_weight.dtype}")
    return edge_weight


def check_edge_attr(edge_attr: Tensor | None, graph: Graph, channels: int | None) -> Tensor:
    """``edge_attr`` (the argument, else ``graph.edge_attr``) as ``[E, D]`` with ``D == channels`` if given; the
    layer needs it, so its absence is an error."""
    edge_attr = edge_input("edge_attr", edge_attr, graph)
    if edge_attr is None:
        raise GraphError("this layer needs edge features: pass edge_attr=... or build the Graph with edge_attr")
    if edge_attr.dim() == 1:
        edge_attr = edge_attr.unsqueeze(-1)
    if edge_attr.dim() != 2 or edge_attr.shape[0] != graph.num_edges:
        raise GraphError(f"edge_attr must have shape [{graph.num_edges}, D], got {tuple(edge_attr.shape)}")
    if channels is not None and edge_attr.shape[1] != channels:
        raise GraphError(f"edge_attr has {edge_attr.shape[1]} features but the layer expects {channels}")
    return edge_attr
