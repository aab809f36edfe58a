"""MSTDP: the update rules on a hand-checked tiny case, shapes, determinism, files."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from crdm.errors import DataError, ValidationError
from crdm.mstdp import MSTDPClassifier, load_mstdp


def rho(s):
    return 1.0 / (1.0 + math.exp(-4.0 * s))


def tiny_model(**kw):
    """1 pixel + 2 labels visible, 2 hidden, float64, weights set by hand."""
    m = MSTDPClassifier(n_hidden=2, dtype="float64", **kw)
    m._init(1, np.array([0, 1]))
    net = m.net_
    net.w_vh[:] = [[0.3, -0.2], [0.1, 0.4], [-0.5, 0.2]]
    net.w_hv[:] = [[0.2, -0.1, 0.3], [-0.4, 0.25, 0.1]]
    net.w_hh[:] = [[0.0, 0.15], [-0.35, 0.0]]
    net.b_v[:] = [0.05, -0.02, 0.01]
    net.b_h[:] = [-0.03, 0.04]
    return m


def by_hand_pressure(W, b, s):
    """R_i(s) - s with W[j][i] from j to i over all 5 units (visible 0-2, hidden 3-4)."""
    out = []
    for i in range(5):
        total = sum(W[j][i] * rho(s[j]) for j in range(5) if j != i) + b[i]
        out.append(4 * rho(s[i]) * (1 - rho(s[i])) * total - s[i])
    return out


def full_matrix(net):
    W = [[0.0] * 5 for _ in range(5)]
    for v in range(3):
        for h in range(2):
            W[v][3 + h] = net.w_vh[v, h]
            W[3 + h][v] = net.w_hv[h, v]
    for a in range(2):
        for c in range(2):
            W[3 + a][3 + c] = net.w_hh[a, c]
    return W


def by_hand_start():
    """The tiny model's network, its weights and biases as lists, which pairs are connected,
    and a starting state."""
    net = tiny_model().net_
    W, b = full_matrix(net), list(net.b_v) + list(net.b_h)
    connected = [[W[j][i] != 0.0 or (j >= 3 and i >= 3 and i != j) for i in range(5)]
                 for j in range(5)]
    return net, W, b, connected, [0.2, -0.1, 0.4, 0.3, -0.6]


def test_two_clamped_iterations_match_the_equations_by_hand():
    net, W, b, connected, s = by_hand_start()
    data, clamp = [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]
    eps, beta, mom, alpha = 0.2, 0.8, 0.4, 0.05
    vel = [0.0] * 5
    for _ in range(2):
        f = by_hand_pressure(W, b, s)
        vel = [mom * f[i] + (1 - mom) * vel[i] for i in range(5)]     # eq. 12
        new = [s[i] + eps * vel[i] for i in range(5)]                 # eq. 11
        for i in range(3):
            new[i] += beta * clamp[i] * (data[i] - new[i])            # eq. 8, its own step
        d_rho = [rho(new[i]) - rho(s[i]) for i in range(5)]
        W = [[W[j][i] + (alpha * rho(s[j]) * d_rho[i] if connected[j][i] else 0.0)  # eq. 7
              for i in range(5)] for j in range(5)]
        b = [b[i] + alpha * d_rho[i] for i in range(5)]
        s = new
    s_v = np.array([[0.2, -0.1, 0.4]])
    s_h = np.array([[0.3, -0.6]])
    net.relax(s_v, s_h, 2, eps, data=np.array([data]), clamp=np.array(clamp), beta=beta,
              momentum=mom, alpha=alpha)
    np.testing.assert_allclose(np.concatenate([s_v[0], s_h[0]]), s, rtol=1e-12)
    np.testing.assert_allclose(full_matrix(net), W, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.concatenate([net.b_v, net.b_h]), b, rtol=1e-12)
    assert net.w_hh[0, 0] == 0.0 and net.w_hh[1, 1] == 0.0


def test_free_phase_is_equation_1_without_learning():
    m = tiny_model()
    net = m.net_
    W, b = full_matrix(net), list(net.b_v) + list(net.b_h)
    s = [0.2, -0.1, 0.4, 0.3, -0.6]
    f = by_hand_pressure(W, b, s)
    expected = [s[i] + 0.2 * f[i] for i in range(5)]
    s_v, s_h = np.array([s[:3]]), np.array([s[3:]])
    before = net.w_vh.copy()
    net.relax(s_v, s_h, 1, 0.2)
    np.testing.assert_allclose(np.concatenate([s_v[0], s_h[0]]), expected, rtol=1e-12)
    np.testing.assert_array_equal(net.w_vh, before)


@pytest.fixture(scope="module")
def digits():
    rng = np.random.default_rng(0)
    x = rng.random((40, 16))
    y = np.arange(40) % 4
    x[np.arange(40), y] = 1.0
    return x, y


def test_shapes_determinism_and_no_side_effect_of_predicting(digits):
    x, y = digits
    a = MSTDPClassifier(8, n_phases=2, n_iterations=4, n_chains=4, random_state=3).fit(x, y)
    b = MSTDPClassifier(8, n_phases=2, n_iterations=4, n_chains=4, random_state=3).fit(x, y)
    np.testing.assert_array_equal(a.net_.w_vh, b.net_.w_vh)
    state = a.state_.copy()
    pred = a.predict(x)
    assert pred.shape == (40,) and set(pred) <= {0, 1, 2, 3}
    np.testing.assert_array_equal(a.state_, state)
    assert a.decision_function(x).shape == (40, 4)
    assert a.n_presentations_ == 40
    a.partial_fit(x[:5], y[:5])
    assert a.n_presentations_ == 45


def test_generation_returns_valid_images(digits):
    x, y = digits
    m = MSTDPClassifier(8, n_phases=2, n_iterations=4).fit(x, y)
    img = m.generate(2, n=3, random_state=1)
    assert img.shape == (3, 16) and img.min() >= 0.0 and img.max() <= 1.0
    np.testing.assert_array_equal(img, m.generate(2, n=3, random_state=1))
    with pytest.raises(ValidationError, match="label"):
        m.generate(7)
    loop = m.training_loop_states(x[:2], y[:2])
    assert loop["free"].shape == loop["clamped_2"].shape == (2, 16)


@pytest.mark.parametrize("free_phase", ["free", "inputs_clamped"])
def test_the_free_phase_frees_the_pixels_or_keeps_them_on_the_sample(digits, free_phase):
    x, y = digits
    m = MSTDPClassifier(8, n_phases=2, n_iterations=30, free_phase=free_phase, beta=1.0,
                        dtype="float64").partial_fit(x[:1], y[:1], classes=np.arange(4))
    pixels = m.state_[0, :16]          # the state after the last free phase (β = 1: on it)
    if free_phase == "inputs_clamped":
        np.testing.assert_allclose(pixels, x[0], atol=1e-9)
    else:
        assert np.abs(pixels - x[0]).max() > 0.1
    assert m.predict(x[:5]).shape == (5,)


def test_an_unknown_free_phase_is_refused(digits):
    x, y = digits
    with pytest.raises(ValidationError, match="free_phase"):
        MSTDPClassifier(8, free_phase="half").fit(x, y)


def test_label_gain_makes_generation_follow_the_label_and_leaves_the_model(digits):
    x, y = digits
    m = MSTDPClassifier(8, n_phases=2, n_iterations=4).fit(x, y)
    weights = m.net_.w_vh.copy()
    np.testing.assert_array_equal(m.generate(1, 4, label_gain=1.0), m.generate(1, 4))

    def between_labels(gain):
        means = np.stack([m.generate(c, 4, label_gain=gain).mean(0) for c in m.classes_])
        return np.linalg.norm(means - means.mean(0), axis=1).mean()

    # a strong label drive separates the labels' images far more than the pixels' own drive
    assert between_labels(30.0) > 3 * between_labels(1.0)
    np.testing.assert_array_equal(m.net_.w_vh, weights)
    for bad in (0.0, -1.0, float("nan"), "2"):
        with pytest.raises(ValidationError, match="label_gain"):
            m.generate(1, label_gain=bad)
    np.testing.assert_array_equal(m.net_.w_vh, weights)


def test_save_load_round_trip(digits, tmp_path):
    x, y = digits
    m = MSTDPClassifier(8, n_phases=2, n_iterations=4, n_chains=2).fit(x, y)
    path = m.save(tmp_path / "m.npz")
    r = load_mstdp(path)
    assert r.get_params() == m.get_params() and r.n_presentations_ == m.n_presentations_
    for name in ("w_vh", "w_hv", "w_hh", "b_v", "b_h"):
        np.testing.assert_array_equal(getattr(r.net_, name), getattr(m.net_, name))
    np.testing.assert_array_equal(r.predict(x), m.predict(x))
    m.partial_fit(x, y)
    r.partial_fit(x, y)
    np.testing.assert_array_equal(r.net_.w_hh, m.net_.w_hh)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError):
        load_mstdp(tmp_path / "bad.npz")


@pytest.mark.parametrize("kw, field", [({"n_hidden": 0}, "n_hidden"), ({"momentum": 1.5},
                                                                       "momentum"),
                                       ({"eps_free": 0.0}, "eps_free"),
                                       ({"dtype": "int8"}, "dtype"),
                                       ({"blas_threads": 0}, "blas_threads")])
def test_bad_parameters_name_the_field(digits, kw, field):
    with pytest.raises(ValidationError) as exc:
        MSTDPClassifier(**kw).fit(*digits)
    assert exc.value.field == field


def test_pixels_outside_unit_interval_are_refused(digits):
    x, y = digits
    with pytest.raises(ValidationError, match=r"\[0, 1\]"):
        MSTDPClassifier(4).fit(x * 255, y)


def test_array_api_strict_backend_runs_the_numpy_numbers(digits, tmp_path):
    """The GPU path's code (array API only) on the CPU: the same numbers as numpy."""
    x, y = digits
    kw = dict(n_hidden=8, n_phases=2, n_iterations=4, n_chains=3, dtype="float64",
              alpha=0.2, weight_bound=0.11, random_state=5)
    ref = MSTDPClassifier(**kw).fit(x, y)
    strict = MSTDPClassifier(**kw, backend="array_api_strict").fit(x, y)
    assert type(strict.net_.w_hh).__module__.startswith("array_api_strict")
    for name in ("w_vh", "w_hv", "w_hh", "b_v", "b_h"):
        np.testing.assert_allclose(np.asarray(getattr(strict.net_, name)),
                                   getattr(ref.net_, name), rtol=1e-12, atol=1e-15)
    assert np.all(np.diag(np.asarray(strict.net_.w_hh)) == 0.0)
    np.testing.assert_allclose(strict.decision_function(x), ref.decision_function(x),
                               rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(strict.generate(1, 2), ref.generate(1, 2), rtol=1e-12,
                               atol=1e-15)
    moved = load_mstdp(strict.save(tmp_path / "s.npz"), backend="numpy")
    assert moved.backend == "numpy" and isinstance(moved.net_.w_hh, np.ndarray)
    np.testing.assert_array_equal(moved.predict(x), strict.predict(x))


def test_missing_or_unknown_backend_is_a_typed_error(digits, monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)      # as if cupy were not installed
    for kw in ({"backend": "cupy"}, {"backend": "jax"}, {"device": "cuda"},
               {"device": 3}):
        with pytest.raises(ValidationError) as exc:
            MSTDPClassifier(4, **kw).fit(*digits)
        assert exc.value.field in kw


def test_weight_bound_clips_weights_and_none_is_the_unbounded_rule(digits):
    x, y = digits
    kw = dict(n_hidden=8, n_phases=2, n_iterations=4, alpha=0.5, random_state=2)
    free = MSTDPClassifier(**kw).fit(x, y)
    assert max(np.abs(getattr(free.net_, w)).max() for w in ("w_vh", "w_hv", "w_hh")) > 0.12
    bounded = MSTDPClassifier(**kw, weight_bound=0.12).fit(x, y)
    for name in ("w_vh", "w_hv", "w_hh"):
        assert np.abs(getattr(bounded.net_, name)).max() <= np.float32(0.12)
    assert not np.array_equal(free.net_.w_vh, bounded.net_.w_vh)
    with pytest.raises(ValidationError) as exc:
        MSTDPClassifier(4, weight_bound=0.0).fit(x, y)
    assert exc.value.field == "weight_bound"


def test_symmetric_hidden_rule_changes_hidden_weights_symmetrically(digits):
    x, y = digits
    changes = {}
    for sym in (False, True):
        m = MSTDPClassifier(n_hidden=6, n_phases=2, n_iterations=4, alpha=0.05, dtype="float64",
                            symmetric_hidden=sym, random_state=4)
        m.partial_fit(x[:1], y[:1], classes=np.arange(4))
        before = m.net_.w_hh.copy()
        m.partial_fit(x[1:6], y[1:6])
        changes[sym] = m.net_.w_hh - before
    np.testing.assert_allclose(changes[True], changes[True].T, rtol=1e-9, atol=1e-15)
    assert np.abs(changes[False] - changes[False].T).max() > 1e-3
    assert np.all(np.diag(changes[True]) == 0.0)


def test_path_smoothing_is_a_step_down_half_squared_ds_by_hand():
    """Section 2.7: ΔW[j, i] = −γ ds_i ρ'(s_i) ρ(s_j), Δb_i = −γ ds_i ρ'(s_i), ds = R(s) − s,
    taken before the states move; α = 0 isolates it."""
    net, W, b, connected, s = by_hand_start()
    gamma = 0.3
    ds = by_hand_pressure(W, b, s)
    grad = [ds[i] * 4 * rho(s[i]) * (1 - rho(s[i])) for i in range(5)]
    W_new = [[W[j][i] - (gamma * grad[i] * rho(s[j]) if connected[j][i] else 0.0)
              for i in range(5)] for j in range(5)]
    b_new = [b[i] - gamma * grad[i] for i in range(5)]
    s_v, s_h = np.array([s[:3]]), np.array([s[3:]])
    net.relax(s_v, s_h, 1, 0.2, data=np.array([[1.0, 0.0, 1.0]]), clamp=np.ones(3), beta=0.8,
              momentum=0.4, smoothing=gamma)
    np.testing.assert_allclose(full_matrix(net), W_new, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(np.concatenate([net.b_v, net.b_h]), b_new, rtol=1e-12)
    # the states moved with the pressure from before the smoothing step
    expected_h = [s[3 + k] + 0.2 * 0.4 * ds[3 + k] for k in range(2)]
    np.testing.assert_allclose(s_h[0], expected_h, rtol=1e-12)


@pytest.mark.parametrize("blas_threads", [1, None])
def test_blas_runs_on_the_chosen_number_of_threads(digits, monkeypatch, blas_threads):
    """Training and inference run the numpy backend's BLAS on ``blas_threads`` threads (the
    small products of a relaxation are slower with more); ``None`` leaves the library's."""
    from threadpoolctl import threadpool_info

    from crdm import energy

    x, y = digits
    seen: list[int] = []
    relax = energy.EnergyNetwork.relax

    def spy(self, *args, **kwargs):
        seen.append(max(p["num_threads"] for p in threadpool_info()
                        if p["user_api"] == "blas"))
        return relax(self, *args, **kwargs)

    monkeypatch.setattr(energy.EnergyNetwork, "relax", spy)
    outside = max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")
    model = MSTDPClassifier(8, n_phases=1, n_chains=2, blas_threads=blas_threads)
    model.fit(x[:4], y[:4])
    model.predict(x[:2])
    model.generate(y[0])
    assert seen and set(seen) == {1 if blas_threads == 1 else outside}
    assert max(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas") == outside


def test_layered_hard_sigmoid_network_for_ablations(digits):
    """The MSTDP rule on the equilibrium-propagation network: no hidden-to-hidden weights
    (they stay zero while the rule learns), rates clip(s, 0, 1) and states in [0, 1]."""
    x, y = digits
    model = MSTDPClassifier(8, n_phases=2, n_chains=2, activation="hard_sigmoid",
                            layered=True).fit(x, y)
    assert not model.net_.w_hh.any()
    assert model.state_.min() >= 0.0 and model.state_.max() <= 1.0
    assert model.n_presentations_ == len(x)
    with pytest.raises(ValidationError) as info:
        MSTDPClassifier(8, activation="hard_sigmoid", smoothing=0.1).fit(x, y)
    assert info.value.field == "smoothing"


def test_array_api_strict_accepts_the_cpu_device_it_names_differently(digits):
    x, y = digits
    model = MSTDPClassifier(4, n_phases=1, backend="array_api_strict", device="cpu")
    assert model.fit(x[:4], y[:4]).predict(x[:2]).shape == (2,)
