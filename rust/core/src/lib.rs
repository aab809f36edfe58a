//! `crdm-core`: the competitive-refractory dynamics model (CRDM) of George et al., as an
//! event-driven simulator with integer ticks, a ring buffer of conduction-delay slots,
//! refractory competition between arriving signals, leaky summation and pair-based STDP.
//!
//! The model is specified in `docs/model.md`; this crate has no Python in it. `network`
//! validates and lays out a network, `engine` runs it, `readout` holds the kernels of the
//! experiments' read-out ([`SparseProjection`], [`gram_candidates`]). The PyO3 binding
//! (`crdm-python`) only converts arrays, maps [`CrdmError`] and releases the GIL.

mod engine;
mod error;
mod network;
mod readout;

pub use engine::{Engine, RunConfig, RunResult, RunStats, StdpParams, Stimulus};
pub use error::{CrdmError, Result};
pub use network::{latency_ms, ms_to_ticks, CompiledNetwork, NetworkSpec, MAX_TICKS};
pub use readout::{gram_candidates, GramRows, Metric, SparseProjection};
