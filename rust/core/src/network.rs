//! Network description, validation and compilation into the layout the engine runs on.
//!
//! Units: positions and path lengths in µm, conduction velocities in m/s (1 m/s = 1 µm/µs =
//! 1000 µm/ms), times in ms, `dt_ms` the tick length. See `docs/model.md`.

use crate::error::{check_each, check_indices, check_len, CrdmError, Result};

/// Longest latency or refractory period, in ticks, that the engine accepts. Ticks are stored as
/// `u32` in the recorders; this bound keeps every `tick + delay` computation inside `u64` and
/// rejects absurd values (a latency of years) up front instead of allocating for them.
pub const MAX_TICKS: u64 = (u32::MAX as u64) / 2;

/// Converts a duration in ms to whole ticks: `floor(ms / dt_ms + 0.5)`, at least 1.
///
/// Round-half-up (not banker's rounding) is part of the model definition; the Python
/// reference computes exactly the same expression.
pub fn ms_to_ticks(ms: f64, dt_ms: f64) -> f64 {
    ((ms / dt_ms) + 0.5).floor().max(1.0)
}

/// Latency in ms of an edge of length `length_um` (µm) at `velocity_m_s` (m/s).
pub fn latency_ms(length_um: f64, velocity_m_s: f64) -> f64 {
    length_um / (velocity_m_s * 1000.0)
}

/// A network as the user describes it: borrowed arrays, one entry per node or per edge.
#[derive(Debug, Clone, Copy)]
pub struct NetworkSpec<'a> {
    pub n_nodes: usize,
    /// Refractory period R_i (ms), finite and > 0.
    pub refractory_ms: &'a [f64],
    /// Firing threshold θ_i, finite and > 0.
    pub threshold: &'a [f64],
    /// Summation time constant τ_m,i (ms), > 0; `f64::INFINITY` makes a pure integrator.
    pub tau_m_ms: &'a [f64],
    pub edge_src: &'a [i64],
    pub edge_dst: &'a [i64],
    /// Signed weights w_ij, finite.
    pub weights: &'a [f64],
    /// Path lengths d_ij (µm), finite and >= 0.
    pub length_um: &'a [f64],
    /// Conduction velocities v_ij (m/s), finite and > 0.
    pub velocity_m_s: &'a [f64],
    /// Whether STDP acts on each edge.
    pub plastic: &'a [bool],
}

/// A validated network laid out for simulation at a fixed tick length.
///
/// Edges are stored by source ("positions"): node `i`'s out-edges are positions
/// `out_ptr[i]..out_ptr[i + 1]`, in ascending edge id. That order, together with firing in
/// ascending node id, fixes the canonical order in which arrivals of one tick are summed.
/// Each position holds its target, delay and plastic flag packed in one integer
/// (`EdgeCodes`) and its weight: 12 bytes per edge when the packing fits 32 bits.
#[derive(Debug, Clone)]
pub struct CompiledNetwork {
    pub(crate) dt_ms: f64,
    pub(crate) n_nodes: usize,
    pub(crate) refractory_ticks: Vec<u32>,
    pub(crate) threshold: Vec<f64>,
    pub(crate) tau_m_ms: Vec<f64>,
    pub(crate) out_ptr: Vec<usize>,
    /// The edge id of every position; `None` when the edges came listed by source, so that
    /// the id is the position (every builder in crdm lists them so).
    pub(crate) edge_id: Option<Vec<u32>>,
    pub(crate) codes: EdgeCodes,
    /// Initial weight of every position.
    pub(crate) weights: Vec<f64>,
    /// Plastic edges are numbered ("ranks") by target, then position, so that a firing node
    /// potentiates its plastic in-edges `plastic_in_ptr[j]..plastic_in_ptr[j + 1]` in one
    /// sequential sweep of the run's plastic state.
    pub(crate) plastic_in_ptr: Vec<usize>,
    /// Source and latency of every rank (the code's target field holds the source): where a
    /// firing node's potentiation finds each plastic in-edge's last arrival (in the run's
    /// firing history of the source). Packed like [`Self::codes`].
    pub(crate) plastic_pre: EdgeCodes,
    /// Longest latency among each node's plastic out-edges (0: it has none).
    pub(crate) plastic_out_max_delay: Vec<u32>,
    /// Rank of every plastic edge counted in position order: node `i`'s plastic out-edges are
    /// entries `plastic_out_start[i]..plastic_out_start[i + 1]`.
    pub(crate) plastic_out_start: Vec<u32>,
    pub(crate) rank_of: Vec<u32>,
    pub(crate) max_delay_ticks: u32,
}

