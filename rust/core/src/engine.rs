//! The event-driven CRDM simulation: a ring buffer of delay slots, refractory competition,
//! leaky summation, pair-based STDP with lazily decayed traces, and optional recorders.
//!
//! The order of operations inside one tick `t` (docs/model.md, "One tick") is:
//! 1. weight snapshots scheduled at `t` are taken (state after ticks `< t`);
//! 2. arrivals due at `t` are delivered: first the fixed-weight ones, as one drive per target
//!    (their weights summed in canonical order, accepted or lost together), then the plastic
//!    ones one by one in canonical order: each is accepted (summed into the target's `u`) or
//!    lost (target refractory), then plays its STDP pre-synaptic role;
//! 3. stimulus activations due at `t` mark their (non-refractory) nodes to fire;
//! 4. every node whose `u` reached its threshold at `t` is marked to fire;
//! 5. marked nodes fire in ascending id: record, reset, refractory, STDP post-synaptic role,
//!    and one signal per out-edge into the slot of tick `t + delay`.
//!
//! Every floating-point expression here has a twin in `crdm.reference` evaluated in the same
//! order, so the two backends agree bit for bit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{check_indices, check_len, CrdmError, Result};
use crate::network::{Code, CompiledNetwork, EdgeCodes};

/// Marks "no such event yet" in the tick-valued state arrays.
const NEVER: u64 = u64::MAX;

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
    fn validate(&self) -> Result<()> {
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

/// Bytes of one delay-ring slot (an empty `Vec<u32>`), as counted by the memory bound.
pub const RING_SLOT_BYTES: u64 = std::mem::size_of::<Vec<u32>>() as u64;

/// `exp(-(elapsed_ticks * dt) / tau)`: the decay of a trace or summation over `elapsed` ticks.
#[inline]
fn decay(elapsed: u64, dt_ms: f64, tau_ms: f64) -> f64 {
    (-(elapsed as f64 * dt_ms) / tau_ms).exp()
}

/// `decay(Δ, dt, τ)` for `Δ = 0, 1, …` up to [`TABLE_TICKS`], one table per time constant.
#[derive(Debug, Clone)]
struct DecayTable {
    values: Vec<f64>,
    dt_ms: f64,
    tau_ms: f64,
}

/// Longest table kept (512 KiB): elapsed times beyond it are rare and computed directly.
const TABLE_TICKS: u64 = 1 << 16;

impl DecayTable {
    fn new(n_ticks: u64, dt_ms: f64, tau_ms: f64) -> Self {
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
    fn get(&self, elapsed: u64) -> f64 {
        match self.values.get(elapsed as usize) {
            Some(&v) => v,
            None => decay(elapsed, self.dt_ms, self.tau_ms),
        }
    }
}

/// Where the fixed-weight edges of a run lead, with STDP on (the non-plastic edges) or off
/// (every edge): computed once when the network is compiled, since every plan and every
/// memory bound needs it and it walks every edge (at N = 400, 473,200 of them: a tenth of the
/// instructions of a 600-ms image, once per run before it was kept).
#[derive(Debug, Clone, Default)]
pub(crate) struct FixedEdges {
    /// Position of every node among the targets (`u32::MAX`: none).
    pub(crate) target_index: Vec<u32>,
    /// The targets, ascending.
    pub(crate) target_node: Vec<u32>,
    /// [`RunPlan::driver_max_delay`] (which the plan copies when its drive is dense).
    pub(crate) driver_max_delay: Vec<u32>,
}

impl FixedEdges {
    pub(crate) fn new(net: &CompiledNetwork, stdp_on: bool) -> Self {
        let mut is_target = vec![false; net.n_nodes];
        for pos in 0..net.n_edges() {
            let (j, _, plastic) = net.codes.get(pos);
            is_target[j as usize] |= !(stdp_on && plastic);
        }
        let mut target_index = vec![u32::MAX; net.n_nodes];
        let mut target_node = Vec::new();
        for j in (0..net.n_nodes).filter(|&j| is_target[j]) {
            target_index[j] = target_node.len() as u32;
            target_node.push(j as u32);
        }
        FixedEdges {
            target_index,
            target_node,
            driver_max_delay: drivers(net, stdp_on),
        }
    }
}

/// What every run of a batch shares: the STDP trace decays as lookups instead of `exp` calls
/// (they save an `exp` per plastic arrival and per plastic in-edge of a firing node, and match
/// `crdm.reference` bit for bit), and where the fixed-weight drive is kept.
#[derive(Debug, Clone)]
struct RunPlan {
    stdp: Option<(DecayTable, DecayTable)>,
    /// Position of every node among the targets of fixed-weight edges (`u32::MAX`: none).
    target_index: Vec<u32>,
    /// The targets of fixed-weight edges, ascending.
    target_node: Vec<u32>,
    /// Drive cells for every (slot, target) pair, filled as signals leave; otherwise the
    /// fixed-weight signals are queued one by one and summed when they arrive.
    dense: bool,
    /// `decay(Δ, dt, τ_m)` for `Δ < MEMBRANE_TABLE_TICKS`, one row per distinct `τ_m` (at most
    /// [`MEMBRANE_TABLES`]), and where each node's row starts (`u32::MAX`: none, call `exp`).
    /// A node driven every few ticks decays once per tick, so this saves an `exp` per accepted
    /// drive.
    membrane: Vec<f64>,
    membrane_from: Vec<u32>,
    /// Where each snapshot edge's weight lives during the run.
    snapshot_from: Vec<WeightAt>,
    /// With STDP, the position of every rank (initial weights, final weights, causes).
    plastic_pos: Vec<u32>,
    /// With STDP, where each node keeps its recent firings ([`Firing`]): its ring's
    /// first entry and size minus one (a power of two; size 0 for nodes without plastic
    /// out-edges), and the entries of all rings together.
    history: Vec<HistoryRing>,
    history_len: usize,
    /// When every fixed-weight edge leaves a node that nothing can reach (so it fires only
    /// when the stimulus forces it), the longest fixed-weight latency of each such node
    /// (0: no fixed-weight out-edge); empty otherwise. A run whose stimulus makes these nodes
    /// fire periodically then replays one period of their drive ([`PeriodicDrive`]).
    driver_max_delay: Vec<u32>,
}

/// The plans of the last configurations a network ran (most recent first, at most
/// [`PLAN_CACHE_ENTRIES`]), reused while a configuration comes back: building a plan walks
/// the snapshot edges and fills the decay tables (4 % of the instructions of a 600-ms image
/// at N = 50), which a loop of single runs would otherwise pay per run. More than one, since
/// sweeps alternate configurations (Figure 3 runs every few images with STDP, then without).
/// A clone of the network starts with an empty cache.
#[derive(Default, Clone, Debug)]
pub(crate) struct PlanCache(RunState<Vec<Arc<(RunConfig, RunPlan)>>>);

const PLAN_CACHE_ENTRIES: usize = 4;

/// What a compiled network keeps from its runs for later ones, behind a lock: a clone starts
/// from the empty value, and it prints as nothing more than its name.
#[derive(Default)]
pub(crate) struct RunState<T>(Mutex<T>);

impl<T: Default> Clone for RunState<T> {
    fn clone(&self) -> Self {
        RunState::default()
    }
}

impl<T> std::fmt::Debug for RunState<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunState")
    }
}

impl<T> RunState<T> {
    /// The value; the lock is held only to read or reorder it, never while a panic can
    /// happen, so a poisoned lock still holds a consistent value.
    fn lock(&self) -> std::sync::MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl PlanCache {
    /// The plan for `cfg`, built (outside the lock) unless it is cached.
    fn get(&self, net: &CompiledNetwork, cfg: &RunConfig) -> Arc<(RunConfig, RunPlan)> {
        let lock = || self.0.lock();
        {
            let mut entries = lock();
            if let Some(k) = entries.iter().position(|entry| entry.0 == *cfg) {
                let entry = entries.remove(k);
                entries.insert(0, Arc::clone(&entry));
                return entry;
            }
        }
        let entry = Arc::new((cfg.clone(), RunPlan::new(net, cfg)));
        let mut entries = lock();
        entries.insert(0, Arc::clone(&entry));
        entries.truncate(PLAN_CACHE_ENTRIES);
        entry
    }
}

/// The buffers of finished runs, kept by the network for its next runs (at most
/// [`WORKSPACE_POOL_ENTRIES`]: one per run that was in progress at once). A 600-ms image at
/// N = 200 fills about 1.2 MB of drive cells, replayed rows and plastic weights; allocated
/// afresh for every run, the allocator handed those pages back to the kernel after each run,
/// which then faulted them in and cleared them again (about 475 page faults per image). A
/// clone of the network starts with an empty pool.
#[derive(Default, Clone, Debug)]
pub(crate) struct WorkspacePool(RunState<Vec<Workspace>>);

const WORKSPACE_POOL_ENTRIES: usize = 64;

impl WorkspacePool {
    fn take(&self) -> Workspace {
        self.0.lock().pop().unwrap_or_default()
    }

