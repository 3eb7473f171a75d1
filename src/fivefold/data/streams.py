"""The real event streams for temporal link prediction, as ``fivefold.temporal.EventStream``s.

- ``wikipedia``: JODIE Wikipedia (Kumar et al. 2019): 157,474 user -> page edits, 8,227 users (ids 0..8226) and
  1,000 pages (8227..9226), ban labels; the 172-d LIWC edit features of the original are NOT in this copy, so the
  stream has no event features.
- ``enron``: Enron e-mails in the form of Poursafaei et al. 2022 / DyGLib: 125,235 events among 184 people; ids are
  1-based in the file and 0-based here; 16,410 events are self-loops (a person mailing themself), kept as published.
- ``collegemsg``: SNAP CollegeMsg (the "UCI" set of DyGLib): 59,835 messages among 1,899 users; ids 1-based in the
  file, 0-based here; times are UNIX seconds in the file, seconds since the first message here.

Each file's sha256 is checked before it is parsed.
"""

from __future__ import annotations

import gzip
import os

import numpy as np

from fivefold.data.files import data_root, require_file, verify
from fivefold.errors import OptionError
from fivefold.temporal import EventStream

__all__ = ["STREAMS", "load_stream"]

STREAMS = {
    "wikipedia": ("jodie-wikipedia/wikipedia.csv.gz",
                  "3ef1844feae78afc9cb963c04eec2db4a4b110aa2cf3730591919ff80372041b"),
    "enron": ("enron-temporal/ml_enron.txt.gz", "5f5ff9ce1fd155c88384585b9947f996cf957a21bce3e4b61a7eefa518754cfa"),
    "collegemsg": ("collegemsg/CollegeMsg.txt", "61c48411d84b3907f0ccc7468d47241a5e2a46a7234739e4379274a190293fe6"),
}


def load_stream(name: str, root: str | os.PathLike | None = None) -> EventStream:
    """Load the stream ``name`` (``"wikipedia"``, ``"enron"``, ``"collegemsg"``) from the data folder ``root``
    (default ``$FIVEFOLD_DATA``)."""
    if name not in STREAMS:
        raise OptionError(f"load_stream: unknown stream {name!r}; choose one of {sorted(STREAMS)}")
    relative, digest = STREAMS[name]
    path = verify(require_file(data_root(root) / relative, name), digest)
    if name == "wikipedia":
        with gzip.open(path, "rt") as handle:
            table = np.loadtxt(handle, delimiter=",", skiprows=1, dtype=np.int64)
        return EventStream(table[:, 0], table[:, 1], table[:, 2], labels=table[:, 3], num_nodes=9227)
    if name == "enron":
        with gzip.open(path, "rt") as handle:
            table = np.loadtxt(handle, dtype=np.int64)
        return EventStream(table[:, 0] - 1, table[:, 1] - 1, table[:, 2], num_nodes=184)
    table = np.loadtxt(path, skiprows=1, dtype=np.int64)
    return EventStream(table[:, 0] - 1, table[:, 1] - 1, table[:, 2] - table[0, 2], num_nodes=1899)
