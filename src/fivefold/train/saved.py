"""Using a finished run: ``load_run(path)`` rebuilds the model from ``config.json`` and loads its checkpoint, and
``predict_run`` scores data with it (what ``fivefold predict`` does).

Loading is safe and checked: the run must have finished (``metrics.json`` says ``status: finished``), the checkpoint's
sha256 must equal the one recorded when it was written, and it is read with ``torch.load(weights_only=True)``, which
builds tensors and plain containers only and never runs code from the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fivefold.data import load_labelled_graph, load_tu, sha256, split_nodes
from fivefold.data.tables import load_array
from fivefold.errors import DataError, RunError
from fivefold.graphs import Batch
from fivefold.train.images import predict_proba
from fivefold.train.presets import (
    GRAPH_PRESET,
    build_graph_model,
    build_image_model,
    build_molecule_model,
    build_node_model,
    build_stream_model,
    load_node_task,
)
from fivefold.train.tasks import IMAGE_TASKS, prepare_images

__all__ = ["LoadedRun", "FoldEnsemble", "load_run", "predict_run"]


@dataclass(frozen=True)
class LoadedRun:
    """A finished run: its folder, ``config`` and ``metrics`` (the JSON files) and ``model`` (eval mode)."""

    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    model: nn.Module


class FoldEnsemble(nn.Module):
    """The models of a cross-validation, one per fold, as one classifier: ``forward(x, batch)`` returns the log of
    the folds' mean softmax probabilities, ``[num_graphs, classes]``."""

    def __init__(self, models: list[nn.Module]) -> None:
        super().__init__()
        self.folds = nn.ModuleList(models)

    def forward(self, x: Tensor, batch: Batch) -> Tensor:
        probabilities = torch.stack([model(x, batch).softmax(-1) for model in self.folds]).mean(0)
        return probabilities.log()


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RunError(f"{path.parent} is not a finished run folder: {path.name} is missing")
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunError(f"{path} is not valid JSON ({exc})") from None


