"""The MSTDP GPU check (not a test), one script for a machine lent with a GPU.

    python benches/mstdp_gpu.py --data-dir DIR --out OUT [--backend torch] [--device cuda]
        [--budget-s 480] [--hidden 2048]

1. Equality: a tiny model (H = 16, 2 chains, 8 presentations, float64) trained and scored on
   ``--backend``/``--device`` and on numpy; the largest difference of weights and label-unit
   states must stay below 1e-9 (float rounding of another library).
2. Speed: seconds per presentation at H = 256 and 2,048 for 1, 16 and 64 chains (float32).
3. Training: H = ``--hidden`` with 16 chains (α = 0.004, symmetrised hidden rule) on the first
   10,000 MNIST training images until ``--budget-s`` seconds have passed, scoring the first
   500 test images after every block; the curve and the final score on the 10,000 test images.

Everything goes to ``OUT/gpu.json`` as it is measured (a run stopped by its time limit keeps
what it finished). On a machine without the backend, ``--backend array_api_strict --device
cpu`` runs the same steps on the CPU (that is how the script is checked before a GPU run).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from crdm.bench import machine
from crdm.datasets import load_mnist
from crdm.energy import to_numpy
from crdm.mstdp import MSTDPClassifier


def _save(out: Path, record: dict[str, Any]) -> None:
    path = out / "gpu.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(path)


def _sync(backend: str) -> None:
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()


def equality(backend: str, device: str | None) -> dict[str, float]:
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 784)), np.arange(8) % 10
    models = {}
    for name, kw in (("numpy", {}), (backend, {"backend": backend, "device": device})):
        m = MSTDPClassifier(16, n_chains=2, n_phases=2, dtype="float64", alpha=1e-3, **kw)
        m.fit(x, y)
        models[name] = m
    a, b = models["numpy"], models[backend]
    weights = max(float(np.max(np.abs(to_numpy(getattr(a.net_, w)) - to_numpy(getattr(b.net_, w)))))
                  for w in ("w_vh", "w_hv", "w_hh", "b_v", "b_h"))
    states = float(np.max(np.abs(a.decision_function(x) - b.decision_function(x))))
    return {"max_weight_difference": weights, "max_label_state_difference": states}


def speed(backend: str, device: str | None, hidden: int, chains: int) -> float:
    rng = np.random.default_rng(0)
    n = max(16, chains)
    x, y = rng.random((n, 784)), np.arange(n) % 10
    m = MSTDPClassifier(hidden, n_chains=chains, alpha=1e-3, backend=backend, device=device)
    m.partial_fit(x[:chains], y[:chains], classes=np.arange(10))
    _sync(backend)
    t0 = time.perf_counter()
    m.partial_fit(x, y)
    _sync(backend)
    return (time.perf_counter() - t0) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", required=True)
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--budget-s", type=float, default=480.0)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--sizes", default="256,2048", help="hidden sizes for the speed rows")
    parser.add_argument("--chains", default="1,16,64", help="chain counts for the speed rows")
    parser.add_argument("--block", type=int, default=2000, help="presentations per block")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"machine": machine(), "backend": args.backend,
                              "device": args.device}
    if args.backend == "torch":
        import torch

        record["gpu"] = (torch.cuda.get_device_name() if torch.cuda.is_available()
                         else "none")
    record["equality"] = equality(args.backend, args.device)
    _save(out, record)
    print(json.dumps(record["equality"]), flush=True)
    record["speed"] = []
    for hidden in map(int, args.sizes.split(",")):
        for chains in map(int, args.chains.split(",")):
            s = speed(args.backend, args.device, hidden, chains)
            record["speed"].append({"n_hidden": hidden, "n_chains": chains,
                                    "s_per_presentation": s})
            _save(out, record)
            print(f"H={hidden} chains={chains}: {1000 * s:.2f} ms per presentation", flush=True)
    train = load_mnist("train", data_dir=args.data_dir, download=False)
    test = load_mnist("test", data_dir=args.data_dir, download=False)
    x = train.images[:10_000].reshape(10_000, -1) / 255.0
    y = train.labels[:10_000].astype(np.int64)
    xt = test.images.reshape(len(test), -1) / 255.0
    yt = test.labels.astype(np.int64)
    model = MSTDPClassifier(args.hidden, alpha=4e-3, n_chains=16, symmetric_hidden=True,
                            backend=args.backend, device=args.device)
    record["training"] = {"n_hidden": args.hidden, "curve": []}
    t0 = time.perf_counter()
    done = 0
    # the last block must leave time for the final score (about a block's worth)
    while time.perf_counter() - t0 < args.budget_s * 0.8:
        order = np.random.default_rng([0, done]).integers(0, len(x), args.block)
        model.partial_fit(x[order], y[order], classes=np.arange(10))
        done += args.block
        acc = float(np.mean(model.predict(xt[:500]) == yt[:500]))
        record["training"]["curve"].append({"presentations": done, "test_500": acc,
                                            "seconds": time.perf_counter() - t0})
        _save(out, record)
        print(f"{done} presentations: {100 * acc:.1f} % on 500 test images "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    record["training"]["test_10000"] = float(np.mean(model.predict(xt) == yt))
    record["training"]["seconds"] = time.perf_counter() - t0
    _save(out, record)
    print(json.dumps({k: v for k, v in record["training"].items() if k != "curve"}))


if __name__ == "__main__":
    main()
