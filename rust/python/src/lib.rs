//! `crdm._core`: the thin PyO3 layer over `crdm-core`. It converts numpy arrays (read-only in,
//! moved out without copying), maps every `CrdmError` variant to its exception in
//! `crdm.errors`, and releases the GIL for every simulation.

use std::collections::HashMap;

use crdm_core::{
    CompiledNetwork, CrdmError, GramRows, Metric, NetworkSpec, RunConfig, RunResult,
    SparseProjection, StdpParams, Stimulus,
};
use numpy::{
    IntoPyArray, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Raises the `crdm.errors` exception that corresponds to `err`. The match is exhaustive:
/// a new core variant does not compile until it has its Python exception.
fn to_pyerr(py: Python<'_>, err: CrdmError) -> PyErr {
    let message = err.to_string();
    let raised = (|| -> PyResult<PyErr> {
        let errors = py.import("crdm.errors")?;
        let (class, field, value): (&str, String, Py<PyAny>) = match err {
            CrdmError::InvalidValue { field, value, .. } => (
                "ValidationError",
                field,
                value.into_pyobject(py)?.into_any().unbind(),
            ),
            CrdmError::ShapeMismatch { field, actual, .. } => (
                "ShapeError",
                field,
                actual.into_pyobject(py)?.into_any().unbind(),
            ),
            CrdmError::IndexOutOfRange { field, index, .. } => (
                "IndexOutOfRangeError",
                field,
                index.into_pyobject(py)?.into_any().unbind(),
            ),
            CrdmError::MemoryLimit { required_bytes, .. } => (
                "MemoryLimitError",
                "memory_limit_bytes".to_string(),
                required_bytes.into_pyobject(py)?.into_any().unbind(),
            ),
        };
        let exc = errors
            .getattr(class)?
            .call1((message.clone(), field, value))?;
        Ok(PyErr::from_value(exc))
    })();
    raised.unwrap_or_else(|import_err| {
        PyRuntimeError::new_err(format!("{message} (and crdm.errors failed: {import_err})"))
    })
}

/// Runs `f` without the GIL and turns a core error, or a panic that escaped the core, into a
/// Python exception. Every long call goes through here.
fn detached<T: Send>(
    py: Python<'_>,
    f: impl FnOnce() -> Result<T, CrdmError> + Send,
) -> PyResult<T> {
    let outcome = py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(to_pyerr(py, err)),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            let errors = py.import("crdm.errors")?;
            let exc = errors
                .getattr("InternalError")?
                .call1((format!("internal error in crdm-core: {what}"),))?;
            Err(PyErr::from_value(exc))
        }
    }
}

fn slice<'a, T: numpy::Element>(
    py: Python<'_>,
    field: &str,
    array: &'a PyReadonlyArray1<'_, T>,
) -> PyResult<&'a [T]> {
    array.as_slice().map_err(|_| not_contiguous(py, field))
}

/// The values of a C-contiguous (row-major) 2-D array. `as_slice` alone also accepts a
/// Fortran-ordered one, whose values it would hand over in the wrong order.
fn row_major<'a, T: numpy::Element>(
    py: Python<'_>,
    field: &str,
    array: &'a PyReadonlyArray2<'_, T>,
) -> PyResult<&'a [T]> {
    if !array.is_c_contiguous() {
        return Err(not_contiguous(py, field));
    }
    array.as_slice().map_err(|_| not_contiguous(py, field))
}

/// The error for an array argument that is not C-contiguous.
fn not_contiguous(py: Python<'_>, field: &str) -> PyErr {
    to_pyerr(
        py,
        CrdmError::InvalidValue {
            field: field.to_string(),
            value: "non-contiguous array".to_string(),
            reason: "must be C-contiguous".to_string(),
        },
    )
}

