"""The scaffold every experiment command shares: its argument checks, pixel normalisation,
data identity and result folder.

A command calls :func:`labelled_pixels` for each part of its data (images as float64 grey
levels in [0, 1], labels as int64, the count checked), then :func:`open_results`, whose
stored configuration names the experiment, the model revision where the engine computes
the numbers, the configuration, the data set (:class:`crdm.datasets.DatasetInfo`: name,
source, each file's SHA-256 and size) and a fingerprint of every part's images and labels.
A folder of the same configuration and data continues; any other is refused.
:func:`is_mnist` tells a report whether the papers' numbers apply.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from crdm._checks import integer, sequence
from crdm.datasets import MNIST, DatasetInfo
from crdm.errors import DtypeError, ValidationError
from crdm.results import ResultFolder

__all__ = ["check_image_shape", "check_network_params", "check_sizes", "data_fingerprint",
           "default_test_size", "is_mnist", "labelled_pixels", "open_results", "unit_pixels"]

#: What results say of data handed over as arrays, without a :class:`DatasetInfo`.
ARRAYS = DatasetInfo("arrays", "arrays passed to the function")


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


def labelled_pixels(images: Any, labels: Any, n: int | None = None, *,
                    field: str = "images") -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` (default: all) ``images`` as ``(n, pixels)`` float64 grey levels in
    [0, 1] (:func:`unit_pixels`) and their labels as int64; a ``ValidationError`` naming
    ``n_images`` if there are fewer, or ``field`` if images and labels disagree."""
    x, y = np.asarray(images), np.asarray(labels)
    if x.ndim < 1 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValidationError(f"`{field}` ({x.shape}) and their labels ({y.shape}) must have "
                              "one label per image", field, x.shape)
    if n is not None and x.shape[0] < n:
        raise ValidationError(f"`n_images` = {n} but the data has {x.shape[0]} images",
                              "n_images", n)
    return unit_pixels(x[:n], field), y[:n].astype(np.int64)


def check_image_shape(images: Any, allowed: Sequence[tuple[int, int]] | None = None,
                      *, experiment: str) -> tuple[int, int]:
    """The ``(rows, cols)`` of ``images`` (``(n, rows, cols)``, or ``(n, 784)`` read as
    28 × 28), refused with a ``ValidationError`` naming ``images`` when it is not one of
    ``allowed`` (``None``: any)."""
    shape = np.shape(images)
    if len(shape) == 3:
        rows_cols = (int(shape[1]), int(shape[2]))
    elif len(shape) == 2 and shape[1] == 784:
        rows_cols = (28, 28)
    else:
        raise ValidationError(f"`images` of shape {shape}: {experiment} needs images as "
                              "(n, rows, cols) arrays (or (n, 784) for 28 × 28)", "images",
                              shape)
    if allowed is not None and rows_cols not in allowed:
        raise ValidationError(f"`images` are {rows_cols[0]} × {rows_cols[1]}; {experiment} is "
                              f"defined for {' or '.join(f'{r} × {c}' for r, c in allowed)} "
                              "images only", "images", shape)
    return rows_cols


def open_results(out_dir: str | Path, experiment: str, config: Mapping[str, Any],
                 dataset: DatasetInfo | None, parts: Mapping[str, tuple[np.ndarray, np.ndarray]],
                 *, model_revision: int | None = None, growable: Sequence[str] = (),
                 log: Callable[[str], None] | None = None) -> ResultFolder:
    """The result folder of a run, created or continued (see the module docstring).

    ``parts`` maps a name (``"train"``, ``"test"``, ``"images"``) to the images and labels
    the run uses; ``growable`` lists settings a rerun may extend (``ResultFolder``).
    """
    from crdm import __version__

    info = ARRAYS if dataset is None else dataset
    stored: dict[str, Any] = {"experiment": experiment}
    if model_revision is not None:
        stored["model_revision"] = model_revision
    stored.update(config)
    stored["data"] = {**info.as_dict(),
                      "sha256": {name: data_fingerprint(x, y) for name, (x, y) in parts.items()}}
    folder = ResultFolder(out_dir, stored, provenance={"crdm_version": __version__},
                          growable=tuple(growable),
                          upgrade=functools.partial(_with_data_record, stored["data"]))
    if log is not None:
        log(f"results in {folder.path}")
    return folder


def _with_data_record(data: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """A folder written before the data set was recorded holds only the fingerprints of its
    parts (``{"train": sha256, …}``): if they are those of the images used now, it is the
    same run, and its record becomes today's (name, source, files, fingerprints)."""
    old = stored.get("data")
    if isinstance(old, Mapping) and "sha256" not in old and old == data["sha256"]:
        return {**stored, "data": data}
    return stored


def is_mnist(config: Mapping[str, Any]) -> bool:
    """Whether a stored configuration's data set is MNIST (checksum-verified), so that the
    papers' numbers belong beside its results."""
    data = config.get("data", {})
    return isinstance(data, Mapping) and data.get("name") == MNIST
