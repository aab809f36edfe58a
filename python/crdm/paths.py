"""Temporal paths: time-respecting walks along which each activation caused the next.

Definitions (also in ``docs/model.md``, "Temporal paths"):

* The **temporal graph** of one run has a vertex per firing ``(node, tick)``. Firing ``p`` is a
  **parent** of firing ``c`` when an *excitatory* signal emitted by ``p`` (along edge ``e``,
  arriving at ``tick(p) + delay(e)``) is among the accepted arrivals summed into ``c``'s node
  since its previous reset (the causal record, :meth:`crdm.SimulationResult.causes`).
  Inhibitory arrivals (weight ≤ 0 when carried) never make a parent: they pushed the node away
  from firing. Stimulus-forced firings have no parents.
* **Roots** are the stimulus-forced firings (the input spikes).
* A **temporal path** is a walk ``p_0 → p_1 → … → p_L`` through the temporal graph from a
  root, each step from a firing to one of its children, so its ticks strictly increase. Paths
  are sampled like node2vec's walks: from every root, ``walks_per_root`` walks, each step to a
  child chosen uniformly at random (seeded), stopping at a firing without children or after
  ``max_length`` nodes. As a sentence, a path is the sequence of its firings' node ids.

Every walker steps at once (numpy), so sampling costs ``O(max_length)`` array operations per
run, not a Python loop per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crdm._checks import integer
from crdm.errors import ValidationError
from crdm.network import Network
from crdm.simulation import SimulationResult
from crdm.units import ms_to_ticks

__all__ = ["TemporalGraph", "temporal_graph", "temporal_paths"]


@dataclass(frozen=True)
class TemporalGraph:
    """Firings and their causal children in CSR form.

    ``nodes[k]``, ``ticks[k]``: firing ``k`` (raster order); ``roots``: forced firings;
    children of ``k``: ``children[child_ptr[k]:child_ptr[k + 1]]``, in increasing order.
    """

    nodes: np.ndarray
    ticks: np.ndarray
    roots: np.ndarray
    child_ptr: np.ndarray
    children: np.ndarray

    @property
    def n_links(self) -> int:
        return int(self.children.size)


def temporal_graph(result: SimulationResult, network: Network, dt_ms: float) -> TemporalGraph:
    """The temporal graph of one run; needs ``RunConfig(record_causal=True)``."""
    if result.cause_offsets.size == 0:
        raise ValidationError("temporal paths need the causal record: run with "
                              "RunConfig(record_causal=True)", "record_causal", False)
    nodes = result.spike_nodes.astype(np.int64)
    ticks = result.spike_ticks.astype(np.int64)
    n_nodes = network.n_nodes
    delay = np.array([ms_to_ticks(x, dt_ms) for x in network.latency_ms()], dtype=np.int64) \
        if network.n_edges else np.zeros(0, np.int64)
    counts = np.diff(result.cause_offsets.astype(np.int64))
    child = np.repeat(np.arange(nodes.size), counts)
    edges = result.cause_edges.astype(np.int64)
    excitatory = result.cause_weights > 0
    child, edges = child[excitatory], edges[excitatory]
    emit = result.cause_ticks.astype(np.int64)[excitatory] - delay[edges]
    # Firings are unique per (tick, node) and the raster is sorted by that key.
    key = ticks * n_nodes + nodes
    parent_key = emit * n_nodes + network.edge_src[edges].astype(np.int64)
    parent = np.searchsorted(key, parent_key)
    found = (parent < key.size) & (key[np.minimum(parent, key.size - 1)] == parent_key)
    if not np.all(found):  # the engine guarantees it; a mismatch means a corrupt record
        raise ValidationError("the causal record names a parent firing that is not in the "
                              "raster (record and network do not belong together?)",
                              "result", int(np.flatnonzero(~found)[0]))
    order = np.lexsort((child, parent))
    parent, child = parent[order], child[order]
    ptr = np.zeros(nodes.size + 1, dtype=np.int64)
    np.add.at(ptr, parent + 1, 1)
    return TemporalGraph(nodes, ticks, np.flatnonzero(result.spike_forced),
                         np.cumsum(ptr), child)


def temporal_paths(graph: TemporalGraph, *, walks_per_root: int = 1, max_length: int = 20,
                   seed: int = 0, roots: np.ndarray | None = None) -> list[list[int]]:
    """Sampled temporal paths as lists of node ids (see the module docstring).

    ``roots`` overrides the starting firings (indices into the raster). Paths of one node (a
    root without children) are kept: they say which inputs fired.
    """
    walks_per_root = integer("walks_per_root", walks_per_root, low=1)
    max_length = integer("max_length", max_length, low=1)
    rng = np.random.default_rng(integer("seed", seed, low=0))
    start = graph.roots if roots is None else np.asarray(roots, dtype=np.int64)
    current = np.repeat(start, walks_per_root)
    steps = [current]
    alive = np.ones(current.size, dtype=bool)
    for _ in range(max_length - 1):
        lo = graph.child_ptr[current]
        n_children = graph.child_ptr[current + 1] - lo
        alive &= n_children > 0
        if not alive.any():
            break
        pick = lo + np.floor(rng.random(current.size) * np.maximum(n_children, 1)).astype(
            np.int64)
        current = np.where(alive, graph.children[np.minimum(pick, graph.children.size - 1)]
                           if graph.children.size else current, current)
        steps.append(np.where(alive, current, -1))
    firing = np.vstack(steps).T                       # (walks, length), -1 after the end
    node_ids = np.where(firing >= 0, graph.nodes[np.maximum(firing, 0)], -1)
    return [row[row >= 0].tolist() for row in node_ids]