/// A network compiled for one tick length; run it on any number of stimuli.
#[pyclass(module = "crdm._core", frozen)]
struct Engine {
    net: CompiledNetwork,
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (refractory_ms, threshold, tau_m_ms, edge_src, edge_dst, weights, length_um, velocity_m_s, plastic, dt_ms))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        refractory_ms: PyReadonlyArray1<'_, f64>,
        threshold: PyReadonlyArray1<'_, f64>,
        tau_m_ms: PyReadonlyArray1<'_, f64>,
        edge_src: PyReadonlyArray1<'_, i64>,
        edge_dst: PyReadonlyArray1<'_, i64>,
        weights: PyReadonlyArray1<'_, f64>,
        length_um: PyReadonlyArray1<'_, f64>,
        velocity_m_s: PyReadonlyArray1<'_, f64>,
        plastic: PyReadonlyArray1<'_, bool>,
        dt_ms: f64,
    ) -> PyResult<Self> {
        let spec = NetworkSpec {
            n_nodes: refractory_ms.len(),
            refractory_ms: slice(py, "refractory_ms", &refractory_ms)?,
            threshold: slice(py, "threshold", &threshold)?,
            tau_m_ms: slice(py, "tau_m_ms", &tau_m_ms)?,
            edge_src: slice(py, "edge_src", &edge_src)?,
            edge_dst: slice(py, "edge_dst", &edge_dst)?,
            weights: slice(py, "weights", &weights)?,
            length_um: slice(py, "length_um", &length_um)?,
            velocity_m_s: slice(py, "velocity_m_s", &velocity_m_s)?,
            plastic: slice(py, "plastic", &plastic)?,
        };
        let net = detached(py, || CompiledNetwork::new(&spec, dt_ms))?;
        Ok(Engine { net })
    }

    #[getter]
    fn n_nodes(&self) -> usize {
        self.net.n_nodes()
    }

    #[getter]
    fn n_edges(&self) -> usize {
        self.net.n_edges()
    }

    #[getter]
    fn dt_ms(&self) -> f64 {
        self.net.dt_ms()
    }

    /// Bytes the compiled network holds per edge.
    #[getter]
    fn bytes_per_edge(&self) -> f64 {
        self.net.bytes_per_edge()
    }

    /// Latency of every edge in ticks (a copy).
    fn delay_ticks<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<u32>> {
        self.net.delay_ticks().into_pyarray(py)
    }

    /// Refractory period of every node in ticks (a copy).
    fn refractory_ticks<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<u32>> {
        self.net.refractory_ticks().to_vec().into_pyarray(py)
    }

    /// Upper bound, in bytes, of what the delay ring and the recorders of such a run could hold
    /// (with STDP or without: it decides which edges are fixed-weight; its values do not
    /// matter).
    #[pyo3(signature = (n_ticks, *, stdp, record_raster, record_causal, record_final_weights, n_snapshots, n_snapshot_edges))]
    #[allow(clippy::too_many_arguments)]
    fn recording_bound_bytes(
        &self,
        n_ticks: u64,
        stdp: bool,
        record_raster: bool,
        record_causal: bool,
        record_final_weights: bool,
        n_snapshots: usize,
        n_snapshot_edges: usize,
    ) -> u64 {
        let cfg = RunConfig {
            n_ticks,
            stdp: stdp.then_some(StdpParams {
                a_plus: 0.0,
                tau_plus_ms: 1.0,
                a_minus: 0.0,
                tau_minus_ms: 1.0,
                w_min: 0.0,
                w_max: 0.0,
            }),
            record_raster,
            record_causal,
            record_final_weights,
            snapshot_ticks: vec![0; n_snapshots],
            snapshot_edges: vec![0; n_snapshot_edges],
            memory_limit_bytes: u64::MAX,
        };
        self.net.recording_bound_bytes(&cfg)
    }

    /// Simulates one stimulus; returns a dict of numpy arrays and counters.
    #[pyo3(signature = (stimulus_nodes, stimulus_ticks, n_ticks, *, stdp, record_raster, record_causal, record_final_weights, snapshot_ticks, snapshot_edges, memory_limit_bytes))]
    #[allow(clippy::too_many_arguments)]
    fn run<'py>(
        &self,
        py: Python<'py>,
        stimulus_nodes: PyReadonlyArray1<'_, i64>,
        stimulus_ticks: PyReadonlyArray1<'_, i64>,
        n_ticks: u64,
        stdp: Option<StdpTuple>,
        record_raster: bool,
        record_causal: bool,
        record_final_weights: bool,
        snapshot_ticks: Vec<u64>,
        snapshot_edges: PyReadonlyArray1<'_, i64>,
        memory_limit_bytes: u64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let cfg = run_config(
            py,
            n_ticks,
            stdp,
            Recorders {
                raster: record_raster,
                causal: record_causal,
                final_weights: record_final_weights,
            },
            snapshot_ticks,
            &snapshot_edges,
            memory_limit_bytes,
        )?;
        let stimulus = Stimulus {
            nodes: slice(py, "stimulus_nodes", &stimulus_nodes)?,
            ticks: slice(py, "stimulus_ticks", &stimulus_ticks)?,
        };
        let net = &self.net;
        let result = detached(py, || net.run(&stimulus, &cfg))?;
        result_dict(py, result)
    }

    /// Simulates many stimuli on `n_threads` threads; returns one dict per stimulus, in order.
    #[pyo3(signature = (stimulus_nodes, stimulus_ticks, n_ticks, *, stdp, record_raster, record_causal, record_final_weights, snapshot_ticks, snapshot_edges, memory_limit_bytes, n_threads))]
    #[allow(clippy::too_many_arguments)]
    fn run_batch<'py>(
        &self,
        py: Python<'py>,
        stimulus_nodes: Vec<PyReadonlyArray1<'py, i64>>,
        stimulus_ticks: Vec<PyReadonlyArray1<'py, i64>>,
        n_ticks: u64,
        stdp: Option<StdpTuple>,
        record_raster: bool,
        record_causal: bool,
        record_final_weights: bool,
        snapshot_ticks: Vec<u64>,
        snapshot_edges: PyReadonlyArray1<'_, i64>,
        memory_limit_bytes: u64,
        n_threads: usize,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        if stimulus_nodes.len() != stimulus_ticks.len() {
            return Err(to_pyerr(
                py,
                CrdmError::ShapeMismatch {
                    field: "stimulus_ticks".to_string(),
                    expected: stimulus_nodes.len(),
                    actual: stimulus_ticks.len(),
                },
            ));
        }
        let cfg = run_config(
            py,
            n_ticks,
            stdp,
            Recorders {
                raster: record_raster,
                causal: record_causal,
                final_weights: record_final_weights,
            },
            snapshot_ticks,
            &snapshot_edges,
            memory_limit_bytes,
        )?;
        let stimuli = stimulus_nodes
            .iter()
            .zip(&stimulus_ticks)
            .map(|(nodes, ticks)| {
                Ok(Stimulus {
                    nodes: slice(py, "stimulus_nodes", nodes)?,
                    ticks: slice(py, "stimulus_ticks", ticks)?,
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        let net = &self.net;
        let results = detached(py, || net.run_batch(&stimuli, &cfg, n_threads))?;
        results.into_iter().map(|r| result_dict(py, r)).collect()
    }
}

/// The on/off recorders of a run, as the keyword arguments name them.
struct Recorders {
    raster: bool,
    causal: bool,
    final_weights: bool,
}

/// The core's run configuration from the keyword arguments `run` and `run_batch` share.
fn run_config(
    py: Python<'_>,
    n_ticks: u64,
    stdp: Option<StdpTuple>,
    recorders: Recorders,
    snapshot_ticks: Vec<u64>,
    snapshot_edges: &PyReadonlyArray1<'_, i64>,
    memory_limit_bytes: u64,
) -> PyResult<RunConfig> {
    Ok(RunConfig {
        n_ticks,
        stdp: stdp.map(stdp_params),
        record_raster: recorders.raster,
        record_causal: recorders.causal,
        record_final_weights: recorders.final_weights,
        snapshot_ticks,
        snapshot_edges: slice(py, "snapshot_edges", snapshot_edges)?.to_vec(),
        memory_limit_bytes,
    })
}

/// `(a_plus, tau_plus_ms, a_minus, tau_minus_ms, w_min, w_max)` as Python passes it.
type StdpTuple = (f64, f64, f64, f64, f64, f64);

fn stdp_params(
    (a_plus, tau_plus_ms, a_minus, tau_minus_ms, w_min, w_max): StdpTuple,
) -> StdpParams {
    StdpParams {
        a_plus,
        tau_plus_ms,
        a_minus,
        tau_minus_ms,
        w_min,
        w_max,
    }
}

/// Moves the vectors of `result` into numpy arrays (no copy) inside a dict.
fn result_dict(py: Python<'_>, r: RunResult) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("spike_nodes", r.spike_node.into_pyarray(py))?;
    d.set_item("spike_ticks", r.spike_tick.into_pyarray(py))?;
    d.set_item("spike_forced", r.spike_forced.into_pyarray(py))?;
    d.set_item("cause_offsets", r.cause_ptr.into_pyarray(py))?;
    d.set_item("cause_edges", r.cause_edge.into_pyarray(py))?;
    d.set_item("cause_ticks", r.cause_tick.into_pyarray(py))?;
    d.set_item("cause_weights", r.cause_weight.into_pyarray(py))?;
    d.set_item("snapshots", r.snapshots.into_pyarray(py))?;
    d.set_item("final_weights", r.final_weights.into_pyarray(py))?;
    d.set_item("spike_counts", r.spike_count.into_pyarray(py))?;
    let s = r.stats;
    let stats: HashMap<&str, u64> = HashMap::from([
        ("n_spikes", s.n_spikes),
        ("n_forced", s.n_forced),
        ("n_stimulus_dropped", s.n_stimulus_dropped),
        ("n_arrivals", s.n_arrivals),
        ("n_lost", s.n_lost),
        ("n_stdp_updates", s.n_stdp_updates),
    ]);
    d.set_item("stats", stats)?;
    Ok(d)
}

/// Candidate indices and distances, as `gram_candidates` returns them.
type Candidates<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f64>>);

/// The `n_candidates` nearest other points of each listed Gram row, nearest first, ties to
/// the smaller index: `(indices, distances)`, each `(len(rows), n_candidates)`.
#[pyfunction]
#[pyo3(signature = (gram, rows, points, diag, metric, *, offset_dot, offset_sq, n_candidates, n_threads))]
#[allow(clippy::too_many_arguments)]
fn gram_candidates<'py>(
    py: Python<'py>,
    gram: PyReadonlyArray2<'_, f64>,
    rows: PyReadonlyArray1<'_, i64>,
    points: PyReadonlyArray1<'_, i64>,
    diag: PyReadonlyArray1<'_, f64>,
    metric: &str,
    offset_dot: Option<PyReadonlyArray1<'_, f64>>,
    offset_sq: f64,
    n_candidates: usize,
    n_threads: usize,
) -> PyResult<Candidates<'py>> {
    let metric = match metric {
        "euclidean" => Metric::Euclidean,
        "cosine" => Metric::Cosine,
        other => {
            return Err(to_pyerr(
                py,
                CrdmError::InvalidValue {
                    field: "metric".to_string(),
                    value: other.to_string(),
                    reason: "'euclidean' or 'cosine'".to_string(),
                },
            ))
        }
    };
    let n_points = gram.shape()[1];
    let gram = row_major(py, "gram", &gram)?;
    let offset = match &offset_dot {
        Some(dot) => Some((slice(py, "offset_dot", dot)?, offset_sq)),
        None => None,
    };
    let input = GramRows {
        gram,
        n_points,
        rows: slice(py, "rows", &rows)?,
        points: slice(py, "points", &points)?,
        diag: slice(py, "diag", &diag)?,
        offset,
    };
    let q = input.rows.len();
    let (idx, dist) = detached(py, || {
        crdm_core::gram_candidates(&input, metric, n_candidates, n_threads)
    })?;
    let shape = [q, n_candidates];
    Ok((
        idx.into_pyarray(py).reshape(shape)?,
        dist.into_pyarray(py).reshape(shape)?,
    ))
}

