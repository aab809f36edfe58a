"""Hand-computed cases of the model (docs/model.md), each run on both backends."""

from __future__ import annotations

import math

import numpy as np
import pytest

import crdm
from crdm import RunConfig, StdpParams, Stimulus, simulate


def line_net(positions, edges, weights, **kw) -> crdm.Network:
    """A small network from arrays; velocity 0.1 m/s makes 100 µm one millisecond."""
    kw.setdefault("velocity_m_s", 0.1)
    return crdm.Network.from_arrays(np.asarray(positions, float), edges, weights, **kw)


def stim(pairs) -> Stimulus:
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    return Stimulus(pairs[:, 0], pairs[:, 1])


def spikes_of(result, node):
    return result.spike_ticks[result.spike_nodes == node].tolist()


def test_latency_is_distance_over_velocity_in_ticks(backend):
    # 300 µm at 0.1 m/s = 3 ms = 30 ticks of 0.1 ms
    net = line_net([[0, 0], [300, 0]], [[0, 1]], [2.0])
    result = simulate(net, stim([[0, 0]]), RunConfig(duration_ms=10), backend=backend)
    assert spikes_of(result, 1) == [30]


@pytest.mark.parametrize(("length_um", "expected"), [(125.0, 3), (100.0, 2), (10.0, 1),
                                                     (0.0, 1)])
def test_latency_rounds_half_up_to_at_least_one_tick(backend, length_um, expected):
    # dt 0.5 ms: 125 µm -> 1.25 ms = 2.5 ticks -> 3; 10 µm -> 0.2 ticks -> at least 1
    net = crdm.Network.from_arrays([[0, 0], [1, 0]], [[0, 1]], [2.0], velocity_m_s=0.1,
                                   length_um=[length_um])
    cfg = RunConfig(duration_ms=5, dt_ms=0.5)
    assert spikes_of(simulate(net, stim([[0, 0]]), cfg, backend=backend), 1) == [expected]


def two_into_one(weights, refractory_ms=0.5, tau_m_ms=math.inf, lengths=(100.0, 120.0)):
    """Nodes 0 and 1 project onto node 2 with latencies lengths/100 ms."""
    return crdm.Network.from_arrays(
        [[0, 0], [0, 1], [1, 0]], [[0, 2], [1, 2]], weights, velocity_m_s=0.1,
        length_um=list(lengths), refractory_ms=refractory_ms, tau_m_ms=tau_m_ms)


def test_signal_arriving_during_refractoriness_is_lost(backend):
    # each signal alone fires node 2; the second arrives 2 ticks after the first
    net = two_into_one([2.0, 2.0], refractory_ms=0.5)  # 5 ticks
    result = simulate(net, stim([[0, 0], [1, 0]]), RunConfig(duration_ms=5), backend=backend)
    assert spikes_of(result, 2) == [10]
    assert result.stats["n_lost"] == 1
    assert result.stats["n_arrivals"] == 2


def test_signal_arriving_after_refractoriness_fires_again(backend):
    net = two_into_one([2.0, 2.0], refractory_ms=0.1)  # 1 tick
    result = simulate(net, stim([[0, 0], [1, 0]]), RunConfig(duration_ms=5), backend=backend)
    assert spikes_of(result, 2) == [10, 12]
    assert result.stats["n_lost"] == 0


def test_earliest_signal_claims_the_node(backend):
    # node 1's signal is earlier (latency 0.8 ms): it fires node 2, node 0's is wasted
    net = two_into_one([2.0, 2.0], refractory_ms=5.0, lengths=(100.0, 80.0))
    cfg = RunConfig(duration_ms=5, record_causal=True)
    result = simulate(net, stim([[0, 0], [1, 0]]), cfg, backend=backend)
    k = int(np.flatnonzero(result.spike_nodes == 2)[0])
    edges, ticks, weights = result.causes(k)
    assert edges.tolist() == [1] and ticks.tolist() == [8] and weights.tolist() == [2.0]
    assert result.stats["n_lost"] == 1


@pytest.mark.parametrize(("gap_ticks", "fires"), [(1, True), (50, False)])
def test_subthreshold_arrivals_sum_only_when_close(backend, gap_ticks, fires):
    net = two_into_one([0.6, 0.6], tau_m_ms=2.0, lengths=(100.0, 100.0))
    cfg = RunConfig(duration_ms=10, record_causal=True)
    result = simulate(net, stim([[0, 0], [1, gap_ticks]]), cfg, backend=backend)
    # u = 0.6 * exp(-gap * 0.1 / 2) + 0.6: 1.17 for a 1-tick gap, 0.65 for 50 ticks
    assert (spikes_of(result, 2) == [10 + gap_ticks]) is fires
    assert (spikes_of(result, 2) == []) is not fires
    if fires:
        edges, ticks, _ = result.causes(int(np.flatnonzero(result.spike_nodes == 2)[0]))
        assert edges.tolist() == [0, 1] and ticks.tolist() == [10, 10 + gap_ticks]


