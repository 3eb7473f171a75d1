"""torch's thread count stays what the caller set after fivefold's numba kernels run, and the kernels use it.

numba's OpenMP threading layer shares torch's libgomp; starting its pool used to reset torch's thread count to
NUMBA_NUM_THREADS (``fivefold.ops.threads``). Each check runs in a fresh interpreter, as the pool starts once per
process; NUMBA_NUM_THREADS=2 makes the reset visible on a one-core machine too.
"""

import os
import subprocess
import sys

import numba
import pytest
import torch

from fivefold.ops import CSR, spmm, sync_numba_threads

KERNELS = """
import numba, torch
from fivefold.graphs import radius_graph
from fivefold.ops import CSR, spmm
radius_graph(torch.randn(3000, 3, dtype=torch.float64) * 5, 1.0)
rows, cols = torch.randint(0, 2000, (2, 40000))
spmm(CSR.from_coo(rows, cols, 2000, 2000), torch.randn(2000, 64))
print(torch.get_num_threads(), numba.get_num_threads())
"""

ORDERS = {
    "threads set before the import": "import torch\ntorch.set_num_threads(1)\ntorch.get_num_threads()\n" + KERNELS,
    "threads set after the import": "import torch, fivefold.ops\ntorch.set_num_threads(1)\n" + KERNELS,
}


@pytest.mark.parametrize("order", list(ORDERS))
def test_numba_kernels_leave_torch_thread_count_alone(order):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["NUMBA_NUM_THREADS"] = "2"
    run = subprocess.run([sys.executable, "-c", ORDERS[order]], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    torch_threads, numba_threads = map(int, run.stdout.split())
    assert (torch_threads, numba_threads) == (1, 1)


def test_sync_follows_torch_and_results_do_not_depend_on_threads():
    before = torch.get_num_threads()
    generator = torch.Generator().manual_seed(0)
    rows, cols = torch.randint(0, 2000, (2, 40000), generator=generator)
    csr = CSR.from_coo(rows, cols, 2000, 2000)
    x = torch.randn(2000, 64, dtype=torch.float64, generator=generator)
    try:
        torch.set_num_threads(1)
        assert sync_numba_threads() == 1
        serial = spmm(csr, x)
        torch.set_num_threads(2)
        assert sync_numba_threads() == min(2, numba.config.NUMBA_NUM_THREADS)
        parallel = spmm(csr, x)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(serial, parallel)  # rows are summed in the same order on any thread
