"""Li, *MSTDP*: training curve, classification against baselines, generation (second seed).

:class:`crdm.mstdp.MSTDPClassifier` is trained online on the first ``n_train`` MNIST training
images, presented in a seeded random order (with replacement), ``eval_every`` presentations at
a time. After each block the model is checkpointed (atomically) and scored on the first
``n_test_curve`` test images (the paper tests on 500), so a killed run resumes from its last
block with exactly the numbers it would have had. At the end it is scored on all ``n_test``
test images and on up to 1,000 training images, beside two baselines on the same images: an
MLP of the same hidden size trained by backprop (scikit-learn, Adam) and a raw-pixel 5-NN.
Outputs: ``curve.csv``, ``results.json``, ``results.csv``, ``curve.png``, ``generated.png``
(paper Fig. 3: generated digits per class) and ``training_loop.png`` (paper Fig. 1: the fixed
points of a training loop).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crdm._checks import integer, real
from crdm._io import atomic_write
from crdm.contrastive import RULES, ContrastiveClassifier
from crdm.errors import ValidationError
from crdm.mstdp import MSTDPClassifier, decayed_alpha, load_mstdp
from crdm.reproduce.experiment import check_image_shape, is_mnist, labelled_pixels, open_results
from crdm.results import ResultFolder

__all__ = ["MSTDP_OPTIONS", "MstdpConfig", "plot_curves", "run_mstdp"]

#: MSTDPClassifier keyword arguments a run may set beyond the configuration's own fields
MSTDP_OPTIONS = ("beta", "momentum", "eps_clamped", "eps_free", "n_phases", "n_iterations",
                 "test_phases", "init_scale", "smoothing", "layered", "free_phase")

#: MSTDPClassifier keyword arguments that are fields of MstdpConfig
_MODEL_FIELDS = ("n_hidden", "alpha", "n_chains", "activation", "symmetric_hidden",
                 "weight_bound")

PAPER = {"train_accuracy": 100.0, "test_accuracy_500": 96.0, "presentations": 500_000,
         "n_hidden": 2048}


@dataclass(frozen=True)
class MstdpConfig:
    """Everything that determines the numbers of an MSTDP run."""

    n_hidden: int = 256
    # the scaled default (12 minutes on one core here): 16 chains, a documented departure
    # from the online rule, which peaks near 77 % and then drifts (docs/reproduction.md)
    presentations: int = 40_000
    eval_every: int = 4_000
    n_train: int = 10_000
    n_test: int = 10_000
    n_test_curve: int = 500
    alpha: float = 4e-3
    n_chains: int = 16
    # on by default: the paper's rule saturates the hidden layer (crdm.mstdp, choice 9)
    symmetric_hidden: bool = True
    weight_bound: float | None = None
    seed: int = 0
    # rounding differs between array libraries, so a run stays on the backend it began on
    backend: str = "numpy"
    #: the learning rule: MSTDP, or a same-framework control (crdm.contrastive)
    rule: str = "mstdp"
    #: controls only: the published 784-H-10 layered equilibrium-propagation network instead
    #: of MSTDP's (hard sigmoid, Glorot weights, its step sizes and learning rates)
    layered: bool = False
    #: the rate function (crdm.energy.ACTIVATIONS); None: the setting's own (sigmoid4, or the
    #: hard sigmoid of the layered network)
    activation: str | None = None
    #: MSTDP only: further MSTDPClassifier keyword arguments (MSTDP_OPTIONS; e.g. a trial of
    #: `crdm tune run --task mstdp`, through `crdm tune export`)
    options: dict[str, Any] = field(default_factory=dict)
    #: MSTDP only: α decays geometrically to ``alpha_decay · α`` over the presentations,
    #: stepwise: each block of ``eval_every`` runs at the rate of its start
    alpha_decay: float = 1.0

    def __post_init__(self) -> None:
        integer("n_hidden", self.n_hidden, low=1)
        integer("presentations", self.presentations, low=1)
        integer("eval_every", self.eval_every, low=1)
        integer("n_train", self.n_train, low=2)
        integer("n_test", self.n_test, low=1)
        integer("n_test_curve", self.n_test_curve, low=1)
        integer("n_chains", self.n_chains, low=1)
        integer("seed", self.seed, low=0)
        real("alpha", self.alpha, low=0.0)
        if self.rule not in ("mstdp", *RULES):
            raise ValidationError(f"invalid value for `rule`: {self.rule!r} (one of mstdp, "
                                  f"{', '.join(RULES)})", "rule", self.rule)
        if self.layered and self.rule == "mstdp":
            raise ValidationError("`layered` is the equilibrium-propagation network of the "
                                  "controls; MSTDP runs on its own network (its option "
                                  "`options.layered` drops the hidden ↔ hidden weights)",
                                  "layered", True)
        real("alpha_decay", self.alpha_decay, low=0.0, low_open=True, high=1.0)
        if not isinstance(self.options, dict):
            raise ValidationError(f"`options` must be a mapping, got {self.options!r}",
                                  "options", repr(self.options))
        unknown = sorted(set(self.options) - set(MSTDP_OPTIONS))
        if unknown:
            raise ValidationError(f"unknown MSTDP option {unknown[0]!r} (one of "
                                  f"{', '.join(MSTDP_OPTIONS)})", f"options.{unknown[0]}",
                                  self.options[unknown[0]])
        if self.rule != "mstdp" and (self.options or self.alpha_decay != 1.0):
            raise ValidationError("`options` and `alpha_decay` are MSTDP's; the controls keep "
                                  "their published settings", "rule", self.rule)
        self.model()._check_params()   # the model's parameters, backend included

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        # folders written before these fields existed hold runs with their defaults: still
        # continued
        if self.rule == "mstdp":
            del out["rule"], out["layered"]
        if self.activation is None:
            del out["activation"]
        # an option at the classifier's default is the same model: left out, so that a run
        # configured with it (a tune export lists every searched choice) and one without it
        # share their folder
        defaults = MSTDPClassifier().get_params()
        out["options"] = {k: v for k, v in self.options.items() if v != defaults[k]}
        if not out["options"]:
            del out["options"]
        if self.alpha_decay == 1.0:
            del out["alpha_decay"]
        return out

    @classmethod
    def from_export(cls, exported: Any, **settings: Any) -> MstdpConfig:
        """The run of a model that ``crdm tune export`` wrote for an MSTDP trial
        (``{"classifier": MSTDPClassifier keyword arguments, "alpha_decay": …}``);
        ``settings`` are the run's other fields (presentations, seed, …)."""
        try:
            classifier = dict(exported["classifier"])
            alpha_decay = float(exported.get("alpha_decay", 1.0))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"not an MSTDP model (a JSON object with `classifier`, as "
                                  f"`crdm tune export` writes for an MSTDP study): {exc!r}",
                                  "classifier", repr(exported)[:200]) from None
        classifier.pop("random_state", None)       # the run's seed
        fields = {name: classifier.pop(name) for name in _MODEL_FIELDS if name in classifier}
        return cls(**settings, **fields, options=classifier, alpha_decay=alpha_decay)

    def alpha_at(self, presentations: int) -> float:
        """The learning rate of the block that starts after ``presentations``."""
        return decayed_alpha(self.alpha, self.alpha_decay, presentations, self.presentations)

    def model(self, device: str | None = None) -> Any:
        if self.rule != "mstdp":
            if self.layered:
                return ContrastiveClassifier(self.rule, self.n_hidden,
                                             activation=self.activation or "hard_sigmoid",
                                             batch_size=self.n_chains,
                                             random_state=self.seed, backend=self.backend,
                                             device=device)
            # MSTDP's network and step size; the published learning rates
            return ContrastiveClassifier(self.rule, self.n_hidden, layered=False,
                                         activation=self.activation or "sigmoid4",
                                         init="uniform", eps=0.2, n_free=32, n_nudged=8,
                                         batch_size=self.n_chains, random_state=self.seed,
                                         backend=self.backend, device=device)
        return MSTDPClassifier(n_hidden=self.n_hidden, alpha=self.alpha,
                               activation=self.activation or "sigmoid4",
                               n_chains=self.n_chains, symmetric_hidden=self.symmetric_hidden,
                               weight_bound=self.weight_bound,
                               random_state=self.seed,
                               backend=self.backend, device=device, **self.options)


