"""The Rust engine and the pure-Python reference agree exactly on random networks.

Every array of the result (raster, causal record, snapshots, final weights, spike counts) and
every counter must be identical; floats are compared with ``==`` element by element, so the
only difference allowed is the sign of a zero weight (``-0.0 == 0.0``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import crdm
from crdm import InputCode, RunConfig, StdpParams, Stimulus, simulate
from crdm.units import ms_to_ticks

FIELDS = ("spike_nodes", "spike_ticks", "spike_forced", "cause_offsets", "cause_edges",
          "cause_ticks", "cause_weights", "snapshots", "final_weights", "spike_counts",
          "snapshot_ticks", "snapshot_edges")


def assert_same(a: crdm.SimulationResult, b: crdm.SimulationResult) -> None:
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        assert x.shape == y.shape, name
        assert np.array_equal(x, y), name
    assert a.stats == b.stats


def real(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def drawn(draw, strategy, size: int) -> np.ndarray:
    """``size`` values of ``strategy`` as an array."""
    return np.array(draw(st.lists(strategy, min_size=size, max_size=size)))


@st.composite
def cases(draw):
    n = draw(st.integers(1, 10))
    m = draw(st.integers(0, 30))
    ints = st.integers(0, n - 1)
    edges = np.array(draw(st.lists(st.tuples(ints, ints), min_size=m, max_size=m)),
                     dtype=np.int64).reshape(m, 2)
    net = crdm.Network.from_arrays(
        drawn(draw, st.tuples(real(0, 400), real(0, 400), real(0, 400)), n),
        edges,
        drawn(draw, real(-1.5, 1.5), m),
        velocity_m_s=drawn(draw, real(0.05, 1.0), m),
        refractory_ms=drawn(draw, real(0.05, 3.0), n),
        threshold=drawn(draw, real(0.2, 2.0), n),
        tau_m_ms=drawn(draw, st.one_of(st.just(math.inf), real(0.3, 30.0)), n),
        plastic=drawn(draw, st.booleans(), m).astype(bool),
    )
    dt = draw(st.sampled_from([0.1, 0.25, 0.5]))
    stdp = draw(st.one_of(st.none(), st.builds(
        StdpParams, a_plus=real(0.0, 0.3), tau_plus_ms=real(0.5, 40.0),
        a_minus=real(0.0, 0.3), tau_minus_ms=real(0.5, 40.0),
        w_min=st.sampled_from([-math.inf, -1.0]), w_max=st.sampled_from([math.inf, 1.0]))))
    config = RunConfig(duration_ms=draw(st.sampled_from([2.0, 8.0, 20.0])), dt_ms=dt, stdp=stdp,
                       record_causal=draw(st.booleans()),
                       record_final_weights=draw(st.booleans()),
                       snapshot_interval_ms=draw(st.sampled_from([None, 1.0, 5.0])),
                       snapshot_edges=draw(st.one_of(
                           st.sampled_from(["plastic", "all"]),
                           # any ids, any order, repeats allowed
                           st.lists(st.integers(0, max(m - 1, 0)), max_size=8 if m else 0)
                           .map(lambda ids: np.array(ids, dtype=np.int64)))))
    k = draw(st.integers(0, 25))
    stimulus = Stimulus(np.array(draw(st.lists(ints, min_size=k, max_size=k)), dtype=np.int64),
                        np.array(draw(st.lists(st.integers(0, config.n_ticks - 1), min_size=k,
                                               max_size=k)), dtype=np.int64))
    return net, stimulus, config


@st.composite
def periodic_cases(draw):
    """Input nodes (no in-edges) → recurrent nodes, STDP on the recurrent edges, the inputs
    firing every ``period`` ticks from their own phase: the engine replays the input drive
    whenever it repeats (sometimes a train stops early or has a gap, and it must not)."""
    n_in, n_rec = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    n = n_in + n_rec
    pairs = [(i, j) for i in range(n_in) for j in range(n_in, n)]
    pairs += [(i, j) for i in range(n_in, n) for j in range(n_in, n) if i != j]
    keep = draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    edges = np.array([p for p, k in zip(pairs, keep, strict=True) if k],
                     dtype=np.int64).reshape(-1, 2)
    m = edges.shape[0]
    period = draw(st.integers(2, 12))
    net = crdm.Network.from_arrays(
        drawn(draw, st.tuples(real(0, 150), real(0, 150), real(0, 150)), n),
        edges,
        drawn(draw, real(-0.8, 1.2), m),
        velocity_m_s=drawn(draw, real(0.1, 1.0), m),
        refractory_ms=np.concatenate([np.full(n_in, 0.1 * period),
                                      drawn(draw, real(0.1, 1.0), n_rec)]),
        threshold=drawn(draw, real(0.3, 2.0), n),
        tau_m_ms=drawn(draw, st.one_of(st.just(math.inf), real(0.3, 10.0)), n),
        plastic=edges[:, 0] >= n_in,
    )
    config = RunConfig(duration_ms=draw(st.sampled_from([10.0, 30.0])), dt_ms=0.1,
                       stdp=StdpParams(a_plus=0.1, a_minus=0.12, tau_plus_ms=2.0,
                                       tau_minus_ms=2.0, w_min=-1.0, w_max=1.5),
                       snapshot_interval_ms=5.0, snapshot_edges="all")
    nodes, ticks = [], []
    for i in range(n_in):
        phase = draw(st.integers(0, period - 1))
        stop = draw(st.sampled_from([config.n_ticks] * 3 + [config.n_ticks // 2]))
        fire = list(range(phase, stop, period))
        if draw(st.integers(0, 5)) == 0 and len(fire) > 3:
            del fire[len(fire) // 2]           # a gap
        nodes += [i] * len(fire)
        ticks += fire
    extra = draw(st.lists(st.tuples(st.integers(0, n - 1),
                                    st.integers(0, config.n_ticks - 1)), max_size=3))
    nodes += [e[0] for e in extra]
    ticks += [e[1] for e in extra]
    return net, Stimulus(np.array(nodes, dtype=np.int64), np.array(ticks, dtype=np.int64)), config


@given(periodic_cases())
def test_rust_and_reference_agree_on_periodic_input_drives(case):
    net, stimulus, config = case
    assert_same(simulate(net, stimulus, config, backend="rust"),
                simulate(net, stimulus, config, backend="reference"))


@given(cases())
def test_rust_and_reference_agree_exactly(case):
    net, stimulus, config = case
    assert_same(simulate(net, stimulus, config, backend="rust"),
                simulate(net, stimulus, config, backend="reference"))


def test_agree_on_a_section4_style_network():
    net = crdm.input_recurrent(12, seed=5, image_shape=(6, 6), recurrent_weight=0.3)
    cfg = RunConfig(duration_ms=60.0, stdp=StdpParams(), record_causal=True)
    image = np.random.default_rng(0).random((6, 6)) > 0.5
    stimulus = crdm.image_stimulus(image, net, cfg)
    rust = simulate(net, stimulus, cfg, backend="rust")
    assert rust.stats["n_lost"] > 0 and rust.stats["n_stdp_updates"] > 0
    assert_same(rust, simulate(net, stimulus, cfg, backend="reference"))


def test_agree_when_the_engine_replays_a_periodic_input_drive():
    """With STDP on the recurrent edges only, the input edges are the only fixed-weight ones
    and every active pixel fires every 10 ms: the engine sums one period of their drive and
    replays it (`PeriodicDrive`); the reference delivers every signal."""
    net = crdm.input_recurrent(12, seed=5, image_shape=(6, 6), recurrent_weight=0.3)
    cfg = RunConfig(duration_ms=150.0, stdp=StdpParams(), snapshot_interval_ms=50.0,
                    snapshot_edges="all")
    for seed in (0, 1):
        image = np.random.default_rng(seed).random((6, 6)) > 0.5
        stimulus = crdm.image_stimulus(image, net, cfg)
        rust = simulate(net, stimulus, cfg, backend="rust")
        assert rust.stats["n_lost"] > 0 and rust.stats["n_spikes"] > 200
        assert_same(rust, simulate(net, stimulus, cfg, backend="reference"))


def test_agree_with_many_firings_in_flight_on_a_plastic_edge():
    """The engine keeps each edge's pre-synaptic trace once per firing of its source (a ring of
    recent firings per node); with a latency of 30 ticks and a source firing every 2, fifteen
    firings are in flight when the target potentiates, and the edge's trace is that of the
    last one that has arrived. The reference keeps a trace per edge."""
    positions = np.array([[0.0, 0.0, 0.0], [300.0, 0.0, 0.0], [0.0, 50.0, 0.0]])
    net = crdm.Network.from_arrays(
        positions, np.array([[0, 1], [2, 1], [1, 0]]), np.array([0.4, 0.3, 0.2]),
        velocity_m_s=np.array([0.1, 0.1, 0.1]), refractory_ms=np.array([0.1, 0.4, 0.1]),
        threshold=np.array([1.0, 0.9, 1.0]), tau_m_ms=np.array([math.inf, 5.0, math.inf]),
        plastic=np.array([True, True, True]))
    config = RunConfig(duration_ms=40.0, stdp=StdpParams(), snapshot_interval_ms=5.0,
                       snapshot_edges="all")
    ticks = np.concatenate([np.arange(0, 400, 2), np.arange(1, 400, 7)])
    nodes = np.concatenate([np.zeros(200, dtype=np.int64), np.full(57, 2, dtype=np.int64)])
    stimulus = Stimulus(nodes, ticks)
    rust = simulate(net, stimulus, config, backend="rust")
    assert ms_to_ticks(net.latency_ms()[0], config.dt_ms) == 30
    assert rust.spike_counts[1] > 20 and rust.stats["n_stdp_updates"] > 100
    assert_same(rust, simulate(net, stimulus, config, backend="reference"))


@pytest.mark.slow
@given(cases())
def test_long_randomized_equivalence(case):
    """Opt-in (``--runslow`` with ``HYPOTHESIS_PROFILE=long``): many thousands of networks."""
    net, stimulus, config = case
    assert_same(simulate(net, stimulus, config, backend="rust"),
                simulate(net, stimulus, config, backend="reference"))


def test_agree_with_edges_out_of_source_order_and_a_very_long_latency():
    """Edges listed in a shuffled order (the engine then keeps each position's id) and one
    latency of 10^9 ticks (target and delay no longer fit one 32-bit code)."""
    net = crdm.input_recurrent(12, seed=5, image_shape=(6, 6), recurrent_weight=0.3)
    order = np.random.default_rng(1).permutation(net.n_edges)
    length = net.length_um[order].copy()
    length[0] = 1e10 * max(float(net.velocity_m_s[order][0]), 1e-3) / 0.1
    shuffled = crdm.Network(**{**{f.name: getattr(net, f.name) for f in
                                  dataclasses.fields(net)},
                               "edge_src": net.edge_src[order], "edge_dst": net.edge_dst[order],
                               "weights": net.weights[order], "length_um": length,
                               "velocity_m_s": net.velocity_m_s[order],
                               "plastic": net.plastic[order]})
    image = np.random.default_rng(0).random((6, 6)) > 0.5
    for causal in (False, True):
        cfg = RunConfig(duration_ms=60.0, stdp=StdpParams(), record_causal=causal,
                        snapshot_edges="all")
        stimulus = crdm.image_stimulus(image, shuffled, cfg)
        rust = simulate(shuffled, stimulus, cfg, backend="rust")
        assert rust.stats["n_stdp_updates"] > 0 and rust.stats["n_spikes"] > 100
        assert_same(rust, simulate(shuffled, stimulus, cfg, backend="reference"))


input_codes = st.one_of(
    st.builds(InputCode, kind=st.just("binary"), pixel_threshold=st.sampled_from([0.0, 0.3])),
    st.builds(InputCode, kind=st.just("latency"),
              latency_window_ms=st.floats(0.0, 12.0), latency_repeat=st.booleans()),
    st.builds(InputCode, kind=st.just("rate"),
              rate_max_hz=st.one_of(st.none(), st.floats(30.0, 800.0))),
    st.builds(InputCode, kind=st.just("graded")),
)


@settings(max_examples=25, deadline=None)
@given(code=input_codes, seed=st.integers(0, 2**16), plastic=st.sampled_from(["recurrent", "all"]))
def test_rust_and_reference_agree_on_every_input_code(code, seed, plastic):
    """The drives of ``binary``, ``graded`` and a repeating ``latency`` code repeat (the engine
    replays them when only the input edges are fixed); ``rate`` and a single ``latency`` volley
    do not (it delivers them one by one). Both must give the reference's bits."""
    rng = np.random.default_rng(seed)
    base = crdm.input_recurrent(8, seed=seed % 7, image_shape=(5, 5), recurrent_weight=0.3,
                                input_weight=0.4, plastic=plastic)
    image = rng.random(25) * (rng.random(25) > 0.4)
    net = code.network_for(image, base)
    cfg = RunConfig(duration_ms=40.0, stdp=StdpParams(), snapshot_interval_ms=10.0,
                    snapshot_edges="all")
    stimulus = code.stimulus(image, base, cfg)
    rust = simulate(net, stimulus, cfg, backend="rust")
    assert_same(rust, simulate(net, stimulus, cfg, backend="reference"))
