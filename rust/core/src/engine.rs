//! The event-driven CRDM simulation: a ring buffer of delay slots, refractory competition,
//! leaky summation, pair-based STDP with lazily decayed traces, and optional recorders.
//!
//! The order of operations inside one tick `t` (docs/model.md, "One tick") is:
//! 1. weight snapshots scheduled at `t` are taken (state after ticks `< t`);
//! 2. arrivals due at `t` are delivered in canonical order: each is accepted (summed into the
//!    target's `u`) or lost (target refractory), then plays its STDP pre-synaptic role;
//! 3. stimulus activations due at `t` mark their (non-refractory) nodes to fire;
//! 4. every node whose `u` reached its threshold at `t` is marked to fire;
//! 5. marked nodes fire in ascending id: record, reset, refractory, STDP post-synaptic role,
//!    and one signal per out-edge into the slot of tick `t + delay`.
//!
//! Every floating-point expression here has a twin in `crdm.reference` evaluated in the same
//! order, so the two backends agree bit for bit.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{check_indices, check_len, CrdmError, Result};
use crate::network::CompiledNetwork;

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
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Number of ticks to simulate (ticks `0..n_ticks`).
    pub n_ticks: u64,
    pub stdp: Option<StdpParams>,
    /// Record every firing as (node, tick).
    pub record_raster: bool,
    /// Record, for every firing, the accepted arrivals summed since the node's last reset.
    /// Implies the raster, which it is aligned with.
    pub record_causal: bool,
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

/// The STDP traces' decays as lookups instead of `exp` calls (when STDP is on): they save an
/// `exp` per plastic arrival and per plastic in-edge of a firing node, the engine's hottest
/// loops, and match `crdm.reference` bit for bit. (Membrane decays stay direct calls: tables
/// for them measured no faster, since a node decays at most once per tick.)
#[derive(Debug, Clone)]
struct DecayTables {
    stdp: Option<(DecayTable, DecayTable)>,
}

impl DecayTables {
    fn new(net: &CompiledNetwork, cfg: &RunConfig) -> Self {
        let stdp = cfg.stdp.as_ref().map(|p| {
            (
                DecayTable::new(cfg.n_ticks, net.dt_ms, p.tau_plus_ms),
                DecayTable::new(cfg.n_ticks, net.dt_ms, p.tau_minus_ms),
            )
        });
        DecayTables { stdp }
    }
}

#[inline]
fn clamp_weight(w: f64, stdp: &StdpParams) -> f64 {
    w.max(stdp.w_min).min(stdp.w_max)
}