    fn put(&self, workspace: Workspace) {
        let mut entries = self.0.lock();
        if entries.len() < WORKSPACE_POOL_ENTRIES {
            entries.push(workspace);
        }
    }
}

/// The buffers of a [`Simulation`], cleared and refilled by each run: only their capacity
/// carries over from one run to the next, never a value.
#[derive(Default)]
struct Workspace {
    /// Stimulus sorted by (tick, node).
    stimulus: Vec<(u64, u32)>,
    /// `ring[t % ring.len()]` holds the plastic signals that arrive at tick `t`.
    ring: Vec<Vec<PlasticSignal>>,
    /// The buffers of the run's [`DriveStore`] and [`PeriodicDrive`], kept here between runs
    /// (empty while a run holds them).
    cells: Vec<Drive>,
    due: Vec<u64>,
    queued: Vec<Vec<u32>>,
    queued_due: Vec<u32>,
    periodic_cells: Vec<Drive>,
    periodic_due: Vec<u64>,
    /// With STDP, every plastic edge's weight, by rank.
    plastic: Vec<f64>,
    /// With STDP, each node's ring of recent firings ([`Firing`]) and the entries of all.
    rings: Vec<HistoryRing>,
    history: Vec<Firing>,
    /// The state of every node.
    nodes: Vec<Node>,
    /// Accepted arrivals since the node's last reset (causal recorder only).
    pending: Vec<Vec<(u32, u32, f64)>>,
    /// The nodes that accepted an arrival at this tick, and those marked to fire.
    touched: Touched,
    firing: Vec<u32>,
}

/// The nodes that accepted an arrival at this tick, each once: `ids[..len]`. It has room for
/// every node and one more, so that an arrival writes its target before knowing whether it is
/// new there: whether a node was already touched at this tick is as likely as not, and a
/// branch on it mispredicts often.
#[derive(Default)]
struct Touched {
    ids: Vec<u32>,
    len: usize,
}

impl Touched {
    fn reset(&mut self, n_nodes: usize) {
        self.ids.clear();
        self.ids.resize(n_nodes + 1, 0);
        self.len = 0;
    }

    /// Lists node `j` (state `node`) if it `accepted` and was not listed yet.
    #[inline(always)]
    fn add(&mut self, node: &mut Node, j: u32, accepted: bool) {
        // `len` stays at most the number of nodes (each is listed once), so this write fits
        self.ids[self.len] = j;
        self.len += usize::from(accepted & !node.touched);
        node.touched |= accepted;
    }

