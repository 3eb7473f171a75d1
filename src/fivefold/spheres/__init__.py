"""Signals on the sphere: the icosahedral grid with its chart atlas, and gauge-equivariant Ico-CNN layers on fields of
the gauge group C_6 (``trivial_field(n)``, ``regular_field(n)``)."""

from fivefold.spheres.conv import IcoConv
from fivefold.spheres.fields import GAUGE_GROUP, regular_field, trivial_field
from fivefold.spheres.grid import HEX_DIRECTIONS, IcoGrid, icosahedron
from fivefold.spheres.metrics import average_precision, per_class_accuracy, segmentation_report
from fivefold.spheres.models import IcoClassifier, IcoUNet
from fivefold.spheres.norm import IcoBatchNorm
from fivefold.spheres.padding import pad_charts
from fivefold.spheres.pooling import IcoGroupPool, IcoPool, IcoUnpool
from fivefold.spheres.sampling import (
    interpolate,
    lonlat,
    project_image,
    rotate_signal,
    sample_equirectangular,
    sample_healpix,
    sample_points,
    to_equirectangular,
    unit_vectors,
)
from fivefold.spheres.singular import average_singular, chart_action, rotate_charts

__all__ = [
    "GAUGE_GROUP", "trivial_field", "regular_field",
    "IcoGrid", "HEX_DIRECTIONS", "icosahedron", "IcoConv", "IcoPool", "IcoUnpool", "IcoGroupPool", "IcoBatchNorm",
    "pad_charts", "average_singular", "rotate_charts", "chart_action", "IcoClassifier", "IcoUNet", "interpolate",
    "lonlat",
    "project_image", "rotate_signal", "average_precision", "per_class_accuracy", "segmentation_report",
    "sample_equirectangular", "sample_healpix", "sample_points", "to_equirectangular", "unit_vectors",
]
