"""Equivariance checks, public so users can test their own layers with the same call fivefold's tests use."""

from fivefold.testing.equivariance import EquivarianceReport, assert_equivariant, grid_action, random_rotation

__all__ = ["EquivarianceReport", "assert_equivariant", "grid_action", "random_rotation"]
