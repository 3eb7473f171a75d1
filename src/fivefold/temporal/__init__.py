"""Dynamic graphs: continuous-time event streams (``EventStream``, chronological and inductive splits), leak-free
temporal neighbour sampling (``TemporalSampler``), the models TGN, JODIE, TGAT and EdgeBank behind one streaming
interface, and the standard link-prediction evaluation; ``to_pyg`` / ``from_pyg`` convert a stream to and from
torch_geometric's ``TemporalData``.
"""

from fivefold.temporal.convert import from_pyg, to_pyg
from fivefold.temporal.layers import MergeLayer, TemporalAttention, TimeEncoder
from fivefold.temporal.memory import Memory
from fivefold.temporal.models import JODIE, TGAT, TGN, EdgeBank, TemporalLinkModel
from fivefold.temporal.sampler import TemporalSampler
from fivefold.temporal.stream import EventStream, StreamSplit

__all__ = ["EdgeBank", "EventStream", "JODIE", "Memory", "MergeLayer", "StreamSplit", "TGAT", "TGN",
           "TemporalAttention", "TemporalLinkModel", "TemporalSampler", "TimeEncoder", "from_pyg", "to_pyg"]