impl CompiledNetwork {
    /// Upper bound, in bytes, of what the enabled recorders and the delay ring can hold for
    /// `cfg`.
    pub fn recording_bound_bytes(&self, cfg: &RunConfig) -> u64 {
        let nt = cfg.n_ticks;
        let max_fires = |i: usize| nt.div_ceil(self.refractory_ticks[i] as u64);
        // the delay ring: one slot per tick of the longest latency (within the run), each an
        // empty `Vec` header before any signal is in flight; a latency of 10^9 ticks would
        // otherwise allocate 24 GB before the first tick
        let ring_slots = (self.max_delay_ticks as u64).min(nt) + 1;
        let mut bytes = ring_slots.saturating_mul(RING_SLOT_BYTES);
        bytes = bytes.saturating_add(
            (cfg.snapshot_ticks.len() as u64)
                .saturating_mul(cfg.snapshot_edges.len() as u64)
                .saturating_mul(8),
        );
        if cfg.record_raster || cfg.record_causal {
            let fires: u64 = (0..self.n_nodes).map(max_fires).sum();
            // node + tick, and with the causal recorder a forced flag and an offset
            let per_spike = if cfg.record_causal { 17 } else { 8 };
            bytes = bytes.saturating_add(fires.saturating_mul(per_spike));
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
                what: "the delay ring, raster, causal record and snapshots".to_string(),
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
        let tables = DecayTables::new(self, cfg);
        self.run_with_tables(stim, cfg, &tables)
    }

    fn run_with_tables(
        &self,
        stim: &Stimulus<'_>,
        cfg: &RunConfig,
        tables: &DecayTables,
    ) -> RunResult {
        let mut sim = Simulation::new(self, stim, cfg, tables);
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
        let tables = DecayTables::new(self, cfg);
        let tables = &tables;
        let next = AtomicUsize::new(0);
        let mut results: Vec<Option<RunResult>> = vec![None; stimuli.len()];
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..n_threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let k = next.fetch_add(1, Ordering::Relaxed);
                            let Some(stim) = stimuli.get(k) else { break };
                            done.push((k, self.run_with_tables(stim, cfg, tables)));
                        }
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

/// Mutable state of one run.
struct Simulation<'n> {
    net: &'n CompiledNetwork,
    cfg: &'n RunConfig,
    /// Stimulus sorted by (tick, node).
    stimulus: Vec<(u64, u32)>,
    /// `ring[t % ring.len()]` holds the edges whose signals arrive at tick `t`.
    ring: Vec<Vec<u32>>,
    weights: Vec<f64>,
    /// Summation `u` and the tick it was last brought up to date.
    u: Vec<f64>,
    u_tick: Vec<u64>,
    /// First tick at which each node accepts arrivals again.
    ready_tick: Vec<u64>,
    /// STDP pre-synaptic trace per edge (value at `pre_tick`) and post-synaptic trace per node.
    pre_trace: Vec<f64>,
    pre_tick: Vec<u64>,
    post_trace: Vec<f64>,
    post_tick: Vec<u64>,
    /// Accepted arrivals since the node's last reset (causal recorder only).
    pending: Vec<Vec<(u32, u32, f64)>>,
    touched: Vec<u32>,
    is_touched: Vec<bool>,
    firing: Vec<u32>,
    is_firing: Vec<bool>,
    is_forced: Vec<bool>,
    /// STDP trace decays by elapsed ticks.
    tables: &'n DecayTables,
    out: RunResult,
}

impl<'n> Simulation<'n> {
    fn new(
        net: &'n CompiledNetwork,
        stim: &Stimulus<'_>,
        cfg: &'n RunConfig,
        tables: &'n DecayTables,
    ) -> Self {
        let n = net.n_nodes;
        let m = net.n_edges();
        let mut stimulus: Vec<(u64, u32)> = stim
            .ticks
            .iter()
            .zip(stim.nodes)
            .map(|(&t, &i)| (t as u64, i as u32))
            .collect();
        stimulus.sort_unstable();
        // a signal never needs a slot further ahead than the end of the run
        let ring_len = (net.max_delay_ticks as u64).min(cfg.n_ticks) as usize + 1;
        let stdp_on = cfg.stdp.is_some();
        let causal = cfg.record_causal;
        let mut out = RunResult {
            spike_count: vec![0; n],
            ..RunResult::default()
        };
        if causal {
            out.cause_ptr.push(0);
        }
        out.snapshots
            .reserve(cfg.snapshot_ticks.len() * cfg.snapshot_edges.len());
        Simulation {
            net,
            cfg,
            stimulus,
            ring: vec![Vec::new(); ring_len],
            weights: net.weights.clone(),
            u: vec![0.0; n],
            u_tick: vec![0; n],
            ready_tick: vec![0; n],
            pre_trace: if stdp_on { vec![0.0; m] } else { Vec::new() },
            pre_tick: if stdp_on { vec![NEVER; m] } else { Vec::new() },
            post_trace: if stdp_on { vec![0.0; n] } else { Vec::new() },
            post_tick: if stdp_on { vec![NEVER; n] } else { Vec::new() },
            pending: if causal {
                vec![Vec::new(); n]
            } else {
                Vec::new()
            },
            touched: Vec::new(),
            is_touched: vec![false; n],
            firing: Vec::new(),
            is_firing: vec![false; n],
            is_forced: vec![false; n],
            tables,
            out,
        }
    }

    fn snapshot(&mut self) {
        for &e in &self.cfg.snapshot_edges {
            self.out.snapshots.push(self.weights[e as usize]);
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
            self.deliver(t);
            while let Some(&(tick, node)) = self.stimulus.get(next_stimulus) {
                if tick != t {
                    break;
                }
                next_stimulus += 1;
                let i = node as usize;
                if t < self.ready_tick[i] || self.is_firing[i] {
                    self.out.stats.n_stimulus_dropped += 1;
                } else {
                    self.is_firing[i] = true;
                    self.is_forced[i] = true;
                    self.firing.push(node);
                }
            }
            for k in 0..self.touched.len() {
                let j = self.touched[k] as usize;
                self.is_touched[j] = false;
                if !self.is_firing[j] && self.u[j] >= self.net.threshold[j] {
                    self.is_firing[j] = true;
                    self.firing.push(j as u32);
                }
            }
            self.touched.clear();
            self.firing.sort_unstable();
            for k in 0..self.firing.len() {
                let j = self.firing[k];
                self.fire(j as usize, t);
            }
            self.firing.clear();
        }
        if self.cfg.snapshot_ticks.get(next_snapshot) == Some(&n_ticks) {
            self.snapshot();
        }
    }

