"""Distributed training over a partitioned store: the sampler, exchanges and inference against the single-process
ones (2 processes on loopback, launched by torchrun), the trainer's accuracy against its single-process run on Cora
and CiteSeer, and a killed worker survived under ``torchrun --max-restarts``."""

import gc
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.parallel import DistributedDataParallel

from fivefold.data import load_embedded_cora
from fivefold.errors import GraphError, OptionError
from fivefold.graphs import GCN, GraphSAGE
from fivefold.scale import NeighborSampler, partition_store
from fivefold.scale.distributed import KeyedDropoutModel, keyed_dropout, mix64
from fivefold.train.distributed import epoch_batches, train_distributed

HERE = Path(__file__).parent
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--rdzv-backend=c10d", "--rdzv-endpoint=localhost:0"]


def _torchrun(args: list[str], nproc: int = 2, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run torchrun with ``nproc`` workers; on a timeout the whole process group is killed (no worker left over)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    process = subprocess.Popen([*TORCHRUN, f"--nproc_per_node={nproc}", *args], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


# --- keyed dropout and the epoch's batches (in process) ---

def test_keyed_dropout_depends_only_on_key_node_and_feature():
    x = torch.ones(6, 50, dtype=torch.float64)
    ids = torch.tensor([5, 9, 2, 7, 100, 3])
    out = keyed_dropout(x, ids, 0.4, key=77)
    permutation = torch.tensor([3, 0, 5, 1, 4, 2])
    assert torch.equal(keyed_dropout(x[permutation], ids[permutation], 0.4, key=77), out[permutation])
    assert torch.equal(keyed_dropout(x[:2], ids[:2], 0.4, key=77), out[:2])  # another batch around the node
    assert not torch.equal(keyed_dropout(x, ids, 0.4, key=78), out)
    assert set(out.unique().tolist()) <= {0.0, 1 / 0.6}
    assert torch.equal(keyed_dropout(x, ids, 0.4, key=77, training=False), x)
    assert torch.equal(keyed_dropout(x, ids, 0.0, key=77), x)


def test_keyed_dropout_rate_and_gradient():
    x = torch.randn(2000, 64, dtype=torch.float64, requires_grad=True)
    ids = torch.arange(2000) * 7919
    out = keyed_dropout(x, ids, 0.3, key=mix64(1, 2, 3))
    kept = (out != 0).double().mean().item()
    assert abs(kept - 0.7) < 5 * (0.21 / x.numel()) ** 0.5  # five binomial standard deviations
    out.sum().backward()
    mask = (out != 0).double()
    torch.testing.assert_close(x.grad, mask / 0.7, rtol=0, atol=1e-15)
    assert torch.autograd.gradcheck(lambda t: keyed_dropout(t, ids[:5], 0.3, key=9), (x[:5, :4].detach().clone()
                                                                                      .requires_grad_(),))


def test_keyed_dropout_bad_input():
    with pytest.raises(OptionError, match="p must be in"):
        keyed_dropout(torch.ones(2, 2), torch.arange(2), 1.0, key=0)
    with pytest.raises(GraphError, match="one per row"):
        keyed_dropout(torch.ones(3, 2), torch.arange(2), 0.5, key=0)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 400), st.integers(1, 20), st.integers(0, 2**31), st.integers(0, 50))
def test_epoch_batches_split_any_subset_consistently(n, num_batches, seed, epoch):
    nodes = np.random.default_rng(seed % 1000).choice(10 * n, n, replace=False)
    batches = epoch_batches(nodes, seed, epoch, num_batches)
    assert len(batches) == num_batches
    assert np.array_equal(np.sort(np.concatenate(batches)), np.sort(nodes))
    subset = nodes[::3]
    for whole, part in zip(batches, epoch_batches(subset, seed, epoch, num_batches), strict=True):
        assert np.array_equal(whole[np.isin(whole, subset)], part)  # a rank's share, in the same order


def test_epoch_batches_change_with_the_epoch_and_have_the_mean_size():
    nodes = np.arange(10_000)
    first, second = epoch_batches(nodes, 0, 0, 10), epoch_batches(nodes, 0, 1, 10)
    assert not np.array_equal(first[0], second[0])
    sizes = np.array([len(b) for b in first])
    assert np.all(np.abs(sizes - 1000) < 5 * 30)  # binomial(10000, 0.1): sd 30


def test_keyed_model_needs_matching_blocks():
    model = KeyedDropoutModel(GraphSAGE(4, 2, hidden=3))
    with pytest.raises(GraphError, match="2 layers"):
        model(torch.ones(1, 4), [])
    with pytest.raises(GraphError, match="stages"):
        KeyedDropoutModel(torch.nn.Linear(2, 2))


# --- two processes against one ---

@pytest.fixture(scope="module")
def cora():
    return load_embedded_cora()