    fn ids(&self) -> &[u32] {
        &self.ids[..self.len]
    }
}

/// The state of one node during a run, in one record: an arrival reads and writes one
/// record, found with one bounds check, instead of an entry in each of six arrays.
#[derive(Debug, Clone, Copy)]
struct Node {
    /// Summation `u` and the tick it was last brought up to date.
    u: f64,
    u_tick: u64,
    /// First tick at which the node accepts arrivals again.
    ready_tick: u64,
    /// STDP post-synaptic trace (value at `post_tick`; `NEVER`: not fired yet).
    post_trace: f64,
    post_tick: u64,
    /// Where the node's row of [`RunPlan::membrane`] starts (`u32::MAX`: none, call `exp`).
    decay_from: u32,
    /// In `touched` / in `firing` at this tick; marked by its stimulus.
    touched: bool,
    firing: bool,
    forced: bool,
}

impl Node {
    fn resting(decay_from: u32) -> Self {
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
    fn arrive(
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

/// The membrane decays of a run: table rows of [`RunPlan::membrane`], or `exp`.
struct Membrane<'a> {
    table: &'a [f64],
    dt_ms: f64,
    tau_m_ms: &'a [f64],
}

impl Membrane<'_> {
    /// `decay(elapsed, dt, τ_m[j])`, from the table row at `from` when it has the entry: the
    /// table's entries are computed by `decay` itself, so the bits are the same.
    #[inline(always)]
    fn decay(&self, from: u32, j: u32, elapsed: u64) -> f64 {
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

/// `buffer` holding `len` copies of `value` (its allocation reused).
fn refill<T: Clone>(mut buffer: Vec<T>, len: usize, value: T) -> Vec<T> {
    buffer.clear();
    buffer.resize(len, value);
    buffer
}

/// `slots` holding `len` empty lists (their allocations reused).
fn refill_lists<T>(mut slots: Vec<Vec<T>>, len: usize) -> Vec<Vec<T>> {
    slots.truncate(len);
    slots.iter_mut().for_each(Vec::clear);
    slots.resize_with(len, Vec::new);
    slots
}

/// A weight during a run: fixed (the network's, by position) or plastic (the run's, by rank).
#[derive(Debug, Clone, Copy)]
enum WeightAt {
    Fixed(u32),
    Plastic(u32),
}

const MEMBRANE_TABLE_TICKS: usize = 256;
const MEMBRANE_TABLES: usize = 64;

/// Most bytes a run's dense drive cells may take: beyond this (very long latencies or very
/// many targets) the fixed-weight signals are queued instead, with the same arithmetic.
pub const DENSE_DRIVE_MAX_BYTES: u64 = 16 << 20;

/// Bytes of one drive cell (sum and count of the fixed-weight arrivals of one target and tick).
pub const DRIVE_CELL_BYTES: u64 = std::mem::size_of::<Drive>() as u64;

/// The fixed-weight arrivals of one target at one tick: their weights summed in canonical
/// order (`((0 + w₁) + w₂) + …`) and how many there are.
#[derive(Debug, Clone, Copy, Default)]
struct Drive {
    sum: f64,
    count: u32,
}

impl Drive {
    #[inline]
    fn add(&mut self, w: f64) {
        self.sum += w;
        self.count += 1;
    }
}

/// Bytes of the dense drive of a run: a cell per (slot, target) and a bit per cell that says
/// it is non-empty.
fn dense_cells_bytes(ring_slots: u64, n_targets: usize) -> u64 {
    let row = (n_targets as u64) * DRIVE_CELL_BYTES + (n_targets as u64).div_ceil(64) * 8;
    ring_slots.saturating_mul(row)
}

impl CompiledNetwork {
    fn ring_slots(&self, cfg: &RunConfig) -> u64 {
        // a signal never needs a slot further ahead than the end of the run
        (self.max_delay_ticks as u64).min(cfg.n_ticks) + 1
    }

    /// The fixed-weight edges' targets of a run with or without STDP.
    pub(crate) fn fixed(&self, stdp_on: bool) -> &FixedEdges {
        &self.fixed[usize::from(stdp_on)]
    }

    /// Bytes of the dense drive cells of a run, or `None` when the run queues its
    /// fixed-weight signals (causal recorder on, or more than [`DENSE_DRIVE_MAX_BYTES`]).
    fn dense_drive_bytes(&self, cfg: &RunConfig, n_targets: usize) -> Option<u64> {
        let bytes = dense_cells_bytes(self.ring_slots(cfg), n_targets);
        (!cfg.record_causal && bytes <= DENSE_DRIVE_MAX_BYTES).then_some(bytes)
    }
}

/// Where each snapshot edge's weight lives during a run.
fn snapshot_sources(net: &CompiledNetwork, cfg: &RunConfig, plastic_pos: &[u32]) -> Vec<WeightAt> {
    if cfg.snapshot_edges.is_empty() {
        return Vec::new();
    }
    let positions = net.edge_id.as_ref().map(|_| net.positions());
    let mut rank_at = vec![u32::MAX; if cfg.stdp.is_some() { net.n_edges() } else { 0 }];
    for (rank, &pos) in plastic_pos.iter().enumerate() {
        if let Some(slot) = rank_at.get_mut(pos as usize) {
            *slot = rank as u32;
        }
    }
    cfg.snapshot_edges
        .iter()
        .map(|&e| {
            let pos = positions.as_ref().map_or(e as u32, |p| p[e as usize]);
            match rank_at.get(pos as usize) {
                Some(&rank) if rank != u32::MAX => WeightAt::Plastic(rank),
                _ => WeightAt::Fixed(pos),
            }
        })
        .collect()
}

impl RunPlan {
    fn new(net: &CompiledNetwork, cfg: &RunConfig) -> Self {
        let stdp = cfg.stdp.as_ref().map(|p| {
            (
                DecayTable::new(cfg.n_ticks, net.dt_ms, p.tau_plus_ms),
                DecayTable::new(cfg.n_ticks, net.dt_ms, p.tau_minus_ms),
            )
        });
        let fixed = net.fixed(cfg.stdp.is_some());
        let dense = net
            .dense_drive_bytes(cfg, fixed.target_node.len())
            .is_some();
        let mut membrane = Vec::new();
        let mut rows: Vec<u64> = Vec::new();
        let membrane_from = net
            .tau_m_ms
            .iter()
            .map(|&tau| {
                let row = match rows.iter().position(|&b| b == tau.to_bits()) {
                    Some(r) => r,
                    None if rows.len() == MEMBRANE_TABLES => return u32::MAX,
                    None => {
                        rows.push(tau.to_bits());
                        membrane.extend(
                            (0..MEMBRANE_TABLE_TICKS).map(|d| decay(d as u64, net.dt_ms, tau)),
                        );
                        rows.len() - 1
                    }
                };
                (row * MEMBRANE_TABLE_TICKS) as u32
            })
            .collect();
        let plastic_pos = if cfg.stdp.is_some() {
            net.plastic_positions()
        } else {
            Vec::new()
        };
        let snapshot_from = snapshot_sources(net, cfg, &plastic_pos);
        let (history, history_len) = if cfg.stdp.is_some() {
            history_rings(net, cfg.n_ticks)
        } else {
            (Vec::new(), 0)
        };
        let driver_max_delay = if dense {
            fixed.driver_max_delay.clone()
        } else {
            Vec::new()
        };
        RunPlan {
            stdp,
            target_index: fixed.target_index.clone(),
            target_node: fixed.target_node.clone(),
            dense,
            membrane,
            membrane_from,
            snapshot_from,
            plastic_pos,
            history,
            history_len,
            driver_max_delay,
        }
    }
}

/// Where a node's recent firings live in a run's firing history ([`Firing`]): entries
/// `first .. first + mask + 1`, firing `k` at `first + (k & mask)`; `count` firings so far.
#[derive(Debug, Clone, Copy, Default)]
struct HistoryRing {
    first: usize,
    mask: usize,
    count: usize,
}

/// Bytes of one entry of a firing history (tick and pre-synaptic trace).
const HISTORY_ENTRY_BYTES: u64 = 16;

/// The ring of each node that has plastic out-edges, sized to hold every firing that can
/// still be in flight on one of them plus the one before: a node fires at most once per
/// refractory period, so within its longest plastic latency `d` (at most the run) fit
/// `d / R + 1` firings. Sizes are powers of two, so that an entry is found by a mask.
fn history_rings(net: &CompiledNetwork, n_ticks: u64) -> (Vec<HistoryRing>, usize) {
    let mut first = 0usize;
    let rings = (0..net.n_nodes)
        .map(|i| {
            let size = history_size(net, i, n_ticks);
            let ring = HistoryRing {
                first,
                mask: size.saturating_sub(1),
                count: 0,
            };
            first += size;
            ring
        })
        .collect();
    (rings, first)
}

/// Entries of node `i`'s firing history (0 without plastic out-edges).
fn history_size(net: &CompiledNetwork, i: usize, n_ticks: u64) -> usize {
    let longest = net.plastic_out_max_delay[i] as u64;
    if longest == 0 {
        return 0;
    }
    let refractory = (net.refractory_ticks[i] as u64).max(1);
    (longest.min(n_ticks) / refractory + 2).next_power_of_two() as usize
}

/// [`RunPlan::driver_max_delay`]: empty unless every fixed-weight edge leaves a node without
/// in-edges.
fn drivers(net: &CompiledNetwork, stdp_on: bool) -> Vec<u32> {
    let mut reachable = vec![false; net.n_nodes];
    for pos in 0..net.n_edges() {
        reachable[net.codes.get(pos).0 as usize] = true;
    }
    let mut max_delay = vec![0u32; net.n_nodes];
    for (i, longest) in max_delay.iter_mut().enumerate() {
        for pos in net.out_ptr[i]..net.out_ptr[i + 1] {
            let (_, delay, plastic) = net.codes.get(pos);
            if !(stdp_on && plastic) {
                if reachable[i] {
                    return Vec::new();
                }
                *longest = (*longest).max(delay);
            }
        }
    }
    max_delay
}

/// The fixed-weight drive of a run from tick `start` on, when it repeats every `period` ticks:
/// the run's fixed-weight edges all leave stimulus-driven nodes ([`drivers`]) and each of
/// those fires at `first, first + period, …` up to the end of the run (the image stimulus:
/// every active pixel fires each time it leaves refractoriness).
///
/// From `start` (each driver's first firing plus its longest latency) on, the arrivals at
/// `t + period` are those at `t`, each sent one period later, in the same canonical order: the
/// drives are equal bit for bit. So the drives of `start .. start + period` are summed once,
/// in canonical order, before the run; the run adds into its cells only the signals that
/// arrive before `start` and replays a row per tick after it, instead of adding every input
/// spike's weight into its target's cell (28 % of the time per image at N = 200).
///
/// The rows are laid out as the ring's dense cells, with their bits of non-empty cells, and
/// are used only when the period is shorter than the ring: they never take more memory than
/// the cells (which [`CompiledNetwork::recording_bound_bytes`] counts twice when a run may
/// replay).
#[derive(Debug)]
struct PeriodicDrive {
    start: u64,
    period: u64,
    /// Row `r` (ticks `start + r + k·period`): `cells[r * n_targets..]`, and bit `k` of its
    /// `words` words of `due` set where target `k` has a drive.
    cells: Vec<Drive>,
    due: Vec<u64>,
    words: usize,
}

impl PeriodicDrive {
    /// The periodic drive of `stimulus` (sorted by tick, node), if it has one worth using; its
    /// rows then take the allocations of `cells_buffer` and `due_buffer`.
    fn new(
        net: &CompiledNetwork,
        plan: &RunPlan,
        stimulus: &[(u64, u32)],
        cfg: &RunConfig,
        cells_buffer: &mut Vec<Drive>,
        due_buffer: &mut Vec<u64>,
    ) -> Option<Self> {
        let n_ticks = cfg.n_ticks;
        if plan.driver_max_delay.is_empty() {
            return None;
        }
        // the firings of the drivers: the stimulus less what refractoriness drops
        let mut first = vec![NEVER; net.n_nodes];
        let mut last = vec![NEVER; net.n_nodes];
        let mut period = NEVER;
        let mut fired = Vec::new();
        for &(t, i) in stimulus {
            let i_us = i as usize;
            if plan.driver_max_delay[i_us] == 0 {
                continue;
            }
            if last[i_us] != NEVER && t < last[i_us] + net.refractory_ticks[i_us] as u64 {
                continue; // dropped: refractory (periods are at least one tick)
            }
            if first[i_us] == NEVER {
                first[i_us] = t;
            } else if period == NEVER {
                period = t - last[i_us];
            } else if t - last[i_us] != period {
                return None;
            }
            last[i_us] = t;
            fired.push((t, i));
        }
        if period == NEVER {
            return None;
        }
        let mut start = 0;
        for i in 0..net.n_nodes {
            if first[i] != NEVER {
                if last[i] + period < n_ticks {
                    return None; // stops before the end of the run
                }
                start = start.max(first[i] + plan.driver_max_delay[i] as u64);
            }
        }
        if period >= net.ring_slots(cfg) || start.saturating_add(2 * period) > n_ticks {
            return None;
        }
        let n_targets = plan.target_node.len();
        let words = n_targets.div_ceil(64);
        let mut cells = refill(
            std::mem::take(cells_buffer),
            period as usize * n_targets,
            Drive::default(),
        );
        let mut due = refill(std::mem::take(due_buffer), period as usize * words, 0);
        let longest = plan.driver_max_delay.iter().copied().max().unwrap_or(0) as u64;
        let from = fired.partition_point(|&(t, _)| t + longest < start);
        for &(t, i) in &fired[from..] {
            if t >= start + period {
                break;
            }
            for pos in net.out_ptr[i as usize]..net.out_ptr[i as usize + 1] {
                let (j, delay, plastic) = net.codes.get(pos);
                let arrival = t + delay as u64;
                let fixed = !(plastic && plan.stdp.is_some());
                if fixed && arrival >= start && arrival < start + period {
                    let (row, k) = (
                        (arrival - start) as usize,
                        plan.target_index[j as usize] as usize,
                    );
                    cells[row * n_targets + k].add(net.weights[pos]);
                    due[row * words + k / 64] |= 1 << (k % 64);
                }
            }
        }
        Some(PeriodicDrive {
            start,
            period,
            cells,
            due,
            words,
        })
    }
}

/// `min(max(w, w_min), w_max)` as `crdm.reference` computes it (Python's `max` keeps its first
/// argument when the two are equal, so `-0.0` stays `-0.0`): one `maxsd` and one `minsd`,
/// without the NaN handling of `f64::max`, which a weight never needs (weights, amplitudes
/// and traces are finite).
#[inline(always)]
fn clamp_weight(w: f64, stdp: &StdpParams) -> f64 {
    let w = if stdp.w_min > w { stdp.w_min } else { w };
    if stdp.w_max < w {
        stdp.w_max
    } else {
        w
    }
}

impl CompiledNetwork {
    /// Upper bound, in bytes, of what the enabled recorders, the delay rings and the drive
    /// cells can hold for `cfg`.
    pub fn recording_bound_bytes(&self, cfg: &RunConfig) -> u64 {
        let nt = cfg.n_ticks;
        let max_fires = |i: usize| nt.div_ceil(self.refractory_ticks[i] as u64);
        // the delay rings (plastic signals, and the fixed-weight drive's per-slot lists or
        // queue): one slot per tick of the longest latency (within the run), each an empty
        // `Vec` header before any signal is in flight; a latency of 10^9 ticks would otherwise
        // allocate 24 GB before the first tick. Dense drive cells are capped, else queued.
        let ring_slots = self.ring_slots(cfg);
        let mut bytes = ring_slots.saturating_mul(2 * RING_SLOT_BYTES);
        let fixed = self.fixed(cfg.stdp.is_some());
        let n_targets = fixed.target_node.len();
        if let Some(dense) = self.dense_drive_bytes(cfg, n_targets) {
            // a run that replays a periodic drive holds its rows too, never more than the cells
            let may_replay = n_targets > 0 && !fixed.driver_max_delay.is_empty();
            bytes = bytes.saturating_add(dense.saturating_mul(1 + u64::from(may_replay)));
        }
        bytes = bytes.saturating_add(
            (cfg.snapshot_ticks.len() as u64)
                .saturating_mul(cfg.snapshot_edges.len() as u64)
                .saturating_mul(8),
        );
        if cfg.stdp.is_some() {
            let entries: u64 = (0..self.n_nodes)
                .map(|i| history_size(self, i, nt) as u64)
                .fold(0u64, u64::saturating_add);
            bytes = bytes.saturating_add(entries.saturating_mul(HISTORY_ENTRY_BYTES));
        }
        if cfg.record_raster || cfg.record_causal {
            let fires: u64 = (0..self.n_nodes).map(max_fires).sum();
            // node + tick, and with the causal recorder a forced flag and an offset
            let per_spike = if cfg.record_causal { 17 } else { 8 };
            bytes = bytes.saturating_add(fires.saturating_mul(per_spike));
        }
        if cfg.record_final_weights {
            bytes = bytes.saturating_add((self.n_edges() as u64).saturating_mul(8));
        }
        if cfg.record_causal {
            // every accepted arrival is one cause: at most one per source firing per edge
            let arrivals: u64 = (0..self.n_nodes)
                .map(|i| {
                    let out = (self.out_ptr[i + 1] - self.out_ptr[i]) as u64;
                    out.saturating_mul(max_fires(i))
                })
                .fold(0u64, u64::saturating_add);
            bytes = bytes.saturating_add(arrivals.saturating_mul(16));
        }
        bytes
    }

    fn validate_run(&self, stim: &Stimulus<'_>, cfg: &RunConfig) -> Result<()> {
        if cfg.n_ticks == 0 || cfg.n_ticks > crate::network::MAX_TICKS {
            return Err(CrdmError::invalid(
                "n_ticks",
                cfg.n_ticks,
                format!("must be between 1 and {}", crate::network::MAX_TICKS),
            ));
        }
        check_len("stimulus_ticks", stim.ticks, stim.nodes.len())?;
        check_indices("stimulus_nodes", stim.nodes, self.n_nodes as u64)?;
        check_indices("stimulus_ticks", stim.ticks, cfg.n_ticks)?;
        if let Some(stdp) = &cfg.stdp {
            stdp.validate()?;
        }
        check_indices("snapshot_edges", &cfg.snapshot_edges, self.n_edges() as u64)?;
        for (k, &s) in cfg.snapshot_ticks.iter().enumerate() {
            if s > cfg.n_ticks {
                return Err(CrdmError::IndexOutOfRange {
                    field: format!("snapshot_ticks[{k}]"),
                    index: s as i64,
                    bound: cfg.n_ticks + 1,
                });
            }
            if k > 0 && s <= cfg.snapshot_ticks[k - 1] {
                return Err(CrdmError::invalid(
                    format!("snapshot_ticks[{k}]"),
                    s,
                    "snapshot ticks must be strictly increasing",
                ));
            }
        }
        let bound = self.recording_bound_bytes(cfg);
        if bound > cfg.memory_limit_bytes {
            return Err(CrdmError::MemoryLimit {
                what: "the delay rings and recorders".to_string(),
                required_bytes: bound,
                limit_bytes: cfg.memory_limit_bytes,
            });
        }
        Ok(())
    }

    /// Simulates one stimulus from the network's initial weights and a resting state.
    pub fn run(&self, stim: &Stimulus<'_>, cfg: &RunConfig) -> Result<RunResult> {
        self.validate_run(stim, cfg)?;
        Ok(self.run_validated(stim, cfg))
    }

    fn run_validated(&self, stim: &Stimulus<'_>, cfg: &RunConfig) -> RunResult {
        let plan = self.plan_cache.get(self, cfg);
        let (result, ws) = self.run_with_plan(stim, cfg, &plan.1, self.workspaces.take());
        self.workspaces.put(ws);
        result
    }

    fn run_with_plan(
        &self,
        stim: &Stimulus<'_>,
        cfg: &RunConfig,
        plan: &RunPlan,
        ws: Workspace,
    ) -> (RunResult, Workspace) {
        let mut sim = Simulation::new(self, stim, cfg, plan, ws);
        sim.run();
        sim.finish()
    }

    /// Simulates every stimulus independently (each from the initial weights) on up to
    /// `n_threads` threads. Results come in stimulus order and, since runs share nothing but
    /// the read-only network, do not depend on the number of threads.
    ///
    /// Every stimulus is validated before any work starts; an error names the stimulus
    /// (`stimuli[k].…`). The memory limit applies to the delay rings and recorders of the whole
    /// batch.
    pub fn run_batch(
        &self,
        stimuli: &[Stimulus<'_>],
        cfg: &RunConfig,
        n_threads: usize,
    ) -> Result<Vec<RunResult>> {
        let unlimited = RunConfig {
            memory_limit_bytes: u64::MAX,
            ..cfg.clone()
        };
        for (k, stim) in stimuli.iter().enumerate() {
            self.validate_run(stim, &unlimited)
                .map_err(|e| e.prefixed(&format!("stimuli[{k}].")))?;
        }
        let bound = self
            .recording_bound_bytes(cfg)
            .saturating_mul(stimuli.len() as u64);
        if bound > cfg.memory_limit_bytes {
            return Err(CrdmError::MemoryLimit {
                what: format!("the delay rings and recorders of {} runs", stimuli.len()),
                required_bytes: bound,
                limit_bytes: cfg.memory_limit_bytes,
            });
        }
        let n_threads = n_threads.clamp(1, stimuli.len().max(1));
        let plan = self.plan_cache.get(self, cfg);
        let plan = &plan.1;
        let next = AtomicUsize::new(0);
        let mut results: Vec<Option<RunResult>> = vec![None; stimuli.len()];
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..n_threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        let mut ws = self.workspaces.take();
                        loop {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            let Some(stim) = stimuli.get(k) else { break };
                            let result;
                            (result, ws) = self.run_with_plan(stim, cfg, plan, ws);
                            done.push((k, result));
                        }
                        self.workspaces.put(ws);
                        done
                    })
                })
                .collect();
            for worker in workers {
                // a panic in a worker is re-raised here, where the binding catches it
                let done = worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                for (k, result) in done {
                    results[k] = Some(result);
                }
            }
        });
        Ok(results.into_iter().flatten().collect())
    }
}

