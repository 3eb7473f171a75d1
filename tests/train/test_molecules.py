"""The molecule training protocol: Noam schedule, target scaling, masked losses and scores, best-epoch selection."""

import math

import pytest
import torch

from fivefold.errors import OptionError
from fivefold.graphs import Graph
from fivefold.train.molecules import (
    TargetScaler,
    _masked_loss,
    fit_molecule_model,
    noam_schedule,
    predict_molecules,
    score_molecules,
)


def test_noam_schedule_warms_up_then_decays_to_the_final_rate():
    optimiser = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)
    schedule = noam_schedule(optimiser, warmup_steps=10, total_steps=110, init_lr=1e-4, max_lr=1e-3, final_lr=1e-5)
    rates = []
    for _ in range(111):
        rates.append(optimiser.param_groups[0]["lr"])
        optimiser.step()
        schedule.step()
    assert math.isclose(rates[0], 1e-4) and math.isclose(rates[5], 5.5e-4) and math.isclose(rates[10], 1e-3)
    assert math.isclose(rates[110], 1e-5, rel_tol=1e-9) and math.isclose(rates[60], 1e-4, rel_tol=1e-9)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))


def test_target_scaler_ignores_missing_labels_and_inverts():
    y = torch.tensor([[1.0, float("nan")], [3.0, 2.0], [5.0, 4.0]], dtype=torch.float64)
    scaler = TargetScaler.fit(y)
    assert torch.allclose(scaler.mean, torch.tensor([3.0, 3.0], dtype=torch.float64))
    assert torch.allclose(scaler.unscale(scaler.scale(y[1:])), y[1:])
    constant = TargetScaler.fit(torch.ones(4, 1, dtype=torch.float64))
    assert float(constant.std) == 1.0  # no division by zero


def test_masked_losses_and_scores():
    output = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    target = torch.tensor([[1.0, float("nan")], [1.0, 0.0]])
    assert math.isclose(float(_masked_loss(output, target, "regression", "mse")), (1 + 0 + 1) / 3, rel_tol=1e-6)
    assert math.isclose(float(_masked_loss(output, target, "regression", "l1")), 2 / 3, rel_tol=1e-6)
    bce = _masked_loss(output, target, "classification", "mse")
    expected = (math.log(2) + math.log(1 + math.exp(-1)) + math.log(1 + math.exp(-1))) / 3
    assert math.isclose(float(bce), expected, rel_tol=1e-6)
    scores = score_molecules(torch.tensor([[0.9, 0.2], [0.1, 0.8], [0.8, 0.7]], dtype=torch.float64),
                             torch.tensor([[1.0, 0.0], [0.0, float("nan")], [1.0, 0.0]], dtype=torch.float64),
                             "classification")
    assert scores == {"roc_auc": 1.0}  # the second target has one class only among its labels: left out
    errors = score_molecules(torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [3.0]]), "regression")
    assert math.isclose(errors["rmse"], math.sqrt(0.5), rel_tol=1e-6) and math.isclose(errors["mae"], 0.5)


class _Sum(torch.nn.Module):
    """Predicts a weighted sum of node features per graph."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, batch):
        from fivefold.graphs import global_sum_pool

        return self.linear(global_sum_pool(batch.x, batch))


def _graphs(count: int, seed: int) -> list[Graph]:
    generator = torch.Generator().manual_seed(seed)
    graphs = []
    for _ in range(count):
        x = torch.rand(int(torch.randint(2, 6, (1,), generator=generator)), 2, generator=generator)
        target = 3.0 * x[:, 0].sum() - x[:, 1].sum() + 10.0
        graphs.append(Graph(torch.zeros(2, 0, dtype=torch.long), x=x, graph_y=target.reshape(1).double()))
    return graphs


def test_fit_learns_a_linear_target_and_keeps_the_best_epoch():
    train, val = _graphs(200, 0), _graphs(50, 1)
    torch.manual_seed(0)
    model = _Sum()
    fitted = fit_molecule_model(model, train, val, task="regression", epochs=30, batch_size=16, max_lr=0.05,
                                init_lr=0.005, final_lr=0.005, progress=False)
    best = min(fitted.history, key=lambda row: row["val_loss"])
    assert fitted.best["epoch"] == best["epoch"]
    predictions = predict_molecules(model, val, task="regression", scaler=fitted.scaler)
    assert score_molecules(predictions, torch.stack([g.graph_y for g in val]), "regression")["rmse"] < 0.1
    with pytest.raises(OptionError):
        fit_molecule_model(model, train, val, task="ranking")
    with pytest.raises(OptionError, match="graph_y"):
        fit_molecule_model(model, [Graph(torch.zeros(2, 0, dtype=torch.long), x=torch.ones(1, 2))], val,
                           task="regression")
