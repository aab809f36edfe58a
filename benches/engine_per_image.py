"""Benchmark (not a test): ``crdm bench`` plus a plot of milliseconds per image against N.

    python benches/engine_per_image.py [--sizes 50,200,400] [--images 20]
        [--plastic recurrent|all] [--plot docs/figures/bench_per_image.png]

The measurement is :func:`crdm.bench.bench_engine` (see its module docstring); numbers are what
this prints on the machine it runs on.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from crdm.bench import bench_engine, format_table, machine
from crdm.cli import int_list
from crdm.datasets import load_demo_digits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int_list, default=(50, 200, 400),
                        help="recurrent sizes, comma-separated (default 50,200,400)")
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--plastic", choices=("recurrent", "all"), default="recurrent")
    parser.add_argument("--plot", default=None, help="also draw ms/image vs N to this PNG")
    args = parser.parse_args()
    digits = load_demo_digits(download=False)
    pick = np.random.default_rng(0).choice(len(digits), args.images, False)
    rows = bench_engine(args.sizes, digits.images[pick].reshape(args.images, -1), threads=1,
                        plastic=args.plastic)
    if args.plot:
        plot(rows, args.plot)
    print(json.dumps({"machine": machine(), "rows": rows}, indent=1) if args.json
          else format_table(rows))


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
                 f"{machine()['cpu']}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
