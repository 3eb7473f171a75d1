"""Distributed mini-batch node classification over a partitioned store, launched by torchrun.

    torchrun --nproc_per_node=2 -m fivefold.train.distributed --partitions PARTS --run-dir runs/dist-demo

Each of the K processes opens its part of a ``PartitionedStore`` (``fivefold.scale.partition_store``, K parts),
samples blocks around its own training nodes with ``DistributedNeighborSampler`` (remote neighbours and features come
from their owners in batched all-to-all exchanges), and trains a copy of the model wrapped in
``DistributedDataParallel`` (gloo on CPU, NCCL when ``--device cuda``). Evaluation is exact layer-wise inference with
every rank computing its own nodes (``distributed_layerwise_inference``).

The same seed gives the same training whatever the number of processes (up to the order of floating-point sums):

- the training nodes of epoch ``e`` go to batch ``b`` by a hash of ``(seed, e, node)`` that falls in the ``b``-th of
  ``S = ceil(num_train / batch_size)`` equal ranges, so each rank finds its share of every batch without talking
  to the others (batches hold ``batch_size`` nodes on average, not exactly);
- the sampler draws a node's neighbours from ``(seed, step, layer, node)`` and dropout masks are keyed by
  ``(seed, step, layer, node, feature)`` (``KeyedDropoutModel``), so where a node is computed does not matter;
- each rank's loss is its seeds' summed cross-entropy times ``K / (seeds in the whole batch)``: DDP's gradient average
  then equals the gradient of the whole batch's mean loss.

Fault tolerance: every ``--checkpoint-every`` steps (and at each evaluation) rank 0 writes ``state.pt`` (model,
optimiser, the next step, the evaluations so far) atomically. A worker that dies makes torchrun stop the group and,
under ``--max-restarts``, start it again: every rank loads ``state.pt`` (read by rank 0 and broadcast, so hosts need
no shared disk for it) and goes on from the step after it. Nothing else carries state: the sampler's randomness and
the batches are functions of the step. ``steps.jsonl`` logs every step with the attempt number (torchrun's restart
count) and the seconds since the attempt's first step.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import io
import json
import math
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from fivefold.errors import DataError, OptionError, RunError, check_option
from fivefold.scale.distributed import (
    DistributedNeighborSampler,
    Exchange,
    KeyedDropoutModel,
    distributed_layerwise_inference,
    mix64,
)
from fivefold.scale.partition import open_partitions
from fivefold.train.presets import build_node_model
from fivefold.train.run import RunFolder, write_atomic
from fivefold.train.tasks import STORE_DEFAULTS, STORE_MODELS

__all__ = ["epoch_batches", "main", "partition_for_training", "train_distributed"]

_STATE = "state.pt"
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix_array(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def epoch_batches(nodes: np.ndarray, seed: int, epoch: int, num_batches: int) -> list[np.ndarray]:
    """``nodes`` (global ids) split into the ``num_batches`` batches of ``epoch``: node ``v`` goes to batch
    ``floor(hash(seed, epoch, v) / 2^64 * num_batches)``, ordered by hash inside a batch. Any subset of the nodes
    is split consistently (a rank's share of batch ``b`` is its nodes of the whole batch ``b``)."""
    base = np.uint64(mix64(seed, epoch))
    with np.errstate(over="ignore"):
        keys = _mix_array(np.asarray(nodes, dtype=np.int64).astype(np.uint64) + _GOLDEN) ^ base
        keys = _mix_array(keys + _GOLDEN)
    batch = np.minimum(((keys >> np.uint64(11)).astype(np.float64) * 2.0**-53 * num_batches).astype(np.int64),
                       num_batches - 1)
    order = np.lexsort((keys, batch))
    bounds = np.searchsorted(batch[order], np.arange(num_batches + 1))
    ordered = np.asarray(nodes, dtype=np.int64)[order]
    return [ordered[bounds[b]:bounds[b + 1]] for b in range(num_batches)]


def partition_for_training(store: str | os.PathLike, out: str | os.PathLike, parts: int, *, method: str = "fennel",
                           imbalance: float = 0.05, balance: str = "nodes+edges", seed: int = 0,
                           overwrite: bool = False) -> dict[str, Any]:
    """``fivefold partition``: split the store at ``store`` into ``parts`` partitions at ``out`` (with a progress
    bar) and return the partitioner's report (edge cut, balance)."""
    from fivefold.scale import open_store, partition_store

    written = partition_store(open_store(store), out, parts, method=method, imbalance=imbalance, balance=balance,
                              seed=seed, overwrite=overwrite, progress=sys.stderr.isatty())
    return written.report


def _init_group(device: str) -> tuple[bool, int, int]:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``...), or make a group of
    one when run without torchrun. Returns ``(created, rank, world_size)``."""
    if dist.is_initialized():
        return False, dist.get_rank(), dist.get_world_size()
    backend = "nccl" if device == "cuda" else "gloo"
    timeout = datetime.timedelta(minutes=30)
    if "WORLD_SIZE" in os.environ:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        store, _, _ = next(dist.rendezvous("env://", rank, world, timeout=timeout))
        # torchrun keeps its store across restarts: a restarted group read the dead group's gloo addresses from it
        # (connection refused), so each attempt gets keys of its own
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        dist.init_process_group(backend, store=dist.PrefixStore(f"fivefold/attempt-{attempt}", store), rank=rank,
                                world_size=world, timeout=timeout)
    else:
        store = dist.HashStore()
        dist.init_process_group(backend, store=store, rank=0, world_size=1)
    return True, dist.get_rank(), dist.get_world_size()


def _reduce(values: Sequence[float], exchange: Exchange, op: Any = None) -> list[float]:
    """The sum (or ``op``) over the ranks, through the exchange's (CPU) group."""
    tensor = torch.tensor(list(values), dtype=torch.float64)
    dist.all_reduce(tensor, op=op or dist.ReduceOp.SUM, group=exchange.group)
    return tensor.tolist()


