"""Temporal models: the attention equals its slow reference and has correct gradients; the memory follows the
published update rule (a slow reference); nothing leaks from an event at or after a query's time (hypothesis);
feeding a stream in pieces, saving and restoring the streaming state, and resetting are exact."""

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fivefold.errors import OptionError, StreamError
from fivefold.ops.metrics import average_precision
from fivefold.temporal import JODIE, TGAT, TGN, EdgeBank, EventStream, TemporalAttention
from fivefold.temporal.evaluation import LinkScores, NegativeSampler, link_pass, time_batches
from fivefold.temporal.memory import _RecurrentStep


def random_stream(seed: int, events: int = 240, nodes: int = 20, edge_dim: int = 0, ties: bool = True):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, events // 2 if ties else 10**6, events)).astype(float)
    features = rng.normal(size=(events, edge_dim)) if edge_dim else None
    return EventStream(rng.integers(0, nodes, events), rng.integers(0, nodes, events), t, features=features,
                       num_nodes=nodes)


def make(name: str, nodes: int, edge_dim: int = 0, dtype=torch.float64):
    torch.manual_seed(0)
    small = {"memory_dim": 6, "time_dim": 5}
    model = {"tgn": lambda: TGN(nodes, edge_dim, embedding_dim=7, neighbours=4, **small),
             "jodie": lambda: JODIE(nodes, edge_dim, time_scale=10.0, **small),
             "tgat": lambda: TGAT(nodes, edge_dim, time_dim=5, embedding_dim=7, neighbours=3, layers=2),
             "tgat-recent": lambda: TGAT(nodes, edge_dim, time_dim=5, embedding_dim=7, neighbours=3, layers=2,
                                         strategy="recent"),
             "tgat-residual": lambda: TGAT(nodes, edge_dim, time_dim=5, embedding_dim=7, neighbours=3, layers=2,
                                           residual=True),
             "edgebank": lambda: EdgeBank(nodes),
             "edgebank-fraction": lambda: EdgeBank(nodes, memory="recent_fraction", fraction=0.3),
             "edgebank-interval": lambda: EdgeBank(nodes, memory="repeat_interval"),
             "edgebank-threshold": lambda: EdgeBank(nodes, memory="repeat_threshold")}[name]()
    return model.to(dtype).eval()


@pytest.mark.parametrize("edge_dim", [0, 3])
@pytest.mark.parametrize("residual", [False, True])
def test_attention_equals_its_reference_and_has_correct_gradients(edge_dim, residual):
    torch.manual_seed(0)
    layer = TemporalAttention(6, edge_dim, 5, 7, heads=2, residual=residual,
                              attention_dim=11 if residual else None).double().eval()
    U, Q, k = 9, 11, 4
    h = torch.randn(U, 6, dtype=torch.double, requires_grad=True)
    self_index, neighbour_index = torch.randint(0, U, (Q,)), torch.randint(0, U, (Q, k))
    edge = torch.randn(Q, k, edge_dim, dtype=torch.double)
    dt = torch.rand(Q, k, dtype=torch.double) * 100
    mask = torch.rand(Q, k) > 0.3
    mask[0] = False  # a query without earlier events
    expected = layer.reference(h, self_index, neighbour_index, edge, dt, mask)
    torch.testing.assert_close(layer(h, self_index, neighbour_index, edge, dt, mask), expected, rtol=0, atol=1e-12)
    assert torch.autograd.gradcheck(lambda h, dt: layer(h, self_index, neighbour_index, edge, dt, mask),
                                    (h, dt.requires_grad_()))
    if residual:  # merged with other inputs (DyGLib: the raw node features), of another width
        layer = TemporalAttention(6, edge_dim, 5, 7, heads=2, residual=True, merge_dim=3).double().eval()
        raw = torch.randn(len(self_index), 3, dtype=torch.double, requires_grad=True)
        torch.testing.assert_close(layer(h, self_index, neighbour_index, edge, dt, mask, raw),
                                   layer.reference(h, self_index, neighbour_index, edge, dt, mask, raw), rtol=0,
                                   atol=1e-12)
        assert torch.autograd.gradcheck(lambda h, raw: layer(h, self_index, neighbour_index, edge, dt, mask, raw),
                                        (h, raw))


