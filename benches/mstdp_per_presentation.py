"""Benchmark (not a test): MSTDP training time per presentation.

    python benches/mstdp_per_presentation.py [--hidden 256,2048] [--chains 1,16,64]
        [--blas-threads 1 0] [--backend numpy|torch|cupy] [--device cuda] [--json]

For each hidden size H, chain count and BLAS thread count (0: the library's default), a fresh
:class:`crdm.mstdp.MSTDPClassifier` with the paper's phases (T = 10 clamped/free pairs of 32
iterations) is warmed up on one block of presentations, then timed on ``--presentations``
random images; the row is seconds per presentation (wall clock, best of ``--repeats``).
Numbers are what this prints on the machine it runs on.
"""

from __future__ import annotations

import argparse
import functools
import json
import time

import numpy as np

from crdm.bench import machine
from crdm.cli import int_list
from crdm.mstdp import MSTDPClassifier


def seconds_per_presentation(n_hidden: int, n_chains: int, blas_threads: int | None,
                             backend: str, device: str | None, presentations: int,
                             repeats: int) -> float:
    rng = np.random.default_rng(0)
    n = max(presentations, n_chains)
    x = rng.random((n, 784))
    y = np.arange(n) % 10
    model = MSTDPClassifier(n_hidden, n_chains=n_chains, alpha=1e-3, backend=backend,
                            device=device, blas_threads=blas_threads)
    model.partial_fit(x[:n_chains], y[:n_chains], classes=np.arange(10))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.partial_fit(x, y)
        if backend == "torch":
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int_list, default=(256, 2048))
    parser.add_argument("--chains", type=int_list, default=(1, 16, 64))
    parser.add_argument("--blas-threads", type=functools.partial(int_list, low=0),
                        default=(1, 0),
                        help="0: the BLAS library's default")
    parser.add_argument("--backend", default="numpy")
    parser.add_argument("--device", default=None)
    parser.add_argument("--presentations", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for h in args.hidden:
        for chains in args.chains:
            for threads in (args.blas_threads if args.backend == "numpy" else [1]):
                s = seconds_per_presentation(h, chains, threads or None, args.backend,
                                             args.device, args.presentations, args.repeats)
                rows.append({"n_hidden": h, "n_chains": chains, "backend": args.backend,
                             "device": args.device, "blas_threads": threads or "default",
                             "s_per_presentation": s})
                if not args.json:
                    print(f"H={h:5d} chains={chains:3d} {args.backend}"
                          f"{'' if args.device is None else ' ' + args.device} blas threads "
                          f"{threads or 'default':>7}: {1000 * s:9.2f} ms per presentation",
                          flush=True)
    if args.json:
        print(json.dumps({"machine": machine(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
