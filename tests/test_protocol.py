"""The w-kNN protocol on synthetic data whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from crdm.errors import ShapeError, ValidationError
from crdm.protocol import split_indices, split_seeds, wknn_protocol


def blobs(n_per_class: int, spread: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = np.eye(3) * 10
    x = np.vstack([c + spread * rng.standard_normal((n_per_class, 3)) for c in centres])
    return x, np.repeat(np.arange(3), n_per_class)


def test_separable_classes_are_perfect():
    x, y = blobs(100, 0.1)
    res = wknn_protocol(x, y, n_splits=4, n_test=60)
    for r in res.values():
        assert r.accuracies.tolist() == [1.0] * 4 and r.sd == 0.0
        assert np.all(r.per_class == 1.0)


def test_random_labels_are_at_chance():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3000, 5))
    y = rng.integers(0, 2, 3000)
    res = wknn_protocol(x, y, n_splits=5, n_test=1000, metrics=("euclidean",))
    assert res["euclidean"].mean == pytest.approx(0.5, abs=0.04)


def test_per_class_accuracy_finds_the_confused_class():
    x, y = blobs(200, 0.1)
    x[y == 2] = x[y == 1] + 0.01  # class 2 sits on class 1
    r = wknn_protocol(x, y, n_splits=3, n_test=150, metrics=("euclidean",))["euclidean"]
    per_class = np.nanmean(r.per_class, axis=0)
    assert per_class[0] == 1.0 and per_class[1] < 0.8 and per_class[2] < 0.8


def test_splits_are_recorded_and_reproducible():
    seeds = split_seeds(7, 3)
    assert seeds == split_seeds(7, 3) and len(set(seeds)) == 3
    train, test = split_indices(100, 10, seeds[0])
    assert test.size == 10 and train.size == 90 and not set(train) & set(test)
    x, y = blobs(50, 3.0)
    a = wknn_protocol(x, y, n_splits=3, n_test=30, seed=7)
    b = wknn_protocol(x, y, n_splits=3, n_test=30, seed=7)
    assert a["cosine"].accuracies.tolist() == b["cosine"].accuracies.tolist()
    assert a["cosine"].split_seeds == seeds
    assert set(a["euclidean"].as_dict()["per_class"]) == {0, 1, 2}


def test_bad_inputs():
    x, y = blobs(10, 0.1)
    with pytest.raises(ShapeError):
        wknn_protocol(x, y[:-1])
    with pytest.raises(ValidationError, match="n_test"):
        wknn_protocol(x, y, n_test=29)
    x[0, 0] = np.nan
    with pytest.raises(ValidationError, match="NaN"):
        wknn_protocol(x, y, n_test=5)
