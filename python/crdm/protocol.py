"""The read-out protocol of Section 4: repeated random splits, distance-weighted k-NN.

George et al.: of the 10,000 encoded test images, 9,000 set up the space and the other 1,000
are classified by a distance-weighted 5-NN (Euclidean), ten times with new random splits. Here
the same, for any number of images, any metrics (Euclidean and cosine by default), with the
split seeds recorded so every split can be rebuilt.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crdm._checks import integer
from crdm._core import gram_candidates
from crdm.errors import ShapeError, ValidationError

__all__ = [
    "GramNeighbours",
    "SplitResult",
    "gram_distances",
    "points_under_test",
    "split_indices",
    "split_seeds",
    "weighted_vote",
    "wknn_neighbours",
    "wknn_protocol",
]


# Above this size (16,384 points) the n × n Gram matrix is not formed; rows are computed as needed.
_GRAM_BYTES = 2 * 1024**3


def split_seeds(seed: int, n_splits: int) -> list[int]:
    """The per-split seeds derived from ``seed`` (``numpy.random.SeedSequence``)."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(n_splits)]


def split_indices(n: int, n_test: int, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` indices of one split: a seeded permutation, the first ``n_test`` test."""
    order = np.random.default_rng(split_seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def points_under_test(n: int, n_test: int, n_splits: int, seed: int) -> np.ndarray:
    """Every index that some split of :func:`wknn_neighbours` tests, sorted: the only points
    whose neighbours a :class:`GramNeighbours` needs (its ``queries``)."""
    return np.unique(np.concatenate(
        [split_indices(n, n_test, s)[1] for s in split_seeds(seed, n_splits)]))


@dataclass(frozen=True)
class SplitResult:
    """Accuracy of one metric over all splits."""

    metric: str
    accuracies: np.ndarray              # per split
    per_class: np.ndarray               # (n_splits, n_classes), NaN where a class is absent
    classes: np.ndarray
    split_seeds: list[int] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def sd(self) -> float:
        return float(np.std(self.accuracies, ddof=1)) if self.accuracies.size > 1 else 0.0

    def as_dict(self) -> dict[str, Any]:
        with warnings.catch_warnings():  # a class absent from every test set: NaN, no warning
            warnings.simplefilter("ignore", RuntimeWarning)
            per_class = np.nanmean(self.per_class, axis=0)
        return {"metric": self.metric, "mean": self.mean, "sd": self.sd,
                "accuracies": self.accuracies.tolist(),
                "per_class": dict(zip(self.classes.tolist(),
                                      per_class.tolist(), strict=True)),
                "split_seeds": self.split_seeds}


def gram_distances(gram: np.ndarray, metric: str, *, offset_dot: np.ndarray | None = None,
                   offset_sq: float = 0.0, rows: np.ndarray | None = None,
                   out: np.ndarray | None = None) -> np.ndarray:
    """Distances of the feature vectors ``c + x_i`` from the Gram matrix of the ``x_i``.

    ``gram[i, j] = x_i·x_j``; ``offset_dot[i] = x_i·c`` and ``offset_sq = c·c`` describe a vector
    ``c`` shared by every row (``None`` = no offset). Keeping ``c`` apart keeps the precision: the
    paper's features are weights ``w0 + Δw`` whose common part ``w0`` dwarfs the change ``Δw``.
    Euclidean distances do not depend on ``c``; cosine distances do. A zero vector is at cosine
    distance 1 from everything (scikit-learn's convention). ``rows`` selects the rows returned
    (default all): ``(len(rows), n)``, written into ``out`` if given (every step is in place:
    fresh blocks of this size cost more in page faults than in arithmetic).
    """
    g_all = np.asarray(gram, dtype=np.float64)
    idx = np.arange(g_all.shape[0]) if rows is None else np.asarray(rows)
    d = np.take(g_all, idx, axis=0, out=out[:idx.size] if out is not None else None)
    return _distances_in_place(d, idx, np.diag(g_all), metric, offset_dot, offset_sq)


def _distances_in_place(d: np.ndarray, idx: np.ndarray, diag: np.ndarray, metric: str,
                        offset_dot: np.ndarray | None, offset_sq: float) -> np.ndarray:
    """Turns the Gram rows ``d = gram[idx]`` into distances, in place (see gram_distances)."""
    on_diag = (np.arange(idx.size), idx)
    if metric == "euclidean":
        d *= -2.0
        d += diag[idx][:, None]
        d += diag[None, :]
        np.maximum(d, 0.0, out=d)
        d[on_diag] = 0.0
        return np.sqrt(d, out=d)
    if metric == "cosine":
        if offset_dot is not None:
            s = np.asarray(offset_dot, dtype=np.float64)
            d += s[idx][:, None]
            d += s[None, :] + float(offset_sq)
            diag = diag + 2.0 * s + float(offset_sq)
        norm = np.sqrt(np.maximum(diag, 0.0))
        inv = np.where(norm > 0, 1.0 / np.where(norm > 0, norm, 1.0), 0.0)
        d *= inv[idx][:, None]
        d *= inv[None, :]
        np.subtract(1.0, d, out=d)      # a zero vector: 1 - 0 = distance 1 to everything
        np.clip(d, 0.0, 2.0, out=d)
        d[on_diag] = 0.0
        return d
    raise ValidationError(f"invalid value for `metric`: {metric!r} ('euclidean' or 'cosine')",
                          "metric", metric)


def weighted_vote(neighbour_distances: np.ndarray, neighbour_labels: np.ndarray,
                  classes: np.ndarray, weights: str = "distance") -> np.ndarray:
    """Votes of ``(n, k)`` neighbours by scikit-learn's ``KNeighborsClassifier`` rules.

    ``weights="distance"``: weights ``1/d``, and a point at distance 0 from some neighbours
    takes only those; ``"uniform"``: a majority vote. Ties go to the smaller class."""
    d = neighbour_distances
    exact = d == 0
    if weights == "uniform":
        w = np.ones_like(d, dtype=np.float64)
    elif weights == "distance":
        with np.errstate(divide="ignore"):
            w = np.where(exact.any(axis=1, keepdims=True), exact.astype(np.float64), 1.0 / d)
    else:
        raise ValidationError(f"invalid value for `weights`: {weights!r} ('distance' or "
                              "'uniform')", "weights", weights)
    votes = np.zeros((d.shape[0], classes.size))
    label_index = np.searchsorted(classes, neighbour_labels)
    np.add.at(votes, (np.arange(d.shape[0])[:, None], label_index), w)
    return classes[np.argmax(votes, axis=1)]


class GramNeighbours:
    """Exact nearest neighbours under one metric, for any split, from one Gram matrix.

    Every queried point's ``n_candidates`` nearest other points are found once (by
    :func:`crdm._core.gram_candidates`, on every core, block by block: no ``n × n`` distance
    matrix is held). For a split, a test point's ``k`` nearest reference points are the first
    ``k`` of its candidates that are reference points; in the rare case that fewer than ``k``
    are, its full row of distances is computed, so the answer is always exact. Ties are broken
    by the smaller index. :meth:`from_features` does the same from the feature vectors,
    computing Gram rows as needed: for data sets whose ``n × n`` Gram matrix does not fit in
    memory (60,000 images: 29 GB).
    """

    def __init__(self, gram: np.ndarray, metric: str, *, offset_dot: np.ndarray | None = None,
                 offset_sq: float = 0.0, n_candidates: int = 48, block: int = 1024,
                 queries: np.ndarray | None = None) -> None:
        g = np.asarray(gram, dtype=np.float64)
        if g.ndim != 2 or g.shape[0] != g.shape[1]:
            raise ShapeError(f"a Gram matrix must be square, not {g.shape}", "gram", g.shape)
        g = np.ascontiguousarray(g)
        self._prepare(lambda rows: (g, rows), np.diag(g).copy(), metric, offset_dot,
                      offset_sq, n_candidates, block, queries)

    @classmethod
    def from_features(cls, features: Any, metric: str, *, n_candidates: int = 48,
                      block: int = 1024, queries: np.ndarray | None = None
                      ) -> GramNeighbours:
        """The same neighbours from ``(n, d)`` features; memory ``O(block · n)``."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2:
            raise ShapeError(f"features must be 2-D, not {x.shape}", "features", x.shape)
        if not np.all(np.isfinite(x)):
            raise ValidationError("features contain NaN or inf", "features", "non-finite")
        self = cls.__new__(cls)
        self._prepare(lambda rows: (x[rows] @ x.T, np.arange(rows.size)),
                      np.einsum("ij,ij->i", x, x), metric, None, 0.0, n_candidates, block,
                      queries)
        return self

    def _prepare(self, gram_rows: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
                 diag: np.ndarray, metric: str, offset_dot: np.ndarray | None,
                 offset_sq: float, n_candidates: int, block: int,
                 queries: np.ndarray | None) -> None:
        """``gram_rows(points)`` gives a matrix and, for each point, the row of it that
        holds the point's inner products."""
        if metric not in ("euclidean", "cosine"):
            raise ValidationError(f"invalid value for `metric`: {metric!r} ('euclidean' or "
                                  "'cosine')", "metric", metric)
        self._source, self._diag = gram_rows, np.ascontiguousarray(diag, dtype=np.float64)
        self.metric = metric
        self.offset_dot = offset_dot
        self.offset_sq = offset_sq
        n = self.n_points = diag.shape[0]
        integer("n_candidates", n_candidates, low=1)
        integer("block", block, low=1)
        # Only the points that will be queried need candidates (default: every point).
        self.queries = np.arange(n) if queries is None else np.asarray(queries, dtype=np.int64)
        self._slot = np.full(n, -1, dtype=np.int64)
        self._slot[self.queries] = np.arange(self.queries.size)
        m = max(min(n_candidates, n - 1), 1)
        self.cand_idx = np.empty((self.queries.size, m), dtype=np.int64)
        self.cand_dist = np.empty((self.queries.size, m))
        dot = None if offset_dot is None else np.ascontiguousarray(offset_dot, dtype=np.float64)
        for start in range(0, self.queries.size, block):
            points = self.queries[start:start + block]
            matrix, rows = gram_rows(points)
            idx, dist = gram_candidates(
                matrix, np.ascontiguousarray(rows, dtype=np.int64), points, self._diag, metric,
                offset_dot=dot, offset_sq=float(offset_sq), n_candidates=m,
                n_threads=os.cpu_count() or 1)
            self.cand_idx[start:start + points.size] = idx
            self.cand_dist[start:start + points.size] = dist

    def distances(self, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Distances of ``rows`` to every point, a point to itself at +inf."""
        rows = np.asarray(rows)
        matrix, positions = self._source(rows)
        d = np.take(matrix, positions, axis=0, out=out)
        d = _distances_in_place(d, rows, self._diag, self.metric, self.offset_dot,
                                self.offset_sq)
        d[np.arange(rows.size), rows] = np.inf
        return d

    def nearest(self, test: np.ndarray, reference: np.ndarray, k: int
                ) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, distances)``, ``(len(test), k)``: each test point's ``k`` nearest
        reference points, nearest first."""
        slots = self._slot[test]
        if np.any(slots < 0):
            raise ValidationError("a test point was not among the queries these neighbours "
                                  "were prepared for", "test", int(test[slots < 0][0]))
        is_ref = np.zeros(self.n_points, dtype=bool)
        is_ref[reference] = True
        idx = np.empty((test.size, k), dtype=np.int64)
        dist = np.empty((test.size, k))
        ok = is_ref[self.cand_idx[slots]]
        enough = ok.sum(axis=1) >= k
        if np.any(enough):
            first = np.argsort(~ok[enough], axis=1, kind="stable")[:, :k]
            idx[enough] = np.take_along_axis(self.cand_idx[slots[enough]], first, axis=1)
            dist[enough] = np.take_along_axis(self.cand_dist[slots[enough]], first, axis=1)
        short = np.flatnonzero(~enough)
        if short.size:
            d = self.distances(test[short])
            d[:, ~is_ref] = np.inf
            full = np.lexsort((np.broadcast_to(np.arange(d.shape[1]), d.shape), d), axis=1)
            idx[short] = full[:, :k]
            dist[short] = np.take_along_axis(d, full[:, :k], axis=1)
        return idx, dist


def wknn_neighbours(neighbours: Mapping[str, GramNeighbours], labels: Any, *,
                    n_splits: int = 10, n_test: int = 1000, k: int = 5, seed: int = 0,
                    weights: str = "distance") -> dict[str, SplitResult]:
    """:func:`wknn_protocol` with prepared :class:`GramNeighbours`, one per result name
    (``weights="uniform"``: majority vote instead of distance-weighted)."""
    y = np.asarray(labels)
    n = y.shape[0]
    n_splits = integer("n_splits", n_splits, low=1)
    k = integer("k", k, low=1)
    n_test = integer("n_test", n_test, low=1, high=n - k)
    seeds = split_seeds(integer("seed", seed), n_splits)
    classes = np.unique(y)
    splits = [split_indices(n, n_test, s) for s in seeds]
    out = {}
    for name, nb in neighbours.items():
        if nb.n_points != n:
            raise ShapeError(f"neighbours[{name!r}] cover {nb.n_points} points, the "
                             f"labels {n}", f"neighbours[{name!r}]", nb.n_points)
        accs, per_class = [], []
        for train, test in splits:
            idx, dist = nb.nearest(test, train, k)
            hit = weighted_vote(dist, y[idx], classes, weights) == y[test]
            accs.append(hit.mean())
            per_class.append([hit[y[test] == c].mean() if np.any(y[test] == c) else np.nan
                              for c in classes])
        out[name] = SplitResult(nb.metric, np.array(accs), np.array(per_class), classes, seeds)
    return out


def wknn_protocol(features: Any, labels: Any, *, n_splits: int = 10, n_test: int = 1000,
                  k: int = 5, metrics: Sequence[str] = ("euclidean", "cosine"),
                  seed: int = 0) -> dict[str, SplitResult]:
    """Distance-weighted ``k``-NN accuracy over ``n_splits`` random train/test splits.

    Every metric sees the same splits. Returns one :class:`SplitResult` per metric.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ShapeError(f"features {x.shape} and labels {y.shape} do not match",
                         "features", x.shape)
    integer("n_test", n_test, low=1, high=x.shape[0] - integer("k", k, low=1))
    if not np.all(np.isfinite(x)):
        raise ValidationError("features contain NaN or inf", "features", "non-finite")
    if 8 * x.shape[0] ** 2 <= _GRAM_BYTES:
        gram = x @ x.T      # one Gram matrix shared by every metric
        neighbours = {m: GramNeighbours(gram, m) for m in metrics}
    else:
        queries = points_under_test(x.shape[0], n_test, n_splits, seed)
        neighbours = {m: GramNeighbours.from_features(x, m, queries=queries) for m in metrics}
    return wknn_neighbours(neighbours, y, n_splits=n_splits, n_test=n_test, k=k, seed=seed)