def slow_memory(stream: EventStream, bounds, memory, features=None):
    """The TGN memory rule event by event in plain Python: per batch, first apply each batch node's pending (last)
    message ``GRU([s_i, s_j, phi(t - last_i), e], s_i)`` from the stored states, then leave each node its last event
    of the batch as its pending message."""
    state = {n: torch.zeros(memory.memory_dim, dtype=torch.double) for n in range(stream.num_nodes)}
    last = {n: 0.0 for n in range(stream.num_nodes)}
    pending = {}
    for start, stop in bounds:
        nodes = sorted({int(x) for x in stream.src[start:stop]} | {int(x) for x in stream.dst[start:stop]})
        new_state = dict(state)
        for n in nodes:
            if n in pending:
                other, t, e = pending.pop(n)
                edge = features[e] if features is not None else torch.zeros(0, dtype=torch.double)
                message = torch.cat([state[n], state[other], memory.time(torch.tensor(t - last[n])).double(), edge])
                new_state[n] = memory.cell(message[None], state[n][None])[0]
                last[n] = t
        state = new_state
        for e in range(start, stop):
            s, d, t = int(stream.src[e]), int(stream.dst[e]), float(stream.t[e])
            pending[s] = (d, t, e)
            pending[d] = (s, t, e)
    return state, pending


@pytest.mark.parametrize("batch_size", [1, 7, 50])
def test_memory_follows_the_published_rule(batch_size):
    stream = random_stream(3, events=120, nodes=12, edge_dim=2)
    model = make("tgn", 12, edge_dim=2)
    with torch.no_grad():
        link_pass(model, stream, np.arange(len(stream)), batch_size=batch_size)
    bounds = time_batches(stream.t.numpy(), batch_size)
    state, pending = slow_memory(stream, bounds, model.memory, stream.features.double())
    for node in range(12):
        torch.testing.assert_close(model.memory.state[node], state[node], rtol=0, atol=1e-12)
        if node in pending:
            assert int(model.memory.pending_other[node]) == pending[node][0]
            assert int(model.memory.pending_event[node]) == pending[node][2]
        else:
            assert int(model.memory.pending_other[node]) == -1


@pytest.mark.parametrize("name", ["tgn", "jodie"])
def test_training_stores_the_states_the_prediction_computed(name):
    """In training, a batch's nodes take the memory states the batch's prediction computed (before the optimiser's
    step), as in the TGN reference code and torch_geometric; the cell is not run again with the new weights. The
    cell's split input projection equals torch's cell."""
    stream = random_stream(5, events=200, nodes=15, edge_dim=2)
    model = make(name, 15, edge_dim=2).train()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.5)
    link_pass(model, stream, np.arange(150), batch_size=25, optimiser=optimiser)
    src, dst, t = stream.src[150:175], stream.dst[150:175], stream.t[150:175]
    nodes = torch.unique(torch.cat([src, dst]))
    before = copy.deepcopy(model)
    with torch.no_grad():
        expected, _ = before.memory.read(nodes, before.features)
    loss = model(src, dst, t).square().mean()
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    assert not torch.equal(model.memory.cell.weight_ih, before.memory.cell.weight_ih)
    model.observe(src, dst, t, stream.features[150:175])
    torch.testing.assert_close(model.memory.state[nodes], expected, rtol=0, atol=1e-12)
    message = torch.randn(4, before.memory.cell.input_size, dtype=torch.float64)
    width = before.memory.memory_dim
    parts = list(message.split([width, width, message.shape[1] - 2 * width], dim=1))
    torch.testing.assert_close(before.memory._cell(parts), before.memory.cell(message, parts[0]), rtol=0,
                               atol=1e-12)


