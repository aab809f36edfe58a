"""MSTDP (Li, *MSTDP: a more biologically plausible learning*): a momentum-STDP energy network.

Units. Every quantity is dimensionless: states ``s``, rates ``ρ(s)``, weights and biases; time is
counted in iterations (the paper's ``Δt = 1``), ``ε`` is a step size per iteration.

Network. ``n_v = n_pixels + n_labels`` visible units (784 + 10 for MNIST) and ``H`` hidden units.
Every visible unit connects to every hidden unit and back, hidden units connect to each other,
visible units do not connect to each other; weights are not symmetric. Stored as ``W_vh``
(``n_v × H``, visible → hidden), ``W_hv`` (``H × n_v``), ``W_hh`` (``H × H``, zero diagonal) and
biases ``b_v``, ``b_h``; ``W[j, i]`` is the weight from ``j`` to ``i``.

Equations (the paper's numbers):

* (2) pressure ``R_i(s) = ρ'(s_i) (Σ_j W[j, i] ρ(s_j) + b_i)`` with ``ρ(s) = sigmoid(4 s)``
  ("sigmoid4"), ``ρ'(s) = 4 ρ(s) (1 − ρ(s))``;
* (1) free phase: ``s ← s + ε_f (R(s) − s)``;
* (8) clamped units are pulled towards the data by ``β (data_i − s_i)``;
* (11)-(12) clamped phase, momentum inference, then the pull of eq. 8 as its own step:
  ``v ← m (R(s) − s) + (1 − m) v``, ``s ← s + ε_c v``, ``s ← s + β c ⊙ (data − s)``
  (``c``: 1 on clamped units);
* (7) STDP at every clamped iteration: ``ΔW[j, i] = α ρ(s_j) Δρ(s_i)``, ``Δb_i = α Δρ(s_i)``,
  ``Δρ = ρ(s_new) − ρ(s_old)`` over the iteration;
* (13)-(17) optional path smoothing, rate ``γ`` (``smoothing``): with ``ds = R(s) − s``,
  ``ΔW[j, i] = −γ ds_i ρ'(s_i) ρ(s_j)``, ``Δb_i = −γ ds_i ρ'(s_i)`` at every clamped iteration.
* Algorithm 1: per sample, ``T`` times: a clamped phase of ``iterations`` steps (learning on),
  then a free phase of ``iterations`` steps (learning off). ``s`` is never reset, not even
  between samples.

Choices where the paper is ambiguous (made here, and kept consistent everywhere):

1. ``β`` is its own step size, not a force inside the momentum: Algorithm 1 calls it "the
   iteration step for s to decrease C" beside "ε, the iteration step for s to decrease E",
   and sets ``β = 1`` (full clamping) where the text says 0.8. So after the momentum step of
   eqs. 11-12, clamped units move a fraction ``β`` of the way to the data, and ``β ∈ [0, 1]``.
   Measured (H = 128, one chain, 300 test images after 2,000 presentations): 53 % this way,
   21 % with ``β (data − s)`` added to the force inside the momentum, where the clamped fixed
   point ``(R + β data) / (1 + β)`` holds only 44 % of the data.
2. Pre and post: eq. 6 is "presynaptic rate × change of postsynaptic rate" (Bengio et al.,
   the paper's [1]); eq. 7's subscripts are read as the rule for the *postsynaptic* neuron
   ``i``, so ``W[j, i]`` (``j → i``) changes by ``α ρ(s_j) Δρ(s_i)``. ``ρ(s_j)`` is taken
   before the step, as ``ρ_f`` in the paper's derivation.
3. Free phases use eq. 1 without momentum: the paper's "m = 0" for free phases would, read
   literally in eq. 12, freeze the velocity; Algorithm 1 says free phases use eq. 1.
4. The velocity ``v`` starts at 0 at the beginning of every clamped phase.
5. Eqs. 16-17, as printed, are the derivative of ``ds`` and not a step that makes ``ds``
   smaller; smoothing here is a gradient step on ``½ Σ ds_i²`` holding ``ρ'(s_i)`` fixed.
6. The initial state is uniform in ``[0, 1)``; weights and biases ``U(−0.1, 0.1)``.
7. Prediction: pixels clamped, labels free, ``test_phases`` clamped/free phases with ``α = 0``;
   the label is the label unit with the largest state at the end of the last clamped phase.
   Generation: from a random state, the label units clamped to the one-hot label, the same
   phases; the image is the pixel units' states clipped to ``[0, 1]``.
8. Departure (opt-in, documented): ``n_chains > 1`` runs that many independent chains, each
   with its own state and its own stream of samples, and applies the *mean* of their updates
   at every iteration (mini-batch semantics). ``n_chains = 1`` is the paper's online rule.
   (Summing instead made the hidden layer collapse into saturation at 8 chains: the clamped
   phase lowers hidden rates on average, learning happens only in clamped phases, so the
   common mode of ``W_vh`` drifts negative, and faster with a larger effective rate.)
9. Departure (opt-in, ``symmetric_hidden=True``): eq. 7 on hidden-to-hidden weights,
   ``Σ ρ_j Δρ_i`` summed along a path, is the area the path encloses in the
   ``(ρ_j, ρ_i)`` plane whenever the path turns: antisymmetric, and it grows the rotation that
   produced it. Measured at H = 256: the online rule reaches 38.4 % (500 test images) after
   2,000 presentations, then every hidden unit saturates (``|s| > 1``, ``max |W_hh|`` 2.18)
   and it sits at 8-11 %; with 16 chains and α = 0.002 the same happens after 28,000
   presentations, as the spectral radius of ``W_hh`` goes 1.6 → 10 → 208 while its largest
   real eigenvalue stays near 2. Clipping weights to ±0.5 does not prevent it. The
   symmetrised rule ``α (ρ_j Δρ_i + ρ_i Δρ_j) / 2`` is ``α Δ(ρ_i ρ_j) / 2`` less the
   second-order term the paper drops in its CHL derivation, so along a closed loop it sums
   to (almost) nothing. Visible↔hidden weights keep eq. 7 and stay asymmetric.
10. Departure (opt-in, ``free_phase="inputs_clamped"``): in the paper's free phase every
    unit relaxes, pixels included (its Fig. 1: the free fixed point is an average blob), so
    the rule learns the pixels and the label together, a generative target in which the 10
    label units weigh little beside 784 pixel units. Clamping the pixels in the free phases
    of training and prediction leaves the label (and the hidden layer's response to the
    image) as the only thing the clamped phase teaches, as in CHL and equilibrium
    propagation; generation is unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from crdm._checks import integer, real
from crdm._io import atomic_write, check_header, read_npz
from crdm.energy import (
    ACTIVATIONS,
    EnergyNetwork,
    blas_limit,
    check_pixels,
    namespace,
    to_numpy,
)
from crdm.errors import CrdmError, DataError, MemoryLimitError, ValidationError

__all__ = ["FREE_PHASES", "MSTDPClassifier", "decayed_alpha", "load_mstdp"]

#: what relaxes freely between clamped phases (choice 10 of the module docstring)
FREE_PHASES = ("free", "inputs_clamped")

# A model that would need more memory than this is refused before anything is allocated.
MEMORY_LIMIT_BYTES = 16 * 2**30

_FORMAT = "crdm-mstdp"
# 2: β became its own clamping step (choice 1), so a version-1 model would continue under
# other dynamics than it was trained with
_FORMAT_VERSION = 2
_ARRAYS = ("w_vh", "w_hv", "w_hh", "b_v", "b_h", "state")


def decayed_alpha(alpha: float, decay: float, done: int, total: int) -> float:
    """The rate after ``done`` of ``total`` presentations when ``α`` decays geometrically to
    ``decay · α`` over them (the schedule of a study's trials and of their final runs)."""
    return alpha * decay ** (done / total)


class MSTDPClassifier(ClassifierMixin, BaseEstimator):
    """The MSTDP network as a scikit-learn classifier that also generates images.

    Parameters (paper defaults unless noted)
    ----------
    n_hidden : hidden units (paper: 2048; default 256 to train in minutes on 2 cores).
    alpha : STDP learning rate α (0.001).
    n_phases : clamped/free phase pairs per training sample, T (10).
    n_iterations : iterations per phase (32).
    eps_clamped, beta, momentum : clamped phase ε, β, m (0.2, 0.8, 0.4).
    eps_free : free phase ε (0.2).
    smoothing : path-smoothing rate γ of Section 2.7 (0 = off; the paper gives no value).
    symmetric_hidden : hidden-to-hidden weights learn ``α (ρ_j Δρ_i + ρ_i Δρ_j) / 2`` instead
        of eq. 7's ``α ρ_j Δρ_i`` (not in the paper; see choice 9).
    weight_bound : if set, weights are clipped to ``[−weight_bound, weight_bound]`` after every
        clamped phase (not in the paper; ``None`` = unbounded, the paper's rule).
    test_phases : clamped/free phase pairs when predicting or generating (3).
    init_scale : weights and biases start uniform in ``(−init_scale, init_scale)`` (0.1).
    activation : the rate ``ρ``: ``"sigmoid4"`` (the paper's), ``"hard_sigmoid"``
        (``clip(s, 0, 1)``, states clipped: the equilibrium-propagation setting) or
        ``"sigmoid4_shifted"`` (``sigmoid(4 s − 2)``); the last two are not in the paper, for
        ablations against the controls of ``crdm.contrastive``.
    layered : no hidden-to-hidden weights (``False``, the paper's network; ``True`` for the
        same ablations).
    free_phase : ``"free"`` (the paper's: every unit relaxes freely between clamped phases) or
        ``"inputs_clamped"`` (the pixel units stay clamped to the sample in training's and
        prediction's free phases, as in CHL and equilibrium propagation; choice 10).
    n_chains : independent chains trained together (1 = the paper's online rule).
    n_epochs : passes over the data in :meth:`fit`, each in a seeded random order.
    random_state : seed of the initial weights, states and sample order.
    dtype : ``"float32"`` (fast) or ``"float64"``.
    backend : array library the network runs on: ``"numpy"`` (default, CPU), ``"torch"`` or
        ``"cupy"`` (GPU; optional installs, selected explicitly, never by default), or
        ``"array_api_strict"`` (a CPU check that the code stays inside the array API standard).
        Every backend runs the same operations; float rounding differs in the last bits, so a
        result folder records the backend and refuses to continue on another.
    device : where ``torch`` or ``cupy`` arrays live (``"cuda"``, ``"cuda:1"``, ``"cpu"``);
        ``None`` is the library's default. Not part of the results.
    blas_threads : threads the numpy backend's BLAS may use (default 1; ``None``: the
        library's default). The products here are small (chains × units by units × H) and
        come thousands of times per presentation, so threads cost more in start-up and
        synchronisation than they save: on a 2-core AMD EPYC, H = 256 with 16 chains took
        376 ms per presentation with OpenBLAS's 2 threads and 21 ms with one
        (``benches/mstdp_per_presentation.py``, ``docs/performance.md``).
    """

    def __init__(self, n_hidden: int = 256, *, alpha: float = 1e-3, n_phases: int = 10,
                 n_iterations: int = 32, eps_clamped: float = 0.2, beta: float = 0.8,
                 momentum: float = 0.4, eps_free: float = 0.2, smoothing: float = 0.0,
                 symmetric_hidden: bool = False, weight_bound: float | None = None,
                 test_phases: int = 3, init_scale: float = 0.1, n_chains: int = 1,
                 n_epochs: int = 1, random_state: int = 0, dtype: str = "float32",
                 backend: str = "numpy", device: str | None = None,
                 blas_threads: int | None = 1, activation: str = "sigmoid4",
                 layered: bool = False, free_phase: str = "free") -> None:
        self.n_hidden = n_hidden
        self.alpha = alpha
        self.n_phases = n_phases
        self.n_iterations = n_iterations
        self.eps_clamped = eps_clamped
        self.beta = beta
        self.momentum = momentum
        self.eps_free = eps_free
        self.smoothing = smoothing
        self.symmetric_hidden = symmetric_hidden
        self.weight_bound = weight_bound
        self.test_phases = test_phases
        self.init_scale = init_scale
        self.n_chains = n_chains
        self.n_epochs = n_epochs
        self.random_state = random_state
        self.dtype = dtype
        self.backend = backend
        self.device = device
        self.blas_threads = blas_threads
        self.activation = activation
        self.layered = layered
        self.free_phase = free_phase

    # -- set-up ---------------------------------------------------------------------------

    def _check_params(self) -> None:
        integer("n_hidden", self.n_hidden, low=1)
        integer("n_phases", self.n_phases, low=1)
        integer("n_iterations", self.n_iterations, low=1)
        integer("test_phases", self.test_phases, low=1)
        integer("n_chains", self.n_chains, low=1)
        integer("n_epochs", self.n_epochs, low=1)
        integer("random_state", self.random_state, low=0)
        for name in ("alpha", "smoothing"):
            real(name, getattr(self, name), low=0.0)
        if self.weight_bound is not None:
            real("weight_bound", self.weight_bound, low=0.0, low_open=True)
        if not isinstance(self.symmetric_hidden, bool):
            raise ValidationError(f"`symmetric_hidden` must be True or False, got "
                                  f"{self.symmetric_hidden!r}", "symmetric_hidden",
                                  self.symmetric_hidden)
        # β is the fraction of the way to the data a clamped unit moves per iteration
        real("beta", self.beta, low=0.0, high=1.0)
        for name in ("eps_clamped", "eps_free"):
            real(name, getattr(self, name), low=0.0, low_open=True, high=1.0)
        real("init_scale", self.init_scale, low=0.0, low_open=True, high=1e3)
        m = real("momentum", self.momentum, low=0.0)
        if m > 1:
            raise ValidationError(f"invalid value for `momentum`: {m} (must be in [0, 1])",
                                  "momentum", m)
        if self.blas_threads is not None:
            integer("blas_threads", self.blas_threads, low=1)
        if self.activation not in ACTIVATIONS:
            raise ValidationError(f"invalid value for `activation`: {self.activation!r} (one "
                                  f"of {', '.join(ACTIVATIONS)})", "activation",
                                  self.activation)
        if not isinstance(self.layered, bool):
            raise ValidationError("`layered` must be True or False", "layered", self.layered)
        if self.free_phase not in FREE_PHASES:
            raise ValidationError(f"invalid value for `free_phase`: {self.free_phase!r} (one "
                                  f"of {', '.join(FREE_PHASES)})", "free_phase",
                                  self.free_phase)
        if self.smoothing and self.activation != "sigmoid4":
            raise ValidationError("path smoothing (Section 2.7) is written for sigmoid4 rates",
                                  "smoothing", self.smoothing)
        if self.dtype not in ("float32", "float64"):
            raise ValidationError(f"invalid value for `dtype`: {self.dtype!r} ('float32' or "
                                  "'float64')", "dtype", self.dtype)
        if self.device is not None and not isinstance(self.device, str):
            raise ValidationError(f"invalid value for `device`: {self.device!r} (a string such "
                                  "as 'cuda', or None)", "device", self.device)
        if self.backend in ("numpy", "array_api_strict") and self.device not in (None, "cpu"):
            raise ValidationError(f"invalid value for `device`: {self.device!r} (backend "
                                  f"{self.backend!r} runs on the CPU only)", "device",
                                  self.device)
        return namespace(self.backend)

    def _init(self, n_pixels: int, classes: np.ndarray) -> None:
        xp = self._check_params()
        if classes.size < 2:
            raise ValidationError(f"need at least 2 classes, got {classes.size}", "y",
                                  classes.tolist())
        n_vis, h = n_pixels + classes.size, self.n_hidden
        # weights (2·n_vis·H + H²), biases, chain states, and the momentum/trace copies the
        # clamped phase keeps of states and rates (about four per chain); the largest block
        # is drawn in float64 first
        need = (np.dtype(self.dtype).itemsize * (2 * n_vis * h + h * h + n_vis + h
                                                 + 5 * self.n_chains * (n_vis + h))
                + 8 * max(h * h, n_vis * h))
        if need > MEMORY_LIMIT_BYTES:
            raise MemoryLimitError(
                f"an MSTDP network of {h} hidden units and {self.n_chains} chains would need "
                f"{need / 2**30:.1f} GiB, over the limit of {MEMORY_LIMIT_BYTES / 2**30:.0f} GiB",
                "n_hidden", need)
        self.classes_ = classes
        self.n_pixels_ = n_pixels
        rng = np.random.default_rng(self.random_state)
        self.net_ = EnergyNetwork(n_pixels + classes.size, self.n_hidden, rng, self.init_scale,
                                  self.dtype, xp, self.device, activation=self.activation,
                                  hidden_recurrent=not self.layered)
        n_vis = n_pixels + classes.size
        self.state_ = self.net_.put(rng.uniform(0.0, 1.0, (self.n_chains, n_vis + self.n_hidden)))
        self.n_presentations_ = 0

    def _targets(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Pixels and one-hot labels, on the host."""
        onehot = (y[:, None] == self.classes_[None, :]).astype(self.dtype)
        return np.hstack([X.astype(self.dtype), onehot])

    def _clamp(self, first: int, stop: int) -> Any:
        """1 on visible units ``first:stop`` (the clamped ones), 0 elsewhere, on the device."""
        clamp = np.zeros(self.n_pixels_ + self.classes_.size, dtype=self.dtype)
        clamp[first:stop] = 1.0
        return self.net_.put(clamp)

    def _check_x(self, X: Any, reset: bool) -> np.ndarray:
        return check_pixels(self, X, reset=reset)

    # -- training -------------------------------------------------------------------------

    def fit(self, X: Any, y: Any) -> MSTDPClassifier:
        """Trains from scratch: ``n_epochs`` passes, each in a seeded random order."""
        X = self._check_x(X, reset=True)
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValidationError(f"`y` has shape {y.shape}, expected ({X.shape[0]},)", "y",
                                  y.shape)
        self._init(X.shape[1], np.unique(y))
        order_rng = np.random.default_rng([self.random_state, 1])
        for _ in range(self.n_epochs):
            perm = order_rng.permutation(X.shape[0])
            self._train(X[perm], y[perm])
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MSTDPClassifier:
        """Presents ``X`` once, in the given order, continuing from the current state."""
        first = not hasattr(self, "net_")
        X = self._check_x(X, reset=first)
        y = np.asarray(y)
        if first:
            if classes is None:
                raise ValidationError("the first call to partial_fit needs `classes`",
                                      "classes", None)
            self._init(X.shape[1], np.unique(np.asarray(classes)))
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValidationError(f"labels {unknown.tolist()} are not among the classes "
                                  f"{self.classes_.tolist()}", "y", unknown.tolist())
        self._train(X, y)
        return self

    def _blas(self) -> Any:
        return blas_limit(self.blas_threads, self.net_.xp)

    def _train(self, X: np.ndarray, y: np.ndarray) -> None:
        """Sample ``k`` goes to chain ``k mod n_chains``; the chains step together."""
        data = self._targets(X, y)
        clamp = self._clamp(0, data.shape[1])
        b = self.n_chains
        for start in range(0, data.shape[0], b):
            batch = self.net_.put(data[start:start + b])
            s = self.state_[:batch.shape[0], :]
            self._phases(s, batch, clamp, self.n_phases, self.alpha, self.smoothing,
                         free_clamp=self._free_clamp())
            self.state_[:batch.shape[0], :] = s
            self.n_presentations_ += batch.shape[0]
        # A step size too large for the data makes the weights overflow: say so, rather than
        # leave a model that predicts from NaNs.
        if not self.net_.finite(self.state_):
            raise ValidationError(f"training diverged (non-finite weights or states) after "
                                  f"{self.n_presentations_} presentations: lower `alpha` "
                                  f"({self.alpha})", "alpha", self.alpha)

    def _free_clamp(self) -> Any:
        """The units clamped in free phases when the data holds the pixels (choice 10)."""
        return self._clamp(0, self.n_pixels_) if self.free_phase == "inputs_clamped" else None

    def _phases(self, s: Any, data: Any, clamp: Any, n_phases: int, alpha: float,
                smoothing: float, free_clamp: Any = None) -> Any:
        """``n_phases`` clamped/free pairs on the device states ``s`` in place; returns the
        visible states at the end of the last clamped phase, on the device (training ignores
        them, so they never cross to the host there)."""
        with self._blas():
            return self._relax_phases(s, data, clamp, n_phases, alpha, smoothing, free_clamp)

    def _relax_phases(self, s: Any, data: Any, clamp: Any, n_phases: int, alpha: float,
                      smoothing: float, free_clamp: Any) -> Any:
        xp = self.net_.xp
        n_vis = data.shape[1]
        s_v = xp.asarray(s[:, :n_vis], copy=True)
        s_h = xp.asarray(s[:, n_vis:], copy=True)
        at_clamped = s_v
        for _ in range(n_phases):
            self.net_.relax(s_v, s_h, self.n_iterations, self.eps_clamped, data=data,
                            clamp=clamp, beta=self.beta, momentum=self.momentum, alpha=alpha,
                            smoothing=smoothing, symmetric_hidden=self.symmetric_hidden)
            if (alpha or smoothing) and self.weight_bound is not None:
                self.net_.bound(self.weight_bound)
            at_clamped = xp.asarray(s_v, copy=True)
            if free_clamp is None:
                self.net_.relax(s_v, s_h, self.n_iterations, self.eps_free)
            else:
                self.net_.relax(s_v, s_h, self.n_iterations, self.eps_free, data=data,
                                clamp=free_clamp, beta=self.beta)
        s[:, :n_vis] = s_v
        s[:, n_vis:] = s_h
        return at_clamped

    # -- inference ------------------------------------------------------------------------

    def decision_function(self, X: Any) -> np.ndarray:
        """Label-unit states ``(n, n_classes)`` after the test phases (pixels clamped).

        Runs on a copy of the chain states, so predicting never changes the model.
        """
        check_is_fitted(self, "net_")
        X = self._check_x(X, reset=False)
        data = self._targets(X, np.full(X.shape[0], self.classes_[0]))
        data[:, self.n_pixels_:] = 0.0
        clamp = self._clamp(0, self.n_pixels_)
        state = self.net_.xp.asarray(self.state_, copy=True)
        out = np.empty((X.shape[0], self.classes_.size))
        for start in range(0, X.shape[0], self.n_chains):
            batch = self.net_.put(data[start:start + self.n_chains])
            s = state[:batch.shape[0], :]
            v = to_numpy(self._phases(s, batch, clamp, self.test_phases, 0.0, 0.0,
                                      free_clamp=self._free_clamp()))
            out[start:start + batch.shape[0]] = v[:, self.n_pixels_:]
            state[:batch.shape[0], :] = s
        return out

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]

    def generate(self, label: Any, n: int = 1, *, n_phases: int | None = None,
                 random_state: int = 0, label_gain: float = 1.0) -> np.ndarray:
        """``n`` images ``(n, n_pixels)`` in [0, 1] of class ``label``: random start, label
        clamped, ``n_phases`` (default ``test_phases``) clamped/free pairs.

        ``label_gain`` multiplies the label units' weights to the hidden layer while
        generating (the model is unchanged). At 1, the paper's generation: the ten label
        units then drive the hidden layer far less than the 784 free pixel units do, so the
        image hardly depends on the label; a gain makes the clamped label count
        (``docs/reproduction.md`` measures both)."""
        check_is_fitted(self, "net_")
        n = integer("n", n, low=1)
        phases = integer("n_phases", self.test_phases if n_phases is None else n_phases, low=1)
        label_gain = real("label_gain", label_gain, low=0.0, low_open=True)
        if label not in self.classes_.tolist():
            raise ValidationError(f"`label` {label!r} is not one of {self.classes_.tolist()}",
                                  "label", label)
        rng = np.random.default_rng(integer("random_state", random_state, low=0))
        n_vis = self.n_pixels_ + self.classes_.size
        state = self.net_.put(rng.uniform(0.0, 1.0, (n, n_vis + self.n_hidden)))
        data = np.zeros((n, n_vis), dtype=self.dtype)
        data[:, self.n_pixels_ + self.classes_.tolist().index(label)] = 1.0
        clamp = self._clamp(self.n_pixels_, n_vis)
        with self.net_.outgoing_gain(self.n_pixels_, n_vis, label_gain):
            v = to_numpy(self._phases(state, self.net_.put(data), clamp, phases, 0.0, 0.0))
        return np.clip(v[:, :self.n_pixels_], 0.0, 1.0).astype(np.float64)

    def training_loop_states(self, X: Any, y: Any) -> dict[str, np.ndarray]:
        """Paper Fig. 1 for each sample, from the current state of chain 0 (model untouched):
        the free fixed point, the 1st and 2nd clamped fixed points (pixel units), the label."""
        check_is_fitted(self, "net_")
        X = self._check_x(X, reset=False)
        y = np.asarray(y)
        data = self._targets(X, y)
        clamp = self._clamp(0, data.shape[1])
        out: dict[str, list[np.ndarray]] = {"free": [], "clamped_1": [], "clamped_2": []}
        for row in data:
            s = self.net_.xp.asarray(self.state_[:1, :], copy=True)
            out["free"].append(to_numpy(s)[0, :self.n_pixels_].copy())
            for key in ("clamped_1", "clamped_2"):
                v = to_numpy(self._phases(s, self.net_.put(row[None, :]), clamp, 1, 0.0, 0.0))
                out[key].append(v[0, :self.n_pixels_].copy())
        result = {k: np.clip(np.array(v, dtype=np.float64), 0, 1) for k, v in out.items()}
        result["label"] = y
        return result

    def inference_trace(self, X: Any, y: Any, *, momentum: float | None = None,
                        n_iterations: int | None = None) -> np.ndarray:
        """Paper Fig. 2: the states ``(iterations + 1, n_hidden)`` of the hidden units over
        one clamped phase (pixels and label clamped, learning off) from chain 0's current
        state, for the first sample of ``X``; ``momentum`` (default: the model's ``m``;
        ``0.0`` is eq. 1 without momentum) and ``n_iterations`` (default the model's)."""
        check_is_fitted(self, "net_")
        X = self._check_x(X, reset=False)
        data = self._targets(X[:1], np.asarray(y)[:1])
        clamp = self._clamp(0, data.shape[1])
        n_vis = data.shape[1]
        s = self.net_.xp.asarray(self.state_[:1, :], copy=True)
        s_v = self.net_.xp.asarray(s[:, :n_vis], copy=True)
        s_h = self.net_.xp.asarray(s[:, n_vis:], copy=True)
        steps = [to_numpy(s_h)[0].copy()]
        m = self.momentum if momentum is None else real("momentum", momentum, low=0.0,
                                                            high=1.0)
        with self._blas():
            self.net_.relax(s_v, s_h, n_iterations or self.n_iterations, self.eps_clamped,
                            data=self.net_.put(data), clamp=clamp, beta=self.beta,
                            momentum=None if m == 0.0 else m,
                            trace=lambda _v, h: steps.append(to_numpy(h)[0].copy()))
        return np.array(steps, dtype=np.float64)

    # -- files ----------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Writes parameters, weights, chain states and counters to one ``.npz``, atomically."""
        check_is_fitted(self, "net_")
        path = Path(path)
        header = {"format": _FORMAT, "version": _FORMAT_VERSION, "params": self.get_params(),
                  "classes": self.classes_.tolist(), "n_pixels": self.n_pixels_,
                  "n_presentations": self.n_presentations_}
        arrays = {name: to_numpy(getattr(self.net_, name)) for name in _ARRAYS[:5]}
        arrays["state"] = to_numpy(self.state_)
        return atomic_write(path, lambda fh: np.savez(fh, header=np.array(json.dumps(header)),
                                                      **arrays))


def load_mstdp(path: str | Path, *, backend: str | None = None,
               device: str | None = None) -> MSTDPClassifier:
    """Reads a model written by :meth:`MSTDPClassifier.save`; exact round trip.

    ``backend`` and ``device`` (default: the stored ones) move the model, for example a model
    trained on a GPU onto ``backend="numpy"``.
    """
    header, arrays = read_npz(path, "crdm MSTDP model")
    check_header(header, path=path, what="crdm MSTDP model", fmt=_FORMAT,
                 version=_FORMAT_VERSION)
    missing = [name for name in _ARRAYS if name not in arrays]
    params = header.get("params")
    known = set(MSTDPClassifier().get_params())
    if missing or not isinstance(params, dict) or set(params) - known:
        raise DataError(f"{path}: damaged crdm MSTDP model (missing arrays {missing}, params "
                        f"{params!r})")
    if backend is not None:
        params = {**params, "backend": backend, "device": device}
    elif device is not None:
        params = {**params, "device": device}
    model = MSTDPClassifier(**params)
    if backend is not None or device is not None:
        model._check_params()   # errors in the caller's arguments are theirs, not the file's
    try:
        model._init(int(header["n_pixels"]), np.asarray(header["classes"]))
    except CrdmError as exc:
        raise DataError(f"{path}: stored parameters are invalid: {exc}") from exc
    n_vis = int(header["n_pixels"]) + len(header["classes"])
    expected = {"w_vh": (n_vis, model.n_hidden), "w_hv": (model.n_hidden, n_vis),
                "w_hh": (model.n_hidden, model.n_hidden), "b_v": (n_vis,),
                "b_h": (model.n_hidden,), "state": (model.n_chains, n_vis + model.n_hidden)}
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise DataError(f"{path}: array {name} has shape {arrays[name].shape}, expected "
                            f"{shape}")
        if not np.all(np.isfinite(arrays[name])):
            raise DataError(f"{path}: array {name} holds NaN or inf")
    for name in _ARRAYS[:5]:
        setattr(model.net_, name, model.net_.put(arrays[name]))
    model.state_ = model.net_.put(arrays["state"])
    model.n_presentations_ = int(header["n_presentations"])
    model.n_features_in_ = int(header["n_pixels"])
    return model
