//! Replaying a fixed-weight drive that repeats: the image stimulus fires its active pixels
//! periodically, so from some tick on each period's drive is the one before, bit for bit.

use super::config::RunConfig;
use super::drive::Drive;
use super::memory::ring_slots;
use super::plan::RunPlan;
use super::workspace::refill;
use super::NEVER;
use crate::network::CompiledNetwork;

/// The fixed-weight drive of a run from tick `start` on, when it repeats every `period` ticks:
/// the run's fixed-weight edges all leave stimulus-driven nodes ([`drivers`](super::drive::drivers)) and each of
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
/// the cells (which [`super::Engine::recording_bound_bytes`] counts twice when a run may
/// replay).
#[derive(Debug)]
pub(super) struct PeriodicDrive {
    pub(super) start: u64,
    pub(super) period: u64,
    /// Row `r` (ticks `start + r + k·period`): `cells[r * n_targets..]`, and bit `k` of its
    /// `words` words of `due` set where target `k` has a drive.
    pub(super) cells: Vec<Drive>,
    pub(super) due: Vec<u64>,
    pub(super) words: usize,
}

impl PeriodicDrive {
    /// The periodic drive of `stimulus` (sorted by tick, node), if it has one worth using; its
    /// rows then take the allocations of `cells_buffer` and `due_buffer`.
    pub(super) fn new(
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
        if period >= ring_slots(net, cfg) || start.saturating_add(2 * period) > n_ticks {
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
