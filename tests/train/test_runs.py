"""Run folders that are complete or visibly not, checksummed checkpoints, load_run and `fivefold predict`.

The command-line tests run the real `fivefold` entry point in a subprocess."""

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fivefold.errors import RunError
from fivefold.train import RunFolder, load_run

ENTRY = Path(sys.executable).parent / "fivefold"


def fivefold(*args, env=None, **options):
    """Run the installed `fivefold` command (the console script) and return the CompletedProcess."""
    command = [str(ENTRY)] if ENTRY.exists() else [sys.executable, "-m", "fivefold.cli"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    environment.pop("FIVEFOLD_DATA", None)
    return subprocess.run([*command, *args], capture_output=True, text=True, env=environment, timeout=600,
                          **options)


def only_run(runs: Path) -> Path:
    (run,) = list(runs.iterdir())
    return run


def metrics_of(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_finished_run_records_status_and_checksum_and_loads(tmp_path):
    done = fivefold("train", "--epochs", "3", "--runs-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    run = only_run(tmp_path)
    metrics = metrics_of(run)
    assert metrics["status"] == "finished"
    import hashlib

    assert metrics["checkpoint"]["sha256"] == hashlib.sha256((run / "checkpoint.pt").read_bytes()).hexdigest()
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    loaded = load_run(run)
    assert loaded.config["model"] == "gcn" and not loaded.model.training
    predicted = fivefold("predict", str(run))
    assert predicted.returncode == 0, predicted.stderr
    lines = (run / "predictions.csv").read_text().splitlines()
    assert lines[0] == "node,prediction," + ",".join(f"p{c}" for c in range(7)) + ",split"
    assert len(lines) == 1 + 2708
    accuracy = float(predicted.stdout.split("test_accuracy ")[1].split()[0].rstrip(","))
    assert accuracy == pytest.approx(metrics["final"]["test_acc"], abs=1e-6)


def test_flipped_byte_in_checkpoint_is_refused(tmp_path):
    assert fivefold("train", "--epochs", "2", "--runs-dir", str(tmp_path)).returncode == 0
    run = only_run(tmp_path)
    data = bytearray((run / "checkpoint.pt").read_bytes())
    data[len(data) // 2] ^= 0x01
    (run / "checkpoint.pt").write_bytes(bytes(data))
    with pytest.raises(RunError, match="checkpoint.pt is corrupted"):
        load_run(run)
    refused = fivefold("predict", str(run))
    assert refused.returncode == 2 and "corrupted" in refused.stderr and "Traceback" not in refused.stderr


def test_unfinished_run_is_refused(tmp_path):
    run = RunFolder("x", tmp_path)
    run.write_json("config.json", {"kind": "node"})
    with pytest.raises(ValueError, match="boom"), run.running():
        raise ValueError("boom")
    metrics = metrics_of(run.path)
    assert metrics["status"] == "failed" and metrics["error"] == "ValueError: boom"
    with pytest.raises(RunError, match="did not finish: its status is 'failed' \\(ValueError: boom\\)"):
        load_run(run.path)


@pytest.mark.parametrize("signal_number, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_marks_run_interrupted(tmp_path, signal_number, code):
    command = [str(ENTRY)] if ENTRY.exists() else [sys.executable, "-m", "fivefold.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("FIVEFOLD_DATA", None)
    def default_signals():  # a shell's background job starts with SIGINT ignored, and Python then never sees it
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    process = subprocess.Popen([*command, "train", "--epochs", "1000000", "--runs-dir", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               preexec_fn=default_signals)
    deadline = time.time() + 120
    while time.time() < deadline:
        runs = list(tmp_path.iterdir())
        if runs and (runs[0] / "metrics.json").is_file() and metrics_of(runs[0])["status"] == "running":
            break
        time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("the run never reported status running")
    time.sleep(1.0)  # inside the training loop
    process.send_signal(signal_number)
    try:
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()  # never leave a training process behind when the signal was not obeyed
    assert process.returncode == code, err
    metrics = metrics_of(only_run(tmp_path))
    assert metrics["status"] == "interrupted" and "interrupted" in err and "Traceback" not in err
    assert not (only_run(tmp_path) / "checkpoint.pt").exists()


SWALLOWED = """
import ctypes, os, signal, sys, time
from fivefold.train.run import RunFolder, RunInterrupted

def callback():  # the signal lands here, inside a C callback: ctypes prints the handler's exception and drops it
    os.kill(os.getpid(), getattr(signal, sys.argv[2]))
    time.sleep(0.2)

run = RunFolder("swallowed", sys.argv[1])
try:
    with run.running():
        ctypes.CFUNCTYPE(None)(callback)()
        print("dropped", flush=True)
        deadline = time.time() + 20
        while time.time() < deadline:  # the training loop goes on
            time.sleep(0.05)
except RunInterrupted as exc:
    sys.exit(128 + exc.signal_number)
sys.exit(0)
"""


@pytest.mark.parametrize("name, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_signal_dropped_inside_a_c_callback_is_raised_again(tmp_path, name, code):
    """numba's compiler calls back into Python through ctypes; a SIGTERM or Ctrl-C landing there raised an exception
    that was printed and dropped, and the run went on (seen as hung CLI tests while a kernel compiled: SIGTERM in an
    earlier session, SIGINT in a clean-clone CI run on 2026-12-05)."""
    def default_signals():  # a background job starts with SIGINT ignored, and Python then installs no handler
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    done = subprocess.run([sys.executable, "-c", SWALLOWED, str(tmp_path), name], capture_output=True, text=True,
                          timeout=120, preexec_fn=default_signals)
    assert "dropped" in done.stdout  # the first exception did not get out of the callback
    assert done.returncode == code, done.stderr
    assert metrics_of(only_run(tmp_path))["status"] == "interrupted"


def test_full_disk_fails_loudly_and_leaves_no_truncated_checkpoint(tmp_path):
    """A file-size limit below the checkpoint's size stands in for a full disk: the write fails with EFBIG."""
    limit = 60_000  # config.json and metrics.json are a few kB; Cora's GCN checkpoint is about 94 kB

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    failed = fivefold("train", "--epochs", "2", "--runs-dir", str(tmp_path), preexec_fn=small_files)
    assert failed.returncode == 2 and "could not write" in failed.stderr and "checkpoint.pt" in failed.stderr
    run = only_run(tmp_path)
    assert not (run / "checkpoint.pt").exists() and not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    metrics = metrics_of(run)
    assert metrics["status"] == "failed" and "checkpoint.pt" in metrics["error"]


def test_runs_dir_and_data_root_errors_are_one_line(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    for runs_dir, message in ((a_file, "is a file, not a folder"), (a_file / "sub", "cannot create runs directory")):
        result = fivefold("train", "--epochs", "1", "--runs-dir", str(runs_dir))
        assert result.returncode == 2 and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    result = fivefold("train", "--task", "citeseer", "--data-root", str(a_file))
    assert result.returncode == 2 and "is a file, not a folder" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to a read-only folder")
def test_read_only_runs_dir_is_refused(tmp_path):
    read_only = tmp_path / "ro"
    read_only.mkdir(mode=0o500)
    result = fivefold("train", "--epochs", "1", "--runs-dir", str(read_only))
    assert result.returncode == 2 and "not writable" in result.stderr


def test_too_many_folds_for_a_class_is_refused_before_training(data_root, tmp_path):
    result = fivefold("train", "--task", "MUTAG", "--folds", "100", "--data-root", str(data_root),
                      "--runs-dir", str(tmp_path))
    assert result.returncode == 2
    assert "100 folds, but class 0 has only 63 members" in result.stderr and not list(tmp_path.iterdir())


def test_graph_task_writes_checkpoint_loss_panel_and_predicts(data_root, tmp_path):
    result = fivefold("train", "--task", "MUTAG", "--epochs", "2", "--folds", "3", "--data-root", str(data_root),
                      "--runs-dir", str(tmp_path), env={"PYTHONWARNINGS": "error::UserWarning"})
    assert result.returncode == 0, result.stderr
    run = only_run(tmp_path)
    metrics = metrics_of(run)
    assert metrics["status"] == "finished" and len(metrics["cross_validation"]["train_loss_curve"]) == 2
    assert (run / "checkpoint.pt").is_file() and (run / "curves.png").is_file()
    loaded = load_run(run)
    assert len(loaded.model.folds) == 3
    predicted = fivefold("predict", str(run), "--data-root", str(data_root), "--out", str(tmp_path / "p.csv"))
    assert predicted.returncode == 0, predicted.stderr
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 1 + 188


def test_loss_panel_is_drawn_for_graph_runs(tmp_path):
    run = RunFolder("g", tmp_path)
    import matplotlib

    matplotlib.use("Agg")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run.plot_curves([{"epoch": 1, "train_loss": 0.7, "test_acc": 0.5}, {"epoch": 2, "train_loss": 0.5,
                                                                              "test_acc": 0.6}])
    assert (run.path / "curves.png").stat().st_size > 1000


def test_mismatched_config_is_a_run_error(tmp_path):
    assert fivefold("train", "--epochs", "2", "--runs-dir", str(tmp_path)).returncode == 0
    run = only_run(tmp_path)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "hidden": 32}))
    with pytest.raises(RunError, match="do not describe the same model"):
        load_run(run)
    del config["hidden"]
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunError, match="missing 'hidden'"):
        load_run(run)


def test_checkpoint_loads_with_weights_only(tmp_path):
    run = RunFolder("w", tmp_path)
    run.save_checkpoint({"model_state": {"w": torch.ones(2)}, "config": {"kind": "node", "versions": {"torch": "x"}}})
    state = torch.load(run.path / "checkpoint.pt", weights_only=True)
    assert torch.equal(state["model_state"]["w"], torch.ones(2))


def test_image_run_predicts_your_own_images(data_root, tmp_path):
    if not (data_root / "mnist-train").is_dir():
        pytest.skip("mnist-train not in the data folder")
    import numpy as np

    runs = tmp_path / "runs"
    result = fivefold("train", "--task", "mnist", "--model", "cnn", "--limit", "64", "--data-root", str(data_root),
                      "--runs-dir", str(runs))
    assert result.returncode == 0, result.stderr
    run = only_run(runs)
    assert json.loads((run / "config.json").read_text())["limit"] == 64
    digits = np.random.default_rng(0).integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "digits.npy", digits)
    predicted = fivefold("predict", str(run), "--images", str(tmp_path / "digits.npy"))
    assert predicted.returncode == 0, predicted.stderr
    lines = (run / "predictions.csv").read_text().splitlines()
    assert lines[0].startswith("image,prediction,p0,") and len(lines) == 6
    expected = load_run(run).model(torch.from_numpy(digits).float()[:, None] / 255).argmax(1).tolist()
    assert [int(line.split(",")[1]) for line in lines[1:]] == expected
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 28, 28), dtype=np.uint8))
    refused = fivefold("predict", str(run), "--images", str(tmp_path / "bad.npy"))
    assert refused.returncode == 2 and "one channel" in refused.stderr
    np.save(tmp_path / "big.npy", np.full((2, 28, 28), 200.0))
    refused = fivefold("predict", str(run), "--images", str(tmp_path / "big.npy"))
    assert refused.returncode == 2 and "must lie in [0, 1]" in refused.stderr
