"""fivefold train --store: mini-batch training over a store from the command line, its run folder and predictions."""

import csv
import json

import numpy as np
import pytest

from fivefold.cli import main
from fivefold.scale import open_store, rmat_store
from fivefold.train import load_run, predict_run


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return rmat_store(tmp_path_factory.mktemp("stores") / "rmat", 3000, 30000, num_features=16, num_classes=4,
                      seed=2)


def test_train_on_a_store_writes_a_run_that_predicts(store, tmp_path, capsys):
    assert main(["train", "--store", str(store.path), "--steps", "60", "--evaluate-every", "30", "--batch-size",
                 "128", "--fanout", "5,3", "--hidden", "32", "--lr", "0.01", "--no-progress", "--runs-dir",
                 str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "sampled edges/s" in out and "test accuracy" in out
    (run,) = list(tmp_path.iterdir())
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "finished"
    rows = metrics["evaluations"]
    assert [row["step"] for row in rows] == [30, 60]
    assert all(row["edges_per_s"] > 0 and row["batches_per_s"] > 0 for row in rows)
    final = metrics["final"]
    assert final["val_acc"] > 0.4  # 4 planted classes: chance is 0.25
    config = json.loads((run / "config.json").read_text())
    assert config["kind"] == "store" and config["fanouts"] == [5, 3] and config["store"]["num_edges"] == 30000
    assert (run / "curves.png").is_file()
    loaded = load_run(run)
    header, predictions, summary = predict_run(loaded)
    assert header[:2] == ["node", "prediction"] and len(predictions) == 3000
    test = np.flatnonzero(open_store(store.path).test_mask)
    assert summary["test_accuracy"] == pytest.approx(final["test_acc"], abs=1e-6)  # exact evaluation, all test nodes
    assert main(["predict", str(run), "--out", str(tmp_path / "p.csv")]) == 0
    with open(tmp_path / "p.csv") as handle:
        assert len(list(csv.reader(handle))) == 3001
    assert len(test) > 0


def test_sampled_evaluation_and_gcn(store, tmp_path):
    assert main(["train", "--store", str(store.path), "--model", "gcn", "--steps", "4", "--batch-size", "256",
                 "--eval-mode", "sampled", "--eval-nodes", "100", "--no-progress", "--runs-dir", str(tmp_path)]) == 0
    (run,) = list(tmp_path.iterdir())
    assert json.loads((run / "config.json").read_text())["eval_mode"] == "sampled"


@pytest.mark.parametrize("argv,message", [
    (["--fanout", "15,10"], "applies to --store only"),
    (["--store", "S", "--task", "cora"], "leave out --task"),
    (["--store", "S", "--steps", "3", "--epochs", "2"], "--epochs or --steps"),
    (["--store", "S", "--fanout", "15,0"], "fan-outs must be"),
])
def test_store_options_are_checked(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(["train", *argv])
    assert message in capsys.readouterr().err


def test_missing_store_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--store", str(tmp_path / "none"), "--no-progress", "--runs-dir", str(tmp_path)]) == 2
    assert "not a graph store" in capsys.readouterr().err
