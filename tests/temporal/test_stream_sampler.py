"""Event streams are validated and split chronologically; the temporal sampler never returns an event at or after
the query time (hypothesis), returns the most recent ones, is uniform and reproducible."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fivefold.errors import OptionError, StreamError
from fivefold.temporal import EventStream, TemporalSampler


def random_stream(seed: int, events: int = 300, nodes: int = 30, ties: bool = True) -> EventStream:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, events // 3 if ties else 10**9, events)).astype(float)
    return EventStream(rng.integers(0, nodes, events), rng.integers(0, nodes, events), t, num_nodes=nodes)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), k=st.integers(1, 12), uniform=st.booleans())
def test_no_sampled_event_is_at_or_after_the_query_time(seed, k, uniform):
    stream = random_stream(seed)
    sampler = TemporalSampler(stream, k, strategy="uniform" if uniform else "recent", seed=seed)
    rng = np.random.default_rng(seed + 1)
    nodes = rng.integers(0, stream.num_nodes, 200)
    times = rng.choice(stream.t.numpy(), 200)  # query at event times: ties must be excluded too
    neighbours, event_times, event_ids, mask = sampler.sample(nodes, times)
    src, dst, t = stream.src.numpy(), stream.dst.numpy(), stream.t.numpy()
    for q in range(200):
        ids = event_ids[q][mask[q]].numpy()
        assert np.all(t[ids] < times[q])
        assert np.array_equal(event_times[q][mask[q]].numpy(), t[ids])
        assert np.all(np.diff(t[ids]) >= 0)  # in time order
        node = nodes[q]
        assert np.all((src[ids] == node) | (dst[ids] == node))
        other = np.where(src[ids] == node, dst[ids], src[ids])
        assert np.array_equal(neighbours[q][mask[q]].numpy(), other)
        earlier = np.flatnonzero(((src == node) | (dst == node)) & (t < times[q]))
        if not uniform:  # exactly the k most recent earlier events
            assert ids.tolist() == earlier[-k:].tolist()
        else:
            assert mask[q].sum() == (k if len(earlier) else 0) and set(ids) <= set(earlier)


def test_uniform_sampling_is_uniform_and_reproducible():
    t = np.arange(8, dtype=float)
    stream = EventStream(np.zeros(8, dtype=int), np.arange(1, 9), t)
    sampler = TemporalSampler(stream, 4, strategy="uniform", seed=3)
    later = 8.0 + np.arange(5000)  # distinct queries (the draws are a hash of the query) with the same 8 events
    _, _, ids, _ = sampler.sample(np.zeros(5000, dtype=int), later)
    counts = np.bincount(ids.numpy().ravel(), minlength=8)
    expected = 5000 * 4 / 8
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 24.3  # chi-square, 7 degrees of freedom, p = 0.001
    again = TemporalSampler(stream, 4, strategy="uniform", seed=3).sample(np.zeros(5000, dtype=int), later)
    assert torch.equal(again[2], ids)
    # a query draws the same neighbours whatever other queries share the call
    fresh = TemporalSampler(stream, 4, strategy="uniform", seed=3)
    alone = fresh.sample(np.zeros(1, dtype=int), later[7:8])[2]
    assert torch.equal(alone[0], ids[7])


def test_split_is_chronological_and_new_nodes_are_unseen():
    stream = random_stream(0, events=2000, nodes=200, ties=False)
    split = stream.split()
    t = stream.t.numpy()
    assert t[split.train].max() <= split.val_time < t[split.val].min()
    assert t[split.val].max() <= split.test_time < t[split.test].min()
    assert abs(len(split.test) / 2000 - 0.15) < 0.01
    src, dst = stream.src.numpy(), stream.dst.numpy()
    seen = set(src[split.train]) | set(dst[split.train])
    assert not (set(split.hidden_nodes) & seen)
    for events in (split.new_node_val, split.new_node_test):
        assert len(events) and all(src[e] not in seen or dst[e] not in seen for e in events)
    assert stream.split(seed=0).hidden_nodes.tolist() == split.hidden_nodes.tolist()


@pytest.mark.parametrize("args,kwargs,message", [
    (([0, 1], [1, 2], [2.0, 1.0]), {}, "row 1 \\(t=1.0\\) comes before row 0"),
    (([0, -1], [1, 2], [1.0, 2.0]), {}, "src must hold non-negative node ids: row 1"),
    (([0, 1], [1, 2.5], [1.0, 2.0]), {}, "dst must hold integer node ids: row 1"),
    (([0, 1], [1, 2], [1.0, float("nan")]), {}, "t must be finite: row 1"),
    (([0, 1], [1], [1.0, 2.0]), {}, "one entry per event"),
    (([0, 1], [1, 2], [1.0, 2.0]), {"features": np.ones((3, 2))}, "features must be"),
    (([0, 1], [1, 2], [1.0, 2.0]), {"num_nodes": 2}, "names node 2"),
])
def test_malformed_streams_are_refused(args, kwargs, message):
    with pytest.raises(StreamError, match=message):
        EventStream(*args, **kwargs)


def test_bad_sampler_arguments_are_refused():
    stream = random_stream(1)
    with pytest.raises(OptionError, match="k must be"):
        TemporalSampler(stream, 0)
    with pytest.raises(OptionError, match="strategy"):
        TemporalSampler(stream, 3, strategy="latest")
    sampler = TemporalSampler(stream, 3)
    with pytest.raises(StreamError, match="integer ids"):
        sampler.sample([-1], [1.0])
    assert not sampler.sample([30], [1e9])[3].any()  # a node not seen yet has no neighbours
    with pytest.raises(StreamError, match="finite"):
        sampler.sample([1], [float("inf")])
    longer = EventStream(np.r_[stream.src.numpy(), 1], np.r_[stream.dst.numpy(), 2], np.r_[stream.t.numpy(), 1e9],
                         num_nodes=30)
    sampler.extend(longer)
    assert sampler.sample([1], [2e9])[2][0].max() == len(stream)  # the new event is the most recent
    with pytest.raises(StreamError, match="start with the events"):
        sampler.extend(random_stream(2))
    with pytest.raises(StreamError, match="earlier than the last event"):
        sampler.append([0], [1], [5.0])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), pieces=st.lists(st.integers(0, 60), min_size=1, max_size=8),
       uniform=st.booleans())
def test_appending_in_pieces_equals_indexing_at_once(seed, pieces, uniform):
    """Incremental appends (rows moving as they fill, the pool growing, new node ids arriving) sample exactly what
    one sampler built from the whole stream samples; a state_dict round trip continues identically."""
    stream = random_stream(seed, events=sum(pieces) + 3, nodes=25)
    strategy = "uniform" if uniform else "recent"
    whole = TemporalSampler(stream, 5, strategy=strategy, seed=1)
    grown = TemporalSampler(EventStream([], [], [], num_nodes=3), 5, strategy=strategy, seed=1)
    at = 0
    for size in [*pieces, 3]:
        grown.append(stream.src[at:at + size], stream.dst[at:at + size], stream.t[at:at + size])
        at += size
    assert grown.num_events == len(stream) and grown.num_nodes >= 3
    rng = np.random.default_rng(seed)
    nodes, times = rng.integers(0, 25, 100), rng.uniform(-1, stream.t.max().item() + 1, 100)
    for a, b in zip(whole.sample(nodes, times), grown.sample(nodes, times), strict=True):
        assert torch.equal(a, b)
    restored = TemporalSampler(EventStream([], [], [], num_nodes=1), 5, strategy=strategy, seed=1)
    restored.load_state_dict(grown.state_dict())
    late = stream.t.max().item() + 1
    for sampler in (grown, restored):
        sampler.append([0, 24], [24, 26], [late, late])
    for a, b in zip(grown.sample(nodes, times + late), restored.sample(nodes, times + late), strict=True):
        assert torch.equal(a, b)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10**6), k=st.integers(1, 8), uniform=st.booleans(), held=st.integers(0, 120))
def test_inserted_past_events_sample_as_if_they_had_come_in_time_order(seed, k, uniform, held):
    """Events appended in time order, then others inserted at earlier times, sample exactly like the whole stream
    given in time order (distinct times), up to the inserted events' ids, which continue the numbering."""
    rng = np.random.default_rng(seed)
    events, nodes = 200, 25
    src, dst = rng.integers(0, nodes, events), rng.integers(0, nodes, events)
    t = rng.permutation(events).astype(float) * 0.5
    first = rng.choice(events, held, replace=False)
    later = np.setdiff1d(np.arange(events), first)
    first = first[np.argsort(t[first])]  # the held events came in time order
    strategy = "uniform" if uniform else "recent"
    whole = np.argsort(t)
    reference = TemporalSampler(EventStream(src[whole], dst[whole], t[whole], num_nodes=nodes), k,
                                strategy=strategy, seed=seed)
    grown = TemporalSampler(EventStream(src[first], dst[first], t[first], num_nodes=nodes), k, strategy=strategy,
                            seed=seed)
    grown.insert(src[later[::-1]], dst[later[::-1]], t[later[::-1]])  # any order
    assert grown.num_events == events and grown.last_time == t.max()
    queries = rng.integers(0, nodes, 150)
    times = rng.uniform(-1, t.max() + 1, 150)
    expected, got = reference.sample(queries, times), grown.sample(queries, times)
    for j in (0, 1, 3):
        assert torch.equal(expected[j], got[j])
    # ids: the held events keep theirs (their order of arrival), the inserted ones follow in the order given
    ids_to_event = np.concatenate([first, later[::-1]])
    mask = got[3].numpy()
    assert np.array_equal(ids_to_event[got[2].numpy()[mask]], whole[expected[2].numpy()[mask]])