@pytest.mark.parametrize("cell", [torch.nn.GRUCell, torch.nn.RNNCell])
@pytest.mark.parametrize("hidden_needs_grad", [False, True])
def test_recurrent_step_equals_torch_cell_with_gradients(cell, hidden_needs_grad):
    """The memory's cell step (hidden weights summed into the message's, hand-written backward) equals torch's cell
    on ``cat(parts)`` with hidden ``parts[0]``, with autograd's gradients through torch's cell, and passes gradcheck
    (float64), with and without a gradient for the hidden state."""
    torch.manual_seed(0)
    reference = cell(9, 4).double()
    weights = [reference.weight_ih, reference.bias_ih, reference.weight_hh, reference.bias_hh]
    hidden = torch.randn(5, 4, dtype=torch.float64, requires_grad=hidden_needs_grad)
    stored = torch.randn(5, 3, dtype=torch.float64)
    learned = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    out = _RecurrentStep.apply(*weights, hidden, stored, learned)
    expected = reference(torch.cat([hidden, stored, learned], 1), hidden)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)
    grads = torch.autograd.grad(out.square().sum(), [*weights, learned] + ([hidden] if hidden_needs_grad else []))
    expected_grads = torch.autograd.grad(expected.square().sum(),
                                         [*weights, learned] + ([hidden] if hidden_needs_grad else []))
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
    inputs = (*weights, learned) + ((hidden,) if hidden_needs_grad else ())

    def step(w_ih, b_ih, w_hh, b_hh, learned, *maybe_hidden):
        return _RecurrentStep.apply(w_ih, b_ih, w_hh, b_hh, maybe_hidden[0] if maybe_hidden else hidden, stored,
                                    learned)

    assert torch.autograd.gradcheck(step, inputs)


@settings(max_examples=16, deadline=None)
@given(seed=st.integers(0, 10**6), name=st.sampled_from(["tgn", "jodie", "tgat", "tgat-residual", "edgebank",
                                                         "edgebank-fraction", "edgebank-interval",
                                                         "edgebank-threshold"]),
       batch_size=st.sampled_from([1, 9, 40]), in_batch_history=st.booleans())
def test_no_prediction_uses_an_event_at_or_after_its_time(seed, name, batch_size, in_batch_history):
    """Replacing every event at or after time T (other than the scored ones) changes no score of an event at T,
    whether or not each batch is recorded before it is scored."""
    stream = random_stream(seed, events=150, nodes=15)
    t = stream.t.numpy()
    cut = float(np.quantile(t, 0.6))
    model = make(name, 15)
    scores = link_pass(model, stream, np.arange(len(stream)), batch_size=batch_size,
                       in_batch_history=in_batch_history).positive
    rng = np.random.default_rng(seed + 1)
    at_cut = t == t[t >= cut][0]
    later = (t >= cut) & ~at_cut
    src, dst = stream.src.numpy().copy(), stream.dst.numpy().copy()
    src[later], dst[later] = rng.integers(0, 15, later.sum()), rng.integers(0, 15, later.sum())
    changed = EventStream(src, dst, t, num_nodes=15)
    model = make(name, 15)
    again = link_pass(model, changed, np.arange(len(stream)), batch_size=batch_size,
                      in_batch_history=in_batch_history).positive
    # float64: a leak would move scores by far more than the summation-order noise of a different batch mix
    torch.testing.assert_close(again[t <= t[at_cut][0]], scores[t <= t[at_cut][0]], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["tgn", "jodie", "tgat", "tgat-residual", "edgebank", "edgebank-fraction",
                                  "edgebank-interval", "edgebank-threshold"])
