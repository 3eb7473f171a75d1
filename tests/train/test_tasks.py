import json

import pytest

from fivefold.errors import OptionError
from fivefold.train.tasks import settings, train_node_task


def test_settings_respect_every_explicit_value():
    defaults = {"epochs": 200, "dropout": 0.5, "patience": None}
    assert settings(defaults) == defaults
    assert settings(defaults, epochs=3, dropout=0.0, patience=None) == {"epochs": 3, "dropout": 0.0, "patience": None}
    with pytest.raises(TypeError, match="no defaults"):
        settings(defaults, lr=0.1)


def test_node_task_writes_a_run_with_the_values_it_used(tmp_path):
    result = train_node_task("cora", "gcn", epochs=3, dropout=0.0, runs_dir=tmp_path, progress=False)
    config = json.loads((result["run"] / "config.json").read_text())
    assert config["epochs"] == 3 and config["dropout"] == 0.0 and config["data"] == "embedded"
    metrics = json.loads((result["run"] / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 3 and metrics["final"]["test_acc"] == result["final"]["test_acc"]
    assert (result["run"] / "checkpoint.pt").exists() and (result["run"] / "curves.png").exists()
    with pytest.raises(OptionError, match="task must be one of"):
        train_node_task("pubmed", runs_dir=tmp_path)
