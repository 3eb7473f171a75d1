import json

import numpy as np
import pytest
import torch

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


def test_jodie_time_scale_follows_dyglibs_rule():
    """Per role, the gaps since a node's previous event in that role, a first event counted from the stream's
    start; the scale is the mean of the two roles' standard deviations."""
    from fivefold.temporal import EventStream
    from fivefold.train.presets import jodie_time_scale

    stream = EventStream(torch.tensor([0, 1, 0, 1]), torch.tensor([2, 2, 3, 2]), torch.tensor([10.0, 11.0, 13.0, 17.0]))
    source_gaps = [0.0, 1.0, 3.0, 6.0]  # node 0 at 10 (first: 10 - 10), 13; node 1 at 11 (first), 17
    target_gaps = [0.0, 1.0, 6.0, 3.0]  # node 2 at 10 (first), 11, 17; node 3 at 13 (first: 13 - 10)
    expected = (np.std(source_gaps) + np.std(target_gaps)) / 2
    assert abs(jodie_time_scale(stream, np.arange(4)) - expected) < 1e-12
    assert jodie_time_scale(stream, np.arange(1)) == 1.0  # no spread: the scale falls back to 1
