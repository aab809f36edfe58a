//! Hand-computed cases and property tests of the core, independent of Python.

use crdm_core::{
    CompiledNetwork, CrdmError, Engine, NetworkSpec, RunConfig, RunResult, StdpParams, Stimulus,
};
use proptest::prelude::*;

/// Owned arrays of a network, so tests can build and tweak them.
#[derive(Debug, Clone)]
struct Net {
    refractory_ms: Vec<f64>,
    threshold: Vec<f64>,
    tau_m_ms: Vec<f64>,
    src: Vec<i64>,
    dst: Vec<i64>,
    weights: Vec<f64>,
    length_um: Vec<f64>,
    velocity: Vec<f64>,
    plastic: Vec<bool>,
}

impl Net {
    /// `n` nodes, refractory 0.5 ms, threshold 1, pure integrators; edges
    /// `(src, dst, weight, length_um)` at 0.1 m/s (100 µm = 1 ms = 10 ticks).
    fn new(n: usize, edges: &[(i64, i64, f64, f64)]) -> Self {
        Net {
            refractory_ms: vec![0.5; n],
            threshold: vec![1.0; n],
            tau_m_ms: vec![f64::INFINITY; n],
            src: edges.iter().map(|e| e.0).collect(),
            dst: edges.iter().map(|e| e.1).collect(),
            weights: edges.iter().map(|e| e.2).collect(),
            length_um: edges.iter().map(|e| e.3).collect(),
            velocity: vec![0.1; edges.len()],
            plastic: vec![false; edges.len()],
        }
    }

    fn spec(&self) -> NetworkSpec<'_> {
        NetworkSpec {
            n_nodes: self.refractory_ms.len(),
            refractory_ms: &self.refractory_ms,
            threshold: &self.threshold,
            tau_m_ms: &self.tau_m_ms,
            edge_src: &self.src,
            edge_dst: &self.dst,
            weights: &self.weights,
            length_um: &self.length_um,
            velocity_m_s: &self.velocity,
            plastic: &self.plastic,
        }
    }

    fn compile(&self, dt_ms: f64) -> Engine {
        Engine::compile(&self.spec(), dt_ms).expect("valid network")
    }
}

fn config(n_ticks: u64) -> RunConfig {
    RunConfig {
        n_ticks,
        stdp: None,
        record_raster: true,
        record_causal: true,
        record_final_weights: true,
        snapshot_ticks: vec![],
        snapshot_edges: vec![],
        memory_limit_bytes: u64::MAX,
    }
}

fn run(net: &Engine, stim: &[(i64, i64)], cfg: &RunConfig) -> RunResult {
    let nodes: Vec<i64> = stim.iter().map(|s| s.0).collect();
    let ticks: Vec<i64> = stim.iter().map(|s| s.1).collect();
    net.run(
        &Stimulus {
            nodes: &nodes,
            ticks: &ticks,
        },
        cfg,
    )
    .expect("valid run")
}

fn spikes_of(r: &RunResult, node: u32) -> Vec<u32> {
    r.spike_node
        .iter()
        .zip(&r.spike_tick)
        .filter(|(&n, _)| n == node)
        .map(|(_, &t)| t)
        .collect()
}

#[test]
fn latency_is_length_over_velocity_rounded_half_up() {
    // dt 0.5 ms: 125 µm at 0.1 m/s = 1.25 ms = 2.5 ticks -> 3; 10 µm -> at least 1 tick
    let net = Net::new(
        2,
        &[(0, 1, 2.0, 125.0), (0, 1, 2.0, 10.0), (0, 1, 2.0, 300.0)],
    );
    assert_eq!(net.compile(0.5).network().delay_ticks(), &[3, 1, 6]);
}

