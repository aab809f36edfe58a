//! The fixed-weight drive: where fixed-weight edges lead, the cells that sum their signals
//! per target and tick, and their delivery (step 2a of a tick).

use super::node::{Membrane, Node};
use super::simulation::Simulation;
use super::workspace::Touched;
use crate::network::CompiledNetwork;

/// Where the fixed-weight edges of a run lead, with STDP on (the non-plastic edges) or off
/// (every edge): computed once when the network is compiled, since every plan and every
/// memory bound needs it and it walks every edge (at N = 400, 473,200 of them: a tenth of the
/// instructions of a 600-ms image, once per run before it was kept).
#[derive(Debug, Clone, Default)]
pub(super) struct FixedEdges {
    /// Position of every node among the targets (`u32::MAX`: none).
    pub(super) target_index: Vec<u32>,
    /// The targets, ascending.
    pub(super) target_node: Vec<u32>,
    /// [`RunPlan::driver_max_delay`](super::plan::RunPlan::driver_max_delay) (which the plan copies when its drive is dense).
    pub(super) driver_max_delay: Vec<u32>,
}

impl FixedEdges {
    pub(super) fn new(net: &CompiledNetwork, stdp_on: bool) -> Self {
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

/// [`RunPlan::driver_max_delay`](super::plan::RunPlan::driver_max_delay): empty unless every fixed-weight edge leaves a node without
/// in-edges.
pub(super) fn drivers(net: &CompiledNetwork, stdp_on: bool) -> Vec<u32> {
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

/// The fixed-weight arrivals of one target at one tick: their weights summed in canonical
/// order (`((0 + w₁) + w₂) + …`) and how many there are.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Drive {
    pub(super) sum: f64,
    pub(super) count: u32,
}

impl Drive {
    #[inline]
    pub(super) fn add(&mut self, w: f64) {
        self.sum += w;
        self.count += 1;
    }
}

/// Where the fixed-weight signals in flight are kept.
pub(super) enum DriveStore {
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

/// Where the fixed-weight drives of one tick go: into the state of their targets, counting
/// arrivals and losses locally (added to the run's statistics once per tick).
pub(super) struct DriveSink<'a> {
    pub(super) nodes: &'a mut [Node],
    pub(super) touched: &'a mut Touched,
    pub(super) membrane: Membrane<'a>,
    pub(super) target_node: &'a [u32],
    pub(super) t: u64,
    pub(super) arrivals: u64,
    pub(super) lost: u64,
}

impl DriveSink<'_> {
    /// The drive `cell` of target `k` (a position among the targets), accepted or lost.
    #[inline(always)]
    pub(super) fn apply(&mut self, k: usize, cell: Drive) {
        let j = self.target_node[k];
        let node = &mut self.nodes[j as usize];
        let accepted = node.arrive(j, cell.sum, self.t, self.touched, &self.membrane);
        self.arrivals += cell.count as u64;
        self.lost += if accepted { 0 } else { cell.count as u64 };
    }
}

impl Simulation<'_> {
    /// Step 2a: the fixed-weight arrivals due at `t`, one drive per target, accepted or lost
    /// together.
    pub(super) fn deliver_drive(&mut self, slot: usize, t: u64) {
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
}
