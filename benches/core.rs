//! Criterion benchmarks of the Rust core (`cargo bench -p crdm-core`): event delivery, STDP,
//! and one Section-4 image.
//!
//! The network has the shape of `crdm.input_recurrent(n)`: a 28×28 input grid (50 µm pitch)
//! fully connected to `n` recurrent nodes in a 1.4 mm box 200 µm above it, all-to-all
//! recurrent edges, 70 % excitatory, input magnitudes up to 0.08 and recurrent up to 0.05
//! (inhibitory ×7/3), 0.2 m/s, refractory 10 ms (input) / 5 ms, τm 20 ms, threshold 1. Its
//! values come from a small seeded generator, not numpy's, so they are of the same
//! distribution but not the same draws. The stimulus is a fixed pseudo-digit: 150 pixels,
//! each firing every 10 ms for 600 ms (dt 0.1 ms).

use crdm_core::{Engine, NetworkSpec, RunConfig, StdpParams, Stimulus};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

/// SplitMix64: enough randomness for a benchmark network.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Arrays {
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

fn section4(n_rec: usize, plastic_all: bool) -> Arrays {
    let mut rng = Rng(42);
    let n_in = 784;
    let mut pos: Vec<[f64; 3]> = (0..n_in)
        .map(|p| [(p % 28) as f64 * 50.0, (p / 28) as f64 * 50.0, 0.0])
        .collect();
    for _ in 0..n_rec {
        let (x, y, z) = (rng.next_f64(), rng.next_f64(), rng.next_f64());
        pos.push([
            675.0 + (x - 0.5) * 1400.0,
            675.0 + (y - 0.5) * 1400.0,
            200.0 + z * 1400.0,
        ]);
    }
    let mut a = Arrays {
        refractory_ms: (0..n_in + n_rec)
            .map(|i| if i < n_in { 10.0 } else { 5.0 })
            .collect(),
        threshold: vec![1.0; n_in + n_rec],
        tau_m_ms: vec![20.0; n_in + n_rec],
        src: vec![],
        dst: vec![],
        weights: vec![],
        length_um: vec![],
        velocity: vec![],
        plastic: vec![],
    };
    let mut edge = |a: &mut Arrays, i: usize, j: usize, scale: f64, plastic: bool| {
        let exc = rng.next_f64() < 0.7;
        let mag = rng.next_f64() * scale;
        a.src.push(i as i64);
        a.dst.push(j as i64);
        a.weights.push(if exc { mag } else { -mag * 7.0 / 3.0 });
        let d: f64 = (0..3).map(|k| (pos[i][k] - pos[j][k]).powi(2)).sum();
        a.length_um.push(d.sqrt());
        a.velocity.push(0.2);
        a.plastic.push(plastic);
    };
    for i in 0..n_in {
        for j in n_in..n_in + n_rec {
            edge(&mut a, i, j, 0.08, plastic_all);
        }
    }
    for i in n_in..n_in + n_rec {
        for j in n_in..n_in + n_rec {
            if i != j {
                edge(&mut a, i, j, 0.05, true);
            }
        }
    }
    a
}

fn compile(a: &Arrays) -> Engine {
    let spec = NetworkSpec {
        n_nodes: a.threshold.len(),
        refractory_ms: &a.refractory_ms,
        threshold: &a.threshold,
        tau_m_ms: &a.tau_m_ms,
        edge_src: &a.src,
        edge_dst: &a.dst,
        weights: &a.weights,
        length_um: &a.length_um,
        velocity_m_s: &a.velocity,
        plastic: &a.plastic,
    };
    Engine::compile(&spec, 0.1).expect("valid benchmark network")
}

/// 150 pixels of a blob in the middle of the grid, each firing every 10 ms (100 ticks).
fn digit() -> (Vec<i64>, Vec<i64>) {
    let mut rng = Rng(7);
    let mut pixels: Vec<i64> = (0..784)
        .filter(|p| {
            let (r, c) = ((p / 28) as f64 - 13.5, (p % 28) as f64 - 13.5);
            r * r + c * c < 100.0
        })
        .collect();
    while pixels.len() > 150 {
        let k = (rng.next_f64() * pixels.len() as f64) as usize;
        pixels.swap_remove(k);
    }
    let mut nodes = vec![];
    let mut ticks = vec![];
    for t in (0..6000).step_by(100) {
        for &p in &pixels {
            nodes.push(p);
            ticks.push(t);
        }
    }
    (nodes, ticks)
}

fn config(stdp: bool, snapshots: bool, plastic_edges: &[bool]) -> RunConfig {
    RunConfig {
        n_ticks: 6000,
        // crdm.StdpParams() defaults: Bi & Poo windows, unbounded weights
        stdp: stdp.then_some(StdpParams {
            a_plus: 0.01,
            tau_plus_ms: 16.8,
            a_minus: 0.005,
            tau_minus_ms: 33.7,
            w_min: f64::NEG_INFINITY,
            w_max: f64::INFINITY,
        }),
        record_raster: true,
        record_causal: false,
        record_final_weights: true,
        snapshot_ticks: if snapshots {
            (1..=6).map(|k| k * 1000).collect()
        } else {
            vec![]
        },
        snapshot_edges: (0..plastic_edges.len() as i64)
            .filter(|&e| plastic_edges[e as usize])
            .collect(),
        memory_limit_bytes: u64::MAX,
    }
}

fn benches(c: &mut Criterion) {
    let (nodes, ticks) = digit();
    let stim = Stimulus {
        nodes: &nodes,
        ticks: &ticks,
    };
    let mut group = c.benchmark_group("section4");
    group.sample_size(20);
    for n in [50usize, 200] {
        let arrays = section4(n, false);
        let net = compile(&arrays);
        let events = net
            .run(&stim, &config(false, false, &arrays.plastic))
            .unwrap()
            .stats
            .n_arrivals;
        group.throughput(Throughput::Elements(events));
        group.bench_function(format!("event_delivery_n{n}"), |b| {
            let cfg = config(false, false, &arrays.plastic);
            b.iter(|| net.run(&stim, &cfg).unwrap())
        });
        group.bench_function(format!("stdp_n{n}"), |b| {
            let cfg = config(true, false, &arrays.plastic);
            b.iter(|| net.run(&stim, &cfg).unwrap())
        });
        group.bench_function(format!("one_image_n{n}"), |b| {
            let cfg = config(true, true, &arrays.plastic);
            b.iter_batched(
                || (),
                |_| net.run(&stim, &cfg).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(core, benches);
criterion_main!(core);