/// One firing of a node with plastic out-edges (with STDP): its tick, and the pre-synaptic
/// trace `x` that each of those edges holds once this firing has arrived on it.
///
/// An edge's trace jumps by 1 at each arrival and decays in between: `x ← x·decay(Δ) + 1`,
/// where `Δ` is the time since the edge's previous arrival. Every out-edge of a node carries
/// the node's firings, each shifted by the edge's latency, so `Δ` is the time between the
/// two firings whatever the latency, and the trace after the `k`-th arrival is the same
/// number, computed by the same operations, on all of them. So the run keeps it once per
/// firing instead of per edge: an edge whose last arrival by tick `t` is firing `k` (the last
/// with `tick + latency ≤ t`) has the trace `x_k·decay(t − tick − latency)`, bit for bit
/// what a per-edge trace holds. Arrivals then touch only the edge's weight (8 bytes instead
/// of a 24-byte record with the trace and its tick).
#[derive(Debug, Clone, Copy, Default)]
struct Firing {
    tick: u64,
    x: f64,
}

/// A plastic signal in flight: the edge's rank and its target.
#[derive(Debug, Clone, Copy)]
struct PlasticSignal {
    rank: u32,
    target: u32,
}

/// Where the fixed-weight signals in flight are kept.
enum DriveStore {
    /// `cells[slot * n_targets + k]` sums the signals for target `k` due at the slot's tick,
    /// added as they leave; bit `k` of the slot's `words` words of `due` marks it non-empty
    /// (a bit set without a branch: whether a cell is new is unpredictable).
    Dense {
        cells: Vec<Drive>,
        due: Vec<u64>,
        words: usize,
    },
    /// `ring[slot]` queues the positions of the signals due at the slot's tick; they are summed
    /// into `cells[k]` (one per target) when they arrive, listed in `due`. Used with the
    /// causal recorder, which needs every edge, and when dense cells would be too large.
    Queued {
        ring: Vec<Vec<u32>>,
        cells: Vec<Drive>,
        due: Vec<u32>,
    },
}

