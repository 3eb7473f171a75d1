"""Training loops, metrics and run folders. Models come in as arguments."""

from fivefold.train.graph import cross_validate, evaluate_graphs, fit_graph_classifier
from fivefold.train.images import fit_image_classifier, predict_proba, rotate_test_set
from fivefold.train.node import accuracy, fit_node_classifier
from fivefold.train.run import RunFolder

__all__ = ["RunFolder", "accuracy", "cross_validate", "evaluate_graphs", "fit_graph_classifier",
           "fit_image_classifier", "fit_node_classifier", "predict_proba", "rotate_test_set"]