@pytest.mark.parametrize("method, io_threads", [("metis", 0), ("random", 4)])
def test_two_ranks_sample_train_and_infer_as_one_process(cora, tmp_path, method, io_threads):
    """Each rank's blocks, outputs (keyed dropout on), DDP gradients and layer-wise inference equal a single process
    over the whole graph, in float64, for GraphSAGE and GCN (whose whole-graph degrees come from the owners); the
    owners read features through the memory map, or with pread by 4 threads."""
    parts = partition_store(cora, tmp_path / "parts", 2, method=method)
    seeds = np.random.default_rng(0).choice(cora.num_nodes, 60, replace=False)
    np.save(tmp_path / "seeds.npy", seeds)
    call = 3
    done = _torchrun([str(HERE / "dist_worker.py"), str(tmp_path / "parts"), str(tmp_path / "seeds.npy"), str(call),
                      str(tmp_path), str(io_threads)])
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank-{r}.pt", weights_only=True) for r in range(2)]
    assert sorted(np.concatenate([r["seeds"].numpy() for r in ranks]).tolist()) == sorted(seeds.tolist())
    y = cora.y[torch.from_numpy(seeds)]
    for name, make in (("sage", GraphSAGE), ("gcn", GCN)):
        torch.manual_seed(0)
        model = KeyedDropoutModel(make(cora.num_features, 7, hidden=16, dropout=0.5)).double()
        sampler = NeighborSampler(cora, [4, 3], seed=11, degrees=name == "gcn")
        sampler.calls = call
        input_nodes, blocks = sampler.sample(seeds)
        logits = model(cora.x[input_nodes].double(), blocks, 1234)
        F.cross_entropy(logits, y, reduction="mean").backward()
        position = {int(s): i for i, s in enumerate(seeds)}
        for rank in ranks:
            rows = [position[int(s)] for s in rank["seeds"]]
            torch.testing.assert_close(rank[f"{name}_logits"], logits[rows].detach(), rtol=0, atol=1e-12)
        for key, parameter in model.named_parameters():
            for rank in ranks:  # DDP leaves the same averaged gradient on every rank
                torch.testing.assert_close(rank[f"{name}_grads"][key], parameter.grad, rtol=0, atol=1e-12)
        model.eval()
        with torch.no_grad():
            full = model.model(cora.x.double(), cora)
        for rank in ranks:
            torch.testing.assert_close(rank[f"{name}_inference"], full[rank["global_ids"]], rtol=0, atol=1e-10)
    if method == "random":  # half the neighbours are remote: the exchanges carried features
        assert ranks[0]["sage_bytes"] > 30 * cora.num_features * 4
    assert parts.report["edge_cut"] < 0.2 if method == "metis" else parts.report["edge_cut"] > 0.3


def _train_args(parts: Path, run_dir: Path, epochs: int, extra: list[str] = ()) -> list[str]:
    return ["-m", "fivefold.train.distributed", "--partitions", str(parts), "--run-dir", str(run_dir),
            "--fanout", "10,10", "--batch-size", "32", "--epochs", str(epochs), "--hidden", "64", "--lr", "0.01",
            "--weight-decay", "5e-4", "--no-progress", *extra]


def test_two_processes_reach_the_single_process_accuracy(cora, tmp_path):
    partition_store(cora, tmp_path / "two", 2, method="metis")
    partition_store(cora, tmp_path / "one", 1)
    done = _torchrun(_train_args(tmp_path / "two", tmp_path / "run-two", 8))
    assert done.returncode == 0, done.stderr[-3000:]
    two = json.loads((tmp_path / "run-two" / "metrics.json").read_text())
    one = train_distributed(tmp_path / "one", tmp_path / "run-one", fanouts=[10, 10], batch_size=32, epochs=8,
                            hidden=64, lr=0.01, weight_decay=5e-4, progress=False, echo=lambda *a: None)
    assert two["status"] == "finished" and two["final"]["steps"] == one["final"]["steps"]
    assert abs(two["final"]["test_acc"] - one["final"]["test_acc"]) <= 0.01
    assert abs(two["final"]["val_acc"] - one["final"]["val_acc"]) <= 0.01
    assert one["final"]["test_acc"] > 0.7  # it learned
    for a, b in zip(two["evaluations"], one["evaluations"], strict=True):
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-3 * max(1.0, b["train_loss"])


def test_the_trainer_frees_its_ddp_module_before_the_group(cora, tmp_path):
    """DistributedDataParallel sits in reference cycles and holds the group; alive at interpreter exit after
    ``destroy_process_group``, gloo's teardown aborted a rank now and then ("terminate called without an active
    exception", 4 of 24 two-rank runs in a scratch reproduction). The trainer collects it before it destroys the
    group: none is left even with the garbage collector off."""
    partition_store(cora, tmp_path / "one", 1)
    enabled = gc.isenabled()
    gc.disable()
    try:
        train_distributed(tmp_path / "one", tmp_path / "run", fanouts=[5, 5], batch_size=64, steps=2, hidden=8,
                          evaluate=False, progress=False, echo=lambda *a: None)
        alive = [o for o in gc.get_objects() if type(o) is DistributedDataParallel]
    finally:
        if enabled:
            gc.enable()
    assert not alive


