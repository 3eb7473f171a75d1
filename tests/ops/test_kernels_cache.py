"""The numba kernels' serial and parallel builds are both cached on disk and kept apart."""

import subprocess
import sys

SCRIPT = """
import numpy as np
from fivefold.ops import _kernels as k
indptr = np.array([0, 2, 3], dtype=np.int64)
indices = np.array([1, 0, 1], dtype=np.int64)
x = np.arange(6, dtype=np.float64).reshape(2, 1, 3)
serial, parallel = np.zeros_like(x), np.zeros_like(x)
k.spmm_sum_serial(indptr, indices, x, serial)
k.spmm_sum(indptr, indices, x, parallel)
assert np.array_equal(serial, parallel) and np.array_equal(serial[0, 0], x[0, 0] + x[1, 0])
hits = sum(k.spmm_sum_serial.stats.cache_hits.values()), sum(k.spmm_sum.stats.cache_hits.values())
print(hits[0], hits[1])
"""


def test_serial_and_parallel_builds_load_from_the_disk_cache():
    runs = [subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    serial_hits, parallel_hits = map(int, runs[1].stdout.split())
    assert serial_hits >= 1 and parallel_hits >= 1  # the second process compiled neither build
