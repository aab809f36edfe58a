"""``CRDMEncoder``: images to edge-weight state-space features (Section 4 of George et al.).

``fit`` builds the seeded input + recurrent network (:func:`crdm.input_recurrent`);
``transform`` stimulates a fresh copy of it once per image, with STDP on, and returns the
weights of the chosen edges at the chosen sample times:

    features(image) = [w_e(t_s) for t_s in sample_ms for e in edges]        (weight units)

or, with ``feature="delta"``, ``w_e(t_s) - w_e(0)``. Each image runs independently from the
same initial network, so the features of an image do not depend on the batch it is in or on
the number of threads (``n_jobs``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from crdm._checks import integer, real
from crdm.errors import ValidationError
from crdm.network import input_recurrent
from crdm.simulation import RunConfig, Simulator, StdpParams, image_stimulus
from crdm.units import ms_to_ticks

__all__ = ["CRDMEncoder"]

_EDGE_SETS = ("recurrent", "input", "all")


class CRDMEncoder(TransformerMixin, BaseEstimator):
    """Encodes images by the STDP weight trajectories they cause in a CRDM network.

    Parameters
    ----------
    n_recurrent : recurrent nodes of :func:`crdm.input_recurrent`.
    seed : network seed.
    duration_ms, dt_ms : simulated time per image and tick length (ms).
    sample_ms : sample time(s) in ms, multiples of ``sample_interval_ms``; ``None`` = all of
        ``sample_interval_ms, 2·sample_interval_ms, …, duration_ms``.
    sample_interval_ms : spacing of the weight snapshots (ms), 100 in the paper.
    feature : ``"weights"`` (the paper) or ``"delta"`` (change from the initial weights).
    edges : which weights form the features: ``"recurrent"`` (the paper), ``"input"``, ``"all"``.
    stdp : :class:`crdm.StdpParams`; ``None`` means the defaults.
    network_params : further keyword arguments of :func:`crdm.input_recurrent` (``plastic``
        defaults to ``edges``).
    pixel_threshold : pixels above it drive their input node.
    n_jobs : threads for a batch (``None`` = all cores); never changes the features.
    backend : ``"rust"`` or ``"reference"``.
    batch_size : images simulated per call into the engine (bounds memory).
    """

    def __init__(
        self,
        n_recurrent: int = 200,
        *,
        seed: int = 0,
        duration_ms: float = 600.0,
        dt_ms: float = 0.1,
        sample_ms: float | Sequence[float] | None = None,
        sample_interval_ms: float = 100.0,
        feature: str = "weights",
        edges: str = "recurrent",
        stdp: StdpParams | None = None,
        network_params: Mapping[str, Any] | None = None,
        pixel_threshold: float = 0.0,
        n_jobs: int | None = None,
        backend: str = "rust",
        batch_size: int = 256,
    ) -> None:
        self.n_recurrent = n_recurrent
        self.seed = seed
        self.duration_ms = duration_ms
        self.dt_ms = dt_ms
        self.sample_ms = sample_ms
        self.sample_interval_ms = sample_interval_ms
        self.feature = feature
        self.edges = edges
        self.stdp = stdp
        self.network_params = network_params
        self.pixel_threshold = pixel_threshold
        self.n_jobs = n_jobs
        self.backend = backend
        self.batch_size = batch_size

    def _run_config(self) -> RunConfig:
        return RunConfig(
            duration_ms=self.duration_ms, dt_ms=self.dt_ms,
            stdp=StdpParams() if self.stdp is None else self.stdp,
            record_raster=False, snapshot_interval_ms=self.sample_interval_ms,
            snapshot_edges=self.edge_ids_, record_final_weights=False,
        )

    def fit(self, X: Any, y: Any = None) -> CRDMEncoder:
        """Builds the network; ``X`` is ``(n_images, n_pixels)`` (28×28 images if 784)."""
        X = validate_data(self, X, reset=True, dtype=np.float64)
        if self.feature not in ("weights", "delta"):
            raise ValidationError(f"invalid value for `feature`: {self.feature!r} ('weights' "
                                  "or 'delta')", "feature", self.feature)
        if self.edges not in _EDGE_SETS:
            raise ValidationError(f"invalid value for `edges`: {self.edges!r} (one of "
                                  f"{', '.join(_EDGE_SETS)})", "edges", self.edges)
        integer("batch_size", self.batch_size, low=1)
        if self.n_jobs is not None:
            integer("n_jobs", self.n_jobs, low=1)
        n_pixels = X.shape[1]
        shape = (28, 28) if n_pixels == 784 else (1, n_pixels)
        params = {"plastic": self.edges, **dict(self.network_params or {})}
        self.network_ = input_recurrent(self.n_recurrent, seed=self.seed, image_shape=shape,
                                        **params)
        n_input_edges = int(self.network_.meta["n_input_edges"])
        ids = np.arange(self.network_.n_edges, dtype=np.int64)
        self.edge_ids_ = {"recurrent": ids[n_input_edges:], "input": ids[:n_input_edges],
                          "all": ids}[self.edges]
        config = self._run_config()
        ticks = config.snapshot_ticks()
        if self.sample_ms is None:
            wanted = ticks
        else:
            samples = np.atleast_1d(np.asarray(self.sample_ms, dtype=float))
            wanted = [ms_to_ticks(real("sample_ms", float(s), low=0.0, low_open=True),
                                  self.dt_ms) for s in samples]
            missing = [s for s, t in zip(samples, wanted, strict=True) if t not in ticks]
            if missing:
                raise ValidationError(
                    f"invalid value for `sample_ms`: {missing[0]} (not a snapshot time: "
                    f"multiples of {self.sample_interval_ms} ms up to {self.duration_ms} ms)",
                    "sample_ms", float(missing[0]))
        self.sample_rows_ = np.array([ticks.index(t) for t in wanted], dtype=np.int64)
        self.sample_ms_ = np.array([t * self.dt_ms for t in wanted])
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Features ``(n_images, len(sample_ms_) · n_edges)``, sample-major."""
        check_is_fitted(self, "network_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        config = self._run_config()
        sim = Simulator(self.network_, dt_ms=self.dt_ms, backend=self.backend)  # type: ignore[arg-type]
        initial = self.network_.weights[self.edge_ids_]
        out = np.empty((X.shape[0], self.sample_rows_.size * self.edge_ids_.size))
        for start in range(0, X.shape[0], self.batch_size):
            chunk = X[start:start + self.batch_size]
            stimuli = [image_stimulus(x, self.network_, config,
                                      pixel_threshold=self.pixel_threshold) for x in chunk]
            for k, result in enumerate(sim.run_batch(stimuli, config, n_threads=self.n_jobs)):
                rows = result.snapshots[self.sample_rows_]
                if self.feature == "delta":
                    rows = rows - initial
                out[start + k] = rows.ravel()
        return out

