"""Core kernels: scatter/segment reductions, segment softmax, CSR sparse x dense products with autograd.

This package imports nothing else from fivefold except ``errors``.
"""

from fivefold.ops.scatter import REDUCTIONS, scatter, segment, segment_softmax
from fivefold.ops.sparse import CSR, sddmm, spmm

__all__ = ["CSR", "REDUCTIONS", "scatter", "segment", "segment_softmax", "sddmm", "spmm"]