def train_distributed(
    partitions: str | os.PathLike, run_dir: str | os.PathLike, *, model: str = "sage",
    fanouts: Sequence[int] | None = None, batch_size: int | None = None, epochs: int | None = None,
    steps: int | None = None, hidden: int | None = None, dropout: float | None = None, lr: float | None = None,
    weight_decay: float | None = None, evaluate_every: int | None = None, checkpoint_every: int = 50,
    evaluate: bool = True, eval_mode: str = "exact", eval_nodes: int | None = None, chunk_size: int = 4096,
    io_threads: int = 0, seed: int = 0, dtype: torch.dtype = torch.float32, device: str = "cpu",
    progress: bool | None = None, echo: Any = print,
) -> dict[str, Any]:
    """Train a node classifier on the partitioned store ``partitions`` with one process per part (call it in every
    process of a torchrun group, or in one process for a one-part store); see the module docstring.

    ``steps`` batches, or ``epochs`` passes over the training nodes (default: ``fivefold train --store``'s: GraphSAGE,
    hidden 256, dropout 0.5, Adam 0.003, fan-outs 15,10, batches of 1,024, 3 epochs). Evaluations (every
    ``evaluate_every`` steps, default each epoch, and at the end) are exact layer-wise inference over every node,
    or with ``eval_mode="sampled"`` run on sampled blocks (the training fan-outs) around at most about
    ``eval_nodes`` validation and as many test nodes (drawn by a hash of the seed and the node, so the same nodes and
    blocks whatever the number of processes); the best validation accuracy is kept.
    Returns (on every rank) the config, the evaluations and ``final`` (best step, accuracies, steps/s, sampled
    edges/s and bytes sent per step and rank)."""
    check_option(model, STORE_MODELS, "model", "train_distributed")
    check_option(device, ("cpu", "cuda"), "device", "train_distributed")
    check_option(eval_mode, ("exact", "sampled"), "eval_mode", "train_distributed")
    created, rank, world = _init_group(device)
    try:
        return _train(partitions, Path(run_dir), rank, world, model=model, fanouts=fanouts, batch_size=batch_size,
                      epochs=epochs, steps=steps, hidden=hidden, dropout=dropout, lr=lr, weight_decay=weight_decay,
                      evaluate_every=evaluate_every, checkpoint_every=checkpoint_every, evaluate=evaluate,
                      eval_mode=eval_mode, eval_nodes=eval_nodes, chunk_size=chunk_size, io_threads=io_threads,
                      seed=seed, dtype=dtype, device=device, progress=progress, echo=echo)
    finally:
        if created:
            # DistributedDataParallel sits in reference cycles and its reducer holds the group: collected at some
            # later gc pass, or at interpreter exit after the group is gone, where gloo's teardown could abort
            # ("terminate called without an active exception", seen once in CI); collect it while all is alive
            gc.collect()
            dist.destroy_process_group()