def test_insert_keeps_appending_checkpoints_and_refuses_extend():
    stream = random_stream(3, ties=False)
    half = len(stream) // 2
    sampler = TemporalSampler(EventStream(stream.src[::2], stream.dst[::2], stream.t[::2]), 4)
    sampler.insert(stream.src[1::2], stream.dst[1::2], stream.t[1::2])
    state = sampler.state_dict()
    with pytest.raises(StreamError, match="extend"):
        sampler.extend(stream)
    sampler.append([1, 2], [2, 3], [stream.t[-1].item() + 1, stream.t[-1].item() + 2])
    restored = TemporalSampler(EventStream([], [], [], num_nodes=stream.num_nodes), 4)
    restored.load_state_dict(state)
    restored.append([1, 2], [2, 3], [stream.t[-1].item() + 1, stream.t[-1].item() + 2])
    queries, times = np.arange(stream.num_nodes), np.full(stream.num_nodes, stream.t[-1].item() + 5)
    for a, b in zip(sampler.sample(queries, times), restored.sample(queries, times), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(StreamError, match="extend"):
        restored.extend(stream)
    restored.reset()
    restored.extend(EventStream(stream.src[:half], stream.dst[:half], stream.t[:half]))  # allowed again
    with pytest.raises(StreamError, match="1-D of one length"):
        sampler.insert([0, 1], [1], [0.0, 1.0])
    with pytest.raises(StreamError):
        sampler.insert([0], [1], [float("nan")])
    with pytest.raises(StreamError):
        sampler.insert([-1], [1], [0.0])
