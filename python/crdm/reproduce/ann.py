"""Section 4.1 of George et al. (Figures 4 and 5): a one-shot ANN beside the CRDM encoder.

The ANN is a 784-H-10 perceptron (ReLU hidden layer, softmax output, cross-entropy loss, Adam;
scikit-learn's ``MLPClassifier``) trained until it overfits ten MNIST *training* images, one
per class, drawn at random: full-batch Adam until the training loss is below ``loss_target``
(every image then classified correctly) or ``max_epochs`` pass. Its hidden activations

    h(x) = max(0, W₁ᵀ x + b₁)                   (x: pixels in [0, 1], 784 values)

embed the MNIST test images; a cosine-distance weighted 5-NN classifies ``n_test`` of them
against the others. Each of ``n_repeats`` repeats draws new ten images (a new network) and uses
the next of the seeded splits, the same splits as :mod:`crdm.reproduce.fig3` with the same
seed, so the CRDM rows of a Figure-3 run are on the same splits.

Parameter counts (what each model needs to produce its embedding):

* ANN: ``784·H + H`` (first layer, which makes the embedding) ``+ 10·H + 10`` (the output
  layer, needed to train it) = every weight and bias;
* CRDM, features: the weights whose trajectories form the features — ``784·N + N(N-1)``
  (every edge into the recurrent layer) or ``N(N-1)`` (recurrent edges only);
* CRDM, network: what the simulation is given — per edge a weight and a latency (2 values),
  per node a refractory period, a threshold and a time constant (3 values), and the four STDP
  constants: ``2·E + 3·(784 + N) + 4``, with ``E = 784·N + N(N-1)``. Positions and
  velocities only serve to make latencies, so they are counted as the latency.

Context rows: the one-shot nearest-class-mean classifier on raw pixels (each test image takes
the class of the nearest of the ten training images), averaged over ``ncm_draws`` draws of the
ten images because a single draw swings by several points; and, if a Figure-3 result folder is
given, its CRDM rows at the best sample time.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crdm._checks import integer, real
from crdm._io import atomic_write
from crdm.datasets import DatasetInfo
from crdm.errors import ValidationError
from crdm.protocol import GramNeighbours, split_indices, split_seeds, weighted_vote
from crdm.reproduce.experiment import (
    check_sizes,
    default_test_size,
    labelled_pixels,
    open_results,
)
from crdm.reproduce.fig3 import PAPER_SIZES
from crdm.results import ResultFolder

__all__ = ["AnnConfig", "hidden_activations", "one_per_class", "parameter_counts", "run_ann",
           "train_one_shot"]

_CSV_FIELDS = ("model", "size", "metric", "mean", "sd", "n_repeats", "parameters",
               "parameters_counted", "epochs_mean", "train_accuracy_mean")


@dataclass(frozen=True)
class AnnConfig:
    """Everything that determines the numbers of a Section-4.1 run."""

    sizes: tuple[int, ...] = PAPER_SIZES
    n_images: int = 10_000
    n_repeats: int = 10
    n_test: int | None = None            # None: min(1000, n_images // 10)
    k: int = 5
    seed: int = 0
    learning_rate: float = 1e-3
    loss_target: float = 1e-3
    max_epochs: int = 5000
    ncm_draws: int = 100

    def __post_init__(self) -> None:
        object.__setattr__(self, "sizes", check_sizes(self.sizes))
        integer("k", self.k, low=1)    # first: the other bounds use it
        integer("n_images", self.n_images, low=self.k + 2)
        integer("n_repeats", self.n_repeats, low=1)
        integer("seed", self.seed, low=0)
        integer("max_epochs", self.max_epochs, low=1)
        integer("ncm_draws", self.ncm_draws, low=1)
        real("learning_rate", self.learning_rate, low=0.0, low_open=True)
        real("loss_target", self.loss_target, low=0.0, low_open=True)
        default_test_size(self.n_test, self.n_images, self.k)

    @property
    def test_size(self) -> int:
        return default_test_size(self.n_test, self.n_images, self.k)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "test_size": self.test_size}


def parameter_counts(size: int, n_pixels: int = 784, n_classes: int = 10) -> dict[str, int]:
    """The counts of the module docstring for hidden size = recurrent size ``size``, with
    ``n_pixels`` inputs (784 for MNIST) and ``n_classes`` outputs."""
    edges = n_pixels * size + size * (size - 1)
    return {"ann": n_pixels * size + size + n_classes * size + n_classes,
            "crdm_features_all": edges,
            "crdm_features_recurrent": size * (size - 1),
            "crdm_network": 2 * edges + 3 * (n_pixels + size) + 4}


def one_per_class(labels: np.ndarray, seed: int) -> np.ndarray:
    """Indices of one randomly drawn image of each class, in class order."""
    rng = np.random.default_rng(seed)
    return np.array([rng.choice(np.flatnonzero(labels == c)) for c in np.unique(labels)])


def train_one_shot(x: np.ndarray, y: np.ndarray, hidden: int, seed: int,
                   config: AnnConfig) -> tuple[Any, dict[str, float]]:
    """A pixels-``hidden``-classes ReLU network (784-H-10 on MNIST) trained with full-batch
    Adam until it overfits."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    mlp = MLPClassifier(hidden_layer_sizes=(hidden,), activation="relu", solver="adam",
                        alpha=0.0, batch_size=x.shape[0], learning_rate_init=config.learning_rate,
                        max_iter=1, shuffle=False, random_state=seed)
    classes = np.unique(y)
    epochs = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        while epochs < config.max_epochs:
            mlp.partial_fit(x, y, classes=classes)
            epochs += 1
            if mlp.loss_ < config.loss_target:
                break
    stats = {"epochs": epochs, "loss": float(mlp.loss_),
             "train_accuracy": float(np.mean(mlp.predict(x) == y))}
    return mlp, stats