/// An edge's target, delay (ticks) and plastic flag packed into one integer: the flag in the
/// top bit, the delay above the target. Delays are below `2^31` ([`MAX_TICKS`]), so `u64`
/// always fits; `u32` fits when `target bits + delay bits <= 31` (the Section-4 networks
/// need 10 + 8).
pub(crate) trait Code: Copy {
    /// `(target, delay_ticks, plastic)`.
    fn unpack(self, dst_bits: u32) -> (u32, u32, bool);
}

impl Code for u32 {
    #[inline(always)]
    fn unpack(self, dst_bits: u32) -> (u32, u32, bool) {
        let rest = self & 0x7fff_ffff;
        (
            rest & ((1 << dst_bits) - 1),
            rest >> dst_bits,
            self >> 31 != 0,
        )
    }
}

impl Code for u64 {
    #[inline(always)]
    fn unpack(self, _dst_bits: u32) -> (u32, u32, bool) {
        (
            self as u32,
            ((self >> 32) as u32) & 0x7fff_ffff,
            self >> 63 != 0,
        )
    }
}

/// The packed edges of a network, one code per position.
#[derive(Debug, Clone)]
pub(crate) enum EdgeCodes {
    Narrow { codes: Vec<u32>, dst_bits: u32 },
    Wide(Vec<u64>),
}

impl EdgeCodes {
    fn pack(dst: &[u32], delay: &[u32], plastic: &[bool], n_nodes: usize) -> Self {
        let bits = |v: u64| u64::BITS - v.leading_zeros();
        let dst_bits = bits(n_nodes as u64 - 1);
        let max_delay = delay.iter().copied().max().unwrap_or(0);
        let rows = dst.iter().zip(delay).zip(plastic);
        if dst_bits + bits(max_delay as u64) <= 31 {
            let codes = rows
                .map(|((&j, &d), &p)| u32::from(p) << 31 | d << dst_bits | j)
                .collect();
            EdgeCodes::Narrow { codes, dst_bits }
        } else {
            let codes = rows
                .map(|((&j, &d), &p)| u64::from(p) << 63 | u64::from(d) << 32 | u64::from(j))
                .collect();
            EdgeCodes::Wide(codes)
        }
    }

    /// `(target, delay_ticks, plastic)` of position `pos`.
    #[inline]
    pub(crate) fn get(&self, pos: usize) -> (u32, u32, bool) {
        match self {
            EdgeCodes::Narrow { codes, dst_bits } => codes[pos].unpack(*dst_bits),
            EdgeCodes::Wide(codes) => codes[pos].unpack(0),
        }
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            EdgeCodes::Narrow { codes, .. } => codes.len(),
            EdgeCodes::Wide(codes) => codes.len(),
        }
    }

    /// Bytes per code.
    pub(crate) fn code_bytes(&self) -> usize {
        match self {
            EdgeCodes::Narrow { .. } => 4,
            EdgeCodes::Wide(_) => 8,
        }
    }
}

/// `ms` in ticks of `dt_ms`; `field` names the value in the error (built only then: formatting
/// a name per edge took half the compile time of a 473,200-edge network).
fn ticks_checked(field: impl FnOnce() -> String, ms: f64, dt_ms: f64) -> Result<u32> {
    let ticks = ms_to_ticks(ms, dt_ms);
    if ticks > MAX_TICKS as f64 {
        return Err(CrdmError::invalid(
            field(),
            ms,
            format!("{ticks} ticks of {dt_ms} ms is more than the limit of {MAX_TICKS} ticks"),
        ));
    }
    Ok(ticks as u32)
}

/// Builds a CSR index: for every key in `0..n`, the positions (as `u32` ids) with that key,
/// in ascending id order.
fn csr(n: usize, keys: impl Iterator<Item = (usize, u32)> + Clone) -> (Vec<usize>, Vec<u32>) {
    let mut ptr = vec![0usize; n + 1];
    for (k, _) in keys.clone() {
        ptr[k + 1] += 1;
    }
    for i in 0..n {
        ptr[i + 1] += ptr[i];
    }
    let mut fill = ptr.clone();
    let mut items = vec![0u32; ptr[n]];
    for (k, id) in keys {
        items[fill[k]] = id;
        fill[k] += 1;
    }
    (ptr, items)
}

