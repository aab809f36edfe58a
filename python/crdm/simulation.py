"""Running the CRDM: run configuration, stimuli, results, and the backend switch.

Model (``docs/model.md`` has the full statement, with units):

* time runs in integer ticks of ``dt_ms`` (default 0.1 ms); latencies ``τ_ij = d_ij / v_ij``
  and refractory periods ``R_i`` become ``max(1, floor(x / dt + 0.5))`` ticks;
* a node firing at tick ``t`` sends a signal along each out-edge, arriving at ``t + τ_ij``;
* an arrival at a refractory target (``t < t_fire + R``) is lost; otherwise its weight is added
  to the target's summation ``u``, which decays as ``u ← u · exp(-Δt / τ_m)`` (ms);
* after all arrivals of a tick, ``u ≥ θ`` fires the node, resets ``u = 0`` and starts ``R``;
* STDP (pair-based, all-to-all pairs): an arrival on a plastic edge at ``t_pre`` and a firing
  of its target at ``t_post`` change the weight by ``+A+ · exp(-(t_post - t_pre) / τ+)`` if
  ``t_pre ≤ t_post``, by ``-A− · exp(-(t_pre - t_post) / τ−)`` if ``t_pre > t_post``.

Two interchangeable backends compute it: ``"rust"`` (``crdm._core``, the default) and
``"reference"`` (``crdm.reference``, pure Python, for checking).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from crdm._checks import (
    as_index_array,
    check_indices,
    integer,
    real,
    sequence,
)
from crdm.errors import IndexOutOfRangeError, MemoryLimitError, ValidationError
from crdm.network import Network
from crdm.units import MAX_TICKS, ms_to_ticks

# Revision of the dynamics docs/model.md defines. 2 (crdm 0.2): fixed-weight arrivals are
# summed per target before the plastic ones. Result folders store it, so a run never resumes
# chunks simulated under other dynamics.
MODEL_REVISION = 2

# Bytes of one slot of the core's delay rings (an empty `Vec<u32>`: pointer, capacity, length),
# as its memory bound counts them; a run has two rings (plastic signals, fixed-weight drive).
RING_SLOT_BYTES = 24
# One dense drive cell (f64 sum, u32 count, padding) and the most a run's dense drive may take.
DRIVE_CELL_BYTES = 16
DENSE_DRIVE_MAX_BYTES = 16 << 20
# One entry of a node's firing history with STDP (u64 tick, f64 pre-synaptic trace).
HISTORY_ENTRY_BYTES = 16

__all__ = [
    "Backend",
    "RunConfig",
    "SimulationResult",
    "Simulator",
    "StdpParams",
    "Stimulus",
    "image_stimulus",
    "simulate",
]

Backend = Literal["rust", "reference"]
BACKENDS: tuple[str, ...] = ("rust", "reference")


@dataclass(frozen=True)
class StdpParams:
    """Pair-based STDP with exponential windows.

    Defaults: the windows of Bi & Poo (1998), τ+ = 16.8 ms and τ− = 33.7 ms; amplitudes with
    the ~2:1 ratio of Froemke & Dan (2002), which makes the two windows' areas equal
    (A+·τ+ ≈ A−·τ−). Weights may cross zero; ``w_min``/``w_max`` bound them if finite.
    """

    a_plus: float = 0.01
    tau_plus_ms: float = 16.8
    a_minus: float = 0.005
    tau_minus_ms: float = 33.7
    w_min: float = -math.inf
    w_max: float = math.inf

    def __post_init__(self) -> None:
        real("stdp.a_plus", self.a_plus, low=0.0)
        real("stdp.a_minus", self.a_minus, low=0.0)
        real("stdp.tau_plus_ms", self.tau_plus_ms, low=0.0, low_open=True)
        real("stdp.tau_minus_ms", self.tau_minus_ms, low=0.0, low_open=True)
        lo = real("stdp.w_min", self.w_min, allow_inf=True)
        hi = real("stdp.w_max", self.w_max, allow_inf=True)
        if lo > hi:
            raise ValidationError(f"invalid value for `stdp.w_min`: {lo} (must be <= w_max = "
                                  f"{hi})", "stdp.w_min", lo)

    def as_tuple(self) -> tuple[float, float, float, float, float, float]:
        return (float(self.a_plus), float(self.tau_plus_ms), float(self.a_minus),
                float(self.tau_minus_ms), float(self.w_min), float(self.w_max))


@dataclass(frozen=True)
class RunConfig:
    """What one simulation runs and records.

    ``snapshot_interval_ms`` takes weight snapshots at every multiple of it up to and including
    the end of the run (none if ``None``); a snapshot at tick ``s`` holds the weights after
    ticks ``0 .. s-1``. ``snapshot_edges`` is ``"plastic"`` (default), ``"all"`` or an array of
    edge ids. ``record_causal`` implies the raster. ``record_final_weights`` returns every
    edge's weight at the end (off, ``final_weights`` is empty: a sweep that keeps only the
    snapshots saves a fresh ``8 × n_edges``-byte array per run). ``memory_limit_bytes``
    refuses, before it starts, a run whose recorders could exceed it (``docs/model.md``,
    "Recorders").
    """

    duration_ms: float = 600.0
    dt_ms: float = 0.1
    stdp: StdpParams | None = None
    record_raster: bool = True
    record_causal: bool = False
    record_final_weights: bool = True
    snapshot_interval_ms: float | None = 100.0
    snapshot_edges: str | np.ndarray = "plastic"
    memory_limit_bytes: int = 4 * 2**30
    snapshot_at_ms: Sequence[float] | None = None

    def __post_init__(self) -> None:
        duration = real("duration_ms", self.duration_ms, low=0.0, low_open=True)
        dt = real("dt_ms", self.dt_ms, low=0.0, low_open=True)
        if duration / dt > MAX_TICKS:
            raise ValidationError(f"invalid value for `duration_ms`: {duration} (more than "
                                  f"{MAX_TICKS} ticks of `dt_ms` = {dt} ms)", "duration_ms",
                                  duration)
        if self.stdp is not None and not isinstance(self.stdp, StdpParams):
            raise ValidationError(f"`stdp` must be StdpParams or None, got {self.stdp!r}",
                                  "stdp", self.stdp)
        if self.snapshot_interval_ms is not None:
            real("snapshot_interval_ms", self.snapshot_interval_ms, low=0.0, low_open=True)
        if self.snapshot_at_ms is not None:
            times = tuple(real(f"snapshot_at_ms[{k}]", t, low=0.0)
                          for k, t in enumerate(sequence("snapshot_at_ms",
                                                         self.snapshot_at_ms)))
            object.__setattr__(self, "snapshot_at_ms", times)
            ticks = self.snapshot_ticks()
            for k in range(len(ticks)):
                if ticks[k] > self.n_ticks or (k and ticks[k] <= ticks[k - 1]):
                    raise ValidationError(
                        f"invalid value for `snapshot_at_ms[{k}]`: {times[k]} (snapshot times "
                        f"must increase by at least one tick and end by {duration} ms)",
                        f"snapshot_at_ms[{k}]", times[k])
        if isinstance(self.snapshot_edges, str):
            if self.snapshot_edges not in ("plastic", "all"):
                raise ValidationError(
                    f"invalid value for `snapshot_edges`: {self.snapshot_edges!r} ('plastic', "
                    "'all' or an array of edge ids)", "snapshot_edges", self.snapshot_edges)
        else:
            object.__setattr__(self, "snapshot_edges",
                               as_index_array("snapshot_edges", self.snapshot_edges, (None,)))
        integer("memory_limit_bytes", self.memory_limit_bytes)
        for name in ("record_raster", "record_causal", "record_final_weights"):
            if not isinstance(getattr(self, name), bool):
                raise ValidationError(f"`{name}` must be a bool", name, getattr(self, name))

    @property
    def n_ticks(self) -> int:
        """Ticks simulated: ``duration_ms / dt_ms`` rounded half up, at least 1."""
        return ms_to_ticks(self.duration_ms, self.dt_ms)

    def snapshot_ticks(self) -> list[int]:
        if self.snapshot_at_ms is not None:
            return [math.floor(t / self.dt_ms + 0.5) for t in self.snapshot_at_ms]
        if self.snapshot_interval_ms is None:
            return []
        step = ms_to_ticks(self.snapshot_interval_ms, self.dt_ms)
        return list(range(step, self.n_ticks + 1, step))

    def snapshot_edge_ids(self, network: Network) -> np.ndarray:
        if isinstance(self.snapshot_edges, str):
            if self.snapshot_edges == "all":
                return np.arange(network.n_edges, dtype=np.int64)
            return np.flatnonzero(network.plastic).astype(np.int64)
        check_indices("snapshot_edges", self.snapshot_edges, network.n_edges)
        return self.snapshot_edges


@dataclass(frozen=True, eq=False)
class Stimulus:
    """Forced activations: node ``nodes[k]`` fires at tick ``ticks[k]`` unless refractory."""

    nodes: np.ndarray
    ticks: np.ndarray

    def __post_init__(self) -> None:
        nodes = as_index_array("stimulus.nodes", self.nodes, (None,))
        ticks = as_index_array("stimulus.ticks", self.ticks, (nodes.shape[0],))
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "ticks", ticks)

    def check(self, network: Network, config: RunConfig) -> None:
        check_indices("stimulus.nodes", self.nodes, network.n_nodes)
        bad = np.flatnonzero((self.ticks < 0) | (self.ticks >= config.n_ticks))
        if bad.size:
            i = int(bad[0])
            raise IndexOutOfRangeError(
                f"`stimulus.ticks[{i}]` = {self.ticks[i]} is outside the run's ticks "
                f"[0, {config.n_ticks})", f"stimulus.ticks[{i}]", int(self.ticks[i]))


def image_stimulus(image: Any, network: Network, config: RunConfig, *,
                   pixel_threshold: float = 0.0) -> Stimulus:
    """The default image encoder: binary, repeating.

    Every pixel with intensity ``> pixel_threshold`` makes its input node fire at tick 0 and
    again each time the node leaves refractoriness (every ``R`` ticks) until the end of the run.
    Intensity is used only through that threshold. Codes that keep intensity are in
    :mod:`crdm.input_codes`.
    """
    from crdm.input_codes import InputCode

    return InputCode("binary", pixel_threshold=pixel_threshold).stimulus(image, network, config)


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """What one run produced. Recorder arrays are empty when their recorder was off.

    * ``spike_nodes``, ``spike_ticks`` (uint32): the raster, ordered by (tick, node).
    * ``spike_forced`` (bool), ``cause_offsets`` (uint64, one more than spikes),
      ``cause_edges``, ``cause_ticks`` (uint32), ``cause_weights`` (float64): the causal
      record; the causes of spike ``k`` are entries ``cause_offsets[k]:cause_offsets[k+1]``,
      the accepted arrivals summed into the node since its previous reset.
    * ``snapshots`` (float64, ``(len(snapshot_ticks), len(snapshot_edges))``).
    * ``final_weights`` (float64, every edge by id, ``record_final_weights``),
      ``spike_counts`` (uint32 per node).
    * ``stats``: ``n_spikes``, ``n_forced``, ``n_stimulus_dropped``, ``n_arrivals``,
      ``n_lost``, ``n_stdp_updates``.
    """

    spike_nodes: np.ndarray
    spike_ticks: np.ndarray
    spike_forced: np.ndarray
    cause_offsets: np.ndarray
    cause_edges: np.ndarray
    cause_ticks: np.ndarray
    cause_weights: np.ndarray
    snapshot_ticks: np.ndarray
    snapshot_edges: np.ndarray
    snapshots: np.ndarray
    final_weights: np.ndarray
    spike_counts: np.ndarray
    stats: Mapping[str, int] = field(default_factory=dict)
    dt_ms: float = 0.1

    @property
    def spike_times_ms(self) -> np.ndarray:
        return self.spike_ticks.astype(np.float64) * self.dt_ms

    def causes(self, spike: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(edges, arrival_ticks, weights)`` of the arrivals that made spike ``spike``."""
        if self.cause_offsets.size == 0:
            raise ValidationError("the causal record was not enabled for this run "
                                  "(RunConfig(record_causal=True))", "record_causal", False)
        lo, hi = int(self.cause_offsets[spike]), int(self.cause_offsets[spike + 1])
        return self.cause_edges[lo:hi], self.cause_ticks[lo:hi], self.cause_weights[lo:hi]


