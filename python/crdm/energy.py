"""The energy network that MSTDP and its same-framework controls (CHL, equilibrium
propagation) relax: weights, biases, states and the relaxation dynamics, on any array library.

Units are dimensionless; time is counted in iterations. ``n_v`` visible units (pixels, then
labels) and ``H`` hidden units; every visible unit connects to every hidden unit and back
(``W_vh``, ``W_hv``), hidden units to each other (``W_hh``, zero diagonal; all zero in the
layered setting), visible units never to each other. ``W[j, i]`` is the weight ``j → i``.

* rate ``ρ(s)``: ``sigmoid(4 s)`` (MSTDP's "sigmoid4", ``ρ' = 4 ρ (1 − ρ)``), the hard
  sigmoid ``clip(s, 0, 1)`` of equilibrium propagation's published code (``ρ' = 1`` on
  ``[0, 1]``, states clipped to it after every step), or ``sigmoid(4 s − 2)``
  ("sigmoid4_shifted", the variant commented out in that code: ``ρ(0) ≈ 0.12``,
  ``ρ(1) ≈ 0.88``, so that a black pixel sends little instead of half its rate);
* pressure (MSTDP eq. 2): ``R_i(s) − s_i = ρ'(s_i) (Σ_j W[j, i] ρ(s_j) + b_i) − s_i``; with
  symmetric weights this is ``−∂E/∂s`` for the Hopfield-like energy
  ``E = ½ Σ s_i² − ½ Σ_{i≠j} W_ij ρ_i ρ_j − Σ b_i ρ_i`` (for the hard sigmoid on ``[0, 1]``);
* step (eq. 1): ``s ← s + ε (R(s) − s)``, or with momentum (eqs. 11-12)
  ``v ← m (R(s) − s) + (1 − m) v``, ``s ← s + ε v``; a nudging force
  ``2 β_n (target − s)`` (the gradient of ``β_n ‖s − target‖²``) may be added to the pressure of
  chosen units; clamped units then move a fraction ``β`` of the way to their data (eq. 8).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import numpy as np

from crdm.errors import ValidationError

__all__ = ["ACTIVATIONS", "BACKENDS", "EnergyNetwork", "blas_limit", "check_pixels",
           "namespace", "thread_controller", "to_numpy"]

ACTIVATIONS = ("sigmoid4", "hard_sigmoid", "sigmoid4_shifted")
_ARRAYS = ("w_vh", "w_hv", "w_hh", "b_v", "b_h")


def rho_sigmoid4(xp: Any, s: Any) -> Any:
    return 1.0 / (1.0 + xp.exp(-4.0 * s))


BACKENDS = ("numpy", "torch", "cupy", "array_api_strict")


def namespace(backend: str) -> Any:
    """The array namespace of ``backend``; GPU libraries are imported only when asked for."""
    if backend == "numpy":
        return np
    if backend not in BACKENDS:
        raise ValidationError(f"invalid value for `backend`: {backend!r} (one of "
                              f"{', '.join(BACKENDS)})", "backend", backend)
    try:
        if backend == "torch":
            import torch  # noqa: F401  (array_api_compat wraps it)
            from array_api_compat import torch as xp
        elif backend == "cupy":
            import cupy  # noqa: F401
            from array_api_compat import cupy as xp
        else:
            import array_api_strict as xp
    except ImportError as exc:
        raise ValidationError(f"backend {backend!r} is not available ({exc}): install it "
                              "(torch or cupy for your CUDA version, plus crdm's `gpu` extra: "
                              "pip install 'crdm[gpu]'), or use backend='numpy'", "backend",
                              backend) from exc
    return xp


@functools.cache
def thread_controller() -> Any:
    """threadpoolctl's view of the loaded thread pools (found once: looking is slow)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _gemm(dtype: np.dtype) -> Any:
    from scipy.linalg import blas

    return blas.sgemm if dtype == np.float32 else blas.dgemm


def blas_limit(blas_threads: int | None, xp: Any) -> Any:
    """A context limiting the numpy backend's BLAS to ``blas_threads`` threads (``None``: the
    library's default; other backends: no limit)."""
    if blas_threads is None or xp is not np:
        return contextlib.nullcontext()
    return thread_controller().limit(limits=blas_threads, user_api="blas")


