"""Benchmarks of the engine (``crdm bench``): milliseconds per image, synaptic events per second.

The Section-4 workload: one input per pixel (784 for MNIST) → N recurrent nodes
(:func:`crdm.input_recurrent`), 600 ms at dt = 0.1 ms, weight snapshots every 100 ms, STDP on
or off, on ``plastic`` edges (``"recurrent"`` by default: the input weights stay fixed and the
input drive is replayed; ``"all"``: every edge, as ``crdm reproduce fig3`` runs it).
Each configuration runs once on one core (one image at a time) and once on ``threads`` cores
(:meth:`crdm.Simulator.run_batch`), after one warm-up image. An event is a signal arriving at a
node (``stats["n_arrivals"]``), whether accepted or lost to refractoriness.

Numbers are what this prints on the machine it runs on; they are not asserted by any test.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from crdm._checks import integer
from crdm.errors import ValidationError
from crdm.network import input_recurrent
from crdm.simulation import RunConfig, Simulator, StdpParams, image_stimulus

__all__ = ["bench_engine", "machine"]


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "system": platform.system()}


def bench_engine(sizes: Sequence[int], images: np.ndarray, *, threads: int | None = None,
                 plastic: str = "recurrent", duration_ms: float = 600.0,
                 image_shape: tuple[int, int] = (28, 28)) -> list[dict[str, Any]]:
    """One row per (size, STDP on/off, one core / ``threads`` cores); ``images`` are
    ``(n, pixels)`` of ``image_shape``."""
    if plastic not in ("recurrent", "all"):
        raise ValidationError(f"invalid value for `plastic`: {plastic!r} ('recurrent' or "
                              "'all')", "plastic", plastic)
    n_threads = integer("threads", threads if threads is not None else os.cpu_count() or 1,
                        low=1)
    if images.ndim != 2 or images.shape[0] < 1 or images.shape[1] != np.prod(image_shape):
        raise ValidationError(f"`images` must be (n >= 1, {int(np.prod(image_shape))} pixels), "
                              f"got {images.shape}", "images", images.shape)
    n_inputs = images.shape[1]
    rows = []
    for n in sizes:
        net = input_recurrent(integer("sizes", n, low=1), seed=0, plastic=plastic,
                              image_shape=image_shape)
        for stdp in (True, False):
            cfg = RunConfig(duration_ms=duration_ms, stdp=StdpParams() if stdp else None)
            sim = Simulator(net, dt_ms=cfg.dt_ms)
            stimuli = [image_stimulus(x, net, cfg) for x in images]
            sim.run(stimuli[0], cfg)  # warm-up: page in the network and the buffers
            for cores in sorted({1, n_threads}):
                start = time.perf_counter()
                if cores == 1:
                    results = [sim.run(s, cfg) for s in stimuli]
                else:
                    results = sim.run_batch(stimuli, cfg, n_threads=cores)
                wall = time.perf_counter() - start
                events = sum(r.stats["n_arrivals"] for r in results)
                spikes = sum(int(r.spike_counts[n_inputs:].sum()) for r in results)
                rows.append({
                    "n_recurrent": int(n), "stdp": stdp, "plastic": plastic, "cores": cores,
                    "images": len(stimuli), "ms_per_image": 1000 * wall / len(stimuli),
                    "events_per_image": events / len(stimuli),
                    "events_per_s_per_core": events / wall / cores,
                    "recurrent_rate_hz": spikes / len(stimuli) / n / (duration_ms / 1000),
                    "synapses": int(net.n_edges),
                    "network_bytes_per_synapse": sim.bytes_per_edge,
                })
    return rows


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    lines = [f"{'N':>4} {'STDP':>4} {'cores':>5} {'ms/image':>9} {'events/image':>13} "
             f"{'Mevents/s/core':>15} {'rate Hz':>8} {'B/synapse':>10}"]
    for r in rows:
        lines.append(f"{r['n_recurrent']:>4} {'on' if r['stdp'] else 'off':>4} {r['cores']:>5} "
                     f"{r['ms_per_image']:>9.1f} {r['events_per_image']:>13.0f} "
                     f"{r['events_per_s_per_core'] / 1e6:>15.1f} "
                     f"{r['recurrent_rate_hz']:>8.1f} {r['network_bytes_per_synapse']:>10.1f}")
    return "\n".join(lines)
