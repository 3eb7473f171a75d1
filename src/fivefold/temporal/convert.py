"""Conversions between ``EventStream`` and torch_geometric's ``TemporalData`` (the container of PyG's
``JODIEDataset`` and ``TGNMemory`` examples). torch_geometric is optional: it is imported inside ``to_pyg``.

PyG names the event features ``msg`` and the labels ``y``; fivefold names them ``features`` and ``labels``.
"""

from __future__ import annotations

from typing import Any

import torch

from fivefold.errors import StreamError
from fivefold.temporal.stream import EventStream

__all__ = ["to_pyg", "from_pyg"]


def to_pyg(stream: EventStream) -> Any:
    """A ``torch_geometric.data.TemporalData`` with ``src``, ``dst``, ``t`` and, when the stream has them, ``msg``
    (the event features) and ``y`` (the labels). ``t`` is int64, as PyG's loaders and ``TGNMemory`` expect, when
    every time is a whole number; otherwise float64."""
    try:
        from torch_geometric.data import TemporalData
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("to_pyg needs torch_geometric: pip install torch_geometric") from exc
    t = stream.t
    if bool(torch.equal(t, t.round())) and (t.numel() == 0 or float(t.abs().max()) < 2.0**53):
        t = t.to(torch.int64)
    fields = {"src": stream.src, "dst": stream.dst, "t": t}
    if stream.features is not None:
        fields["msg"] = stream.features
    if stream.labels is not None:
        fields["y"] = stream.labels
    return TemporalData(**fields)


def from_pyg(data: Any, *, num_nodes: int | None = None) -> EventStream:
    """An ``EventStream`` from a ``TemporalData`` (or any object with ``src``, ``dst``, ``t`` and optional ``msg``
    and ``y``), validated like any stream: unsorted or malformed events are refused with the first bad row named.

    Args:
        data: the events.
        num_nodes: the number of nodes (default: the largest id + 1).
    """
    missing = [name for name in ("src", "dst", "t") if getattr(data, name, None) is None]
    if missing:
        raise StreamError(f"from_pyg: the data has no {', '.join(missing)}; a TemporalData holds src, dst and t")
    labels = getattr(data, "y", None)
    if labels is not None and labels.dim() == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    return EventStream(data.src, data.dst, data.t, features=getattr(data, "msg", None), labels=labels,
                       num_nodes=num_nodes)
