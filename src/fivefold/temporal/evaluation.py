"""Training and evaluation passes over an event stream, and the negative links of the standard protocols.

A pass walks events in time order in batches: each batch is scored (positives and their negatives) with the
history observed so far, then (in training) the loss is back-propagated and the optimiser steps, then the batch's
events are observed. This is the protocol of TGN (Rossi et al. 2020): a batch is never predicted from itself. One
stricter rule: events with the same timestamp always share a batch (``time_batches``), so no prediction at time t
uses an event at time t (benchmark code that cuts batches at fixed sizes lets a tie straddle two batches).

Negatives (``NegativeSampler``):

- ``"random"`` (TGN, TGAT): the positive's source with a destination drawn uniformly from the stream's destinations;
- ``"historical"`` (Poursafaei et al. 2022): distinct links observed before the batch but not in it; random links
  (source and destination drawn from the stream's sources and destinations) only fill a shortfall;
- ``"inductive"`` (Poursafaei et al. 2022): distinct links first observed during the evaluated period (before the
  batch, not in it, not in the history before the period); random links fill a shortfall.

These are the rules of DyGLib (Yu et al. 2023), whose published tables we compare with.

Negatives are drawn from a generator seeded once per pass, so every model is scored against the same negatives.
``ranking_negatives`` makes TGB's fixed candidate sets for MRR (Huang et al. 2023).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from fivefold.errors import OptionError
from fivefold.ops.metrics import average_precision, mean_reciprocal_rank, roc_auc
from fivefold.temporal.models import TemporalLinkModel
from fivefold.temporal.stream import EventStream

__all__ = ["LinkScores", "NegativeSampler", "embed_events", "link_pass", "ranking_negatives", "snapshot",
           "time_batches"]

KINDS = ("random", "historical", "inductive")


class NegativeSampler:
    """Negative links for batches of a stream (see the module docstring).

    Args:
        stream: the whole stream (its distinct sources and destinations are the random candidates).
        kind: ``"random"``, ``"historical"`` or ``"inductive"``.
        history_events: indices of the events before this pass (for validation: the events up to the end of
            training; for test: up to the end of validation). Their links are the initial historical pool, and the
            inductive kind never returns them.
        candidates: indices of the events whose sources and destinations are the random candidates (default: all;
            training uses the training events only, as TGN does, so no node is revealed before it appears).
        seed: the generator's seed.
    """

    def __init__(self, stream: EventStream, kind: str = "random", *, history_events: np.ndarray | None = None,
                 candidates: np.ndarray | None = None, seed: int = 0) -> None:
        if kind not in KINDS:
            raise OptionError(f"NegativeSampler: kind must be one of {KINDS}, got {kind!r}")
        self.kind, self.stream = kind, stream
        self.rng = np.random.default_rng(seed)
        pick = slice(None) if candidates is None else np.asarray(candidates)
        self.sources = np.unique(stream.src.numpy()[pick])
        self.destinations = np.unique(stream.dst.numpy()[pick])
        self.n = np.int64(stream.num_nodes)
        self.keys = stream.src.numpy() * self.n + stream.dst.numpy()
        history = np.zeros(0, np.int64) if history_events is None else np.asarray(history_events)
        self.history_keys = np.unique(self.keys[history])
        self.seen = self.history_keys.copy()  # distinct links observed before the current batch (sorted)
        self.new = np.zeros(0, dtype=np.int64)  # of those, the ones not in the history (sorted)

    def observe(self, events: np.ndarray) -> None:
        """Links of ``events`` were observed (``link_pass`` calls it after each batch)."""
        if self.kind == "random":
            return
        keys = np.unique(self.keys[events])
        self.seen = np.union1d(self.seen, keys)
        self.new = np.union1d(self.new, keys[~np.isin(keys, self.history_keys)])

    def sample(self, events: np.ndarray) -> tuple[Tensor, Tensor]:
        """``(src [B], dst [B])`` negatives for the batch ``events``."""
        size = len(events)
        if self.kind == "random":
            return (self.stream.src[events].clone(),
                    torch.from_numpy(self.rng.choice(self.destinations, size)))
        pool = self.seen if self.kind == "historical" else self.new
        pool = pool[~np.isin(pool, self.keys[events])]
        taken = min(size, len(pool))
        chosen = self.rng.choice(pool, taken, replace=False) if taken else np.zeros(0, np.int64)
        src = np.concatenate([chosen // self.n, self.rng.choice(self.sources, size - taken)])
        dst = np.concatenate([chosen % self.n, self.rng.choice(self.destinations, size - taken)])
        return torch.from_numpy(src), torch.from_numpy(dst)


def ranking_negatives(stream: EventStream, events: np.ndarray, count: int, *, history_events: np.ndarray,
                      seed: int = 0) -> Tensor:
    """TGB-style fixed candidates: ``[len(events), count]`` destinations per positive event, none equal to its true
    destination: half (at most) from the destinations its source linked to in ``history_events`` (historical
    negatives), the rest uniform over the stream's other destinations, without repeats."""
    rng = np.random.default_rng(seed)
    src, dst = stream.src.numpy(), stream.dst.numpy()
    destinations = np.unique(dst)
    if count >= len(destinations):
        raise OptionError(f"ranking_negatives: count ({count}) must be below the number of destinations "
                          f"({len(destinations)})")
    past: dict[int, np.ndarray] = {}
    order = np.argsort(src[history_events], kind="stable")
    grouped_src = src[history_events][order]
    grouped_dst = dst[history_events][order]
    bounds = np.flatnonzero(np.diff(grouped_src)) + 1
    if len(grouped_src):
        for node, group in zip(grouped_src[np.r_[0, bounds]], np.split(grouped_dst, bounds), strict=True):
            past[int(node)] = np.unique(group)
    out = np.empty((len(events), count), dtype=np.int64)
    for row, event in enumerate(events):
        truth = dst[event]
        old = past.get(int(src[event]), np.zeros(0, np.int64))
        old = old[old != truth]
        historical = rng.choice(old, min(count // 2, len(old)), replace=False) if len(old) else old
        used = np.r_[historical, truth]
        rest = count - len(historical)
        picks = rng.choice(len(destinations), rest + len(used), replace=False)
        fresh = destinations[picks]
        fresh = fresh[~np.isin(fresh, used)][:rest]
        out[row] = np.r_[historical, fresh]
    return torch.from_numpy(out)


def time_batches(times: np.ndarray, batch_size: int, *, split_ties: bool = False) -> list[tuple[int, int]]:
    """``(start, stop)`` ranges of about ``batch_size`` events over the time-sorted ``times``, never splitting events
    of one timestamp: a batch grows past ``batch_size`` to take every event at its last event's time. So a model,
    which observes a batch only after predicting it, never holds an event at a query's time (ties in time are
    common: Enron has 1,705 e-mails in one second).

    ``split_ties=True`` cuts every ``batch_size`` events regardless, as DyGLib and TGN's reference code do: only for
    comparing with their figures, since a query's memory may then hold events of its own timestamp (neighbour
    sampling stays strictly before it)."""
    if batch_size < 1:
        raise OptionError(f"batch_size must be a positive integer, got {batch_size}")
    bounds, start = [], 0
    while start < len(times):
        stop = min(start + batch_size, len(times))
        if not split_ties:
            stop = int(np.searchsorted(times, times[stop - 1], side="right"))
        bounds.append((start, stop))
        start = stop
    return bounds


@dataclass
class LinkScores:
    """Scores of one pass: ``positive [P]``; ``negative[kind] [P]``, one negative link per positive for each negative
    sampler; for ranking, ``ranked [R, Q]`` the candidates' scores of the ``R`` ranked positives and
    ``ranked_positive [R]`` theirs; ``loss`` the mean training loss (0 when not training), ``seconds`` the pass's
    wall time; ``batch_sizes`` the positives per batch, in order."""

    positive: Tensor
    negative: dict[str, Tensor]
    ranked: Tensor | None = None
    ranked_positive: Tensor | None = None
    loss: float = 0.0
    seconds: float = 0.0
    batch_sizes: tuple[int, ...] = ()

    def metrics(self) -> dict[str, float]:
        """``{kind}_ap`` and ``{kind}_auc`` per negative kind over all the pass's links, ``{kind}_ap_per_batch`` the
        mean of the batches' APs (DyGLib's convention; it ignores shifts of the scores between batches), and ``mrr``
        when ranked."""
        out = {}
        for kind, negative in self.negative.items():
            scores = torch.cat([self.positive, negative])
            labels = torch.cat([torch.ones(len(self.positive)), torch.zeros(len(negative))])
            out[f"{kind}_ap"] = average_precision(scores, labels)
            out[f"{kind}_auc"] = roc_auc(scores, labels)
            if self.batch_sizes:
                batch_aps = [average_precision(torch.cat([p, n]), torch.cat([torch.ones(len(p)), torch.zeros(len(n))]))
                             for p, n in zip(self.positive.split(list(self.batch_sizes)),
                                             negative.split(list(self.batch_sizes)), strict=True)]
                out[f"{kind}_ap_per_batch"] = float(np.mean(batch_aps))
        if self.ranked is not None:
            out["mrr"] = mean_reciprocal_rank(self.ranked_positive, self.ranked)
        return out


def snapshot(model: nn.Module) -> dict[str, Any]:
    """A deep copy of the model's parameters and streaming state (memory, history), for ``load_state_dict``."""
    return copy.deepcopy(model.state_dict())


def link_pass(model: TemporalLinkModel, stream: EventStream, events: np.ndarray, *, batch_size: int = 200,
              negatives: dict[str, NegativeSampler] | None = None, ranking: Tensor | None = None,
              optimiser: torch.optim.Optimizer | None = None, in_batch_history: bool = True,
              split_ties: bool = False, progress: bool = False, desc: str = "events") -> LinkScores:
    """One pass over ``events`` (indices into ``stream``, in time order), batch by batch: (record), score, (train),
    observe.

    ``in_batch_history``: each batch is recorded before it is scored (``TemporalLinkModel.record``), so a link at
    time ``t`` sees the batch's own events strictly before ``t`` among its sampled neighbours, as in the TGN and DyGLib
    reference code; memories still change only after the batch. ``False``: a batch sees only the batches before it
    (torch_geometric's TGN example, whose ``LastNeighborLoader`` is filled after each batch). ``split_ties``: see
    ``time_batches`` (off by default; on only to reproduce DyGLib's batches).

    ``negatives`` names the samplers (default: one random sampler, seed 0); each positive is scored against one
    negative of each. With ``optimiser`` the model trains on the binary cross-entropy of each positive against its
    negative from the first sampler; without, it only scores (no gradients). ``ranking [len(events), Q]`` adds the
    scores of each positive's fixed candidate destinations (for MRR); rows starting with -1 are not ranked. Returns
    the scores in event order.
    """
    if negatives is None:
        negatives = {"random": NegativeSampler(stream, "random", seed=0)}
    if not negatives:
        raise OptionError("link_pass: negatives must name at least one sampler")
    if ranking is not None and len(ranking) != len(events):
        raise OptionError(f"link_pass: ranking must have one row per event ({len(events)}), got {len(ranking)}")
    training = optimiser is not None and any(p.requires_grad for p in model.parameters())
    model.train(training)
    positive: list[Tensor] = []
    negative: dict[str, list[Tensor]] = {kind: [] for kind in negatives}
    ranked, ranked_positive, losses, sizes = [], [], [], []
    loss_fn = nn.BCEWithLogitsLoss()
    bar = tqdm(total=len(events), desc=desc, disable=not progress, leave=False, unit="ev")
    began = time.perf_counter()
    for start, stop in time_batches(stream.t.numpy()[events], batch_size, split_ties=split_ties):
        batch = events[start:stop]
        size = len(batch)
        sizes.append(size)
        src, dst, t = stream.src[batch], stream.dst[batch], stream.t[batch]
        drawn = [sampler.sample(batch) for sampler in negatives.values()]
        all_src = torch.cat([src, *(pair[0] for pair in drawn)])
        all_dst = torch.cat([dst, *(pair[1] for pair in drawn)])
        features = None if stream.features is None else stream.features[batch]
        if in_batch_history:
            model.record(src, dst, t, features)
        with torch.set_grad_enabled(training):
            scores = model(all_src, all_dst, t.repeat(1 + len(drawn)))
            if training:
                pos, neg = scores[:size], scores[size:2 * size]
                loss = loss_fn(pos, torch.ones_like(pos)) + loss_fn(neg, torch.zeros_like(neg))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                losses.append(loss.item())
        scores = scores.detach()
        positive.append(scores[:size])
        for j, kind in enumerate(negatives):
            negative[kind].append(scores[(j + 1) * size:(j + 2) * size])
        if ranking is not None:
            rows = (ranking[start:stop, 0] >= 0).nonzero().squeeze(1)
            if len(rows):
                with torch.no_grad():
                    candidates = ranking[start:stop][rows]
                    q = candidates.shape[1]
                    ranked.append(model(src[rows].repeat_interleave(q), candidates.flatten(),
                                        t[rows].repeat_interleave(q)).view(len(rows), q))
                ranked_positive.append(scores[rows])
        model.observe(src, dst, t, features)
        for sampler in negatives.values():
            sampler.observe(batch)
        bar.update(size)
    bar.close()
    model.train(False)
    return LinkScores(torch.cat(positive) if positive else torch.zeros(0),
                      {kind: torch.cat(parts) if parts else torch.zeros(0) for kind, parts in negative.items()},
                      torch.cat(ranked) if ranked else None,
                      torch.cat(ranked_positive) if ranked_positive else None,
                      float(np.mean(losses)) if losses else 0.0, time.perf_counter() - began, tuple(sizes))


@torch.no_grad()
def embed_events(model: TemporalLinkModel, stream: EventStream, events: np.ndarray, *, batch_size: int = 200,
                 in_batch_history: bool = True, progress: bool = False) -> Tensor:
    """Embeddings of each event's source at the event's time, ``[len(events), D]``, walking the events in time order
    ((record,) embed, then observe; ``in_batch_history`` as in ``link_pass``): the inputs of dynamic node
    classification (TGN's protocol)."""
    model.eval()
    out = []
    for start, stop in tqdm(time_batches(stream.t.numpy()[events], batch_size), disable=not progress, leave=False,
                            desc="embed"):
        batch = events[start:stop]
        src, dst, t = stream.src[batch], stream.dst[batch], stream.t[batch]
        features = None if stream.features is None else stream.features[batch]
        if in_batch_history:
            model.record(src, dst, t, features)
        out.append(model.embed(src, t))
        model.observe(src, dst, t, features)
    return torch.cat(out) if out else torch.zeros(0, 0)


