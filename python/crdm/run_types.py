"""The data of one run: what it runs (:class:`RunConfig`, :class:`StdpParams`), what drives it
(:class:`Stimulus`) and what it produced (:class:`SimulationResult`).

Plain, validated data shared by both backends (:mod:`crdm.simulation` with the compiled
engine, :mod:`crdm.reference` in pure Python) and the input codes; it imports neither.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from crdm._checks import as_index_array, check_indices, integer, real, sequence
from crdm.errors import IndexOutOfRangeError, ValidationError
from crdm.network import Network
from crdm.units import MAX_TICKS, ms_to_ticks

__all__ = ["RunConfig", "SimulationResult", "StdpParams", "Stimulus"]


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
