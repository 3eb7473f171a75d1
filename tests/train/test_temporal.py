"""fit_link_model's full_history: validation and test read the training-period events of the hidden nodes
(DyGLib's full neighbour sampler); training never does."""

import numpy as np
import torch

from fivefold.temporal import TGAT, EventStream
from fivefold.train.temporal import fit_link_model, test_link_model


def small_stream() -> EventStream:
    rng = np.random.default_rng(1)
    events = 400
    t = np.sort(rng.permutation(events * 10)[:events]).astype(float)  # distinct times
    return EventStream(rng.integers(0, 40, events), rng.integers(0, 40, events), t, num_nodes=40)


def test_full_history_adds_exactly_the_left_out_training_events_to_evaluation():
    stream = small_stream()
    split = stream.split(seed=0)
    t = stream.t.numpy()
    left_out = np.setdiff1d(np.flatnonzero(t <= split.val_time), split.train)
    assert len(left_out) > 0  # the hidden nodes had training-period events
    fitted = {}
    for full in (False, True):
        torch.manual_seed(0)
        model = TGAT(40, time_dim=4, embedding_dim=6, neighbours=5, strategy="recent")
        fitted[full] = fit_link_model(model, stream, split, epochs=2, lr=1e-3, full_history=full)
        expected = len(split.train) + len(split.val) + (len(left_out) if full else 0)
        assert model.history.num_events == expected
        test_link_model(model, stream, split, fitted[full], ranking_count=5)
    # training is the same either way (the first epoch's loss), validation differs
    assert fitted[True]["history"][0]["train_loss"] == fitted[False]["history"][0]["train_loss"]
    assert fitted[True]["history"][0]["val_random_ap"] != fitted[False]["history"][0]["val_random_ap"]
    # the kept training state, read by the new-node validation pass, holds them too
    model = TGAT(40, time_dim=4, embedding_dim=6, neighbours=5, strategy="recent")
    model.load_state_dict(fitted[True]["train_state"])
    assert model.history.num_events == len(split.train) + len(left_out)
