"""Type stubs of the compiled module ``crdm._core`` (``rust/python/src/``)."""

from typing import Protocol, TypedDict, final

import numpy as np
import numpy.typing as npt
from typing_extensions import Self

__all__ = ["Engine", "SparseProjection", "__version__", "_trigger_panic", "gram_candidates"]

__version__: str

class _StdpParams(Protocol):
    """Read by name: ``crdm.StdpParams`` or any object with these attributes."""

    @property
    def a_plus(self) -> float: ...
    @property
    def tau_plus_ms(self) -> float: ...
    @property
    def a_minus(self) -> float: ...
    @property
    def tau_minus_ms(self) -> float: ...
    @property
    def w_min(self) -> float: ...
    @property
    def w_max(self) -> float: ...

class _RunStats(TypedDict):
    n_spikes: int
    n_forced: int
    n_stimulus_dropped: int
    n_arrivals: int
    n_lost: int
    n_stdp_updates: int

class _RunOutput(TypedDict):
    spike_nodes: npt.NDArray[np.uint32]
    spike_ticks: npt.NDArray[np.uint32]
    spike_forced: npt.NDArray[np.bool_]
    cause_offsets: npt.NDArray[np.uint64]
    cause_edges: npt.NDArray[np.uint32]
    cause_ticks: npt.NDArray[np.uint32]
    cause_weights: npt.NDArray[np.float64]
    snapshots: npt.NDArray[np.float64]
    final_weights: npt.NDArray[np.float64]
    spike_counts: npt.NDArray[np.uint32]
    stats: _RunStats

@final
class Engine:
    """A network compiled for one tick length. Errors raise ``crdm.errors`` classes."""

    def __new__(
        cls,
        refractory_ms: npt.NDArray[np.float64],
        threshold: npt.NDArray[np.float64],
        tau_m_ms: npt.NDArray[np.float64],
        edge_src: npt.NDArray[np.int64],
        edge_dst: npt.NDArray[np.int64],
        weights: npt.NDArray[np.float64],
        length_um: npt.NDArray[np.float64],
        velocity_m_s: npt.NDArray[np.float64],
        plastic: npt.NDArray[np.bool_],
        dt_ms: float,
    ) -> Self: ...
    @property
    def n_nodes(self) -> int: ...
    @property
    def n_edges(self) -> int: ...
    @property
    def dt_ms(self) -> float: ...
    @property
    def bytes_per_edge(self) -> float: ...
    def recording_bound_bytes(
        self,
        n_ticks: int,
        *,
        stdp: _StdpParams | None,
        record_raster: bool,
        record_causal: bool,
        record_final_weights: bool,
        snapshot_ticks: list[int],
        snapshot_edges: npt.NDArray[np.int64],
    ) -> int: ...
    def run(
        self,
        stimulus_nodes: npt.NDArray[np.int64],
        stimulus_ticks: npt.NDArray[np.int64],
        n_ticks: int,
        *,
        stdp: _StdpParams | None,
        record_raster: bool,
        record_causal: bool,
        record_final_weights: bool,
        snapshot_ticks: list[int],
        snapshot_edges: npt.NDArray[np.int64],
        memory_limit_bytes: int,
    ) -> _RunOutput: ...

    def run_batch(
        self,
        stimulus_nodes: list[npt.NDArray[np.int64]],
        stimulus_ticks: list[npt.NDArray[np.int64]],
        n_ticks: int,
        *,
        stdp: _StdpParams | None,
        record_raster: bool,
        record_causal: bool,
        record_final_weights: bool,
        snapshot_ticks: list[int],
        snapshot_edges: npt.NDArray[np.int64],
        memory_limit_bytes: int,
        n_threads: int,
    ) -> list[_RunOutput]: ...

@final
class SparseProjection:
    """A sparse matrix in compressed-row form (scipy's CSR arrays, checked once) that
    projects weight changes. Errors raise ``crdm.errors`` classes."""

    def __new__(
        cls,
        n_rows: int,
        n_cols: int,
        indptr: npt.NDArray[np.int64],
        indices: npt.NDArray[np.int64],
        data: npt.NDArray[np.float64],
    ) -> Self: ...
    @property
    def shape(self) -> tuple[int, int]: ...
    def changes(
        self,
        snapshots: npt.NDArray[np.float64],
        w0: npt.NDArray[np.float64],
        *,
        first: int = 0,
    ) -> npt.NDArray[np.float32]:
        """``P·(snapshots[s, first:first + n_cols] − w0)`` for every row ``s`` of the
        C-contiguous ``snapshots``, as ``(n_snapshots, n_rows)`` float32: bit for bit
        ``(matrix @ (row - w0)).astype(np.float32)`` with scipy. The GIL is released."""

def _trigger_panic() -> None: ...

def gram_candidates(
    gram: npt.NDArray[np.float64],
    rows: npt.NDArray[np.int64],
    points: npt.NDArray[np.int64],
    diag: npt.NDArray[np.float64],
    metric: str,
    *,
    offset_dot: npt.NDArray[np.float64] | None,
    offset_sq: float,
    n_candidates: int,
    n_threads: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The ``n_candidates`` nearest other points of point ``points[k]``, whose inner products
    are row ``rows[k]`` of ``gram`` (``(r, n)``): indices and distances, each
    ``(len(rows), n_candidates)``, nearest first, ties to the smaller index. The distances are
    bit for bit those of ``crdm.protocol.gram_distances``."""
