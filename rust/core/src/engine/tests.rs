use super::plan::PLAN_CACHE_ENTRIES;
use super::workspace::Workspace;
use super::*;

/// Inputs 0-2 (no in-edges, refractory 1 ms = 10 ticks) → recurrent 3-5, fixed, with
/// latencies of 0.4-2.5 ms (some longer than the period); recurrent edges plastic.
fn network() -> Engine {
    let mut edges = Vec::new();
    for i in 0..3i64 {
        for j in 3..6i64 {
            let weight = 0.25 + 0.1 * ((i * 3 + j) % 4) as f64;
            edges.push((i, j, weight, 40.0 + 70.0 * ((i + 2 * j) % 4) as f64, false));
        }
    }
    for i in 3..6i64 {
        for j in (3..6i64).filter(|&j| j != i) {
            let weight = if (i + j) % 2 == 0 { 0.4 } else { -0.3 };
            edges.push((i, j, weight, 60.0 + 20.0 * j as f64, true));
        }
    }
    let col = |f: fn(&(i64, i64, f64, f64, bool)) -> f64| edges.iter().map(f).collect();
    let weights: Vec<f64> = col(|e| e.2);
    let length_um: Vec<f64> = col(|e| e.3);
    let src: Vec<i64> = edges.iter().map(|e| e.0).collect();
    let dst: Vec<i64> = edges.iter().map(|e| e.1).collect();
    let plastic: Vec<bool> = edges.iter().map(|e| e.4).collect();
    let spec = NetworkSpec {
        n_nodes: 6,
        refractory_ms: &[1.0, 1.0, 1.0, 0.5, 0.5, 0.5],
        threshold: &[1.0; 6],
        tau_m_ms: &[2.0; 6],
        edge_src: &src,
        edge_dst: &dst,
        weights: &weights,
        length_um: &length_um,
        velocity_m_s: &vec![0.1; edges.len()],
        plastic: &plastic,
    };
    Engine::compile(&spec, 0.1).unwrap()
}

fn config(stdp: bool) -> RunConfig {
    RunConfig {
        n_ticks: 300,
        stdp: stdp.then(|| StdpParams {
            a_plus: 0.05,
            tau_plus_ms: 2.0,
            a_minus: 0.06,
            tau_minus_ms: 2.0,
            w_min: -1.0,
            w_max: 1.0,
        }),
        record_raster: true,
        record_causal: false,
        record_final_weights: true,
        snapshot_ticks: vec![100, 300],
        snapshot_edges: (0..15).collect(),
        memory_limit_bytes: u64::MAX,
    }
}

/// `(node, first tick, every k ticks)` until `until`, plus `extra` spikes.
fn stimulus(trains: &[(i64, i64, i64, i64)], extra: &[(i64, i64)]) -> (Vec<i64>, Vec<i64>) {
    let mut spikes: Vec<(i64, i64)> = trains
        .iter()
        .flat_map(|&(i, first, every, until)| {
            (first..until).step_by(every as usize).map(move |t| (i, t))
        })
        .collect();
    spikes.extend_from_slice(extra);
    spikes.into_iter().unzip()
}

/// The periodic drive a run would use, and the run with and without it.
fn runs(
    engine: &Engine,
    cfg: &RunConfig,
    stim: &(Vec<i64>, Vec<i64>),
) -> (Option<(u64, u64)>, RunResult, RunResult) {
    let stim = Stimulus {
        nodes: &stim.0,
        ticks: &stim.1,
    };
    engine.validate_run(&stim, cfg).unwrap();
    let (net, plan) = (engine.network(), engine.plan(cfg));
    let plan = &plan.1;
    let mut with = Simulation::new(net, &stim, cfg, plan, Workspace::default());
    let periodic = with.periodic.as_ref().map(|p| (p.start, p.period));
    with.run();
    let mut without = Simulation::new(net, &stim, cfg, plan, Workspace::default());
    without.periodic = None;
    without.run();
    (periodic, with.finish().0, without.finish().0)
}

#[test]
fn a_periodic_input_drive_is_replayed_with_the_same_bits() {
    let net = network();
    // input 1 has another phase; input 0's spike at 25 falls in its refractory period
    let stim = stimulus(
        &[(0, 0, 10, 300), (1, 3, 10, 300), (2, 0, 10, 300)],
        &[(0, 25)],
    );
    let (periodic, with, without) = runs(&net, &config(true), &stim);
    let (start, period) = periodic.expect("the drive repeats");
    assert_eq!(period, 10);
    // input 1 first fires at 3; the longest input latency is 250 µm at 0.1 m/s = 25 ticks
    assert_eq!(start, 3 + 25);
    assert_eq!(with, without);
    let recurrent_spikes = with.spike_node.iter().filter(|&&n| n >= 3).count();
    assert!(
        recurrent_spikes > 5,
        "the recurrent nodes must fire: {recurrent_spikes}"
    );
    assert_eq!(with.stats.n_stimulus_dropped, 1);
}

