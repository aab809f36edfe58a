"""Atomic file writes: a reader, or a run killed half-way, never sees a partial file."""

from __future__ import annotations

import json
import os
import tempfile
import tokenize
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from crdm.errors import DataError, StorageError

__all__ = ["atomic_write", "check_header", "read_npz"]

# What numpy and zipfile raise on a damaged .npz: truncation (EOFError, BadZipFile), a flipped
# byte (a CRC or zlib error, a bad header: ValueError, zlib.error), a flag claiming encryption
# or an unknown compression (RuntimeError, NotImplementedError), a missing member (KeyError),
# a garbled array header (numpy parses it as a Python literal: SyntaxError, TokenError).
_NPZ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error,
               RuntimeError, NotImplementedError, SyntaxError, tokenize.TokenError)


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Calls ``write(fh)`` on a temporary file beside ``path``, syncs it, renames it to ``path``.

    The rename is atomic on POSIX, so ``path`` holds either the old content or the whole new
    one; a temporary file left by a killed process is never mistaken for a result. A write
    that fails (a full disk, …) leaves no temporary file and raises ``StorageError``.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        # mkstemp makes the file private (0600); results are shared, readable files.
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise StorageError(exc.errno, f"could not write {path}: {exc.strerror or exc}; what was "
                                      "written before is whole, and rerunning the same command "
                                      "continues from it") from exc
    except BaseException:
        if tmp is not None:
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


def read_npz(path: str | Path, what: str) -> tuple[dict[str, Any] | None, dict[str, np.ndarray]]:
    """``(header, arrays)`` of an ``.npz`` (``header``: the JSON in its ``header`` member, if it
    has one), read whole; any damage raises ``DataError`` naming ``what`` the file should be."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        header = json.loads(str(arrays.pop("header"))) if "header" in arrays else None
    except FileNotFoundError as exc:
        raise DataError(f"no {what} at {path}") from exc
    except _NPZ_ERRORS as exc:
        raise DataError(f"{path} is not a readable {what}: {type(exc).__name__}: {exc}") from exc
    return header, arrays
