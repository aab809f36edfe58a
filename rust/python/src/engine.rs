//! `crdm._core.Engine`: a compiled network and its runs. Arguments arrive by name (the run
//! configuration's keywords, STDP parameters as the attributes of `crdm.StdpParams`), results
//! leave as dicts of numpy arrays that own the core's vectors.

use std::collections::HashMap;

use crdm_core::{CrdmError, Engine, NetworkSpec, RunConfig, RunResult, StdpParams, Stimulus};
use numpy::{IntoPyArray, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::slice;
use crate::errors::{detached, to_pyerr};

/// A network compiled for one tick length; run it on any number of stimuli.
#[pyclass(module = "crdm._core", frozen, name = "Engine")]
pub(crate) struct PyEngine {
    inner: Engine,
}

/// The STDP parameters of a run, read by name from `crdm.StdpParams` (or any object with
/// these attributes).
#[derive(FromPyObject)]
struct StdpArg {
    a_plus: f64,
    tau_plus_ms: f64,
    a_minus: f64,
    tau_minus_ms: f64,
    w_min: f64,
    w_max: f64,
}

impl From<StdpArg> for StdpParams {
    fn from(p: StdpArg) -> Self {
        StdpParams {
            a_plus: p.a_plus,
            tau_plus_ms: p.tau_plus_ms,
            a_minus: p.a_minus,
            tau_minus_ms: p.tau_minus_ms,
            w_min: p.w_min,
            w_max: p.w_max,
        }
    }
}

/// The keyword arguments that `run`, `run_batch` and `recording_bound_bytes` share.
#[allow(clippy::too_many_arguments)]
fn run_config(
    py: Python<'_>,
    n_ticks: u64,
    stdp: Option<StdpArg>,
    record_raster: bool,
    record_causal: bool,
    record_final_weights: bool,
    snapshot_ticks: Vec<u64>,
    snapshot_edges: &PyReadonlyArray1<'_, i64>,
    memory_limit_bytes: u64,
) -> PyResult<RunConfig> {
    Ok(RunConfig {
        n_ticks,
        stdp: stdp.map(StdpParams::from),
        record_raster,
        record_causal,
        record_final_weights,
        snapshot_ticks,
        snapshot_edges: slice(py, "snapshot_edges", snapshot_edges)?.to_vec(),
        memory_limit_bytes,
    })
}

#[pymethods]
impl PyEngine {
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
        let inner = detached(py, || Engine::compile(&spec, dt_ms))?;
        Ok(PyEngine { inner })
    }

    #[getter]
    fn n_nodes(&self) -> usize {
        self.inner.network().n_nodes()
    }

    #[getter]
    fn n_edges(&self) -> usize {
        self.inner.network().n_edges()
    }

    #[getter]
    fn dt_ms(&self) -> f64 {
        self.inner.network().dt_ms()
    }

    /// Bytes the compiled network holds per edge.
    #[getter]
    fn bytes_per_edge(&self) -> f64 {
        self.inner.network().bytes_per_edge()
    }

    /// Upper bound, in bytes, of what the delay rings, drive cells and recorders of one such
    /// run could hold: the bound `run` checks against `memory_limit_bytes`.
    #[pyo3(signature = (n_ticks, *, stdp, record_raster, record_causal, record_final_weights, snapshot_ticks, snapshot_edges))]
    #[allow(clippy::too_many_arguments)]
    fn recording_bound_bytes(
        &self,
        py: Python<'_>,
        n_ticks: u64,
        stdp: Option<StdpArg>,
        record_raster: bool,
        record_causal: bool,
        record_final_weights: bool,
        snapshot_ticks: Vec<u64>,
        snapshot_edges: PyReadonlyArray1<'_, i64>,
    ) -> PyResult<u64> {
        let cfg = run_config(
            py,
            n_ticks,
            stdp,
            record_raster,
            record_causal,
            record_final_weights,
            snapshot_ticks,
            &snapshot_edges,
            u64::MAX,
        )?;
        Ok(self.inner.recording_bound_bytes(&cfg))
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
        stdp: Option<StdpArg>,
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
            record_raster,
            record_causal,
            record_final_weights,
            snapshot_ticks,
            &snapshot_edges,
            memory_limit_bytes,
        )?;
        let stimulus = Stimulus {
            nodes: slice(py, "stimulus_nodes", &stimulus_nodes)?,
            ticks: slice(py, "stimulus_ticks", &stimulus_ticks)?,
        };
        let engine = &self.inner;
        let result = detached(py, || engine.run(&stimulus, &cfg))?;
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
        stdp: Option<StdpArg>,
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
            record_raster,
            record_causal,
            record_final_weights,
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
        let engine = &self.inner;
        let results = detached(py, || engine.run_batch(&stimuli, &cfg, n_threads))?;
        results.into_iter().map(|r| result_dict(py, r)).collect()
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
