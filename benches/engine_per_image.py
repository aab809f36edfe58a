"""Benchmark (not a test): milliseconds per image and synaptic events per second.

The Section-4 workload: 784 inputs -> N recurrent nodes, 600 ms at dt = 0.1 ms, STDP on the
recurrent edges (``--plastic all``: on every edge, as ``crdm reproduce fig3`` runs it), weight
snapshots every 100 ms, MNIST test digits. One core (one run at a time).

    python benches/engine_per_image.py [--sizes 50 200 400] [--images 20] [--json]
        [--plastic recurrent|all] [--plot docs/figures/bench_per_image.png]

MNIST comes from CRDM_DATA_DIR (or the usual crdm.datasets search); numbers are what this
prints on the machine it runs on.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

import crdm
from crdm.datasets import load_demo_digits


def bench(n_recurrent: int, images: np.ndarray, stdp: bool, plastic: str) -> dict:
    net = crdm.input_recurrent(n_recurrent, seed=0, plastic=plastic)
    cfg = crdm.RunConfig(duration_ms=600.0, stdp=crdm.StdpParams() if stdp else None)
    sim = crdm.Simulator(net, dt_ms=cfg.dt_ms)
    stimuli = [crdm.image_stimulus(img, net, cfg) for img in images]
    sim.run(stimuli[0], cfg)  # warm-up
    events = spikes = 0
    start = time.perf_counter()
    for s in stimuli:
        r = sim.run(s, cfg)
        events += r.stats["n_arrivals"]
        spikes += int(r.spike_counts[784:].sum())
    wall = time.perf_counter() - start
    return {
        "n_recurrent": n_recurrent, "stdp": stdp, "plastic": plastic, "images": len(stimuli),
        "ms_per_image": 1000 * wall / len(stimuli),
        "events_per_image": events / len(stimuli),
        "events_per_s": events / wall,
        "recurrent_rate_hz": spikes / len(stimuli) / n_recurrent / 0.6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200, 400])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--plastic", choices=("recurrent", "all"), default="recurrent")
    parser.add_argument("--plot", default=None, help="also draw ms/image vs N to this PNG")
    args = parser.parse_args()
    digits = load_demo_digits(download=False)
    images = digits.images[np.random.default_rng(0).choice(len(digits), args.images, False)]
    rows = [bench(n, images, stdp, args.plastic) for n in args.sizes for stdp in (True, False)]
    if args.plot:
        plot(rows, args.plot)
    if args.json:
        print(json.dumps({"machine": platform.processor() or platform.machine(),
                          "crdm": crdm.__version__, "rows": rows}, indent=1))
        return
    print(f"{'N':>4} {'STDP':>5} {'ms/image':>9} {'events/image':>13} {'Mevents/s':>10} "
          f"{'rate Hz':>8}")
    for r in rows:
        print(f"{r['n_recurrent']:>4} {'on' if r['stdp'] else 'off':>5} "
              f"{r['ms_per_image']:>9.1f} {r['events_per_image']:>13.0f} "
              f"{r['events_per_s'] / 1e6:>10.1f} {r['recurrent_rate_hz']:>8.1f}")


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for stdp in (True, False):
        pts = [(r["n_recurrent"], r["ms_per_image"]) for r in rows if r["stdp"] == stdp]
        ax.plot(*zip(*pts, strict=True), "o-", label=f"STDP {'on' if stdp else 'off'}")
    ax.set_xlabel("recurrent nodes N")
    ax.set_ylabel("ms per image (one core)")
    ax.set_title(f"600 ms at dt 0.1 ms, 784 inputs, plastic: {rows[0]['plastic']}\n"
                 f"{platform.processor() or platform.machine()}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
