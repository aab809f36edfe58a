"""Analysis (not a test): why a trained MSTDP model's generated digits follow their label or not.

    python benches/mstdp_generation.py RUN_FOLDER… --data-dir ../shared/data/mnist

For the last checkpoint of each ``crdm reproduce mstdp`` folder of the MSTDP rule, two
measurements:

* the drive into the hidden layer, ``Σ_j W[j, h] ρ(s_j)``, split into the part from the 784
  pixel units and the part from the 10 label units, with both clamped to training data (the
  first 1,000 training images and their labels): its mean norm over the hidden units, and
  how much it varies from image to image (mean distance to its mean);
* generation (``MSTDPClassifier.generate``: label clamped, random start, the model's test
  phases) for every gain of the label units' weights in ``--gains``: the share of 20 images
  per label that the raw-pixel 5-NN of ``crdm reproduce mstdp`` (fitted on the first 10,000
  training images) recognises as their label, and how far apart the labels' mean images are (mean
  distance of a label's mean image to the mean of all, in pixel units) against the spread
  within a label.

No test image is used. Prints one JSON line per folder and gain.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

from crdm.datasets import load_mnist
from crdm.mstdp import load_mstdp

PER_LABEL = 20


def drives(model, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    net, n_pix = model.net_, model.n_pixels_
    w = np.asarray(net.w_vh)
    pixels = np.asarray(net.rates(net.put(x))) @ w[:n_pix]
    labels = np.asarray(net.rates(net.put(np.eye(10)[y]))) @ w[n_pix:]
    out = {}
    for name, d in (("pixels", pixels), ("labels", labels)):
        out[f"{name}_drive_norm"] = float(np.linalg.norm(d, axis=1).mean())
        out[f"{name}_drive_spread"] = float(np.linalg.norm(d - d.mean(0), axis=1).mean())
    return out


def generation(model, knn: KNeighborsClassifier, gain: float) -> dict[str, float]:
    images = np.stack([model.generate(c, PER_LABEL, random_state=0, label_gain=gain)
                       for c in range(10)])
    pred = knn.predict(images.reshape(-1, images.shape[-1])).reshape(10, PER_LABEL)
    means = images.mean(1)
    return {"label_gain": gain, "recognised": float(np.mean(pred == np.arange(10)[:, None])),
            "between_labels": float(np.linalg.norm(means - means.mean(0), axis=1).mean()),
            "within_label": float(np.linalg.norm(images - means[:, None], axis=2).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--gains", default="1,2,3,5,10,15,20,30,50",
                        help="label gains, comma-separated")
    args = parser.parse_args()
    gains = [float(g) for g in args.gains.split(",")]
    train = load_mnist("train", data_dir=args.data_dir, download=False)
    x = train.images[:10_000].reshape(10_000, -1) / 255.0
    y = train.labels[:10_000]
    knn = KNeighborsClassifier(5).fit(x, y)
    for folder in args.folders:
        checkpoint = sorted((folder / "checkpoints").glob("*.npz"))[-1]
        model = load_mstdp(checkpoint)
        row = {"run": folder.name, "presentations": model.n_presentations_,
               **drives(model, x[:1000], y[:1000])}
        print(json.dumps(row), flush=True)
        for gain in gains:
            print(json.dumps({"run": folder.name, **generation(model, knn, gain)}), flush=True)


if __name__ == "__main__":
    main()