def test_pieces_checkpoints_and_reset_are_exact(name, tmp_path):
    stream = random_stream(5, events=200, nodes=16, edge_dim=0)
    events = np.arange(len(stream))
    bounds = time_batches(stream.t.numpy(), 20)
    middle = bounds[len(bounds) // 2][0]
    model = make(name, 16)

    def negatives():  # the same negatives in every pass, so each batch holds the same queries
        return {"random": NegativeSampler(stream, seed=0)}

    whole = link_pass(model, stream, events, batch_size=20, negatives=negatives()).positive
    model.reset()
    shared = negatives()
    first = link_pass(model, stream, events[:middle], batch_size=20, negatives=shared).positive
    torch.save(model.state_dict(), tmp_path / "model.pt")
    restored = make(name, 16)
    restored.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    second = link_pass(restored, stream, events[middle:], batch_size=20, negatives=shared).positive
    torch.testing.assert_close(torch.cat([first, second]), whole, rtol=0, atol=0)
    model.reset()
    again = link_pass(model, stream, events, batch_size=20, negatives=negatives()).positive
    torch.testing.assert_close(again, whole, rtol=0, atol=0)


def test_recorded_batches_make_tgat_independent_of_the_batch_size():
    """TGAT has no memory: when each batch is recorded before it is scored, a link at t reads every event strictly
    before t, so with the most recent neighbours the scores are the same for any batch size (as if fed one timestamp
    at a time; uniform draws are seeded per sampling call, so they differ). Without recording, a batch misses its own
    earlier events and the scores change."""
    stream = random_stream(11, events=200, nodes=15)
    events = np.arange(len(stream))
    name = "tgat-recent"
    scores = {size: link_pass(make(name, 15), stream, events, batch_size=size).positive for size in (1, 13, 60)}
    torch.testing.assert_close(scores[13], scores[1], rtol=0, atol=1e-12)
    torch.testing.assert_close(scores[60], scores[1], rtol=0, atol=1e-12)
    unrecorded = link_pass(make(name, 15), stream, events, batch_size=60, in_batch_history=False).positive
    assert (unrecorded - scores[1]).abs().max() > 1e-3


def test_recorded_events_wait_for_the_same_observe_and_survive_a_checkpoint(tmp_path):
    """record adds events to the history only; observe with the same events then updates the memory. A checkpoint
    taken in between resumes to the same state; other events or a second record are refused."""
    stream = random_stream(4, events=60, nodes=10, edge_dim=2)
    features = stream.features.double()
    model = make("tgn", 10, edge_dim=2)
    link_pass(model, stream, np.arange(40), batch_size=10)
    batch = slice(40, 50)
    src, dst, t = stream.src[batch], stream.dst[batch], stream.t[batch]
    memory_before = model.memory.state.clone()
    model.record(src, dst, t, features[batch])
    assert model.history.num_events == 50 and torch.equal(model.memory.state, memory_before)
    with pytest.raises(StreamError, match="wait for their observe"):
        model.record(stream.src[50:52], stream.dst[50:52], stream.t[50:52], features[50:52])
    with pytest.raises(StreamError, match="not the 10 recorded"):
        model.observe(src[:5], dst[:5], t[:5], features[40:45])
    torch.save(model.state_dict(), tmp_path / "model.pt")
    restored = make("tgn", 10, edge_dim=2)
    restored.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    for each in (model, restored):
        each.observe(src, dst, t, features[batch])
        assert each.pending is None and each.history.num_events == 50
    query = (stream.src[50:], stream.dst[50:], stream.t[50:])
    torch.testing.assert_close(restored(*query), model(*query), rtol=0, atol=0)
    unrecorded = make("tgn", 10, edge_dim=2)
    link_pass(unrecorded, stream, np.arange(40), batch_size=10, in_batch_history=False)
    unrecorded.observe(src, dst, t, features[batch])
    for name in ("state", "last_update", "pending_other", "pending_event"):
        torch.testing.assert_close(getattr(unrecorded.memory, name), getattr(model.memory, name), rtol=0, atol=0)
    with pytest.raises(StreamError, match="one entry per event"):
        model.record([0, 1], [2], [60.0, 60.0])
    # events out of time order are refused and leave no feature row behind: the next events keep their own
    with pytest.raises(StreamError, match="time order"):
        model.observe([0], [1], [0.5], torch.ones(1, 2, dtype=torch.float64))
    model.observe([2], [3], [60.0], torch.full((1, 2), 7.0, dtype=torch.float64))
    assert model.features.count == model.history.num_events == 51
    assert model.features.gather(torch.tensor([50]), torch.float64).tolist() == [[7.0, 7.0]]


@pytest.mark.parametrize("name", ["tgat", "tgat-recent", "tgat-residual"])
def test_inserted_history_reads_like_events_observed_in_order_and_leaves_memories(name):
    """insert_history puts past events (with their features) into the history at their times: a memory-less TGAT
    then scores exactly like one that observed every event in time order; TGN's memory does not change, and a
    pending record is refused."""
    stream = random_stream(8, events=120, nodes=12, edge_dim=3, ties=False)
    features = stream.features.double()
    left_out = np.random.default_rng(0).random(len(stream)) < 0.3
    kept, skipped = np.flatnonzero(~left_out), np.flatnonzero(left_out)
    full, partial = make(name, 12, edge_dim=3), make(name, 12, edge_dim=3)
    full.observe(stream.src, stream.dst, stream.t, features)
    partial.observe(stream.src[kept], stream.dst[kept], stream.t[kept], features[kept])
    partial.insert_history(stream.src[skipped], stream.dst[skipped], stream.t[skipped], features[skipped])
    times = torch.linspace(0, 1.1e6, 50, dtype=torch.float64)
    query = (torch.randint(0, 12, (50,)), torch.randint(0, 12, (50,)), times)
    torch.testing.assert_close(partial(*query), full(*query), rtol=0, atol=1e-12)
    tgn = make("tgn", 12, edge_dim=3)
    tgn.observe(stream.src[kept], stream.dst[kept], stream.t[kept], features[kept])
    memory = {key: value.clone() for key, value in tgn.memory.state_dict().items()}
    tgn.insert_history(stream.src[skipped], stream.dst[skipped], stream.t[skipped], features[skipped])
    for key, value in tgn.memory.state_dict().items():
        assert torch.equal(value, memory[key]), key
    assert tgn.history.num_events == tgn.features.count == len(stream)
    tgn.record([0], [1], [2e6], torch.ones(1, 3, dtype=torch.float64))
    with pytest.raises(StreamError, match="wait for their observe"):
        tgn.insert_history([0], [1], [0.0], torch.ones(1, 3, dtype=torch.float64))
    with pytest.raises(StreamError, match="features of shape"):
        full.insert_history([0], [1], [0.0])


def test_training_changes_parameters_and_is_deterministic():
    stream = random_stream(7, events=300, nodes=20)
    results = []
    for _ in range(2):
        model = make("tgn", 20, dtype=torch.float32).train()
        before = copy.deepcopy(model.state_dict())
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
        torch.manual_seed(1)
        scores = link_pass(model, stream, np.arange(300), batch_size=30, optimiser=optimiser,
                           negatives={"random": NegativeSampler(stream, seed=4)})
        results.append(scores.loss)
        assert not torch.equal(before["attention.query.weight"], model.state_dict()["attention.query.weight"])
    assert results[0] == results[1]


def test_time_batches_never_split_a_timestamp():
    times = np.array([0, 1, 1, 1, 2, 3, 3, 5], dtype=float)
    assert time_batches(times, 2) == [(0, 4), (4, 7), (7, 8)]
    assert time_batches(times, 100) == [(0, 8)]
    with pytest.raises(OptionError):
        time_batches(times, 0)
    # DyGLib's cuts, for comparisons only: every 3 events, ties split
    assert time_batches(times, 3, split_ties=True) == [(0, 3), (3, 6), (6, 8)]


def test_split_ties_lets_memory_see_its_own_timestamp_and_nothing_later():
    """With DyGLib's cuts a JODIE score at time t may change with an earlier batch's events at t (the comparison
    mode's known leak), but never with events after t."""
    stream = EventStream(torch.tensor([0, 1, 2, 3, 0, 1]), torch.tensor([1, 2, 3, 0, 2, 3]),
                         torch.tensor([1.0, 2.0, 2.0, 2.0, 3.0, 4.0]))
    events = np.arange(len(stream))

    def scores(src, split_ties=True):
        torch.manual_seed(0)
        model = JODIE(4, memory_dim=5, time_dim=3, seed=0).double().eval()
        changed = EventStream(torch.tensor(src), stream.dst, stream.t)
        return link_pass(model, changed, events, batch_size=2, split_ties=split_ties).positive

    base = scores([0, 1, 2, 3, 0, 1])
    later = scores([0, 1, 2, 3, 0, 2])  # only the last event (t = 4) differs
    torch.testing.assert_close(later[:5], base[:5], rtol=0, atol=0)
    # event 1 (t = 2, first batch) now touches node 3, the source of event 3 (t = 2, second batch)
    same_time = scores([0, 3, 2, 3, 0, 1])
    assert not torch.equal(same_time[3], base[3])  # DyGLib's cut: node 3's memory holds an event at t = 2
    torch.testing.assert_close(scores([0, 3, 2, 3, 0, 1], False)[3], scores([0, 1, 2, 3, 0, 1], False)[3],
                               rtol=0, atol=0)  # whole timestamps per batch: it does not


def test_edgebank_remembers_pairs_and_forgets_outside_its_window():
    bank = EdgeBank(5)
    bank.observe([0, 1], [1, 2], [1.0, 5.0])
    assert bank([0, 1, 2, 0], [1, 2, 0, 1], [6.0, 6.0, 6.0, 1.0]).tolist() == [1.0, 1.0, 0.0, 0.0]
    window = EdgeBank(5, window=2.0)
    window.observe([0, 1], [1, 2], [1.0, 5.0])
    assert window([0, 1], [1, 2], [6.0, 6.0]).tolist() == [0.0, 1.0]


def dyglib_edgebank_memory(src, dst, t, memory, fraction):
    """Slow reference: the pairs in DyGLib's EdgeBank memory built from a whole history at once (its
    ``edge_bank_*_memory`` functions, restated)."""
    pairs = list(zip(src.tolist(), dst.tolist(), strict=True))
    if memory == "unlimited":
        return set(pairs)
    if memory == "repeat_threshold":
        counts = {pair: pairs.count(pair) for pair in set(pairs)}
        threshold = np.mean(list(counts.values()))
        return {pair for pair, count in counts.items() if count >= threshold}
    if memory == "recent_fraction":
        start = np.quantile(t, 1 - fraction)
    else:  # repeat_interval
        gaps = []
        for pair in set(pairs):
            when = t[[i for i, other in enumerate(pairs) if other == pair]]
            gaps.append(np.mean(np.diff(when)) if len(when) > 1 else 0.0)
        start = t.max() - np.sum(gaps) / len(gaps)
    return {pair for pair, when in zip(pairs, t, strict=True) if when >= start}


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10**6), memory=st.sampled_from(["unlimited", "recent_fraction", "repeat_interval",
                                                           "repeat_threshold"]))
