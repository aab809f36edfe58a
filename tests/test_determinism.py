"""Same seed, same numbers: across a save/load of the network and across processes.

(Thread counts and batch sizes: ``test_simulation.py``, ``test_encoder.py``; Dask worker
counts: ``reproduce/test_fig3.py``; embeddings across hash seeds: ``test_embedding.py``.)
"""

from __future__ import annotations

import hashlib
import inspect
import os
import subprocess
import sys

import numpy as np

import crdm
from crdm.simulation import RunConfig, Simulator, StdpParams, image_stimulus

_IMPORTS = """
import hashlib, sys
import numpy as np
import crdm
from crdm.simulation import RunConfig, Simulator, StdpParams, image_stimulus
"""
_MAIN = """
net = crdm.load_network(sys.argv[1]) if len(sys.argv) > 1 else crdm.input_recurrent(20, seed=3)
print(hashlib.sha256(fingerprint(net)).hexdigest())
"""


def fingerprint(net: crdm.Network) -> bytes:
    """Every array a plastic run on ``net`` produces, for three images, as bytes."""
    images = np.random.default_rng(0).random((3, 784)) > 0.7
    cfg = RunConfig(duration_ms=80.0, stdp=StdpParams(), record_causal=True,
                    snapshot_interval_ms=20.0)
    results = Simulator(net).run_batch([image_stimulus(x, net, cfg) for x in images], cfg,
                                       n_threads=2)
    return b"".join(np.ascontiguousarray(getattr(r, name)).tobytes() for r in results
                    for name in ("spike_nodes", "spike_ticks", "cause_edges", "snapshots",
                                 "final_weights"))


def test_a_saved_and_loaded_network_gives_the_same_numbers(tmp_path):
    net = crdm.input_recurrent(20, seed=3)
    loaded = crdm.load_network(net.save(tmp_path / "net.npz"))
    assert loaded == net
    assert fingerprint(loaded) == fingerprint(net)


def test_another_process_gives_the_same_numbers(tmp_path):
    """A fresh interpreter (another hash seed) building the network from its seed, and one
    loading it from a file, reproduce this process's numbers bit for bit."""
    net = crdm.input_recurrent(20, seed=3)
    path = net.save(tmp_path / "net.npz")
    want = hashlib.sha256(fingerprint(net)).hexdigest()
    script = _IMPORTS + inspect.getsource(fingerprint) + _MAIN
    for args, hash_seed in (([], "1"), ([str(path)], "2")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", script, *args], env=env, check=True,
                             capture_output=True, text=True, timeout=120)
        assert out.stdout.strip() == want


def test_the_run_actually_depends_on_the_network():
    """Guard against a fingerprint that ignores its input."""
    assert fingerprint(crdm.input_recurrent(20, seed=3)) != \
        fingerprint(crdm.input_recurrent(20, seed=4))
