"""Benchmark (not a test): the same Section-4 model in crdm and in Brian2, side by side.

One process builds ``crdm.input_recurrent(N)`` and the identical network in Brian2: the same
nodes (leaky summation with τm, threshold, reset to 0, refractory period), arrivals ignored
while the target is refractory, the same per-edge latencies (in ticks), weights and input
spikes, and pair STDP on the recurrent edges timed by arrival and firing with the same windows.
Brian2's schedule is set to crdm's order within a tick: decay, arrivals (with STDP's pre
role), threshold, STDP's post role, reset. Both simulate the same digits for 600 ms at
dt = 0.1 ms, recurrent weights recorded every 100 ms; the script checks that the spike counts
agree, then prints milliseconds per image and the ratio.

Brian2 2.9 needs numpy < 2.3, so run it in an environment of its own:

    python3 -m venv .venv-brian2
    .venv-brian2/bin/pip install 'brian2==2.9.*' 'numpy<2.3' .
    .venv-brian2/bin/python benches/brian2_side_by_side.py [--sizes 50,200] [--images 5]
        [--target cython|numpy|cpp_standalone] [--json]

Brian2 runs in runtime mode (``--target cython``/``numpy``): its times are simulation only
(the first image, which pays for code generation and compilation, is excluded). With
``--target cpp_standalone`` it builds one C++ program that simulates all the images in a row,
with the 50-ms quiet gap after each, one ``run`` per image; the time per image is the CPU
time the program measured for its last ``run`` (Brian2 keeps no other), so compilation is
excluded and one gap is included.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import crdm
from crdm.bench import machine
from crdm.cli import int_list
from crdm.datasets import load_demo_digits
from crdm.units import ms_to_ticks


def crdm_run(net: crdm.Network, images: np.ndarray, cfg: crdm.RunConfig
             ) -> tuple[list[np.ndarray], float]:
    sim = crdm.Simulator(net, dt_ms=cfg.dt_ms)
    stimuli = [crdm.image_stimulus(x, net, cfg) for x in images]
    sim.run(stimuli[0], cfg)  # warm-up
    start = time.perf_counter()
    results = [sim.run(s, cfg) for s in stimuli]
    wall = time.perf_counter() - start
    return [r.spike_counts.astype(np.int64) for r in results], 1000 * wall / len(images)


def _brian2_model(b2, net: crdm.Network, cfg: crdm.RunConfig, image_spikes: tuple
                  ) -> dict:
    """The Brian2 objects of crdm's network; ``image_spikes`` = (indices, times) of the
    spike generator."""
    dt = cfg.dt_ms
    n_in = net.input_nodes.size
    n_rec = net.n_nodes - n_in
    stdp = cfg.stdp
    delays = np.array([ms_to_ticks(x, dt) for x in net.latency_ms()], dtype=np.int64)
    src, dst, w0 = net.edge_src, net.edge_dst, net.weights
    from_input = src < n_in
    b2.defaultclock.dt = dt * b2.ms
    tau_m = float(net.tau_m_ms[n_in]) * b2.ms
    rec = b2.NeuronGroup(n_rec, "dv/dt = -v / tau_m : 1 (unless refractory)",
                         threshold="v >= 1", reset="v = 0",
                         refractory=float(net.refractory_ms[n_in]) * b2.ms, method="exact",
                         namespace={"tau_m": tau_m})
    gen = b2.SpikeGeneratorGroup(n_in, *image_spikes)
    s_in = b2.Synapses(gen, rec, "w : 1", on_pre="v_post += w * int(not_refractory_post)")
    s_in.connect(i=src[from_input], j=dst[from_input] - n_in)
    s_in.w = w0[from_input]
    s_in.delay = delays[from_input] * dt * b2.ms
    s_rec = b2.Synapses(
        rec, rec,
        """w : 1
        dapre/dt = -apre / tau_plus : 1 (event-driven)
        dapost/dt = -apost / tau_minus : 1 (event-driven)""",
        on_pre="""v_post += w * int(not_refractory_post)
        w = w - a_minus * apost
        apre += 1""",
        on_post="""w = w + a_plus * apre
        apost += 1""",
        namespace={"tau_plus": stdp.tau_plus_ms * b2.ms, "tau_minus": stdp.tau_minus_ms * b2.ms,
                   "a_plus": stdp.a_plus, "a_minus": stdp.a_minus})
    rec_edges = ~from_input
    s_rec.connect(i=src[rec_edges] - n_in, j=dst[rec_edges] - n_in)
    s_rec.delay = delays[rec_edges] * dt * b2.ms
    # crdm's order within a tick: arrivals, then threshold, then the post role, then reset
    s_rec.post.when = "after_thresholds"
    weights = b2.StateMonitor(s_rec, "w", record=np.arange(int(rec_edges.sum())),
                              dt=100 * b2.ms)
    spikes = b2.SpikeMonitor(rec)
    network = b2.Network(rec, gen, s_in, s_rec, weights, spikes)
    network.schedule = ["start", "groups", "synapses", "thresholds", "resets", "end"]
    return {"rec": rec, "gen": gen, "s_rec": s_rec, "spikes": spikes, "network": network,
            "w0": w0[rec_edges], "n_in": n_in}


# simulated quiet time between images, so that nothing in flight crosses over
GAP_MS = 50.0


def brian2_run(net: crdm.Network, images: np.ndarray, cfg: crdm.RunConfig, target: str
               ) -> tuple[list[np.ndarray], float]:
    """Runtime mode: per-image wall time of ``network.run``, the first image excluded."""
    import brian2 as b2

    b2.prefs.codegen.target = target
    m = _brian2_model(b2, net, cfg, ([0], [0] * b2.ms))
    counts, walls = [], []
    for k, x in enumerate(images):
        stim = crdm.image_stimulus(x, net, cfg)
        m["rec"].v = 0
        m["s_rec"].w = m["w0"]
        m["s_rec"].apre = 0
        m["s_rec"].apost = 0
        m["gen"].set_spikes(stim.nodes, stim.ticks * cfg.dt_ms * b2.ms
                            + k * (cfg.duration_ms + GAP_MS) * b2.ms)
        before = m["spikes"].count[:].copy()
        start = time.perf_counter()
        m["network"].run(cfg.duration_ms * b2.ms)
        walls.append(time.perf_counter() - start)
        m["network"].run(GAP_MS * b2.ms)
        counts.append(m["spikes"].count[:] - before)
    # the first image pays for code generation and compilation: excluded
    ms = 1000 * float(np.mean(walls[1:] if len(walls) > 1 else walls))
    return [np.concatenate([np.zeros(m["n_in"], np.int64), c]) for c in counts], ms


def brian2_standalone_run(net: crdm.Network, images: np.ndarray, cfg: crdm.RunConfig
                          ) -> tuple[list[np.ndarray], float]:
    """cpp_standalone: one C++ program simulates every image (each with its quiet gap) in
    its own ``run``. Brian2 keeps the duration of the last ``run`` only (its CPU time, from
    ``clock()``, without OpenMP): that of the last image and its gap, compilation excluded."""
    import tempfile

    import brian2 as b2

    period_ms = cfg.duration_ms + GAP_MS
    nodes, times = [], []
    for k, x in enumerate(images):
        stim = crdm.image_stimulus(x, net, cfg)
        nodes.append(stim.nodes)
        times.append(stim.ticks * cfg.dt_ms + k * period_ms)
    with tempfile.TemporaryDirectory() as build_dir:
        b2.set_device("cpp_standalone", build_on_run=False)
        m = _brian2_model(b2, net, cfg, (np.concatenate(nodes),
                                         np.concatenate(times) * b2.ms))
        for _ in images:
            m["rec"].v = 0
            m["s_rec"].w = m["w0"]
            m["s_rec"].apre = 0
            m["s_rec"].apost = 0
            m["network"].run(period_ms * b2.ms)
        b2.device.build(directory=build_dir, run=True, compile=True)
        last_run_s = float(b2.device._last_run_time)
        spike_i = np.asarray(m["spikes"].i[:])
        spike_t = np.asarray(m["spikes"].t[:] / b2.ms)
        b2.device.reinit()
        b2.device.activate("runtime")
    which = (spike_t // period_ms).astype(np.int64)
    n_rec = net.n_nodes - m["n_in"]
    counts = [np.bincount(spike_i[which == k], minlength=n_rec) for k in range(len(images))]
    return ([np.concatenate([np.zeros(m["n_in"], np.int64), c]) for c in counts],
            1000 * last_run_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int_list, default=(200,),
                        help="recurrent sizes, comma-separated (default 200)")
    parser.add_argument("--images", type=int, default=5)
    parser.add_argument("--target", choices=("cython", "numpy", "cpp_standalone"),
                        default="cython",
                        help="Brian2's runtime code generation target (default cython), or "
                             "its C++ standalone device")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    digits = load_demo_digits(download=False)
    pick = np.random.default_rng(0).choice(len(digits), args.images, False)
    images = digits.images[pick].reshape(args.images, -1)
    rows = []
    for n in args.sizes:
        net = crdm.input_recurrent(n, seed=0, plastic="recurrent")
        cfg = crdm.RunConfig(duration_ms=600.0, stdp=crdm.StdpParams())
        ours, ours_ms = crdm_run(net, images, cfg)
        theirs, theirs_ms = (brian2_standalone_run(net, images, cfg)
                             if args.target == "cpp_standalone"
                             else brian2_run(net, images, cfg, args.target))
        n_in = net.input_nodes.size
        rec_ours = np.array([c[n_in:].sum() for c in ours])
        rec_theirs = np.array([c[n_in:].sum() for c in theirs])
        rows.append({"n_recurrent": n, "images": args.images, "target": args.target,
                     "crdm_ms_per_image": ours_ms, "brian2_ms_per_image": theirs_ms,
                     "ratio": theirs_ms / ours_ms,
                     "recurrent_spikes_crdm": rec_ours.tolist(),
                     "recurrent_spikes_brian2": rec_theirs.tolist(),
                     "max_relative_difference": float(np.max(
                         np.abs(rec_ours - rec_theirs) / np.maximum(rec_ours, 1)))})
    if args.json:
        print(json.dumps({"machine": machine(), "rows": rows}, indent=1))
        return
    mode = ("cpp_standalone (CPU time of the last image's run, its 50-ms gap included)"
            if args.target == "cpp_standalone" else f"runtime ({args.target})")
    print(f"{machine()['cpu']}; 600 ms at dt 0.1 ms, STDP on recurrent edges; Brian2 "
          f"{mode}, compilation excluded")
    for r in rows:
        print(f"N={r['n_recurrent']}: crdm {r['crdm_ms_per_image']:.1f} ms/image, Brian2 "
              f"{r['brian2_ms_per_image']:.1f} ms/image, ratio {r['ratio']:.1f}x; recurrent "
              f"spikes per image crdm {r['recurrent_spikes_crdm']} vs Brian2 "
              f"{r['recurrent_spikes_brian2']} (max relative difference "
              f"{100 * r['max_relative_difference']:.1f} %)")


if __name__ == "__main__":
    main()
