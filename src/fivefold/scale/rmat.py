"""A synthetic graph for scale tests: R-MAT edges with planted communities, streamed into a store.

Edges follow R-MAT (Chakrabarti, Zhan & Faloutsos 2004, "R-MAT: A Recursive Model for Graph Mining") with the
Graph500 parameters a = 0.57, b = 0.19, c = 0.19 (d = 0.05): each edge picks one quadrant of the adjacency matrix per
bit of the node ids, which gives the skewed, heavy-tailed degrees of real networks. As in Graph500, node ids are then
scrambled by a fixed pseudo-random permutation, so the hubs are not the low ids and the store has no locality that
real graphs lack. Multi-edges and self-loops are kept, as R-MAT makes them (pass ``dedupe=True`` to merge).

So that accuracy well above chance shows the whole pipeline is right, the graph carries a learnable signal:

- every node has a community, ``(unscrambled id) mod num_classes``, which is its label;
- with probability ``homophily`` an edge's source is moved into its target's community (its id's residue replaced);
- a node's features are ``signal * mean[community] + N(0, I)``, the class means drawn once from ``N(0, I)``, so one
  node's features alone identify its class only partly and its neighbours add evidence.

The quadrant probabilities are used at a resolution of 2^-16 (16 random bits per level).

Everything is a pure function of ``(seed, edge number)`` or ``(seed, node id)`` (counter-based splitmix64 hashing in
numba, parallel), so chunks can be generated in any order, twice (the builder's two passes), on any number of
threads, and give the same graph. Nothing is stored in memory beyond one chunk.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np
from numba import njit, prange

from fivefold.errors import OptionError
from fivefold.ops.hashing import GOLDEN as _GOLDEN
from fivefold.ops.hashing import mix as _mix
from fivefold.scale.store import GraphStore, build_store

__all__ = ["RMat", "rmat_store"]

_ROUNDS = 4
_ATTEMPTS = 1000  # draws per edge before giving up (a normal R-MAT accepts within a few)


@njit(inline="always", nogil=True, cache=True)
def _uniform(state):  # pragma: no cover - compiled
    """``(new state, a uniform float in [0, 1))``."""
    state = state + _GOLDEN
    return state, (_mix(state) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@njit(inline="always", nogil=True, cache=True)
def _feistel(x, half, keys, inverse):  # pragma: no cover - compiled
    """One pass of a balanced Feistel network on ``2 * half``-bit integers (a bijection; ``inverse`` undoes it)."""
    mask = (np.uint64(1) << np.uint64(half)) - np.uint64(1)
    left, right = np.uint64(x) >> np.uint64(half), np.uint64(x) & mask
    if not inverse:
        for r in range(keys.shape[0]):
            left, right = right, left ^ (_mix(right + keys[r]) & mask)
    else:
        for r in range(keys.shape[0] - 1, -1, -1):
            left, right = right ^ (_mix(left + keys[r]) & mask), left
    return np.int64((left << np.uint64(half)) | right)


@njit(inline="always", nogil=True, cache=True)
def _scramble(x, num_nodes, half, keys, inverse):  # pragma: no cover - compiled
    """A permutation of ``[0, num_nodes)``: the Feistel bijection of ``[0, 4^half)``, walked until it lands inside
    (cycle walking keeps it a bijection of the smaller range)."""
    y = _feistel(x, half, keys, inverse)
    while y >= num_nodes:
        y = _feistel(y, half, keys, inverse)
    return y


@njit(parallel=True, nogil=True, cache=True)
def _edges(first, count, num_nodes, bits, half, keys, ta, tab, tabc, classes, homophily, seed):  # pragma: no cover
    """Edges ``first .. first + count - 1`` as ``(src, dst)`` int64 arrays (scrambled ids). Each level draws 16
    random bits (four levels per 64-bit hash) compared with the quadrant thresholds ``ta < tab < tabc`` out of
    65536."""
    src = np.empty(count, dtype=np.int64)
    dst = np.empty(count, dtype=np.int64)
    low = np.uint64(0xFFFF)
    for i in prange(count):
        state = _mix(np.uint64(seed) ^ _mix(np.uint64(first + i) + _GOLDEN))
        for _ in range(_ATTEMPTS):
            u = np.int64(0)
            v = np.int64(0)
            word = np.uint64(0)
            for level in range(bits):
                if level % 4 == 0:
                    state = state + _GOLDEN
                    word = _mix(state)
                r = np.int64(word & low)
                word = word >> np.uint64(16)
                u = (u << 1) | np.int64(r >= tab)
                v = (v << 1) | (np.int64(r >= ta) & np.int64(r < tab)) | np.int64(r >= tabc)
            state, r = _uniform(state)
            if r < homophily:
                u = u - u % classes + v % classes
            if u < num_nodes and v < num_nodes:
                break
        if u < num_nodes and v < num_nodes:
            src[i] = _scramble(u, num_nodes, half, keys, False)
            dst[i] = _scramble(v, num_nodes, half, keys, False)
        else:  # parameters under which (almost) no edge lands inside [0, N): reported by RMat.edges
            src[i] = -1
            dst[i] = -1
    return src, dst


@njit(parallel=True, nogil=True, cache=True)
def _communities(start, stop, num_nodes, half, keys, classes):  # pragma: no cover - compiled
    """The community of each scrambled id in ``[start, stop)``."""
    out = np.empty(stop - start, dtype=np.int64)
    for i in prange(stop - start):
        out[i] = _scramble(start + i, num_nodes, half, keys, True) % classes
    return out


@njit(parallel=True, nogil=True, cache=True)
def _features(start, stop, means, signal, communities, seed):  # pragma: no cover - compiled
    """``signal * means[community] + N(0, 1)`` noise for rows ``start .. stop - 1`` (Box-Muller on hashed
    uniforms), float32."""
    width = means.shape[1]
    out = np.empty((stop - start, width), dtype=np.float32)
    for i in prange(stop - start):
        state = _mix(np.uint64(seed) ^ _mix(np.uint64(start + i) + _GOLDEN))
        for j in range(0, width, 2):
            state, u1 = _uniform(state)
            state, u2 = _uniform(state)
            radius = math.sqrt(-2.0 * math.log(1.0 - u1))
            out[i, j] = signal * means[communities[i], j] + radius * math.cos(2.0 * math.pi * u2)
            if j + 1 < width:
                out[i, j + 1] = signal * means[communities[i], j + 1] + radius * math.sin(2.0 * math.pi * u2)
    return out


@njit(parallel=True, nogil=True, cache=True)
def _split(start, stop, seed, train, val):  # pragma: no cover - compiled
    """0 (train), 1 (validation) or 2 (test) for each node id in ``[start, stop)``, drawn from hashed uniforms."""
    out = np.empty(stop - start, dtype=np.int8)
    for i in prange(stop - start):
        state = _mix(np.uint64(seed) ^ _mix(np.uint64(start + i) + _GOLDEN))
        _, r = _uniform(state)
        out[i] = 0 if r < train else (1 if r < train + val else 2)
    return out


class RMat:
    """The R-MAT graph with planted communities described in the module docstring, generated on demand.

    Args:
        num_nodes, num_edges: N and E (E directed edges, before ``dedupe``).
        num_features: F, the width of the node features (0: none).
        num_classes: the number of communities (labels).
        homophily: the probability that an edge's source is moved into its target's community.
        signal: the scale of the class means in the features (0: features carry no label information).
        a, b, c: R-MAT's quadrant probabilities (d = 1 - a - b - c).
        seed: everything is a function of it.
    """

    def __init__(self, num_nodes: int, num_edges: int, *, num_features: int = 128, num_classes: int = 8,
                 homophily: float = 0.5, signal: float = 0.15, a: float = 0.57, b: float = 0.19, c: float = 0.19,
                 seed: int = 0) -> None:
        for name, value, low in (("num_nodes", num_nodes, 1), ("num_edges", num_edges, 0),
                                 ("num_features", num_features, 0), ("num_classes", num_classes, 1),
                                 ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise OptionError(f"R-MAT: {name} must be an integer >= {low}, got {value!r}")
        if num_classes > num_nodes:
            raise OptionError(f"R-MAT: num_classes ({num_classes}) cannot exceed num_nodes ({num_nodes})")
        for name, value in (("homophily", homophily), ("a", a), ("b", b), ("c", c)):
            if not 0.0 <= float(value) <= 1.0:
                raise OptionError(f"R-MAT: {name} must lie in [0, 1], got {value!r}")
        if a + b + c > 1.0 + 1e-12:
            raise OptionError(f"R-MAT: a + b + c must be at most 1, got {a + b + c}")
        if not (math.isfinite(signal) and signal >= 0):
            raise OptionError(f"R-MAT: signal must be a finite number >= 0, got {signal!r}")
        self.num_nodes, self.num_edges = int(num_nodes), int(num_edges)
        self.num_features, self.num_classes = int(num_features), int(num_classes)
        self.homophily, self.signal = float(homophily), float(signal)
        self.a, self.b, self.c = float(a), float(b), float(c)
        self.seed = int(seed)
        self.bits = max(1, (self.num_nodes - 1).bit_length())
        self.half = (self.bits + 1) // 2
        streams = np.random.default_rng(self.seed)
        self.keys = streams.integers(0, 2**63, size=_ROUNDS, dtype=np.uint64)
        self.means = streams.standard_normal((self.num_classes, self.num_features))
        self._edge_seed, self._feature_seed, self._split_seed = (int(v) for v in streams.integers(0, 2**63, size=3))

    def edges(self, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Edges ``first .. first + count - 1``: ``(src [count], dst [count])`` int64."""
        thresholds = np.rint(np.cumsum([self.a, self.b, self.c]) * 65536).astype(np.int64)
        src, dst = _edges(first, count, self.num_nodes, self.bits, self.half, self.keys, *thresholds,
                          self.num_classes, self.homophily, self._edge_seed)
        if count and src.min() < 0:
            raise OptionError(f"R-MAT: with a={self.a}, b={self.b}, c={self.c} almost no edge falls inside "
                              f"[0, {self.num_nodes}) (ids have {self.bits} bits); use a power-of-two num_nodes or "
                              "other quadrant probabilities")
        return src, dst

    def edge_chunks(self, chunk: int = 1 << 24) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """All edges in chunks of ``chunk`` (a fresh pass on each call)."""
        for first in range(0, self.num_edges, chunk):
            yield self.edges(first, min(chunk, self.num_edges - first))

    def labels(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """``[stop - start]`` int64: the communities of nodes ``start .. stop - 1``."""
        stop = self.num_nodes if stop is None else stop
        return _communities(start, stop, self.num_nodes, self.half, self.keys, self.num_classes)

    def features(self, start: int, stop: int) -> np.ndarray:
        """``[stop - start, F]`` float32 features of nodes ``start .. stop - 1``."""
        return _features(start, stop, self.means, self.signal, self.labels(start, stop), self._feature_seed)

    def split(self, train: float = 0.6, val: float = 0.2) -> np.ndarray:
        """``[N]`` int8: 0 train, 1 validation, 2 test, each node independently with these probabilities."""
        return _split(0, self.num_nodes, self._split_seed, train, val)


def rmat_store(path: str | os.PathLike, num_nodes: int, num_edges: int, *, num_features: int = 128,
               num_classes: int = 8, homophily: float = 0.5, signal: float = 0.15, feature_dtype: str = "float16",
               split: tuple[float, float] = (0.6, 0.2), seed: int = 0, dedupe: bool = False,
               chunk_edges: int = 1 << 24, overwrite: bool = False, progress: bool = False) -> GraphStore:
    """Generate the R-MAT graph of ``RMat(num_nodes, num_edges, ...)`` and stream it into a store at ``path``
    (``build_store``: memory bounded by the node count and one chunk of ``chunk_edges`` edges), with its features,
    labels and train/validation/test masks (fractions ``split[0]``, ``split[1]``, the rest test)."""
    graph = RMat(num_nodes, num_edges, num_features=num_features, num_classes=num_classes, homophily=homophily,
                 signal=signal, seed=seed)
    if len(split) != 2 or not (0 <= split[0] and 0 <= split[1] and split[0] + split[1] <= 1):
        raise OptionError(f"rmat_store: split must be (train, validation) fractions summing to at most 1, got {split}")
    if isinstance(chunk_edges, bool) or not isinstance(chunk_edges, int) or chunk_edges < 1:
        raise OptionError(f"rmat_store: chunk_edges must be a positive integer, got {chunk_edges!r}")
    part = graph.split(*split)
    features = graph.features if graph.num_features else None
    return build_store(path, lambda: graph.edge_chunks(chunk_edges), graph.num_nodes, features=features,
                       labels=graph.labels(), train_mask=part == 0, val_mask=part == 1, test_mask=part == 2,
                       feature_dtype=feature_dtype, dedupe=dedupe, overwrite=overwrite, progress=progress)
