"""fivefold: geometric deep learning on grids, groups, graphs, geodesics and gauges."""

__version__ = "0.1.0"
