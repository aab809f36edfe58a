//! What a run is asked to do and what it gives back: STDP parameters, the stimulus, the
//! recorders and memory limit, counters and results.

use crate::error::{CrdmError, Result};

/// Pair-based STDP with exponential windows (docs/model.md, "STDP").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StdpParams {
    /// Potentiation amplitude A+ (weight units), finite and >= 0.
    pub a_plus: f64,
    /// Potentiation window τ+ (ms), finite and > 0.
    pub tau_plus_ms: f64,
    /// Depression amplitude A− (weight units), finite and >= 0.
    pub a_minus: f64,
    /// Depression window τ− (ms), finite and > 0.
    pub tau_minus_ms: f64,
    /// Lower weight bound (may be `-inf`).
    pub w_min: f64,
    /// Upper weight bound (may be `inf`).
    pub w_max: f64,
}

impl StdpParams {
    pub(super) fn validate(&self) -> Result<()> {
        for (field, v) in [("stdp.a_plus", self.a_plus), ("stdp.a_minus", self.a_minus)] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(CrdmError::invalid(field, v, "must be finite and >= 0"));
            }
        }
        for (field, v) in [
            ("stdp.tau_plus_ms", self.tau_plus_ms),
            ("stdp.tau_minus_ms", self.tau_minus_ms),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(CrdmError::invalid(field, v, "must be finite and > 0"));
            }
        }
        if self.w_min.is_nan() || self.w_max.is_nan() || self.w_min > self.w_max {
            return Err(CrdmError::invalid(
                "stdp.w_min",
                self.w_min,
                format!("must be <= stdp.w_max = {}", self.w_max),
            ));
        }
        Ok(())
    }
}

/// Forced activations: node `nodes[k]` is made to fire at tick `ticks[k]`.
#[derive(Debug, Clone, Copy)]
pub struct Stimulus<'a> {
    pub nodes: &'a [i64],
    pub ticks: &'a [i64],
}

/// What to simulate and record.
#[derive(Debug, Clone, PartialEq)]
pub struct RunConfig {
    /// Number of ticks to simulate (ticks `0..n_ticks`).
    pub n_ticks: u64,
    pub stdp: Option<StdpParams>,
    /// Record every firing as (node, tick).
    pub record_raster: bool,
    /// Record, for every firing, the accepted arrivals summed since the node's last reset.
    /// Implies the raster, which it is aligned with.
    pub record_causal: bool,
    /// Return every edge's weight at the end of the run (`RunResult::final_weights`); off, a
    /// sweep that keeps only snapshots saves a fresh `8 × n_edges`-byte array per run.
    pub record_final_weights: bool,
    /// Ticks (strictly increasing, each `<= n_ticks`) at which to copy weights; a snapshot at
    /// tick `s` holds the weights after ticks `0..s`.
    pub snapshot_ticks: Vec<u64>,
    /// Edges whose weights the snapshots copy, in this order.
    pub snapshot_edges: Vec<i64>,
    /// Refuse the run up front if the recorders could need more than this many bytes.
    pub memory_limit_bytes: u64,
}

/// Counters of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Firings, forced ones included.
    pub n_spikes: u64,
    /// Firings caused by the stimulus.
    pub n_forced: u64,
    /// Stimulus activations dropped because their node was refractory or already firing.
    pub n_stimulus_dropped: u64,
    /// Signals that reached their target within the run.
    pub n_arrivals: u64,
    /// Arrivals lost to refractoriness.
    pub n_lost: u64,
    /// STDP weight updates applied.
    pub n_stdp_updates: u64,
}

/// Everything a run produces. Recorder fields are empty when their recorder is off.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunResult {
    pub spike_node: Vec<u32>,
    pub spike_tick: Vec<u32>,
    /// `spike_forced[k]`: firing `k` was caused by the stimulus (causal recorder).
    pub spike_forced: Vec<bool>,
    /// Causes of firing `k` are entries `cause_ptr[k]..cause_ptr[k + 1]`.
    pub cause_ptr: Vec<u64>,
    pub cause_edge: Vec<u32>,
    pub cause_tick: Vec<u32>,
    /// Weight the signal carried when it arrived.
    pub cause_weight: Vec<f64>,
    /// Row-major, one row per snapshot tick, one column per snapshot edge.
    pub snapshots: Vec<f64>,
    /// Every edge's weight after the last tick, by edge id (`record_final_weights`).
    pub final_weights: Vec<f64>,
    /// Firings per node.
    pub spike_count: Vec<u32>,
    pub stats: RunStats,
}