def test_pure_integrator_sums_across_any_gap(backend):
    net = two_into_one([0.6, 0.6], tau_m_ms=math.inf, lengths=(100.0, 100.0))
    result = simulate(net, stim([[0, 0], [1, 80]]), RunConfig(duration_ms=10), backend=backend)
    assert spikes_of(result, 2) == [90]


def test_inhibitory_arrival_cancels_excitation(backend):
    net = two_into_one([1.2, -0.5], lengths=(100.0, 100.0))
    result = simulate(net, stim([[0, 0], [1, 0]]), RunConfig(duration_ms=5), backend=backend)
    assert spikes_of(result, 2) == []


def stdp_net(a_len: float, driver_len: float, w_plastic: float = 0.2) -> crdm.Network:
    """Edge 0: node 0 -> 2, plastic, sub-threshold; edge 1: node 1 -> 2, static driver."""
    return crdm.Network.from_arrays(
        [[0, 0], [0, 1], [1, 0]], [[0, 2], [1, 2]], [w_plastic, 2.0], velocity_m_s=0.1,
        length_um=[a_len, driver_len], refractory_ms=0.1, plastic=[True, False])


def test_stdp_potentiates_pre_before_post_by_the_window(backend):
    params = StdpParams(a_plus=0.01, tau_plus_ms=16.8, a_minus=0.005, tau_minus_ms=33.7)
    # pre arrives at tick 10, the driver fires node 2 at tick 30: dt = 2 ms
    net = stdp_net(100.0, 300.0)
    cfg = RunConfig(duration_ms=5, stdp=params, snapshot_interval_ms=None)
    result = simulate(net, stim([[0, 0], [1, 0]]), cfg, backend=backend)
    assert spikes_of(result, 2) == [30]
    expected = 0.2 + 0.01 * math.exp(-(20 * 0.1) / 16.8)
    assert result.final_weights[0] == pytest.approx(expected, rel=1e-14)
    assert result.final_weights[1] == 2.0  # static edge untouched


def test_stdp_depresses_post_before_pre_by_the_window(backend):
    params = StdpParams(a_plus=0.01, tau_plus_ms=16.8, a_minus=0.005, tau_minus_ms=33.7)
    # the driver fires node 2 at tick 10, the plastic signal arrives at tick 40: dt = 3 ms
    net = stdp_net(400.0, 100.0)
    cfg = RunConfig(duration_ms=5, stdp=params, snapshot_interval_ms=None)
    result = simulate(net, stim([[0, 0], [1, 0]]), cfg, backend=backend)
    assert spikes_of(result, 2) == [10]
    expected = 0.2 - 0.005 * math.exp(-(30 * 0.1) / 33.7)
    assert result.final_weights[0] == pytest.approx(expected, rel=1e-14)


def test_stdp_same_tick_counts_as_pre_before_post(backend):
    net = stdp_net(100.0, 100.0)
    params = StdpParams(a_plus=0.01, a_minus=0.005)
    cfg = RunConfig(duration_ms=2, stdp=params, snapshot_interval_ms=None)
    result = simulate(net, stim([[0, 0], [1, 0]]), cfg, backend=backend)
    assert result.final_weights[0] == pytest.approx(0.21, rel=1e-14)


def test_stdp_weights_cross_zero_and_respect_bounds(backend):
    net = stdp_net(400.0, 100.0, w_plastic=0.001)
    free = RunConfig(duration_ms=5, stdp=StdpParams(a_minus=0.01), snapshot_interval_ms=None)
    crossed = simulate(net, stim([[0, 0], [1, 0]]), free, backend=backend)
    assert crossed.final_weights[0] < 0  # excitatory edge turned inhibitory
    bounded = RunConfig(duration_ms=5, stdp=StdpParams(a_minus=0.01, w_min=0.0),
                        snapshot_interval_ms=None)
    clipped = simulate(net, stim([[0, 0], [1, 0]]), bounded, backend=backend)
    assert clipped.final_weights[0] == 0.0


def test_stdp_off_leaves_weights_unchanged(backend):
    net = stdp_net(100.0, 300.0)
    result = simulate(net, stim([[0, 0], [1, 0]]), RunConfig(duration_ms=5), backend=backend)
    assert np.array_equal(result.final_weights, net.weights)
    assert result.stats["n_stdp_updates"] == 0


def test_stimulus_during_refractoriness_is_dropped(backend):
    net = crdm.Network.from_arrays([[0, 0], [1, 0]], [[0, 1]], [2.0], refractory_ms=0.5)
    result = simulate(net, stim([[0, 0], [0, 2], [0, 5]]), RunConfig(duration_ms=2),
                      backend=backend)
    assert spikes_of(result, 0) == [0, 5]
    assert result.stats["n_stimulus_dropped"] == 1
    assert result.stats["n_forced"] == 2


