"""Validation run (not a test): equilibrium propagation's published 784-500-10 network on the
MSTDP relaxation code (:class:`crdm.contrastive.ContrastiveClassifier` with its defaults,
which are the hyper-parameters of Scellier & Bengio's code: hard sigmoid, ε = 0.5, 20 free and
4 nudged steps, β = 0.5 of random sign, α = 0.1 / 0.05, mini-batches of 20, persistent
particles, 25 epochs over the first 50,000 training images).

    python benches/eqprop_published.py --data-dir ../shared/data/mnist --out DIR
        [--epochs 25] [--rule eqprop|chl] [--hidden 500]

After every epoch the model is pickled into ``DIR`` (atomically) with the curve so far (error
on the 50,000 training images, on the 10,000 held-out training images 50,000-59,999, seconds),
so a stopped run continues; at the end the 10,000 test images are scored. Writes
``DIR/curve.json`` and ``DIR/curve.png``.
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from pathlib import Path

import numpy as np

from crdm._io import atomic_write
from crdm.bench import machine
from crdm.contrastive import ContrastiveClassifier
from crdm.datasets import load_mnist


def error(model: ContrastiveClassifier, x: np.ndarray, y: np.ndarray) -> float:
    return float((model.predict(x) != y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", required=True)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--rule", default="eqprop", choices=("eqprop", "chl"))
    parser.add_argument("--hidden", type=int, default=500)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train = load_mnist("train", data_dir=args.data_dir, download=False)
    test = load_mnist("test", data_dir=args.data_dir, download=False)
    x = train.images.reshape(len(train), -1) / 255.0
    xt = test.images.reshape(len(test), -1) / 255.0
    x_fit, y_fit = x[:50_000], train.labels[:50_000]
    x_val, y_val = x[50_000:], train.labels[50_000:]
    state = out / "model.pkl"
    if state.is_file():
        model, curve = pickle.loads(state.read_bytes())
    else:
        model = ContrastiveClassifier(args.rule, args.hidden)
        curve = []
    order_rng = np.random.default_rng([model.random_state, 1])
    for _ in range(len(curve)):                  # the orders of the epochs already done
        order_rng.permutation(len(x_fit))
    while len(curve) < args.epochs:
        t0 = time.perf_counter()
        model.partial_fit(x_fit, y_fit, classes=np.arange(10),
                          sample_index=order_rng.permutation(len(x_fit)))
        seconds = time.perf_counter() - t0
        curve.append({"epoch": len(curve) + 1, "train_seconds": seconds,
                      "train_error": error(model, x_fit[:10_000], y_fit[:10_000]),
                      "validation_error": error(model, x_val, y_val)})
        atomic_write(state, lambda fh: fh.write(pickle.dumps((model, curve))))
        print(json.dumps(curve[-1]), flush=True)
    t0 = time.perf_counter()
    record = {"machine": machine(), "params": model.get_params(), "curve": curve,
              "test_error": error(model, xt, test.labels),
              "test_error_200_iterations": error(model.set_params(test_iterations=200), xt,
                                                 test.labels),
              "train_error_50000": error(model.set_params(test_iterations=100), x_fit, y_fit),
              "total_train_seconds": sum(c["train_seconds"] for c in curve),
              "eval_seconds": time.perf_counter() - t0}
    atomic_write(out / "curve.json", lambda fh: fh.write(json.dumps(record, indent=1).encode()))
    print(json.dumps({k: v for k, v in record.items() if k not in ("curve", "params")}))
    plot(record, out / "curve.png")


def plot(record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [c["epoch"] for c in record["curve"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [100 * c["train_error"] for c in record["curve"]], "o-",
            label="training images (first 10,000)")
    ax.plot(epochs, [100 * c["validation_error"] for c in record["curve"]], "s-",
            label="held-out training images 50,000-59,999")
    ax.axhline(100 * record["test_error"], color="k", ls="--", label="test set, final")
    ax.set_xlabel("epoch (50,000 presentations)")
    ax.set_ylabel("error (%)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{record['params']['rule']} 784-{record['params']['n_hidden']}-10 on the "
                 "MSTDP relaxation code")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
