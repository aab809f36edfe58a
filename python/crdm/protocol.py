"""The read-out protocol of Section 4: repeated random splits, distance-weighted k-NN.

George et al.: of the 10,000 encoded test images, 9,000 set up the space and the other 1,000
are classified by a distance-weighted 5-NN (Euclidean), ten times with new random splits. Here
the same, for any number of images, any metrics (Euclidean and cosine by default), with the
split seeds recorded so every split can be rebuilt.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crdm._checks import integer
from crdm.errors import ShapeError, ValidationError

__all__ = [
    "SplitResult",
    "gram_distances",
    "split_indices",
    "split_seeds",
    "weighted_knn_predict",
    "wknn_precomputed",
    "wknn_protocol",
]


def split_seeds(seed: int, n_splits: int) -> list[int]:
    """The per-split seeds derived from ``seed`` (``numpy.random.SeedSequence``)."""
    return [int(s) for s in np.random.SeedSequence(seed).generate_state(n_splits)]


def split_indices(n: int, n_test: int, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` indices of one split: a seeded permutation, the first ``n_test`` test."""
    order = np.random.default_rng(split_seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


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
                   offset_sq: float = 0.0) -> np.ndarray:
    """Pairwise distances of the feature vectors ``c + x_i`` from the Gram matrix of the ``x_i``.

    ``gram[i, j] = x_i·x_j``; ``offset_dot[i] = x_i·c`` and ``offset_sq = c·c`` describe a vector
    ``c`` shared by every row (``None`` = no offset). Keeping ``c`` apart keeps the precision: the
    paper's features are weights ``w0 + Δw`` whose common part ``w0`` dwarfs the change ``Δw``.
    Euclidean distances do not depend on ``c``; cosine distances do. A zero vector is at cosine
    distance 1 from everything (scikit-learn's convention).
    """
    g = np.asarray(gram, dtype=np.float64)
    if offset_dot is not None:
        s = np.asarray(offset_dot, dtype=np.float64)
        g = g + s[:, None] + s[None, :] + float(offset_sq)
    if metric == "euclidean":
        sq = np.diag(gram).astype(np.float64)
        d2 = sq[:, None] + sq[None, :] - 2.0 * np.asarray(gram, dtype=np.float64)
        np.maximum(d2, 0.0, out=d2)
        np.fill_diagonal(d2, 0.0)
        return np.sqrt(d2, out=d2)
    if metric == "cosine":
        norm = np.sqrt(np.maximum(np.diag(g), 0.0))
        safe = np.where(norm > 0, norm, 1.0)
        d = 1.0 - g / safe[:, None] / safe[None, :]
        zero = norm == 0
        d[zero, :] = 1.0
        d[:, zero] = 1.0
        np.clip(d, 0.0, 2.0, out=d)
        np.fill_diagonal(d, 0.0)
        return d
    raise ValidationError(f"invalid value for `metric`: {metric!r} ('euclidean' or 'cosine')",
                          "metric", metric)


def weighted_knn_predict(distances: np.ndarray, train_labels: np.ndarray, k: int,
                         classes: np.ndarray) -> np.ndarray:
    """Distance-weighted ``k``-NN votes from a ``(n_test, n_train)`` distance matrix.

    The rule of scikit-learn's ``KNeighborsClassifier(weights="distance")``: weights ``1/d``; a
    test point at distance 0 from some training points takes only those; ties go to the smaller
    class. Working from precomputed distances lets every split and metric share one Gram matrix.
    """
    nearest = np.argpartition(distances, k - 1, axis=1)[:, :k]
    d = np.take_along_axis(distances, nearest, axis=1)
    exact = d == 0
    with np.errstate(divide="ignore"):
        w = np.where(exact.any(axis=1, keepdims=True), exact.astype(np.float64), 1.0 / d)
    votes = np.zeros((distances.shape[0], classes.size))
    label_index = np.searchsorted(classes, train_labels[nearest])
    np.add.at(votes, (np.arange(distances.shape[0])[:, None], label_index), w)
    return classes[np.argmax(votes, axis=1)]


def wknn_precomputed(distances: Mapping[str, np.ndarray], labels: Any, *, n_splits: int = 10,
                     n_test: int = 1000, k: int = 5, seed: int = 0) -> dict[str, SplitResult]:
    """:func:`wknn_protocol` on precomputed ``(n, n)`` distance matrices, one per metric name."""
    y = np.asarray(labels)
    n = y.shape[0]
    for name, d in distances.items():
        if np.shape(d) != (n, n):
            raise ShapeError(f"distances[{name!r}] has shape {np.shape(d)}, expected ({n}, {n})",
                             f"distances[{name!r}]", np.shape(d))
    n_splits = integer("n_splits", n_splits, low=1)
    k = integer("k", k, low=1)
    n_test = integer("n_test", n_test, low=1, high=n - k)
    seeds = split_seeds(integer("seed", seed), n_splits)
    classes = np.unique(y)
    splits = [split_indices(n, n_test, s) for s in seeds]
    out = {}
    for metric, dist in distances.items():
        accs, per_class = [], []
        for train, test in splits:
            pred = weighted_knn_predict(dist[np.ix_(test, train)], y[train], k, classes)
            hit = pred == y[test]
            accs.append(hit.mean())
            per_class.append([hit[y[test] == c].mean() if np.any(y[test] == c) else np.nan
                              for c in classes])
        out[metric] = SplitResult(metric, np.array(accs), np.array(per_class), classes, seeds)
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
    gram = x @ x.T
    distances = {m: gram_distances(gram, m) for m in metrics}
    return wknn_precomputed(distances, y, n_splits=n_splits, n_test=n_test, k=k, seed=seed)