def recording_bound_bytes(network: Network, config: RunConfig, n_snapshot_edges: int) -> int:
    """Upper bound of the memory of the recorders and the delay rings for ``config`` (twin of
    the core's bound)."""
    n_ticks = config.n_ticks
    max_fires = np.array([-(-n_ticks // ms_to_ticks(r, config.dt_ms))
                          for r in network.refractory_ms], dtype=object)
    latencies = network.latency_ms()
    # ms_to_ticks over every edge, vectorised (the same float expression)
    max_delay = int(max(np.floor(latencies / config.dt_ms + 0.5).max(initial=1.0), 1.0))
    ring_slots = min(max_delay, n_ticks) + 1
    total = ring_slots * 2 * RING_SLOT_BYTES
    fixed = (np.ones(network.n_edges, dtype=bool) if config.stdp is None
             else ~np.asarray(network.plastic, dtype=bool))
    n_targets = np.unique(network.edge_dst[fixed]).size
    # a cell per (slot, target) and a bit per cell, in 64-bit words
    dense_bytes = ring_slots * (n_targets * DRIVE_CELL_BYTES + -(-n_targets // 64) * 8)
    if not config.record_causal and dense_bytes <= DENSE_DRIVE_MAX_BYTES:
        # twice when every fixed-weight edge leaves a node nothing reaches: a run may then
        # replay a periodic drive, whose rows never take more than the cells
        reached = np.zeros(network.n_nodes, dtype=bool)
        reached[network.edge_dst] = True
        may_replay = bool(fixed.any()) and not reached[network.edge_src[fixed]].any()
        total += dense_bytes * (2 if may_replay else 1)
    total += len(config.snapshot_ticks()) * n_snapshot_edges * 8
    plastic = np.asarray(network.plastic, dtype=bool)
    if config.stdp is not None and plastic.any():
        # each node with plastic out-edges keeps a ring of its recent firings: those that can
        # be in flight on its longest plastic latency, plus one, rounded up to a power of two
        delay = np.maximum(np.floor(latencies / config.dt_ms + 0.5), 1.0).astype(np.int64)
        longest = np.zeros(network.n_nodes, dtype=np.int64)
        np.maximum.at(longest, network.edge_src[plastic], delay[plastic])
        refractory = [ms_to_ticks(r, config.dt_ms) for r in network.refractory_ms]
        entries = sum(1 << (min(d, n_ticks) // r + 1).bit_length()
                      for d, r in zip(longest.tolist(), refractory, strict=True) if d > 0)
        total += entries * HISTORY_ENTRY_BYTES
    if config.record_raster or config.record_causal:
        total += int(max_fires.sum()) * (17 if config.record_causal else 8)
    if config.record_final_weights:
        total += network.n_edges * 8
    if config.record_causal:
        out_degree = np.bincount(network.edge_src, minlength=network.n_nodes)
        total += int(sum(int(d) * int(f) for d, f in zip(out_degree, max_fires, strict=False))) * 16
    return total


def _check_tick_ranges(network: Network, dt_ms: float) -> None:
    """Latencies and refractory periods must fit the core's tick range at ``dt_ms``."""
    for field_name, ms in (("length_um", network.latency_ms()),
                           ("refractory_ms", network.refractory_ms)):
        with np.errstate(over="ignore"):
            ticks = np.floor(ms / dt_ms + 0.5)
        bad = np.flatnonzero(~np.isfinite(ticks) | (ticks > MAX_TICKS))
        if bad.size:
            i = int(bad[0])
            raise ValidationError(
                f"invalid value for `{field_name}[{i}]`: {ms[i]} ms is more than {MAX_TICKS} "
                f"ticks of {dt_ms} ms", f"{field_name}[{i}]", float(ms[i]))


class Simulator:
    """A network prepared for repeated runs on one backend.

    ``Simulator(network, dt_ms=0.1, backend="rust").run(stimulus, config)``; the network is
    compiled once (for the Rust backend) and reused for every stimulus.
    """

    def __init__(self, network: Network, *, dt_ms: float = 0.1, backend: Backend = "rust"):
        if backend not in BACKENDS:
            raise ValidationError(f"invalid value for `backend`: {backend!r} (one of "
                                  f"{', '.join(BACKENDS)})", "backend", backend)
        if not isinstance(network, Network):
            raise ValidationError(f"`network` must be a crdm.Network, got {type(network)}",
                                  "network", type(network).__name__)
        self.network = network
        self.dt_ms = real("dt_ms", dt_ms, low=0.0, low_open=True)
        self.backend = backend
        _check_tick_ranges(network, self.dt_ms)
        self._engine: Any = None
        if backend == "rust":
            from crdm import _core

            net = network
            self._engine = _core.Engine(
                net.refractory_ms, net.threshold, net.tau_m_ms, net.edge_src, net.edge_dst,
                net.weights, net.length_um, net.velocity_m_s, net.plastic, self.dt_ms)

    @property
    def bytes_per_edge(self) -> float:
        """Bytes the compiled network holds per edge: a packed (target, delay, plastic flag)
        code of 4 bytes (8 when they do not fit 32 bits), the weight, the edge id of each
        position when the edges are not listed by source, and 8 bytes of rank lists per plastic
        edge. Runs add their own state (``docs/performance.md``). Rust backend only."""
        if self._engine is None:
            raise ValidationError("`bytes_per_edge` describes the Rust engine's layout; this "
                                  "Simulator uses the reference backend", "backend",
                                  self.backend)
        return float(self._engine.bytes_per_edge)

    def run(self, stimulus: Stimulus, config: RunConfig) -> SimulationResult:
        """Simulates one stimulus from the network's initial weights and a resting state."""
        return self.run_batch([stimulus], config, n_threads=1)[0]

    def run_batch(self, stimuli: Sequence[Stimulus], config: RunConfig, *,
                  n_threads: int | None = None) -> list[SimulationResult]:
        """Simulates every stimulus independently, each from the initial weights.

        The Rust backend spreads the runs over ``n_threads`` threads (default: every core)
        with the GIL released; results are in stimulus order and identical for any thread
        count. The memory limit applies to the recorders of the whole batch.
        """
        if n_threads is None:
            n_threads = os.cpu_count() or 1
        n_threads = integer("n_threads", n_threads, low=1)
        if config.dt_ms != self.dt_ms:
            raise ValidationError(f"`config.dt_ms` = {config.dt_ms} differs from the "
                                  f"simulator's dt_ms = {self.dt_ms}", "dt_ms", config.dt_ms)
        for k, stimulus in enumerate(stimuli):
            if not isinstance(stimulus, Stimulus):
                raise ValidationError(f"`stimuli[{k}]` must be a crdm.Stimulus, got "
                                      f"{type(stimulus)}", f"stimuli[{k}]",
                                      type(stimulus).__name__)
            stimulus.check(self.network, config)
        edges = config.snapshot_edge_ids(self.network)
        if self.backend == "reference":
            bound = recording_bound_bytes(self.network, config, edges.size) * len(stimuli)
            if bound > config.memory_limit_bytes:
                raise MemoryLimitError(
                    f"the delay rings and recorders would need {bound} bytes, "
                    f"over the limit of {config.memory_limit_bytes} bytes", value=bound)
            from crdm import reference

            raws = [reference.run(self.network, s, config, edges) for s in stimuli]
        else:
            raws = self._engine.run_batch(
                [s.nodes for s in stimuli], [s.ticks for s in stimuli], config.n_ticks,
                stdp=None if config.stdp is None else config.stdp.as_tuple(),
                record_raster=config.record_raster, record_causal=config.record_causal,
                record_final_weights=config.record_final_weights,
                snapshot_ticks=config.snapshot_ticks(), snapshot_edges=edges,
                memory_limit_bytes=config.memory_limit_bytes, n_threads=n_threads)
        snap_ticks = np.asarray(config.snapshot_ticks(), dtype=np.int64)
        return [
            SimulationResult(
                snapshot_ticks=snap_ticks,
                snapshot_edges=edges,
                snapshots=raw.pop("snapshots").reshape(snap_ticks.size, edges.size),
                stats=dict(raw.pop("stats")),
                dt_ms=config.dt_ms,
                **raw,
            )
            for raw in raws
        ]


def simulate(network: Network, stimulus: Stimulus, config: RunConfig | None = None, *,
             backend: Backend = "rust") -> SimulationResult:
    """Runs one stimulus on ``network`` with ``config`` (default :class:`RunConfig`)."""
    config = RunConfig() if config is None else config
    return Simulator(network, dt_ms=config.dt_ms, backend=backend).run(stimulus, config)
