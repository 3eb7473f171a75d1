"""``EventStream`` to and from torch_geometric's ``TemporalData``: a round trip keeps every event, feature and label;
PyG's own containers read the result; malformed data is refused as any stream is."""

import numpy as np
import pytest
import torch

from fivefold.errors import StreamError
from fivefold.temporal import EventStream, from_pyg, to_pyg

pytest.importorskip("torch_geometric")


def _stream(whole_times: bool = True) -> EventStream:
    rng = np.random.default_rng(0)
    t = np.sort(rng.integers(0, 1000, 50)).astype(float)
    if not whole_times:
        t = t + 0.25
    return EventStream(rng.integers(0, 10, 50), rng.integers(10, 20, 50), t,
                       features=rng.standard_normal((50, 4)).astype(np.float32), labels=rng.integers(0, 2, 50),
                       num_nodes=20)


def test_round_trip_keeps_events_features_and_labels():
    stream = _stream()
    data = to_pyg(stream)
    assert data.t.dtype == torch.int64  # whole-number times become PyG's integer timestamps
    assert data.num_events == len(stream) and int(data.num_nodes) == 20
    assert torch.equal(data.msg, stream.features) and torch.equal(data.y, stream.labels)
    back = from_pyg(data, num_nodes=stream.num_nodes)
    for name in ("src", "dst", "t", "features", "labels"):
        assert torch.equal(getattr(back, name), getattr(stream, name)), name
    assert back.num_nodes == stream.num_nodes


def test_fractional_times_stay_floating():
    stream = _stream(whole_times=False)
    data = to_pyg(stream)
    assert data.t.is_floating_point() and torch.equal(from_pyg(data).t, stream.t)


def test_pyg_batches_read_the_converted_stream():
    from torch_geometric.loader import TemporalDataLoader

    stream = _stream()
    batches = list(TemporalDataLoader(to_pyg(stream), batch_size=16))
    assert torch.equal(torch.cat([b.src for b in batches]), stream.src)
    assert torch.equal(torch.cat([b.t for b in batches]).double(), stream.t)


def test_from_pyg_refuses_malformed_events():
    from torch_geometric.data import TemporalData

    data = TemporalData(src=torch.tensor([0, 1, 2]), dst=torch.tensor([1, 2, 0]), t=torch.tensor([5, 3, 9]))
    with pytest.raises(StreamError, match="row 1"):
        from_pyg(data)
    with pytest.raises(StreamError, match="no t"):
        from_pyg(TemporalData(src=torch.tensor([0]), dst=torch.tensor([1])))
    labels = TemporalData(src=torch.tensor([0, 1]), dst=torch.tensor([1, 0]), t=torch.tensor([1, 2]),
                          y=torch.tensor([[0], [1]]))
    assert torch.equal(from_pyg(labels).labels, torch.tensor([0, 1]))
