"""Small IDX data sets that tests write themselves: every command must run without MNIST."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in array.shape)
    return header + array.astype(np.uint8).tobytes()


def bars(n: int, shape: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images of ten classes: class ``c`` is a bright bar at row ``c`` (scaled to the
    image), with noise, so that a k-NN tells them apart."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    images = rng.integers(0, 40, size=(n, *shape)).astype(np.uint8)
    for k, c in enumerate(labels):
        row = c * (shape[0] - 1) // 9
        images[k, row, :] = 220
    return images, labels.astype(np.uint8)


def write_set(directory: Path, shape: tuple[int, int] = (28, 28), *, n_train: int = 80,
              n_test: int = 60, names: tuple[str, str] = ("train", "t10k")) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in ((names[0], n_train, 1), (names[1], n_test, 2)):
        images, labels = bars(n, shape, seed)
        (directory / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            gzip.compress(idx_bytes(images)))
        (directory / f"{prefix}-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    return directory
