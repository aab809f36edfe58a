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
//!
//! One concern per module: `config` (what a run is asked and gives back), `plan` (what runs
//! of one configuration share), `memory` (the bound checked before a run), `workspace` (the
//! buffers runs reuse), `node` (a node's state and leaky summation), `drive` (fixed-weight
//! signals, step 2a), `periodic` (replaying a periodic drive), `stdp` (traces, depression in
//! step 2b, potentiation in step 5), `simulation` (the tick loop and emission).

mod config;
mod decay;
mod drive;
mod memory;
mod node;
mod periodic;
mod plan;
mod simulation;
mod stdp;
#[cfg(test)]
mod tests;
mod workspace;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub use config::{RunConfig, RunResult, RunStats, StdpParams, Stimulus};

use crate::error::{check_indices, check_len, CrdmError, Result};
use crate::network::{CompiledNetwork, NetworkSpec, MAX_TICKS};
use drive::FixedEdges;
use plan::{PlanCache, RunPlan};
use simulation::Simulation;
use workspace::{Workspace, WorkspacePool};

/// Marks "no such event yet" in the tick-valued state arrays.
const NEVER: u64 = u64::MAX;

/// A compiled network ready to run, with what its runs keep for later ones: the plans of
/// recent configurations and the buffers of finished runs. Runs only read the network, so one
/// engine serves any number of threads; results never depend on what the caches hold.
pub struct Engine {
    net: CompiledNetwork,
    /// The fixed-weight edges' targets without STDP (every edge) and with it (the
    /// non-plastic edges), computed once: every plan and every memory bound needs them and
    /// they walk every edge.
    fixed: [FixedEdges; 2],
    plans: PlanCache,
    workspaces: WorkspacePool,
}

impl Engine {
    /// An engine for `net`, with empty caches.
    pub fn new(net: CompiledNetwork) -> Self {
        let fixed = [false, true].map(|stdp_on| FixedEdges::new(&net, stdp_on));
        Engine {
            net,
            fixed,
            plans: PlanCache::default(),
            workspaces: WorkspacePool::default(),
        }
    }

    /// Validates `spec` and compiles it for ticks of `dt_ms`.
    pub fn compile(spec: &NetworkSpec<'_>, dt_ms: f64) -> Result<Self> {
        Ok(Engine::new(CompiledNetwork::new(spec, dt_ms)?))
    }

    /// The network this engine runs.
    pub fn network(&self) -> &CompiledNetwork {
        &self.net
    }

    /// The fixed-weight edges' targets of a run with or without STDP.
    fn fixed(&self, stdp_on: bool) -> &FixedEdges {
        &self.fixed[usize::from(stdp_on)]
    }

    /// The plan of `cfg`, from the cache or built.
    fn plan(&self, cfg: &RunConfig) -> Arc<(RunConfig, RunPlan)> {
        self.plans.get(cfg, || {
            RunPlan::new(&self.net, self.fixed(cfg.stdp.is_some()), cfg)
        })
    }

    fn validate_run(&self, stim: &Stimulus<'_>, cfg: &RunConfig) -> Result<()> {
        if cfg.n_ticks == 0 || cfg.n_ticks > MAX_TICKS {
            return Err(CrdmError::invalid(
                "n_ticks",
                cfg.n_ticks,
                format!("must be between 1 and {}", MAX_TICKS),
            ));
        }
        check_len("stimulus_ticks", stim.ticks, stim.nodes.len())?;
        check_indices("stimulus_nodes", stim.nodes, self.net.n_nodes as u64)?;
        check_indices("stimulus_ticks", stim.ticks, cfg.n_ticks)?;
        if let Some(stdp) = &cfg.stdp {
            stdp.validate()?;
        }
        check_indices(
            "snapshot_edges",
            &cfg.snapshot_edges,
            self.net.n_edges() as u64,
        )?;
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
        let plan = self.plan(cfg);
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
        let mut sim = Simulation::new(&self.net, stim, cfg, plan, ws);
        sim.run();
        sim.finish()
    }

    /// Simulates every stimulus independently (each from the initial weights) on up to
    /// `n_threads` threads. Results come in stimulus order and, since runs share nothing but
    /// the read-only network and plan, do not depend on the number of threads.
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
        let plan = self.plan(cfg);
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

/// The value behind `mutex`; the engine holds its locks only to read or reorder a cache, never
/// while a panic can happen, so a poisoned lock still holds a consistent value.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