    /// Delivers the signals due at tick `t` in canonical order (emission tick, source id,
    /// edge id), which is the order they were pushed into the slot.
    fn deliver(&mut self, t: u64) {
        let slot = (t % self.ring.len() as u64) as usize;
        let arrivals = std::mem::take(&mut self.ring[slot]);
        let net = self.net;
        for &edge in &arrivals {
            let e = edge as usize;
            let j = net.edge_dst[e] as usize;
            self.out.stats.n_arrivals += 1;
            if t < self.ready_tick[j] {
                self.out.stats.n_lost += 1;
            } else {
                if self.u_tick[j] != t {
                    self.u[j] *= decay(t - self.u_tick[j], net.dt_ms, net.tau_m_ms[j]);
                    self.u_tick[j] = t;
                }
                let w = self.weights[e];
                self.u[j] += w;
                if self.cfg.record_causal {
                    self.pending[j].push((edge, t as u32, w));
                }
                if !self.is_touched[j] {
                    self.is_touched[j] = true;
                    self.touched.push(j as u32);
                }
            }
            if let (Some(stdp), Some((plus, minus))) = (&self.cfg.stdp, &self.tables.stdp) {
                if net.plastic[e] {
                    // post-before-pre: depress by the target's post-synaptic trace
                    if self.post_tick[j] != NEVER {
                        let y = self.post_trace[j] * minus.get(t - self.post_tick[j]);
                        self.weights[e] = clamp_weight(self.weights[e] - stdp.a_minus * y, stdp);
                        self.out.stats.n_stdp_updates += 1;
                    }
                    self.pre_trace[e] = if self.pre_tick[e] == NEVER {
                        1.0
                    } else {
                        self.pre_trace[e] * plus.get(t - self.pre_tick[e]) + 1.0
                    };
                    self.pre_tick[e] = t;
                }
            }
        }
        let mut arrivals = arrivals;
        arrivals.clear();
        self.ring[slot] = arrivals;
    }

    fn fire(&mut self, j: usize, t: u64) {
        let net = self.net;
        let out = &mut self.out;
        out.stats.n_spikes += 1;
        out.spike_count[j] += 1;
        if self.is_forced[j] {
            out.stats.n_forced += 1;
        }
        if self.cfg.record_raster || self.cfg.record_causal {
            out.spike_node.push(j as u32);
            out.spike_tick.push(t as u32);
        }
        if self.cfg.record_causal {
            out.spike_forced.push(self.is_forced[j]);
            for (edge, tick, w) in self.pending[j].drain(..) {
                out.cause_edge.push(edge);
                out.cause_tick.push(tick);
                out.cause_weight.push(w);
            }
            out.cause_ptr.push(out.cause_edge.len() as u64);
        }
        self.is_firing[j] = false;
        self.is_forced[j] = false;
        self.u[j] = 0.0;
        self.u_tick[j] = t;
        self.ready_tick[j] = t + net.refractory_ticks[j] as u64;

        if let (Some(stdp), Some((plus, minus))) = (&self.cfg.stdp, &self.tables.stdp) {
            // pre-before-post (arrivals at this very tick included): potentiate
            for &edge in &net.plastic_in_edge[net.plastic_in_ptr[j]..net.plastic_in_ptr[j + 1]] {
                let e = edge as usize;
                if self.pre_tick[e] != NEVER {
                    let x = self.pre_trace[e] * plus.get(t - self.pre_tick[e]);
                    self.weights[e] = clamp_weight(self.weights[e] + stdp.a_plus * x, stdp);
                    self.out.stats.n_stdp_updates += 1;
                }
            }
            self.post_trace[j] = if self.post_tick[j] == NEVER {
                1.0
            } else {
                self.post_trace[j] * minus.get(t - self.post_tick[j]) + 1.0
            };
            self.post_tick[j] = t;
        }

        let n_ticks = self.cfg.n_ticks;
        let ring_len = self.ring.len() as u64;
        for &edge in &net.out_edge[net.out_ptr[j]..net.out_ptr[j + 1]] {
            let arrival = t + net.delay_ticks[edge as usize] as u64;
            if arrival < n_ticks {
                self.ring[(arrival % ring_len) as usize].push(edge);
            }
        }
    }

    fn finish(mut self) -> RunResult {
        self.out.final_weights = self.weights;
        self.out
    }
}
