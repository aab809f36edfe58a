"""Bad input raises a typed crdm error naming the field and the value — on both layers.

The public API validates before any backend runs; ``crdm._core`` validates again on its own,
so the Rust engine is safe to call directly. Each case here checks one bad field.
"""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

import crdm
from crdm import _core
from crdm.errors import (
    CrdmError,
    DtypeError,
    IndexOutOfRangeError,
    InternalError,
    MemoryLimitError,
    ShapeError,
    ValidationError,
)


def good_arrays() -> dict:
    return dict(
        positions_um=np.zeros((3, 3)), refractory_ms=np.ones(3), threshold=np.ones(3),
        tau_m_ms=np.full(3, np.inf), edge_src=np.array([0, 1]), edge_dst=np.array([1, 2]),
        weights=np.array([0.5, -0.5]), length_um=np.array([100.0, 100.0]),
        velocity_m_s=np.array([1.0, 1.0]), plastic=np.array([True, False]),
        input_nodes=np.array([0]),
    )


def with_bad(field: str, value) -> dict:
    arrays = good_arrays()
    arrays[field] = value
    return arrays


@pytest.mark.parametrize(("field", "value", "error", "named"), [
    ("weights", [np.nan, 0.5], ValidationError, "weights[0]"),
    ("weights", [0.5, np.inf], ValidationError, "weights[1]"),
    ("velocity_m_s", [1.0, 0.0], ValidationError, "velocity_m_s[1]"),
    ("velocity_m_s", [-2.0, 1.0], ValidationError, "velocity_m_s[0]"),
    ("refractory_ms", [1.0, 0.0, 1.0], ValidationError, "refractory_ms[1]"),
    ("refractory_ms", [1.0, 1.0, -1.0], ValidationError, "refractory_ms[2]"),
    ("threshold", [1.0, np.nan, 1.0], ValidationError, "threshold[1]"),
    ("tau_m_ms", [0.0, 1.0, 1.0], ValidationError, "tau_m_ms[0]"),
    ("length_um", [-1.0, 1.0], ValidationError, "length_um[0]"),
    ("edge_dst", [1, 3], IndexOutOfRangeError, "edge_dst[1]"),
    ("edge_src", [-1, 0], IndexOutOfRangeError, "edge_src[0]"),
    ("input_nodes", [7], IndexOutOfRangeError, "input_nodes[0]"),
    ("weights", [0.5, 0.5, 0.5], ShapeError, "weights"),
    ("positions_um", np.zeros((3, 2)), ShapeError, "positions_um"),
    ("edge_src", np.array([0.0, 1.0]), DtypeError, "edge_src"),
    ("weights", np.array(["a", "b"]), DtypeError, "weights"),
    ("plastic", np.array([1, 0]), DtypeError, "plastic"),
])
def test_network_rejects_bad_field(field, value, error, named):
    with pytest.raises(error) as info:
        crdm.Network(**with_bad(field, value))
    assert info.value.field == named
    assert named in str(info.value)


def test_errors_name_the_value():
    with pytest.raises(ValidationError) as info:
        crdm.Network(**with_bad("velocity_m_s", [1.0, -3.5]))
    assert info.value.value == -3.5 and "-3.5" in str(info.value)


def tiny() -> crdm.Network:
    return crdm.Network(**good_arrays())


def test_stimulus_tick_beyond_the_run(backend):
    cfg = crdm.RunConfig(duration_ms=1.0)  # 10 ticks
    with pytest.raises(IndexOutOfRangeError) as info:
        crdm.simulate(tiny(), crdm.Stimulus([0], [10]), cfg, backend=backend)
    assert info.value.field == "stimulus.ticks[0]" and info.value.value == 10


def test_stimulus_node_out_of_range(backend):
    with pytest.raises(IndexOutOfRangeError, match=r"stimulus\.nodes\[1\]"):
        crdm.simulate(tiny(), crdm.Stimulus([0, 3], [0, 0]), crdm.RunConfig(duration_ms=1.0),
                      backend=backend)


def test_stimulus_wrong_dtype_and_shape():
    with pytest.raises(DtypeError):
        crdm.Stimulus(np.array([0.5]), np.array([0]))
    with pytest.raises(ShapeError):
        crdm.Stimulus(np.array([0, 1]), np.array([0]))


@pytest.mark.parametrize(("kwargs", "field"), [
    (dict(duration_ms=0.0), "duration_ms"),
    (dict(duration_ms=math.nan), "duration_ms"),
    (dict(dt_ms=-0.1), "dt_ms"),
    (dict(dt_ms=math.inf), "dt_ms"),
    (dict(duration_ms=1e12), "duration_ms"),
    (dict(snapshot_interval_ms=0.0), "snapshot_interval_ms"),
    (dict(snapshot_edges="some"), "snapshot_edges"),
    (dict(memory_limit_bytes=-1), "memory_limit_bytes"),
    (dict(stdp="yes"), "stdp"),
])
def test_run_config_rejects(kwargs, field):
    with pytest.raises(ValidationError) as info:
        crdm.RunConfig(**kwargs)
    assert info.value.field == field


