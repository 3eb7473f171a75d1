"""Counter-based random numbers for numba kernels: splitmix64 (Steele, Lea & Flood 2014, "Fast splittable
pseudorandom number generators").

Sampling kernels (the neighbour sampler, the R-MAT generator, the temporal sampler) draw their random numbers as a
hash of ``(seed, counter)`` instead of from a stateful generator, so a result does not depend on how threads share
the work. ``mix`` is splitmix64's finaliser; ``GOLDEN`` its increment.
"""

import numpy as np
from numba import njit

__all__ = ["GOLDEN", "mix"]

GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(inline="always", nogil=True, cache=True)
def mix(x):  # pragma: no cover - compiled
    """splitmix64's finaliser: a well-mixed 64-bit value from the ``uint64`` ``x``."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))