/// Mutable state of one run.
struct Simulation<'n> {
    net: &'n CompiledNetwork,
    cfg: &'n RunConfig,
    plan: &'n RunPlan,
    ws: Workspace,
    drive: DriveStore,
    /// The fixed-weight drive from `periodic.start` on, when it repeats (dense cells only).
    periodic: Option<PeriodicDrive>,
    out: RunResult,
}

impl<'n> Simulation<'n> {
    /// A run from the network's initial weights and a resting state, in the buffers of `ws`.
    fn new(
        net: &'n CompiledNetwork,
        stim: &Stimulus<'_>,
        cfg: &'n RunConfig,
        plan: &'n RunPlan,
        mut ws: Workspace,
    ) -> Self {
        let n = net.n_nodes;
        ws.stimulus.clear();
        ws.stimulus.extend(
            stim.ticks
                .iter()
                .zip(stim.nodes)
                .map(|(&t, &i)| (t as u64, i as u32)),
        );
        ws.stimulus.sort_unstable();
        let periodic = if plan.dense {
            let (stimulus, cells, due) =
                (&ws.stimulus, &mut ws.periodic_cells, &mut ws.periodic_due);
            PeriodicDrive::new(net, plan, stimulus, cfg, cells, due)
        } else {
            None
        };
        let ring_len = net.ring_slots(cfg) as usize;
        let causal = cfg.record_causal;
        let n_targets = plan.target_node.len();
        let cells = std::mem::take(&mut ws.cells);
        let drive = if plan.dense {
            let words = n_targets.div_ceil(64);
            DriveStore::Dense {
                cells: refill(cells, ring_len * n_targets, Drive::default()),
                due: refill(std::mem::take(&mut ws.due), ring_len * words, 0),
                words,
            }
        } else {
            DriveStore::Queued {
                ring: refill_lists(std::mem::take(&mut ws.queued), ring_len),
                cells: refill(cells, n_targets, Drive::default()),
                due: refill(std::mem::take(&mut ws.queued_due), 0, 0),
            }
        };
        let mut out = RunResult {
            spike_count: vec![0; n],
            ..RunResult::default()
        };
        if causal {
            out.cause_ptr.push(0);
        }
        out.snapshots
            .reserve(cfg.snapshot_ticks.len() * cfg.snapshot_edges.len());
        ws.plastic.clear();
        ws.plastic.extend(
            plan.plastic_pos
                .iter()
                .map(|&pos| net.weights[pos as usize]),
        );
        ws.rings.clone_from(&plan.history);
        ws.nodes.clear();
        ws.nodes
            .extend(plan.membrane_from.iter().map(|&from| Node::resting(from)));
        let ws = Workspace {
            ring: refill_lists(ws.ring, ring_len),
            history: refill(ws.history, plan.history_len, Firing::default()),
            pending: refill_lists(ws.pending, if causal { n } else { 0 }),
            touched: {
                let mut touched = ws.touched;
                touched.reset(n);
                touched
            },
            firing: refill(ws.firing, 0, 0),
            ..ws
        };
        Simulation {
            net,
            cfg,
            plan,
            ws,
            drive,
            periodic,
            out,
        }
    }

    fn snapshot(&mut self) {
        for &at in &self.plan.snapshot_from {
            self.out.snapshots.push(match at {
                WeightAt::Fixed(pos) => self.net.weights[pos as usize],
                WeightAt::Plastic(rank) => self.ws.plastic[rank as usize],
            });
        }
    }

    fn run(&mut self) {
        let n_ticks = self.cfg.n_ticks;
        let mut next_snapshot = 0usize;
        let mut next_stimulus = 0usize;
        for t in 0..n_ticks {
            if self.cfg.snapshot_ticks.get(next_snapshot) == Some(&t) {
                self.snapshot();
                next_snapshot += 1;
            }
            let slot = (t % self.ws.ring.len() as u64) as usize;
            self.deliver_drive(slot, t);
            self.deliver_plastic(slot, t);
            while let Some(&(tick, node)) = self.ws.stimulus.get(next_stimulus) {
                if tick != t {
                    break;
                }
                next_stimulus += 1;
                let state = &mut self.ws.nodes[node as usize];
                if t < state.ready_tick || state.firing {
                    self.out.stats.n_stimulus_dropped += 1;
                } else {
                    state.firing = true;
                    state.forced = true;
                    self.ws.firing.push(node);
                }
            }
            let Workspace {
                nodes,
                touched,
                firing,
                ..
            } = &mut self.ws;
            for &j in touched.ids() {
                let state = &mut nodes[j as usize];
                state.touched = false;
                if !state.firing && state.u >= self.net.threshold[j as usize] {
                    state.firing = true;
                    firing.push(j);
                }
            }
            touched.len = 0;
            self.ws.firing.sort_unstable();
            for k in 0..self.ws.firing.len() {
                let j = self.ws.firing[k];
                self.fire(j as usize, t);
            }
            self.emit(slot, t);
            self.ws.firing.clear();
        }
        if self.cfg.snapshot_ticks.get(next_snapshot) == Some(&n_ticks) {
            self.snapshot();
        }
    }

