//! One run: the tick loop (docs/model.md, "One tick") and the emission of signals.

use super::config::{RunConfig, RunResult, Stimulus};
use super::drive::{Drive, DriveStore};
use super::memory::ring_slots;
use super::node::{Membrane, Node};
use super::periodic::PeriodicDrive;
use super::plan::{RunPlan, WeightAt};
use super::stdp::{Firing, PlasticSignal};
use super::workspace::{refill, refill_lists, Workspace};
use crate::network::{Code, CompiledNetwork, EdgeCodes};

/// Mutable state of one run.
pub(super) struct Simulation<'n> {
    pub(super) net: &'n CompiledNetwork,
    pub(super) cfg: &'n RunConfig,
    pub(super) plan: &'n RunPlan,
    pub(super) ws: Workspace,
    pub(super) drive: DriveStore,
    /// The fixed-weight drive from `periodic.start` on, when it repeats (dense cells only).
    pub(super) periodic: Option<PeriodicDrive>,
    pub(super) out: RunResult,
}

impl<'n> Simulation<'n> {
    /// A run from the network's initial weights and a resting state, in the buffers of `ws`.
    pub(super) fn new(
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
        let ring_len = ring_slots(net, cfg) as usize;
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

    pub(super) fn snapshot(&mut self) {
        for &at in &self.plan.snapshot_from {
            self.out.snapshots.push(match at {
                WeightAt::Fixed(pos) => self.net.weights[pos as usize],
                WeightAt::Plastic(rank) => self.ws.plastic[rank as usize],
            });
        }
    }

    pub(super) fn run(&mut self) {
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

    pub(super) fn membrane(&self) -> Membrane<'n> {
        Membrane {
            table: &self.plan.membrane,
            dt_ms: self.net.dt_ms,
            tau_m_ms: &self.net.tau_m_ms,
        }
    }

    /// Step 5 for node `j`, marked to fire at `t`: record, reset, refractoriness, STDP.
    pub(super) fn fire(&mut self, j: usize, t: u64) {
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
        self.stdp_fired(j, t);
    }

    /// Step 5's last part, for the nodes that fired at `t` (ascending id): one signal per
    /// out-edge (in edge-id order) that arrives within the run; plastic ones are queued,
    /// fixed-weight ones go to the drive. Emitting after all of the tick's firings is the same
    /// as emitting with each, since signals land in later slots, which nothing at `t` reads.
    pub(super) fn emit(&mut self, slot: usize, t: u64) {
        let net = self.net;
        match &net.codes {
            EdgeCodes::Narrow { codes, dst_bits } => self.emit_with(codes, *dst_bits, slot, t),
            EdgeCodes::Wide(codes) => self.emit_with(codes, 0, slot, t),
        }
    }

    pub(super) fn emit_with<C: Code>(&mut self, codes: &[C], dst_bits: u32, slot: usize, t: u64) {
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
    pub(super) fn finish(mut self) -> (RunResult, Workspace) {
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