def test_edgebank_memories_equal_dyglibs_rules(seed, memory):
    """After observing a history in several batches, EdgeBank answers a later query iff the pair is in the memory
    DyGLib's rules build from the whole history."""
    rng = np.random.default_rng(seed)
    history = random_stream(seed, events=120, nodes=6)
    src, dst, t = history.src.numpy(), history.dst.numpy(), history.t.numpy()
    bank = EdgeBank(6, memory=memory, fraction=0.2) if memory == "recent_fraction" else EdgeBank(6, memory=memory)
    for chunk in np.array_split(np.arange(len(t)), rng.integers(1, 6)):
        bank.observe(src[chunk], dst[chunk], t[chunk])
    query_src, query_dst = np.repeat(np.arange(6), 6), np.tile(np.arange(6), 6)
    scores = bank(query_src, query_dst, np.full(36, t.max() + 1.0))
    expected = dyglib_edgebank_memory(src, dst, t, memory, 0.2)
    assert {(a, b) for a, b, s in zip(query_src, query_dst, scores.tolist(), strict=True) if s == 1.0} == expected


def test_edgebank_reads_checkpoints_from_before_its_memory_modes():
    bank = EdgeBank(5)
    bank.observe([0, 1], [1, 2], [1.0, 5.0])
    state = bank.state_dict()
    extra = next(key for key in state if key.endswith("_extra_state"))
    old = dict(state[extra])
    old["bank"] = {"pairs": state[extra]["bank"]["pairs"], "times": state[extra]["bank"]["times"]}
    restored = EdgeBank(5)
    restored.load_state_dict({**state, extra: old})
    assert restored([0, 1, 2], [1, 2, 0], [6.0, 6.0, 6.0]).tolist() == [1.0, 1.0, 0.0]


