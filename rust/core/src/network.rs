//! Network description, validation and compilation into the layout the engine runs on.
//!
//! Units: positions and path lengths in µm, conduction velocities in m/s (1 m/s = 1 µm/µs =
//! 1000 µm/ms), times in ms, `dt_ms` the tick length. See `docs/model.md`.

use crate::error::{check_each, check_indices, check_len, CrdmError, Result};

/// Longest latency or refractory period, in ticks, that the engine accepts. Ticks are stored as
/// `u32` in the recorders; this bound keeps every `tick + delay` computation inside `u64` and
/// rejects absurd values (a latency of years) up front instead of allocating for them.
pub const MAX_TICKS: u64 = (u32::MAX as u64) / 2;

/// Converts a duration in ms to whole ticks: `floor(ms / dt_ms + 0.5)`, at least 1.
///
/// Round-half-up (not banker's rounding) is part of the model definition; the Python
/// reference computes exactly the same expression.
pub fn ms_to_ticks(ms: f64, dt_ms: f64) -> f64 {
    ((ms / dt_ms) + 0.5).floor().max(1.0)
}

/// Latency in ms of an edge of length `length_um` (µm) at `velocity_m_s` (m/s).
pub fn latency_ms(length_um: f64, velocity_m_s: f64) -> f64 {
    length_um / (velocity_m_s * 1000.0)
}

/// A network as the user describes it: borrowed arrays, one entry per node or per edge.
#[derive(Debug, Clone, Copy)]
pub struct NetworkSpec<'a> {
    pub n_nodes: usize,
    /// Refractory period R_i (ms), finite and > 0.
    pub refractory_ms: &'a [f64],
    /// Firing threshold θ_i, finite and > 0.
    pub threshold: &'a [f64],
    /// Summation time constant τ_m,i (ms), > 0; `f64::INFINITY` makes a pure integrator.
    pub tau_m_ms: &'a [f64],
    pub edge_src: &'a [i64],
    pub edge_dst: &'a [i64],
    /// Signed weights w_ij, finite.
    pub weights: &'a [f64],
    /// Path lengths d_ij (µm), finite and >= 0.
    pub length_um: &'a [f64],
    /// Conduction velocities v_ij (m/s), finite and > 0.
    pub velocity_m_s: &'a [f64],
    /// Whether STDP acts on each edge.
    pub plastic: &'a [bool],
}

/// A validated network laid out for simulation at a fixed tick length.
///
/// Out-edges are stored in CSR form grouped by source and, within a source, in ascending edge
/// id: that order, together with firing in ascending node id, fixes the canonical order in
/// which arrivals of one tick are summed.
#[derive(Debug, Clone)]
pub struct CompiledNetwork {
    pub(crate) dt_ms: f64,
    pub(crate) n_nodes: usize,
    pub(crate) refractory_ticks: Vec<u32>,
    pub(crate) threshold: Vec<f64>,
    pub(crate) tau_m_ms: Vec<f64>,
    pub(crate) out_ptr: Vec<usize>,
    pub(crate) out_edge: Vec<u32>,
    pub(crate) edge_dst: Vec<u32>,
    pub(crate) delay_ticks: Vec<u32>,
    pub(crate) weights: Vec<f64>,
    pub(crate) plastic: Vec<bool>,
    /// Plastic in-edges of every node (CSR), for potentiation when the node fires.
    pub(crate) plastic_in_ptr: Vec<usize>,
    pub(crate) plastic_in_edge: Vec<u32>,
    pub(crate) max_delay_ticks: u32,
    /// How many nodes are the target of a fixed-weight edge: in a run without STDP (every
    /// edge) and with STDP (non-plastic edges).
    pub(crate) n_fixed_targets: [usize; 2],
    /// The edges are listed by source (`out_edge` is `0, 1, 2, …`): a node's out-edges are
    /// then a contiguous range of the per-edge arrays.
    pub(crate) out_in_id_order: bool,
    /// Plastic out-edges of every node.
    pub(crate) n_plastic_out: Vec<u32>,
}

fn ticks_checked(field: String, ms: f64, dt_ms: f64) -> Result<u32> {
    let ticks = ms_to_ticks(ms, dt_ms);
    if ticks > MAX_TICKS as f64 {
        return Err(CrdmError::invalid(
            field,
            ms,
            format!("{ticks} ticks of {dt_ms} ms is more than the limit of {MAX_TICKS} ticks"),
        ));
    }
    Ok(ticks as u32)
}

/// Builds a CSR index: for every key in `0..n`, the positions (as `u32` ids) with that key,
/// in ascending id order.
fn csr(n: usize, keys: impl Iterator<Item = (usize, u32)> + Clone) -> (Vec<usize>, Vec<u32>) {
    let mut ptr = vec![0usize; n + 1];
    for (k, _) in keys.clone() {
        ptr[k + 1] += 1;
    }
    for i in 0..n {
        ptr[i + 1] += ptr[i];
    }
    let mut fill = ptr.clone();
    let mut items = vec![0u32; ptr[n]];
    for (k, id) in keys {
        items[fill[k]] = id;
        fill[k] += 1;
    }
    (ptr, items)
}

