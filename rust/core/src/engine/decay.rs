//! Exponential decays over whole ticks, and tables of them that give the same bits.

/// `exp(-(elapsed_ticks * dt) / tau)`: the decay of a trace or summation over `elapsed` ticks.
#[inline]
pub(super) fn decay(elapsed: u64, dt_ms: f64, tau_ms: f64) -> f64 {
    (-(elapsed as f64 * dt_ms) / tau_ms).exp()
}

/// `decay(Δ, dt, τ)` for `Δ = 0, 1, …` up to [`TABLE_TICKS`], one table per time constant.
#[derive(Debug, Clone)]
pub(super) struct DecayTable {
    pub(super) values: Vec<f64>,
    pub(super) dt_ms: f64,
    pub(super) tau_ms: f64,
}

/// Longest table kept (512 KiB): elapsed times beyond it are rare and computed directly.
pub(super) const TABLE_TICKS: u64 = 1 << 16;

impl DecayTable {
    pub(super) fn new(n_ticks: u64, dt_ms: f64, tau_ms: f64) -> Self {
        let values = (0..=n_ticks.min(TABLE_TICKS))
            .map(|d| decay(d, dt_ms, tau_ms))
            .collect();
        DecayTable {
            values,
            dt_ms,
            tau_ms,
        }
    }

    /// Bit-identical to `decay(elapsed, dt, τ)`: the entries are computed by it.
    #[inline]
    pub(super) fn get(&self, elapsed: u64) -> f64 {
        match self.values.get(elapsed as usize) {
            Some(&v) => v,
            None => decay(elapsed, self.dt_ms, self.tau_ms),
        }
    }
}
