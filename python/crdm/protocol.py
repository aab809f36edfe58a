"""The read-out protocol of Section 4: repeated random splits, distance-weighted k-NN.

George et al.: of the 10,000 encoded test images, 9,000 set up the space and the other 1,000
are classified by a distance-weighted 5-NN (Euclidean), ten times with new random splits. Here
the same, for any number of images, any metrics (Euclidean and cosine by default), with the
split seeds recorded so every split can be rebuilt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

from crdm._checks import integer
from crdm.errors import ShapeError, ValidationError

__all__ = ["SplitResult", "split_indices", "split_seeds", "wknn_protocol"]


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
        return {"metric": self.metric, "mean": self.mean, "sd": self.sd,
                "accuracies": self.accuracies.tolist(),
                "per_class": dict(zip(self.classes.tolist(),
                                      np.nanmean(self.per_class, axis=0).tolist(), strict=True)),
                "split_seeds": self.split_seeds}


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
    n_splits = integer("n_splits", n_splits, low=1)
    k = integer("k", k, low=1)
    n_test = integer("n_test", n_test, low=1, high=x.shape[0] - k)
    if not np.all(np.isfinite(x)):
        raise ValidationError("features contain NaN or inf", "features", "non-finite")
    seeds = split_seeds(integer("seed", seed), n_splits)
    classes = np.unique(y)
    out = {}
    for metric in metrics:
        accs, per_class = [], []
        for s in seeds:
            train, test = split_indices(x.shape[0], n_test, s)
            knn = KNeighborsClassifier(n_neighbors=k, weights="distance", metric=metric,
                                       algorithm="brute")
            pred = knn.fit(x[train], y[train]).predict(x[test])
            hit = pred == y[test]
            accs.append(hit.mean())
            per_class.append([hit[y[test] == c].mean() if np.any(y[test] == c) else np.nan
                              for c in classes])
        out[metric] = SplitResult(metric, np.array(accs), np.array(per_class), classes, seeds)
    return out
