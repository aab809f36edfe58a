"""The objective of a Section-4 search: one configuration's read-out accuracy.

A trial's parameters (:mod:`crdm.tune.space`) become a one-size :class:`Fig3Config` (network,
STDP, plastic edges, input code) and a :class:`Readout` (edges, feature form, metric, sample
time). Its images are simulated chunk by chunk with :func:`crdm.reproduce.fig3.encode_chunk`
(the same features as ``crdm reproduce fig3``); the score is the distance-weighted 5-NN
accuracy, mean over seeded random splits, on MNIST *training* images only. After every chunk
the accuracy on the images so far is reported, so that a pruner can stop a poor trial early.
The score is a pure function of the parameters and the images: where or when a trial runs never
changes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from crdm._checks import integer
from crdm.errors import ValidationError
from crdm.input_codes import InputCode
from crdm.protocol import wknn_protocol
from crdm.reproduce.fig3 import Fig3Config, encode_chunk, feature_offsets
from crdm.simulation import StdpParams

__all__ = ["FEATURE_FORMS", "Readout", "SearchSettings", "TrialTooSlow", "baseline_metric",
           "evaluate", "fig3_config", "pixel_baseline", "readout_features",
           "trial_configuration"]

FEATURE_FORMS = ("weights", "delta", "normalised", "trajectory")
_NETWORK_KEYS = ("input_refractory_ms", "recurrent_refractory_ms", "threshold", "tau_m_ms",
                 "excitatory_fraction", "inhibitory_ratio", "input_weight", "recurrent_weight")
_STDP_KEYS = ("a_plus", "a_minus", "tau_plus_ms", "tau_minus_ms")


class TrialTooSlow(Exception):
    """The first chunk showed the trial would take longer than its budget."""


@dataclass(frozen=True)
class SearchSettings:
    """What the objective measures on (stored with the study; a resumed study must match)."""

    n_images: int = 2000          # search images: the first of a seeded draw of training images
    n_confirm: int = 5000         # held-out training images for confirming the best trials
    n_splits: int = 10
    k: int = 5
    seed: int = 0                 # image draw, networks, projections, splits
    chunk_size: int = 500         # images between intermediate reports
    duration_ms: float = 600.0
    sample_interval_ms: float = 100.0
    sketch_dim: int = 2048
    max_trial_s: float = 1800.0   # a trial projected to take longer is pruned after chunk 1

    def __post_init__(self) -> None:
        integer("k", self.k, low=1)
        integer("n_images", self.n_images, low=10 * (self.k + 1))
        integer("n_confirm", self.n_confirm, low=0)
        integer("n_splits", self.n_splits, low=1)
        integer("seed", self.seed, low=0)
        integer("chunk_size", self.chunk_size, low=10 * (self.k + 1))
        integer("sketch_dim", self.sketch_dim, low=0)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        return f"{self.n_images} search images, {self.n_splits} splits, weighted {self.k}-NN"


@dataclass(frozen=True)
class Readout:
    """How a trial's weight states become one feature vector per image."""

    edges: Literal["all", "recurrent"] = "all"
    form: Literal["weights", "delta", "normalised", "trajectory"] = "weights"
    metric: Literal["euclidean", "cosine"] = "euclidean"
    sample_time_ms: float | None = 300.0   # None with the trajectory form

    def __post_init__(self) -> None:
        if self.edges not in ("all", "recurrent"):
            raise ValidationError(f"invalid value for `readout.edges`: {self.edges!r}",
                                  "readout.edges", self.edges)
        if self.form not in FEATURE_FORMS:
            raise ValidationError(f"invalid value for `readout.form`: {self.form!r} (one of "
                                  f"{', '.join(FEATURE_FORMS)})", "readout.form", self.form)
        if self.metric not in ("euclidean", "cosine"):
            raise ValidationError(f"invalid value for `readout.metric`: {self.metric!r}",
                                  "readout.metric", self.metric)


def trial_configuration(params: Mapping[str, Any]) -> tuple[dict[str, Any], Readout]:
    """The Figure-3 model fields (``size``, ``network_params``, ``stdp``, ``plastic``,
    ``input_code``) and the read-out of a trial's parameters. Parameters a (narrowed) space
    does not contain keep the paper's values."""
    p = dict(params)
    network: dict[str, Any] = {k: float(p[k]) for k in _NETWORK_KEYS if k in p}
    if "velocity_m_s" in p:
        v, spread = float(p["velocity_m_s"]), float(p.get("velocity_spread", 1.0))
        network["velocity_m_s"] = v if spread == 1.0 else (v, v * spread)
    if "volume_um" in p:
        network["volume_um"] = (float(p["volume_um"]),) * 3
    stdp = {k: float(p[k]) for k in _STDP_KEYS if k in p}
    if p.get("weight_bounds") == "symmetric":
        stdp["w_min"], stdp["w_max"] = -float(p["weight_bound"]), float(p["weight_bound"])
    code = {"kind": p.get("input_code", "binary"),
            "pixel_threshold": float(p.get("pixel_threshold", 0.0))}
    if "latency_window_ms" in p:
        code["latency_window_ms"] = float(p["latency_window_ms"])
    if "latency_repeat" in p:
        code["latency_repeat"] = bool(p["latency_repeat"])
    if "rate_max_hz" in p:
        code["rate_max_hz"] = float(p["rate_max_hz"])
    form = p.get("feature_form", "weights")
    readout = Readout(edges=p.get("feature_edges", "all"), form=form,
                      metric=p.get("metric", "euclidean"),
                      sample_time_ms=None if form == "trajectory"
                      else float(p.get("sample_time_ms", 300.0)))
    model = {"size": int(p.get("size", 100)), "network_params": network, "stdp": stdp,
             "plastic": p.get("plastic", "all"), "input_code": code}
    return model, readout


