"""Training: one loop (``fit``) with its batch samplers and callbacks, the task trainers built on it, metrics and run
folders. Models come in as arguments."""

from fivefold.train.graph import cross_validate, evaluate_graphs, fit_graph_classifier
from fivefold.train.images import fit_image_classifier, predict_proba, rotate_test_set
from fivefold.train.loop import (
    EarlyStopping,
    KeepBest,
    PrintRows,
    RandomSubsets,
    ShuffledBatches,
    TimeBudget,
    cosine_schedule,
    fit,
)
from fivefold.train.node import accuracy, fit_node_classifier, fit_node_classifier_minibatch, fit_store_classifier
from fivefold.train.run import RunFolder, RunInterrupted
from fivefold.train.saved import FoldEnsemble, LoadedRun, load_run, predict_run

__all__ = [
    "fit", "ShuffledBatches", "RandomSubsets", "KeepBest", "EarlyStopping", "TimeBudget", "PrintRows",
    "cosine_schedule",
    "fit_image_classifier", "fit_node_classifier", "fit_node_classifier_minibatch", "fit_store_classifier",
    "fit_graph_classifier", "cross_validate", "evaluate_graphs",
    "predict_proba", "rotate_test_set", "accuracy", "RunFolder", "RunInterrupted", "LoadedRun", "FoldEnsemble",
    "load_run", "predict_run",
]