#[test]
fn edges_in_any_order_and_any_packing_give_the_same_run() {
    // 1 -> 2 and 0 -> 2 listed out of source order (the network keeps their ids), plus a
    // plastic edge 2 -> 0 whose latency (10^10 µm at 0.1 m/s: 10^9 ticks, 30 bits) does not
    // fit a 32-bit code next to the target (2 bits) and the flag: the wide packing
    let short = Net::new(3, &[(1, 2, 0.6, 120.0), (0, 2, 0.6, 100.0)]);
    let mut long = Net::new(
        3,
        &[(1, 2, 0.6, 120.0), (0, 2, 0.6, 100.0), (2, 0, 0.5, 1.0e10)],
    );
    long.plastic[2] = true;
    let (a, b) = (short.compile(0.1), long.compile(0.1));
    assert_eq!(b.network().delay_ticks(), vec![12, 10, 1_000_000_000]);
    // code + weight (+ the id of each position, as these are not listed by source; + per
    // plastic edge its source-and-latency code, as wide as the edge codes, and its rank)
    assert_eq!(a.network().bytes_per_edge(), 4.0 + 8.0 + 4.0);
    assert_eq!(
        b.network().bytes_per_edge(),
        8.0 + 8.0 + 4.0 + (8.0 + 4.0) / 3.0
    );
    let sorted = Net::new(3, &[(0, 2, 0.6, 100.0), (1, 2, 0.6, 120.0)]).compile(0.1);
    assert_eq!(sorted.network().bytes_per_edge(), 12.0);
    let mut cfg = config(100);
    cfg.stdp = Some(StdpParams {
        a_plus: 0.1,
        tau_plus_ms: 10.0,
        a_minus: 0.1,
        tau_minus_ms: 10.0,
        w_min: -1.0,
        w_max: 1.0,
    });
    cfg.snapshot_ticks = vec![100];
    cfg.snapshot_edges = vec![1, 0];
    let (ra, rb) = (
        run(&a, &[(0, 0), (1, 0)], &cfg),
        run(&b, &[(0, 0), (1, 0)], &cfg),
    );
    // 0.6 at tick 10 (edge 1), then 1.2 at tick 12 (edge 0): node 2 fires at 12
    assert_eq!(spikes_of(&ra, 2), vec![12]);
    assert_eq!(spikes_of(&rb, 2), vec![12]);
    let k = ra.spike_node.iter().position(|&n| n == 2).unwrap();
    let causes = ra.cause_ptr[k] as usize..ra.cause_ptr[k + 1] as usize;
    assert_eq!(&ra.cause_edge[causes], &[1, 0]);
    assert_eq!(ra.cause_edge, rb.cause_edge);
    assert_eq!(ra.snapshots, vec![0.6, 0.6]);
    assert_eq!(rb.final_weights, vec![0.6, 0.6, 0.5]);
}

#[test]
fn refractory_arrival_is_lost_and_earliest_claims() {
    let net = Net::new(3, &[(0, 2, 2.0, 100.0), (1, 2, 2.0, 120.0)]).compile(0.1);
    let r = run(&net, &[(0, 0), (1, 0)], &config(50));
    assert_eq!(spikes_of(&r, 2), vec![10]);
    assert_eq!(r.stats.n_lost, 1);
    let k = r.spike_node.iter().position(|&n| n == 2).unwrap();
    let causes = r.cause_ptr[k] as usize..r.cause_ptr[k + 1] as usize;
    assert_eq!(&r.cause_edge[causes.clone()], &[0]);
    assert_eq!(&r.cause_tick[causes], &[10]);
}

#[test]
fn leaky_summation_needs_close_arrivals() {
    let mut net = Net::new(3, &[(0, 2, 0.6, 100.0), (1, 2, 0.6, 100.0)]);
    net.tau_m_ms = vec![2.0; 3];
    let net = net.compile(0.1);
    assert_eq!(
        spikes_of(&run(&net, &[(0, 0), (1, 1)], &config(100)), 2),
        vec![11]
    );
    assert!(spikes_of(&run(&net, &[(0, 0), (1, 50)], &config(100)), 2).is_empty());
}

