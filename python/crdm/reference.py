"""Pure-Python reference simulator of the CRDM, written for clarity rather than speed.

It follows ``docs/model.md`` step by step and never imports the compiled module, so it can
check the Rust engine: both evaluate the same floating-point expressions in the same order and
agree bit for bit (``tests/test_equivalence.py``). Use it through
``simulate(..., backend="reference")``.

One tick ``t`` (all times in ticks of ``dt_ms``; decays use ``Δt · dt_ms`` in ms):

1. Snapshot the weights if ``t`` is a snapshot tick.
2. Deliver the signals due at ``t``. Canonical order is (emission tick, source node, edge id).
   A *fixed-weight* edge is one whose weight cannot change in this run: every edge without
   STDP, the non-plastic ones with it.
   a. Fixed-weight arrivals: per target ``j``, ``D[j] = ((0 + w₁) + w₂) + …`` in canonical
      order.
      If ``t < ready[j]`` (refractory) they are all lost; otherwise
      ``u[j] ← u[j] · exp(-(t - t_u[j]) · dt / τ_m[j])`` (once per tick), ``u[j] ← u[j] + D[j]``.
   b. Then each plastic arrival on ``e = i → j`` in canonical order: lost if ``t < ready[j]``,
      otherwise summed the same way, ``u[j] ← u[j] + w[e]``; with STDP, if ``j`` has fired
      before, ``w[e] ← clip(w[e] - A− · y[j](t))``; then ``x[e] ← x[e](t) + 1``.
3. Stimulus activations due at ``t`` mark their nodes to fire (dropped if refractory).
4. Every node that received an accepted arrival at ``t`` and has ``u ≥ θ`` is marked.
5. Marked nodes fire in ascending id: ``u ← 0``, ``ready ← t + R``; with STDP, every plastic
   in-edge with an earlier arrival gets ``w ← clip(w + A+ · x(t))`` and ``y[j] ← y[j](t) + 1``;
   each out-edge ``e`` schedules an arrival at ``t + delay[e]`` (if inside the run).

Traces decay as ``x(t) = x(t₀) · exp(-(t - t₀) · dt / τ)``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np

from crdm.units import latency_ms, ms_to_ticks

if TYPE_CHECKING:
    from crdm.network import Network
    from crdm.run_types import RunConfig, Stimulus

__all__ = ["memory_bound_bytes", "run"]

# What this backend keeps per recorded or queued item, in bytes, counted generously for
# CPython 3.11 on 64 bits: a list slot (8) plus the int or float it points to (32), and a
# 3-tuple (64) with its three items.
_LIST_ITEM_BYTES = 8 + 32
_SIGNAL_BYTES = 8 + 64 + 3 * 32


def _decay(elapsed_ticks: int, dt_ms: float, tau_ms: float) -> float:
    return math.exp(-(elapsed_ticks * dt_ms) / tau_ms)


def memory_bound_bytes(network: Network, config: RunConfig, n_snapshot_edges: int) -> int:
    """Upper bound of what one run of this backend holds beyond its inputs: the signals in
    flight (at most one per out-edge per firing of its source within the longest latency),
    the recorders (Python lists, then numpy arrays of the same values), snapshots and final
    weights. It bounds this module's layout; the Rust engine bounds its own."""
    dt = float(config.dt_ms)
    n_ticks = config.n_ticks
    refractory = np.array([ms_to_ticks(float(r), dt) for r in network.refractory_ms],
                          dtype=np.int64)
    max_fires = -(-n_ticks // refractory)
    delays = [ms_to_ticks(latency_ms(float(d), float(v)), dt)
              for d, v in zip(network.length_um, network.velocity_m_s, strict=True)]
    horizon = min(max(delays, default=1), n_ticks) + 1
    in_flight_fires = np.minimum(max_fires, -(-horizon // refractory))
    out_degree = np.bincount(network.edge_src, minlength=network.n_nodes)
    total = int((out_degree * in_flight_fires).sum()) * _SIGNAL_BYTES
    fires = int(max_fires.sum())
    if config.record_raster or config.record_causal:
        total += fires * 2 * (_LIST_ITEM_BYTES + 4)
    if config.record_causal:
        causes = int((out_degree * max_fires).sum())
        total += fires * 2 * (_LIST_ITEM_BYTES + 8) + causes * 3 * (_LIST_ITEM_BYTES + 8)
    total += len(config.snapshot_ticks()) * n_snapshot_edges * (_LIST_ITEM_BYTES + 8)
    if config.record_final_weights:
        total += network.n_edges * 8
    return total


def run(network: Network, stimulus: Stimulus, config: RunConfig,
        snapshot_edges: np.ndarray) -> dict[str, Any]:
    """Simulates one stimulus; returns the same fields as the Rust engine's ``run``."""
    dt = float(config.dt_ms)
    n_ticks = config.n_ticks
    n = network.n_nodes
    stdp = config.stdp
    causal = config.record_causal
    raster = config.record_raster or causal

    refractory = [ms_to_ticks(float(r), dt) for r in network.refractory_ms]
    threshold = [float(x) for x in network.threshold]
    tau_m = [float(x) for x in network.tau_m_ms]
    src = [int(x) for x in network.edge_src]
    dst = [int(x) for x in network.edge_dst]
    delay = [ms_to_ticks(latency_ms(float(d), float(v)), dt)
             for d, v in zip(network.length_um, network.velocity_m_s, strict=False)]
    plastic = [bool(p) for p in network.plastic]
    weights = [float(w) for w in network.weights]

    out_edges: list[list[int]] = [[] for _ in range(n)]
    plastic_in: list[list[int]] = [[] for _ in range(n)]
    for e in range(len(src)):
        out_edges[src[e]].append(e)
        if plastic[e]:
            plastic_in[dst[e]].append(e)

    forced_at: dict[int, list[int]] = defaultdict(list)
    for node, tick in zip(stimulus.nodes.tolist(), stimulus.ticks.tolist(), strict=False):
        forced_at[tick].append(node)
    snapshot_ticks = set(config.snapshot_ticks())

    # signals in flight: arrival tick -> [(emission tick, source, edge)]
    in_flight: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    u = [0.0] * n
    u_tick = [0] * n
    ready = [0] * n
    pre_trace: dict[int, tuple[float, int]] = {}   # edge -> (value, tick of value)
    post_trace: dict[int, tuple[float, int]] = {}  # node -> (value, tick of value)
    pending: list[list[tuple[int, int, float]]] = [[] for _ in range(n)]

    out: dict[str, list[Any]] = {k: [] for k in (
        "spike_nodes", "spike_ticks", "spike_forced", "cause_offsets", "cause_edges",
        "cause_ticks", "cause_weights", "snapshots")}
    if causal:
        out["cause_offsets"].append(0)
    spike_counts = [0] * n
    stats = dict(n_spikes=0, n_forced=0, n_stimulus_dropped=0, n_arrivals=0, n_lost=0,
                 n_stdp_updates=0)

    def clip(w: float) -> float:
        assert stdp is not None
        return min(max(w, stdp.w_min), stdp.w_max)

    def snapshot() -> None:
        out["snapshots"].extend(weights[e] for e in snapshot_edges.tolist())

    def accept(j: int, n_signals: int, t: int, touched: set[int]) -> bool:
        """Counts ``n_signals`` arrivals at ``j`` at tick ``t``: lost if ``j`` is refractory,
        else accepted (``u[j]`` brought to ``t`` first, ``j`` marked as touched)."""
        stats["n_arrivals"] += n_signals
        if t < ready[j]:
            stats["n_lost"] += n_signals
            return False
        if u_tick[j] != t:
            u[j] = u[j] * _decay(t - u_tick[j], dt, tau_m[j])
            u_tick[j] = t
        touched.add(j)
        return True

    for t in range(n_ticks):
        if t in snapshot_ticks:
            snapshot()

        touched: set[int] = set()
        arrivals = sorted(in_flight.pop(t, []))
        drive: dict[int, float] = {}   # target -> sum of its fixed-weight arrivals
        fixed_causes: dict[int, list[int]] = defaultdict(list)
        for _, _, e in arrivals:
            if not (stdp is not None and plastic[e]):
                j = dst[e]
                drive[j] = drive.get(j, 0.0) + weights[e]
                fixed_causes[j].append(e)
        for j, total in drive.items():
            if accept(j, len(fixed_causes[j]), t, touched):
                u[j] = u[j] + total
                if causal:
                    pending[j].extend((e, t, weights[e]) for e in fixed_causes[j])
        for _, _, e in arrivals:
            if not (stdp is not None and plastic[e]):
                continue
            j = dst[e]
            if accept(j, 1, t, touched):
                u[j] = u[j] + weights[e]
                if causal:
                    pending[j].append((e, t, weights[e]))
            if stdp is not None:
                if j in post_trace:  # post before pre: depression
                    y_value, y_tick = post_trace[j]
                    y = y_value * _decay(t - y_tick, dt, stdp.tau_minus_ms)
                    weights[e] = clip(weights[e] - stdp.a_minus * y)
                    stats["n_stdp_updates"] += 1
                if e in pre_trace:
                    x_value, x_tick = pre_trace[e]
                    pre_trace[e] = (x_value * _decay(t - x_tick, dt, stdp.tau_plus_ms) + 1.0, t)
                else:
                    pre_trace[e] = (1.0, t)

        fire: dict[int, bool] = {}  # node -> forced
        for node in forced_at.get(t, []):
            if t < ready[node] or node in fire:
                stats["n_stimulus_dropped"] += 1
            else:
                fire[node] = True
        for j in touched:
            if j not in fire and u[j] >= threshold[j]:
                fire[j] = False

        for j in sorted(fire):
            forced = fire[j]
            stats["n_spikes"] += 1
            stats["n_forced"] += int(forced)
            spike_counts[j] += 1
            if raster:
                out["spike_nodes"].append(j)
                out["spike_ticks"].append(t)
            if causal:
                out["spike_forced"].append(forced)
                for e, tick, w in pending[j]:
                    out["cause_edges"].append(e)
                    out["cause_ticks"].append(tick)
                    out["cause_weights"].append(w)
                pending[j] = []
                out["cause_offsets"].append(len(out["cause_edges"]))
            u[j] = 0.0
            u_tick[j] = t
            ready[j] = t + refractory[j]
            if stdp is not None:
                for e in plastic_in[j]:  # pre before post (same tick included): potentiation
                    if e in pre_trace:
                        x_value, x_tick = pre_trace[e]
                        x = x_value * _decay(t - x_tick, dt, stdp.tau_plus_ms)
                        weights[e] = clip(weights[e] + stdp.a_plus * x)
                        stats["n_stdp_updates"] += 1
                if j in post_trace:
                    y_value, y_tick = post_trace[j]
                    post_trace[j] = (y_value * _decay(t - y_tick, dt, stdp.tau_minus_ms) + 1.0,
                                     t)
                else:
                    post_trace[j] = (1.0, t)
            for e in out_edges[j]:
                if t + delay[e] < n_ticks:
                    in_flight[t + delay[e]].append((t, j, e))

    if n_ticks in snapshot_ticks:
        snapshot()

    return {
        "spike_nodes": np.array(out["spike_nodes"], dtype=np.uint32),
        "spike_ticks": np.array(out["spike_ticks"], dtype=np.uint32),
        "spike_forced": np.array(out["spike_forced"], dtype=bool),
        "cause_offsets": np.array(out["cause_offsets"], dtype=np.uint64),
        "cause_edges": np.array(out["cause_edges"], dtype=np.uint32),
        "cause_ticks": np.array(out["cause_ticks"], dtype=np.uint32),
        "cause_weights": np.array(out["cause_weights"], dtype=np.float64),
        "snapshots": np.array(out["snapshots"], dtype=np.float64),
        "final_weights": np.array(weights if config.record_final_weights else [],
                                  dtype=np.float64),
        "spike_counts": np.array(spike_counts, dtype=np.uint32),
        "stats": stats,
    }
