"""Checks shared by the experiment configurations."""

from __future__ import annotations

from collections.abc import Sequence

from crdm._checks import integer
from crdm.errors import ValidationError

__all__ = ["check_sizes", "default_test_size"]


def check_sizes(sizes: Sequence[int]) -> tuple[int, ...]:
    """The sizes as a sorted tuple of distinct positive integers (``ValidationError`` else)."""
    if not sizes:
        raise ValidationError("`sizes` is empty", "sizes", tuple(sizes))
    for s in sizes:
        integer("sizes", s, low=1)
    return tuple(sorted({int(s) for s in sizes}))


def default_test_size(n_test: int | None, n_images: int, k: int) -> int:
    """``n_test`` if given (checked against ``n_images`` and ``k``), else the paper's 1,000
    per 10,000: ``min(1000, n_images // 10)``."""
    if n_test is None:
        return min(1000, n_images // 10)
    return integer("n_test", n_test, low=1, high=n_images - k)