/// A sparse matrix in compressed-row form (scipy's CSR arrays), checked once, that projects
/// weight changes: `changes(snapshots, w0, first=f)` is `P·(snapshots[s, f:f + n_cols] − w0)`
/// for every row `s`, as `float32`, bit for bit scipy's product and cast.
#[pyclass(module = "crdm._core", frozen, name = "SparseProjection")]
struct PySparseProjection {
    inner: SparseProjection,
}

#[pymethods]
impl PySparseProjection {
    #[new]
    fn new(
        py: Python<'_>,
        n_rows: usize,
        n_cols: usize,
        indptr: PyReadonlyArray1<'_, i64>,
        indices: PyReadonlyArray1<'_, i64>,
        data: PyReadonlyArray1<'_, f64>,
    ) -> PyResult<Self> {
        let (indptr, indices, data) = (
            slice(py, "indptr", &indptr)?,
            slice(py, "indices", &indices)?,
            slice(py, "data", &data)?,
        );
        let inner = detached(py, || {
            SparseProjection::new(n_rows, n_cols, indptr, indices, data)
        })?;
        Ok(PySparseProjection { inner })
    }

    #[getter]
    fn shape(&self) -> (usize, usize) {
        (self.inner.n_rows(), self.inner.n_cols())
    }

    #[pyo3(signature = (snapshots, w0, *, first = 0))]
    fn changes<'py>(
        &self,
        py: Python<'py>,
        snapshots: PyReadonlyArray2<'_, f64>,
        w0: PyReadonlyArray1<'_, f64>,
        first: usize,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let (n_snapshots, row_len) = (snapshots.shape()[0], snapshots.shape()[1]);
        let snapshots = row_major(py, "snapshots", &snapshots)?;
        let w0 = slice(py, "w0", &w0)?;
        let out = detached(py, || self.inner.changes(snapshots, row_len, first, w0))?;
        out.into_pyarray(py)
            .reshape([n_snapshots, self.inner.n_rows()])
    }
}

/// Raises a Rust panic inside the GIL-released helper, to test that it becomes
/// `crdm.errors.InternalError` rather than aborting the interpreter.
#[pyfunction]
fn _trigger_panic(py: Python<'_>) -> PyResult<()> {
    detached(py, || -> Result<(), CrdmError> {
        panic!("deliberate panic for testing")
    })
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_class::<PySparseProjection>()?;
    m.add_function(wrap_pyfunction!(gram_candidates, m)?)?;
    m.add_function(wrap_pyfunction!(_trigger_panic, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
