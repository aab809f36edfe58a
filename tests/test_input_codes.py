"""Input codes: their equations and their errors (both backends agree on them:
``test_equivalence``)."""

from __future__ import annotations

import numpy as np
import pytest

import crdm
from crdm import InputCode, RunConfig
from crdm.errors import ValidationError


def firings(stimulus: crdm.Stimulus, node: int) -> list[int]:
    return stimulus.ticks[stimulus.nodes == node].tolist()


@pytest.fixture(scope="module")
def net() -> crdm.Network:
    # 2 × 2 pixels; input refractory 2 ms = 20 ticks
    return crdm.input_recurrent(3, seed=0, image_shape=(2, 2), input_refractory_ms=2.0)


CFG = RunConfig(duration_ms=10.0)            # 100 ticks of 0.1 ms
IMAGE = np.array([1.0, 0.5, 0.0, 0.25])


def test_binary_code_fires_every_refractory_period_and_ignores_intensity(net):
    stim = InputCode("binary").stimulus(IMAGE, net, CFG)
    assert firings(stim, 0) == firings(stim, 1) == firings(stim, 3) == [0, 20, 40, 60, 80]
    assert firings(stim, 2) == []
    assert np.array_equal(stim.nodes, crdm.image_stimulus(IMAGE, net, CFG).nodes)


def test_latency_code_fires_brighter_pixels_first(net):
    code = InputCode("latency", latency_window_ms=4.0)
    stim = code.stimulus(IMAGE, net, CFG)
    assert firings(stim, 0) == [0, 20, 40, 60, 80]          # (1 − 1.0) · 4 ms = 0
    assert firings(stim, 1) == [20, 40, 60, 80]              # (1 − 0.5) · 4 ms = 2 ms
    assert firings(stim, 3) == [30, 50, 70, 90]              # (1 − 0.25) · 4 ms = 3 ms
    once = InputCode("latency", latency_window_ms=4.0, latency_repeat=False)
    stim = once.stimulus(IMAGE, net, CFG)
    assert [firings(stim, i) for i in range(4)] == [[0], [20], [], [30]]


def test_rate_code_period_grows_as_grey_level_falls(net):
    stim = InputCode("rate").stimulus(IMAGE, net, CFG)
    assert firings(stim, 0) == [0, 20, 40, 60, 80]          # 1000 / (1.0 · 500 Hz) = 2 ms
    assert firings(stim, 1) == [0, 40, 80]                   # 4 ms
    assert firings(stim, 3) == [0, 80]                       # 8 ms
    slow = InputCode("rate", rate_max_hz=125.0).stimulus(IMAGE, net, CFG)
    assert firings(slow, 0) == [0, 80]                       # 8 ms, never faster than R
    fast = InputCode("rate", rate_max_hz=5000.0).stimulus(IMAGE, net, CFG)
    assert firings(fast, 0) == firings(stim, 0)


def test_graded_code_scales_the_input_edges_by_grey_level(net):
    code = InputCode("graded")
    graded = code.network_for(IMAGE, net)
    scale = np.ones(net.n_nodes)
    scale[net.input_nodes] = IMAGE
    assert np.array_equal(graded.weights, net.weights * scale[net.edge_src])
    recurrent = net.edge_src >= 4
    assert np.array_equal(graded.weights[recurrent], net.weights[recurrent])
    assert InputCode("binary").network_for(IMAGE, net) is net
    assert np.array_equal(code.stimulus(IMAGE, net, CFG).ticks,
                          InputCode("binary").stimulus(IMAGE, net, CFG).ticks)


def test_stimuli_are_sorted_by_tick_then_node(net):
    stim = InputCode("latency", latency_window_ms=4.0).stimulus(IMAGE, net, CFG)
    keys = stim.ticks * 100 + stim.nodes
    assert np.all(np.diff(keys) > 0)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"kind": "poisson"}, "input_code.kind"),
    ({"kind": "latency", "pixel_threshold": 1.0}, "input_code.pixel_threshold"),
    ({"kind": "rate", "rate_max_hz": 0.0}, "input_code.rate_max_hz"),
    ({"kind": "latency", "latency_window_ms": -1.0}, "input_code.latency_window_ms"),
    ({"kind": "latency", "latency_repeat": 1}, "input_code.latency_repeat"),
])
def test_bad_code_parameters_name_their_field(kwargs, field):
    with pytest.raises(ValidationError) as info:
        InputCode(**kwargs)
    assert info.value.field == field


@pytest.mark.parametrize("kind", ["latency", "rate", "graded"])
def test_intensity_codes_refuse_grey_levels_outside_0_1(net, kind):
    with pytest.raises(ValidationError) as info:
        code = InputCode(kind)
        code.stimulus(np.array([0.0, 255.0, 0.0, 0.0]), net, CFG)
        code.network_for(np.array([0.0, 255.0, 0.0, 0.0]), net)
    assert info.value.field == "image[1]"
    assert info.value.value == 255.0


def test_binary_code_still_thresholds_uint8_images(net):
    image = np.array([0, 200, 100, 0], dtype=np.uint8)
    stim = InputCode("binary", pixel_threshold=150).stimulus(image, net, CFG)
    assert set(stim.nodes.tolist()) == {1}