@pytest.mark.parametrize(("kwargs", "field"), [
    (dict(a_plus=-0.1), "stdp.a_plus"),
    (dict(a_minus=math.nan), "stdp.a_minus"),
    (dict(tau_plus_ms=0.0), "stdp.tau_plus_ms"),
    (dict(tau_minus_ms=math.inf), "stdp.tau_minus_ms"),
    (dict(w_min=1.0, w_max=0.0), "stdp.w_min"),
])
def test_stdp_params_reject(kwargs, field):
    with pytest.raises(ValidationError) as info:
        crdm.StdpParams(**kwargs)
    assert info.value.field == field


def test_snapshot_edges_out_of_range(backend):
    cfg = crdm.RunConfig(duration_ms=1.0, snapshot_edges=np.array([0, 5]))
    with pytest.raises(IndexOutOfRangeError, match=r"snapshot_edges\[1\]"):
        crdm.simulate(tiny(), crdm.Stimulus([0], [0]), cfg, backend=backend)


def test_latency_too_long_for_the_tick_range(backend):
    net = crdm.Network(**with_bad("length_um", [1e300, 1.0]))
    with pytest.raises(ValidationError, match=r"length_um\[0\]"):
        crdm.simulate(net, crdm.Stimulus([0], [0]), crdm.RunConfig(duration_ms=1.0),
                      backend=backend)


def test_unknown_backend():
    with pytest.raises(ValidationError, match="backend"):
        crdm.simulate(tiny(), crdm.Stimulus([0], [0]), backend="gpu")  # type: ignore[arg-type]


def test_recording_over_the_memory_limit_fails_up_front(backend):
    net = crdm.input_recurrent(50, seed=0)
    cfg = crdm.RunConfig(duration_ms=600.0, record_causal=True, memory_limit_bytes=10**6)
    with pytest.raises(MemoryLimitError) as info:
        crdm.simulate(net, crdm.Stimulus([0], [0]), cfg, backend=backend)
    assert info.value.value > 10**6 and "bytes" in str(info.value)


def test_a_delay_ring_over_the_memory_limit_fails_up_front():
    """A latency of 10^7 ticks in a run as long needs two 240 MB rings before the first tick:
    refused by the bound, not allocated (at 10^9 ticks it would be 48 GB). Dense drive
    cells for so many slots are over their cap, so the bound has only the rings."""
    net = crdm.Network(**with_bad("length_um", [1e9, 100.0]))      # 10^6 ms at 1 m/s
    cfg = crdm.RunConfig(duration_ms=1.1e6, record_raster=False, snapshot_interval_ms=None,
                         record_final_weights=False, memory_limit_bytes=10**8)
    with pytest.raises(MemoryLimitError) as info:
        crdm.simulate(net, crdm.Stimulus([0], [0]), cfg)
    assert info.value.value == (10**7 + 1) * 2 * 24 and "delay rings" in str(info.value)


def test_each_backend_refuses_exactly_above_its_own_memory_bound(backend):
    """The limit is checked against the backend's own bound: a run at the bound goes ahead,
    one byte less is refused before it starts. The raster adds to the bound, the final
    weights exactly 8 bytes per edge."""
    net = crdm.input_recurrent(20, seed=0, image_shape=(5, 5), plastic="recurrent")
    image = np.zeros(25)
    image[[3, 7, 12]] = 1.0
    sim = crdm.Simulator(net, backend=backend)
    bounds = {}
    for causal, raster, final in ((True, True, True), (False, True, True),
                                  (False, False, True), (False, False, False)):
        for stdp in (crdm.StdpParams(), None):
            cfg = crdm.RunConfig(duration_ms=20.0, record_causal=causal, record_raster=raster,
                                 stdp=stdp, record_final_weights=final)
            bound = sim.recording_bound_bytes(cfg)
            bounds[causal, raster, final, stdp is None] = bound
            stimulus = crdm.image_stimulus(image, net, cfg)
            at = replace(cfg, memory_limit_bytes=bound)
            assert sim.run(stimulus, at).stats["n_spikes"] > 0
            with pytest.raises(MemoryLimitError) as info:
                sim.run(stimulus, replace(cfg, memory_limit_bytes=bound - 1))
            assert info.value.value == bound
    for stdp_off in (True, False):
        assert bounds[False, True, True, stdp_off] > bounds[False, False, True, stdp_off]
        assert (bounds[False, False, True, stdp_off]
                == bounds[False, False, False, stdp_off] + 8 * net.n_edges)


# -- the compiled module on its own ---------------------------------------------------------

def engine_args(**overrides) -> list:
    a = good_arrays()
    args = dict(refractory_ms=a["refractory_ms"], threshold=a["threshold"],
                tau_m_ms=a["tau_m_ms"], edge_src=a["edge_src"], edge_dst=a["edge_dst"],
                weights=a["weights"], length_um=a["length_um"],
                velocity_m_s=a["velocity_m_s"], plastic=a["plastic"], dt_ms=0.1)
    args.update(overrides)
    return list(args.values())


