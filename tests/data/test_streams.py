"""The real event streams load with their published statistics; a corrupted file is refused by its checksum."""

import shutil

import numpy as np
import pytest

from fivefold.data import load_stream
from fivefold.errors import ChecksumError, OptionError


@pytest.mark.parametrize("name,events,nodes,labelled", [
    ("wikipedia", 157_474, 9_227, True),
    ("enron", 125_235, 184, False),
    ("collegemsg", 59_835, 1_899, False),
])
def test_streams_match_published_statistics(data_root, name, events, nodes, labelled):
    stream = load_stream(name, data_root)
    assert len(stream) == events and stream.num_nodes == nodes
    assert (stream.labels is not None) == labelled
    assert stream.features is None  # none of these copies carries event features
    assert float(stream.t[0]) == 0.0
    if name == "wikipedia":
        assert int(stream.labels.sum()) == 217
        assert int(stream.src.max()) < 8227 <= int(stream.dst.min())  # users, then pages
    active = np.union1d(stream.src.numpy(), stream.dst.numpy())
    assert len(active) == nodes


def test_corrupted_stream_is_refused(data_root, tmp_path):
    (tmp_path / "collegemsg").mkdir()
    copy = tmp_path / "collegemsg" / "CollegeMsg.txt"
    shutil.copy(data_root / "collegemsg" / "CollegeMsg.txt", copy)
    with open(copy, "a") as handle:
        handle.write("1 2 3\n")
    with pytest.raises(ChecksumError, match="CollegeMsg.txt"):
        load_stream("collegemsg", tmp_path)
    with pytest.raises(OptionError, match="unknown stream"):
        load_stream("reddit", tmp_path)
