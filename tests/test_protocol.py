"""The w-kNN protocol on synthetic data whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import KNeighborsClassifier

from crdm.errors import ShapeError, ValidationError
from crdm.protocol import (
    GramNeighbours,
    gram_distances,
    points_under_test,
    split_indices,
    split_seeds,
    weighted_vote,
    wknn_protocol,
)


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


@settings(deadline=None)
@given(n_train=st.integers(6, 40), n_test=st.integers(1, 15), n_classes=st.integers(2, 4),
       k=st.integers(1, 5), seed=st.integers(0, 2**32 - 1), dup=st.booleans(),
       n_candidates=st.integers(1, 8))
def test_vote_matches_scikit_learn(n_train, n_test, n_classes, k, seed, dup, n_candidates):
    """Our neighbours (candidate lists with the exact fallback) and vote = scikit-learn's."""
    rng = np.random.default_rng(seed)
    # Small integer coordinates make exact ties and zero distances common.
    x = rng.integers(0, 3, (n_train + n_test, 3)).astype(float)
    if dup:
        x[n_train] = x[0]
    y = rng.integers(0, n_classes, n_train + n_test)
    for metric in ("euclidean", "cosine"):
        x_m = x + 1.0 if metric == "cosine" else x   # no zero vectors: sklearn warns on them
        gram = x_m @ x_m.T
        dist = gram_distances(gram, metric)
        test = np.arange(n_train, n_train + n_test)
        nb = GramNeighbours(gram, metric, n_candidates=n_candidates, block=7,
                            queries=test if dup else None)
        idx, d = nb.nearest(test, np.arange(n_train), k)
        np.testing.assert_allclose(d, np.sort(dist[n_train:, :n_train], axis=1)[:, :k])
        rule = "uniform" if seed % 3 == 0 else "distance"
        ours = weighted_vote(d, y[idx], np.unique(y), rule)
        knn = KNeighborsClassifier(n_neighbors=k, weights=rule, metric="precomputed")
        knn.fit(dist[:n_train, :n_train], y[:n_train])
        theirs = knn.predict(dist[n_train:, :n_train])
        # Where distances tie at the k-th neighbour the choice of neighbours is arbitrary in
        # both; compare only rows without such a tie.
        row = dist[n_train:, :n_train]
        kth = np.sort(row, axis=1)[:, k - 1:k + 1] if k < n_train else None
        clear = np.ones(n_test, bool) if kth is None or kth.shape[1] < 2 else kth[:, 0] < kth[:, 1]
        np.testing.assert_array_equal(ours[clear], theirs[clear])


def test_gram_distances_match_scikit_learn_with_offset():
    rng = np.random.default_rng(3)
    delta = rng.standard_normal((30, 8)) * 1e-3
    offset = rng.standard_normal(8)
    full = offset + delta
    gram = delta @ delta.T
    eu = gram_distances(gram, "euclidean", offset_dot=delta @ offset, offset_sq=offset @ offset)
    co = gram_distances(gram, "cosine", offset_dot=delta @ offset, offset_sq=offset @ offset)
    np.testing.assert_allclose(eu, pairwise_distances(full, metric="euclidean"), atol=1e-12)
    np.testing.assert_allclose(co, pairwise_distances(full, metric="cosine"), atol=1e-12)
    zero = np.vstack([np.zeros(3), np.ones(3)])
    assert gram_distances(zero @ zero.T, "cosine")[0, 1] == 1.0
    with pytest.raises(ValidationError, match="metric"):
        gram_distances(gram, "manhattan")


def test_neighbours_refuse_points_they_were_not_prepared_for():
    x, _ = blobs(10, 0.1)
    nb = GramNeighbours(x @ x.T, "euclidean", queries=np.array([0, 1]))
    with pytest.raises(ValidationError) as exc:
        nb.nearest(np.array([0, 5]), np.arange(10, 30), 3)
    assert exc.value.field == "test" and exc.value.value == 5


@settings(deadline=None, max_examples=30)
@given(n=st.integers(8, 60), k=st.integers(1, 4), seed=st.integers(0, 2**32 - 1),
       metric=st.sampled_from(["euclidean", "cosine"]), block=st.integers(1, 9))
