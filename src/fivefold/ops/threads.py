"""One thread budget for torch and fivefold's numba kernels: ``torch.set_num_threads(n)``.

numba starts its thread pool on first use. Where its threading layer is OpenMP (numba's choice when TBB is not
installed), the pool runs on the ``libgomp`` that torch has already loaded, and starting it sets that library's thread
count to ``NUMBA_NUM_THREADS`` (the number of cores): from then on ``torch.get_num_threads()`` reports numba's count
and torch's ops run on it, whatever the caller had set. A training run started with ``torch.set_num_threads(1)``
silently used every core after its first numba kernel (seen as a second busy thread and a process CPU time above its
wall time). This module starts numba's pool once, when ``fivefold.ops`` is imported, and puts torch's count back.

``sync_numba_threads`` then gives the kernels in ``fivefold.ops`` (sparse products, radius graphs) and the temporal
attention kernels torch's count, at most ``NUMBA_NUM_THREADS``; the kernels run serially when it is 1. The samplers and
store builders of ``fivefold.scale`` keep numba's own count (``NUMBA_NUM_THREADS``), as their worker threads do I/O.
"""

from __future__ import annotations

import numba
import torch

__all__ = ["sync_numba_threads"]


def _start_numba_pool() -> None:
    threads = torch.get_num_threads()
    numba.get_num_threads()  # starts numba's pool (a no-op when it runs already)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


_start_numba_pool()


def sync_numba_threads() -> int:
    """Sets numba's thread count for the calling thread to torch's (at most ``NUMBA_NUM_THREADS``); returns it."""
    threads = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    if numba.get_num_threads() != threads:
        numba.set_num_threads(threads)
    return threads