@pytest.mark.parametrize(("override", "error", "field"), [
    (dict(weights=np.array([np.nan, 1.0])), ValidationError, "weights[0]"),
    (dict(velocity_m_s=np.array([1.0, 0.0])), ValidationError, "velocity_m_s[1]"),
    (dict(refractory_ms=np.array([1.0, -1.0, 1.0])), ValidationError, "refractory_ms[1]"),
    (dict(edge_dst=np.array([0, 9])), IndexOutOfRangeError, "edge_dst[1]"),
    (dict(weights=np.array([1.0])), ShapeError, "weights"),
    (dict(dt_ms=0.0), ValidationError, "dt_ms"),
    (dict(length_um=np.array([1e300, 1.0])), ValidationError, "length_um[0]"),
])
def test_core_engine_validates_on_its_own(override, error, field):
    with pytest.raises(error) as info:
        _core.Engine(*engine_args(**override))
    assert info.value.field == field


def core_run(engine, nodes, ticks, n_ticks=10, **kw):
    options = dict(stdp=None, record_raster=True, record_causal=False,
                   record_final_weights=True, snapshot_ticks=[],
                   snapshot_edges=np.zeros(0, np.int64), memory_limit_bytes=2**40)
    options.update(kw)
    return engine.run(np.asarray(nodes, np.int64), np.asarray(ticks, np.int64), n_ticks,
                      **options)


def test_core_run_validates_on_its_own():
    engine = _core.Engine(*engine_args())
    with pytest.raises(IndexOutOfRangeError, match=r"stimulus_ticks\[0\]"):
        core_run(engine, [0], [10])
    with pytest.raises(IndexOutOfRangeError, match=r"stimulus_nodes\[0\]"):
        core_run(engine, [5], [0])
    with pytest.raises(ValidationError, match=r"stdp\.tau_plus_ms"):
        # read by name from any object: here one that skips the Python-side checks
        stdp = SimpleNamespace(a_plus=0.1, tau_plus_ms=0.0, a_minus=0.1, tau_minus_ms=1.0,
                               w_min=-1.0, w_max=1.0)
        core_run(engine, [0], [0], stdp=stdp)
    with pytest.raises(ValidationError, match=r"snapshot_ticks\[1\]"):
        core_run(engine, [0], [0], snapshot_ticks=[5, 5])
    with pytest.raises(ValidationError, match="n_ticks"):
        core_run(engine, [0], [0], n_ticks=0)
    with pytest.raises(MemoryLimitError):
        core_run(engine, [0], [0], memory_limit_bytes=1)
    with pytest.raises(ValidationError, match="stimulus_nodes"):
        core_run(engine, np.array([0, 1, 2])[::2], [0, 0])  # non-contiguous view


def test_core_rejects_wrong_dtype_with_type_error():
    with pytest.raises(TypeError):
        _core.Engine(*engine_args(edge_src=np.array([0.0, 1.0])))


def test_rust_panic_becomes_internal_error():
    with pytest.raises(InternalError, match="deliberate panic"):
        _core._trigger_panic()
    assert issubclass(InternalError, CrdmError)


def test_batch_errors_name_the_stimulus(backend):
    sim = crdm.Simulator(tiny(), backend=backend)
    cfg = crdm.RunConfig(duration_ms=1.0)
    good = crdm.Stimulus([0], [0])
    with pytest.raises(IndexOutOfRangeError, match=r"stimulus\.ticks\[0\]"):
        sim.run_batch([good, crdm.Stimulus([0], [99])], cfg)
    with pytest.raises(ValidationError, match=r"stimuli\[1\]"):
        sim.run_batch([good, "not a stimulus"], cfg)  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="n_threads"):
        sim.run_batch([good], cfg, n_threads=0)


def test_core_batch_names_the_stimulus_and_bounds_memory():
    engine = _core.Engine(*engine_args())
    ok, bad = np.array([0], np.int64), np.array([10], np.int64)
    kw = dict(stdp=None, record_raster=True, record_causal=False, record_final_weights=True,
              snapshot_ticks=[],
              snapshot_edges=np.zeros(0, np.int64), n_threads=2)
    with pytest.raises(IndexOutOfRangeError) as info:
        engine.run_batch([ok, ok], [ok - 0, bad], 10, memory_limit_bytes=2**40, **kw)
    assert info.value.field == "stimuli[1].stimulus_ticks[0]"
    one = engine.run_batch([ok], [ok], 10, memory_limit_bytes=2**40, **kw)[0]
    assert one["stats"]["n_spikes"] >= 1
    bound = engine.recording_bound_bytes(10, stdp=None, record_raster=True,
                                         record_causal=False, record_final_weights=True,
                                         snapshot_ticks=[], snapshot_edges=np.zeros(0, np.int64))
    with pytest.raises(MemoryLimitError):
        engine.run_batch([ok] * 3, [ok] * 3, 10, memory_limit_bytes=2 * bound, **kw)
    with pytest.raises(ShapeError):
        engine.run_batch([ok], [], 10, memory_limit_bytes=2**40, **kw)
