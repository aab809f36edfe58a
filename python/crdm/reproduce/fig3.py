"""Figure 3 of George et al.: k-NN on STDP edge-weight trajectories, with baselines.

For each recurrent size ``N``, every image stimulates a fresh copy of the seeded
:func:`crdm.input_recurrent` network once, STDP on, for ``duration_ms``; the weights are sampled
every ``sample_interval_ms``. STDP acts on ``plastic`` edges: ``"all"`` (default: every edge
that ends in the recurrent layer, our reading of the paper) or ``"recurrent"`` (the recurrent →
recurrent edges only, the benchmark workload; the input weights then stay at ``w(0)``).
At each sample time ``t`` the features of an image are

* ``crdm_all``: the weights of every edge that ends in the recurrent layer (input → recurrent
  and recurrent → recurrent; ``784·N + N(N-1)`` values) — one reading of the paper's "all the
  weights in the recurrent layer";
* ``crdm_recurrent``: the recurrent → recurrent weights only (``N(N-1)`` values) — the other;

each in two forms: ``weights`` ``w(t)`` (the paper) and ``delta`` ``w(t) - w(0)``. Euclidean
distances are the same for both forms; cosine distances are not. Baselines on the same images
and the same splits:

* ``raw_pixels``: the pixel intensities in [0, 1];
* ``binary_pixels``: 1 where a pixel exceeds the input code's threshold, else 0 (what the
  binary code shows the network);
* ``random_projection``: the pixels through a seeded Gaussian random projection to as many
  features as the k-NN sees for ``crdm_all``;
* ``stdp_off_counts``: the same network with STDP off; spike counts of the recurrent nodes
  in ``[0, t)``.

Read-out: distance-weighted 5-NN over ``n_splits`` random splits into ``n - n_test`` reference
and ``n_test`` test images (the paper: 10,000 MNIST test images, 10 splits of 9,000/1,000,
Euclidean), Euclidean and cosine.

Feature vectors longer than ``sketch_dim`` (``784·N + N(N-1)`` is 473,200 at ``N = 400``; the
full 10,000 × 6 trajectories would need 114 GB) are compressed by a seeded sparse random
projection (Johnson-Lindenstrauss: pairwise distances kept within a few per cent), one matrix
per size and edge set, applied to ``Δw``; the ``weights`` form adds the projected ``w(0)``.
``sketch_dim = 0`` keeps every feature exactly.

Work is kept in a :class:`crdm.results.ResultFolder`: one file per chunk of images per size,
one per evaluated size, so a stopped run continues where it stopped.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from crdm._checks import integer, real
from crdm._core import SparseProjection
from crdm.datasets import DatasetInfo
from crdm.errors import ValidationError
from crdm.input_codes import InputCode
from crdm.network import Network, input_recurrent
from crdm.protocol import GramNeighbours, points_under_test, wknn_neighbours
from crdm.reproduce.experiment import (
    check_image_shape,
    check_network_params,
    check_sizes,
    default_test_size,
    is_mnist,
    labelled_pixels,
    open_results,
)
from crdm.results import ResultFolder
from crdm.simulation import MODEL_REVISION, RunConfig, Simulator, StdpParams

__all__ = ["PAPER_POINTS", "Fig3Config", "encode_chunk", "feature_offsets", "run_fig3"]

PAPER_SIZES = (5, 10, 25, 50, 100, 200, 300, 400)

#: Numbers stated in the text of Section 4: (recurrent nodes, time ms, accuracy %), Euclidean
#: w-kNN. The five-node peak and the 300-400-node plateau are given without a time; the paper
#: says every size peaks "at about 300 ms".
PAPER_POINTS = ((5, 300.0, 71.66), (200, 300.0, 96.49), (300, 300.0, 96.48), (400, 300.0, 96.48))

_MODELS = ("crdm_all", "crdm_recurrent", "stdp_off_counts")
_PLASTIC = ("all", "recurrent")
#: Snapshot bytes of the images one job of :func:`encode_chunk` holds at a time.
_JOB_BYTES = 64 << 20
_CSV_FIELDS = ("model", "feature", "size", "time_ms", "metric", "mean", "sd", "n_features",
               "knn_dims", "n_images", "n_splits", "n_test")


@dataclass(frozen=True)
class Fig3Config:
    """Everything that determines the numbers of a Figure-3 run (stored with the results)."""

    sizes: tuple[int, ...] = PAPER_SIZES
    n_images: int = 10_000
    duration_ms: float = 600.0
    sample_interval_ms: float = 100.0
    dt_ms: float = 0.1
    n_splits: int = 10
    n_test: int | None = None          # None: min(1000, n_images // 10)
    k: int = 5
    seed: int = 0                      # network, projection and split seeds derive from it
    sketch_dim: int = 2048
    chunk_size: int = 250
    baselines: bool = True
    #: with ``baselines``: also the STDP-off spike counts (a second simulation of every image)
    stdp_off: bool = True
    pixel_threshold: float = 0.0
    plastic: Literal["all", "recurrent"] = "all"
    stdp: StdpParams = field(default_factory=StdpParams)
    network_params: dict[str, Any] = field(default_factory=dict)
    #: None: the binary code with ``pixel_threshold`` (the paper's reading)
    input_code: InputCode | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "sizes", check_sizes(self.sizes))
        integer("k", self.k, low=1)    # first: the other bounds use it
        integer("n_images", self.n_images, low=self.k + 2)
        integer("n_splits", self.n_splits, low=1)
        integer("seed", self.seed, low=0)
        integer("sketch_dim", self.sketch_dim, low=0)
        integer("chunk_size", self.chunk_size, low=1)
        real("duration_ms", self.duration_ms, low=0.0, low_open=True)
        real("sample_interval_ms", self.sample_interval_ms, low=0.0, low_open=True)
        if self.sample_interval_ms > self.duration_ms:
            raise ValidationError(f"`sample_interval_ms` = {self.sample_interval_ms} exceeds "
                                  f"`duration_ms` = {self.duration_ms}", "sample_interval_ms",
                                  self.sample_interval_ms)
        default_test_size(self.n_test, self.n_images, self.k)
        if self.plastic not in _PLASTIC:
            raise ValidationError(f"invalid value for `plastic`: {self.plastic!r} (one of "
                                  f"{', '.join(map(repr, _PLASTIC))})", "plastic", self.plastic)
        # JSON gives lists where the builder takes tuples (velocity range, volume)
        params = check_network_params(self.network_params, input_recurrent)
        object.__setattr__(self, "network_params", {
            k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})
        if isinstance(self.stdp, dict):
            object.__setattr__(self, "stdp", StdpParams(**self.stdp))
        if isinstance(self.input_code, dict):
            object.__setattr__(self, "input_code", InputCode(**self.input_code))
        if self.input_code is not None:
            if not isinstance(self.input_code, InputCode):
                raise ValidationError(f"`input_code` must be a crdm.InputCode, a mapping of its "
                                      f"fields or None, got {self.input_code!r}", "input_code",
                                      repr(self.input_code))
            if self.pixel_threshold != 0.0:
                raise ValidationError("`pixel_threshold` is set inside `input_code` when one "
                                      "is given", "pixel_threshold", self.pixel_threshold)
        # a bad run length or network parameter is refused here, before any work starts
        self.run_config(stdp=True)
        input_recurrent(1, seed=self.seed, plastic=self.plastic, **self.network_params)

    @property
    def code(self) -> InputCode:
        """The input code the images are presented with."""
        if self.input_code is None:
            return InputCode("binary", pixel_threshold=self.pixel_threshold)
        return self.input_code

    @property
    def test_size(self) -> int:
        return default_test_size(self.n_test, self.n_images, self.k)

    def run_config(self, *, stdp: bool) -> RunConfig:
        if stdp:
            return RunConfig(duration_ms=self.duration_ms, dt_ms=self.dt_ms, stdp=self.stdp,
                             record_raster=False, snapshot_interval_ms=self.sample_interval_ms,
                             snapshot_edges="plastic", record_final_weights=False)
        return RunConfig(duration_ms=self.duration_ms, dt_ms=self.dt_ms, stdp=None,
                         record_raster=True, snapshot_interval_ms=None,
                         record_final_weights=False)

    def sample_ticks(self) -> list[int]:
        return self.run_config(stdp=True).snapshot_ticks()

    def network(self, size: int) -> Network:
        return input_recurrent(size, seed=self.seed, plastic=self.plastic,
                               **self.network_params)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["test_size"] = self.test_size
        # stored only when they differ from what every run did before the fields existed, so
        # that their folders are still continued
        if self.plastic == "all":
            del out["plastic"]
        if self.input_code is None:
            del out["input_code"]
        if self.stdp_off:
            del out["stdp_off"]
        return out


@functools.lru_cache(maxsize=4)
def _sketch(dim: int, n_features: int, seed: int) -> Any:
    """The seeded sparse projection ``n_features → dim`` (``None`` when no sketch is needed).

    Cached: drawing it takes seconds at N = 200, every chunk of a size needs the same one."""
    if dim == 0 or n_features <= dim:
        return None
    from sklearn.random_projection import SparseRandomProjection

    proj = SparseRandomProjection(n_components=dim, random_state=seed)
    return proj.fit(np.zeros((1, n_features), dtype=np.float32))


def _project(proj: Any, x: np.ndarray) -> np.ndarray:
    return x if proj is None else np.asarray(proj.transform(x))


@functools.lru_cache(maxsize=4)
def _sketch_matrix(dim: int, n_features: int, seed: int) -> Any:
    """The matrix of :func:`_sketch` as float64 CSR (``None`` when no sketch is needed): what
    ``transform`` multiplies float64 rows by, converted once instead of at every call."""
    proj = _sketch(dim, n_features, seed)
    return None if proj is None else proj.components_.astype(np.float64)


def _csr_projection(matrix: Any) -> SparseProjection:
    """scipy's CSR ``matrix`` as the compiled :class:`crdm._core.SparseProjection`.

    Its ``changes(snapshots, w0)`` is ``(matrix @ (row - w0)).astype(np.float32)`` for every
    row, bit for bit (each output summed over the same nonzeros in the same order), reading
    the matrix once for all rows instead of once per row, in a worker thread without the GIL:
    2.6 times faster than one scipy product per sample time at N = 400 with the recurrent
    edges plastic, 3.3 times with every edge (`docs/performance.md`)."""
    return SparseProjection(matrix.shape[0], matrix.shape[1],
                            matrix.indptr.astype(np.int64), matrix.indices.astype(np.int64),
                            np.ascontiguousarray(matrix.data, dtype=np.float64))


@dataclass(frozen=True)
class _EdgeSet:
    """How one feature set (``first`` … last edge) is read from snapshots of the plastic edges.

    The set's edges that are not plastic keep ``w(0)``, so their ``Δw`` is exactly 0 and adds
    nothing to any projected sum: the projection only needs the matrix's columns of the
    plastic ones (``columns``, in the set's numbering), in the order the matrix holds them, so
    the sums are bit for bit those over every edge of the set."""

    n_features: int
    start: int                  # the set's first entry among the snapshot (plastic) edges
    columns: np.ndarray
    projection: SparseProjection | None  # restricted to ``columns``; None: exact features

    def features(self, snapshots: np.ndarray, w0: np.ndarray) -> np.ndarray:
        if self.projection is not None:
            return self.projection.changes(snapshots, w0[self.start:], first=self.start)
        out = np.zeros((snapshots.shape[0], self.n_features), dtype=np.float32)
        out[:, self.columns] = snapshots[:, self.start:] - w0[self.start:]
        return out


def _edge_sets(config: Fig3Config, size: int, net: Network) -> dict[str, _EdgeSet]:
    plastic = np.flatnonzero(net.plastic)
    first = {"crdm_all": 0, "crdm_recurrent": int(net.meta["n_input_edges"])}
    sets = {}
    for name, f in first.items():
        n_features = net.n_edges - f
        start = int(np.searchsorted(plastic, f))
        columns = plastic[start:] - f
        matrix = _sketch_matrix(config.sketch_dim, n_features,
                                _projection_seed(config, size, name))
        if matrix is not None and columns.size < n_features:
            matrix = matrix[:, columns]
        sets[name] = _EdgeSet(n_features, start, columns,
                              None if matrix is None else _csr_projection(matrix))
    return sets


_PROJECTIONS = ("crdm_all", "crdm_recurrent", "random_projection")


def _projection_seed(config: Fig3Config, size: int, which: str) -> int:
    """Seed of one random projection: independent per (run seed, size, what it projects)."""
    return int(np.random.SeedSequence([config.seed, size, _PROJECTIONS.index(which)])
               .generate_state(1)[0])


def encode_chunk(config: Fig3Config, size: int, images: np.ndarray, *,
                 n_threads: int | None = None) -> dict[str, np.ndarray]:
    """Features of ``images`` (``(n, pixels)``, in [0, 1]) for one recurrent size.

    Returns float32 arrays ``crdm_all`` and ``crdm_recurrent`` (``(n, n_times, dims)``, the
    projected ``Δw``), ``stdp_off_counts`` (``(n, n_times, size)``) and per-image activity
    (``rate_hz``: mean recurrent rate with STDP on, ``arrivals``). With the ``graded`` input
    code every image has its own ``w(0)``: ``offset_crdm_all`` and ``offset_crdm_recurrent``
    (``(n, dims)``) are its projection, so that ``w(t)`` is ``offset + Δw``. Pure function of its
    arguments: the same images give the same arrays in any chunking and on any thread count.
    """
    net = config.network(size)
    n_input = int(net.meta["n_input"])
    stdp_cfg = config.run_config(stdp=True)
    off_cfg = config.run_config(stdp=False)
    times = np.asarray(config.sample_ticks())
    edge_sets = _edge_sets(config, size, net)
    w0_plastic = net.weights[stdp_cfg.snapshot_edge_ids(net)]
    code = config.code
    per_image_w0 = code.kind == "graded"
    sim = Simulator(net, dt_ms=config.dt_ms)
    n = images.shape[0]
    threads = n_threads or os.cpu_count() or 1
    # Each job simulates a few images on one thread and projects them at once: no thread
    # waits for a batch to finish, and only `threads` jobs' snapshots exist at a time.
    per_image = times.size * w0_plastic.size * 8
    per_job = max(1, min(-(-n // (4 * threads)), _JOB_BYTES // max(per_image, 1)))

    def job(start: int) -> dict[str, Any]:
        chunk = images[start:start + per_job]
        stimuli = [code.stimulus(x, net, stdp_cfg) for x in chunk]
        out: dict[str, Any] = {name: [] for name in edge_sets}
        out["rate_hz"], out["arrivals"] = [], []
        if per_image_w0:
            # each image runs on its own copy of the network (its weights scaled by pixel)
            image_nets = [code.network_for(x, net) for x in chunk]
            sims = [Simulator(m, dt_ms=config.dt_ms) for m in image_nets]
            results = [s.run(stim, stdp_cfg) for s, stim in zip(sims, stimuli, strict=True)]
            w0s = [m.weights[stdp_cfg.snapshot_edge_ids(m)] for m in image_nets]
            for name in edge_sets:
                out[f"offset_{name}"] = [_image_offset(config, size, name, m)
                                         for m in image_nets]
        else:
            results = sim.run_batch(stimuli, stdp_cfg, n_threads=1)
            w0s = [w0_plastic] * len(stimuli)
        for result, w0 in zip(results, w0s, strict=True):
            for name, edge_set in edge_sets.items():
                out[name].append(edge_set.features(result.snapshots, w0))
            out["rate_hz"].append(result.spike_counts[n_input:].mean()
                                  / (config.duration_ms / 1000))
            out["arrivals"].append(result.stats["n_arrivals"])
        if config.baselines and config.stdp_off:
            counts = np.zeros((len(stimuli), times.size, size), dtype=np.float32)
            off = ([s.run(stim, off_cfg) for s, stim in zip(sims, stimuli, strict=True)]
                   if per_image_w0 else sim.run_batch(stimuli, off_cfg, n_threads=1))
            for i, r in enumerate(off):
                rec = r.spike_nodes >= n_input
                nodes, ticks = r.spike_nodes[rec] - n_input, r.spike_ticks[rec]
                for j, t in enumerate(times):
                    counts[i, j] = np.bincount(nodes[ticks < t], minlength=size)
            out["stdp_off_counts"] = list(counts)
        return out

    with ThreadPoolExecutor(threads) as pool:
        done = list(pool.map(job, range(0, n, per_job)))
    arrays = {name: np.stack([f for part in done for f in part[name]])
              for name in (*_MODELS, "rate_hz", "arrivals", *_OFFSETS) if name in done[0]}
    arrays["rate_hz"] = arrays["rate_hz"].astype(np.float64)
    arrays["arrivals"] = arrays["arrivals"].astype(np.int64)
    return arrays


def _encode_all(todo: Sequence[tuple[int, str, int, int]], config: Fig3Config, x: np.ndarray,
                client: Any, n_threads: int | None) -> Any:
    """``(size, name, start, stop, arrays)`` for every chunk to do: here, in order, or on a
    Dask cluster, as they finish. Each chunk is a pure function of its images, so where it
    runs never changes it."""
    if client is None:
        for size, name, a, b in todo:
            yield size, name, a, b, encode_chunk(config, size, x[a:b], n_threads=n_threads)
        return
    from dask.distributed import as_completed

    futures = {client.submit(encode_chunk, config, size, x[a:b], n_threads=1, pure=False):
               (size, name, a, b) for size, name, a, b in todo}
    for future in as_completed(futures):
        size, name, a, b = futures[future]
        yield size, name, a, b, future.result()
        future.release()


_OFFSETS = ("offset_crdm_all", "offset_crdm_recurrent")


def _image_offset(config: Fig3Config, size: int, name: str, net: Network) -> np.ndarray:
    """The projected ``w(0)`` of edge set ``name`` of one image's own network (float32)."""
    w = net.weights if name == "crdm_all" else net.weights[int(net.meta["n_input_edges"]):]
    proj = _sketch(config.sketch_dim, w.size, _projection_seed(config, size, name))
    return _project(proj, w[None, :])[0].astype(np.float32)


def feature_offsets(config: Fig3Config, size: int) -> dict[str, np.ndarray]:
    """The projected initial weights ``w(0)`` of each edge set (the ``weights`` form)."""
    net = config.network(size)
    n_in_edges = int(net.meta["n_input_edges"])
    out = {}
    for name, w in (("crdm_all", net.weights), ("crdm_recurrent", net.weights[n_in_edges:])):
        proj = _sketch(config.sketch_dim, w.size, _projection_seed(config, size, name))
        out[name] = _project(proj, w[None, :])[0]
    return out


def _gram_terms(features: np.ndarray, offset: np.ndarray | None, *,
                out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None, float]:
    """``(x xᵀ, x·c, c·c)`` in float64 for features ``x`` and shared offset ``c``; the Gram
    matrix goes into ``out`` when given (``n × n`` float64, C order).

    ``np.dot`` of a matrix with its own transpose is BLAS ``syrk``, with or without ``out``
    (the same bits); a kept buffer saves allocating 800 MB per Gram matrix at n = 10,000.

    Features that are all zero (``Δw`` at time 0, before any arrival: two of the 16 Gram
    matrices of a size, about 3 s each) have the zero matrix as their Gram matrix, which BLAS
    would also give bit for bit (every product and sum of zeros is +0.0), so it is filled in
    instead of computed."""
    x = features.astype(np.float64)
    if x.any():
        gram = np.dot(x, x.T, out=out)
    elif out is None:
        gram = np.zeros((x.shape[0], x.shape[0]))
    else:
        gram = out
        gram.fill(0.0)
    if offset is None:
        return gram, None, 0.0
    c = offset.astype(np.float64)
    return gram, x @ c, float(c @ c)


def _evaluate_gram(gram: np.ndarray, offset_dot: np.ndarray | None, offset_sq: float,
                   labels: np.ndarray, config: Fig3Config) -> dict[str, dict[str, Any]]:
    """w-kNN results per ``"form/metric"``: forms ``weights`` and ``delta`` when there is an
    offset (``w = w(0) + Δw``), else ``value``."""
    # Only the points some split tests need neighbours (about 6,500 of 10,000).
    queries = points_under_test(gram.shape[0], config.test_size, config.n_splits, config.seed)
    euclidean = GramNeighbours(gram, "euclidean", queries=queries)
    if offset_dot is None:
        neighbours = {"value/euclidean": euclidean,
                      "value/cosine": GramNeighbours(gram, "cosine", queries=queries)}
    else:
        neighbours = {"weights/euclidean": euclidean,
                      "weights/cosine": GramNeighbours(gram, "cosine", offset_dot=offset_dot,
                                                       offset_sq=offset_sq, queries=queries),
                      "delta/euclidean": euclidean,
                      "delta/cosine": GramNeighbours(gram, "cosine", queries=queries)}
    res = wknn_neighbours(neighbours, labels, n_splits=config.n_splits,
                          n_test=config.test_size, k=config.k, seed=config.seed)
    return {name: r.as_dict() for name, r in res.items()}


def _evaluate(features: np.ndarray, labels: np.ndarray, config: Fig3Config, *,
              offset: np.ndarray | None = None) -> dict[str, dict[str, Any]]:
    return _evaluate_gram(*_gram_terms(features, offset), labels, config)


def _rows(model: str, size: int | None, time_ms: float | str | None, res: dict[str, Any],
          n_features: int, knn_dims: int, config: Fig3Config,
          feature_name: str | None = None) -> list[dict[str, Any]]:
    rows = []
    for key, r in res.items():
        feature, metric = key.split("/")
        rows.append({"model": model, "feature": feature_name or feature,
                     "size": "" if size is None else size,
                     "time_ms": "" if time_ms is None else time_ms, "metric": metric,
                     "mean": r["mean"], "sd": r["sd"], "per_class": r["per_class"],
                     "accuracies": r["accuracies"], "n_features": n_features,
                     "knn_dims": knn_dims, "n_images": config.n_images,
                     "n_splits": config.n_splits, "n_test": config.test_size})
    return rows


def _evaluate_size(folder: ResultFolder, config: Fig3Config, size: int, labels: np.ndarray,
                   images: np.ndarray, chunk_names: Sequence[str]) -> dict[str, Any]:
    parts = [folder.read_arrays(name) for name in chunk_names]
    data = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    net = config.network(size)
    n_in_edges = int(net.meta["n_input_edges"])
    n_features = {"crdm_all": net.n_edges, "crdm_recurrent": net.n_edges - n_in_edges,
                  "stdp_off_counts": size}
    offsets = feature_offsets(config, size)
    times_ms = [t * config.dt_ms for t in config.sample_ticks()]
    rows: list[dict[str, Any]] = []
    def time_rows(model: str, features: np.ndarray, offset: np.ndarray | None,
                  name: str | None) -> list[dict[str, Any]]:
        # The whole trajectory (every sample time's features side by side) has the sum of
        # the per-time Gram matrices: the first time's terms start the sum, later ones are
        # computed into one kept buffer and added in place (the same sums, in the same order,
        # as adding fresh arrays).
        out: list[dict[str, Any]] = []
        dims = features.shape[2]
        total: tuple[np.ndarray, np.ndarray | None, float] | None = None
        buffer = None
        for j, t_ms in enumerate(times_ms):
            terms = _gram_terms(features[:, j, :], offset, out=buffer)
            res = _evaluate_gram(*terms, labels, config)
            out += _rows(model, size, round(t_ms, 6), res, n_features[model], dims, config,
                         feature_name=name)
            if total is None:
                total = terms
                continue
            buffer = terms[0]
            np.add(total[0], terms[0], out=total[0])
            total = (total[0], None if total[1] is None else total[1] + terms[1],
                     total[2] + terms[2])
        if len(times_ms) > 1 and total is not None:
            out += _rows(model, size, "trajectory", _evaluate_gram(*total, labels, config),
                         n_features[model] * len(times_ms), dims * len(times_ms), config,
                         feature_name=name)
        return out

    for model in _MODELS:
        if model not in data:
            continue
        if model == "stdp_off_counts":
            rows += time_rows(model, data[model], None, "spike_counts")
        elif f"offset_{model}" in data:
            # every image has its own w(0) (graded input code): w(t) = w(0) + Δw per image
            rows += time_rows(model, data[model], None, "delta")
            rows += time_rows(model, data[model] + data[f"offset_{model}"][:, None, :], None,
                              "weights")
        else:
            rows += time_rows(model, data[model], offsets.get(model), None)
    if config.baselines:
        from sklearn.random_projection import GaussianRandomProjection

        dims = int(data["crdm_all"].shape[2])
        with warnings.catch_warnings():
            # Projecting the pixels to more dimensions is the point of this baseline.
            warnings.simplefilter("ignore")
            proj = GaussianRandomProjection(n_components=dims, random_state=_projection_seed(
                config, size, "random_projection")).fit_transform(images)
        rows += _rows("random_projection", size, None, _evaluate(proj, labels, config),
                      images.shape[1], dims, config, feature_name="pixels")
    activity = {"rate_hz_mean": float(data["rate_hz"].mean()),
                "arrivals_mean": float(data["arrivals"].mean())}
    return {"size": size, "rows": rows, "activity": activity}


def _chunk_names(config: Fig3Config, size: int) -> list[tuple[str, int, int]]:
    return [(f"chunks/n{size:04d}/{start:06d}.npz", start,
             min(start + config.chunk_size, config.n_images))
            for start in range(0, config.n_images, config.chunk_size)]


@dataclass
class Fig3Result:
    """What :func:`run_fig3` wrote: the rows of every evaluation and the output paths."""

    rows: list[dict[str, Any]]
    activity: dict[int, dict[str, float]]
    out_dir: Path

    def best(self, model: str, metric: str = "euclidean", feature: str | None = None,
             size: int | None = None) -> dict[str, Any] | None:
        cands = [r for r in self.rows if r["model"] == model and r["metric"] == metric
                 and (feature is None or r["feature"] == feature)
                 and (size is None or r["size"] == size)]
        return max(cands, key=lambda r: r["mean"]) if cands else None


def run_fig3(config: Fig3Config, images: np.ndarray, labels: np.ndarray, out_dir: str | Path,
             *, dataset: DatasetInfo | None = None, n_threads: int | None = None,
             progress: bool = True, log: Callable[[str], None] | None = None,
             client: Any = None) -> Fig3Result:
    """Runs (or continues) the Figure-3 sweep into ``out_dir``; returns every result row.

    ``images`` are ``(n, rows, cols)`` (or ``(n, 784)`` for 28 × 28) uint8 or float in
    [0, 1]; the first ``config.n_images`` are used, and the network's input grid is their
    ``rows × cols`` (``config.network_params`` may not set ``image_shape``). ``dataset`` names
    the data in the results; the paper's points are drawn only for MNIST. Writes
    ``results.csv``, ``results.json`` and ``fig3.png``. With a ``dask.distributed.Client``
    the chunks are simulated on its workers (one thread each) and written here as they
    arrive; the numbers are the same as without.
    """
    from tqdm.auto import tqdm

    say = log or (lambda msg: None)
    shape = check_image_shape(images, experiment="Figure 3")
    given = config.network_params.get("image_shape")
    if given is not None and tuple(given) != shape:
        raise ValidationError(f"`network_params.image_shape` = {given} but the images are "
                              f"{shape[0]} × {shape[1]}", "network_params.image_shape", given)
    if shape != (28, 28) and given is None:
        config = replace(config, network_params={**config.network_params,
                                                 "image_shape": list(shape)})
    x, y = labelled_pixels(images, labels, config.n_images)
    n_pixels = x.shape[1]
    # sizes are independent pieces of work: a rerun with more sizes continues the folder
    folder = open_results(out_dir, "fig3", config.as_dict(), dataset, {"images": (x, y)},
                          model_revision=MODEL_REVISION, growable=("sizes",), log=say)

    if config.baselines and not folder.has("eval/raw_pixels.json"):
        rows = _rows("raw_pixels", None, None, _evaluate(x, y, config), n_pixels, n_pixels,
                     config, feature_name="pixels")
        folder.write_json("eval/raw_pixels.json", {"rows": rows})
    if config.baselines and not folder.has("eval/binary_pixels.json"):
        # what the binary code shows the network: which pixels exceed the threshold
        binary = (x > config.code.pixel_threshold).astype(np.float64)
        rows = _rows("binary_pixels", None, None, _evaluate(binary, y, config), n_pixels,
                     n_pixels, config, feature_name="pixels")
        folder.write_json("eval/binary_pixels.json", {"rows": rows})
    todo = [(size, name, a, b) for size in config.sizes
            for name, a, b in _chunk_names(config, size) if not folder.has(name)]
    total = len(config.sizes) * len(_chunk_names(config, config.sizes[0]))
    say(f"{total - len(todo)} of {total} chunks already done"
        + (f"; computing on {client}" if client is not None else ""))
    missing = {size: {name for s_, name, _, _ in todo if s_ == size} for size in config.sizes}
    bar = tqdm(total=sum(b - a for _, _, a, b in todo), unit="img", disable=not progress,
               desc="fig3")

    def evaluate(size: int) -> None:
        eval_name = f"eval/n{size:04d}.json"
        if not folder.has(eval_name):
            bar.set_postfix_str(f"N={size} k-NN")
            names = [n for n, _, _ in _chunk_names(config, size)]
            folder.write_json(eval_name, _evaluate_size(folder, config, size, y, x, names))
            _write_outputs(folder)

    for size in config.sizes:
        if not missing[size]:
            evaluate(size)
    for size, name, a, b, arrays in _encode_all(todo, config, x, client, n_threads):
        folder.write_arrays(name, **arrays)
        bar.update(b - a)
        bar.set_postfix_str(f"N={size}")
        missing[size].discard(name)
        if not missing[size]:
            evaluate(size)
    bar.close()
    rows, activity = _write_outputs(folder)
    return Fig3Result(rows, activity, folder.path)


def _collect(folder: ResultFolder) -> tuple[list[dict[str, Any]], dict[int, dict[str, float]]]:
    rows: list[dict[str, Any]] = []
    activity = {}
    for name in ("raw_pixels", "binary_pixels"):
        if folder.has(f"eval/{name}.json"):
            rows += folder.read_json(f"eval/{name}.json")["rows"]
    for size in folder.config["sizes"]:     # every size this folder has been asked for
        name = f"eval/n{size:04d}.json"
        if folder.has(name):
            record = folder.read_json(name)
            rows += record["rows"]
            activity[size] = record["activity"]
    return rows, activity


def _write_outputs(folder: ResultFolder) -> tuple[list[dict[str, Any]],
                                                  dict[int, dict[str, float]]]:
    rows, activity = _collect(folder)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_CSV_FIELDS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    folder.write_text("results.csv", buf.getvalue())
    mnist = is_mnist(folder.config)
    paper = {"paper_points": PAPER_POINTS} if mnist else {}
    folder.write_json("results.json", {"config": folder.config, "activity": activity,
                                       **paper, "rows": rows})
    if any(r["model"].startswith("crdm") for r in rows):
        plot_fig3(rows, folder.file("fig3.png"), dataset=folder.config["data"]["name"],
                  paper=mnist)
    return rows, activity


def plot_fig3(rows: Sequence[dict[str, Any]], path: str | Path, *, dataset: str = "mnist",
              paper: bool = True) -> Path:
    """Accuracy vs simulated time, one line per size: edge sets × metrics, baselines dashed,
    the paper's points as stars when ``paper`` (MNIST only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crdm._io import atomic_write

    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5), sharex=True, sharey=True)
    sizes = sorted({r["size"] for r in rows if r["model"] == "crdm_all"})
    cmap = plt.get_cmap("viridis")
    for i, model in enumerate(("crdm_all", "crdm_recurrent")):
        for j, metric in enumerate(("euclidean", "cosine")):
            ax = axes[i, j]
            for c, size in enumerate(sizes):
                pts = sorted((r["time_ms"], 100 * r["mean"]) for r in rows
                             if r["model"] == model and r["size"] == size
                             and isinstance(r["time_ms"], float)
                             and r["metric"] == metric and r["feature"] == "weights")
                if pts:
                    t, a = zip(*pts, strict=True)
                    ax.plot(t, a, "o-", ms=3, color=cmap(c / max(len(sizes) - 1, 1)),
                            label=f"N={size}")
            raw = [r for r in rows if r["model"] == "raw_pixels" and r["metric"] == metric]
            if raw:
                ax.axhline(100 * raw[0]["mean"], color="k", ls="--", lw=1,
                           label="raw pixels")
            if metric == "euclidean" and paper:
                for n, t_ms, acc in PAPER_POINTS:
                    ax.plot(t_ms, acc, "*", ms=11, mfc="none", mec="crimson",
                            label="paper" if n == PAPER_POINTS[0][0] else None)
            title = ("every edge into the recurrent layer" if model == "crdm_all"
                     else "recurrent → recurrent edges")
            ax.set_title(f"{title}, {metric}", fontsize=10)
            ax.grid(alpha=0.3)
            if i == 1:
                ax.set_xlabel("simulated time (ms)")
            if j == 0:
                ax.set_ylabel("w-kNN accuracy (%)")
    axes[0, 0].legend(fontsize=7, ncol=2)
    fig.suptitle(f"Figure 3 on {dataset}: distance-weighted 5-NN on STDP weight states"
                 + (" (paper's points: red stars)" if paper else ""), fontsize=11)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return atomic_write(Path(path), lambda fh: fh.write(buf.getvalue()))
