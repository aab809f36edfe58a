"""Input codes: how an image's pixels drive the input nodes of a network.

A pixel of grey level ``x ∈ [0, 1]`` drives its input node (refractory period ``R`` ms) only
if ``x > θ`` (``pixel_threshold``). Ticks are ``dt = config.dt_ms`` long and every time below is
rounded to ticks as :func:`crdm.units.ms_to_ticks` does (half up, at least one tick for
periods). Forced firings fall in ``[0, T)``, ``T`` the run's duration; one that lands in the
node's refractory period is dropped by the simulator.

* ``binary`` (the paper's reading, the default): the node fires at ``t = 0, R, 2R, …``.
  Intensity is used only through ``θ``.
* ``latency``: brighter pixels fire first; the first firing at ``t₀ = (1 − x) · L`` ms
  (``latency_window_ms`` = ``L``), then once (``latency_repeat = False``) or again every ``R``
  ms (``t₀ + kR``).
* ``rate``: the firing period grows as the grey level falls: ``P(x) = max(R, 1000 / (x · f))``
  ms with ``f = rate_max_hz`` (default ``1000 / R``: a white pixel fires as in ``binary``);
  firings at ``t = 0, P, 2P, …``.
* ``graded``: the timing of ``binary``, and the grey level scales the initial weight of every
  edge that leaves the pixel's input node: ``w_ij(0) = x_i · w_ij`` (:meth:`InputCode.network_for`).

``binary`` and ``latency`` with ``latency_repeat`` give a drive that repeats with one period
after its last first firing, which the Rust engine sums once and replays (the same bits); the
``rate`` code and a non-repeating ``latency`` code are simulated event by event.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from crdm._checks import real
from crdm.errors import DtypeError, ValidationError
from crdm.network import Network
from crdm.run_types import RunConfig, Stimulus
from crdm.units import ms_to_ticks

__all__ = ["INPUT_CODES", "InputCode", "image_pixels"]

InputCodeKind = Literal["binary", "latency", "rate", "graded"]
INPUT_CODES: tuple[str, ...] = ("binary", "latency", "rate", "graded")


def image_pixels(image: Any, network: Network) -> np.ndarray:
    """``image`` as float64 grey levels, one per input node (``ValidationError`` or
    ``DtypeError`` when it does not fit ``network``). Integers are taken as they are: scale
    uint8 images to [0, 1] first."""
    img = np.asarray(image)
    if img.size != network.input_nodes.size:
        raise ValidationError(f"`image` has {img.size} pixels, the network has "
                              f"{network.input_nodes.size} input nodes", "image", img.shape)
    if img.dtype != bool and not (np.issubdtype(img.dtype, np.integer)
                                  or np.issubdtype(img.dtype, np.floating)):
        raise DtypeError(f"`image` must be a real or boolean array, got dtype {img.dtype}",
                         "image", str(img.dtype))
    return img.ravel().astype(np.float64)


@dataclass(frozen=True)
class InputCode:
    """One input code and its parameters (the module docstring gives the equations)."""

    kind: InputCodeKind = "binary"
    pixel_threshold: float = 0.0
    latency_window_ms: float = 20.0
    latency_repeat: bool = True
    rate_max_hz: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in INPUT_CODES:
            raise ValidationError(f"invalid value for `input_code.kind`: {self.kind!r} (one of "
                                  f"{', '.join(INPUT_CODES)})", "input_code.kind", self.kind)
        threshold = real("input_code.pixel_threshold", self.pixel_threshold)
        if self.kind != "binary" and not 0.0 <= threshold < 1.0:
            raise ValidationError(f"invalid value for `input_code.pixel_threshold`: {threshold} "
                                  f"(the {self.kind} code takes grey levels in [0, 1]; it "
                                  "must be in [0, 1))",
                                  "input_code.pixel_threshold", threshold)
        real("input_code.latency_window_ms", self.latency_window_ms, low=0.0)
        if not isinstance(self.latency_repeat, bool):
            raise ValidationError("`input_code.latency_repeat` must be a bool",
                                  "input_code.latency_repeat", self.latency_repeat)
        if self.rate_max_hz is not None:
            real("input_code.rate_max_hz", self.rate_max_hz, low=0.0, low_open=True)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check_pixels(self, pixels: np.ndarray) -> None:
        """Grey levels must lie in [0, 1] for every code but ``binary`` (which only
        thresholds them)."""
        if self.kind == "binary" or pixels.size == 0:
            return
        bad = np.flatnonzero(~((pixels >= 0.0) & (pixels <= 1.0)))
        if bad.size:
            i = int(bad[0])
            raise ValidationError(
                f"invalid value for `image[{i}]`: {pixels[i]} (the {self.kind} input code "
                "takes grey levels in [0, 1]; scale uint8 images by 1/255)", f"image[{i}]",
                float(pixels[i]))

    def stimulus(self, image: Any, network: Network, config: RunConfig) -> Stimulus:
        """The forced firings of ``image`` on ``network`` for a run of ``config``."""
        pixels = image_pixels(image, network)
        self.check_pixels(pixels)
        active = np.flatnonzero(pixels > self.pixel_threshold)
        nodes_of = network.input_nodes[active]
        n_ticks = config.n_ticks
        dt = config.dt_ms
        period = np.array([ms_to_ticks(r, dt) for r in network.refractory_ms[nodes_of]],
                          dtype=np.int64)
        if self.kind in ("binary", "graded"):
            first = np.zeros(active.size, dtype=np.int64)
        elif self.kind == "latency":
            # the same half-up rounding as every other time in ticks, from 0 on
            first = np.floor((1.0 - pixels[active]) * self.latency_window_ms / dt
                             + 0.5).astype(np.int64)
            if not self.latency_repeat:
                period = np.full(active.size, n_ticks, dtype=np.int64)
        else:
            refractory = network.refractory_ms[nodes_of]
            rate_max_hz = 1000.0 / refractory if self.rate_max_hz is None else self.rate_max_hz
            ms = np.maximum(refractory, 1000.0 / (pixels[active] * rate_max_hz))
            period = np.array([ms_to_ticks(p, dt) if math.isfinite(p) else n_ticks
                               for p in ms], dtype=np.int64)
            first = np.zeros(active.size, dtype=np.int64)
        period = np.maximum(period, 1)
        live = first < n_ticks
        nodes_of, first, period = nodes_of[live], first[live], period[live]
        counts = (n_ticks - first + period - 1) // period
        k = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts,
                                                                     counts)
        nodes = np.repeat(nodes_of, counts)
        ticks = np.repeat(first, counts) + np.repeat(period, counts) * k
        order = np.lexsort((nodes, ticks))
        return Stimulus(nodes[order], ticks[order])

    def network_for(self, image: Any, network: Network) -> Network:
        """The network ``image`` runs on: ``network`` itself, or for ``graded`` a copy whose
        edges out of each input node have their weights scaled by the pixel's grey level."""
        if self.kind != "graded":
            return network
        pixels = image_pixels(image, network)
        self.check_pixels(pixels)
        gain = np.ones(network.n_nodes)
        gain[network.input_nodes] = pixels
        return network.with_weights(network.weights * gain[network.edge_src])