impl CompiledNetwork {
    /// Validates `spec` and compiles it for ticks of `dt_ms`.
    pub fn new(spec: &NetworkSpec<'_>, dt_ms: f64) -> Result<Self> {
        if !(dt_ms.is_finite() && dt_ms > 0.0) {
            return Err(CrdmError::invalid("dt_ms", dt_ms, "must be finite and > 0"));
        }
        let n = spec.n_nodes;
        if n == 0 || n as u64 > u32::MAX as u64 {
            return Err(CrdmError::invalid(
                "n_nodes",
                n,
                "must be between 1 and 4294967295",
            ));
        }
        check_len("refractory_ms", spec.refractory_ms, n)?;
        check_len("threshold", spec.threshold, n)?;
        check_len("tau_m_ms", spec.tau_m_ms, n)?;
        check_each(
            "refractory_ms",
            spec.refractory_ms,
            |v| v.is_finite() && v > 0.0,
            "must be finite and > 0",
        )?;
        check_each(
            "threshold",
            spec.threshold,
            |v| v.is_finite() && v > 0.0,
            "must be finite and > 0",
        )?;
        check_each(
            "tau_m_ms",
            spec.tau_m_ms,
            |v| v > 0.0,
            "must be > 0 (inf for a pure integrator)",
        )?;

        let m = spec.edge_src.len();
        if m as u64 >= u32::MAX as u64 {
            return Err(CrdmError::invalid("edge_src", m, "too many edges"));
        }
        check_len("edge_dst", spec.edge_dst, m)?;
        check_len("weights", spec.weights, m)?;
        check_len("length_um", spec.length_um, m)?;
        check_len("velocity_m_s", spec.velocity_m_s, m)?;
        check_len("plastic", spec.plastic, m)?;
        check_indices("edge_src", spec.edge_src, n as u64)?;
        check_indices("edge_dst", spec.edge_dst, n as u64)?;
        check_each("weights", spec.weights, f64::is_finite, "must be finite")?;
        check_each(
            "length_um",
            spec.length_um,
            |v| v.is_finite() && v >= 0.0,
            "must be finite and >= 0",
        )?;
        check_each(
            "velocity_m_s",
            spec.velocity_m_s,
            |v| v.is_finite() && v > 0.0,
            "must be finite and > 0",
        )?;

        let refractory_ticks = spec
            .refractory_ms
            .iter()
            .enumerate()
            .map(|(i, &r)| ticks_checked(|| format!("refractory_ms[{i}]"), r, dt_ms))
            .collect::<Result<Vec<u32>>>()?;
        let delay_ticks = spec
            .length_um
            .iter()
            .zip(spec.velocity_m_s)
            .enumerate()
            .map(|(e, (&d, &v))| {
                let latency = latency_ms(d, v);
                if !latency.is_finite() {
                    return Err(CrdmError::invalid(
                        format!("velocity_m_s[{e}]"),
                        v,
                        format!("latency {d} µm / {v} m/s is not finite"),
                    ));
                }
                ticks_checked(|| format!("length_um[{e}]"), latency, dt_ms)
            })
            .collect::<Result<Vec<u32>>>()?;

        let (out_ptr, order) = csr(
            n,
            spec.edge_src
                .iter()
                .enumerate()
                .map(|(e, &i)| (i as usize, e as u32)),
        );
        let by_position = |f: &dyn Fn(usize) -> u32| -> Vec<u32> {
            order.iter().map(|&e| f(e as usize)).collect()
        };
        let dst = by_position(&|e| spec.edge_dst[e] as u32);
        let delay = by_position(&|e| delay_ticks[e]);
        let plastic: Vec<bool> = order.iter().map(|&e| spec.plastic[e as usize]).collect();
        let weights: Vec<f64> = order.iter().map(|&e| spec.weights[e as usize]).collect();
        let codes = EdgeCodes::pack(&dst, &delay, &plastic, n);

        let mut plastic_out_start = vec![0u32; n + 1];
        for i in 0..n {
            let count = plastic[out_ptr[i]..out_ptr[i + 1]]
                .iter()
                .filter(|&&p| p)
                .count();
            plastic_out_start[i + 1] = plastic_out_start[i] + count as u32;
        }
        // plastic positions by target (CSR keeps position order within a target): the ranks
        let (plastic_in_ptr, plastic_pos) = csr(
            n,
            (0..plastic.len() as u32)
                .filter(|&pos| plastic[pos as usize])
                .map(|pos| (dst[pos as usize] as usize, pos)),
        );
        let mut rank_at = vec![u32::MAX; plastic.len()];
        for (rank, &pos) in plastic_pos.iter().enumerate() {
            rank_at[pos as usize] = rank as u32;
        }
        let rank_of: Vec<u32> = rank_at.into_iter().filter(|&r| r != u32::MAX).collect();
        let mut source = vec![0u32; plastic.len()];
        let mut plastic_out_max_delay = vec![0u32; n];
        for i in 0..n {
            for pos in out_ptr[i]..out_ptr[i + 1] {
                source[pos] = i as u32;
                if plastic[pos] {
                    plastic_out_max_delay[i] = plastic_out_max_delay[i].max(delay[pos]);
                }
            }
        }
        let rank_source: Vec<u32> = plastic_pos.iter().map(|&p| source[p as usize]).collect();
        let rank_delay: Vec<u32> = plastic_pos.iter().map(|&p| delay[p as usize]).collect();
        let plastic_pre = EdgeCodes::pack(
            &rank_source,
            &rank_delay,
            &vec![false; rank_source.len()],
            n,
        );
        let max_delay_ticks = delay.iter().copied().max().unwrap_or(1);
        let in_id_order = order.iter().enumerate().all(|(pos, &e)| pos == e as usize);
        let net = CompiledNetwork {
            dt_ms,
            n_nodes: n,
            refractory_ticks,
            threshold: spec.threshold.to_vec(),
            tau_m_ms: spec.tau_m_ms.to_vec(),
            out_ptr,
            edge_id: (!in_id_order).then_some(order),
            codes,
            weights,
            plastic_in_ptr,
            plastic_pre,
            plastic_out_max_delay,
            plastic_out_start,
            rank_of,
            max_delay_ticks,
        };
        Ok(net)
    }

