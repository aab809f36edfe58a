"""The exception tree of crdm.

Every error the Rust core can return maps to exactly one class here (see
``rust/python/src/errors.rs``, ``to_pyerr``); the pure-Python reference raises the same classes,
so code written against one backend handles the other's errors too.

``CrdmError``
├── ``ValidationError`` (also ``ValueError``): a field has a bad value; ``.field``, ``.value``
│   ├── ``ShapeError``: an array has the wrong shape or length
│   ├── ``DtypeError`` (also ``TypeError``): an array has the wrong dtype
│   └── ``IndexOutOfRangeError`` (also ``IndexError``): a node id, edge id or tick out of range
├── ``MemoryLimitError`` (also ``MemoryError``): recorders would need more than the limit
├── ``DataError``: a data or network file is unreadable, corrupt, or not what it claims
│   ├── ``ChecksumError``: a file's SHA-256 does not match the published one
│   ├── ``ConfigMismatchError``: a result folder holds work from another configuration
│   └── ``FolderBusyError``: another process is writing to the same result folder
├── ``StorageError`` (also ``OSError``): a result could not be written (disk full, …)
└── ``InternalError`` (also ``RuntimeError``): a bug in crdm (a Rust panic caught at the binding)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ChecksumError",
    "ConfigMismatchError",
    "CrdmError",
    "DataError",
    "DtypeError",
    "FolderBusyError",
    "IndexOutOfRangeError",
    "InternalError",
    "MemoryLimitError",
    "ShapeError",
    "StorageError",
    "ValidationError",
]


class CrdmError(Exception):
    """Base class of every error crdm raises on purpose."""


class ValidationError(CrdmError, ValueError):
    """A parameter or array element has a value outside its domain.

    ``field`` names it (``"weights[12]"``, ``"stdp.tau_plus_ms"``) and ``value`` is the value.
    """

    def __init__(self, message: str, field: str, value: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class ShapeError(ValidationError):
    """An array has the wrong shape or length; ``value`` is the shape it has."""


class DtypeError(ValidationError, TypeError):
    """An array has a dtype that cannot represent the field; ``value`` is that dtype."""


class IndexOutOfRangeError(ValidationError, IndexError):
    """An index (node id, edge id, tick) lies outside its range; ``value`` is the index."""


class MemoryLimitError(CrdmError, MemoryError):
    """The recorders of a run could need more memory than the configured limit.

    ``value`` is the number of bytes the run could need.
    """

    def __init__(self, message: str, field: str = "memory_limit_bytes", value: Any = None):
        super().__init__(message)
        self.field = field
        self.value = value


class DataError(CrdmError):
    """A data set, network file or checkpoint is missing, truncated, corrupt or foreign.

    ``details`` holds what a user needs only to dig further (every URL tried and why it
    failed); the message itself stays one short line.
    """

    def __init__(self, message: str, *, details: str | None = None) -> None:
        super().__init__(message)
        self.details = details


class ChecksumError(DataError):
    """A file's content does not match its published SHA-256."""


class ConfigMismatchError(DataError):
    """A result folder was started with another configuration; mixing them would be wrong.

    ``field`` is the first setting that differs, ``value`` is ``(stored, requested)``.
    """

    def __init__(self, message: str, field: str, value: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class FolderBusyError(DataError):
    """Another process is writing to this result folder. The lock is the operating system's
    (``flock``), so a process that crashed holds nothing."""


class StorageError(CrdmError, OSError):
    """A file could not be written (no space left, no permission, …). Every piece written
    before it is whole, and a rerun of the same command continues from them."""


class InternalError(CrdmError, RuntimeError):
    """A bug inside crdm, such as a Rust panic caught at the binding. Please report it."""
