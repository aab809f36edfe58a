//! What every run of one configuration shares (decay tables, where the drive and the
//! snapshots live, the firing-history layout), and the cache of recent plans.

use std::sync::{Arc, Mutex};

use super::config::RunConfig;
use super::decay::{decay, DecayTable};
use super::drive::FixedEdges;
use super::lock;
use super::memory::dense_drive_bytes;
use super::stdp::{history_rings, HistoryRing};
use crate::network::CompiledNetwork;

/// What every run of a batch shares: the STDP trace decays as lookups instead of `exp` calls
/// (they save an `exp` per plastic arrival and per plastic in-edge of a firing node, and match
/// `crdm.reference` bit for bit), and where the fixed-weight drive is kept.
#[derive(Debug, Clone)]
pub(super) struct RunPlan {
    pub(super) stdp: Option<(DecayTable, DecayTable)>,
    /// Position of every node among the targets of fixed-weight edges (`u32::MAX`: none).
    pub(super) target_index: Vec<u32>,
    /// The targets of fixed-weight edges, ascending.
    pub(super) target_node: Vec<u32>,
    /// Drive cells for every (slot, target) pair, filled as signals leave; otherwise the
    /// fixed-weight signals are queued one by one and summed when they arrive.
    pub(super) dense: bool,
    /// `decay(Δ, dt, τ_m)` for `Δ < MEMBRANE_TABLE_TICKS`, one row per distinct `τ_m` (at most
    /// [`MEMBRANE_TABLES`]), and where each node's row starts (`u32::MAX`: none, call `exp`).
    /// A node driven every few ticks decays once per tick, so this saves an `exp` per accepted
    /// drive.
    pub(super) membrane: Vec<f64>,
    pub(super) membrane_from: Vec<u32>,
    /// Where each snapshot edge's weight lives during the run.
    pub(super) snapshot_from: Vec<WeightAt>,
    /// With STDP, the position of every rank (initial weights, final weights, causes).
    pub(super) plastic_pos: Vec<u32>,
    /// With STDP, where each node keeps its recent firings ([`Firing`](super::stdp::Firing)): its ring's
    /// first entry and size minus one (a power of two; size 0 for nodes without plastic
    /// out-edges), and the entries of all rings together.
    pub(super) history: Vec<HistoryRing>,
    pub(super) history_len: usize,
    /// When every fixed-weight edge leaves a node that nothing can reach (so it fires only
    /// when the stimulus forces it), the longest fixed-weight latency of each such node
    /// (0: no fixed-weight out-edge); empty otherwise. A run whose stimulus makes these nodes
    /// fire periodically then replays one period of their drive ([`PeriodicDrive`](super::periodic::PeriodicDrive)).
    pub(super) driver_max_delay: Vec<u32>,
}

/// The plans of the last configurations an engine ran (most recent first, at most
/// [`PLAN_CACHE_ENTRIES`]), reused while a configuration comes back: building a plan walks
/// the snapshot edges and fills the decay tables (4 % of the instructions of a 600-ms image
/// at N = 50), which a loop of single runs would otherwise pay per run. More than one, since
/// sweeps alternate configurations (Figure 3 runs every few images with STDP, then without).
#[derive(Default)]
pub(super) struct PlanCache(Mutex<Vec<Arc<(RunConfig, RunPlan)>>>);

pub(super) const PLAN_CACHE_ENTRIES: usize = 4;

impl PlanCache {
    /// The plan for `cfg`, built by `build` (outside the lock) unless it is cached.
    pub(super) fn get(
        &self,
        cfg: &RunConfig,
        build: impl FnOnce() -> RunPlan,
    ) -> Arc<(RunConfig, RunPlan)> {
        let lock = || lock(&self.0);
        {
            let mut entries = lock();
            if let Some(k) = entries.iter().position(|entry| entry.0 == *cfg) {
                let entry = entries.remove(k);
                entries.insert(0, Arc::clone(&entry));
                return entry;
            }
        }
        let entry = Arc::new((cfg.clone(), build()));
        let mut entries = lock();
        entries.insert(0, Arc::clone(&entry));
        entries.truncate(PLAN_CACHE_ENTRIES);
        entry
    }
}

/// A weight during a run: fixed (the network's, by position) or plastic (the run's, by rank).
#[derive(Debug, Clone, Copy)]
pub(super) enum WeightAt {
    Fixed(u32),
    Plastic(u32),
}

pub(super) const MEMBRANE_TABLE_TICKS: usize = 256;
pub(super) const MEMBRANE_TABLES: usize = 64;

/// Where each snapshot edge's weight lives during a run.
pub(super) fn snapshot_sources(
    net: &CompiledNetwork,
    cfg: &RunConfig,
    plastic_pos: &[u32],
) -> Vec<WeightAt> {
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
    /// The plan of `cfg` on `net`, whose fixed-weight edges lead to `fixed`.
    pub(super) fn new(net: &CompiledNetwork, fixed: &FixedEdges, cfg: &RunConfig) -> Self {
        let stdp = cfg.stdp.as_ref().map(|p| {
            (
                DecayTable::new(cfg.n_ticks, net.dt_ms, p.tau_plus_ms),
                DecayTable::new(cfg.n_ticks, net.dt_ms, p.tau_minus_ms),
            )
        });
        let dense = dense_drive_bytes(net, cfg, fixed.target_node.len()).is_some();
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
