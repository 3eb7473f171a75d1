import json

import pytest

from fivefold.cli import main


def test_train_on_embedded_cora_writes_run_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("FIVEFOLD_DATA", raising=False)
    assert main(["train", "--epochs", "5", "--no-progress", "--runs-dir", str(tmp_path)]) == 0
    (run,) = list(tmp_path.iterdir())
    assert run.name.endswith("-cora-gcn")
    for name in ("config.json", "metrics.json", "checkpoint.pt", "curves.png"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 5
    assert 0.0 <= metrics["final"]["test_acc"] <= 1.0
    assert json.loads((run / "config.json").read_text())["data"] == "embedded"
    assert "test accuracy" in capsys.readouterr().out


@pytest.mark.parametrize("model", ["gat", "sage", "gin"])
def test_train_other_models_on_real_citeseer(data_root, tmp_path, model):
    assert main(["train", "--task", "citeseer", "--model", model, "--epochs", "2", "--no-progress",
                 "--data-root", str(data_root), "--runs-dir", str(tmp_path)]) == 0


def test_train_graph_task_cross_validates(data_root, tmp_path):
    assert main(["train", "--task", "MUTAG", "--epochs", "2", "--folds", "3", "--no-progress",
                 "--data-root", str(data_root), "--runs-dir", str(tmp_path)]) == 0
    (run,) = list(tmp_path.iterdir())
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["cross_validation"]["fold_curves"]) == 3


def test_datasets_lists_where(data_root, capsys):
    assert main(["datasets", "--data-root", str(data_root)]) == 0
    out = capsys.readouterr().out
    assert "citeseer" in out and "found" in out and "missing ind.pubmed.allx" in out


