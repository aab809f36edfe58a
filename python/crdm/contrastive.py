"""Same-framework controls for MSTDP: contrastive Hebbian learning and equilibrium propagation.

Both run on :class:`crdm.energy.EnergyNetwork`, the network, states and relaxation code of
:class:`crdm.mstdp.MSTDPClassifier`; only the learning rule differs. Units are dimensionless,
time is counted in iterations. Pixels are clamped in every phase (they are the input); weights
are symmetric (``W_hv = W_vhᵀ``, ``W_hh = W_hhᵀ``).

* Free phase: ``n_free`` steps of eq. 1 (``s ← s + ε (R(s) − s)``), labels free, from the
  sample's persistent state (its particle) or from the chain's state.
* Equilibrium propagation (Scellier & Bengio 2017), ``rule="eqprop"``: from the free fixed
  point ``s⁰``, ``n_nudged`` steps with the label units nudged by ``2 β (y − s)`` (the
  gradient of ``β ‖s_y − y‖²``; ``β``'s sign drawn at random per mini-batch when
  ``random_sign``), reaching ``s^β``; then ``ΔW_ij = (α / β) (ρ^β_i ρ^β_j − ρ⁰_i ρ⁰_j)`` and
  ``Δb_i = (α / β) (ρ^β_i − ρ⁰_i)``, mean over the mini-batch.
* Contrastive Hebbian learning (Movellan 1990), ``rule="chl"``: from ``s⁰``, ``n_nudged``
  steps with the labels clamped to ``y`` (reaching ``s^c``); ``ΔW_ij = α (ρ^c_i ρ^c_j −
  ρ⁰_i ρ⁰_j)``, ``Δb_i = α (ρ^c_i − ρ⁰_i)``.
* ``α`` is per block, as in the published code: ``alpha_input`` for pixel ↔ hidden weights
  and hidden biases, ``alpha_output`` for label ↔ hidden weights and label biases,
  ``alpha_hidden`` for hidden ↔ hidden weights.
* Prediction: hidden and label units start at 0 and relax ``test_iterations`` free steps; the
  label is the label unit with the largest state.

Two settings: the published equilibrium-propagation network (784-500-10, layered: no hidden ↔
hidden weights, hard-sigmoid rates ``clip(s, 0, 1)`` with states clipped, Glorot-uniform
weights, zero biases, ``ε = 0.5``, 20 free and 4 nudged steps, ``β = 0.5`` of random sign,
``α = 0.1 / 0.05``, mini-batches of 20, persistent particles per training image: the defaults
here), and MSTDP's network (``layered=False, activation="sigmoid4", init="uniform"``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from crdm._checks import integer, real
from crdm.energy import EnergyNetwork, blas_limit, check_pixels, namespace, to_numpy
from crdm.errors import ValidationError

__all__ = ["RULES", "ContrastiveClassifier"]

RULES = ("eqprop", "chl")


class ContrastiveClassifier(ClassifierMixin, BaseEstimator):
    """Equilibrium propagation or CHL on the MSTDP energy network, scikit-learn style.

    Parameters (the published equilibrium-propagation setting unless noted)
    ----------
    rule : ``"eqprop"`` or ``"chl"``.
    n_hidden : hidden units H (500).
    layered : no hidden ↔ hidden weights (True; MSTDP's network: False).
    activation : ``"hard_sigmoid"``, ``"sigmoid4"`` (MSTDP's) or ``"sigmoid4_shifted"``
        (``sigmoid(4 s − 2)``; ``crdm.energy``).
    init : ``"glorot"`` (uniform, ``±sqrt(6 / (fan_in + fan_out))`` per block, zero biases) or
        ``"uniform"`` (MSTDP's ``U(−init_scale, init_scale)`` for weights and biases).
    n_free, n_nudged : free and second-phase steps (20, 4).
    eps : step ε (0.5).
    beta : nudging strength β for ``eqprop`` (0.5); ``random_sign`` draws its sign per batch.
    alpha_input, alpha_output, alpha_hidden : learning rates per block (0.1, 0.05, 0.05).
    batch_size : samples per update (20); each runs in its own chain.
    persistent_particles : keep each training image's state between its presentations
        (True), else every sample starts from its chain's last state.
    test_iterations : free steps when predicting (100).
    n_epochs : passes over the data in :meth:`fit`, each in a seeded random order.
    blas_threads : BLAS threads of the numpy backend (1; see ``MSTDPClassifier``).
    """

    def __init__(self, rule: str = "eqprop", n_hidden: int = 500, *, layered: bool = True,
                 activation: str = "hard_sigmoid", init: str = "glorot",
                 init_scale: float = 0.1, n_free: int = 20, n_nudged: int = 4,
                 eps: float = 0.5, beta: float = 0.5, random_sign: bool = True,
                 alpha_input: float = 0.1, alpha_output: float = 0.05,
                 alpha_hidden: float = 0.05, batch_size: int = 20,
                 persistent_particles: bool = True, test_iterations: int = 100,
                 n_epochs: int = 1, random_state: int = 0, dtype: str = "float32",
                 backend: str = "numpy", device: str | None = None,
                 blas_threads: int | None = 1) -> None:
        self.rule = rule
        self.n_hidden = n_hidden
        self.layered = layered
        self.activation = activation
        self.init = init
        self.init_scale = init_scale
        self.n_free = n_free
        self.n_nudged = n_nudged
        self.eps = eps
        self.beta = beta
        self.random_sign = random_sign
        self.alpha_input = alpha_input
        self.alpha_output = alpha_output
        self.alpha_hidden = alpha_hidden
        self.batch_size = batch_size
        self.persistent_particles = persistent_particles
        self.test_iterations = test_iterations
        self.n_epochs = n_epochs
        self.random_state = random_state
        self.dtype = dtype
        self.backend = backend
        self.device = device
        self.blas_threads = blas_threads

    # -- set-up ---------------------------------------------------------------------------

    def _check_params(self) -> Any:
        if self.rule not in RULES:
            raise ValidationError(f"invalid value for `rule`: {self.rule!r} (one of "
                                  f"{', '.join(RULES)})", "rule", self.rule)
        for name in ("n_hidden", "n_free", "n_nudged", "batch_size", "test_iterations",
                     "n_epochs"):
            integer(name, getattr(self, name), low=1)
        integer("random_state", self.random_state, low=0)
        real("eps", self.eps, low=0.0, low_open=True, high=1.0)
        real("beta", self.beta, low=0.0, low_open=True)
        real("init_scale", self.init_scale, low=0.0, low_open=True, high=1e3)
        for name in ("alpha_input", "alpha_output", "alpha_hidden"):
            real(name, getattr(self, name), low=0.0)
        if self.init not in ("glorot", "uniform"):
            raise ValidationError(f"invalid value for `init`: {self.init!r} ('glorot' or "
                                  "'uniform')", "init", self.init)
        for name in ("layered", "random_sign", "persistent_particles"):
            if not isinstance(getattr(self, name), bool):
                raise ValidationError(f"`{name}` must be True or False", name,
                                      getattr(self, name))
        if self.dtype not in ("float32", "float64"):
            raise ValidationError(f"invalid value for `dtype`: {self.dtype!r}", "dtype",
                                  self.dtype)
        if self.blas_threads is not None:
            integer("blas_threads", self.blas_threads, low=1)
        return namespace(self.backend)

    def _init(self, n_pixels: int, classes: np.ndarray, n_particles: int) -> None:
        xp = self._check_params()
        if classes.size < 2:
            raise ValidationError(f"need at least 2 classes, got {classes.size}", "y",
                                  classes.tolist())
        rng = np.random.default_rng(self.random_state)
        n_vis, h = n_pixels + classes.size, self.n_hidden
        host = None
        if self.init == "glorot":
            def block(n_in: int, n_out: int) -> np.ndarray:
                bound = np.sqrt(6.0 / (n_in + n_out))
                return rng.uniform(-bound, bound, (n_in, n_out))

            w_vh = np.vstack([block(n_pixels, h), block(h, classes.size).T])
            host = {"w_vh": w_vh.astype(self.dtype), "w_hh": block(h, h).astype(self.dtype),
                    "b_v": np.zeros(n_vis, self.dtype), "b_h": np.zeros(h, self.dtype)}
            host["w_hh"] = ((host["w_hh"] + host["w_hh"].T) / 2).astype(self.dtype)
            host["w_hv"] = np.ascontiguousarray(host["w_vh"].T)
        self.net_ = EnergyNetwork(n_vis, h, rng, self.init_scale, self.dtype, xp, self.device,
                                  host=host, activation=self.activation,
                                  hidden_recurrent=not self.layered)
        if host is None:            # symmetric weights from MSTDP's uniform draw
            net = self.net_
            net.w_hv = net.put(to_numpy(net.w_vh).T)
            w_hh = to_numpy(net.w_hh)
            net.w_hh = net.put((w_hh + w_hh.T) / 2)
        self.classes_ = classes
        self.n_pixels_ = n_pixels
        rate_v = np.full(n_vis, self.alpha_input, dtype=self.dtype)
        rate_v[n_pixels:] = self.alpha_output
        self._rate_v = self.net_.put(rate_v)
        # states of label and hidden units: one per training image (particles) or per chain
        self.particles_ = np.zeros((n_particles, classes.size + h), dtype=self.dtype)
        self.n_presentations_ = 0
        self._sign_rng = np.random.default_rng([self.random_state, 2])

    def _blas(self) -> Any:
        return blas_limit(self.blas_threads, self.net_.xp)

    def _check_x(self, X: Any, reset: bool) -> np.ndarray:
        return check_pixels(self, X, reset=reset)

    # -- training -------------------------------------------------------------------------

    def fit(self, X: Any, y: Any) -> ContrastiveClassifier:
        """Trains from scratch: ``n_epochs`` passes in mini-batches, each pass in a seeded
        random order; with persistent particles every image keeps its own state."""
        X = self._check_x(X, reset=True)
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValidationError(f"`y` has shape {y.shape}, expected ({X.shape[0]},)", "y",
                                  y.shape)
        classes = np.unique(y)
        self._init(X.shape[1], classes,
                   X.shape[0] if self.persistent_particles else self.batch_size)
        order_rng = np.random.default_rng([self.random_state, 1])
        for _ in range(self.n_epochs):
            self.partial_fit(X, y, sample_index=order_rng.permutation(X.shape[0]))
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None, *,
                    sample_index: Any = None) -> ContrastiveClassifier:
        """Presents ``X[sample_index]`` (default: all, in order) once, in mini-batches.
        ``sample_index`` also picks each image's particle (persistent particles)."""
        first = not hasattr(self, "net_")
        X = self._check_x(X, reset=first)
        y = np.asarray(y)
        if first:
            if classes is None:
                raise ValidationError("the first call to partial_fit needs `classes`",
                                      "classes", None)
            self._init(X.shape[1], np.unique(np.asarray(classes)),
                       X.shape[0] if self.persistent_particles else self.batch_size)
        index = np.arange(X.shape[0]) if sample_index is None else np.asarray(sample_index)
        if self.persistent_particles and index.size and index.max() >= len(self.particles_):
            raise ValidationError(f"sample index {int(index.max())} has no particle (the model "
                                  f"keeps {len(self.particles_)})", "sample_index",
                                  int(index.max()))
        onehot = (y[:, None] == self.classes_[None, :]).astype(self.dtype)
        with self._blas():
            for start in range(0, index.size, self.batch_size):
                rows = index[start:start + self.batch_size]
                slots = rows if self.persistent_particles else np.arange(rows.size)
                self._step(X[rows].astype(self.dtype), onehot[rows], slots)
                self.n_presentations_ += rows.size
        if not self.net_.finite():
            raise ValidationError(f"training diverged (non-finite weights) after "
                                  f"{self.n_presentations_} presentations: lower the learning "
                                  "rates", "alpha_input", self.alpha_input)
        return self

    def _mask(self, first: int, stop: int, value: float = 1.0) -> Any:
        """``value`` on visible units ``first:stop``, 0 elsewhere, on the device."""
        mask = np.zeros(self.n_pixels_ + self.classes_.size, dtype=self.dtype)
        mask[first:stop] = value
        return self.net_.put(mask)

    def _step(self, pixels: np.ndarray, target: np.ndarray, slots: np.ndarray) -> None:
        net, xp = self.net_, self.net_.xp
        n_pix, n_lab = self.n_pixels_, self.classes_.size
        data = net.put(np.hstack([pixels, target]))
        state = self.particles_[slots]
        s_v = net.put(np.hstack([pixels, state[:, :n_lab]]))
        s_h = net.put(state[:, n_lab:])
        clamp_p = self._mask(0, n_pix)
        net.relax(s_v, s_h, self.n_free, self.eps, data=data, clamp=clamp_p, beta=1.0)
        free = (net.rates(s_v), net.rates(s_h))
        free_v, free_h = xp.asarray(s_v, copy=True), xp.asarray(s_h, copy=True)
        if self.rule == "eqprop":
            beta = self.beta
            if self.random_sign and self._sign_rng.integers(0, 2) == 0:
                beta = -beta
            net.relax(s_v, s_h, self.n_nudged, self.eps, data=data, clamp=clamp_p, beta=1.0,
                      nudge=self._mask(n_pix, n_pix + n_lab, beta), nudge_target=data)
            scale = 1.0 / beta
        else:
            net.relax(s_v, s_h, self.n_nudged, self.eps, data=data,
                      clamp=self._mask(0, n_pix + n_lab), beta=1.0)
            scale = 1.0
        second = (net.rates(s_v), net.rates(s_h))
        net.contrastive_update(self._rate_v * scale, self.alpha_hidden * scale, second, free)
        # the particle keeps the free fixed point (the published code's persistent state)
        fv, fh = to_numpy(free_v), to_numpy(free_h)
        self.particles_[slots] = np.hstack([fv[:, n_pix:], fh])

    # -- inference ------------------------------------------------------------------------

    def decision_function(self, X: Any) -> np.ndarray:
        """Label-unit states ``(n, n_classes)`` after ``test_iterations`` free steps from 0."""
        check_is_fitted(self, "net_")
        X = self._check_x(X, reset=False)
        net = self.net_
        n_pix, n_lab = self.n_pixels_, self.classes_.size
        clamp_p = self._mask(0, n_pix)
        out = np.empty((X.shape[0], n_lab))
        with self._blas():
            for start in range(0, X.shape[0], 500):
                pixels = X[start:start + 500].astype(self.dtype)
                data = net.put(np.hstack([pixels, np.zeros((len(pixels), n_lab), self.dtype)]))
                s_v = net.put(np.hstack([pixels, np.zeros((len(pixels), n_lab), self.dtype)]))
                s_h = net.put(np.zeros((len(pixels), self.n_hidden), self.dtype))
                net.relax(s_v, s_h, self.test_iterations, self.eps, data=data, clamp=clamp_p,
                          beta=1.0)
                out[start:start + len(pixels)] = to_numpy(s_v)[:, n_pix:]
        return out

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]

    def generate(self, label: Any, n: int = 1, *, random_state: int = 0,
                 label_gain: float = 1.0) -> np.ndarray:
        """``n`` images ``(n, n_pixels)`` in [0, 1] of class ``label``: pixels start uniform
        in [0, 1), hidden units at 0, the label units clamped to the one-hot label, then
        ``test_iterations`` free steps with the pixels free. ``label_gain`` multiplies the
        label units' weights to the hidden layer while generating, as in
        :meth:`crdm.mstdp.MSTDPClassifier.generate`."""
        check_is_fitted(self, "net_")
        n = integer("n", n, low=1)
        label_gain = real("label_gain", label_gain, low=0.0, low_open=True)
        if label not in self.classes_.tolist():
            raise ValidationError(f"`label` {label!r} is not one of {self.classes_.tolist()}",
                                  "label", label)
        net = self.net_
        n_pix, n_lab = self.n_pixels_, self.classes_.size
        rng = np.random.default_rng(integer("random_state", random_state, low=0))
        data = np.zeros((n, n_pix + n_lab), dtype=self.dtype)
        data[:, n_pix + self.classes_.tolist().index(label)] = 1.0
        s_v = net.put(np.hstack([rng.uniform(0.0, 1.0, (n, n_pix)), data[:, n_pix:]]))
        s_h = net.put(np.zeros((n, self.n_hidden), self.dtype))
        with self._blas(), net.outgoing_gain(n_pix, n_pix + n_lab, label_gain):
            net.relax(s_v, s_h, self.test_iterations, self.eps, data=net.put(data),
                      clamp=self._mask(n_pix, n_pix + n_lab), beta=1.0)
        return np.clip(to_numpy(s_v)[:, :n_pix], 0.0, 1.0).astype(np.float64)
