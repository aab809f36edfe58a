"""Input checks shared by the network, the run configuration and the stimulus.

Each check raises the precise ``crdm.errors`` class naming the field and the offending value.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from crdm.errors import DtypeError, IndexOutOfRangeError, ShapeError, ValidationError


def as_float_array(field: str, values: Any, shape: tuple[int | None, ...]) -> np.ndarray:
    """``values`` as a C-contiguous float64 array of ``shape`` (``None`` = any length)."""
    arr = np.asarray(values)
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise DtypeError(f"`{field}` must be a real number array, got dtype {arr.dtype}",
                         field, str(arr.dtype))
    check_shape(field, arr, shape)
    return np.ascontiguousarray(arr, dtype=np.float64)


def as_index_array(field: str, values: Any, shape: tuple[int | None, ...]) -> np.ndarray:
    """``values`` as a C-contiguous int64 array of ``shape``; floats are refused, not truncated."""
    arr = np.asarray(values)
    if arr.size == 0 and arr.dtype == np.float64:
        arr = arr.astype(np.int64)  # np.asarray([]) is float64; an empty list is fine
    if not np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        raise DtypeError(f"`{field}` must be an integer array, got dtype {arr.dtype}",
                         field, str(arr.dtype))
    check_shape(field, arr, shape)
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        i = int(np.argmax(arr))
        raise IndexOutOfRangeError(f"`{field}[{i}]` = {arr[i]} is too large", f"{field}[{i}]",
                                   int(arr[i]))
    return np.ascontiguousarray(arr, dtype=np.int64)


def as_bool_array(field: str, values: Any, shape: tuple[int | None, ...]) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype != bool:
        raise DtypeError(f"`{field}` must be a boolean array, got dtype {arr.dtype}",
                         field, str(arr.dtype))
    check_shape(field, arr, shape)
    return np.ascontiguousarray(arr)


def check_shape(field: str, arr: np.ndarray, shape: tuple[int | None, ...]) -> None:
    ok = arr.ndim == len(shape) and all(
        want is None or have == want for have, want in zip(arr.shape, shape, strict=False)
    )
    if not ok:
        want = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")"
        raise ShapeError(f"`{field}` has shape {arr.shape}, expected {want}", field, arr.shape)


def check_elements(field: str, arr: np.ndarray, ok: np.ndarray, reason: str) -> None:
    """Raises for the first element of ``arr`` where the boolean mask ``ok`` is false."""
    bad = np.flatnonzero(~ok)
    if bad.size:
        i = int(bad[0])
        value = arr.flat[i]
        raise ValidationError(f"invalid value for `{field}[{i}]`: {value} ({reason})",
                              f"{field}[{i}]", value.item())


def check_indices(field: str, arr: np.ndarray, bound: int) -> None:
    bad = np.flatnonzero((arr < 0) | (arr >= bound))
    if bad.size:
        i = int(bad[0])
        raise IndexOutOfRangeError(
            f"`{field}[{i}]` = {arr[i]} is out of range [0, {bound})", f"{field}[{i}]", int(arr[i])
        )


def real(field: str, value: Any, *, low: float | None = None, low_open: bool = False,
         allow_inf: bool = False, high: float | None = None) -> float:
    """A real scalar, finite unless ``allow_inf``, ``> low`` / ``>= low`` and ``<= high`` when
    given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValidationError(f"`{field}` must be a real number, got {value!r}", field, value)
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValidationError(f"invalid value for `{field}`: {v} (must be finite)", field, v)
    if low is not None and (v <= low if low_open else v < low):
        op = ">" if low_open else ">="
        raise ValidationError(f"invalid value for `{field}`: {v} (must be {op} {low})", field, v)
    if high is not None and v > high:
        raise ValidationError(f"invalid value for `{field}`: {v} (must be <= {high})", field, v)
    return v


INT64_MAX = 2**63 - 1


def sequence(field: str, value: Any) -> tuple[Any, ...]:
    """``value`` as a tuple, if it is a list, tuple or 1-D array (not a string or a scalar)."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        return tuple(value.tolist())
    if not isinstance(value, (list, tuple)):
        raise ValidationError(f"`{field}` must be a list of values, got {value!r}", field,
                              repr(value))
    return tuple(value)


def integer(field: str, value: Any, *, low: int = 0, high: int | None = None) -> int:
    """An integer scalar in ``[low, high]``; ``high`` is at most the int64 maximum, which every
    count and seed here must fit (numpy refuses larger ones deep inside)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValidationError(f"`{field}` must be an integer, got {value!r}", field, value)
    v = int(value)
    high = INT64_MAX if high is None else min(high, INT64_MAX)
    if v < low or v > high:
        bounds = f">= {low}" if high == INT64_MAX else f"in [{low}, {high}]"
        raise ValidationError(f"invalid value for `{field}`: {v} (must be {bounds})", field, v)
    return v
