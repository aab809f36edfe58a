"""Geometric networks for the CRDM: the data structure, the seeded builders and file I/O.

A network is a directed graph whose nodes have positions (µm), refractory periods ``R_i``
(ms), thresholds ``θ_i`` (dimensionless, in weight units) and summation time constants
``τ_m,i`` (ms); every edge ``i → j`` has a signed weight ``w_ij``, a path length ``d_ij`` (µm,
the Euclidean distance between its nodes unless given) and a conduction velocity ``v_ij``
(m/s). Its latency is ``τ_ij = d_ij / v_ij`` (``1 m/s = 1 µm/µs``, so
``τ_ij[ms] = d_ij[µm] / (1000 · v_ij[m/s])``). See ``docs/model.md``.

Builders
--------
* :func:`input_recurrent` — Section 4 of George et al.: a 28×28 input grid, every input node
  connected to every one of ``n_recurrent`` nodes placed in a volume above it, recurrent nodes
  connected all-to-all (or at a given density), 70 % excitatory / 30 % inhibitory weights.
* :func:`two_block_sbm` — Section 3.1: a two-block stochastic block model, a 784-node input
  block and a 200-node hidden block with block-pair connection probabilities.
* :meth:`Network.from_arrays` — any user graph.

Networks save to and load from one ``.npz`` file with an exact round trip (:meth:`Network.save`,
:func:`load_network`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crdm._checks import (
    as_bool_array,
    as_float_array,
    as_index_array,
    check_elements,
    check_indices,
    integer,
    real,
)
from crdm._io import atomic_write, check_header, read_npz
from crdm.errors import DataError, ValidationError

__all__ = ["Network", "input_recurrent", "load_network", "two_block_sbm"]

_FORMAT = "crdm-network"
_FORMAT_VERSION = 1
_ARRAYS = (
    "positions_um",
    "refractory_ms",
    "threshold",
    "tau_m_ms",
    "edge_src",
    "edge_dst",
    "weights",
    "length_um",
    "velocity_m_s",
    "plastic",
    "input_nodes",
)


@dataclass(frozen=True, eq=False)
class Network:
    """A validated geometric network. Arrays are read-only; use :meth:`with_weights` to vary.

    Attributes are per node (``positions_um`` of shape ``(n, 3)``, ``refractory_ms``,
    ``threshold``, ``tau_m_ms``), per edge (``edge_src``, ``edge_dst``, ``weights``,
    ``length_um``, ``velocity_m_s``, ``plastic``), ``input_nodes`` (the node driven by each
    pixel, in pixel order) and ``meta`` (the builder and its parameters, JSON-serialisable).
    """

    positions_um: np.ndarray
    refractory_ms: np.ndarray
    threshold: np.ndarray
    tau_m_ms: np.ndarray
    edge_src: np.ndarray
    edge_dst: np.ndarray
    weights: np.ndarray
    length_um: np.ndarray
    velocity_m_s: np.ndarray
    plastic: np.ndarray
    input_nodes: np.ndarray
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pos = as_float_array("positions_um", self.positions_um, (None, 3))
        n = pos.shape[0]
        if n == 0:
            raise ValidationError("a network needs at least one node", "positions_um", pos.shape)
        check_elements("positions_um", pos, np.isfinite(pos), "must be finite")
        refractory = as_float_array("refractory_ms", self.refractory_ms, (n,))
        check_elements("refractory_ms", refractory, np.isfinite(refractory) & (refractory > 0),
                       "must be finite and > 0")
        threshold = as_float_array("threshold", self.threshold, (n,))
        check_elements("threshold", threshold, np.isfinite(threshold) & (threshold > 0),
                       "must be finite and > 0")
        tau = as_float_array("tau_m_ms", self.tau_m_ms, (n,))
        check_elements("tau_m_ms", tau, tau > 0, "must be > 0 (inf for a pure integrator)")
        src = as_index_array("edge_src", self.edge_src, (None,))
        m = src.shape[0]
        dst = as_index_array("edge_dst", self.edge_dst, (m,))
        check_indices("edge_src", src, n)
        check_indices("edge_dst", dst, n)
        weights = as_float_array("weights", self.weights, (m,))
        check_elements("weights", weights, np.isfinite(weights), "must be finite")
        length = as_float_array("length_um", self.length_um, (m,))
        check_elements("length_um", length, np.isfinite(length) & (length >= 0),
                       "must be finite and >= 0")
        velocity = as_float_array("velocity_m_s", self.velocity_m_s, (m,))
        check_elements("velocity_m_s", velocity, np.isfinite(velocity) & (velocity > 0),
                       "must be finite and > 0")
        plastic = as_bool_array("plastic", self.plastic, (m,))
        inputs = as_index_array("input_nodes", self.input_nodes, (None,))
        check_indices("input_nodes", inputs, n)
        try:
            meta = json.loads(json.dumps(dict(self.meta)))
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"`meta` must be JSON-serialisable: {exc}", "meta",
                                  self.meta) from exc
        values = dict(
            positions_um=pos, refractory_ms=refractory, threshold=threshold, tau_m_ms=tau,
            edge_src=src, edge_dst=dst, weights=weights, length_um=length,
            velocity_m_s=velocity, plastic=plastic, input_nodes=inputs,
        )
        for name, arr in values.items():
            arr = arr.copy()  # never alias the caller's (possibly writeable) buffer
            arr.flags.writeable = False
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "meta", meta)

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_arrays(
        cls,
        positions_um: Any,
        edges: Any,
        weights: Any,
        *,
        velocity_m_s: Any = 1.0,
        refractory_ms: Any = 5.0,
        threshold: Any = 1.0,
        tau_m_ms: Any = np.inf,
        length_um: Any = None,
        plastic: Any = True,
        input_nodes: Any = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Network:
        """A network from a user's arrays.

        ``positions_um`` is ``(n, 2)`` or ``(n, 3)`` (2-D positions get ``z = 0``); ``edges`` is
        ``(m, 2)`` of ``(source, target)`` node ids. Per-node and per-edge parameters may be
        scalars (broadcast) or arrays. ``length_um`` defaults to the Euclidean distance between
        the endpoints; ``input_nodes`` defaults to no input nodes.
        """
        pos = np.asarray(positions_um)
        if pos.ndim == 2 and pos.shape[1] == 2:
            pos = np.column_stack([pos, np.zeros(pos.shape[0])])
        pos = as_float_array("positions_um", pos, (None, 3))
        n = pos.shape[0]
        edge_arr = np.asarray(edges)
        if edge_arr.size == 0:
            edge_arr = edge_arr.reshape(0, 2).astype(np.int64)
        edge_arr = as_index_array("edges", edge_arr, (None, 2))
        check_indices("edges", edge_arr.ravel(), n)
        m = edge_arr.shape[0]
        src, dst = edge_arr[:, 0], edge_arr[:, 1]
        if length_um is None:
            length_um = np.linalg.norm(pos[dst] - pos[src], axis=1)

        def per(value: Any, size: int) -> np.ndarray:
            arr = np.asarray(value)
            return np.broadcast_to(arr, (size,)) if arr.ndim == 0 else arr

        return cls(
            positions_um=pos,
            refractory_ms=per(refractory_ms, n),
            threshold=per(threshold, n),
            tau_m_ms=per(tau_m_ms, n),
            edge_src=src,
            edge_dst=dst,
            weights=weights,
            length_um=per(length_um, m),
            velocity_m_s=per(velocity_m_s, m),
            plastic=per(plastic, m),
            input_nodes=np.zeros(0, np.int64) if input_nodes is None else input_nodes,
            meta=dict(meta or {"builder": "from_arrays"}),
        )

    def with_weights(self, weights: Any) -> Network:
        """The same network with other weights (e.g. the final weights of a plastic run)."""
        values = {name: getattr(self, name) for name in _ARRAYS}
        values["weights"] = weights
        return Network(**values, meta=self.meta)

    # -- properties --------------------------------------------------------------------------

    @property
    def n_nodes(self) -> int:
        return int(self.positions_um.shape[0])

    @property
    def n_edges(self) -> int:
        return int(self.edge_src.shape[0])

    def latency_ms(self) -> np.ndarray:
        """Latency τ_ij = d_ij / v_ij of every edge, in ms (before rounding to ticks)."""
        return self.length_um / (self.velocity_m_s * 1000.0)

    # -- files ---------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Writes the network to one ``.npz`` file, atomically; returns the path written."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz")
        header = {"format": _FORMAT, "version": _FORMAT_VERSION, "meta": dict(self.meta)}
        return atomic_write(path, lambda fh: np.savez(
            fh, header=np.array(json.dumps(header)),
            **{name: getattr(self, name) for name in _ARRAYS}))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Network):
            return NotImplemented
        return self.meta == other.meta and all(
            getattr(self, a).dtype == getattr(other, a).dtype
            and np.array_equal(getattr(self, a), getattr(other, a))
            for a in _ARRAYS
        )

    __hash__ = None  # type: ignore[assignment]


def load_network(path: str | Path) -> Network:
    """Reads a network written by :meth:`Network.save`. Foreign or corrupt files raise
    :class:`crdm.errors.DataError`; a file with invalid contents raises the validation error."""
    path = Path(path)
    header, arrays = read_npz(path, "crdm network file")
    if header is None:
        raise DataError(f"{path} is not a crdm network file (no header)")
    header = check_header(header, path=path, what="crdm network file", fmt=_FORMAT,
                          version=_FORMAT_VERSION)
    missing = [a for a in _ARRAYS if a not in arrays]
    if missing:
        raise DataError(f"{path} lacks arrays {missing}")
    meta = header.get("meta", {})
    if not isinstance(meta, dict):
        raise DataError(f"{path}: the header's `meta` is not a mapping: {meta!r}")
    return Network(**{a: arrays[a] for a in _ARRAYS}, meta=meta)


# -- builders -------------------------------------------------------------------------------


def _grid_positions(shape: tuple[int, int], pitch_um: float) -> np.ndarray:
    rows, cols = np.divmod(np.arange(shape[0] * shape[1]), shape[1])
    return np.column_stack([cols * pitch_um, rows * pitch_um, np.zeros(rows.size)])


def _volume_positions(
    rng: np.random.Generator, n: int, grid_extent_um: float, volume_um: Sequence[float],
    offset_um: float,
) -> np.ndarray:
    """``n`` points uniform in a box of ``volume_um`` centred over the input grid, its bottom
    ``offset_um`` above the grid's plane."""
    w, d, h = (float(v) for v in volume_um)
    centre = grid_extent_um / 2
    xyz = rng.uniform(0.0, 1.0, size=(n, 3)) * np.array([w, d, h])
    return xyz + np.array([centre - w / 2, centre - d / 2, offset_um])