#[test]
fn drives_that_do_not_repeat_are_not_replayed() {
    let net = network();
    let cases = [
        // input 2 stops early
        stimulus(&[(0, 0, 10, 300), (1, 0, 10, 300), (2, 0, 10, 150)], &[]),
        // one gap of 20 ticks
        stimulus(
            &[(0, 0, 10, 300), (1, 0, 10, 300), (2, 0, 10, 100)],
            &[(2, 110)],
        ),
        // the inputs repeat with different periods
        stimulus(&[(0, 0, 10, 300), (1, 0, 20, 300)], &[]),
        // the period leaves too little of the run to replay
        stimulus(&[(0, 0, 150, 300)], &[]),
    ];
    for stim in &cases {
        let (periodic, with, without) = runs(&net, &config(true), stim);
        assert_eq!(periodic, None);
        assert_eq!(with, without);
    }
    // without STDP the recurrent edges are fixed too, and their sources can be reached
    let stim = stimulus(&[(0, 0, 10, 300), (1, 0, 10, 300), (2, 0, 10, 300)], &[]);
    assert_eq!(runs(&net, &config(false), &stim).0, None);
    assert!(net.plan(&config(false)).1.driver_max_delay.is_empty());
}

#[test]
fn cached_plans_and_reused_buffers_serve_only_their_own_configuration() {
    let net = network();
    let (nodes, ticks) = stimulus(&[(0, 0, 10, 300), (1, 3, 10, 300), (2, 0, 10, 300)], &[]);
    let stim = Stimulus {
        nodes: &nodes,
        ticks: &ticks,
    };
    let mut fewer_snapshots = config(true);
    fewer_snapshots.snapshot_edges = vec![3, 7];
    let mut slower_stdp = config(true);
    if let Some(stdp) = &mut slower_stdp.stdp {
        stdp.tau_minus_ms = 5.0;
    }
    let mut earlier_snapshot = config(true);
    earlier_snapshot.snapshot_ticks = vec![50, 300];
    let mut no_raster = config(false);
    no_raster.record_raster = false;
    let mut no_final_weights = config(true);
    no_final_weights.record_final_weights = false;
    // queued fixed-weight signals instead of dense cells, and a longer run
    let mut causal = config(true);
    causal.record_causal = true;
    let mut longer = config(true);
    longer.n_ticks = 400;
    longer.snapshot_ticks = vec![100, 400];
    // more configurations than the cache holds, each after another one and each twice,
    // on one network (its plans cached, each run in the buffers of the one before),
    // against a fresh network (no cached plan, fresh buffers)
    let configs = [
        config(true),
        config(false),
        fewer_snapshots,
        causal,
        slower_stdp,
        longer,
        earlier_snapshot,
        no_raster,
        no_final_weights,
    ];
    assert!(configs.len() > PLAN_CACHE_ENTRIES);
    for cfg in configs.iter().chain(&configs).chain(configs.iter().rev()) {
        let cached = net.run(&stim, cfg).unwrap();
        assert_eq!(cached, network().run(&stim, cfg).unwrap());
        assert_eq!(
            cached.snapshots.len(),
            cfg.snapshot_ticks.len() * cfg.snapshot_edges.len()
        );
        let n_final = if cfg.record_final_weights {
            net.network().n_edges()
        } else {
            0
        };
        assert_eq!(cached.final_weights.len(), n_final);
    }
    let batch = net.run_batch(&[stim, stim], &configs[2], 2).unwrap();
    assert_eq!(batch[0], network().run(&stim, &configs[2]).unwrap());
}

/// Three nodes, each with a plastic edge to both others: all three fire at tick 0 and
/// every node gets two arrivals at the same tick `latency_ticks` later.
fn triangle_run(latency_ticks: u32) -> RunResult {
    let (src, dst): (Vec<i64>, Vec<i64>) = (0..3i64)
        .flat_map(|i| (0..3i64).filter(move |&j| j != i).map(move |j| (i, j)))
        .unzip();
    let spec = NetworkSpec {
        n_nodes: 3,
        refractory_ms: &[0.5; 3],
        threshold: &[1.0; 3],
        tau_m_ms: &[2.0; 3],
        edge_src: &src,
        edge_dst: &dst,
        weights: &[0.6; 6],
        // at 0.1 m/s, 10 µm per tick
        length_um: &[10.0 * latency_ticks as f64; 6],
        velocity_m_s: &[0.1; 6],
        plastic: &[true; 6],
    };
    let net = Engine::compile(&spec, 0.1).unwrap();
    let cfg = RunConfig {
        n_ticks: 25,
        snapshot_ticks: vec![],
        snapshot_edges: vec![],
        ..config(true)
    };
    let (nodes, ticks) = (vec![0, 1, 2], vec![0, 0, 0]);
    let stim = Stimulus {
        nodes: &nodes,
        ticks: &ticks,
    };
    net.run(&stim, &cfg).unwrap()
}

#[test]
fn every_node_reached_twice_at_one_tick() {
    // accepted (refractory 5 ticks, latency 10): 0.6 + 0.6 reaches the threshold, so
    // all three fire again at 10 and at 20, each listed once per tick as touched
    let run = triangle_run(10);
    assert_eq!(run.spike_tick, [0, 0, 0, 10, 10, 10, 20, 20, 20]);
    assert_eq!((run.stats.n_arrivals, run.stats.n_lost), (12, 0));
    // lost (latency 3 < refractory 5): nothing but the forced firings
    let run = triangle_run(3);
    assert_eq!(run.spike_tick, [0, 0, 0]);
    assert_eq!((run.stats.n_arrivals, run.stats.n_lost), (6, 6));
}