def hidden_activations(mlp: Any, x: np.ndarray) -> np.ndarray:
    """``max(0, x W₁ + b₁)``: the embedding, ``(n, hidden)``."""
    return np.maximum(x @ mlp.coefs_[0] + mlp.intercepts_[0], 0.0)


def _split_accuracy(features: np.ndarray, labels: np.ndarray, train: np.ndarray,
                    test: np.ndarray, k: int) -> tuple[float, list[float]]:
    gram = features @ features.T
    nb = GramNeighbours(gram, "cosine", queries=test)
    idx, dist = nb.nearest(test, train, k)
    classes = np.unique(labels)
    hit = weighted_vote(dist, labels[idx], classes) == labels[test]
    return float(hit.mean()), [float(hit[labels[test] == c].mean()) if np.any(
        labels[test] == c) else float("nan") for c in classes]


def _nearest_class_mean(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                        test_y: np.ndarray, config: AnnConfig) -> dict[str, Any]:
    """One-shot nearest class mean on raw pixels over ``ncm_draws`` draws of ten images."""
    from sklearn.metrics import pairwise_distances

    seeds = split_seeds(config.seed + 1, config.ncm_draws)
    acc: dict[str, list[float]] = {"euclidean": [], "cosine": []}
    for s in seeds:
        pick = one_per_class(train_y, s)
        for metric in acc:
            d = pairwise_distances(test_x, train_x[pick], metric=metric)
            acc[metric].append(float(np.mean(train_y[pick][np.argmin(d, axis=1)] == test_y)))
    return {m: {"mean": float(np.mean(v)), "sd": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                "draws": len(v), "min": float(np.min(v)), "max": float(np.max(v))}
            for m, v in acc.items()}