def load_run(path: str | os.PathLike) -> LoadedRun:
    """Rebuild a run's model from ``config.json`` and load ``checkpoint.pt`` into it, after checking that the run
    finished and that the checkpoint's sha256 matches ``metrics.json``. Raises ``RunError`` saying what is wrong."""
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"run folder {path} does not exist (or is not a folder)")
    config = _read_json(path / "config.json")
    metrics = _read_json(path / "metrics.json")
    if not isinstance(config, dict) or not isinstance(metrics, dict):
        raise RunError(f"run {path}: config.json and metrics.json must each hold a JSON object")
    status = metrics.get("status")
    if status != "finished":
        error = f" ({metrics['error']})" if metrics.get("error") else ""
        raise RunError(f"run {path} did not finish: its status is {status!r}{error}; it has no usable checkpoint")
    recorded = metrics.get("checkpoint") or {}
    checkpoint = path / str(recorded.get("file", "checkpoint.pt"))
    if not checkpoint.is_file() or "sha256" not in recorded:
        raise RunError(f"run {path}: the checkpoint {checkpoint.name} or its recorded sha256 is missing")
    data = checkpoint.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != recorded["sha256"]:
        raise RunError(f"run {path}: {checkpoint.name} is corrupted (sha256 {digest}, {len(data)} bytes; recorded "
                       f"{recorded['sha256']}, {recorded.get('bytes')} bytes): train the run again or restore the "
                       "file")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises UnpicklingError, RuntimeError, ... for a file it refuses
        raise RunError(f"run {path}: {checkpoint.name} matches its checksum but torch refuses to load it with "
                       f"weights_only=True ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    try:
        model = build_model(config)
        if config["kind"] == "graph":
            for fold, fold_state in zip(model.folds, state["fold_states"], strict=True):
                fold.load_state_dict(fold_state)
        else:
            model.load_state_dict(state["model_state"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0]
        raise RunError(f"run {path}: config.json and {checkpoint.name} do not describe the same model ({detail})"
                       ) from None
    model.eval()
    return LoadedRun(path, config, metrics, model)


def build_model(config: dict[str, Any]) -> nn.Module:
    """The untrained model a run's ``config.json`` describes."""
    kind = config.get("kind")
    if kind in ("node", "store"):
        return build_node_model(config["model"], config["in_channels"], config["num_classes"], config["hidden"],
                                config["dropout"])
    if kind == "graph":
        preset = replace(GRAPH_PRESET, hidden=config["hidden"], dropout=config["dropout"])
        return FoldEnsemble([build_graph_model(config["in_channels"], config["num_classes"], preset)
                             for _ in range(config["folds"])])
    if kind == "image":
        return build_image_model(config["model"], config["cnn_base"], config["in_channels"], config["num_classes"],
                                 **config.get("classifier", {}))
    if kind == "stream":
        return build_stream_model(config["model"], config["num_nodes"], config["edge_dim"],
                                  time_scale=config["time_scale"])
    if kind == "molecule":
        # runs written before D-MPNN took chemprop's norm readout (2026-12-03) have no "readout": they used the mean
        return build_molecule_model(config["model"], config["targets"], config["hidden"],
                                    config.get("readout", "mean"))
    raise RunError(f"config.json has kind {kind!r}; expected 'node', 'store', 'graph', 'image', 'stream' or "
                   "'molecule' (a run of fivefold >= 0.1)")


def predict_run(
    run: LoadedRun, *, data_root: str | os.PathLike | None = None, images: str | os.PathLike | None = None,
    edges: str | os.PathLike | None = None, labels: str | os.PathLike | None = None,
    features: str | os.PathLike | None = None, smiles: str | os.PathLike | None = None,
) -> tuple[list[str], list[list[Any]], dict[str, float]]:
    """Score data with a loaded run: ``(header, rows, summary)`` for a CSV of predictions.

    - node runs: every node of the run's graph (the built-in task's, or the user's files, read again after checking
      their sha256 against ``config.json``), or of the graph in ``edges`` / ``labels`` / ``features``;
    - graph runs: every graph of the task's data set (from ``data_root``), by the folds' ensemble;
    - image runs: the task's test set (from ``data_root``) or the ``.npy`` array ``images`` (``[N, H, W]``,
      ``[N, 1, H, W]`` or the volume forms, values 0..255 for uint8 or 0..1 for floats).

    - molecule runs: the SMILES of the file ``smiles`` (one per line, or a CSV with a ``smiles`` column), else every
      molecule of the run's data set (from ``data_root``); each row holds the row number, the SMILES and a prediction
      per target (regression: in the targets' units; classification: the probability of class 1). Unparsable SMILES
      get empty predictions.

    Each row holds an id, the predicted class and each class's probability; ``summary`` holds the accuracy where
    labels are known."""
    config, model = run.config, run.model
    if config["kind"] == "molecule":
        return _predict_molecules(run, data_root, smiles)
    if config["kind"] == "stream":
        raise RunError(f"run {run.path} is a temporal link predictor: it scores links, not classes. Load it with "
                       "fivefold.train.load_run(path).model and call model(src, dst, t), then model.observe(...) "
                       "as events arrive (its memory continues from the end of validation)")
    classes = [f"p{c}" for c in range(config["num_classes"])]
    with torch.no_grad():
        if config["kind"] == "node":
            return _predict_nodes(run, data_root, edges, labels, features, classes)
        if config["kind"] == "store":
            return _predict_store(run, classes)
        if config["kind"] == "graph":
            graphs = load_tu(config["task"], data_root)
            probs = torch.cat([model(b.x, b).exp() for b in
                               (Batch.from_graphs(graphs[i:i + 256]) for i in range(0, len(graphs), 256))])
            truth = torch.tensor([int(g.graph_y) for g in graphs])
            summary = {"graphs": len(graphs), "accuracy_on_all_graphs": _acc(probs, truth)}
            return (["graph", "prediction", *classes], _rows(range(len(graphs)), probs), summary)
        if images is not None:
            pixels = _read_images(Path(images), IMAGE_TASKS[config["task"]].dim, side=28)
            truth = None
        else:
            from fivefold.data import load_medmnist3d, load_mnist

            test_set = (load_mnist("test", data_root) if IMAGE_TASKS[config["task"]].dim == 2 else
                        load_medmnist3d(config["task"], "test", data_root))
            pixels, truth = test_set.as_float(), test_set.labels
        probs = predict_proba(model, prepare_images(config["task"], pixels))
        summary = {"images": len(pixels)}
        if truth is not None:
            summary["test_accuracy"] = _acc(probs, truth)
        return (["image", "prediction", *classes], _rows(range(len(pixels)), probs), summary)


def _acc(probs: Tensor, truth: Tensor) -> float:
    return float((probs.argmax(1) == truth).float().mean()) if len(truth) else float("nan")


def _rows(ids: Any, probs: Tensor) -> list[list[Any]]:
    predictions = probs.argmax(1).tolist()
    return [[i, p, *(f"{v:.6f}" for v in row)] for i, p, row in zip(ids, predictions, probs.tolist(), strict=True)]


def _predict_nodes(run: LoadedRun, data_root: Any, edges: Any, labels: Any, features: Any,
                   classes: list[str]) -> tuple[list[str], list[list[Any]], dict[str, float]]:
    config = run.config
    node_ids = None
    masks = None
    if edges is not None or config["task"] == "own":
        if edges is None:  # the run's own files, unchanged since training
            files = config["files"]
            for name, entry in files.items():
                if entry is not None and not Path(entry["path"]).is_file():
                    raise DataError(f"{name} file {entry['path']}, which the run was trained on, is gone; pass "
                                    "--edges/--labels/--features to predict on files elsewhere")
                if entry is not None and sha256(entry["path"]) != entry["sha256"]:
                    raise DataError(f"{name} file {entry['path']} changed since the run was trained (sha256 "
                                    "differs); pass --edges/--labels/--features to predict on new files")
            edges, labels = files["edges"]["path"], files["labels"]["path"]
            features = files["features"]["path"] if files["features"] else None
        if labels is None:
            raise DataError("predicting on a new graph needs --labels too (leave label fields empty for unknown "
                            "nodes)")
        read = load_labelled_graph(edges, labels, features=features, undirected=config.get("undirected", False),
                                   remap_ids=config.get("remap_ids", False))
        graph, node_ids = read.graph, read.node_ids
        if config["task"] == "own" and config.get("split") and edges == config["files"]["edges"]["path"]:
            masks = split_nodes(graph.y, config["split"], config["seed"])
    else:
        graph, _ = load_node_task(config["task"], data_root)
        masks = (graph.train_mask, graph.val_mask, graph.test_mask)
    if graph.num_features != config["in_channels"]:
        raise DataError(f"the graph has {graph.num_features} features per node; the model was trained on "
                        f"{config['in_channels']}")
    probs = run.model(graph.x, graph).softmax(-1)
    ids = range(graph.num_nodes) if node_ids is None else node_ids.tolist()
    rows = _rows(ids, probs)
    summary: dict[str, float] = {"nodes": graph.num_nodes}
    labelled = graph.y >= 0
    if masks is not None:
        split = np.full(graph.num_nodes, "-", dtype=object)
        for name, mask in zip(("train", "val", "test"), masks, strict=True):
            split[mask.numpy()] = name
        rows = [[*row, split[i]] for i, row in enumerate(rows)]
        test = masks[2]
        summary["test_accuracy"] = _acc(probs[test], graph.y[test])
        header = ["node", "prediction", *classes, "split"]
    else:
        summary["accuracy_on_labelled_nodes"] = _acc(probs[labelled], graph.y[labelled])
        header = ["node", "prediction", *classes]
    return header, rows, summary


def _predict_store(run: LoadedRun, classes: list[str]) -> tuple[list[str], list[list[Any]], dict[str, float]]:
    """Every node of the run's store, by exact layer-wise inference."""
    from fivefold.scale import layerwise_inference, open_store

    store = open_store(run.config["store"]["path"])
    if store.num_features != run.config["in_channels"]:
        raise DataError(f"the store has {store.num_features} features per node; the model was trained on "
                        f"{run.config['in_channels']}")
    probs = layerwise_inference(run.model, store).softmax(-1)
    rows = _rows(range(store.num_nodes), probs)
    summary: dict[str, float] = {"nodes": store.num_nodes}
    if store.test_mask is not None and store.labels is not None:
        test = torch.from_numpy(np.array(store.test_mask))
        summary["test_accuracy"] = _acc(probs[test], torch.from_numpy(np.array(store.labels))[test])
    return ["node", "prediction", *classes], rows, summary


def _read_images(path: Path, dim: int, side: int) -> Tensor:
    """``[N, 1, side, ...]`` float images in [0, 1] from a ``.npy`` array of uint8 (0..255) or floats (0..1)."""
    array = load_array(path, "images")
    if array.ndim == dim + 1:
        array = array[:, None]
    expected = (1, *([side] * dim))
    if array.ndim != dim + 2 or tuple(array.shape[1:]) != expected:
        raise DataError(f"images {path}: expected [N, {', '.join([str(side)] * dim)}] (one channel, the size the "
                        f"model was trained on), got shape {array.shape}")
    if array.dtype == np.uint8:
        return torch.from_numpy(array.astype(np.float32) / 255.0)
    if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
        raise DataError(f"images {path}: expected uint8 (0..255) or finite floats (0..1), got {array.dtype}")
    if array.size and (array.min() < 0 or array.max() > 1):
        raise DataError(f"images {path}: float images must lie in [0, 1] (got {array.min():g}..{array.max():g}); "
                        "divide 0..255 values by 255 or save them as uint8")
    return torch.from_numpy(array.astype(np.float32))


def _read_smiles(path: Path) -> list[str]:
    import csv

    if not path.is_file():
        raise DataError(f"SMILES file {path} does not exist")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if lines and "smiles" in [c.strip().lower() for c in lines[0].split(",")]:
        rows = list(csv.DictReader(lines))
        column = next(c for c in rows[0] if c.strip().lower() == "smiles") if rows else "smiles"
        return [row[column].strip() for row in rows]
    return [line.split(",")[0].strip() for line in lines]


def _predict_molecules(run: LoadedRun, data_root: Any, smiles_file: Any) -> tuple[list[str], list[list[Any]],
                                                                                   dict[str, float]]:
    from fivefold.molecules import smiles_to_graphs
    from fivefold.train.molecules import TargetScaler, predict_molecules

    config = run.config
    if smiles_file is not None:
        smiles = _read_smiles(Path(smiles_file))
    else:
        from fivefold.data import load_moleculenet

        smiles = load_moleculenet(config["task"], data_root).smiles
    graphs, rows = smiles_to_graphs(smiles, verbose=False)
    scaler = TargetScaler(torch.tensor(config["target_mean"]), torch.tensor(config["target_std"]))
    predictions = predict_molecules(run.model, graphs, task=config["task_type"], scaler=scaler) if graphs else \
        torch.zeros(0, config["targets"])
    by_row = dict(zip(rows.tolist(), predictions.tolist(), strict=True))
    table = [[r, s, *([f"{v:.6g}" for v in by_row[r]] if r in by_row else [""] * config["targets"])]
             for r, s in enumerate(smiles)]
    summary = {"molecules": len(smiles), "unparsable": len(smiles) - len(graphs)}
    return ["row", "smiles", *config["task_names"]], table, summary
