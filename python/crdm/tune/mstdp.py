"""The objective of an MSTDP search: the network's own classification after training.

A trial's parameters (:data:`MSTDP_SPACE`, declared here in one place) are the free choices of
:class:`crdm.MSTDPClassifier` that the paper leaves open or that this project added: the
clamping step ``β``, momentum ``m``, steps ``ε``, the rate ``α`` and its schedule, phases and
iterations, chains (1 = the paper's online rule) or mini-batches, the hidden rule, weight
bounds, initial scale, the Section-2.7 smoothing rate, the rate function and the hidden ↔
hidden weights. The network trains on the first ``n_images − n_valid`` images of a seeded draw
of MNIST *training* images for ``presentations`` presentations (each block of ``eval_every``
in its own seeded order, as ``crdm reproduce mstdp`` does); after every block its accuracy on
the last ``n_valid`` images of the draw (never trained on) is reported, so that a pruner can
stop a poor trial, and the last one is the score. ``α`` decays geometrically over the
presentations to ``alpha_decay · α``. The score is a pure function of the parameters and the
images.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from crdm._checks import integer, real
from crdm.errors import ValidationError
from crdm.mstdp import MSTDPClassifier, decayed_alpha
from crdm.tune.objective import TrialTooSlow
from crdm.tune.space import Dimension

__all__ = ["MSTDP_SPACE", "MstdpSearchSettings", "classifier_params", "evaluate_mstdp",
           "mstdp_baseline"]

def _real(name: str, low: float, high: float, help: str, log: bool = True) -> Dimension:
    return Dimension(name, "float", low, high, log, help=help)


def _choice(name: str, choices: tuple[Any, ...], help: str,
            when: tuple[str, tuple[Any, ...]] | None = None) -> Dimension:
    return Dimension(name, "categorical", choices=choices, when=when, help=help)


#: Every searched choice of the MSTDP network, with the paper's value inside each range.
MSTDP_SPACE: tuple[Dimension, ...] = (
    _real("alpha", 1e-4, 2e-2, "STDP rate α (paper 0.001)"),
    _real("alpha_decay", 0.05, 1.0, "α at the end of training, as a fraction of α"),
    _real("beta", 0.2, 1.0, "clamping step β (paper 0.8; 1 = full clamping)", log=False),
    _real("momentum", 0.0, 0.9, "momentum m of the clamped phase (paper 0.4)", log=False),
    _real("eps_clamped", 0.05, 0.6, "clamped-phase step ε_c (paper 0.2)"),
    _real("eps_free", 0.05, 0.6, "free-phase step ε_f (paper 0.2)"),
    Dimension("n_phases", "int", 2, 10, help="clamped/free phase pairs T (paper 10)"),
    Dimension("n_iterations", "int", 8, 32, help="iterations per phase (paper 32)"),
    _choice("n_chains", (1, 4, 16), "1: the paper's online rule; more: mean of the chains"),
    _choice("symmetric_hidden", (False, True), "hidden ↔ hidden rule symmetrised"),
    _choice("weight_bound", (0.0, 0.5, 1.0, 2.0), "weights clipped to ±bound (0: none)"),
    _real("init_scale", 0.01, 0.3, "initial weights U(±scale) (paper 0.1)"),
    _choice("activation", ("sigmoid4", "sigmoid4_shifted", "hard_sigmoid"),
            "rate function ρ (paper: sigmoid(4s))"),
    # Section 2.7 is written for the paper's rate function
    _choice("smoothing", (0.0, 1e-3, 1e-2), "Section-2.7 smoothing rate γ (0: off)",
            when=("activation", ("sigmoid4",))),
    _choice("layered", (False, True), "no hidden ↔ hidden weights"),
    Dimension("test_phases", "int", 1, 5, help="phase pairs when predicting (paper 3)"),
)


@dataclass(frozen=True)
class MstdpSearchSettings:
    """What the MSTDP objective measures on (stored with the study; a resumed study must
    match)."""

    n_images: int = 12000        # per trial: n_images − n_valid to train on, n_valid to score
    n_valid: int = 2000
    n_confirm: int = 12000       # held-out training images for confirming the best trials
    presentations: int = 8000
    eval_every: int = 2000       # presentations between intermediate reports
    n_hidden: int = 256
    seed: int = 0                # image draw, initial weights, orders
    k: int = 5                   # the raw-pixel baseline's k-NN
    max_trial_s: float = 1800.0  # a trial projected to take longer is pruned after block 1

    def __post_init__(self) -> None:
        integer("n_valid", self.n_valid, low=10)
        integer("n_images", self.n_images, low=self.n_valid + 10)
        integer("n_confirm", self.n_confirm, low=0)
        integer("presentations", self.presentations, low=1)
        integer("eval_every", self.eval_every, low=1)
        integer("n_hidden", self.n_hidden, low=1)
        integer("seed", self.seed, low=0)
        integer("k", self.k, low=1)
        real("max_trial_s", self.max_trial_s, low=0.0, low_open=True)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return (f"{self.n_images - self.n_valid} training and {self.n_valid} validation images, "
                f"{self.presentations} presentations at H = {self.n_hidden}")


def classifier_params(params: Mapping[str, Any], settings: MstdpSearchSettings
                      ) -> dict[str, Any]:
    """The :class:`MSTDPClassifier` keyword arguments of a trial (the paper's values for what
    a narrowed space leaves out)."""
    p = dict(params)
    out: dict[str, Any] = {"n_hidden": settings.n_hidden, "random_state": settings.seed}
    for key in ("alpha", "beta", "momentum", "eps_clamped", "eps_free", "init_scale",
                "smoothing"):
        if key in p:
            out[key] = float(p[key])
    for key in ("n_phases", "n_iterations", "n_chains", "test_phases"):
        if key in p:
            out[key] = int(p[key])
    for key in ("symmetric_hidden", "layered"):
        if key in p:
            out[key] = bool(p[key])
    if "activation" in p:
        out["activation"] = str(p["activation"])
    if float(p.get("weight_bound", 0.0)) > 0.0:
        out["weight_bound"] = float(p["weight_bound"])
    return out


def evaluate_mstdp(params: Mapping[str, Any], images: np.ndarray, labels: np.ndarray,
                   settings: MstdpSearchSettings, *, n_threads: int | None = None,
                   report: Callable[[float, int], None] | None = None,
                   progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Trains on ``images[:-n_valid]`` and scores on ``images[-n_valid:]`` (``(n, 784)``
    float in [0, 1]); ``report(accuracy, presentations)`` after every block but the last,
    ``progress(presentations)`` after every block. ``n_threads`` is not used: the network
    runs on one core (BLAS limited to one thread)."""
    n_train = images.shape[0] - settings.n_valid
    x, y = images[:n_train], labels[:n_train]
    xv, yv = images[n_train:], labels[n_train:]
    kwargs = classifier_params(params, settings)
    model = MSTDPClassifier(**kwargs)
    alpha0, decay = model.alpha, float(params.get("alpha_decay", 1.0))
    classes = np.unique(labels)
    t0 = time.perf_counter()
    accuracy = 0.0
    ends = [*range(settings.eval_every, settings.presentations, settings.eval_every),
            settings.presentations]
    begin = 0
    for end in ends:
        model.alpha = decayed_alpha(alpha0, decay, begin, settings.presentations)
        order = np.random.default_rng([settings.seed, begin]).integers(0, n_train, end - begin)
        try:
            model.partial_fit(x[order], y[order], classes=classes)
        except ValidationError as exc:
            if "diverged" not in str(exc):
                raise
            # a configuration whose weights overflow scores as nothing learnt, so that the
            # sampler learns to avoid it (a failed trial would tell it nothing)
            return {"accuracy": 0.0, "train_accuracy": 0.0, "diverged_at": end,
                    "seconds": time.perf_counter() - t0}
        accuracy = _accuracy(model, xv, yv)
        if progress is not None:
            progress(end - begin)
        elapsed = time.perf_counter() - t0
        if begin == 0 and end < settings.presentations and \
                elapsed * settings.presentations / end > settings.max_trial_s:
            raise TrialTooSlow(f"{elapsed:.0f} s for {end} presentations: about "
                               f"{elapsed * settings.presentations / end:.0f} s in all, over "
                               f"max_trial_s = {settings.max_trial_s:g}")
        if end < settings.presentations and report is not None:
            report(accuracy, end)
        begin = end
    n_score = min(1000, n_train)
    return {"accuracy": accuracy, "train_accuracy": _accuracy(model, x[:n_score], y[:n_score]),
            "seconds": time.perf_counter() - t0}


def _accuracy(model: MSTDPClassifier, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(model.predict(x) == y))


def mstdp_baseline(images: np.ndarray, labels: np.ndarray, settings: MstdpSearchSettings
                   ) -> dict[str, dict[str, float]]:
    """Grey raw pixels on the same split: a distance-weighted ``k``-NN (scikit-learn) that
    stores the training part and is scored on the validation part."""
    from sklearn.neighbors import KNeighborsClassifier

    n_train = images.shape[0] - settings.n_valid
    out = {}
    for metric in ("euclidean", "cosine"):
        knn = KNeighborsClassifier(n_neighbors=settings.k, weights="distance", metric=metric,
                                   algorithm="brute")
        knn.fit(images[:n_train], labels[:n_train])
        acc = float(np.mean(knn.predict(images[n_train:]) == labels[n_train:]))
        out[metric] = {"mean": acc, "sd": 0.0}
    return out
