//! The buffers a run works in, and the pool that hands them from one run to the next.

use std::sync::Mutex;

use super::drive::Drive;
use super::lock;
use super::node::Node;
use super::stdp::{Firing, HistoryRing, PlasticSignal};

/// The buffers of finished runs, kept by the engine for its next runs (at most
/// [`WORKSPACE_POOL_ENTRIES`]: one per run that was in progress at once). A 600-ms image at
/// N = 200 fills about 1.2 MB of drive cells, replayed rows and plastic weights; allocated
/// afresh for every run, the allocator handed those pages back to the kernel after each run,
/// which then faulted them in and cleared them again (about 475 page faults per image).
#[derive(Default)]
pub(super) struct WorkspacePool(Mutex<Vec<Workspace>>);

pub(super) const WORKSPACE_POOL_ENTRIES: usize = 64;

impl WorkspacePool {
    pub(super) fn take(&self) -> Workspace {
        lock(&self.0).pop().unwrap_or_default()
    }

    pub(super) fn put(&self, workspace: Workspace) {
        let mut entries = lock(&self.0);
        if entries.len() < WORKSPACE_POOL_ENTRIES {
            entries.push(workspace);
        }
    }
}

/// The buffers of a [`Simulation`](super::simulation::Simulation), cleared and refilled by each run: only their capacity
/// carries over from one run to the next, never a value.
#[derive(Default)]
pub(super) struct Workspace {
    /// Stimulus sorted by (tick, node).
    pub(super) stimulus: Vec<(u64, u32)>,
    /// `ring[t % ring.len()]` holds the plastic signals that arrive at tick `t`.
    pub(super) ring: Vec<Vec<PlasticSignal>>,
    /// The buffers of the run's [`DriveStore`](super::drive::DriveStore) and [`PeriodicDrive`](super::periodic::PeriodicDrive), kept here between runs
    /// (empty while a run holds them).
    pub(super) cells: Vec<Drive>,
    pub(super) due: Vec<u64>,
    pub(super) queued: Vec<Vec<u32>>,
    pub(super) queued_due: Vec<u32>,
    pub(super) periodic_cells: Vec<Drive>,
    pub(super) periodic_due: Vec<u64>,
    /// With STDP, every plastic edge's weight, by rank.
    pub(super) plastic: Vec<f64>,
    /// With STDP, each node's ring of recent firings ([`Firing`]) and the entries of all.
    pub(super) rings: Vec<HistoryRing>,
    pub(super) history: Vec<Firing>,
    /// The state of every node.
    pub(super) nodes: Vec<Node>,
    /// Accepted arrivals since the node's last reset (causal recorder only).
    pub(super) pending: Vec<Vec<(u32, u32, f64)>>,
    /// The nodes that accepted an arrival at this tick, and those marked to fire.
    pub(super) touched: Touched,
    pub(super) firing: Vec<u32>,
}

/// The nodes that accepted an arrival at this tick, each once: `ids[..len]`. It has room for
/// every node and one more, so that an arrival writes its target before knowing whether it is
/// new there: whether a node was already touched at this tick is as likely as not, and a
/// branch on it mispredicts often.
#[derive(Default)]
pub(super) struct Touched {
    pub(super) ids: Vec<u32>,
    pub(super) len: usize,
}

impl Touched {
    pub(super) fn reset(&mut self, n_nodes: usize) {
        self.ids.clear();
        self.ids.resize(n_nodes + 1, 0);
        self.len = 0;
    }

    /// Lists node `j` (state `node`) if it `accepted` and was not listed yet.
    #[inline(always)]
    pub(super) fn add(&mut self, node: &mut Node, j: u32, accepted: bool) {
        // `len` stays at most the number of nodes (each is listed once), so this write fits
        self.ids[self.len] = j;
        self.len += usize::from(accepted & !node.touched);
        node.touched |= accepted;
    }

    pub(super) fn ids(&self) -> &[u32] {
        &self.ids[..self.len]
    }
}

/// `buffer` holding `len` copies of `value` (its allocation reused).
pub(super) fn refill<T: Clone>(mut buffer: Vec<T>, len: usize, value: T) -> Vec<T> {
    buffer.clear();
    buffer.resize(len, value);
    buffer
}

/// `slots` holding `len` empty lists (their allocations reused).
pub(super) fn refill_lists<T>(mut slots: Vec<Vec<T>>, len: usize) -> Vec<Vec<T>> {
    slots.truncate(len);
    slots.iter_mut().for_each(Vec::clear);
    slots.resize_with(len, Vec::new);
    slots
}