def baseline_metric(params: Mapping[str, Any]) -> str:
    """The metric of the grey-pixel baseline a trial is read against: its own, except for the
    normalised form, whose Euclidean distances between unit-length vectors
    (``‖a − b‖² = 2 − 2 cos``) rank neighbours as cosine distances do, so that it is read
    against cosine pixels."""
    readout = trial_configuration(params)[1]
    return "cosine" if readout.form == "normalised" else readout.metric


def fig3_config(model: Mapping[str, Any], settings: SearchSettings, n_images: int
                ) -> Fig3Config:
    """The one-size Figure-3 configuration of a trial's model on ``n_images`` images."""
    return Fig3Config(sizes=(model["size"],), n_images=n_images,
                      duration_ms=settings.duration_ms,
                      sample_interval_ms=settings.sample_interval_ms, n_splits=settings.n_splits,
                      k=settings.k, seed=settings.seed, sketch_dim=settings.sketch_dim,
                      chunk_size=settings.chunk_size, baselines=False, plastic=model["plastic"],
                      stdp=StdpParams(**model["stdp"]),
                      network_params=dict(model["network_params"]),
                      input_code=InputCode(**model["input_code"]))


def readout_features(arrays: Mapping[str, np.ndarray], readout: Readout, config: Fig3Config,
                     offsets: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """``(n, d)`` float64 features of the encoded ``arrays`` (:func:`encode_chunk`'s, joined).

    The ``weights`` form adds ``w(0)``: the image's own (graded input code) or the network's
    (``offsets``, :func:`feature_offsets`; computed here when not given)."""
    name = f"crdm_{readout.edges}"
    delta = np.asarray(arrays[name], dtype=np.float64)           # (n, times, dims)
    if readout.form == "trajectory":
        return delta.reshape(delta.shape[0], -1)
    times = [round(t * config.dt_ms, 6) for t in config.sample_ticks()]
    if readout.sample_time_ms not in times:
        raise ValidationError(f"invalid value for `readout.sample_time_ms`: "
                              f"{readout.sample_time_ms} (sample times: {times})",
                              "readout.sample_time_ms", readout.sample_time_ms)
    x = delta[:, times.index(readout.sample_time_ms), :]
    if readout.form == "weights":
        offset = arrays.get(f"offset_{name}")
        if offset is None:
            offset = (offsets or feature_offsets(config, config.sizes[0]))[name][None, :]
        return x + np.asarray(offset, dtype=np.float64)
    if readout.form == "normalised":
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
    return x


def _score(features: np.ndarray, labels: np.ndarray, readout: Readout,
           settings: SearchSettings) -> tuple[float, float]:
    res = wknn_protocol(features, labels, n_splits=settings.n_splits,
                        n_test=features.shape[0] // 10, k=settings.k,
                        metrics=(readout.metric,), seed=settings.seed)[readout.metric]
    return res.mean, res.sd


def evaluate(params: Mapping[str, Any], images: np.ndarray, labels: np.ndarray,
             settings: SearchSettings, *, n_threads: int | None = None,
             report: Callable[[float, int], None] | None = None,
             progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Scores ``params`` on ``images`` (``(n, 784)`` float in [0, 1]) and ``labels``.

    ``report(accuracy, n_images_so_far)`` is called after every chunk but the last (it may
    raise to stop the trial: Optuna's ``TrialPruned``); ``progress(n)`` after every chunk.
    Raises :class:`TrialTooSlow` when the first chunk shows the whole would exceed
    ``settings.max_trial_s``. Returns the accuracy (mean and sd over splits) and the activity.
    """
    model, readout = trial_configuration(params)
    n = images.shape[0]
    config = fig3_config(model, settings, n)
    size = model["size"]
    parts: list[dict[str, np.ndarray]] = []
    offsets = (feature_offsets(config, size)
               if readout.form == "weights" and config.code.kind != "graded" else None)
    t0 = time.perf_counter()
    for start in range(0, n, settings.chunk_size):
        stop = min(start + settings.chunk_size, n)
        parts.append(encode_chunk(config, size, images[start:stop], n_threads=n_threads))
        if progress is not None:
            progress(stop - start)
        elapsed = time.perf_counter() - t0
        if start == 0 and stop < n and elapsed * n / stop > settings.max_trial_s:
            raise TrialTooSlow(f"{elapsed:.0f} s for {stop} images: about "
                               f"{elapsed * n / stop:.0f} s for {n}, over max_trial_s = "
                               f"{settings.max_trial_s:g}")
        if stop < n and report is not None:
            joined = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            acc, _ = _score(readout_features(joined, readout, config, offsets), labels[:stop],
                            readout, settings)
            report(acc, stop)
    joined = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    acc, sd = _score(readout_features(joined, readout, config, offsets), labels, readout,
                     settings)
    return {"accuracy": acc, "accuracy_sd": sd, "rate_hz": float(joined["rate_hz"].mean()),
            "arrivals": float(joined["arrivals"].mean()),
            "seconds": time.perf_counter() - t0}


def pixel_baseline(images: np.ndarray, labels: np.ndarray, settings: SearchSettings
                   ) -> dict[str, dict[str, float]]:
    """Grey raw pixels with the objective's read-out, on the same images and splits."""
    res = wknn_protocol(images, labels, n_splits=settings.n_splits,
                        n_test=images.shape[0] // 10, k=settings.k, seed=settings.seed)
    return {m: {"mean": r.mean, "sd": r.sd} for m, r in res.items()}