impl CompiledNetwork {
    /// Validates `spec` and compiles it for ticks of `dt_ms`.
    pub fn new(spec: &NetworkSpec<'_>, dt_ms: f64) -> Result<Self> {
        if !(dt_ms.is_finite() && dt_ms > 0.0) {
            return Err(CrdmError::invalid("dt_ms", dt_ms, "must be finite and > 0"));
        }
        let n = spec.n_nodes;
        if n == 0 || n as u64 > u32::MAX as u64 {
            return Err(CrdmError::invalid(
                "n_nodes",
                n,
                "must be between 1 and 4294967295",
            ));
        }
        check_len("refractory_ms", spec.refractory_ms, n)?;
        check_len("threshold", spec.threshold, n)?;
        check_len("tau_m_ms", spec.tau_m_ms, n)?;
        check_each(
            "refractory_ms",
            spec.refractory_ms,
            |v| v.is_finite() && v > 0.0,
            "must be finite and > 0",
        )?;
        check_each(
            "threshold",
            spec.threshold,
            |v| v.is_finite() && v > 0.0,
            "must be finite and > 0",
        )?;
        check_each(
            "tau_m_ms",
            spec.tau_m_ms,
            |v| v > 0.0,
            "must be > 0 (inf for a pure integrator)",
        )?;

        let m = spec.edge_src.len();
        if m as u64 >= u32::MAX as u64 {
            return Err(CrdmError::invalid("edge_src", m, "too many edges"));
        }
        check_len("edge_dst", spec.edge_dst, m)?;
        check_len("weights", spec.weights, m)?;
        check_len("length_um", spec.length_um, m)?;
        check_len("velocity_m_s", spec.velocity_m_s, m)?;
        check_len("plastic", spec.plastic, m)?;
        check_indices("edge_src", spec.edge_src, n as u64)?;
        check_indices("edge_dst", spec.edge_dst, n as u64)?;
        check_each("weights", spec.weights, f64::is_finite, "must be finite")?;
        check_each(
            "length_um",
            spec.length_um,
            |v| v.is_finite() && v >= 0.0,
            "must be finite and >= 0",
        )?;
        check_each(
            "velocity_m_s",
            spec.velocity_m_s,
            |v| v.is_finite() && v > 0.0,
            "must be finite and > 0",
        )?;

        let refractory_ticks = spec
            .refractory_ms
            .iter()
            .enumerate()
            .map(|(i, &r)| ticks_checked(format!("refractory_ms[{i}]"), r, dt_ms))
            .collect::<Result<Vec<u32>>>()?;
        let delay_ticks = spec
            .length_um
            .iter()
            .zip(spec.velocity_m_s)
            .enumerate()
            .map(|(e, (&d, &v))| {
                let latency = latency_ms(d, v);
                if !latency.is_finite() {
                    return Err(CrdmError::invalid(
                        format!("velocity_m_s[{e}]"),
                        v,
                        format!("latency {d} µm / {v} m/s is not finite"),
                    ));
                }
                ticks_checked(format!("length_um[{e}]"), latency, dt_ms)
            })
            .collect::<Result<Vec<u32>>>()?;

        let edge_dst: Vec<u32> = spec.edge_dst.iter().map(|&j| j as u32).collect();
        let (out_ptr, out_edge) = csr(
            n,
            spec.edge_src
                .iter()
                .enumerate()
                .map(|(e, &i)| (i as usize, e as u32)),
        );
        let (plastic_in_ptr, plastic_in_edge) = csr(
            n,
            spec.edge_dst
                .iter()
                .enumerate()
                .filter(|&(e, _)| spec.plastic[e])
                .map(|(e, &j)| (j as usize, e as u32)),
        );
        let max_delay_ticks = delay_ticks.iter().copied().max().unwrap_or(1);
        let mut n_plastic_out = vec![0u32; n];
        for (e, &i) in spec.edge_src.iter().enumerate() {
            n_plastic_out[i as usize] += u32::from(spec.plastic[e]);
        }
        let out_in_id_order = out_edge.iter().enumerate().all(|(p, &e)| p == e as usize);
        let mut n_fixed_targets = [0usize; 2];
        for (stdp_on, count) in n_fixed_targets.iter_mut().enumerate() {
            let mut is_target = vec![false; n];
            for (e, &j) in spec.edge_dst.iter().enumerate() {
                is_target[j as usize] |= stdp_on == 0 || !spec.plastic[e];
            }
            *count = is_target.iter().filter(|&&b| b).count();
        }
        Ok(CompiledNetwork {
            dt_ms,
            n_nodes: n,
            refractory_ticks,
            threshold: spec.threshold.to_vec(),
            tau_m_ms: spec.tau_m_ms.to_vec(),
            out_ptr,
            out_edge,
            edge_dst,
            delay_ticks,
            weights: spec.weights.to_vec(),
            plastic: spec.plastic.to_vec(),
            plastic_in_ptr,
            plastic_in_edge,
            max_delay_ticks,
            n_fixed_targets,
            out_in_id_order,
            n_plastic_out,
        })
    }

    pub fn n_nodes(&self) -> usize {
        self.n_nodes
    }

    pub fn n_edges(&self) -> usize {
        self.edge_dst.len()
    }

    pub fn dt_ms(&self) -> f64 {
        self.dt_ms
    }

    /// Latency of every edge in ticks.
    pub fn delay_ticks(&self) -> &[u32] {
        &self.delay_ticks
    }

    /// Refractory period of every node in ticks.
    pub fn refractory_ticks(&self) -> &[u32] {
        &self.refractory_ticks
    }
}
