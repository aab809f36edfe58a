"""Checks shared by the experiment configurations."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from crdm._checks import integer, sequence
from crdm.errors import DtypeError, ValidationError

__all__ = ["check_network_params", "check_sizes", "data_fingerprint", "default_test_size",
           "unit_pixels"]


def unit_pixels(images: Any, field: str = "images") -> np.ndarray:
    """``images`` as ``(n, pixels)`` float64 grey levels in [0, 1]: integer images are 0-255
    and divided by 255; float and boolean images are taken as they are and must lie in
    [0, 1] (a ``ValidationError`` naming ``field`` otherwise, never a silent rescale)."""
    x = np.asarray(images)
    if x.ndim < 1:
        raise ValidationError(f"`{field}` must be an array of images, got a scalar", field,
                              x.shape)
    x = x.reshape(x.shape[0], -1)
    if np.issubdtype(x.dtype, np.integer):
        if x.size and (x.min() < 0 or x.max() > 255):
            raise ValidationError(f"integer `{field}` must be 0-255 grey levels, found values "
                                  f"in [{x.min()}, {x.max()}]", field,
                                  (int(x.min()), int(x.max())))
        return x.astype(np.float64) / 255.0
    if x.dtype == bool or np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
        if x.size and not (np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0):
            bad = x[~(np.isfinite(x) & (x >= 0.0) & (x <= 1.0))][0]
            raise ValidationError(f"float `{field}` must be grey levels in [0, 1] (uint8 images "
                                  f"are scaled by 1/255 for you), found {bad}", field,
                                  float(bad))
        return x
    raise DtypeError(f"`{field}` must hold numbers, got dtype {x.dtype}", field, str(x.dtype))


def data_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 of the images and labels a run uses (stored with its results)."""
    h = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    h.update(np.ascontiguousarray(labels).astype(np.int64).tobytes())
    return h.hexdigest()


def check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    """The sizes as a sorted tuple of distinct positive integers (``ValidationError`` else)."""
    sizes = sequence("sizes", sizes)
    if not sizes:
        raise ValidationError("`sizes` is empty", "sizes", sizes)
    for s in sizes:
        integer("sizes", s, low=1)
    return tuple(sorted({int(s) for s in sizes}))


def default_test_size(n_test: int | None, n_images: int, k: int) -> int:
    """``n_test`` if given (checked against ``n_images`` and ``k``), else the paper's 1,000
    per 10,000: ``min(1000, n_images // 10)``."""
    if n_test is None:
        return min(1000, n_images // 10)
    return integer("n_test", n_test, low=1, high=n_images - k)


def check_network_params(params: Any, builder: Callable[..., Any], reserved: Sequence[str] = (
        "plastic", "seed")) -> dict[str, Any]:
    """``params`` as a dict of keyword arguments ``builder`` takes, none of them ``reserved``
    (the experiment sets those itself)."""
    if not isinstance(params, Mapping):
        raise ValidationError(f"`network_params` must be a mapping of keyword arguments of "
                              f"{builder.__name__}, got {params!r}", "network_params",
                              repr(params))
    known = set(inspect.signature(builder).parameters) - {"n_hidden", "n_recurrent"}
    for key in params:
        if key in reserved:
            raise ValidationError(f"`network_params` may not set `{key}`: the experiment sets "
                                  "it", f"network_params.{key}", params[key])
        if key not in known:
            raise ValidationError(f"`network_params`: {builder.__name__} has no parameter "
                                  f"{key!r} (it has {', '.join(sorted(known))})",
                                  f"network_params.{key}", params[key])
    return dict(params)