#[test]
fn stdp_windows() {
    let stdp = StdpParams {
        a_plus: 0.01,
        tau_plus_ms: 16.8,
        a_minus: 0.005,
        tau_minus_ms: 33.7,
        w_min: f64::NEG_INFINITY,
        w_max: f64::INFINITY,
    };
    let mut cfg = config(60);
    cfg.stdp = Some(stdp);
    // plastic edge 0 arrives at tick 10, driver edge 1 fires node 2 at tick 30
    let mut pre_first = Net::new(3, &[(0, 2, 0.2, 100.0), (1, 2, 2.0, 300.0)]);
    pre_first.plastic = vec![true, false];
    pre_first.refractory_ms = vec![0.1; 3];
    let r = run(&pre_first.compile(0.1), &[(0, 0), (1, 0)], &cfg);
    let expected = 0.2 + 0.01 * (-(20.0 * 0.1f64) / 16.8).exp();
    assert_eq!(r.final_weights[0], expected);
    assert_eq!(r.final_weights[1], 2.0);
    // driver fires node 2 at tick 10, plastic edge arrives at tick 40
    let mut post_first = pre_first.clone();
    post_first.length_um = vec![400.0, 100.0];
    let r = run(&post_first.compile(0.1), &[(0, 0), (1, 0)], &cfg);
    assert_eq!(
        r.final_weights[0],
        0.2 - 0.005 * (-(30.0 * 0.1f64) / 33.7).exp()
    );
}

#[test]
fn snapshots_and_memory_limit() {
    let mut net = Net::new(2, &[(0, 1, 2.0, 100.0)]);
    net.plastic = vec![true];
    let net = net.compile(0.1);
    let mut cfg = config(20);
    cfg.snapshot_ticks = vec![0, 20];
    cfg.snapshot_edges = vec![0, 0];
    let r = run(&net, &[(0, 0)], &cfg);
    assert_eq!(r.snapshots, vec![2.0; 4]);
    cfg.memory_limit_bytes = 8;
    let err = net
        .run(
            &Stimulus {
                nodes: &[0],
                ticks: &[0],
            },
            &cfg,
        )
        .unwrap_err();
    assert!(matches!(err, CrdmError::MemoryLimit { .. }));
}

#[test]
fn validation_names_field_and_value() {
    let mut net = Net::new(2, &[(0, 1, 2.0, 100.0)]);
    net.velocity = vec![0.0];
    let err = CompiledNetwork::new(&net.spec(), 0.1).unwrap_err();
    assert_eq!(
        err,
        CrdmError::InvalidValue {
            field: "velocity_m_s[0]".into(),
            value: "0".into(),
            reason: "must be finite and > 0".into()
        }
    );
    let mut net = Net::new(2, &[(0, 5, 2.0, 100.0)]);
    assert!(matches!(
        CompiledNetwork::new(&net.spec(), 0.1).unwrap_err(),
        CrdmError::IndexOutOfRange { index: 5, .. }
    ));
    net.dst = vec![1];
    net.weights = vec![f64::NAN];
    assert!(CompiledNetwork::new(&net.spec(), 0.1)
        .unwrap_err()
        .to_string()
        .contains("weights[0]"));
    net.weights = vec![1.0, 2.0];
    assert!(matches!(
        CompiledNetwork::new(&net.spec(), 0.1).unwrap_err(),
        CrdmError::ShapeMismatch {
            expected: 1,
            actual: 2,
            ..
        }
    ));
    let ok = Net::new(2, &[(0, 1, 2.0, 100.0)]).compile(0.1);
    let err = ok
        .run(
            &Stimulus {
                nodes: &[0],
                ticks: &[10],
            },
            &config(10),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        CrdmError::IndexOutOfRange {
            index: 10,
            bound: 10,
            ..
        }
    ));
}

#[test]
fn stdp_pairs_further_apart_than_the_decay_table_use_the_exact_decay() {
    // pre arrives at tick 10, the target is forced to fire 70,000 ticks later: beyond the
    // 65,536-tick table, the trace must decay by the same formula.
    let mut net = Net::new(2, &[(0, 1, 0.5, 100.0)]);
    net.plastic = vec![true];
    let compiled = net.compile(0.1);
    let mut cfg = config(70_020);
    cfg.record_causal = false;
    cfg.stdp = Some(StdpParams {
        a_plus: 0.25,
        tau_plus_ms: 1e6,
        a_minus: 0.0,
        tau_minus_ms: 10.0,
        w_min: f64::NEG_INFINITY,
        w_max: f64::INFINITY,
    });
    let r = run(&compiled, &[(0, 0), (1, 70_010)], &cfg);
    let expected = 0.5 + 0.25 * (-(70_000.0 * 0.1) / 1e6f64).exp();
    assert_eq!(r.final_weights, vec![expected]);
    assert!(r.final_weights[0] > 0.5 + 0.24);
}

