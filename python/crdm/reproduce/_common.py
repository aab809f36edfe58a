"""Checks shared by the experiment configurations."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from crdm._checks import integer, sequence
from crdm.errors import ValidationError

__all__ = ["check_network_params", "check_sizes", "default_test_size"]


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