def _signed_weights(
    rng: np.random.Generator, m: int, excitatory_fraction: float, scale: float,
    inhibitory_scale: float,
) -> np.ndarray:
    """Excitatory with probability ``excitatory_fraction``, magnitudes uniform."""
    excitatory = rng.random(m) < excitatory_fraction
    magnitude = rng.uniform(0.0, 1.0, size=m)
    return np.where(excitatory, magnitude * scale, -magnitude * inhibitory_scale)


def _velocities(rng: np.random.Generator, m: int, velocity_m_s: float | tuple[float, float]):
    if isinstance(velocity_m_s, tuple):
        lo = real("velocity_m_s[0]", velocity_m_s[0], low=0.0, low_open=True)
        hi = real("velocity_m_s[1]", velocity_m_s[1], low=lo)
        return rng.uniform(lo, hi, size=m)
    return np.full(m, real("velocity_m_s", velocity_m_s, low=0.0, low_open=True))


def input_recurrent(
    n_recurrent: int = 200,
    *,
    seed: int = 0,
    density: float = 1.0,
    excitatory_fraction: float = 0.7,
    input_weight: float = 0.08,
    recurrent_weight: float = 0.05,
    inhibitory_ratio: float = 7 / 3,
    image_shape: tuple[int, int] = (28, 28),
    pixel_pitch_um: float = 50.0,
    volume_um: tuple[float, float, float] = (1400.0, 1400.0, 1400.0),
    volume_offset_um: float = 200.0,
    velocity_m_s: float | tuple[float, float] = 0.2,
    input_refractory_ms: float = 10.0,
    recurrent_refractory_ms: float = 5.0,
    threshold: float = 1.0,
    tau_m_ms: float = 20.0,
    plastic: str = "recurrent",
) -> Network:
    """The Section-4 network: an input grid fully connected to a recurrent layer.

    Nodes ``0 .. P-1`` are the ``P = rows · cols`` input nodes on a grid of ``pixel_pitch_um``
    in the plane ``z = 0`` (pixel ``p`` drives node ``p``); nodes ``P .. P+N-1`` are the
    recurrent nodes, uniform in a ``volume_um`` box centred above the grid, its bottom
    ``volume_offset_um`` above it. Edges: every input → every recurrent node (ids
    ``0 .. P·N-1``, ordered by input then target), then recurrent ``i → j`` (``i ≠ j``) kept
    with probability ``density``, ordered by ``(i, j)``. Each edge is excitatory with
    probability ``excitatory_fraction``, magnitude uniform in ``[0, input_weight)`` or
    ``[0, recurrent_weight)``, times ``inhibitory_ratio`` if inhibitory (the default 7/3 makes
    the mean weight zero, so a node's drive follows how its weights align with the image instead
    of the image's ink count: about 30 Hz of recurrent activity). Lengths are Euclidean,
    so latencies spread with geometry (defaults: about 1-15 ms). ``plastic`` selects the STDP
    edges: ``"recurrent"``, ``"input"``, ``"all"`` or ``"none"``.
    """
    n_rec = integer("n_recurrent", n_recurrent, low=1)
    seed = integer("seed", seed)
    density = real("density", density, low=0.0)
    if density > 1:
        raise ValidationError(f"invalid value for `density`: {density} (must be <= 1)",
                              "density", density)
    exc_frac = real("excitatory_fraction", excitatory_fraction, low=0.0)
    if exc_frac > 1:
        raise ValidationError(
            f"invalid value for `excitatory_fraction`: {exc_frac} (must be <= 1)",
            "excitatory_fraction", exc_frac)
    if plastic not in ("recurrent", "input", "all", "none"):
        raise ValidationError(f"invalid value for `plastic`: {plastic!r} (one of 'recurrent', "
                              "'input', 'all', 'none')", "plastic", plastic)
    rows = integer("image_shape[0]", image_shape[0], low=1)
    cols = integer("image_shape[1]", image_shape[1], low=1)
    pitch = real("pixel_pitch_um", pixel_pitch_um, low=0.0)
    rng = np.random.default_rng(seed)

    n_in = rows * cols
    pos = np.vstack([
        _grid_positions((rows, cols), pitch),
        _volume_positions(rng, n_rec, (max(rows, cols) - 1) * pitch, volume_um,
                          real("volume_offset_um", volume_offset_um)),
    ])
    rec = np.arange(n_in, n_in + n_rec)
    in_src = np.repeat(np.arange(n_in), n_rec)
    in_dst = np.tile(rec, n_in)
    ii, jj = np.meshgrid(rec, rec, indexing="ij")
    off_diag = ii != jj
    keep = off_diag & (rng.random(ii.shape) < density)
    rec_src, rec_dst = ii[keep], jj[keep]
    src = np.concatenate([in_src, rec_src])
    dst = np.concatenate([in_dst, rec_dst])
    n_input_edges = in_src.size
    inh = real("inhibitory_ratio", inhibitory_ratio, low=0.0)
    weights = np.concatenate([
        _signed_weights(rng, n_input_edges, exc_frac,
                        real("input_weight", input_weight, low=0.0), input_weight * inh),
        _signed_weights(rng, rec_src.size, exc_frac,
                        real("recurrent_weight", recurrent_weight, low=0.0),
                        recurrent_weight * inh),
    ])
    is_recurrent = np.arange(src.size) >= n_input_edges
    plastic_mask = {"recurrent": is_recurrent, "input": ~is_recurrent,
                    "all": np.ones(src.size, bool), "none": np.zeros(src.size, bool)}[plastic]
    refractory = np.concatenate([
        np.full(n_in, real("input_refractory_ms", input_refractory_ms, low=0.0, low_open=True)),
        np.full(n_rec, real("recurrent_refractory_ms", recurrent_refractory_ms, low=0.0,
                            low_open=True)),
    ])
    meta = {
        "builder": "input_recurrent",
        "params": dict(
            n_recurrent=n_rec, seed=seed, density=density, excitatory_fraction=exc_frac,
            input_weight=input_weight, recurrent_weight=recurrent_weight,
            inhibitory_ratio=inh, image_shape=[rows, cols], pixel_pitch_um=pitch,
            volume_um=list(volume_um), volume_offset_um=volume_offset_um,
            velocity_m_s=list(velocity_m_s) if isinstance(velocity_m_s, tuple)
            else velocity_m_s,
            input_refractory_ms=input_refractory_ms,
            recurrent_refractory_ms=recurrent_refractory_ms, threshold=threshold,
            tau_m_ms=tau_m_ms, plastic=plastic,
        ),
        "n_input": n_in,
        "n_input_edges": int(n_input_edges),
    }
    return Network(
        positions_um=pos,
        refractory_ms=refractory,
        threshold=np.full(n_in + n_rec, real("threshold", threshold, low=0.0, low_open=True)),
        tau_m_ms=np.full(n_in + n_rec, real("tau_m_ms", tau_m_ms, low=0.0, low_open=True,
                                            allow_inf=True)),
        edge_src=src,
        edge_dst=dst,
        weights=weights,
        length_um=np.linalg.norm(pos[dst] - pos[src], axis=1),
        velocity_m_s=_velocities(rng, src.size, velocity_m_s),
        plastic=plastic_mask,
        input_nodes=np.arange(n_in),
        meta=meta,
    )


