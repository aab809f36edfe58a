"""Temporal paths on hand-made causal records (docs/model.md, "Temporal paths")."""

from __future__ import annotations

import numpy as np
import pytest

import crdm
from crdm import RunConfig, Stimulus, simulate
from crdm.errors import ValidationError
from crdm.paths import temporal_graph, temporal_paths


def diamond():
    """0 → 1 → 3 and 0 → 2 → 3, plus an inhibitory 0 → 3 and a 1 → 2 signal that is lost.

    Latencies (0.1 m/s, dt 0.1 ms): 0→1 10 ticks, 0→2 20, 1→2 15 (arrives at 25, node 2 is
    refractory until 70), 1→3 10, 2→3 10, 0→3 5 (weight −0.5). Firings: 0@0 (forced), 1@10,
    2@20, 3@20 (caused by 1; the inhibitory 0→3 arrival is in its record but is no cause),
    3@30 (caused by 2; node 3 is refractory for 5 ticks only).
    """
    edges = [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3], [0, 3]]
    lengths = [100.0, 200.0, 150.0, 100.0, 100.0, 50.0]
    weights = [2.0, 2.0, 2.0, 2.0, 2.0, -0.5]
    return crdm.Network.from_arrays(np.zeros((4, 2)), edges, weights, velocity_m_s=0.1,
                                    length_um=lengths, refractory_ms=[1.0, 1.0, 5.0, 0.5],
                                    input_nodes=[0])


def run(backend, net=None):
    net = net or diamond()
    cfg = RunConfig(duration_ms=5.0, record_causal=True)
    return net, simulate(net, Stimulus(np.array([0]), np.array([0])), cfg, backend=backend)


def test_graph_links_each_firing_to_its_excitatory_causes(backend):
    net, result = run(backend)
    assert list(zip(result.spike_nodes.tolist(), result.spike_ticks.tolist(),
                    strict=True)) == [(0, 0), (1, 10), (2, 20), (3, 20), (3, 30)]
    g = temporal_graph(result, net, 0.1)
    assert g.roots.tolist() == [0]
    children = {k: g.children[g.child_ptr[k]:g.child_ptr[k + 1]].tolist() for k in range(5)}
    assert children == {0: [1, 2], 1: [3], 2: [4], 3: [], 4: []}
    assert g.n_links == 4


def test_paths_follow_causes_in_time(backend):
    net, result = run(backend)
    g = temporal_graph(result, net, 0.1)
    paths = temporal_paths(g, walks_per_root=64, seed=1)
    assert {tuple(p) for p in paths} == {(0, 1, 3), (0, 2, 3)}
    assert len(paths) == 64
    short = temporal_paths(g, walks_per_root=8, max_length=2, seed=1)
    assert {tuple(p) for p in short} <= {(0, 1), (0, 2)}
    assert temporal_paths(g, walks_per_root=8, seed=1) == temporal_paths(g, walks_per_root=8,
                                                                         seed=1)


def test_a_root_without_children_is_a_one_node_path(backend):
    net = crdm.Network.from_arrays(np.zeros((2, 2)), [[0, 1]], [0.5], input_nodes=[0])
    _, result = run(backend, net)
    g = temporal_graph(result, net, 0.1)
    assert temporal_paths(g, walks_per_root=3) == [[0], [0], [0]]


def test_paths_need_the_causal_record():
    net = diamond()
    result = simulate(net, Stimulus(np.array([0]), np.array([0])), RunConfig(duration_ms=5.0))
    with pytest.raises(ValidationError, match="record_causal"):
        temporal_graph(result, net, 0.1)
    _, result = run("rust")
    g = temporal_graph(result, net, 0.1)
    with pytest.raises(ValidationError, match="max_length"):
        temporal_paths(g, max_length=0)
