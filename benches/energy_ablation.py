"""Ablation (not a test): which part of MSTDP's network limits a learning rule?

    python benches/energy_ablation.py --rule eqprop|mstdp --data-dir ../shared/data/mnist

Equilibrium propagation (mini-batches of 16, learning rates 0.1 / 0.05) or the MSTDP rule
(16 chains, α = 0.004, symmetrised hidden rule) at H = 256 on network variants that differ in
one thing at a time: hidden ↔ hidden weights, the rate function (``sigmoid(4s)``,
``sigmoid(4s − 2)``, ``clip(s, 0, 1)``), the initial weights, and (MSTDP) whether the pixels
relax in the free phase or stay clamped. Each variant sees 10,000
presentations of the first 10,000 training images (equilibrium propagation: one pass in a
seeded order; MSTDP: a seeded draw with replacement) and is scored on the first 2,000 test
images and the first 2,000 training images. Prints one JSON line per variant.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from crdm.contrastive import ContrastiveClassifier
from crdm.datasets import load_mnist
from crdm.mstdp import MSTDPClassifier

HARD = {"activation": "hard_sigmoid", "eps": 0.5, "n_free": 20, "n_nudged": 4}
SIG4 = {"activation": "sigmoid4", "eps": 0.2, "n_free": 32, "n_nudged": 8}
SHIFTED = {"activation": "sigmoid4_shifted", "eps": 0.2, "n_free": 32, "n_nudged": 8}

EQPROP = {
    "published: layered, hard sigmoid, Glorot": {"layered": True, "init": "glorot", **HARD},
    "+ hidden-hidden weights": {"layered": False, "init": "glorot", **HARD},
    "MSTDP's network with the hard sigmoid": {"layered": False, "init": "uniform", **HARD},
    "MSTDP's network with sigmoid(4s - 2)": {"layered": False, "init": "uniform", **SHIFTED},
    "layered, sigmoid(4s - 2), Glorot": {"layered": True, "init": "glorot", **SHIFTED},
    "MSTDP's network as specified: sigmoid(4s)": {"layered": False, "init": "uniform",
                                                  **SIG4},
    "the same, learning rates / 10": {"layered": False, "init": "uniform",
                                      "alpha_input": 0.01, "alpha_output": 0.005,
                                      "alpha_hidden": 0.005, **SIG4},
    "layered, sigmoid(4s), U(-0.1, 0.1)": {"layered": True, "init": "uniform", **SIG4},
    "layered, sigmoid(4s), Glorot": {"layered": True, "init": "glorot", **SIG4},
}
MSTDP = {
    "paper network (sigmoid(4s), hidden-hidden)": {},
    "layered, sigmoid(4s)": {"layered": True},
    "layered, hard sigmoid": {"layered": True, "activation": "hard_sigmoid"},
    "hidden-hidden, hard sigmoid": {"activation": "hard_sigmoid"},
    "hidden-hidden, sigmoid(4s - 2)": {"activation": "sigmoid4_shifted"},
    # choice 10 of crdm.mstdp: the pixels stay clamped between clamped phases
    "paper network, free phase with pixels clamped": {"free_phase": "inputs_clamped"},
    "sigmoid(4s - 2) rates, free phase with pixels clamped": {
        "activation": "sigmoid4_shifted", "free_phase": "inputs_clamped"},
    "layered, hard sigmoid, free phase with pixels clamped": {
        "layered": True, "activation": "hard_sigmoid", "free_phase": "inputs_clamped"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rule", choices=("eqprop", "mstdp"), default="eqprop")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--only", default=None, help="run the variants whose name has this")
    args = parser.parse_args()
    train = load_mnist("train", data_dir=args.data_dir, download=False)
    test = load_mnist("test", data_dir=args.data_dir, download=False)
    x = train.images[:10_000].reshape(10_000, -1) / 255.0
    y = train.labels[:10_000]
    xt = test.images[:2_000].reshape(2_000, -1) / 255.0
    yt = test.labels[:2_000]
    variants = EQPROP if args.rule == "eqprop" else MSTDP
    for name, kw in variants.items():
        if args.only is not None and args.only not in name:
            continue
        t0 = time.perf_counter()
        if args.rule == "eqprop":
            model = ContrastiveClassifier("eqprop", 256, batch_size=16, **kw).fit(x, y)
        else:
            model = MSTDPClassifier(256, alpha=4e-3, n_chains=16, symmetric_hidden=True, **kw)
            order = np.random.default_rng([0, 0]).integers(0, 10_000, 10_000)
            model.partial_fit(x[order], y[order], classes=np.arange(10))
        print(json.dumps({"rule": args.rule, "variant": name,
                          "test_2000": float(np.mean(model.predict(xt) == yt)),
                          "train_2000": float(np.mean(model.predict(x[:2000]) == y[:2000])),
                          "seconds": round(time.perf_counter() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
