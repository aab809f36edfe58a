//! Pair-based STDP (docs/model.md, "STDP"): each firing's pre-synaptic trace kept once per
//! source, depression when a plastic signal arrives after its target fired (step 2b of a
//! tick), potentiation when the target fires (step 5), and the weight bounds.
//!
//! With `x` the pre-synaptic trace of an edge and `y` the post-synaptic trace of its target,
//! both jumping by 1 at their events and decaying as `exp(-Δt / τ±)`: an arrival at `t_pre`
//! changes the weight by `−A−·y(t_pre)`, a firing at `t_post` by `+A+·x(t_post)`, and the
//! weight is clamped to `[w_min, w_max]`.

use super::config::StdpParams;
use super::decay::DecayTable;
use super::simulation::Simulation;
use super::workspace::Workspace;
use super::NEVER;
use crate::network::{Code, CompiledNetwork, EdgeCodes};

/// `min(max(w, w_min), w_max)` as `crdm.reference` computes it (Python's `max` keeps its first
/// argument when the two are equal, so `-0.0` stays `-0.0`): one `maxsd` and one `minsd`,
/// without the NaN handling of `f64::max`, which a weight never needs (weights, amplitudes
/// and traces are finite).
#[inline(always)]
pub(super) fn clamp_weight(w: f64, stdp: &StdpParams) -> f64 {
    let w = if stdp.w_min > w { stdp.w_min } else { w };
    if stdp.w_max < w {
        stdp.w_max
    } else {
        w
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
pub(super) struct Firing {
    pub(super) tick: u64,
    pub(super) x: f64,
}

/// A plastic signal in flight: the edge's rank and its target.
#[derive(Debug, Clone, Copy)]
pub(super) struct PlasticSignal {
    pub(super) rank: u32,
    pub(super) target: u32,
}

/// Where a node's recent firings live in a run's firing history ([`Firing`]): entries
/// `first .. first + mask + 1`, firing `k` at `first + (k & mask)`; `count` firings so far.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct HistoryRing {
    pub(super) first: usize,
    pub(super) mask: usize,
    pub(super) count: usize,
}

/// The ring of each node that has plastic out-edges, sized to hold every firing that can
/// still be in flight on one of them plus the one before: a node fires at most once per
/// refractory period, so within its longest plastic latency `d` (at most the run) fit
/// `d / R + 1` firings. Sizes are powers of two, so that an entry is found by a mask.
pub(super) fn history_rings(net: &CompiledNetwork, n_ticks: u64) -> (Vec<HistoryRing>, usize) {
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
pub(super) fn history_size(net: &CompiledNetwork, i: usize, n_ticks: u64) -> usize {
    let longest = net.plastic_out_max_delay[i] as u64;
    if longest == 0 {
        return 0;
    }
    let refractory = (net.refractory_ticks[i] as u64).max(1);
    (longest.min(n_ticks) / refractory + 2).next_power_of_two() as usize
}

/// The firing histories of a run at tick `t`.
pub(super) struct Arrived<'a> {
    pub(super) rings: &'a [HistoryRing],
    pub(super) history: &'a [Firing],
    pub(super) t: u64,
}

impl Arrived<'_> {
    /// The last firing of `source` that has arrived by `t` on an edge of latency `delay`:
    /// newest first, past those still in flight (the ring holds all of them and one more).
    #[inline]
    pub(super) fn last(&self, source: u32, delay: u32) -> Option<Firing> {
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
pub(super) fn potentiate<C: Code>(
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

impl Simulation<'_> {
    /// Step 2b: the plastic arrivals due at `t`, one by one in canonical order (emission tick,
    /// source id, edge id), which is the order they were pushed into the slot.
    pub(super) fn deliver_plastic(&mut self, slot: usize, t: u64) {
        if self.cfg.record_causal {
            self.deliver_plastic_with::<true>(slot, t);
        } else {
            self.deliver_plastic_with::<false>(slot, t);
        }
    }

    /// [`Self::deliver_plastic`] with the causal recorder on (`CAUSAL`) or off: two copies of
    /// the loop, so that the usual one holds fewer values and keeps its counts in registers
    /// instead of adding to the stack at every arrival.
    pub(super) fn deliver_plastic_with<const CAUSAL: bool>(&mut self, slot: usize, t: u64) {
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

    /// The STDP side of node `j` firing at `t` (step 5): its plastic in-edges are potentiated
    /// by their pre-synaptic traces, the firing enters `j`'s history (the traces its out-edges
    /// will carry) and `j`'s post-synaptic trace jumps.
    pub(super) fn stdp_fired(&mut self, j: usize, t: u64) {
        let net = self.net;
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
}
