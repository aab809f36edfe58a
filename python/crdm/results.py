"""Result folders that a long run fills piece by piece and a rerun continues.

A folder holds ``config.json`` (the run's configuration, the crdm version, data checksums) and
the pieces the run has finished (``.npz`` arrays, ``.json`` records), each written atomically,
so a run killed at any moment leaves only whole files. Opening a folder with a configuration
other than the stored one raises :class:`crdm.errors.ConfigMismatchError` instead of mixing
results of different runs.

A folder belongs to one process at a time: opening it takes an exclusive ``flock`` on its
``.lock`` file, held while any :class:`ResultFolder` of it lives in that process, and a second
process is refused with :class:`crdm.errors.FolderBusyError`. The operating system releases
the lock with its process, so a crashed run never leaves the folder stuck. A study folder
(``crdm tune``), which several processes share on purpose, opens it without the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from crdm._io import atomic_write, check_header, read_npz
from crdm.errors import ConfigMismatchError, DataError, FolderBusyError

__all__ = ["ResultFolder"]

_FORMAT = "crdm-results"
_FORMAT_VERSION = 1


def _first_difference(stored: Any, requested: Any, prefix: str = "") -> str | None:
    if isinstance(stored, dict) and isinstance(requested, dict):
        for key in sorted(set(stored) | set(requested)):
            name = f"{prefix}.{key}" if prefix else str(key)
            if key not in stored or key not in requested:
                return name
            found = _first_difference(stored[key], requested[key], name)
            if found is not None:
                return found
        return None
    return None if stored == requested else (prefix or "config")


LOCK_FILE = ".lock"

# folders this process holds: resolved path -> [lock file descriptor, open ResultFolders]
_HELD: dict[Path, list[int]] = {}
_HELD_GUARD = threading.Lock()


def _hold(path: Path) -> Path:
    """Takes (or, within this process, shares) the exclusive lock of the folder ``path``."""
    key = path.resolve()
    with _HELD_GUARD:
        if key in _HELD:
            _HELD[key][1] += 1
            return key
        fd = os.open(key / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise FolderBusyError(f"{path} is being written by another process (pid {owner}); "
                                  "wait for it to finish or use another output folder") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _HELD[key] = [fd, 1]
        return key


def _let_go(key: Path) -> None:
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is None:
            return
        held[1] -= 1
        if held[1] == 0:
            os.close(held[0])       # closing the descriptor releases the flock
            del _HELD[key]


def _lookup(config: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(config, dict) or part not in config:
            return None
        config = config[part]
    return config


class ResultFolder:
    """A directory of finished pieces of one run, bound to that run's configuration.

    ``config`` must be JSON-serialisable; it is compared after a JSON round trip, so tuples and
    lists count as equal. ``provenance`` (crdm version, host, …) is stored but not compared.
    ``growable`` names top-level list fields whose items are independent pieces of work (the
    sizes of a sweep): a rerun may ask for other items, and the stored field becomes the
    sorted union, which :attr:`config` then holds. ``exclusive`` (the default) holds the
    folder's lock while this object lives (module docstring). ``upgrade`` maps a stored
    configuration written by an earlier crdm to today's form of the same run (or returns it
    unchanged); an upgraded manifest is rewritten, so the folder is continued.
    """

    def __init__(self, path: str | Path, config: Mapping[str, Any], *,
                 provenance: Mapping[str, Any] | None = None,
                 growable: tuple[str, ...] = (), exclusive: bool = True,
                 upgrade: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> None:
        self.path = Path(path)
        self.config = json.loads(json.dumps(dict(config)))
        self.path.mkdir(parents=True, exist_ok=True)
        if exclusive:
            weakref.finalize(self, _let_go, _hold(self.path))
        manifest = self.path / "config.json"
        if manifest.exists():
            try:
                stored = json.loads(manifest.read_text())
            except (OSError, ValueError) as exc:
                raise DataError(f"{manifest} is not a crdm result manifest: {exc}") from exc
            check_header(stored, path=manifest, what="crdm result manifest", fmt=_FORMAT,
                         version=_FORMAT_VERSION)
            stored_config = dict(stored.get("config") or {})
            if upgrade is not None:
                upgraded = upgrade(stored_config)
                if upgraded != stored_config:
                    stored = {**stored, "config": upgraded}
                    self.write_json("config.json", stored)
                    stored_config = dict(upgraded)
            grown = {key: sorted(set(stored_config.pop(key, [])) | set(self.config.get(key, [])))
                     for key in growable}
            field = _first_difference(stored_config,
                                      {k: v for k, v in self.config.items() if k not in grown})
            if field is not None:
                old, new = _lookup(stored.get("config"), field), _lookup(self.config, field)
                raise ConfigMismatchError(
                    f"{self.path} holds results of another configuration: `{field}` was "
                    f"{old!r}, now {new!r}; use another output folder or the same settings",
                    field, (old, new))
            # Temporary files of a run killed mid-write (see crdm._io.atomic_write); only
            # the folder's holder may tell them from another process's writes in progress.
            for stale in self.path.rglob(".*.tmp") if exclusive else ():
                stale.unlink(missing_ok=True)
            self.config.update(grown)
            if any(stored["config"].get(key) != value for key, value in grown.items()):
                self.write_json("config.json", {**stored, "config": self.config})
        else:
            record = {"format": _FORMAT, "version": _FORMAT_VERSION, "config": self.config,
                      "provenance": dict(provenance or {})}
            self.write_json("config.json", record)

    def file(self, name: str) -> Path:
        return self.path / name

    def has(self, name: str) -> bool:
        return (self.path / name).is_file()

    def write_json(self, name: str, obj: Any) -> Path:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(obj, indent=1, sort_keys=True, allow_nan=True)
        return atomic_write(target, lambda fh: fh.write(text.encode()))

    def read_json(self, name: str) -> Any:
        try:
            return json.loads((self.path / name).read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"{self.path / name} is unreadable: {exc}") from exc

    def write_text(self, name: str, text: str) -> Path:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write(target, lambda fh: fh.write(text.encode()))

    def write_arrays(self, name: str, **arrays: np.ndarray) -> Path:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return atomic_write(target, lambda fh: np.savez(fh, **arrays))

    def read_arrays(self, name: str) -> dict[str, np.ndarray]:
        return read_npz(self.path / name, "result file")[1]
