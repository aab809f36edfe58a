"""CRDMEncoder: shapes, sample selection, determinism, backends, scikit-learn compatibility."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import check_estimator

import crdm
from crdm.encoder import CRDMEncoder
from crdm.errors import ValidationError

SMALL = dict(n_recurrent=6, duration_ms=30.0, sample_interval_ms=10.0,
             network_params={"input_weight": 0.6})


def images(n: int, pixels: int = 36, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((n, pixels)) > 0.6) * 255.0


def test_shapes_and_sample_selection():
    x = images(4)
    enc = CRDMEncoder(**SMALL).fit(x)
    n_rec_edges = 6 * 5
    assert enc.transform(x).shape == (4, 3 * n_rec_edges)
    assert enc.sample_ms_.tolist() == [10.0, 20.0, 30.0]
    one = CRDMEncoder(**SMALL, sample_ms=20.0).fit(x)
    assert one.transform(x).shape == (4, n_rec_edges)
    assert np.array_equal(one.transform(x), enc.transform(x)[:, n_rec_edges:2 * n_rec_edges])


def test_features_are_weights_that_stdp_moved():
    x = images(3)
    enc = CRDMEncoder(**SMALL, feature="delta").fit(x)
    delta = enc.transform(x)
    assert np.abs(delta).sum() > 0
    weights = CRDMEncoder(**SMALL).fit(x).transform(x)
    initial = np.tile(enc.network_.weights[enc.edge_ids_], 3)
    assert np.allclose(weights - initial, delta, atol=1e-15)


def test_same_seed_same_features_any_thread_count_and_batch():
    x = images(6)
    base = CRDMEncoder(**SMALL, n_jobs=1).fit(x).transform(x)
    for kw in (dict(n_jobs=2), dict(n_jobs=4, batch_size=2)):
        assert np.array_equal(CRDMEncoder(**SMALL, **kw).fit(x).transform(x), base)
    assert np.array_equal(CRDMEncoder(**SMALL).fit(x).transform(x[3:4]), base[3:4])
    assert not np.array_equal(CRDMEncoder(**SMALL, seed=1).fit(x).transform(x), base)


def test_backends_give_identical_features():
    x = images(2)
    rust = CRDMEncoder(**SMALL, backend="rust").fit(x).transform(x)
    ref = CRDMEncoder(**SMALL, backend="reference").fit(x).transform(x)
    assert np.array_equal(rust, ref)


def test_mnist_sized_input_uses_the_28x28_grid():
    enc = CRDMEncoder(n_recurrent=3, duration_ms=10.0, sample_interval_ms=10.0).fit(
        np.zeros((1, 784)))
    assert enc.network_.meta["params"]["image_shape"] == [28, 28]


@pytest.mark.parametrize(("kw", "field"), [(dict(feature="x"), "feature"),
                                           (dict(edges="x"), "edges"),
                                           (dict(sample_ms=15.0), "sample_ms"),
                                           (dict(n_jobs=0), "n_jobs")])
def test_bad_parameters(kw, field):
    with pytest.raises(ValidationError) as info:
        CRDMEncoder(**{**SMALL, **kw}).fit(images(2))
    assert info.value.field == field


def test_scikit_learn_compatibility():
    check_estimator(CRDMEncoder(n_recurrent=3, duration_ms=5.0, sample_interval_ms=5.0))


def test_pipeline_with_knn():
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline

    x = images(20)
    y = np.arange(20) % 2
    pipe = make_pipeline(CRDMEncoder(**SMALL), KNeighborsClassifier(3)).fit(x, y)
    assert pipe.predict(x).shape == (20,)
    assert isinstance(pipe[0].network_, crdm.Network)