def check_pixels(estimator: Any, X: Any, *, reset: bool) -> np.ndarray:
    """scikit-learn's input checks for ``estimator``, as typed errors, and pixels in [0, 1]."""
    from sklearn.utils.validation import validate_data

    try:
        X = validate_data(estimator, X, reset=reset, dtype=np.float64)
    except ValueError as exc:
        raise ValidationError(f"invalid `X`: {exc}", "X", getattr(X, "shape", None)) from None
    if X.size and (X.min() < 0.0 or X.max() > 1.0):
        bad = X.min() if X.min() < 0.0 else X.max()
        raise ValidationError(f"pixel values must lie in [0, 1] (scale images by 1/255), "
                              f"found {bad}", "X", float(bad))
    return X


def to_numpy(x: Any) -> np.ndarray:
    """A host copy (or view) of an array of any backend."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach"):                       # torch, on any device
        return x.detach().cpu().numpy()
    if hasattr(x, "get"):                          # cupy
        return x.get()
    return np.asarray(x)                           # array_api_strict


class EnergyNetwork:
    """Weights, biases and the relaxation dynamics (no scikit-learn here).

    Arrays live in the namespace ``xp`` on ``device``; every operation below is in the array
    API standard, so the same code runs on numpy, torch and cupy. Initial values are drawn
    with numpy, so every backend starts from the same numbers.
    """

    def __init__(self, n_vis: int, n_hid: int, rng: np.random.Generator, scale: float,
                 dtype: str, xp: Any, device: Any, *, host: dict[str, np.ndarray] | None = None,
                 activation: str = "sigmoid4", hidden_recurrent: bool = True) -> None:
        """Weights and biases ``U(−scale, scale)`` drawn from ``rng``, or the ``host`` arrays
        when given. ``hidden_recurrent=False`` is the layered network (``W_hh = 0`` always)."""
        if activation not in ACTIVATIONS:
            raise ValidationError(f"invalid value for `activation`: {activation!r} (one of "
                                  f"{', '.join(ACTIVATIONS)})", "activation", activation)
        if device == "cpu" and getattr(xp, "__name__", "") == "array_api_strict":
            device = None       # its only device, which it names differently
        self.xp, self.device, self.dtype = xp, device, getattr(xp, dtype)
        self.activation = activation
        self.hidden_recurrent = hidden_recurrent

        def u(*shape: int) -> np.ndarray:
            return rng.uniform(-scale, scale, shape).astype(dtype)

        if host is None:
            host = {"w_vh": u(n_vis, n_hid), "w_hv": u(n_hid, n_vis),
                    "w_hh": u(n_hid, n_hid), "b_v": u(n_vis), "b_h": u(n_hid)}
        if not hidden_recurrent:
            host["w_hh"] = np.zeros((n_hid, n_hid), dtype=dtype)
        np.fill_diagonal(host["w_hh"], 0.0)
        for name, value in host.items():
            setattr(self, name, self.put(value))
        # numpy zeroes a diagonal in place in O(H); other backends multiply by a mask
        self._off_diagonal = None if xp is np else self.put(1.0 - np.eye(n_hid, dtype=dtype))

    def __getstate__(self) -> dict[str, Any]:
        # modules do not pickle: keep the namespace's name and host copies of the arrays
        state = {k: (to_numpy(v) if k in _ARRAYS else v) for k, v in self.__dict__.items()
                 if k not in ("xp", "dtype", "_off_diagonal")}
        state["xp_module"] = self.xp.__name__
        state["dtype_name"] = str(np.dtype(to_numpy(self.b_h).dtype))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import importlib

        state = dict(state)
        self.xp = importlib.import_module(state.pop("xp_module"))
        dtype = state.pop("dtype_name")
        self.dtype = getattr(self.xp, dtype)
        self.__dict__.update({k: v for k, v in state.items() if k not in _ARRAYS})
        for name in _ARRAYS:
            setattr(self, name, self.put(state[name]))
        n_hid = state["b_h"].shape[0]
        self._off_diagonal = (None if self.xp is np
                              else self.put(1.0 - np.eye(n_hid, dtype=dtype)))

    def put(self, a: np.ndarray) -> Any:
        """A host array as an array of this network's backend, dtype and device."""
        if self.xp is np:
            return np.array(a, dtype=self.dtype, order="C")   # C order: see _add_outer
        return self.xp.asarray(np.asarray(a), dtype=self.dtype, device=self.device)

    def _add_outer(self, w: Any, rate: float, pre: Any, post: Any) -> None:
        """``w += rate · preᵀ post`` in place, summed over chains."""
        if self.xp is np:
            # BLAS in place: numpy's ``w += rate * (pre.T @ post)`` allocates two w-sized
            # temporaries, which cost 8× the arithmetic at H = 256 and 16 chains. A C-ordered
            # ``w`` is the Fortran-ordered ``w.T``, which gemm updates without copying.
            out = _gemm(w.dtype)(rate, post, pre, beta=1.0, c=w.T, overwrite_c=True,
                                 trans_a=True)
            if not np.may_share_memory(out, w):   # not updated in place: never lose it
                w[...] = out.T
        else:
            w += rate * (pre.T @ post)

    def _zero_diagonal(self) -> None:
        if self._off_diagonal is None:
            np.fill_diagonal(self.w_hh, 0.0)
        else:
            self.w_hh *= self._off_diagonal

    def rates(self, s: Any) -> Any:
        """``ρ(s)``."""
        if self.activation == "sigmoid4":
            return rho_sigmoid4(self.xp, s)
        if self.activation == "sigmoid4_shifted":
            return 1.0 / (1.0 + self.xp.exp(2.0 - 4.0 * s))
        return self.xp.clip(s, 0.0, 1.0)

    def pressure(self, s_v: Any, s_h: Any, r_v: Any, r_h: Any) -> tuple[Any, Any]:
        """``R(s) − s`` for both groups (eq. 2), given the rates ``r = ρ(s)``."""
        in_v = r_h @ self.w_hv + self.b_v
        if self.hidden_recurrent:
            in_h = r_v @ self.w_vh + r_h @ self.w_hh + self.b_h
        else:
            in_h = r_v @ self.w_vh + self.b_h
        if self.activation != "hard_sigmoid":
            return (4.0 * r_v * (1.0 - r_v) * in_v - s_v,
                    4.0 * r_h * (1.0 - r_h) * in_h - s_h)
        xp = self.xp
        inside_v = xp.astype((s_v >= 0.0) & (s_v <= 1.0), s_v.dtype)
        inside_h = xp.astype((s_h >= 0.0) & (s_h <= 1.0), s_h.dtype)
        return inside_v * in_v - s_v, inside_h * in_h - s_h

    def relax(self, s_v: Any, s_h: Any, n_iter: int, eps: float, *, data: Any = None,
              clamp: Any = None, beta: float = 0.0, momentum: float | None = None,
              alpha: float = 0.0, smoothing: float = 0.0, symmetric_hidden: bool = False,
              nudge: Any = None, nudge_target: Any = None,
              trace: Any = None) -> None:
        """``n_iter`` steps in place on ``(chains, units)`` states; learning if ``alpha`` or
        ``smoothing`` is non-zero. ``momentum=None``: eq. 1; else eqs. 11-12. ``nudge``
        (``β_n`` on the nudged visible units, 0 elsewhere) adds ``2 β_n (nudge_target − s)``
        to the pressure. With ``data``, clamped units then move a fraction ``beta`` of the way
        to it (eq. 8). The hard sigmoid clips states to ``[0, 1]`` after every step.
        ``trace(s_v, s_h)`` is called after every step (for plots of the trajectory)."""
        xp = self.xp
        clip = self.activation == "hard_sigmoid"
        vel_v = xp.zeros_like(s_v) if momentum is not None else None
        vel_h = xp.zeros_like(s_h) if momentum is not None else None
        r_v, r_h = self.rates(s_v), self.rates(s_h)
        pull = beta * clamp if data is not None and beta else None
        for _ in range(n_iter):
            f_v, f_h = self.pressure(s_v, s_h, r_v, r_h)
            if nudge is not None:
                f_v += 2.0 * nudge * (nudge_target - s_v)
            if smoothing:
                self._smooth(f_v, f_h, r_v, r_h, smoothing)
            if vel_v is not None and vel_h is not None and momentum is not None:
                vel_v *= 1.0 - momentum
                vel_v += momentum * f_v
                vel_h *= 1.0 - momentum
                vel_h += momentum * f_h
                s_v += eps * vel_v
                s_h += eps * vel_h
            else:
                s_v += eps * f_v
                s_h += eps * f_h
            if clip:
                s_v[...] = xp.clip(s_v, 0.0, 1.0)
                s_h[...] = xp.clip(s_h, 0.0, 1.0)
            if pull is not None:
                s_v += pull * (data - s_v)
            new_v, new_h = self.rates(s_v), self.rates(s_h)
            if alpha:
                # chains average their updates (with one chain: the online rule)
                rate = alpha / s_v.shape[0]
                d_v, d_h = new_v - r_v, new_h - r_h
                self._add_outer(self.w_vh, rate, r_v, d_h)
                self._add_outer(self.w_hv, rate, r_h, d_v)
                if not self.hidden_recurrent:
                    pass                    # layered: W_hh stays zero
                elif symmetric_hidden:
                    self._add_outer(self.w_hh, rate / 2, r_h, d_h)
                    self._add_outer(self.w_hh, rate / 2, d_h, r_h)
                    self._zero_diagonal()
                else:
                    self._add_outer(self.w_hh, rate, r_h, d_h)
                    self._zero_diagonal()
                self.b_v += rate * xp.sum(d_v, axis=0)
                self.b_h += rate * xp.sum(d_h, axis=0)
            r_v, r_h = new_v, new_h
            if trace is not None:
                trace(s_v, s_h)

    def contrastive_update(self, rate_v: Any, rate_hidden: float, plus: tuple[Any, Any],
                           minus: tuple[Any, Any]) -> None:
        """The symmetric update of CHL and equilibrium propagation, mean over chains:
        ``ΔW_ij = rate · (ρ⁺_i ρ⁺_j − ρ⁻_i ρ⁻_j)``, ``Δb_i = rate · (ρ⁺_i − ρ⁻_i)``, from the
        rates ``(visible, hidden)`` of the two phases. ``rate_v`` holds one rate per visible
        unit (the rate of its edges to the hidden layer and of its bias); ``rate_hidden`` is
        that of ``W_hh`` and of the hidden biases. ``W_hv`` stays ``W_vhᵀ``."""
        xp = self.xp
        (pv, ph), (mv, mh) = plus, minus
        n = pv.shape[0]
        self._add_outer(self.w_vh, 1.0 / n, pv * rate_v, ph)
        self._add_outer(self.w_vh, -1.0 / n, mv * rate_v, mh)
        self.w_hv = (np.ascontiguousarray(self.w_vh.T) if xp is np
                     else xp.asarray(self.w_vh.T, copy=True))
        if self.hidden_recurrent:
            self._add_outer(self.w_hh, rate_hidden / n, ph, ph)
            self._add_outer(self.w_hh, -rate_hidden / n, mh, mh)
            # BLAS sums ρ_iρ_j and ρ_jρ_i in different orders: keep W_hh symmetric exactly
            w = self.w_hh
            self.w_hh = (w + w.T) * 0.5 if xp is not np else np.ascontiguousarray(
                (w + w.T) * 0.5)
            self._zero_diagonal()
        self.b_v += rate_v * xp.sum(pv - mv, axis=0) / n
        self.b_h += rate_hidden * xp.sum(ph - mh, axis=0) / n

    def _smooth(self, f_v: Any, f_h: Any, r_v: Any, r_h: Any, rate: float) -> None:
        xp = self.xp
        rate = rate / f_v.shape[0]
        g_v = f_v * 4.0 * r_v * (1.0 - r_v)
        g_h = f_h * 4.0 * r_h * (1.0 - r_h)
        self._add_outer(self.w_vh, -rate, r_v, g_h)
        self._add_outer(self.w_hv, -rate, r_h, g_v)
        self._add_outer(self.w_hh, -rate, r_h, g_h)
        self._zero_diagonal()
        self.b_v -= rate * xp.sum(g_v, axis=0)
        self.b_h -= rate * xp.sum(g_h, axis=0)

    @contextlib.contextmanager
    def outgoing_gain(self, first: int, stop: int, gain: float) -> Iterator[None]:
        """Within the block, the weights from visible units ``first … stop − 1`` to the hidden
        layer are multiplied by ``gain``; the network's own weights are untouched (they are
        put back even if the block raises)."""
        if gain == 1.0:
            yield
            return
        own = self.w_vh
        scale = np.ones((own.shape[0], 1))
        scale[first:stop] = gain
        self.w_vh = own * self.put(scale)
        try:
            yield
        finally:
            self.w_vh = own

    def bound(self, limit: float) -> None:
        """Clips every weight to ``[−limit, limit]`` (biases are left free)."""
        if self.xp is np:
            for w in (self.w_vh, self.w_hv, self.w_hh):
                np.clip(w, -limit, limit, out=w)
        else:
            self.w_vh = self.xp.clip(self.w_vh, -limit, limit)
            self.w_hv = self.xp.clip(self.w_hv, -limit, limit)
            self.w_hh = self.xp.clip(self.w_hh, -limit, limit)

    def finite(self, *extra: Any) -> bool:
        xp = self.xp
        return all(bool(xp.all(xp.isfinite(a)))
                   for a in (self.w_vh, self.w_hv, self.w_hh, self.b_v, self.b_h, *extra))