def _blocks(config: MstdpConfig) -> list[int]:
    """Presentations done after each block."""
    ends = list(range(config.eval_every, config.presentations, config.eval_every))
    return [*ends, config.presentations]


def run_mstdp(config: MstdpConfig, train: Any, test: Any, out_dir: str | Path, *,
              progress: bool = True, log: Callable[[str], None] | None = None,
              device: str | None = None) -> dict[str, Any]:
    """Runs (or continues) the MSTDP experiment into ``out_dir``; returns the results record.

    ``train`` and ``test`` are :class:`crdm.datasets.Digits`; ``device`` is where a torch or
    cupy backend computes (``"cuda"``), which does not change the numbers' meaning and is not
    part of the stored configuration.
    """
    from tqdm.auto import tqdm

    say = log or (lambda msg: None)
    for name, digits, n in (("n_train", train, config.n_train), ("n_test", test, config.n_test),
                            ("n_test_curve", test, config.n_test_curve)):
        integer(name, n, high=len(digits))
    for digits in (train, test):
        # the paper's network: 784 pixel and 10 label units
        check_image_shape(digits.images, [(28, 28)], experiment="MSTDP")
    x, y = labelled_pixels(train.images, train.labels, config.n_train, field="train.images")
    xt, yt = labelled_pixels(test.images, test.labels, config.n_test, field="test.images")
    for name, labels in (("train.labels", y), ("test.labels", yt)):
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise ValidationError(f"`{name}` must be classes 0-9 (the network has 10 label "
                                  f"units), found {labels.min()}-{labels.max()}", name,
                                  int(labels.max()))
    dataset = getattr(train, "info", None)
    folder = open_results(out_dir, "mstdp", config.as_dict(), dataset,
                          {"train": (x, y), "test": (xt, yt)}, log=say)
    paper = is_mnist(folder.config)

    blocks = _blocks(config)
    suffix = "npz" if config.rule == "mstdp" else "pkl"
    done = [b for b in blocks if folder.has(f"checkpoints/{b:09d}.{suffix}")]
    model = (_load(folder.file(f"checkpoints/{done[-1]:09d}.{suffix}"), config, device)
             if done else config.model(device))
    curve = folder.read_json("curve.json") if done and folder.has("curve.json") else []
    curve = [row for row in curve if row["presentations"] <= (done[-1] if done else 0)]
    start = done[-1] if done else 0
    if done:
        say(f"resuming after {start} presentations")
    folder.file("checkpoints").mkdir(exist_ok=True)
    prev = 0
    with tqdm(total=config.presentations, initial=start, unit="pres", disable=not progress,
              desc="MSTDP training") as bar:
        for end in blocks:
            begin, prev = prev, end
            if end <= start:
                continue
            # each block's order comes from its own seed, so a resumed run sees the same
            order = np.random.default_rng([config.seed, begin]).integers(0, config.n_train,
                                                                        end - begin)
            if config.rule != "mstdp":
                # each training image keeps its own particle (persistent state)
                model.partial_fit(x, y, classes=np.arange(10), sample_index=order)
            else:
                model.alpha = config.alpha_at(begin)
                if not hasattr(model, "net_"):
                    model.partial_fit(x[order], y[order], classes=np.arange(10))
                else:
                    model.partial_fit(x[order], y[order])
            acc = float(np.mean(model.predict(xt[:config.n_test_curve])
                                == yt[:config.n_test_curve]))
            curve.append({"presentations": end, "test_accuracy": acc})
            _save(model, folder.file(f"checkpoints/{end:09d}.{suffix}"))
            folder.write_json("curve.json", curve)
            bar.update(end - begin)
            say(f"{end} presentations: {100 * acc:.1f} % on {config.n_test_curve} test images")

    n_score = min(1000, config.n_train)
    baselines, knn = _baselines(x, y, xt, yt, config, n_score)
    record = {"config": folder.config, **({"paper": PAPER} if paper else {}), "curve": curve,
              "rows": [
        {"model": config.rule + ("_layered" if config.layered else ""),
         "test_accuracy": float(np.mean(model.predict(xt) == yt)),
         "test_accuracy_curve_set": curve[-1]["test_accuracy"],
         "train_accuracy": float(np.mean(model.predict(x[:n_score]) == y[:n_score]))},
        *baselines], "generation": _generation_score(model, knn, config)}
    folder.write_json("results.json", record)
    _write_outputs(folder, record, model, x, y, config)
    return record