def test_snapshots_hold_weights_after_earlier_ticks(backend):
    net = stdp_net(100.0, 300.0)
    cfg = RunConfig(duration_ms=4, stdp=StdpParams(), snapshot_interval_ms=2.0,
                    snapshot_edges="all")
    result = simulate(net, stim([[0, 0], [1, 0]]), cfg, backend=backend)
    assert result.snapshot_ticks.tolist() == [20, 40]
    assert result.snapshots.shape == (2, 2)
    assert np.array_equal(result.snapshots[0], net.weights)  # node 2 fires only at tick 30
    assert np.array_equal(result.snapshots[1], result.final_weights)


def test_image_stimulus_repeats_every_refractory_period():
    net = crdm.input_recurrent(3, seed=0, image_shape=(2, 2), input_refractory_ms=10.0)
    image = np.array([[0, 5], [0, 1]])
    s = crdm.image_stimulus(image, net, RunConfig(duration_ms=35.0))
    assert sorted(zip(s.nodes.tolist(), s.ticks.tolist(), strict=False)) == [
        (node, tick) for node in (1, 3) for tick in (0, 100, 200, 300)]


def test_result_arrays_and_recorders_off(backend):
    net = crdm.input_recurrent(5, seed=2, image_shape=(3, 3))
    cfg = RunConfig(duration_ms=20, record_raster=False, snapshot_interval_ms=None)
    image = np.ones((3, 3))
    result = simulate(net, crdm.image_stimulus(image, net, cfg), cfg, backend=backend)
    assert result.spike_nodes.size == 0 and result.cause_offsets.size == 0
    assert result.snapshots.shape == (0, int(net.plastic.sum()))
    assert int(result.spike_counts.sum()) == result.stats["n_spikes"] > 0


def test_final_weights_off_changes_nothing_else(backend):
    net = crdm.input_recurrent(20, seed=4, image_shape=(8, 8))
    on = RunConfig(duration_ms=60, stdp=StdpParams(), snapshot_interval_ms=20.0)
    off = RunConfig(duration_ms=60, stdp=StdpParams(), snapshot_interval_ms=20.0,
                    record_final_weights=False)
    stimulus = crdm.image_stimulus(np.ones((8, 8)), net, on)
    with_final = simulate(net, stimulus, on, backend=backend)
    without = simulate(net, stimulus, off, backend=backend)
    assert with_final.final_weights.shape == (net.n_edges,)
    assert without.final_weights.shape == (0,) and without.final_weights.dtype == np.float64
    assert np.array_equal(with_final.snapshots, without.snapshots)
    assert np.array_equal(with_final.snapshots[-1],
                          with_final.final_weights[net.plastic.astype(bool)])
    assert np.array_equal(with_final.spike_ticks, without.spike_ticks)
    assert with_final.stats == without.stats and with_final.stats["n_stdp_updates"] > 0


def test_simulator_reuses_a_compiled_network(backend):
    net = crdm.input_recurrent(10, seed=3, image_shape=(4, 4))
    cfg = RunConfig(duration_ms=30, stdp=StdpParams())
    sim = crdm.Simulator(net, dt_ms=cfg.dt_ms, backend=backend)
    image = np.eye(4)
    first = sim.run(crdm.image_stimulus(image, net, cfg), cfg)
    second = sim.run(crdm.image_stimulus(image, net, cfg), cfg)
    assert np.array_equal(first.final_weights, second.final_weights)
    assert np.array_equal(first.spike_ticks, second.spike_ticks)


def test_batch_equals_single_runs_for_any_thread_count(backend):
    net = crdm.input_recurrent(12, seed=4, image_shape=(5, 5), input_weight=0.6)
    cfg = RunConfig(duration_ms=40, stdp=StdpParams(), snapshot_interval_ms=10.0)
    rng = np.random.default_rng(1)
    stimuli = [crdm.image_stimulus(rng.random((5, 5)) > 0.6, net, cfg) for _ in range(7)]
    sim = crdm.Simulator(net, dt_ms=cfg.dt_ms, backend=backend)
    singles = [sim.run(s, cfg) for s in stimuli]
    for threads in (1, 2, 5):
        batch = sim.run_batch(stimuli, cfg, n_threads=threads)
        assert len(batch) == len(stimuli)
        for a, b in zip(singles, batch, strict=True):
            assert np.array_equal(a.snapshots, b.snapshots)
            assert np.array_equal(a.spike_ticks, b.spike_ticks)
            assert a.stats == b.stats
    assert all(r.stats["n_stdp_updates"] > 0 for r in singles)
    assert not all(np.array_equal(singles[0].snapshots, r.snapshots) for r in singles[1:])
    assert sim.run_batch([], cfg) == []


