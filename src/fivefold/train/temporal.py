"""Training and testing temporal link predictors with the protocol of TGN (Rossi et al. 2020) and DyGLib (Yu et al.
2023), and dynamic node classification on their embeddings.

``fit_link_model``: each epoch resets the model's memory and history, trains on the training events in time order
(one random negative per positive, binary cross-entropy, Adam), then validates on the validation events (the
memory carried on from training). The epoch with the best validation AP is kept with its streaming state; training
stops after ``patience`` epochs without improvement, or at ``epochs`` or ``time_budget``. With ``full_history``, the
training-period events of the nodes hidden from training join the history (``insert_history``: read by neighbour
sampling, no memory update) after each training pass, so validation and test sample from every past event, as the
full neighbour samplers of DyGLib and the TGN reference code do; training never sees them.

``test_link_model``: from the kept state after validation, one pass over the test events scores each positive
against a random, a historical and an inductive negative (transductive setting) and against fixed candidate
destinations (MRR); from the same state, a pass over only the new-node test events gives the inductive setting.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from fivefold.errors import OptionError
from fivefold.ops.metrics import roc_auc
from fivefold.temporal import EventStream, StreamSplit, TemporalLinkModel
from fivefold.temporal.evaluation import NegativeSampler, embed_events, link_pass, ranking_negatives, snapshot

__all__ = ["fit_link_model", "node_classification", "test_link_model"]


def fit_link_model(model: TemporalLinkModel, stream: EventStream, split: StreamSplit, *, epochs: int = 50,
                   patience: int = 5, lr: float = 1e-4, batch_size: int = 200, seed: int = 0,
                   time_budget: float | None = None, in_batch_history: bool = True, split_ties: bool = False,
                   full_history: bool = False, progress: bool = False) -> dict[str, Any]:
    """Train ``model`` (see the module docstring; ``in_batch_history`` and ``split_ties`` as in ``link_pass``). Returns
    ``{"history": [rows], "best_epoch", "train_state", "val_state", "seconds"}``; the model is left in its best
    epoch's state after validation."""
    if epochs < 1 or patience < 1:
        raise OptionError(f"fit_link_model: epochs and patience must be positive, got {epochs}, {patience}")
    trainable = any(p.requires_grad for p in model.parameters())
    optimiser = None
    if trainable:
        try:  # the fused step is one kernel for all parameters; older builds lack it on CPU
            optimiser = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
        except (RuntimeError, TypeError):
            optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    unseen = np.zeros(0, dtype=np.int64)
    if full_history:  # training-period events left out of training (those of the hidden nodes)
        unseen = np.setdiff1d(np.flatnonzero(stream.t.numpy() <= split.val_time), split.train)
    history: list[dict[str, float]] = []
    best: dict[str, Any] = {"ap": -1.0}
    began = time.perf_counter()
    epoch_bar = tqdm(range(1, epochs + 1), desc=type(model).__name__, disable=not progress, leave=False)
    for epoch in epoch_bar:
        torch.manual_seed(seed * 1000 + epoch)
        model.reset()
        train = link_pass(model, stream, split.train, batch_size=batch_size, optimiser=optimiser,
                          negatives={"random": NegativeSampler(stream, "random", candidates=split.train,
                                                               seed=seed * 1000 + epoch)},
                          in_batch_history=in_batch_history, split_ties=split_ties, progress=progress,
                          desc=f"epoch {epoch} train")
        if len(unseen):
            model.insert_history(stream.src[unseen], stream.dst[unseen], stream.t[unseen],
                                 None if stream.features is None else stream.features[unseen])
        train_state = snapshot(model)
        val = link_pass(model, stream, split.val, batch_size=batch_size, progress=progress, desc="validate",
                        negatives={"random": NegativeSampler(stream, "random", seed=1)},
                        in_batch_history=in_batch_history, split_ties=split_ties)
        row = {"epoch": epoch, "train_loss": train.loss, "train_seconds": train.seconds,
               "train_events_per_s": len(split.train) / train.seconds,
               **{f"val_{key}": value for key, value in val.metrics().items()},
               "elapsed": time.perf_counter() - began}
        history.append(row)
        epoch_bar.set_postfix(loss=f"{train.loss:.3f}", val_ap=f"{row['val_random_ap']:.4f}")
        if row["val_random_ap"] > best["ap"]:
            best = {"ap": row["val_random_ap"], "epoch": epoch, "train_state": train_state,
                    "val_state": snapshot(model)}
        if not trainable or epoch - best["epoch"] >= patience:
            break
        if time_budget is not None and (time.perf_counter() - began) * (epoch + 1) / epoch > time_budget:
            break
    model.load_state_dict(best["val_state"])
    return {"history": history, "best_epoch": best["epoch"], "train_state": best["train_state"],
            "val_state": best["val_state"], "seconds": time.perf_counter() - began}


