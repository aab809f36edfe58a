//! The state of one node during a run (summation, refractoriness, STDP post-synaptic trace)
//! and the leaky summation of what arrives at it.

use super::decay::decay;
use super::plan::MEMBRANE_TABLE_TICKS;
use super::workspace::Touched;
use super::NEVER;

/// The state of one node during a run, in one record: an arrival reads and writes one
/// record, found with one bounds check, instead of an entry in each of six arrays.
#[derive(Debug, Clone, Copy)]
pub(super) struct Node {
    /// Summation `u` and the tick it was last brought up to date.
    pub(super) u: f64,
    pub(super) u_tick: u64,
    /// First tick at which the node accepts arrivals again.
    pub(super) ready_tick: u64,
    /// STDP post-synaptic trace (value at `post_tick`; `NEVER`: not fired yet).
    pub(super) post_trace: f64,
    pub(super) post_tick: u64,
    /// Where the node's row of [`RunPlan::membrane`](super::plan::RunPlan::membrane) starts (`u32::MAX`: none, call `exp`).
    pub(super) decay_from: u32,
    /// In `touched` / in `firing` at this tick; marked by its stimulus.
    pub(super) touched: bool,
    pub(super) firing: bool,
    pub(super) forced: bool,
}

impl Node {
    pub(super) fn resting(decay_from: u32) -> Self {
        Node {
            u: 0.0,
            u_tick: 0,
            ready_tick: 0,
            post_trace: 0.0,
            post_tick: NEVER,
            decay_from,
            touched: false,
            firing: false,
            forced: false,
        }
    }

    /// An arrival (or drive) `x` at tick `t`, at node `j`: lost while the node is refractory,
    /// else summed into `u`, brought to `t` first, and the node listed as touched. Returns
    /// whether it was accepted.
    ///
    /// Whether the node was already brought to `t` or listed by an earlier arrival varies
    /// from one arrival to the next, so neither is a branch (which would mispredict often): a
    /// second arrival at the same tick multiplies by `decay(0) = 1.0` exactly, which leaves
    /// `u` as it is, and [`Touched::add`] writes without asking.
    #[inline(always)]
    pub(super) fn arrive(
        &mut self,
        j: u32,
        x: f64,
        t: u64,
        touched: &mut Touched,
        membrane: &Membrane,
    ) -> bool {
        let accepted = t >= self.ready_tick;
        let u = self.u * membrane.decay(self.decay_from, j, t - self.u_tick) + x;
        // (refractoriness stays a branch around the `f64` arithmetic: x86-64 without SSE4.1
        // has no blend, and even `select_unpredictable` on the bits compiles to one)
        self.u = if accepted { u } else { self.u };
        self.u_tick = if accepted { t } else { self.u_tick };
        touched.add(self, j, accepted);
        accepted
    }
}

/// The membrane decays of a run: table rows of [`RunPlan::membrane`](super::plan::RunPlan::membrane), or `exp`.
pub(super) struct Membrane<'a> {
    pub(super) table: &'a [f64],
    pub(super) dt_ms: f64,
    pub(super) tau_m_ms: &'a [f64],
}

impl Membrane<'_> {
    /// `decay(elapsed, dt, τ_m[j])`, from the table row at `from` when it has the entry: the
    /// table's entries are computed by `decay` itself, so the bits are the same.
    #[inline(always)]
    pub(super) fn decay(&self, from: u32, j: u32, elapsed: u64) -> f64 {
        if from != u32::MAX && elapsed < MEMBRANE_TABLE_TICKS as u64 {
            if let Some(&v) = self.table.get(from as usize + elapsed as usize) {
                return v;
            }
        }
        if elapsed == 0 {
            return 1.0; // `decay(0, …)`, `exp(-0.0)`, without the call
        }
        decay(elapsed, self.dt_ms, self.tau_m_ms[j as usize])
    }
}
