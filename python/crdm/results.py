"""Result folders that a long run fills piece by piece and a rerun continues.

A folder holds ``config.json`` (the run's configuration, the crdm version, data checksums) and
the pieces the run has finished (``.npz`` arrays, ``.json`` records), each written atomically,
so a run killed at any moment leaves only whole files. Opening a folder with a configuration
other than the stored one raises :class:`crdm.errors.ConfigMismatchError` instead of mixing
results of different runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from crdm._io import atomic_write, check_header, read_npz
from crdm.errors import ConfigMismatchError, DataError

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
    sorted union, which :attr:`config` then holds.
    """

    def __init__(self, path: str | Path, config: Mapping[str, Any], *,
                 provenance: Mapping[str, Any] | None = None,
                 growable: tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        self.config = json.loads(json.dumps(dict(config)))
        self.path.mkdir(parents=True, exist_ok=True)
        manifest = self.path / "config.json"
        if manifest.exists():
            try:
                stored = json.loads(manifest.read_text())
            except (OSError, ValueError) as exc:
                raise DataError(f"{manifest} is not a crdm result manifest: {exc}") from exc
            check_header(stored, path=manifest, what="crdm result manifest", fmt=_FORMAT,
                         version=_FORMAT_VERSION)
            stored_config = dict(stored.get("config") or {})
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
            # Temporary files of a run killed mid-write (see crdm._io.atomic_write).
            for stale in self.path.rglob(".*.tmp"):
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