def test_per_batch_ap_is_the_mean_of_the_batches_aps():
    positive, negative = torch.tensor([0.9, 0.2, 0.5, 0.4, 0.8]), torch.tensor([0.1, 0.6, 0.5, 0.9, 0.3])
    metrics = LinkScores(positive, {"random": negative}, batch_sizes=(3, 2)).metrics()
    first = average_precision([0.9, 0.2, 0.5, 0.1, 0.6, 0.5], [1, 1, 1, 0, 0, 0])
    second = average_precision([0.4, 0.8, 0.9, 0.3], [1, 1, 0, 0])
    assert metrics["random_ap_per_batch"] == pytest.approx((first + second) / 2, abs=1e-15)
    assert metrics["random_ap"] == pytest.approx(average_precision(torch.cat([positive, negative]),
                                                                   [1] * 5 + [0] * 5), abs=1e-15)
    assert "random_ap_per_batch" not in LinkScores(positive, {"random": negative}).metrics()


def test_negative_samplers_follow_their_definitions():
    stream = random_stream(9, events=400, nodes=30, ties=False)
    split = stream.split()
    keys = stream.src.numpy() * 30 + stream.dst.numpy()
    history = np.flatnonzero(stream.t.numpy() <= split.val_time)
    for kind in ("historical", "inductive"):
        sampler = NegativeSampler(stream, kind, history_events=history, seed=0)
        seen = set(keys[history])
        for start in range(0, len(split.val), 25):
            batch = split.val[start:start + 25]
            src, dst = sampler.sample(batch)
            drawn = set((src.numpy() * 30 + dst.numpy()).tolist())
            pool = seen if kind == "historical" else seen - set(keys[history])
            pool = pool - set(keys[batch])
            if len(pool) >= len(batch):  # no random filler needed: all negatives come from the pool
                assert drawn <= pool
            sampler.observe(batch)
            seen |= set(keys[batch])
    random = NegativeSampler(stream, "random", candidates=split.train, seed=0)
    src, dst = random.sample(split.val[:50])
    assert torch.equal(src, stream.src[split.val[:50]])
    assert set(dst.tolist()) <= set(stream.dst.numpy()[split.train].tolist())
    with pytest.raises(OptionError, match="kind"):
        NegativeSampler(stream, "hard")


