import pytest
import torch
from torch import nn

from fivefold.train import EarlyStopping, KeepBest, RandomSubsets, ShuffledBatches, cosine_schedule, fit


def _problem(seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(40, 3, generator=generator)
    y = (x[:, 0] > 0).long()
    return x, y


def _loss(x, y):
    return lambda model, index: nn.functional.cross_entropy(model(x[index]), y[index])


def test_batches_cover_the_data_and_reshuffle():
    batches = ShuffledBatches(10, 4, seed=1)
    first, second = [b.tolist() for b in batches], [b.tolist() for b in batches]
    assert len(batches) == 3 and [len(b) for b in first] == [4, 4, 2]
    assert sorted(sum(first, [])) == list(range(10)) and first != second
    assert [len(b) for b in ShuffledBatches(10, 4, seed=1, drop_last=True)] == [4, 4]
    assert [b.tolist() for b in ShuffledBatches(10, 4, seed=1)] == first  # the seed decides the order
    subsets = list(RandomSubsets(6, 4, per_epoch=5, seed=0))
    assert len(subsets) == 5 and all(len(set(s.tolist())) == 4 for s in subsets)
    with pytest.raises(ValueError):
        ShuffledBatches(3, 0)


def test_fit_trains_and_records_one_row_per_epoch():
    x, y = _problem()
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    accuracy = lambda m: {"acc": float((m(x).argmax(1) == y).float().mean())}  # noqa: E731
    history = fit(model, ShuffledBatches(40, 8), loss=_loss(x, y), optimiser=optimiser,
                  schedule=cosine_schedule(optimiser, 5 * 5), epochs=5, metrics=accuracy, progress=False)
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5] and history[-1]["step"] == 25
    assert history[-1]["train_loss"] < history[0]["train_loss"] and history[-1]["acc"] > 0.8
    assert optimiser.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # the cosine ends at zero


def test_train_loss_is_weighted_by_count_and_stats_are_averaged():
    x, y = _problem()
    model = nn.Linear(3, 2)
    seen = []

    def loss(model, index):
        value = nn.functional.cross_entropy(model(x[index]), y[index])
        seen.append((float(value.detach()), len(index)))
        return value, {"count": len(index), "hits": len(index) * 0.5}

    history = fit(model, ShuffledBatches(40, 16), loss=loss, optimiser=torch.optim.SGD(model.parameters(), lr=0.0),
                  epochs=1, progress=False)
    expected = sum(v * n for v, n in seen) / 40
    assert history[0]["train_loss"] == pytest.approx(expected) and history[0]["hits"] == pytest.approx(0.5)


def test_steps_end_mid_epoch_with_an_evaluation_and_evaluate_every():
    x, y = _problem()
    model = nn.Linear(3, 2)
    history = fit(model, ShuffledBatches(40, 8), loss=_loss(x, y), optimiser=torch.optim.SGD(model.parameters(), 0.1),
                  steps=7, metrics=lambda m: {"ok": 1.0}, progress=False)
    assert [(row["epoch"], row["step"]) for row in history] == [(1, 5), (2, 7)]
    history = fit(model, ShuffledBatches(40, 8), loss=_loss(x, y), optimiser=torch.optim.SGD(model.parameters(), 0.1),
                  steps=7, evaluate_every=3, progress=False)
    assert [row["step"] for row in history] == [3, 6, 7] and all("loss" in row for row in history)
    with pytest.raises(ValueError, match="exactly one of epochs and steps"):
        fit(model, [0], loss=_loss(x, y), optimiser=torch.optim.SGD(model.parameters(), 0.1), epochs=1, steps=1)
    with pytest.raises(ValueError, match="schedule_every"):
        fit(model, [0], loss=_loss(x, y), optimiser=torch.optim.SGD(model.parameters(), 0.1), epochs=1,
            schedule_every="batch")


def test_keep_best_restores_the_best_weights_and_early_stopping_stops():
    x, y = _problem()
    model = nn.Linear(3, 2)
    scores = iter([0.2, 0.9, 0.5, 0.4, 0.3, 0.95])
    weights = []

    def metric(m):
        weights.append(m.weight.detach().clone())
        return {"score": next(scores)}

    best = KeepBest.highest("score")
    stop = EarlyStopping(lambda row: row["score"] >= best.best_row["score"], patience=2)
    history = fit(model, ShuffledBatches(40, 40), loss=_loss(x, y), optimiser=torch.optim.SGD(model.parameters(), 1.0),
                  epochs=6, metrics=metric, callbacks=[best, stop], progress=False)
    assert len(history) == 4  # epochs 3 and 4 do not improve on epoch 2
    assert best.best_row["epoch"] == 2 and torch.equal(model.weight, weights[1])


def test_epoch_schedule_and_quiet_output_when_not_a_terminal(capsys):
    x, y = _problem()
    model = nn.Linear(3, 2)
    optimiser = torch.optim.SGD(model.parameters(), lr=1.0)
    fit(model, ShuffledBatches(40, 8), loss=_loss(x, y), optimiser=optimiser,
        schedule=torch.optim.lr_scheduler.StepLR(optimiser, 1, 0.5), schedule_every="epoch", epochs=3)
    assert optimiser.param_groups[0]["lr"] == pytest.approx(0.125)
    assert capsys.readouterr().err == ""  # standard error is not a terminal here: no progress bar


def test_print_rows_writes_one_line_per_evaluation(capsys):
    from fivefold.train import PrintRows

    x, y = _problem()
    model = nn.Linear(3, 2)
    fit(model, ShuffledBatches(40, 20), loss=_loss(x, y), optimiser=torch.optim.SGD(model.parameters(), 0.1),
        epochs=2, callbacks=[PrintRows(["train_loss"])], progress=False)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2 (step 4): train_loss ")


def test_epochs_with_evaluate_every_end_with_a_row_and_bad_numbers_are_option_errors():
    from fivefold.errors import OptionError

    x, y = _problem()
    model = nn.Linear(3, 2)
    history = fit(model, ShuffledBatches(10, 2), loss=_loss(x, y), optimiser=torch.optim.SGD(model.parameters(), 0.1),
                  epochs=2, evaluate_every=3, progress=False)
    assert [row["step"] for row in history] == [3, 6, 9, 10]
    assert [len(b) for b in ShuffledBatches(3, 8, drop_last=True)] == [3]  # one batch of everything
    for bad in (lambda: EarlyStopping(lambda row: True, patience=0), lambda: ShuffledBatches(0, 2),
                lambda: fit(model, [0], loss=_loss(x, y), optimiser=None, epochs=0)):
        with pytest.raises(OptionError, match="positive integer"):
            bad()