def _fig3_rows(fig3_dir: Path, config: AnnConfig, n_pixels: int) -> list[dict[str, Any]]:
    """The CRDM and raw-pixel rows of a Figure-3 run, best sample time per size (cosine, as
    the ANN read-out, and Euclidean, the paper's for the CRDM)."""
    from crdm.errors import DataError

    path = fig3_dir / "results.json"
    try:
        import json

        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"--fig3 {fig3_dir}: no readable results.json ({exc})") from exc
    rows = []
    for model, feature in (("crdm_all", "weights"), ("crdm_recurrent", "weights"),
                           ("raw_pixels", "pixels")):
        for metric in ("cosine", "euclidean"):
            cands = [r for r in record["rows"] if r["model"] == model and r["metric"] == metric
                     and r["feature"] == feature]
            for size in sorted({r["size"] for r in cands}, key=str):
                best = max((r for r in cands if r["size"] == size), key=lambda r: r["mean"])
                counted = (parameter_counts(size, n_pixels)["crdm_features_all"
                                                            if model == "crdm_all"
                                                            else "crdm_features_recurrent"]
                           if isinstance(size, int) else n_pixels)
                rows.append({"model": f"fig3:{model}", "size": size, "metric": metric,
                             "mean": best["mean"], "sd": best["sd"],
                             "n_repeats": best["n_splits"], "parameters": counted,
                             "parameters_counted": "features (weights with trajectories)"
                             if isinstance(size, int) else "pixels",
                             "time_ms": best["time_ms"]})
    if record["config"].get("seed") != config.seed:
        warnings.warn("the Figure-3 run used another seed, so other splits", stacklevel=2)
    return rows


def run_ann(config: AnnConfig, train_images: np.ndarray, train_labels: np.ndarray,
            test_images: np.ndarray, test_labels: np.ndarray, out_dir: str | Path, *,
            fig3_dir: str | Path | None = None, dataset: DatasetInfo | None = None,
            progress: bool = True, log: Callable[[str], None] | None = None
            ) -> list[dict[str, Any]]:
    """Runs (or continues) the Section-4.1 comparison into ``out_dir``; returns the table rows.

    Images of any size; ``dataset`` names the data in the results. Writes ``results.csv``
    (Figure 4's table), ``results.json`` and ``fig5.png``.
    """
    from tqdm.auto import tqdm

    say = log or (lambda msg: None)
    tx, ty = labelled_pixels(test_images, test_labels, config.n_images, field="test_images")
    rx, ry = labelled_pixels(train_images, train_labels, field="train_images")
    if rx.shape[1] != tx.shape[1]:
        raise ValidationError(f"training images have {rx.shape[1]} pixels, test images "
                              f"{tx.shape[1]}", "train_images", rx.shape)
    folder = open_results(out_dir, "ann", config.as_dict(), dataset,
                          {"test": (tx, ty), "train": (rx, ry)}, log=say)
    seeds = split_seeds(config.seed, config.n_repeats)
    todo = [(h, r) for h in config.sizes for r in range(config.n_repeats)
            if not folder.has(f"pieces/n{h:04d}_r{r:02d}.json")]
    say(f"{config.n_repeats * len(config.sizes) - len(todo)} of "
        f"{config.n_repeats * len(config.sizes)} (size, repeat) pieces already done")
    for h, r in tqdm(todo, disable=not progress, desc="ann", unit="net"):
        pick = one_per_class(ry, seeds[r])
        mlp, stats = train_one_shot(rx[pick], ry[pick], h, seeds[r] % 2**31, config)
        train, test = split_indices(config.n_images, config.test_size, seeds[r])
        acc, per_class = _split_accuracy(hidden_activations(mlp, tx), ty, train, test, config.k)
        folder.write_json(f"pieces/n{h:04d}_r{r:02d}.json",
                          {"size": h, "repeat": r, "accuracy": acc, "per_class": per_class,
                           "train_images": pick.tolist(), "split_seed": seeds[r], **stats})
    if not folder.has("eval/ncm.json"):
        folder.write_json("eval/ncm.json", _nearest_class_mean(rx, ry, tx, ty, config))
    rows = _table(folder, config, n_pixels=tx.shape[1], n_classes=int(np.unique(ry).size))
    if fig3_dir is not None:
        rows += _fig3_rows(Path(fig3_dir), config, tx.shape[1])
    _write(folder, rows)
    return rows


