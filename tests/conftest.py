"""Shared fixtures: every simulation test runs on both backends."""

from __future__ import annotations

import os
from pathlib import Path

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
def mnist_dir() -> Path:
    """The MNIST directory CI points at (``CRDM_DATA_DIR``, else ``../shared/data/mnist``)."""
    candidates = [os.environ.get("CRDM_DATA_DIR"),
                  str(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist")]
    for c in candidates:
        if c and (Path(c) / "t10k-images-idx3-ubyte.gz").is_file():
            return Path(c)
    pytest.skip("MNIST not available: set CRDM_DATA_DIR")