def two_block_sbm(
    n_hidden: int = 200,
    *,
    seed: int = 0,
    block_probabilities: Sequence[Sequence[float]] = ((0.0, 0.1), (0.0, 0.1)),
    excitatory_fraction: float = 0.7,
    weight: float = 0.3,
    inhibitory_ratio: float = 7 / 3,
    image_shape: tuple[int, int] = (28, 28),
    pixel_pitch_um: float = 50.0,
    volume_um: tuple[float, float, float] = (1400.0, 1400.0, 1400.0),
    volume_offset_um: float = 200.0,
    velocity_m_s: float | tuple[float, float] = 0.2,
    input_refractory_ms: float = 10.0,
    hidden_refractory_ms: float = 5.0,
    threshold: float = 1.0,
    tau_m_ms: float = 20.0,
    plastic: str = "all",
) -> Network:
    """The Section-3.1 network: a two-block stochastic block model.

    Block 0 is the input block (one node per pixel, on the grid as in :func:`input_recurrent`),
    block 1 the ``n_hidden`` hidden nodes in a volume above it. Each ordered pair ``i → j``
    (``i ≠ j``) is an edge with probability ``block_probabilities[block(i)][block(j)]``
    (default: input → hidden 0.1, hidden → hidden 0.1, nothing into the input block). Edges are
    ordered by ``(i, j)``. Weights as in :func:`input_recurrent` with magnitudes up to
    ``weight``. ``plastic``: ``"all"``, ``"hidden"`` (hidden → hidden only) or ``"none"``.
    """
    n_hid = integer("n_hidden", n_hidden, low=1)
    seed = integer("seed", seed)
    probs = np.asarray(block_probabilities, dtype=float)
    if probs.shape != (2, 2):
        raise ValidationError(f"`block_probabilities` must be 2x2, got shape {probs.shape}",
                              "block_probabilities", probs.tolist())
    check_elements("block_probabilities", probs, (probs >= 0) & (probs <= 1),
                   "must be a probability in [0, 1]")
    if plastic not in ("all", "hidden", "none"):
        raise ValidationError(f"invalid value for `plastic`: {plastic!r} (one of 'all', "
                              "'hidden', 'none')", "plastic", plastic)
    rows = integer("image_shape[0]", image_shape[0], low=1)
    cols = integer("image_shape[1]", image_shape[1], low=1)
    pitch = real("pixel_pitch_um", pixel_pitch_um, low=0.0)
    exc_frac = real("excitatory_fraction", excitatory_fraction, low=0.0)
    rng = np.random.default_rng(seed)
    n_in = rows * cols
    n = n_in + n_hid
    pos = np.vstack([
        _grid_positions((rows, cols), pitch),
        _volume_positions(rng, n_hid, (max(rows, cols) - 1) * pitch, volume_um,
                          real("volume_offset_um", volume_offset_um)),
    ])
    block = (np.arange(n) >= n_in).astype(np.int64)
    src_parts, dst_parts = [], []
    for i0 in range(0, n, 256):  # row chunks keep the n×n draw small
        rows_i = np.arange(i0, min(i0 + 256, n))
        p = probs[block[rows_i][:, None], block[None, :]]
        draw = rng.random(p.shape) < p
        draw[np.arange(rows_i.size), rows_i] = False  # no self-loops
        ii, jj = np.nonzero(draw)
        src_parts.append(rows_i[ii])
        dst_parts.append(jj)
    src = np.concatenate(src_parts)
    dst = np.concatenate(dst_parts)
    w = real("weight", weight, low=0.0)
    weights = _signed_weights(rng, src.size, exc_frac, w,
                              w * real("inhibitory_ratio", inhibitory_ratio, low=0.0))
    hidden_edge = (block[src] == 1) & (block[dst] == 1)
    plastic_mask = {"all": np.ones(src.size, bool), "hidden": hidden_edge,
                    "none": np.zeros(src.size, bool)}[plastic]
    meta = {
        "builder": "two_block_sbm",
        "params": dict(
            n_hidden=n_hid, seed=seed, block_probabilities=probs.tolist(),
            excitatory_fraction=exc_frac, weight=w, inhibitory_ratio=inhibitory_ratio,
            image_shape=[rows, cols], pixel_pitch_um=pitch, volume_um=list(volume_um),
            volume_offset_um=volume_offset_um,
            velocity_m_s=list(velocity_m_s) if isinstance(velocity_m_s, tuple)
            else velocity_m_s,
            input_refractory_ms=input_refractory_ms, hidden_refractory_ms=hidden_refractory_ms,
            threshold=threshold, tau_m_ms=tau_m_ms, plastic=plastic,
        ),
        "n_input": n_in,
    }
    return Network(
        positions_um=pos,
        refractory_ms=np.where(block == 0,
                               real("input_refractory_ms", input_refractory_ms, low=0.0,
                                    low_open=True),
                               real("hidden_refractory_ms", hidden_refractory_ms, low=0.0,
                                    low_open=True)),
        threshold=np.full(n, real("threshold", threshold, low=0.0, low_open=True)),
        tau_m_ms=np.full(n, real("tau_m_ms", tau_m_ms, low=0.0, low_open=True,
                                 allow_inf=True)),
        edge_src=src,
        edge_dst=dst,
        weights=weights,
        length_um=np.linalg.norm(pos[dst] - pos[src], axis=1),
        velocity_m_s=_velocities(rng, src.size, velocity_m_s),
        plastic=plastic_mask,
        input_nodes=np.arange(n_in),
        meta=meta,
    )