def _table(folder: ResultFolder, config: AnnConfig, *, n_pixels: int, n_classes: int
           ) -> list[dict[str, Any]]:
    rows = []
    for h in config.sizes:
        pieces = [folder.read_json(f"pieces/n{h:04d}_r{r:02d}.json")
                  for r in range(config.n_repeats)]
        acc = np.array([p["accuracy"] for p in pieces])
        rows.append({"model": "ann_one_shot", "size": h, "metric": "cosine",
                     "mean": float(acc.mean()),
                     "sd": float(acc.std(ddof=1)) if acc.size > 1 else 0.0,
                     "n_repeats": acc.size,
                     "parameters": parameter_counts(h, n_pixels, n_classes)["ann"],
                     "parameters_counted": "all weights and biases",
                     "epochs_mean": float(np.mean([p["epochs"] for p in pieces])),
                     "train_accuracy_mean": float(np.mean([p["train_accuracy"]
                                                           for p in pieces])),
                     "accuracies": acc.tolist()})
        counts = parameter_counts(h, n_pixels, n_classes)
        for key in ("crdm_features_all", "crdm_features_recurrent", "crdm_network"):
            rows.append({"model": key, "size": h, "metric": "", "mean": "", "sd": "",
                         "n_repeats": "", "parameters": counts[key],
                         "parameters_counted": key.removeprefix("crdm_")})
    for metric, r in folder.read_json("eval/ncm.json").items():
        rows.append({"model": "ncm_raw_pixels_one_shot", "size": "", "metric": metric,
                     "mean": r["mean"], "sd": r["sd"], "n_repeats": r["draws"],
                     "parameters": n_classes * n_pixels,
                     "parameters_counted": f"{n_classes} stored images"})
    return rows


def _write(folder: ResultFolder, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_CSV_FIELDS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    folder.write_text("results.csv", buf.getvalue())
    folder.write_json("results.json", {"config": folder.config, "rows": rows})
    plot_fig5(rows, folder.file("fig5.png"), dataset=folder.config["data"]["name"])


def plot_fig5(rows: list[dict[str, Any]], path: str | Path, *, dataset: str = "mnist") -> Path:
    """Panel A: accuracy vs hidden/recurrent size; panel B: parameters vs size (log); the
    title names the data set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.5))
    fig.suptitle(f"Section 4.1 on {dataset}", fontsize=10)

    def series(model: str, metric: str | None = None) -> tuple[list[Any], list[Any], list[Any]]:
        pts = sorted((r["size"], r) for r in rows if r["model"] == model
                     and isinstance(r["size"], int) and (metric is None or r["metric"] == metric))
        return [p[0] for p in pts], [p[1] for p in pts], [p[1]["parameters"] for p in pts]

    for model, metric, label, style in (
            ("ann_one_shot", "cosine", "ANN one-shot, cosine 5-NN", "o-"),
            ("fig3:crdm_all", "cosine", "CRDM all edges, cosine", "s-"),
            ("fig3:crdm_all", "euclidean", "CRDM all edges, Euclidean", "s--"),
            ("fig3:crdm_recurrent", "euclidean", "CRDM recurrent edges, Euclidean", "^--")):
        x, rs, _ = series(model, metric)
        if x:
            a.errorbar(x, [100 * r["mean"] for r in rs], yerr=[100 * r["sd"] for r in rs],
                       fmt=style, ms=4, capsize=2, label=label)
    for r in rows:
        if r["model"] == "ncm_raw_pixels_one_shot" and r["metric"] == "euclidean":
            a.axhline(100 * r["mean"], color="grey", ls=":", label="one-shot NCM, pixels")
        if r["model"] == "fig3:raw_pixels" and r["metric"] == "cosine":
            a.axhline(100 * r["mean"], color="k", ls="--", lw=1, label="raw pixels, cosine 5-NN")
    a.set_xscale("log")
    a.set_xlabel("hidden / recurrent nodes")
    a.set_ylabel("accuracy (%)")
    a.set_title("A: accuracy", fontsize=10)
    a.legend(fontsize=7)
    a.grid(alpha=0.3)
    for model, label in (("ann_one_shot", "ANN weights + biases"),
                         ("crdm_features_all", "CRDM feature weights (all edges)"),
                         ("crdm_features_recurrent", "CRDM feature weights (recurrent)"),
                         ("crdm_network", "CRDM network values")):
        x, _, p = series(model)
        if x:
            b.plot(x, p, "o-", ms=4, label=label)
    b.set_xscale("log")
    b.set_yscale("log")
    b.set_xlabel("hidden / recurrent nodes")
    b.set_ylabel("parameters")
    b.set_title("B: parameters", fontsize=10)
    b.legend(fontsize=7)
    b.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write(Path(path), lambda fh: fh.write(buf.getvalue()))