    fn membrane(&self) -> Membrane<'n> {
        Membrane {
            table: &self.plan.membrane,
            dt_ms: self.net.dt_ms,
            tau_m_ms: &self.net.tau_m_ms,
        }
    }

    /// Step 2a: the fixed-weight arrivals due at `t`, one drive per target, accepted or lost
    /// together.
    fn deliver_drive(&mut self, slot: usize, t: u64) {
        let membrane = self.membrane();
        let Simulation {
            net,
            cfg,
            plan,
            ws,
            drive,
            periodic,
            out,
        } = self;
        let (net, plan) = (*net, *plan);
        let n_targets = plan.target_node.len();
        let mut sink = DriveSink {
            nodes: &mut ws.nodes,
            touched: &mut ws.touched,
            membrane,
            target_node: &plan.target_node,
            t,
            arrivals: 0,
            lost: 0,
        };
        match drive {
            DriveStore::Dense { .. } if periodic.as_ref().is_some_and(|p| t >= p.start) => {
                // nothing else is in this slot: every fixed-weight signal arriving from
                // `start` on is in the replayed rows
                let periodic = periodic.as_ref().expect("checked by the guard");
                let row = ((t - periodic.start) % periodic.period) as usize;
                let cells = &periodic.cells[row * n_targets..(row + 1) * n_targets];
                let words = &periodic.due[row * periodic.words..(row + 1) * periodic.words];
                for (w, &word) in words.iter().enumerate() {
                    let mut bits = word;
                    while bits != 0 {
                        let k = w * 64 + bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        sink.apply(k, cells[k]);
                    }
                }
            }
            DriveStore::Dense { cells, due, words } => {
                let row = &mut cells[slot * n_targets..(slot + 1) * n_targets];
                for (w, word) in due[slot * *words..(slot + 1) * *words]
                    .iter_mut()
                    .enumerate()
                {
                    let mut bits = std::mem::take(word);
                    while bits != 0 {
                        let k = w * 64 + bits.trailing_zeros() as usize;
                        bits &= bits - 1;
                        sink.apply(k, std::mem::take(&mut row[k]));
                    }
                }
            }
            DriveStore::Queued { ring, cells, due } => {
                for &pos in &ring[slot] {
                    let k = plan.target_index[net.codes.get(pos as usize).0 as usize];
                    let cell = &mut cells[k as usize];
                    if cell.count == 0 {
                        due.push(k);
                    }
                    cell.add(net.weights[pos as usize]);
                }
                for &k in due.iter() {
                    sink.apply(k as usize, std::mem::take(&mut cells[k as usize]));
                }
                due.clear();
                if cfg.record_causal {
                    // the causes, in canonical order, of the targets that accepted their drive
                    for &pos in &ring[slot] {
                        let j = net.codes.get(pos as usize).0 as usize;
                        if t >= sink.nodes[j].ready_tick {
                            let w = net.weights[pos as usize];
                            ws.pending[j].push((net.id_of(pos as usize), t as u32, w));
                        }
                    }
                }
                ring[slot].clear();
            }
        }
        out.stats.n_arrivals += sink.arrivals;
        out.stats.n_lost += sink.lost;
    }

    /// Step 2b: the plastic arrivals due at `t`, one by one in canonical order (emission tick,
    /// source id, edge id), which is the order they were pushed into the slot.
    fn deliver_plastic(&mut self, slot: usize, t: u64) {
        if self.cfg.record_causal {
            self.deliver_plastic_with::<true>(slot, t);
        } else {
            self.deliver_plastic_with::<false>(slot, t);
        }
    }

    /// [`Self::deliver_plastic`] with the causal recorder on (`CAUSAL`) or off: two copies of
    /// the loop, so that the usual one holds fewer values and keeps its counts in registers
    /// instead of adding to the stack at every arrival.
    fn deliver_plastic_with<const CAUSAL: bool>(&mut self, slot: usize, t: u64) {
        // plastic signals exist only with STDP on
        let (net, cfg, plan) = (self.net, self.cfg, self.plan);
        let (Some(stdp), Some((_, minus))) = (&cfg.stdp, &plan.stdp) else {
            return;
        };
        let membrane = self.membrane();
        let Workspace {
            ring,
            nodes,
            plastic,
            touched,
            pending,
            ..
        } = &mut self.ws;
        let arrivals = &ring[slot];
        if arrivals.is_empty() {
            return;
        }
        // counted here and added once: the statistics live behind `self`, which the
        // compiler would otherwise reload and store at every arrival
        let (mut lost, mut depressed) = (0u64, 0u64);
        for &PlasticSignal { rank, target } in arrivals {
            let node = &mut nodes[target as usize];
            let w = &mut plastic[rank as usize];
            let accepted = node.arrive(target, *w, t, touched, &membrane);
            lost += u64::from(!accepted);
            if CAUSAL && accepted {
                let id = net.id_of(plan.plastic_pos[rank as usize] as usize);
                pending[target as usize].push((id, t as u32, *w));
            }
            // post-before-pre: depress by the target's post-synaptic trace (the edge's
            // pre-synaptic trace is its source's, see `Firing`)
            if node.post_tick != NEVER {
                let y = node.post_trace * minus.get(t - node.post_tick);
                *w = clamp_weight(*w - stdp.a_minus * y, stdp);
                depressed += 1;
            }
        }
        self.out.stats.n_arrivals += arrivals.len() as u64;
        self.out.stats.n_lost += lost;
        self.out.stats.n_stdp_updates += depressed;
        ring[slot].clear();
    }

    fn fire(&mut self, j: usize, t: u64) {
        let net = self.net;
        let out = &mut self.out;
        let node = &mut self.ws.nodes[j];
        let forced = node.forced;
        node.firing = false;
        node.forced = false;
        node.u = 0.0;
        node.u_tick = t;
        node.ready_tick = t + net.refractory_ticks[j] as u64;
        out.stats.n_spikes += 1;
        out.spike_count[j] += 1;
        if forced {
            out.stats.n_forced += 1;
        }
        if self.cfg.record_raster || self.cfg.record_causal {
            out.spike_node.push(j as u32);
            out.spike_tick.push(t as u32);
        }
        if self.cfg.record_causal {
            out.spike_forced.push(forced);
            for (edge, tick, w) in self.ws.pending[j].drain(..) {
                out.cause_edge.push(edge);
                out.cause_tick.push(tick);
                out.cause_weight.push(w);
            }
            out.cause_ptr.push(out.cause_edge.len() as u64);
        }

        if let (Some(stdp), Some((plus, minus))) = (&self.cfg.stdp, &self.plan.stdp) {
            // pre-before-post (arrivals at this very tick included): potentiate
            let ranks = net.plastic_in_ptr[j]..net.plastic_in_ptr[j + 1];
            let w = &mut self.ws.plastic[ranks.clone()];
            let arrived = Arrived {
                rings: &self.ws.rings,
                history: &self.ws.history,
                t,
            };
            self.out.stats.n_stdp_updates += match &net.plastic_pre {
                EdgeCodes::Narrow { codes, dst_bits } => {
                    potentiate(w, &codes[ranks], *dst_bits, &arrived, stdp, plus)
                }
                EdgeCodes::Wide(codes) => potentiate(w, &codes[ranks], 0, &arrived, stdp, plus),
            };
            // this firing's entry in `j`'s history, after `j`'s own potentiation: an arrival
            // needs a latency of at least one tick, so it never counts there anyway
            let ring = &mut self.ws.rings[j];
            if ring.mask > 0 {
                // (rings have at least two entries; nodes without plastic out-edges, none)
                let x = match ring.count {
                    0 => 1.0,
                    k => {
                        let last = self.ws.history[ring.first + ((k - 1) & ring.mask)];
                        last.x * plus.get(t - last.tick) + 1.0
                    }
                };
                self.ws.history[ring.first + (ring.count & ring.mask)] = Firing { tick: t, x };
                ring.count += 1;
            }
            let node = &mut self.ws.nodes[j];
            node.post_trace = if node.post_tick == NEVER {
                1.0
            } else {
                node.post_trace * minus.get(t - node.post_tick) + 1.0
            };
            node.post_tick = t;
        }
    }

    /// Step 5's last part, for the nodes that fired at `t` (ascending id): one signal per
    /// out-edge (in edge-id order) that arrives within the run; plastic ones are queued,
    /// fixed-weight ones go to the drive. Emitting after all of the tick's firings is the same
    /// as emitting with each, since signals land in later slots, which nothing at `t` reads.
    fn emit(&mut self, slot: usize, t: u64) {
        let net = self.net;
        match &net.codes {
            EdgeCodes::Narrow { codes, dst_bits } => self.emit_with(codes, *dst_bits, slot, t),
            EdgeCodes::Wide(codes) => self.emit_with(codes, 0, slot, t),
        }
    }

    fn emit_with<C: Code>(&mut self, codes: &[C], dst_bits: u32, slot: usize, t: u64) {
        let net = self.net;
        let plan = self.plan;
        let stdp_on = self.cfg.stdp.is_some();
        let ring_len = self.ws.ring.len();
        // arrivals at or after this tick fall outside the run; a delay below it also fits
        // the ring (ring_len > min(max delay, n_ticks)), so one subtraction wraps the slot
        let horizon = self.cfg.n_ticks - t;
        // with a periodic drive, fixed-weight signals arriving from its start on are replayed
        let fixed_horizon = match &self.periodic {
            Some(p) => p.start.saturating_sub(t).min(horizon),
            None => horizon,
        };
        let slot_of = |delay: u32| {
            let s = slot + delay as usize;
            if s >= ring_len {
                s - ring_len
            } else {
                s
            }
        };
        let Simulation {
            ws: Workspace { firing, ring, .. },
            drive,
            ..
        } = self;
        let n_targets = plan.target_node.len();
        for &j in firing.iter() {
            let (lo, hi) = (net.out_ptr[j as usize], net.out_ptr[j as usize + 1]);
            // the plastic out-edges of `j`, counted in position order, index `rank_of`
            let plastic_range = net.plastic_out_start[j as usize] as usize
                ..net.plastic_out_start[j as usize + 1] as usize;
            if stdp_on && plastic_range.len() == hi - lo {
                // every out-edge plastic (the Section-4 recurrent nodes): ranks in step with
                // the positions, without a per-edge test or a running count
                for (&code, &rank) in codes[lo..hi].iter().zip(&net.rank_of[plastic_range]) {
                    let (dst, delay, _) = code.unpack(dst_bits);
                    if (delay as u64) < horizon {
                        ring[slot_of(delay)].push(PlasticSignal { rank, target: dst });
                    }
                }
                continue;
            }
            let mut plastic_out = plastic_range.start;
            let mut queue_plastic = |dst: u32, delay: u32| {
                if (delay as u64) < horizon {
                    let rank = net.rank_of[plastic_out];
                    ring[slot_of(delay)].push(PlasticSignal { rank, target: dst });
                }
                plastic_out += 1;
            };
            // a weight is read only for a fixed-weight edge: a plastic edge's is the run's
            let edges = (lo..).zip(&codes[lo..hi]);
            let has_plastic = stdp_on && !plastic_range.is_empty();
            if fixed_horizon == 0 && !has_plastic {
                continue;
            }
            match drive {
                DriveStore::Dense { cells, due, words } => {
                    for (pos, &code) in edges {
                        let (dst, delay, plastic) = code.unpack(dst_bits);
                        if stdp_on && plastic {
                            queue_plastic(dst, delay);
                        } else if (delay as u64) < fixed_horizon {
                            let s = slot_of(delay);
                            let k = plan.target_index[dst as usize] as usize;
                            cells[s * n_targets + k].add(net.weights[pos]);
                            due[s * *words + k / 64] |= 1 << (k % 64);
                        }
                    }
                }
                DriveStore::Queued {
                    ring: fixed_ring, ..
                } => {
                    for (pos, &code) in edges {
                        let (dst, delay, plastic) = code.unpack(dst_bits);
                        if stdp_on && plastic {
                            queue_plastic(dst, delay);
                        } else if (delay as u64) < horizon {
                            fixed_ring[slot_of(delay)].push(pos as u32);
                        }
                    }
                }
            }
        }
    }

    /// The run's results, and its buffers for the next run.
    fn finish(mut self) -> (RunResult, Workspace) {
        let net = self.net;
        if self.cfg.record_final_weights {
            let mut weights = vec![0.0; net.n_edges()];
            for (pos, &w) in net.weights.iter().enumerate() {
                weights[net.id_of(pos) as usize] = w;
            }
            for (&w, &pos) in self.ws.plastic.iter().zip(&self.plan.plastic_pos) {
                weights[net.id_of(pos as usize) as usize] = w;
            }
            self.out.final_weights = weights;
        }
        let mut ws = self.ws;
        if let Some(periodic) = self.periodic {
            (ws.periodic_cells, ws.periodic_due) = (periodic.cells, periodic.due);
        }
        match self.drive {
            DriveStore::Dense { cells, due, .. } => {
                ws.cells = cells;
                ws.due = due;
            }
            DriveStore::Queued { ring, cells, due } => {
                ws.queued = ring;
                ws.cells = cells;
                ws.queued_due = due;
            }
        }
        (self.out, ws)
    }
}

