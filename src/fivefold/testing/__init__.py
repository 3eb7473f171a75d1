"""Equivariance checks and float tolerances, public so users can test their own layers with the same calls fivefold's
tests use."""

from fivefold.testing.e3 import E3, E3Element, molecule_action, node_action, position_action
from fivefold.testing.equivariance import Action, EquivarianceReport, assert_equivariant, grid_action, random_rotation
from fivefold.testing.gauge import gauge_transform, random_gauge
from fivefold.testing.tolerance import SAFETY, CloseReport, assert_close, collect_reports, float_tolerance

__all__ = [
    "E3",
    "E3Element",
    "molecule_action",
    "node_action",
    "position_action",
    "SAFETY",
    "Action",
    "CloseReport",
    "EquivarianceReport",
    "assert_close",
    "assert_equivariant",
    "collect_reports",
    "float_tolerance",
    "grid_action",
    "random_rotation",
    "random_gauge",
    "gauge_transform",
]