def test_bad_inputs_are_refused():
    model = make("tgn", 5)
    with pytest.raises(StreamError, match="non-negative integer"):
        model(torch.tensor([-1]), torch.tensor([0]), torch.tensor([1.0]))
    with pytest.raises(StreamError, match="finite"):
        model(torch.tensor([1]), torch.tensor([0]), torch.tensor([float("nan")]))
    model.observe([0], [1], [5.0])
    with pytest.raises(StreamError, match="earlier than the last event"):
        model.observe([0], [1], [4.0])
    featured = make("tgn", 5, edge_dim=2)
    with pytest.raises(StreamError, match="features of shape"):
        featured.observe([0], [1], [1.0])
    with pytest.raises(OptionError, match="time_scale"):
        JODIE(5, time_scale=0.0)
    with pytest.raises(OptionError, match="dropout"):
        JODIE(5, dropout=1.0)
    with pytest.raises(OptionError, match="window"):
        EdgeBank(5, window=-1.0)
    with pytest.raises(OptionError, match="memory must be one of"):
        EdgeBank(5, memory="forever")
    with pytest.raises(OptionError, match="needs a positive window"):
        EdgeBank(5, memory="window")
    with pytest.raises(OptionError, match="read only by memory 'window'"):
        EdgeBank(5, memory="repeat_threshold", window=3.0)
    with pytest.raises(OptionError, match="fraction"):
        EdgeBank(5, memory="recent_fraction", fraction=0.0)


def test_gru_gates_backward_torch_formulas_equal_the_kernel():
    """The torch formulas used off the CPU give the numba loop's gradients."""
    from fivefold.temporal.memory import _gates_backward, _gates_backward_torch

    torch.manual_seed(3)
    width = 4
    grad, hidden_n, candidate = (torch.randn(6, width, dtype=torch.float64) for _ in range(3))
    joined = torch.randn(6, 3 * width, dtype=torch.float64)
    reset_update = torch.rand(6, 2 * width, dtype=torch.float64)
    kernel = _gates_backward(grad, joined, reset_update, candidate.tanh(), hidden_n)
    formulas = _gates_backward_torch(grad, joined, reset_update, candidate.tanh(), hidden_n)
    for a, b in zip(kernel, formulas, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-12)


def test_jodie_dropout_acts_in_training_only():
    torch.manual_seed(0)
    model = JODIE(6, dropout=0.5, seed=0)
    model.observe([0, 1, 2], [3, 4, 5], [1.0, 2.0, 3.0])
    nodes, times = torch.tensor([0, 1, 3]), torch.tensor([4.0, 4.0, 4.0])
    model.eval()
    first, second = model.embed(nodes, times), model.embed(nodes, times)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    plain = JODIE(6, seed=0)
    plain.load_state_dict(model.state_dict())
    plain.eval()
    torch.testing.assert_close(plain.embed(nodes, times), first, rtol=0, atol=0)
    model.train()
    dropped = model.embed(nodes, times)
    assert (dropped == 0).any() and not (first == 0).any()