/// The firing histories of a run at tick `t`.
struct Arrived<'a> {
    rings: &'a [HistoryRing],
    history: &'a [Firing],
    t: u64,
}

impl Arrived<'_> {
    /// The last firing of `source` that has arrived by `t` on an edge of latency `delay`:
    /// newest first, past those still in flight (the ring holds all of them and one more).
    #[inline]
    fn last(&self, source: u32, delay: u32) -> Option<Firing> {
        let ring = self.rings[source as usize];
        let mut k = ring.count;
        while k > 0 {
            k -= 1;
            debug_assert!(
                ring.count - k <= ring.mask + 1,
                "a firing in flight was overwritten"
            );
            let firing = self.history[ring.first + (k & ring.mask)];
            if firing.tick + delay as u64 <= self.t {
                return Some(firing);
            }
        }
        None
    }
}

/// Potentiates the plastic in-edges of a node firing at `arrived.t` (their weights `w` and
/// source-and-latency codes `pre`, by rank): each edge whose source's firing has arrived
/// gains `a₊·x`, `x` being its trace at `t` ([`Firing`]). Returns how many changed.
#[inline]
fn potentiate<C: Code>(
    w: &mut [f64],
    pre: &[C],
    src_bits: u32,
    arrived: &Arrived<'_>,
    stdp: &StdpParams,
    plus: &DecayTable,
) -> u64 {
    let mut updates = 0;
    for (w, &code) in w.iter_mut().zip(pre) {
        let (source, delay, _) = code.unpack(src_bits);
        if let Some(firing) = arrived.last(source, delay) {
            let x = firing.x * plus.get(arrived.t - firing.tick - delay as u64);
            *w = clamp_weight(*w + stdp.a_plus * x, stdp);
            updates += 1;
        }
    }
    updates
}

/// Where the fixed-weight drives of one tick go: into the state of their targets, counting
/// arrivals and losses locally (added to the run's statistics once per tick).
struct DriveSink<'a> {
    nodes: &'a mut [Node],
    touched: &'a mut Touched,
    membrane: Membrane<'a>,
    target_node: &'a [u32],
    t: u64,
    arrivals: u64,
    lost: u64,
}