def _train(partitions_path: Any, run_dir: Path, rank: int, world: int, *, model: str, fanouts: Any, batch_size: Any,
           epochs: Any, steps: Any, hidden: Any, dropout: Any, lr: Any, weight_decay: Any, evaluate_every: Any,
           checkpoint_every: int, evaluate: bool, eval_mode: str, eval_nodes: int | None, chunk_size: int,
           io_threads: int, seed: int, dtype: torch.dtype, device: str, progress: Any,
           echo: Any) -> dict[str, Any]:
    say = echo if rank == 0 else (lambda *args, **kwargs: None)
    import numba

    if world > 1 and numba.config.NUMBA_NUM_THREADS > torch.get_num_threads():
        # torchrun sets OMP_NUM_THREADS (1 by default) but not numba's threads, and numba reads its variable when it
        # is imported, before this runs (numba.set_num_threads here made it slower still: 3.9 steps/s)
        say(f"warning: numba runs {numba.config.NUMBA_NUM_THREADS} threads in each of {world} processes on "
            f"{os.cpu_count()} cores; start torchrun with NUMBA_NUM_THREADS={torch.get_num_threads()} (2 processes "
            "on 2 cores trained 2.6x slower without it)")
    exchange = Exchange()
    parts = open_partitions(partitions_path)
    if parts.num_parts != world:
        raise DataError(f"{partitions_path} has {parts.num_parts} parts but {world} processes run: start "
                        f"torchrun with --nproc_per_node={parts.num_parts} (in all, over the hosts)")
    part = parts.part(rank)
    for name in ("features", "labels", "train_mask", "val_mask", "test_mask"):
        if getattr(part, name) is None:
            raise DataError(f"{partitions_path} has no {name}: partition a store with features, labels and masks")
    for name, value in (("checkpoint_every", checkpoint_every), ("chunk_size", chunk_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OptionError(f"{name} must be a positive integer, got {value!r}")
    defaults = dict(STORE_DEFAULTS, hidden=32 if model == "gat" else STORE_DEFAULTS["hidden"])
    config: dict[str, Any] = {
        "kind": "distributed", "model": model, "seed": seed, "world_size": world,
        "partitions": {"path": str(Path(partitions_path).resolve()), "method": parts.method,
                       "num_nodes": parts.num_nodes, "num_edges": parts.num_edges},
        "hidden": hidden or defaults["hidden"], "dropout": defaults["dropout"] if dropout is None else dropout,
        "lr": lr or defaults["lr"], "weight_decay": defaults["weight_decay"] if weight_decay is None else weight_decay,
        "fanouts": list(fanouts or defaults["fanouts"]), "batch_size": batch_size or defaults["batch_size"],
        "checkpoint_every": checkpoint_every, "dtype": str(dtype).removeprefix("torch."),
        "eval_mode": eval_mode, "eval_nodes": eval_nodes,
    }
    labels_local = np.array(part.labels, dtype=np.int64)
    num_classes = int(_reduce([labels_local.max() + 1 if len(labels_local) else 0], exchange, dist.ReduceOp.MAX)[0])
    train_local = np.asarray(part.global_ids)[np.asarray(part.train_mask)]
    num_train = int(_reduce([len(train_local)], exchange)[0])
    if num_train == 0:
        raise DataError(f"{partitions_path}: the training mask selects no node")
    steps_per_epoch = math.ceil(num_train / config["batch_size"])
    if steps is None:
        config["epochs"] = epochs if epochs is not None else defaults["epochs"]
        total = config["epochs"] * steps_per_epoch
    else:
        if epochs is not None:
            raise OptionError("give steps or epochs, not both")
        config["epochs"], total = None, int(steps)
    config.update(steps=total, steps_per_epoch=steps_per_epoch, evaluate_every=evaluate_every or steps_per_epoch,
                  num_classes=num_classes, in_channels=int(part.features.shape[1]), num_train=num_train)
    say(f"{world} process(es) on {partitions_path} ({parts.method}, edge cut {parts.report.get('edge_cut', 0):.3f}): "
        f"{parts.num_nodes:,} nodes, {num_train:,} training nodes, {total} steps of about {config['batch_size']}")

    torch.manual_seed(seed)
    network = build_node_model(model, config["in_channels"], num_classes, config["hidden"], config["dropout"])
    keyed = KeyedDropoutModel(network).to(dtype=dtype, device=device)
    ddp = DistributedDataParallel(keyed)
    optimizer = torch.optim.Adam(keyed.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    sampler = DistributedNeighborSampler(parts, exchange, config["fanouts"], seed=seed, degrees=model == "gcn",
                                         io_threads=io_threads)
    if eval_mode == "sampled":
        judge = _SampledEvaluation(parts, part, torch.from_numpy(labels_local), exchange, config, seed, eval_nodes,
                                   io_threads)
        config["eval_selected"] = [total for _, total in judge.sets]  # validation and test nodes evaluated
    else:
        def judge(model: KeyedDropoutModel) -> tuple[float, float]:
            return _exact_accuracies(model, sampler, part, chunk_size, dtype, exchange)

    run_dir.mkdir(parents=True, exist_ok=True)
    run = RunFolder.at(run_dir) if rank == 0 else None
    state = _load_state(run_dir, rank, config, exchange.group)
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"val_acc": -1.0}
    start = 0
    if state is not None:
        keyed.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, history, best = state["next_step"], state["history"], state["best"]
        say(f"resuming from {run_dir / _STATE} at step {start} of {total}")
    attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    (run_dir / f"rank-{rank}.pid").write_text(str(os.getpid()))
    if run is not None:
        run.write_json("config.json", config)
        run.set_status("running", attempt=attempt)
    log = open(run_dir / "steps.jsonl", "a") if rank == 0 else None  # noqa: SIM115 - closed below
    show = (progress if progress is not None else sys.stderr.isatty()) and rank == 0
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=start, desc=f"{model} x{world}", unit="step")
    window = {"loss": 0.0, "seeds": 0, "edges": 0, "bytes": exchange.bytes_sent, "time": time.perf_counter(),
              "steps": 0}
    batches: list[np.ndarray] = []
    batches_epoch = -1
    began = time.perf_counter()
    try:
        for step in range(start, total):
            epoch, position = divmod(step, steps_per_epoch)
            if epoch != batches_epoch:
                batches, batches_epoch = epoch_batches(train_local, seed, epoch, steps_per_epoch), epoch
            seeds = batches[position]
            torch.manual_seed(mix64(seed, step, rank) & 0x7FFFFFFFFFFFFFFF)  # any dropout left to torch
            input_nodes, blocks = sampler.sample(seeds, call=step)
            x, blocks = sampler.fetch_inputs(input_nodes, blocks)
            blocks = [block.to(device) for block in blocks]
            count = int(_reduce([len(seeds)], exchange)[0])
            if count == 0:
                continue
            y = torch.from_numpy(labels_local[np.asarray(parts.book_local[seeds], dtype=np.int64)]).to(device)
            logits = ddp(x.to(dtype=dtype, device=device), blocks, mix64(seed, step))
            loss_sum = F.cross_entropy(logits, y, reduction="sum")
            optimizer.zero_grad(set_to_none=True)
            (loss_sum * (world / count)).backward()
            optimizer.step()
            window["loss"] += float(loss_sum.detach())
            window["seeds"] += len(seeds)
            window["edges"] += sum(block.num_edges for block in blocks)
            window["steps"] += 1
            if log is not None:
                log.write(json.dumps({"step": step, "attempt": attempt, "seeds": count,
                                      "seconds": round(time.perf_counter() - began, 4)}) + "\n")
                log.flush()
            if bar is not None:
                bar.update(1)
            last = step + 1 == total
            if evaluate and ((step + 1) % config["evaluate_every"] == 0 or last):
                row = _rates(step, window, exchange)
                row["val_acc"], row["test_acc"] = judge(keyed)
                history.append(row)
                if row["val_acc"] > best["val_acc"]:
                    best = {"val_acc": row["val_acc"], "test_acc": row["test_acc"], "step": step + 1,
                            "model": {k: v.detach().clone() for k, v in keyed.state_dict().items()}}
                say(f"step {step + 1}: train loss {row['train_loss']:.4f}, validation {row['val_acc']:.4f}, "
                    f"test {row['test_acc']:.4f}; {row['steps_per_s']:.2f} steps/s, "
                    f"{row['bytes_per_step']:,.0f} bytes/step/rank")
                window.update(loss=0.0, seeds=0, edges=0, bytes=exchange.bytes_sent, time=time.perf_counter(),
                              steps=0)
            elif not evaluate and last:
                history.append(_rates(step, window, exchange))
            if run is not None and ((step + 1) % checkpoint_every == 0 or last or
                                    (evaluate and (step + 1) % config["evaluate_every"] == 0)):
                _save_state(run_dir, {"model": keyed.state_dict(), "optimizer": optimizer.state_dict(),
                                      "next_step": step + 1, "history": history, "best": best, "config": config})
    finally:
        if log is not None:
            log.close()
        if bar is not None:
            bar.close()
        sampler.close()
        if isinstance(judge, _SampledEvaluation):
            judge.sampler.close()
    peak = _reduce([resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20], exchange, dist.ReduceOp.MAX)[0]
    final = {"steps": total, "best_step": best.get("step"), "val_acc": best.get("val_acc"),
             "test_acc": best.get("test_acc"), **_mean_rates(history), "peak_rss_gib_per_rank": peak}
    if run is not None:
        run.save_checkpoint({"model_state": best.get("model", keyed.state_dict()), "config": config})
        if history and evaluate:
            run.plot_curves([{k: v for k, v in row.items() if isinstance(v, (int, float))} for row in history],
                            x="step")
        run.finish({"final": final, "evaluations": history, "attempt": attempt})
    dist.barrier(group=exchange.group)
    return {"config": config, "final": final, "evaluations": history}


def _rates(step: int, window: dict[str, Any], exchange: Exchange) -> dict[str, Any]:
    """Throughput since the last evaluation, summed (edges) or averaged (bytes) over the ranks."""
    seconds = max(time.perf_counter() - window["time"], 1e-9)
    steps = max(window["steps"], 1)
    loss, seeds, edges, sent = _reduce([window["loss"], window["seeds"], window["edges"],
                                        exchange.bytes_sent - window["bytes"]], exchange)
    slowest = _reduce([seconds], exchange, dist.ReduceOp.MAX)[0]
    return {"step": step + 1, "train_loss": loss / max(seeds, 1), "steps_per_s": window["steps"] / slowest,
            "edges_per_s": edges / slowest, "bytes_per_step": sent / dist.get_world_size() / steps}


def _mean_rates(history: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("steps_per_s", "edges_per_s", "bytes_per_step")
    return {key: float(np.mean([row[key] for row in history])) if history else None for key in keys}


def _exact_accuracies(model: KeyedDropoutModel, sampler: DistributedNeighborSampler, part: Any, chunk_size: int,
                      dtype: torch.dtype, exchange: Exchange) -> tuple[float, float]:
    """Validation and test accuracy by exact layer-wise inference over every node, spread over the ranks."""
    logits = distributed_layerwise_inference(model, sampler, chunk_size=chunk_size, dtype=dtype,
                                             device=next(model.parameters()).device)
    predicted = logits.argmax(1).cpu().numpy() if len(logits) else np.empty(0, dtype=np.int64)
    labels = np.asarray(part.labels)
    counts = []
    for mask in (part.val_mask, part.test_mask):
        mask = np.asarray(mask)
        counts += [float(np.count_nonzero(predicted[mask] == labels[mask])), float(np.count_nonzero(mask))]
    val_right, val_all, test_right, test_all = _reduce(counts, exchange)
    return val_right / max(val_all, 1), test_right / max(test_all, 1)


class _SampledEvaluation:
    """Validation and test accuracy on sampled blocks around (at most about ``limit``) validation and test nodes.

    The nodes are kept by a hash of ``(seed, node)`` and split into batches by ``epoch_batches``; batch ``r`` is
    sampled at call ``r`` of a sampler of its own (seed ``seed + 1``), so a node's blocks do not depend on the number
    of processes. Every rank takes part in every batch."""

    def __init__(self, parts: Any, part: Any, labels: torch.Tensor, exchange: Exchange, config: dict[str, Any],
                 seed: int, limit: int | None, io_threads: int) -> None:
        self.exchange = exchange
        self.batch_size = config["batch_size"]
        self.seed = seed
        self.sampler = DistributedNeighborSampler(parts, exchange, config["fanouts"], seed=seed + 1,
                                                  degrees=config["model"] == "gcn", io_threads=io_threads)
        self.labels = labels  # [n_owned] in local order
        self.book_local = parts.book_local
        self.sets = []
        for mask in (part.val_mask, part.test_mask):
            nodes = np.asarray(part.global_ids)[np.asarray(mask)]
            total = int(_reduce([len(nodes)], exchange)[0])
            if limit is not None and total > limit:
                with np.errstate(over="ignore"):
                    keys = _mix_array(nodes.astype(np.uint64) + np.uint64(mix64(seed, 7)))
                nodes = nodes[(keys >> np.uint64(11)).astype(np.float64) * 2.0**-53 < limit / total]
                total = int(_reduce([len(nodes)], exchange)[0])
            self.sets.append((nodes, total))

    def __call__(self, model: KeyedDropoutModel) -> tuple[float, float]:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        dtype = next(model.parameters()).dtype
        counts = []
        call = 0
        try:
            for nodes, total in self.sets:
                rounds = max(math.ceil(total / self.batch_size), 1)
                right = 0
                for seeds in epoch_batches(nodes, self.seed + 1, 0, rounds):
                    input_nodes, blocks = self.sampler.sample(seeds, call=call)
                    call += 1
                    x, blocks = self.sampler.fetch_inputs(input_nodes, blocks)
                    with torch.no_grad():
                        logits = model(x.to(dtype=dtype, device=device), [b.to(device) for b in blocks])
                    local = torch.from_numpy(np.asarray(self.book_local[seeds], dtype=np.int64))
                    right += int((logits.argmax(1).cpu() == self.labels[local]).sum())
                counts += [right, total]
        finally:
            model.train(was_training)
        val_right, test_right = _reduce([counts[0], counts[2]], self.exchange)  # the totals are global already
        return val_right / max(counts[1], 1), test_right / max(counts[3], 1)


def _save_state(run_dir: Path, state: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(run_dir / _STATE, buffer.getvalue())


def _load_state(run_dir: Path, rank: int, config: dict[str, Any], group: Any) -> dict[str, Any] | None:
    """Rank 0 reads ``state.pt`` (if any) and broadcasts it; a state written with another configuration, or a run
    that has finished, is an error."""
    box: list[Any] = [None]
    if rank == 0:
        metrics = run_dir / "metrics.json"
        if metrics.is_file():
            try:
                status = json.loads(metrics.read_text()).get("status")
            except ValueError:
                status = None
            if status == "finished":
                box[0] = RunError(f"{run_dir} holds a finished run: choose another --run-dir")
        file = run_dir / _STATE
        if box[0] is None and file.is_file():
            state = torch.load(file, map_location="cpu", weights_only=True)
            ignore = ("steps",)
            mismatched = [key for key in config if key not in ignore and state["config"].get(key) != config[key]]
            box[0] = RunError(f"{file} was written with another configuration ({', '.join(mismatched)} differ): "
                              "use a fresh --run-dir") if mismatched else state
    dist.broadcast_object_list(box, src=0, group=group)
    if isinstance(box[0], Exception):
        raise box[0]
    return box[0]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="torchrun --nproc_per_node=K -m fivefold.train.distributed",
        description="Distributed mini-batch node classification over a partitioned store (fivefold.scale."
                    "partition_store, K parts for K processes). Each process trains on its part's training nodes "
                    "with DistributedDataParallel; remote neighbours and features are fetched from their owners. "
                    "Resumes from RUN_DIR/state.pt after a restart (torchrun --max-restarts).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--partitions", required=True, help="the partitioned store (one part per process)")
    parser.add_argument("--run-dir", required=True,
                        help="the run folder: config.json, metrics.json, state.pt (resumed from), checkpoint.pt, "
                             "curves.png, steps.jsonl")
    parser.add_argument("--model", default="sage", choices=sorted(STORE_MODELS))
    parser.add_argument("--fanout", default="15,10", help="neighbours per layer, from the seeds outwards")
    parser.add_argument("--batch-size", type=int, default=1024, help="seeds per step over all processes (mean)")
    parser.add_argument("--epochs", type=int, default=None, help="passes over the training nodes (default 3)")
    parser.add_argument("--steps", type=int, default=None, help="steps instead of epochs")
    parser.add_argument("--hidden", type=int, default=None, help="hidden width (default 256, GAT 32)")
    parser.add_argument("--dropout", type=float, default=None, help="dropout (default 0.5)")
    parser.add_argument("--lr", type=float, default=None, help="Adam's learning rate (default 0.003)")
    parser.add_argument("--weight-decay", type=float, default=None, help="L2 (default 0)")
    parser.add_argument("--evaluate-every", type=int, default=None, help="steps between evaluations (default: "
                        "one epoch)")
    parser.add_argument("--checkpoint-every", type=int, default=50, help="steps between saved states")
    parser.add_argument("--no-eval", action="store_true", help="train only (throughput runs)")
    parser.add_argument("--eval-mode", choices=("exact", "sampled"), default="exact",
                        help="exact: layer-wise inference over every node; sampled: on sampled blocks (the training "
                             "fan-outs) around --eval-nodes validation and test nodes")
    parser.add_argument("--eval-nodes", type=int, default=None,
                        help="with --eval-mode sampled: about this many validation and as many test nodes (default: "
                             "all)")
    parser.add_argument("--chunk-size", type=int, default=4096, help="destination nodes per chunk in evaluation")
    parser.add_argument("--io-threads", type=int, default=0,
                        help="0: read the part's features through its memory map (fast while it fits in the page "
                             "cache); N: with pread by N threads (parts larger than RAM)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--float64", action="store_true", help="train in float64")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="cuda: NCCL, one GPU per process (LOCAL_RANK)")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        fanouts = [int(f) for f in args.fanout.split(",")]
    except ValueError:
        _parser().error(f"--fanout must be integers separated by commas, got {args.fanout!r}")
    if args.device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    result = train_distributed(
        args.partitions, args.run_dir, model=args.model, fanouts=fanouts, batch_size=args.batch_size,
        epochs=args.epochs, steps=args.steps, hidden=args.hidden, dropout=args.dropout, lr=args.lr,
        weight_decay=args.weight_decay, evaluate_every=args.evaluate_every, checkpoint_every=args.checkpoint_every,
        evaluate=not args.no_eval, eval_mode=args.eval_mode, eval_nodes=args.eval_nodes, chunk_size=args.chunk_size,
        io_threads=args.io_threads, seed=args.seed,
        dtype=torch.float64 if args.float64 else torch.float32, device=args.device,
        progress=False if args.no_progress else None)
    if int(os.environ.get("RANK", "0")) == 0:
        final = result["final"]
        print(json.dumps(final))
    return 0


if __name__ == "__main__":
    sys.exit(main())