def test_sampled_evaluation_is_the_same_with_two_processes(cora, tmp_path):
    """Sampled evaluation on about 300 validation and 300 test nodes: the same nodes and blocks, hence the same
    accuracies, with 1 and 2 processes."""
    partition_store(cora, tmp_path / "two", 2, method="fennel")
    partition_store(cora, tmp_path / "one", 1)
    extra = ["--eval-mode", "sampled", "--eval-nodes", "300", "--float64"]
    done = _torchrun(_train_args(tmp_path / "two", tmp_path / "run-two", 4, extra))
    assert done.returncode == 0, done.stderr[-3000:]
    two = json.loads((tmp_path / "run-two" / "metrics.json").read_text())
    one = train_distributed(tmp_path / "one", tmp_path / "run-one", fanouts=[10, 10], batch_size=32, epochs=4,
                            hidden=64, lr=0.01, weight_decay=5e-4, eval_mode="sampled", eval_nodes=300,
                            dtype=torch.float64, progress=False, echo=lambda *a: None)
    for a, b in zip(two["evaluations"], one["evaluations"], strict=True):
        assert a["val_acc"] == pytest.approx(b["val_acc"], abs=1e-12)
        assert a["test_acc"] == pytest.approx(b["test_acc"], abs=1e-12)
    assert one["final"]["val_acc"] > 0.5
    selected = json.loads((tmp_path / "run-two" / "config.json").read_text())["eval_selected"]
    assert selected == one["config"]["eval_selected"]
    assert 240 < selected[0] < 360 and 240 < selected[1] < 360  # of 500 and 1,000: about 300 each


def test_a_killed_worker_is_survived_and_the_run_resumes_from_its_checkpoint(cora, tmp_path):
    """Under torchrun --max-restarts=1, SIGKILL one of two workers mid-run: the group restarts, resumes from the last
    state (checkpoints every 10 steps), runs every step after it exactly once more and ends with the weights of an
    uninterrupted run (float64)."""
    partition_store(cora, tmp_path / "two", 2, method="metis")
    partition_store(cora, tmp_path / "one", 1)
    run_dir = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    command = [*TORCHRUN, "--nproc_per_node=2", "--max-restarts=1",
               *_train_args(tmp_path / "two", run_dir, 12, ["--checkpoint-every", "10", "--float64",
                                                             "--evaluate-every", "1000"])]
    output = open(tmp_path / "torchrun.log", "w")  # a file, not a pipe nobody reads while it runs
    process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    log = run_dir / "steps.jsonl"
    killed_after = None
    try:
        deadline = time.time() + 240
        while time.time() < deadline and process.poll() is None:
            if log.is_file():
                lines = log.read_text().split("\n")[:-1]  # complete lines only
                if len(lines) >= 25 and (run_dir / "state.pt").is_file():
                    killed_after = json.loads(lines[-1])["step"]
                    os.kill(int((run_dir / "rank-1.pid").read_text()), signal.SIGKILL)
                    break
            time.sleep(0.05)
        assert killed_after is not None, "the run ended before the test could kill a worker"
        process.wait(timeout=300)
    finally:
        if process.poll() is None:  # never leave the group running
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        output.close()
    assert process.returncode == 0, (tmp_path / "torchrun.log").read_text()[-3000:]
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    first = [r["step"] for r in rows if r["attempt"] == 0]
    second = [r["step"] for r in rows if r["attempt"] == 1]
    total = 12 * 5  # 140 training nodes in batches of about 32
    assert first == list(range(len(first))) and first[-1] >= killed_after
    resumed = second[0]
    assert resumed % 10 == 0 and resumed <= first[-1] + 1  # from the last checkpoint, nothing skipped
    assert second == list(range(resumed, total))  # every later step once
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "finished" and metrics["attempt"] == 1 and metrics["final"]["steps"] == total
    reference = train_distributed(tmp_path / "one", tmp_path / "run-one", fanouts=[10, 10], batch_size=32, epochs=12,
                                  hidden=64, lr=0.01, weight_decay=5e-4, evaluate_every=1000, checkpoint_every=10,
                                  dtype=torch.float64, progress=False, echo=lambda *a: None)
    assert reference["final"]["steps"] == total
    resumed_state = torch.load(run_dir / "state.pt", weights_only=True)["model"]
    reference_state = torch.load(tmp_path / "run-one" / "state.pt", weights_only=True)["model"]
    for key, value in reference_state.items():
        torch.testing.assert_close(resumed_state[key], value, rtol=0, atol=1e-9)


def test_row_exchange_refuses_a_negative_thread_count(cora, tmp_path):
    from fivefold.scale import open_partitions
    from fivefold.scale.distributed import RowExchange

    parts = partition_store(cora, tmp_path / "one", 1)
    with pytest.raises(OptionError, match="io_threads"):
        RowExchange(open_partitions(parts.path), exchange=None, io_threads=-1)


def test_the_trainer_refuses_a_partition_count_unlike_the_process_count(cora, tmp_path):
    partition_store(cora, tmp_path / "two", 2, method="random")
    with pytest.raises(Exception, match="2 parts but 1 processes"):
        train_distributed(tmp_path / "two", tmp_path / "run", steps=1, progress=False, echo=lambda *a: None)