impl DriveSink<'_> {
    /// The drive `cell` of target `k` (a position among the targets), accepted or lost.
    #[inline(always)]
    fn apply(&mut self, k: usize, cell: Drive) {
        let j = self.target_node[k];
        let node = &mut self.nodes[j as usize];
        let accepted = node.arrive(j, cell.sum, self.t, self.touched, &self.membrane);
        self.arrivals += cell.count as u64;
        self.lost += if accepted { 0 } else { cell.count as u64 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::NetworkSpec;

    /// Inputs 0-2 (no in-edges, refractory 1 ms = 10 ticks) → recurrent 3-5, fixed, with
    /// latencies of 0.4-2.5 ms (some longer than the period); recurrent edges plastic.
    fn network() -> CompiledNetwork {
        let mut edges = Vec::new();
        for i in 0..3i64 {
            for j in 3..6i64 {
                let weight = 0.25 + 0.1 * ((i * 3 + j) % 4) as f64;
                edges.push((i, j, weight, 40.0 + 70.0 * ((i + 2 * j) % 4) as f64, false));
            }
        }
        for i in 3..6i64 {
            for j in (3..6i64).filter(|&j| j != i) {
                let weight = if (i + j) % 2 == 0 { 0.4 } else { -0.3 };
                edges.push((i, j, weight, 60.0 + 20.0 * j as f64, true));
            }
        }
        let col = |f: fn(&(i64, i64, f64, f64, bool)) -> f64| edges.iter().map(f).collect();
        let weights: Vec<f64> = col(|e| e.2);
        let length_um: Vec<f64> = col(|e| e.3);
        let src: Vec<i64> = edges.iter().map(|e| e.0).collect();
        let dst: Vec<i64> = edges.iter().map(|e| e.1).collect();
        let plastic: Vec<bool> = edges.iter().map(|e| e.4).collect();
        let spec = NetworkSpec {
            n_nodes: 6,
            refractory_ms: &[1.0, 1.0, 1.0, 0.5, 0.5, 0.5],
            threshold: &[1.0; 6],
            tau_m_ms: &[2.0; 6],
            edge_src: &src,
            edge_dst: &dst,
            weights: &weights,
            length_um: &length_um,
            velocity_m_s: &vec![0.1; edges.len()],
            plastic: &plastic,
        };
        CompiledNetwork::new(&spec, 0.1).unwrap()
    }

    fn config(stdp: bool) -> RunConfig {
        RunConfig {
            n_ticks: 300,
            stdp: stdp.then(|| StdpParams {
                a_plus: 0.05,
                tau_plus_ms: 2.0,
                a_minus: 0.06,
                tau_minus_ms: 2.0,
                w_min: -1.0,
                w_max: 1.0,
            }),
            record_raster: true,
            record_causal: false,
            record_final_weights: true,
            snapshot_ticks: vec![100, 300],
            snapshot_edges: (0..15).collect(),
            memory_limit_bytes: u64::MAX,
        }
    }

    /// `(node, first tick, every k ticks)` until `until`, plus `extra` spikes.
    fn stimulus(trains: &[(i64, i64, i64, i64)], extra: &[(i64, i64)]) -> (Vec<i64>, Vec<i64>) {
        let mut spikes: Vec<(i64, i64)> = trains
            .iter()
            .flat_map(|&(i, first, every, until)| {
                (first..until).step_by(every as usize).map(move |t| (i, t))
            })
            .collect();
        spikes.extend_from_slice(extra);
        spikes.into_iter().unzip()
    }

    /// The periodic drive a run would use, and the run with and without it.
    fn runs(
        net: &CompiledNetwork,
        cfg: &RunConfig,
        stim: &(Vec<i64>, Vec<i64>),
    ) -> (Option<(u64, u64)>, RunResult, RunResult) {
        let stim = Stimulus {
            nodes: &stim.0,
            ticks: &stim.1,
        };
        net.validate_run(&stim, cfg).unwrap();
        let plan = RunPlan::new(net, cfg);
        let mut with = Simulation::new(net, &stim, cfg, &plan, Workspace::default());
        let periodic = with.periodic.as_ref().map(|p| (p.start, p.period));
        with.run();
        let mut without = Simulation::new(net, &stim, cfg, &plan, Workspace::default());
        without.periodic = None;
        without.run();
        (periodic, with.finish().0, without.finish().0)
    }

    #[test]
    fn a_periodic_input_drive_is_replayed_with_the_same_bits() {
        let net = network();
        // input 1 has another phase; input 0's spike at 25 falls in its refractory period
        let stim = stimulus(
            &[(0, 0, 10, 300), (1, 3, 10, 300), (2, 0, 10, 300)],
            &[(0, 25)],
        );
        let (periodic, with, without) = runs(&net, &config(true), &stim);
        let (start, period) = periodic.expect("the drive repeats");
        assert_eq!(period, 10);
        // input 1 first fires at 3; the longest input latency is 250 µm at 0.1 m/s = 25 ticks
        assert_eq!(start, 3 + 25);
        assert_eq!(with, without);
        let recurrent_spikes = with.spike_node.iter().filter(|&&n| n >= 3).count();
        assert!(
            recurrent_spikes > 5,
            "the recurrent nodes must fire: {recurrent_spikes}"
        );
        assert_eq!(with.stats.n_stimulus_dropped, 1);
    }

    #[test]
    fn drives_that_do_not_repeat_are_not_replayed() {
        let net = network();
        let cases = [
            // input 2 stops early
            stimulus(&[(0, 0, 10, 300), (1, 0, 10, 300), (2, 0, 10, 150)], &[]),
            // one gap of 20 ticks
            stimulus(
                &[(0, 0, 10, 300), (1, 0, 10, 300), (2, 0, 10, 100)],
                &[(2, 110)],
            ),
            // the inputs repeat with different periods
            stimulus(&[(0, 0, 10, 300), (1, 0, 20, 300)], &[]),
            // the period leaves too little of the run to replay
            stimulus(&[(0, 0, 150, 300)], &[]),
        ];
        for stim in &cases {
            let (periodic, with, without) = runs(&net, &config(true), stim);
            assert_eq!(periodic, None);
            assert_eq!(with, without);
        }
        // without STDP the recurrent edges are fixed too, and their sources can be reached
        let stim = stimulus(&[(0, 0, 10, 300), (1, 0, 10, 300), (2, 0, 10, 300)], &[]);
        assert_eq!(runs(&net, &config(false), &stim).0, None);
        assert!(RunPlan::new(&net, &config(false))
            .driver_max_delay
            .is_empty());
    }

    #[test]
    fn cached_plans_and_reused_buffers_serve_only_their_own_configuration() {
        let net = network();
        let (nodes, ticks) = stimulus(&[(0, 0, 10, 300), (1, 3, 10, 300), (2, 0, 10, 300)], &[]);
        let stim = Stimulus {
            nodes: &nodes,
            ticks: &ticks,
        };
        let mut fewer_snapshots = config(true);
        fewer_snapshots.snapshot_edges = vec![3, 7];
        let mut slower_stdp = config(true);
        if let Some(stdp) = &mut slower_stdp.stdp {
            stdp.tau_minus_ms = 5.0;
        }
        let mut earlier_snapshot = config(true);
        earlier_snapshot.snapshot_ticks = vec![50, 300];
        let mut no_raster = config(false);
        no_raster.record_raster = false;
        let mut no_final_weights = config(true);
        no_final_weights.record_final_weights = false;
        // queued fixed-weight signals instead of dense cells, and a longer run
        let mut causal = config(true);
        causal.record_causal = true;
        let mut longer = config(true);
        longer.n_ticks = 400;
        longer.snapshot_ticks = vec![100, 400];
        // more configurations than the cache holds, each after another one and each twice,
        // on one network (its plans cached, each run in the buffers of the one before),
        // against a fresh network (no cached plan, fresh buffers)
        let configs = [
            config(true),
            config(false),
            fewer_snapshots,
            causal,
            slower_stdp,
            longer,
            earlier_snapshot,
            no_raster,
            no_final_weights,
        ];
        assert!(configs.len() > PLAN_CACHE_ENTRIES);
        for cfg in configs.iter().chain(&configs).chain(configs.iter().rev()) {
            let cached = net.run(&stim, cfg).unwrap();
            assert_eq!(cached, net.clone().run(&stim, cfg).unwrap());
            assert_eq!(
                cached.snapshots.len(),
                cfg.snapshot_ticks.len() * cfg.snapshot_edges.len()
            );
            let n_final = if cfg.record_final_weights {
                net.n_edges()
            } else {
                0
            };
            assert_eq!(cached.final_weights.len(), n_final);
        }
        let batch = net.run_batch(&[stim, stim], &configs[2], 2).unwrap();
        assert_eq!(batch[0], net.clone().run(&stim, &configs[2]).unwrap());
    }

    /// Three nodes, each with a plastic edge to both others: all three fire at tick 0 and
    /// every node gets two arrivals at the same tick `latency_ticks` later.
    fn triangle_run(latency_ticks: u32) -> RunResult {
        let (src, dst): (Vec<i64>, Vec<i64>) = (0..3i64)
            .flat_map(|i| (0..3i64).filter(move |&j| j != i).map(move |j| (i, j)))
            .unzip();
        let spec = NetworkSpec {
            n_nodes: 3,
            refractory_ms: &[0.5; 3],
            threshold: &[1.0; 3],
            tau_m_ms: &[2.0; 3],
            edge_src: &src,
            edge_dst: &dst,
            weights: &[0.6; 6],
            // at 0.1 m/s, 10 µm per tick
            length_um: &[10.0 * latency_ticks as f64; 6],
            velocity_m_s: &[0.1; 6],
            plastic: &[true; 6],
        };
        let net = CompiledNetwork::new(&spec, 0.1).unwrap();
        let cfg = RunConfig {
            n_ticks: 25,
            snapshot_ticks: vec![],
            snapshot_edges: vec![],
            ..config(true)
        };
        let (nodes, ticks) = (vec![0, 1, 2], vec![0, 0, 0]);
        let stim = Stimulus {
            nodes: &nodes,
            ticks: &ticks,
        };
        net.run(&stim, &cfg).unwrap()
    }

    #[test]
    fn every_node_reached_twice_at_one_tick() {
        // accepted (refractory 5 ticks, latency 10): 0.6 + 0.6 reaches the threshold, so
        // all three fire again at 10 and at 20, each listed once per tick as touched
        let run = triangle_run(10);
        assert_eq!(run.spike_tick, [0, 0, 0, 10, 10, 10, 20, 20, 20]);
        assert_eq!((run.stats.n_arrivals, run.stats.n_lost), (12, 0));
        // lost (latency 3 < refractory 5): nothing but the forced firings
        let run = triangle_run(3);
        assert_eq!(run.spike_tick, [0, 0, 0]);
        assert_eq!((run.stats.n_arrivals, run.stats.n_lost), (6, 6));
    }
}