def test_link_model(model: TemporalLinkModel, stream: EventStream, split: StreamSplit, fitted: dict[str, Any], *,
                    batch_size: int = 200, ranking_count: int = 100, ranking_fraction: float = 0.1, seed: int = 2,
                    in_batch_history: bool = True, split_ties: bool = False, progress: bool = False,
                    return_scores: bool = False) -> Any:
    """Test metrics (see the module docstring): ``transductive_{random,historical,inductive}_{ap,auc}``,
    ``transductive_mrr`` (ranking the true destination of a seeded ``ranking_fraction`` of the test events among
    ``ranking_count`` fixed candidates), ``inductive_random_{ap,auc}`` and the same on validation new nodes
    (``val_inductive_random_ap``). With ``return_scores``: ``(metrics, LinkScores of the transductive test pass)``."""
    t = stream.t.numpy()
    before_test = np.flatnonzero(t <= split.test_time)
    out: dict[str, float] = {}
    model.load_state_dict(fitted["val_state"])
    samplers = {kind: NegativeSampler(stream, kind, history_events=before_test, seed=seed)
                for kind in ("random", "historical", "inductive")}
    ranking = None
    if ranking_count:
        count = min(ranking_count, len(np.unique(stream.dst.numpy())) - 1)
        ranked = np.sort(np.random.default_rng(seed).choice(len(split.test), max(1, int(ranking_fraction * len(
            split.test))), replace=False))
        ranking = torch.full((len(split.test), count), -1, dtype=torch.long)
        ranking[ranked] = ranking_negatives(stream, split.test[ranked], count, history_events=split.train, seed=seed)
    test = link_pass(model, stream, split.test, batch_size=batch_size, negatives=samplers, ranking=ranking,
                     in_batch_history=in_batch_history, split_ties=split_ties, progress=progress, desc="test")
    out.update({f"transductive_{key}": value for key, value in test.metrics().items()})
    out["test_seconds"] = test.seconds
    out["test_events_per_s"] = len(split.test) / test.seconds
    model.load_state_dict(fitted["val_state"])
    new_nodes = link_pass(model, stream, split.new_node_test, batch_size=batch_size, progress=progress,
                          negatives={"random": NegativeSampler(stream, "random", seed=seed)},
                          in_batch_history=in_batch_history, split_ties=split_ties, desc="test new nodes")
    out.update({f"inductive_{key}": value for key, value in new_nodes.metrics().items()})
    model.load_state_dict(fitted["train_state"])
    new_val = link_pass(model, stream, split.new_node_val, batch_size=batch_size,
                        negatives={"random": NegativeSampler(stream, "random", seed=1)},
                        in_batch_history=in_batch_history, split_ties=split_ties)
    out["val_inductive_random_ap"] = new_val.metrics()["random_ap"]
    model.load_state_dict(fitted["val_state"])
    return (out, test) if return_scores else out


test_link_model.__test__ = False  # a library function, not a pytest test (its name starts with "test")


def node_classification(model: TemporalLinkModel, stream: EventStream, *, val: float = 0.15, test: float = 0.15,
                        epochs: int = 30, patience: int = 5, lr: float = 3e-4, batch_size: int = 200, seed: int = 0,
                        in_batch_history: bool = True, progress: bool = False) -> dict[str, float]:
    """Dynamic node classification (TGN's protocol): the trained link model embeds every event's source at the
    event's time (the whole stream, in order, from a reset memory); an MLP decoder (D -> 80 -> 10 -> 1, dropout 0.1)
    learns the event labels on the chronological training part; the epoch with the best validation ROC-AUC gives
    the test ROC-AUC."""
    if stream.labels is None:
        raise OptionError("node_classification: the stream has no event labels")
    t = stream.t.numpy()
    val_time, test_time = np.quantile(t, [1 - val - test, 1 - test])
    model.reset()
    with torch.no_grad():
        z = embed_events(model, stream, np.arange(len(stream)), batch_size=batch_size,
                         in_batch_history=in_batch_history, progress=progress)
    labels = stream.labels.float()
    parts = {"train": t <= val_time, "val": (t > val_time) & (t <= test_time), "test": t > test_time}
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    decoder = nn.Sequential(nn.Linear(z.shape[1], 80), nn.ReLU(), nn.Dropout(0.1), nn.Linear(80, 10), nn.ReLU(),
                            nn.Dropout(0.1), nn.Linear(10, 1))
    optimiser = torch.optim.Adam(decoder.parameters(), lr=lr)
    train_idx = torch.from_numpy(np.flatnonzero(parts["train"]))
    best = {"val_auc": -1.0, "epoch": 0}
    for epoch in range(1, epochs + 1):
        decoder.train()
        for batch in train_idx[torch.randperm(len(train_idx), generator=generator)].split(batch_size):
            loss = nn.functional.binary_cross_entropy_with_logits(decoder(z[batch]).squeeze(1), labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        decoder.eval()
        with torch.no_grad():
            scores = decoder(z).squeeze(1)
        aucs = {name: roc_auc(scores[torch.from_numpy(mask)], labels[torch.from_numpy(mask)])
                for name, mask in parts.items()}
        if aucs["val"] > best["val_auc"]:
            best = {"val_auc": aucs["val"], "test_auc": aucs["test"], "train_auc": aucs["train"], "epoch": epoch}
        elif epoch - best["epoch"] >= patience:
            break
    return best