def test_neighbours_from_features_equal_those_from_the_gram_matrix(n, k, seed, metric, block):
    """The large-data path (Gram rows computed as needed) finds the same neighbours."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, (n, 3)).astype(float) + (metric == "cosine")
    queries = points_under_test(n, n // 4 + 1, 3, seed)
    a = GramNeighbours(x @ x.T, metric, n_candidates=5, block=block, queries=queries)
    b = GramNeighbours.from_features(x, metric, n_candidates=5, block=block, queries=queries)
    reference = np.setdiff1d(np.arange(n), queries)
    if reference.size >= k:
        for got, want in zip(b.nearest(queries, reference, k), a.nearest(queries, reference, k),
                             strict=True):
            np.testing.assert_array_equal(got, want)


def test_test_points_are_the_union_of_the_split_test_sets():
    pts = points_under_test(50, 5, 4, seed=3)
    want = set().union(*(split_indices(50, 5, s)[1].tolist() for s in split_seeds(3, 4)))
    assert pts.tolist() == sorted(want)


def test_large_protocol_skips_the_gram_matrix(monkeypatch):
    """Above the size limit no n × n matrix is formed and the accuracies stay the same."""
    import crdm.protocol as protocol

    x, y = blobs(40, 3.0)
    small = wknn_protocol(x, y, n_splits=3, n_test=20, seed=1)
    monkeypatch.setattr(protocol, "_GRAM_BYTES", 0)
    monkeypatch.setattr(protocol.GramNeighbours, "__init__", None)  # the Gram path would fail
    large = wknn_protocol(x, y, n_splits=3, n_test=20, seed=1)
    for metric in small:
        assert large[metric].accuracies.tolist() == small[metric].accuracies.tolist()


def test_neighbours_refuse_bad_shapes():
    with pytest.raises(ShapeError, match="square"):
        GramNeighbours(np.ones((3, 4)), "cosine")
    with pytest.raises(ShapeError, match="2-D"):
        GramNeighbours.from_features(np.ones(3), "cosine")
    with pytest.raises(ValidationError, match="NaN"):
        GramNeighbours.from_features(np.array([[np.nan, 1.0], [1.0, 1.0]]), "cosine")


@settings(deadline=None, max_examples=40)
@given(n=st.integers(2, 40), m=st.integers(1, 12), seed=st.integers(0, 2**32 - 1),
       metric=st.sampled_from(["euclidean", "cosine"]), offset=st.booleans(),
       block=st.integers(1, 9))
def test_candidates_are_the_nearest_by_distance_then_index(n, m, seed, metric, offset, block):
    """Each queried point's candidates are the first of all other points sorted by (distance,
    index), with the very distances `gram_distances` gives: duplicates and ties included."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, (n, 2)).astype(float)     # few distinct points: many exact ties
    c = rng.integers(-2, 3, 2).astype(float) if offset else None
    kw = {} if c is None else {"offset_dot": x @ c, "offset_sq": float(c @ c)}
    gram = x @ x.T
    queries = np.unique(rng.integers(0, n, n))
    nb = GramNeighbours(gram, metric, n_candidates=m, block=block, queries=queries, **kw)
    d = gram_distances(gram, metric, **kw)
    m_used = min(m, n - 1)
    for slot, i in enumerate(queries):
        others = np.delete(np.arange(n), i)
        order = others[np.lexsort((others, d[i, others]))][:m_used]
        np.testing.assert_array_equal(nb.cand_idx[slot], order)
        np.testing.assert_array_equal(nb.cand_dist[slot], d[i, order])


def test_candidate_kernel_names_bad_arguments():
    from crdm._core import gram_candidates
    from crdm.errors import IndexOutOfRangeError

    gram = np.eye(4)
    diag = np.ones(4)
    rows = np.array([0, 1])

    def call(**kw):
        args = {"gram": gram, "rows": rows, "points": rows, "diag": diag, "metric": "cosine",
                "offset_dot": None, "offset_sq": 0.0, "n_candidates": 2, "n_threads": 2}
        return gram_candidates(**{**args, **kw})

    assert call()[0].shape == (2, 2)
    with pytest.raises(ValidationError) as exc:
        call(metric="manhattan")
    assert (exc.value.field, exc.value.value) == ("metric", "manhattan")
    with pytest.raises(ValidationError) as exc:
        call(n_candidates=4)
    assert exc.value.field == "n_candidates"
    with pytest.raises(IndexOutOfRangeError) as exc:
        call(points=np.array([0, 4]))
    assert exc.value.field == "points[1]"
    with pytest.raises(IndexOutOfRangeError) as exc:
        call(rows=np.array([0, 9]))
    assert exc.value.field == "rows[1]"
    with pytest.raises(ShapeError) as exc:
        call(diag=np.ones(3))
    assert exc.value.field == "diag"
    with pytest.raises(ShapeError) as exc:
        call(offset_dot=np.ones(5))
    assert exc.value.field == "offset_dot"
    with pytest.raises(ValidationError, match="C-contiguous"):
        call(gram=np.eye(8)[::2, ::2])
