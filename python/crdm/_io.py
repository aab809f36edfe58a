"""Atomic file writes: a reader, or a run killed half-way, never sees a partial file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from crdm.errors import DataError

__all__ = ["atomic_write", "check_header"]


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Calls ``write(fh)`` on a temporary file beside ``path``, syncs it, renames it to ``path``.

    The rename is atomic on POSIX, so ``path`` holds either the old content or the whole new
    one; a temporary file left by a killed process is never mistaken for a result.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); results are shared, readable files.
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_header(header: Any, *, path: Path | str, what: str, fmt: str, version: int) -> dict:
    """``header`` if it is a dict of format ``fmt`` at ``version``; else ``DataError`` saying
    what the file is not (``what``: "crdm network file", …) or which version it has."""
    found = header.get("format") if isinstance(header, dict) else None
    if found != fmt:
        raise DataError(f"{path} is not a {what} (format {found!r})")
    if header.get("version") != version:
        raise DataError(f"{path}: {what} version {header.get('version')!r} is not supported "
                        f"(this crdm reads version {version})")
    return header
