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

import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from crdm._checks import (
    integer,
    real,
)
from crdm.errors import MemoryLimitError, ValidationError
from crdm.input_codes import InputCode
from crdm.network import Network
from crdm.run_types import RunConfig, SimulationResult, StdpParams, Stimulus
from crdm.units import MAX_TICKS

# Revision of the dynamics docs/model.md defines. 2 (crdm 0.2): fixed-weight arrivals are
# summed per target before the plastic ones. Result folders store it, so a run never resumes
# chunks simulated under other dynamics.
MODEL_REVISION = 2

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


def image_stimulus(image: Any, network: Network, config: RunConfig, *,
                   pixel_threshold: float = 0.0) -> Stimulus:
    """The default image encoder: binary, repeating.

    Every pixel with intensity ``> pixel_threshold`` makes its input node fire at tick 0 and
    again each time the node leaves refractoriness (every ``R`` ticks) until the end of the run.
    Intensity is used only through that threshold. Codes that keep intensity are in
    :mod:`crdm.input_codes`.
    """
    return InputCode("binary", pixel_threshold=pixel_threshold).stimulus(image, network, config)


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

    def recording_bound_bytes(self, config: RunConfig) -> int:
        """Upper bound, in bytes, of what one run of ``config`` holds in its delay rings and
        recorders on this backend: the bound that ``memory_limit_bytes`` is checked against
        (per run of a batch)."""
        return self._bound(config, config.snapshot_edge_ids(self.network))

    def _bound(self, config: RunConfig, edges: np.ndarray) -> int:
        if self._engine is None:
            from crdm import reference

            return reference.memory_bound_bytes(self.network, config, edges.size)
        return int(self._engine.recording_bound_bytes(
            config.n_ticks, stdp=config.stdp, record_raster=config.record_raster,
            record_causal=config.record_causal,
            record_final_weights=config.record_final_weights,
            snapshot_ticks=config.snapshot_ticks(), snapshot_edges=edges))

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
            bound = self._bound(config, edges) * len(stimuli)
            if bound > config.memory_limit_bytes:
                raise MemoryLimitError(
                    f"the delay rings and recorders would need {bound} bytes, "
                    f"over the limit of {config.memory_limit_bytes} bytes", value=bound)
            from crdm import reference

            raws = [reference.run(self.network, s, config, edges) for s in stimuli]
        else:
            raws = self._engine.run_batch(
                [s.nodes for s in stimuli], [s.ticks for s in stimuli], config.n_ticks,
                stdp=config.stdp,
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