def test_help_lists_tasks_and_models(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for word in ("cora", "citeseer", "MUTAG", "gcn", "gat", "sage", "gin", "--epochs"):
        assert word in out


def test_bad_data_root_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--task", "citeseer", "--data-root", str(tmp_path / "none"), "--no-progress"]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("task,model", [("mnist", "c4"), ("mnist", "cnn"), ("adrenalmnist3d", "o")])
def test_train_image_task(data_root, tmp_path, task, model):
    folder = "mnist-train" if task == "mnist" else task
    if not (data_root / folder).is_dir():
        pytest.skip(f"{folder} not in the data folder")
    assert main(["train", "--task", task, "--model", model, "--limit", "128", "--epochs", "1", "--no-progress",
                 "--data-root", str(data_root), "--runs-dir", str(tmp_path)]) == 0
    (run,) = list(tmp_path.iterdir())
    final = json.loads((run / "metrics.json").read_text())["final"]
    rotated = final["test_acc_rotated_C4" if task == "mnist" else "test_acc_rotated_O"]
    if model != "cnn":  # a G-CNN scores its rotated test set exactly as the upright one
        assert rotated == final["test_acc"]
    assert (run / "curves.png").is_file() and (run / "checkpoint.pt").is_file()


def test_model_must_fit_the_task(capsys):
    assert main(["train", "--task", "mnist", "--model", "gcn"]) == 2
    assert "train_image_task (mnist): model must be one of ('c4', 'c8', 'cnn', 'd4'), got 'gcn'" in \
        capsys.readouterr().err
    assert main(["train", "--task", "cora", "--model", "c4"]) == 2
    assert "train_node_task: model must be one of ('gat', 'gcn', 'gin', 'sage'), got 'c4'" in capsys.readouterr().err


def test_cli_choices_match_the_tasks_and_help_imports_no_torch():
    import subprocess
    import sys

    from fivefold import cli
    from fivefold.train import tasks
    from fivefold.train.presets import IMAGE_MODELS, NODE_PRESETS

    assert (cli.NODE_TASKS, cli.GRAPH_TASKS, cli.IMAGE_TASKS) == (tasks.NODE_TASKS, tasks.GRAPH_TASKS,
                                                                  tuple(tasks.IMAGE_TASKS))
    assert cli.NODE_MODELS == tuple(sorted(NODE_PRESETS)) and cli.IMAGE_MODELS == tuple(sorted(IMAGE_MODELS))
    from fivefold.data import STREAMS
    from fivefold.train.presets import STREAM_MODELS
    assert cli.STREAM_NAMES == tuple(STREAMS) and cli.STREAM_MODELS == STREAM_MODELS
    from fivefold.scale.partition import BALANCES, METHODS
    assert cli.PARTITION_METHODS == METHODS and cli.PARTITION_BALANCES == BALANCES
    code = "import sys, fivefold.cli; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


@pytest.mark.parametrize("option, value, message", [
    ("--epochs", "0", "must be >= 1"), ("--epochs", "-3", "must be >= 1"), ("--lr", "0", "must be > 0"),
    ("--lr", "nan", "must be > 0"), ("--dropout", "1", "must be >= 0 and < 1"), ("--dropout", "-0.1", ">= 0"),
    ("--hidden", "0", "must be >= 1"), ("--limit", "0", "must be >= 1"), ("--folds", "1", "must be >= 2"),
    ("--weight-decay", "-1", "must be >= 0"), ("--patience", "0", "must be >= 1"), ("--epochs", "2.5", "integer"),
])
def test_numeric_options_are_checked_when_parsed(option, value, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", option, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: " in err and message in err


def test_train_on_an_event_stream_writes_a_loadable_run(data_root, tmp_path, capsys):
    from fivefold.errors import RunError
    from fivefold.train import load_run, predict_run

    assert main(["train", "--stream", "collegemsg", "--model", "edgebank", "--no-progress", "--runs-dir",
                 str(tmp_path), "--data-root", str(data_root)]) == 0
    (run,) = list(tmp_path.iterdir())
    for name in ("config.json", "metrics.json", "checkpoint.pt", "curves.png"):
        assert (run / name).is_file(), name
    final = json.loads((run / "metrics.json").read_text())["final"]
    assert 0.7 < final["transductive_random_ap"] < 0.85  # EdgeBank on CollegeMsg (DyGLib prints 76.20)
    assert "test AP" in capsys.readouterr().out
    loaded = load_run(run)
    assert loaded.model([0], [1], [1e9]).shape == (1,)  # scores with its memory of train and validation
    with pytest.raises(RunError, match="scores links"):
        predict_run(loaded)
    for argv, message in ((["--model", "tgn"], "is a temporal model: give --stream"),
                          (["--stream", "enron", "--model", "gcn"], "is not a temporal model"),
                          (["--stream", "enron", "--task", "cora"], "leave out --task")):
        with pytest.raises(SystemExit):
            main(["train", *argv])
        assert message in capsys.readouterr().err


def test_train_on_molecules_writes_a_run_that_predicts_smiles(data_root, tmp_path, capsys):
    pytest.importorskip("rdkit")
    from fivefold.train import load_run

    assert main(["train", "--molecules", "freesolv", "--epochs", "4", "--no-progress", "--runs-dir", str(tmp_path),
                 "--data-root", str(data_root)]) == 0
    (run,) = list(tmp_path.iterdir())
    for name in ("config.json", "metrics.json", "checkpoint.pt", "curves.png"):
        assert (run / name).is_file(), name
    final = json.loads((run / "metrics.json").read_text())["final"]
    assert final["test_rmse"] < 4.5  # FreeSolv's targets spread over about 4 kcal/mol (std); 4 epochs learn some
    assert "test_rmse" in capsys.readouterr().out
    loaded = load_run(run)
    assert loaded.config["features_version"] == 1 and loaded.config["split"] == "random"
    assert loaded.config["readout"] == "norm" and loaded.model.readout == "norm"
    # a run written before D-MPNN took chemprop's norm readout has no "readout" in its config: it used the mean
    from fivefold.train.saved import build_model
    old_config = {key: value for key, value in loaded.config.items() if key != "readout"}
    assert build_model(old_config).readout == "mean"
    smiles = tmp_path / "new.csv"
    smiles.write_text("smiles\nCCO\nC1CC\nc1ccccc1O\n")
    out = tmp_path / "predictions.csv"
    assert main(["predict", str(run), "--smiles", str(smiles), "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "row,smiles,expt" and lines[2] == "1,C1CC," and len(lines) == 4
    assert "unparsable 1" in capsys.readouterr().out
    for argv, message in ((["--model", "dmpnn"], "give --molecules"),
                          (["--molecules", "esol", "--model", "gcn"], "is not a molecule model"),
                          (["--scaffold"], "applies to --molecules only"),
                          (["--molecules", "esol", "--task", "cora"], "leave out --task")):
        with pytest.raises(SystemExit):
            main(["train", *argv])
        assert message in capsys.readouterr().err


def test_partition_command_writes_parts_and_prints_the_cut(tmp_path, capsys):
    from fivefold import cli
    from fivefold.data import load_embedded_cora
    from fivefold.scale import open_partitions, write_store

    write_store(tmp_path / "store", load_embedded_cora())
    command = ["partition", str(tmp_path / "store"), str(tmp_path / "parts"), "--parts", "2", "--method", "ldg"]
    assert cli.main(command) == 0
    out = capsys.readouterr().out
    assert "edge cut" in out and "torchrun --nproc_per_node=2 -m fivefold.train.distributed" in out
    parts = open_partitions(tmp_path / "parts")
    assert parts.num_parts == 2 and parts.method == "ldg"
    assert cli.main(command) == 2
    assert "already exists" in capsys.readouterr().err