GENERATED_PER_CLASS = 20
#: gains of the label units' weights at generation (1: the paper's generation; see
#: MSTDPClassifier.generate)
LABEL_GAINS = (1.0, 3.0, 10.0, 30.0)


def _save(model: Any, path: Path) -> None:
    if isinstance(model, MSTDPClassifier):
        model.save(path)
    else:
        import pickle

        atomic_write(path, lambda fh: fh.write(pickle.dumps(model)))


def _load(path: Path, config: MstdpConfig, device: str | None) -> Any:
    if config.rule == "mstdp":
        return load_mstdp(path, backend=config.backend, device=device)
    import pickle

    from crdm.errors import DataError

    try:
        model = pickle.loads(path.read_bytes())   # written by this run (a trusted folder)
    except Exception as exc:                      # any damage: a typed error
        raise DataError(f"{path}: damaged checkpoint ({exc})") from exc
    if not isinstance(model, ContrastiveClassifier):
        raise DataError(f"{path}: not a checkpoint of this run")
    return model


def _generation_score(model: Any, knn: Any, config: MstdpConfig
                      ) -> dict[str, Any]:
    """How often the raw-pixel 5-NN (fitted on the training images) recognises a generated
    image as the label it was generated from (10 % is chance), for each gain of the label
    units in :data:`LABEL_GAINS`; ``recognised`` is the paper's generation (gain 1). No test
    image is involved, so the best gain is chosen on training images only."""
    by_gain = []
    for gain in LABEL_GAINS:
        per_class = []
        for c in model.classes_.tolist():
            images = model.generate(c, GENERATED_PER_CLASS, random_state=config.seed,
                                    label_gain=gain)
            per_class.append(float(np.mean(knn.predict(images) == c)))
        by_gain.append({"label_gain": gain, "recognised": float(np.mean(per_class)),
                        "recognised_per_class": per_class})
    best = max(by_gain, key=lambda row: row["recognised"])   # the smallest gain among ties
    return {"images_per_class": GENERATED_PER_CLASS,
            "recognised_per_class": by_gain[0]["recognised_per_class"],
            "recognised": by_gain[0]["recognised"], "label_gains": by_gain,
            "best_label_gain": best["label_gain"]}


