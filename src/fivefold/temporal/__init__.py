"""Dynamic graphs: continuous-time event streams (``EventStream``, chronological and inductive splits) and
leak-free temporal neighbour sampling (``TemporalSampler``).

Not written yet (issue 13): the models (TGN, JODIE, TGAT, EdgeBank), the loaders of the real streams, the evaluation
protocols and the benchmarks.
"""

from fivefold.temporal.sampler import TemporalSampler
from fivefold.temporal.stream import EventStream, StreamSplit

__all__ = ["EventStream", "StreamSplit", "TemporalSampler"]
