"""crdm: learning without gradient descent.

The competitive-refractory dynamics model (CRDM) of George et al. — signals travel along the
edges of a geometric network with conduction delays, nodes are refractory after they fire, STDP
changes weights during a single stimulation — simulated by a Rust engine (``crdm._core``) with a
pure-Python reference (``crdm.reference``) behind the same API.

>>> import crdm
>>> net = crdm.input_recurrent(20, seed=1)
>>> cfg = crdm.RunConfig(duration_ms=50.0, stdp=crdm.StdpParams())
>>> result = crdm.simulate(net, crdm.image_stimulus(image, net, cfg), cfg)  # doctest: +SKIP
"""

from importlib.metadata import PackageNotFoundError, version

from crdm.errors import (
    ChecksumError,
    ConfigMismatchError,
    CrdmError,
    DataError,
    DtypeError,
    IndexOutOfRangeError,
    InternalError,
    MemoryLimitError,
    ShapeError,
    ValidationError,
)
from crdm.input_codes import InputCode
from crdm.network import Network, input_recurrent, load_network, two_block_sbm
from crdm.simulation import (
    RunConfig,
    SimulationResult,
    Simulator,
    StdpParams,
    Stimulus,
    image_stimulus,
    simulate,
)

try:
    __version__ = version("crdm")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "ChecksumError",
    "ConfigMismatchError",
    "CrdmError",
    "DataError",
    "DtypeError",
    "IndexOutOfRangeError",
    "InputCode",
    "InternalError",
    "MemoryLimitError",
    "Network",
    "RunConfig",
    "ShapeError",
    "SimulationResult",
    "Simulator",
    "StdpParams",
    "Stimulus",
    "ValidationError",
    "__version__",
    "image_stimulus",
    "input_recurrent",
    "load_network",
    "simulate",
    "two_block_sbm",
]