def _baselines(x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray,
               config: MstdpConfig, n_score: int) -> tuple[list[dict[str, Any]], Any]:
    """An MLP of the same hidden size (backprop) and a raw-pixel 5-NN, on the same images;
    also returns the fitted 5-NN."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier

    curve_n = config.n_test_curve
    rows = []
    for name, clf in (("mlp_backprop", MLPClassifier((config.n_hidden,), max_iter=50,
                                                     random_state=config.seed)),
                      ("raw_pixels_5nn", KNeighborsClassifier(5))):
        with warnings.catch_warnings():   # 50 epochs is the budget, not a failure
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(x, y)
        pred = clf.predict(xt)
        rows.append({"model": name, "test_accuracy": float(np.mean(pred == yt)),
                     "test_accuracy_curve_set": float(np.mean(pred[:curve_n] == yt[:curve_n])),
                     "train_accuracy": float(np.mean(clf.predict(x[:n_score]) == y[:n_score]))})
    return rows, clf


def _write_outputs(folder: ResultFolder, record: dict[str, Any], model: Any,
                   x: np.ndarray, y: np.ndarray, config: MstdpConfig) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["presentations", "test_accuracy"])
    for row in record["curve"]:
        writer.writerow([row["presentations"], row["test_accuracy"]])
    folder.write_text("curve.csv", buf.getvalue())
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["model", "test_accuracy", "test_accuracy_curve_set", "train_accuracy"])
    for row in record["rows"]:
        writer.writerow([row["model"], row["test_accuracy"], row["test_accuracy_curve_set"],
                         row["train_accuracy"]])
    folder.write_text("results.csv", buf.getvalue())

    def save(fig: Any, name: str) -> None:
        out = io.BytesIO()
        fig.savefig(out, format="png", dpi=100)
        plt.close(fig)
        atomic_write(folder.file(name), lambda fh: fh.write(out.getvalue()))

    fig, ax = plt.subplots(figsize=(6, 4))
    pts = [(r["presentations"], 100 * r["test_accuracy"]) for r in record["curve"]]
    ax.plot(*zip(*pts, strict=True), "o-", label=record["rows"][0]["model"])
    for row, color in zip(record["rows"][1:], ("tab:green", "tab:orange"), strict=False):
        ax.axhline(100 * row["test_accuracy_curve_set"], ls="--", lw=1, color=color,
                   label=row["model"])
    if "paper" in record:
        ax.axhline(PAPER["test_accuracy_500"], color="k", ls=":", lw=1,
                   label="paper (500,000 presentations)")
    ax.set_xlabel("presentations")
    ax.set_ylabel(f"test accuracy on {config.n_test_curve} images (%)")
    ax.set_title(f"{config.rule}, H = {config.n_hidden}, on {folder.config['data']['name']}",
                 fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    save(fig, "curve.png")

    per_gain = 2
    gains = record["generation"]["label_gains"]
    fig, axes = plt.subplots(10, per_gain * len(gains), figsize=(1.0 * per_gain * len(gains),
                                                                  10.6))
    for g, row in enumerate(gains):
        for c in range(10):
            images = model.generate(c, per_gain, random_state=config.seed,
                                    label_gain=row["label_gain"])
            for k in range(per_gain):
                ax = axes[c, g * per_gain + k]
                ax.imshow(images[k].reshape(28, 28), cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
        axes[0, g * per_gain].set_title(f"gain {row['label_gain']:g}: "
                                        f"{100 * row['recognised']:.0f} %", fontsize=8,
                                        loc="left")
    fig.suptitle("generated digits, one row per clamped label; label gain, and the share the "
                 "raw-pixel 5-NN recognises", fontsize=9)
    save(fig, "generated.png")

    if not isinstance(model, MSTDPClassifier):
        return
    plot_momentum_inference(model, x, y, folder.file("momentum.png"))
    states = model.training_loop_states(x[:8], y[:8])
    fig, axes = plt.subplots(3, 8, figsize=(8, 3.4))
    for r, key in enumerate(("free", "clamped_1", "clamped_2")):
        for k in range(8):
            axes[r, k].imshow(states[key][k].reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            axes[r, k].axis("off")
        axes[r, 0].set_title(key, fontsize=7, loc="left")
    save(fig, "training_loop.png")


def plot_momentum_inference(model: MSTDPClassifier, x: np.ndarray, y: np.ndarray,
                            path: Path, *, n_units: int = 4, n_iterations: int = 64) -> Path:
    """Paper Fig. 2: hidden units' states over the iterations of one clamped phase (the first
    training image), with the model's momentum (eqs. 11-12) and without (eq. 1). The units
    shown are those that move most with momentum."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_m = model.inference_trace(x, y, n_iterations=n_iterations)
    without = model.inference_trace(x, y, momentum=0.0, n_iterations=n_iterations)
    units = np.argsort(-np.abs(with_m[-1] - with_m[0]))[:n_units]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for k, u in enumerate(units):
        color = plt.get_cmap("tab10")(k)
        ax.plot(with_m[:, u], color=color, label=f"unit {u}, m = {model.momentum:g}")
        ax.plot(without[:, u], color=color, ls="--", label=f"unit {u}, no momentum")
    ax.set_xlabel("iteration of the clamped phase")
    ax.set_ylabel("state s")
    ax.set_title("momentum inference (paper Fig. 2): overshoot, then settling", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write(Path(path), lambda fh: fh.write(buf.getvalue()))


def _curve_label(config: dict[str, Any]) -> str:
    """What distinguishes a run: its rule, network and the choices that differ from the
    default."""
    parts = [config.get("rule", "mstdp")]
    options = config.get("options", {})
    if config.get("layered") or options.get("layered"):
        parts.append("layered")
    if options.get("free_phase", "free") != "free":
        parts.append("pixels clamped when free")
    if config.get("activation"):
        parts.append(str(config["activation"]))
    parts.append(f"{config.get('n_chains', 1)} chain(s)")
    if config.get("rule", "mstdp") == "mstdp":
        parts.append("symmetrised" if config.get("symmetric_hidden", True) else "paper rule")
        parts.append(f"α {config.get('alpha', '')}")
    return ", ".join(parts)


def plot_curves(folders: Sequence[str | Path], path: str | Path) -> Path:
    """Test accuracy against presentations of several ``crdm reproduce mstdp`` result folders
    (MSTDP variants and its controls) on one axes, with the MLP and raw-pixel baselines of the
    first folder as lines: the comparison figure of ``docs/reproduction.md``. Runs on another
    data set or test subset than the first are refused, so that every curve counts the same
    images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crdm.errors import DataError

    records = []
    for folder in folders:
        file = Path(folder) / "results.json"
        try:
            records.append(json.loads(file.read_text()))
        except (OSError, ValueError) as exc:
            raise DataError(f"{file} is not a readable MSTDP results file: {exc}") from exc
        if records[-1].get("config", {}).get("experiment") != "mstdp":
            raise DataError(f"{folder} holds another experiment's results, not an MSTDP run")
    first = records[0]["config"]

    def images(cfg: dict[str, Any]) -> Any:
        # the fingerprints of the images used (folders of earlier crdm versions stored
        # them as data.train and data.test)
        data = cfg.get("data", {})
        return data.get("sha256") or {k: data.get(k) for k in ("train", "test")}

    for rec, folder in zip(records, folders, strict=True):
        cfg = rec["config"]
        differs = [key for key in ("n_test_curve", "n_train") if cfg.get(key) != first.get(key)]
        if images(cfg) != images(first):
            differs.append("data")
        if differs:
            raise DataError(f"{folder}: `{differs[0]}` differs from {folders[0]}'s, so its "
                            "curve would count other images")
    fig, ax = plt.subplots(figsize=(11, 5))
    for rec in records:
        pts = [(r["presentations"], 100 * r["test_accuracy"]) for r in rec["curve"]]
        ax.plot(*zip(*pts, strict=True), "o-", ms=3, label=_curve_label(rec["config"]))
    for row, style in zip(records[0]["rows"][1:], ("--", ":"), strict=False):
        ax.axhline(100 * row["test_accuracy_curve_set"], color="k", ls=style, lw=1,
                   label=row["model"])
    ax.set_xlabel("presentations")
    ax.set_ylabel(f"test accuracy on the first {first['n_test_curve']} test images (%)")
    name = first.get("data", {}).get("name")
    ax.set_title(f"MSTDP and its controls, H = {first['n_hidden']}"
                 + (f", on {name}" if name else ""), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return atomic_write(Path(path), lambda fh: fh.write(buf.getvalue()))