def test_snapshots_at_chosen_times(backend):
    net = stdp_net(100.0, 300.0)
    cfg = RunConfig(duration_ms=4, stdp=StdpParams(), snapshot_at_ms=[0.0, 2.95, 4.0],
                    snapshot_edges=np.array([0]))
    result = simulate(net, stim([[0, 0], [1, 0]]), cfg, backend=backend)
    assert result.snapshot_ticks.tolist() == [0, 30, 40]
    # tick 30 is the firing tick: the snapshot before it still holds the initial weight
    assert result.snapshots[:, 0].tolist() == [0.2, 0.2, result.final_weights[0]]
    assert result.final_weights[0] > 0.2


@pytest.mark.parametrize("times", [[2.0, 1.0], [1.0, 1.01], [5.0], [-1.0]])
def test_snapshot_times_must_increase_within_the_run(times):
    with pytest.raises(crdm.ValidationError, match="snapshot_at_ms"):
        RunConfig(duration_ms=4, snapshot_at_ms=times)


def three_into_one(weights, plastic, threshold):
    """Nodes 0, 1, 2 project onto node 3 with the same latency (1 ms), so their signals arrive
    in one tick; node 3's threshold decides between sums that differ in the last bit."""
    return crdm.Network.from_arrays(
        [[0, 0], [0, 1], [1, 0], [1, 1]], [[0, 3], [1, 3], [2, 3]], weights,
        velocity_m_s=0.1, length_um=[100.0] * 3, plastic=plastic,
        threshold=[1.0, 1.0, 1.0, threshold], tau_m_ms=math.inf)


ALL_AT_ONCE = [[0, 0], [1, 0], [2, 0]]
ZERO_STDP = StdpParams(a_plus=0.0, a_minus=0.0)


@pytest.mark.parametrize("record_causal", [False, True])
def test_fixed_weight_arrivals_are_summed_in_canonical_order(backend, record_causal):
    # (0.1 + 0.2) + 0.3 = 0.6000000000000001, but 0.1 + (0.2 + 0.3) = 0.6
    net = three_into_one([0.1, 0.2, 0.3], [False] * 3, threshold=0.6000000000000001)
    cfg = RunConfig(duration_ms=3, record_causal=record_causal)
    result = simulate(net, stim(ALL_AT_ONCE), cfg, backend=backend)
    assert spikes_of(result, 3) == [10]
    if record_causal:
        assert result.causes(int(np.flatnonzero(result.spike_nodes == 3)[0]))[0].tolist() == [
            0, 1, 2]


@pytest.mark.parametrize("record_causal", [False, True])
def test_fixed_weight_drive_is_summed_before_plastic_arrivals(backend, record_causal):
    # edge 0 (from node 0, first in canonical order) is plastic: the drive 0.2 + 0.3 = 0.5
    # comes first, then + 0.1 = 0.6, below the threshold; in plain canonical order the sum
    # would be (0.1 + 0.2) + 0.3 = 0.6000000000000001 and fire
    net = three_into_one([0.1, 0.2, 0.3], [True, False, False], threshold=0.6000000000000001)
    cfg = RunConfig(duration_ms=3, stdp=ZERO_STDP, record_causal=record_causal)
    assert spikes_of(simulate(net, stim(ALL_AT_ONCE), cfg, backend=backend), 3) == []
    # without STDP no weight can change, so all three are one drive, in canonical order
    cfg = RunConfig(duration_ms=3, record_causal=record_causal)
    assert spikes_of(simulate(net, stim(ALL_AT_ONCE), cfg, backend=backend), 3) == [10]


def test_a_refractory_target_loses_its_whole_drive(backend):
    net = three_into_one([0.5, 0.5, 0.5], [False] * 3, threshold=1.0)
    # node 3 is forced at tick 5 and refractory (1 ms) when the three signals arrive at 10
    result = simulate(net, stim([*ALL_AT_ONCE, [3, 5]]), RunConfig(duration_ms=3),
                      backend=backend)
    assert spikes_of(result, 3) == [5]
    assert result.stats["n_arrivals"] == 3 and result.stats["n_lost"] == 3


def test_bytes_per_edge_of_the_compiled_network():
    # listed by source, targets and delays within 32 bits: 4-byte code + 8-byte weight, plus
    # 8 bytes of rank lists per plastic edge
    net = crdm.input_recurrent(20, seed=0, image_shape=(5, 5))
    plastic = int(net.plastic.sum())
    assert crdm.Simulator(net).bytes_per_edge == 12 + 8 * plastic / net.n_edges
    with pytest.raises(crdm.errors.ValidationError, match="reference"):
        _ = crdm.Simulator(net, backend="reference").bytes_per_edge
