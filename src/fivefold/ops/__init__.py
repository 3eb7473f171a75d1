"""Core kernels: scatter/segment reductions, segment softmax, CSR sparse x dense products with autograd; ranking
metrics (AP, ROC-AUC, MRR) that several domains share; distinct ids with their inverse map; one thread count for torch
and the numba kernels (``threads``).

This package imports nothing else from fivefold except ``errors``.
"""

from fivefold.ops.ids import unique_ids
from fivefold.ops.metrics import average_precision, mean_reciprocal_rank, roc_auc
from fivefold.ops.scatter import REDUCTIONS, scatter, segment, segment_softmax
from fivefold.ops.sparse import CSR, sddmm, spmm, spmm_mix, spmm_terms_linear
from fivefold.ops.threads import sync_numba_threads

__all__ = ["CSR", "REDUCTIONS", "average_precision", "mean_reciprocal_rank", "roc_auc", "scatter", "segment",
           "segment_softmax", "sddmm", "spmm", "spmm_mix", "spmm_terms_linear", "sync_numba_threads", "unique_ids"]