fn arb_case() -> impl Strategy<Value = (Net, Vec<(i64, i64)>, Option<StdpParams>, f64)> {
    (1usize..8, 0usize..24).prop_flat_map(|(n, m)| {
        let node = 0..n as i64;
        (
            prop::collection::vec((node.clone(), node.clone(), -1.5f64..1.5, 0.0f64..500.0), m),
            prop::collection::vec(0.05f64..3.0, n),
            prop::collection::vec(prop::option::of(0.3f64..30.0), n),
            prop::collection::vec(any::<bool>(), m),
            prop::collection::vec((node, 0i64..100), 0..20),
            prop::option::of((0.0f64..0.3, 0.5f64..40.0, 0.0f64..0.3, 0.5f64..40.0)),
            prop::sample::select(vec![0.1, 0.25, 0.5]),
        )
            .prop_map(|(edges, refr, taus, plastic, stim, stdp, dt)| {
                let mut net = Net::new(refr.len(), &edges);
                net.refractory_ms = refr;
                net.tau_m_ms = taus
                    .into_iter()
                    .map(|t| t.unwrap_or(f64::INFINITY))
                    .collect();
                net.plastic = plastic;
                let stdp = stdp.map(|(a_plus, tau_plus_ms, a_minus, tau_minus_ms)| StdpParams {
                    a_plus,
                    tau_plus_ms,
                    a_minus,
                    tau_minus_ms,
                    w_min: -1.0,
                    w_max: 1.0,
                });
                (net, stim, stdp, dt)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn invariants_hold((net, stim, stdp, dt) in arb_case()) {
        let compiled = net.compile(dt);
        let mut cfg = config(100);
        cfg.stdp = stdp;
        cfg.snapshot_ticks = vec![50, 100];
        cfg.snapshot_edges = (0..net.src.len() as i64).collect();
        let r = run(&compiled, &stim, &cfg);

        // the raster is ordered by (tick, node) and a node never fires while refractory
        let pairs: Vec<(u32, u32)> = r.spike_tick.iter().copied().zip(r.spike_node.iter().copied()).collect();
        prop_assert!(pairs.windows(2).all(|w| w[0] < w[1]));
        for node in 0..net.refractory_ms.len() as u32 {
            let ticks = spikes_of(&r, node);
            let refr = compiled.network().refractory_ticks()[node as usize];
            prop_assert!(ticks.windows(2).all(|w| w[1] - w[0] >= refr));
            prop_assert_eq!(ticks.len() as u32, r.spike_count[node as usize]);
        }
        // causes arrive no later than the spike, on edges into the spiking node
        for k in 0..pairs.len() {
            for c in r.cause_ptr[k] as usize..r.cause_ptr[k + 1] as usize {
                prop_assert!(r.cause_tick[c] <= r.spike_tick[k]);
                prop_assert_eq!(net.dst[r.cause_edge[c] as usize], r.spike_node[k] as i64);
            }
        }
        prop_assert!(r.stats.n_lost <= r.stats.n_arrivals);
        prop_assert_eq!(r.stats.n_spikes as usize, pairs.len());
        // plastic weights within bounds (initial ones inside [-1.5, 1.5] may start outside)
        for (e, (&w, &w0)) in r.final_weights.iter().zip(&net.weights).enumerate() {
            if r.stats.n_stdp_updates == 0 || !net.plastic[e] {
                prop_assert_eq!(w, w0);
            }
        }
        if stdp.is_some() {
            for (e, &w) in r.final_weights.iter().enumerate() {
                if net.plastic[e] && w != net.weights[e] {
                    prop_assert!((-1.0..=1.0).contains(&w));
                }
            }
        }
        let m = net.src.len();
        prop_assert_eq!(&r.snapshots[m..], &r.final_weights[..]);
        // deterministic
        prop_assert_eq!(&run(&compiled, &stim, &cfg), &r);
        // without the causal recorder the fixed-weight drive is summed in dense cells as the
        // signals leave instead of queued: the same numbers
        let dense = run(&compiled, &stim, &RunConfig { record_causal: false, ..cfg.clone() });
        prop_assert!(dense.cause_ptr.is_empty());
        prop_assert_eq!(&dense.spike_node, &r.spike_node);
        prop_assert_eq!(&dense.spike_tick, &r.spike_tick);
        prop_assert_eq!(&dense.snapshots, &r.snapshots);
        prop_assert_eq!(&dense.final_weights, &r.final_weights);
        prop_assert_eq!(dense.stats, r.stats);
    }
}

/// The awkward values: NaN, ±inf, zeros, huge, tiny, subnormal.
fn wild_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => prop::sample::select(vec![
            f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0, -1.0, 1e308, -1e308,
            1e-308, 5e-324,
        ]),
        1 => any::<f64>(),
    ]
}

/// One corruption of a valid case: which array (0-5 real, 6-7 indices, 8 stimulus node,
/// 9 stimulus tick, 10 a dropped element), where, and the value.
type Corruption = (u8, usize, f64, i64);

fn corruption() -> impl Strategy<Value = Corruption> {
    (
        0u8..11,
        any::<usize>(),
        wild_f64(),
        prop::sample::select(vec![-1i64, 6, i64::MAX, i64::MIN]),
    )
}

/// A valid network, stimulus and run, then zero to three corruptions of them.
type WildCase = (Net, f64, (Vec<i64>, Vec<i64>), RunConfig);

fn wild_case() -> impl Strategy<Value = WildCase> {
    (
        arb_case(),
        prop_oneof![1 => Just(vec![]), 2 => prop::collection::vec(corruption(), 1..4)],
        wild_f64(),
        prop_oneof![6 => 1u64..200, 1 => Just(u64::MAX), 1 => Just(1u64 << 40), 1 => Just(0u64)],
        prop_oneof![3 => Just(u64::MAX), 1 => 0u64..10_000],
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |((mut net, stim, stdp, dt), bad, wild_dt, n_ticks, limit, dt_bad)| {
                let (mut nodes, mut ticks): (Vec<i64>, Vec<i64>) = stim.into_iter().unzip();
                let mut stdp = stdp;
                for (what, at, x, i) in bad {
                    let reals: [&mut Vec<f64>; 6] = [
                        &mut net.refractory_ms,
                        &mut net.threshold,
                        &mut net.tau_m_ms,
                        &mut net.weights,
                        &mut net.length_um,
                        &mut net.velocity,
                    ];
                    match what {
                        0..=5 => {
                            let v = reals.into_iter().nth(what as usize).unwrap();
                            if !v.is_empty() {
                                let k = at % v.len();
                                v[k] = x;
                            } else if let Some(p) = stdp.as_mut() {
                                p.w_min = x; // nothing to corrupt there: corrupt STDP instead
                            }
                        }
                        6 | 7 => {
                            let v = if what == 6 {
                                &mut net.src
                            } else {
                                &mut net.dst
                            };
                            if !v.is_empty() {
                                let k = at % v.len();
                                v[k] = i;
                            }
                        }
                        8 if !nodes.is_empty() => {
                            let k = at % nodes.len();
                            nodes[k] = i;
                        }
                        9 if !ticks.is_empty() => {
                            let k = at % ticks.len();
                            ticks[k] = i;
                        }
                        _ => {
                            let v = reals.into_iter().nth(at % 6).unwrap();
                            v.pop();
                        }
                    }
                }
                let cfg = RunConfig {
                    n_ticks,
                    stdp,
                    record_raster: true,
                    record_causal: limit % 2 == 0,
                    record_final_weights: true,
                    snapshot_ticks: vec![n_ticks.min(100)],
                    snapshot_edges: (0..net.src.len() as i64).collect(),
                    memory_limit_bytes: limit,
                };
                (net, if dt_bad { wild_dt } else { dt }, (nodes, ticks), cfg)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// Fuzzing: whatever the arrays hold, compiling and running ends in `Ok` or a typed
    /// error with a message; never a panic, an overflow or an endless run.
    #[test]
    fn bad_input_is_an_error_never_a_panic((net, dt, (nodes, ticks), cfg) in wild_case()) {
        let compiled = match Engine::compile(&net.spec(), dt) {
            Ok(c) => c,
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
                return Ok(());
            }
        };
        match compiled.run(&Stimulus { nodes: &nodes, ticks: &ticks }, &cfg) {
            Ok(r) => {
                // 2^40 ticks would never end: such runs must have been refused
                prop_assert!(cfg.n_ticks < 1 << 40);
                prop_assert!(r.final_weights.iter().all(|w| !w.is_nan()));
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }
}