    /// The edge id stored at position `pos`.
    #[inline]
    pub(crate) fn id_of(&self, pos: usize) -> u32 {
        match &self.edge_id {
            Some(ids) => ids[pos],
            None => pos as u32,
        }
    }

    /// The position of every edge id.
    pub(crate) fn positions(&self) -> Vec<u32> {
        let mut pos = vec![0u32; self.n_edges()];
        for p in 0..self.n_edges() {
            pos[self.id_of(p) as usize] = p as u32;
        }
        pos
    }

    /// The position of every rank, from each source's plastic out-edges in position order
    /// (one pass over the edges: for the plan, not for every run).
    pub(crate) fn plastic_positions(&self) -> Vec<u32> {
        let mut pos_of = vec![0u32; self.rank_of.len()];
        for i in 0..self.n_nodes {
            let mut k = self.plastic_out_start[i] as usize;
            for pos in self.out_ptr[i]..self.out_ptr[i + 1] {
                if self.codes.get(pos).2 {
                    pos_of[self.rank_of[k] as usize] = pos as u32;
                    k += 1;
                }
            }
        }
        pos_of
    }

    /// How many edges are plastic.
    pub(crate) fn n_plastic(&self) -> usize {
        self.rank_of.len()
    }

    /// Bytes the compiled network holds per edge (codes, weights, the id of every position
    /// when edges were not listed by source, and the source and latency code and the rank of
    /// each plastic edge).
    pub fn bytes_per_edge(&self) -> f64 {
        let m = self.n_edges().max(1) as f64;
        let per_edge = self.codes.code_bytes() + 8 + self.edge_id.as_ref().map_or(0, |_| 4);
        let per_plastic = self.plastic_pre.code_bytes() + 4;
        per_edge as f64 + (per_plastic * self.n_plastic()) as f64 / m
    }

    pub fn n_nodes(&self) -> usize {
        self.n_nodes
    }

    pub fn n_edges(&self) -> usize {
        self.codes.len()
    }

    pub fn dt_ms(&self) -> f64 {
        self.dt_ms
    }

    /// Latency of every edge in ticks, by edge id.
    pub fn delay_ticks(&self) -> Vec<u32> {
        let mut out = vec![0u32; self.n_edges()];
        for pos in 0..self.n_edges() {
            out[self.id_of(pos) as usize] = self.codes.get(pos).1;
        }
        out
    }

    /// Refractory period of every node in ticks.
    pub fn refractory_ticks(&self) -> &[u32] {
        &self.refractory_ticks
    }
}
