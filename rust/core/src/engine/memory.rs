//! The memory a run may need: the bound checked before a run starts, and the sizes it
//! counts.

use super::config::RunConfig;
use super::drive::Drive;
use super::stdp::history_size;
use super::Engine;
use crate::network::CompiledNetwork;

/// Bytes of one delay-ring slot (an empty `Vec<u32>`), as counted by the memory bound.
pub(super) const RING_SLOT_BYTES: u64 = std::mem::size_of::<Vec<u32>>() as u64;

/// Most bytes a run's dense drive cells may take: beyond this (very long latencies or very
/// many targets) the fixed-weight signals are queued instead, with the same arithmetic.
pub(super) const DENSE_DRIVE_MAX_BYTES: u64 = 16 << 20;

/// Bytes of one drive cell (sum and count of the fixed-weight arrivals of one target and tick).
pub(super) const DRIVE_CELL_BYTES: u64 = std::mem::size_of::<Drive>() as u64;

/// Bytes of one entry of a firing history (tick and pre-synaptic trace).
pub(super) const HISTORY_ENTRY_BYTES: u64 = 16;

/// Bytes of the dense drive of a run: a cell per (slot, target) and a bit per cell that says
/// it is non-empty.
pub(super) fn dense_cells_bytes(ring_slots: u64, n_targets: usize) -> u64 {
    let row = (n_targets as u64) * DRIVE_CELL_BYTES + (n_targets as u64).div_ceil(64) * 8;
    ring_slots.saturating_mul(row)
}

/// Slots of a run's delay rings: a signal never needs one further ahead than the end of the
/// run.
pub(super) fn ring_slots(net: &CompiledNetwork, cfg: &RunConfig) -> u64 {
    (net.max_delay_ticks as u64).min(cfg.n_ticks) + 1
}

/// Bytes of the dense drive cells of a run, or `None` when the run queues its fixed-weight
/// signals (causal recorder on, or more than [`DENSE_DRIVE_MAX_BYTES`]).
pub(super) fn dense_drive_bytes(
    net: &CompiledNetwork,
    cfg: &RunConfig,
    n_targets: usize,
) -> Option<u64> {
    let bytes = dense_cells_bytes(ring_slots(net, cfg), n_targets);
    (!cfg.record_causal && bytes <= DENSE_DRIVE_MAX_BYTES).then_some(bytes)
}

impl Engine {
    /// Upper bound, in bytes, of what the enabled recorders, the delay rings and the drive
    /// cells can hold for `cfg`: the one bound of the engine's layout, which
    /// [`Engine::run`] checks against the memory limit and the binding hands to Python.
    pub fn recording_bound_bytes(&self, cfg: &RunConfig) -> u64 {
        let net = &self.net;
        let nt = cfg.n_ticks;
        let max_fires = |i: usize| nt.div_ceil(net.refractory_ticks[i] as u64);
        // the delay rings (plastic signals, and the fixed-weight drive's per-slot lists or
        // queue): one slot per tick of the longest latency (within the run), each an empty
        // `Vec` header before any signal is in flight; a latency of 10^9 ticks would otherwise
        // allocate 24 GB before the first tick. Dense drive cells are capped, else queued.
        let ring_slots = ring_slots(net, cfg);
        let mut bytes = ring_slots.saturating_mul(2 * RING_SLOT_BYTES);
        let fixed = self.fixed(cfg.stdp.is_some());
        let n_targets = fixed.target_node.len();
        if let Some(dense) = dense_drive_bytes(net, cfg, n_targets) {
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
            let entries: u64 = (0..net.n_nodes)
                .map(|i| history_size(net, i, nt) as u64)
                .fold(0u64, u64::saturating_add);
            bytes = bytes.saturating_add(entries.saturating_mul(HISTORY_ENTRY_BYTES));
        }
        if cfg.record_raster || cfg.record_causal {
            let fires: u64 = (0..net.n_nodes).map(max_fires).sum();
            // node + tick, and with the causal recorder a forced flag and an offset
            let per_spike = if cfg.record_causal { 17 } else { 8 };
            bytes = bytes.saturating_add(fires.saturating_mul(per_spike));
        }
        if cfg.record_final_weights {
            bytes = bytes.saturating_add((net.n_edges() as u64).saturating_mul(8));
        }
        if cfg.record_causal {
            // every accepted arrival is one cause: at most one per source firing per edge
            let arrivals: u64 = (0..net.n_nodes)
                .map(|i| {
                    let out = (net.out_ptr[i + 1] - net.out_ptr[i]) as u64;
                    out.saturating_mul(max_fires(i))
                })
                .fold(0u64, u64::saturating_add);
            bytes = bytes.saturating_add(arrivals.saturating_mul(16));
        }
        bytes
    }
}
