"""The Figure-3 experiment: features, evaluation, resume, and refusal of foreign folders."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from crdm.encoder import CRDMEncoder
from crdm.errors import ConfigMismatchError, DataError, ValidationError
from crdm.protocol import wknn_protocol
from crdm.reproduce import fig3
from crdm.reproduce.fig3 import Fig3Config, encode_chunk, run_fig3
from crdm.simulation import Simulator, image_stimulus


@pytest.fixture(scope="module")
def digits(digits_dir):
    from crdm.datasets import load_idx_dataset

    d = load_idx_dataset(digits_dir, "test")
    return d.images[:60], d.labels[:60]


def small(**kw):
    base = dict(sizes=(5,), n_images=30, duration_ms=100.0, sample_interval_ms=50.0,
                n_splits=2, chunk_size=10, sketch_dim=0)
    base.update(kw)
    return Fig3Config(**base)


def test_exact_features_are_the_encoders_weight_changes(digits):
    images = digits[0][:4].reshape(4, -1) / 255.0
    cfg = small()
    arrays = encode_chunk(cfg, 5, images, n_threads=1)
    enc = CRDMEncoder(5, seed=0, duration_ms=100.0, sample_interval_ms=50.0, feature="delta",
                      edges="all").fit(images)
    expected = enc.transform(images).reshape(4, 2, -1)
    np.testing.assert_allclose(arrays["crdm_all"], expected.astype(np.float32))
    n_rec_edges = 5 * 4
    np.testing.assert_allclose(arrays["crdm_recurrent"],
                               expected[:, :, -n_rec_edges:].astype(np.float32))
    # spike counts in [0, t) grow with t and are whole numbers
    counts = arrays["stdp_off_counts"]
    assert counts.shape == (4, 2, 5) and np.all(counts[:, 1] >= counts[:, 0])
    assert np.all(counts == np.round(counts)) and counts.sum() > 0


def test_with_plastic_recurrent_edges_only_the_input_weights_stay(digits):
    images = digits[0][:4].reshape(4, -1) / 255.0
    arrays = encode_chunk(small(plastic="recurrent"), 5, images, n_threads=1)
    every = encode_chunk(small(), 5, images, n_threads=1)
    n_input_edges = 784 * 5
    assert not arrays["crdm_all"][:, :, :n_input_edges].any()
    assert every["crdm_all"][:, :, :n_input_edges].any()
    # the recurrent weights still learn, differently without the input edges' STDP
    changes = arrays["crdm_recurrent"]
    assert changes.any() and not np.array_equal(changes, every["crdm_recurrent"])
    np.testing.assert_array_equal(arrays["crdm_all"][:, :, n_input_edges:], changes)


def test_features_do_not_depend_on_chunking_or_threads(digits, monkeypatch):
    images = digits[0][:6].reshape(6, -1) / 255.0
    cfg = small(sketch_dim=64, sizes=(10,))
    whole = encode_chunk(cfg, 10, images, n_threads=1)
    parts = [encode_chunk(cfg, 10, images[a:a + 3], n_threads=2) for a in (0, 3)]
    for key, value in whole.items():
        np.testing.assert_array_equal(value, np.concatenate([p[key] for p in parts]))
    # jobs of one image each
    monkeypatch.setattr(fig3, "_JOB_BYTES", 1)
    batched = encode_chunk(cfg, 10, images, n_threads=2)
    for key, value in whole.items():
        np.testing.assert_array_equal(value, batched[key])
    assert whole["crdm_all"].shape == (6, 2, 64)          # sketched: 784·10 + 90 > 64
    assert whole["crdm_recurrent"].shape == (6, 2, 64)


def test_sketched_features_are_the_projection_of_the_weight_changes(digits):
    """Projected one sample time at a time, the features are bit for bit scikit-learn's
    ``SparseRandomProjection.transform`` of the encoder's Δw (the matrix form)."""
    images = digits[0][:3].reshape(3, -1) / 255.0
    cfg = small(sketch_dim=64, sizes=(10,))
    arrays = encode_chunk(cfg, 10, images, n_threads=2)
    enc = CRDMEncoder(10, seed=0, duration_ms=100.0, sample_interval_ms=50.0, feature="delta",
                      edges="all").fit(images)
    delta = enc.transform(images).reshape(6, -1)
    n_rec_edges = 10 * 9
    for name, part in (("crdm_all", delta), ("crdm_recurrent", delta[:, -n_rec_edges:])):
        proj = fig3._sketch(64, part.shape[1], fig3._projection_seed(cfg, 10, name))
        want = np.asarray(proj.transform(part)).astype(np.float32).reshape(3, 2, 64)
        np.testing.assert_array_equal(arrays[name], want)


def test_with_plastic_recurrent_edges_the_sketches_still_project_every_edge(digits):
    """The runs snapshot the plastic edges only; the sketched features are still bit for bit
    the projection of ``Δw`` over every edge of each set (the input edges' ``Δw`` is 0)."""
    images = digits[0][:3].reshape(3, -1) / 255.0
    cfg = small(sketch_dim=64, sizes=(10,), plastic="recurrent")
    arrays = encode_chunk(cfg, 10, images, n_threads=2)
    net = cfg.network(10)
    every_edge = dataclasses.replace(cfg.run_config(stdp=True), snapshot_edges="all")
    sim = Simulator(net, dt_ms=cfg.dt_ms)
    delta = np.concatenate([sim.run(image_stimulus(x, net, every_edge), every_edge).snapshots
                            - net.weights for x in images])
    n_input_edges = int(net.meta["n_input_edges"])
    assert not delta[:, :n_input_edges].any() and delta[:, n_input_edges:].any()
    for name, part in (("crdm_all", delta), ("crdm_recurrent", delta[:, n_input_edges:])):
        proj = fig3._sketch(64, part.shape[1], fig3._projection_seed(cfg, 10, name))
        want = np.asarray(proj.transform(part)).astype(np.float32).reshape(3, 2, 64)
        np.testing.assert_array_equal(arrays[name], want)


@pytest.mark.parametrize("sorted_rows", [True, False])
def test_compiled_projection_gives_the_bits_of_scipy(sorted_rows):
    """``SparseProjection.changes`` (blocks of columns, all snapshots at once) equals scipy's
    product of each snapshot's change cast to float32, bit for bit; for a matrix whose rows
    are not sorted by column (one snapshot at a time) too. A snapshot equal to ``w0`` gives
    +0.0."""
    n_features, first = 20_000, 3          # three blocks of 8,192 columns
    matrix = fig3._sketch_matrix(512, n_features, 7)
    if not sorted_rows:
        matrix = matrix.copy()
        for r in range(matrix.shape[0]):
            lo, hi = matrix.indptr[r], matrix.indptr[r + 1]
            matrix.indices[lo:hi] = matrix.indices[lo:hi][::-1].copy()
            matrix.data[lo:hi] = matrix.data[lo:hi][::-1].copy()
        assert not matrix.has_sorted_indices
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(n_features)
    snapshots = np.zeros((9, first + n_features + 2))
    snapshots[:, first:first + n_features] = w0 + rng.standard_normal((9, n_features)) * 0.01
    snapshots[4, first:first + n_features] = w0
    got = fig3._csr_projection(matrix).changes(snapshots, w0, first=first)
    want = np.stack([matrix @ (row[first:first + n_features] - w0)
                     for row in snapshots]).astype(np.float32)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
    assert not got[4].view(np.uint32).any() and got[3].any()


def test_compiled_projection_names_bad_input():
    from crdm._core import SparseProjection
    from crdm.errors import IndexOutOfRangeError, ShapeError

    ptr, cols, data = np.array([0, 1, 2]), np.array([0, 2]), np.array([1.0, -1.0])
    with pytest.raises(IndexOutOfRangeError) as err:
        SparseProjection(2, 2, ptr, cols, data)
    assert (err.value.field, err.value.value) == ("indices[1]", 2)
    with pytest.raises(ValidationError) as err:
        SparseProjection(2, 3, ptr, cols, np.array([1.0, np.nan]))
    assert err.value.field == "data[1]"
    proj = SparseProjection(2, 3, ptr, cols, data)
    assert proj.shape == (2, 3)
    with pytest.raises(ShapeError) as err:
        proj.changes(np.zeros((2, 3)), np.zeros(4))
    assert err.value.field == "w0"
    with pytest.raises(ValidationError) as err:
        proj.changes(np.zeros((2, 4)), np.zeros(3), first=2)
    assert err.value.field == "first"
    with pytest.raises(ValidationError) as err:
        proj.changes(np.zeros((3, 2)).T, np.zeros(3))
    assert err.value.field == "snapshots"


def test_offset_form_equals_the_protocol_on_whole_weight_vectors():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    offset = rng.standard_normal(12)
    delta = rng.standard_normal((60, 12)) * 0.3 + labels[:, None] * 0.2
    cfg = small(n_images=60, n_splits=3, n_test=15)
    ours = fig3._evaluate(delta.astype(np.float32), labels, cfg, offset=offset)
    full = wknn_protocol(offset + delta.astype(np.float32), labels, n_splits=3, n_test=15)
    assert ours["weights/cosine"]["accuracies"] == full["cosine"].accuracies.tolist()
    assert ours["weights/euclidean"]["accuracies"] == full["euclidean"].accuracies.tolist()
    delta_only = wknn_protocol(delta.astype(np.float32), labels, n_splits=3, n_test=15)
    assert ours["delta/cosine"]["accuracies"] == delta_only["cosine"].accuracies.tolist()


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_zero_features_get_the_gram_matrix_blas_gives(sign):
    """All-zero features (Δw at time 0) skip BLAS: the same bits, into a kept buffer too."""
    zeros = np.full((40, 24), sign * 0.0, dtype=np.float32)
    x = zeros.astype(np.float64)
    want = np.dot(x, x.T)
    offset = np.linspace(-1.0, 1.0, 24)
    for out in (None, np.full((40, 40), 7.0)):
        gram, dot, sq = fig3._gram_terms(zeros, offset, out=out)
        assert gram.tobytes() == want.tobytes()
        assert out is None or gram is out
        assert dot.tobytes() == (x @ offset).tobytes() and sq == float(offset @ offset)
    # one nonzero value is computed by BLAS as before
    zeros[3, 5] = 0.5
    gram, _, _ = fig3._gram_terms(zeros, None, out=np.full((40, 40), 7.0))
    x = zeros.astype(np.float64)
    assert gram.tobytes() == np.dot(x, x.T).tobytes()


def test_the_trajectory_is_read_out_as_every_sample_time_side_by_side(digits, tmp_path):
    """The trajectory rows come from the sum of the per-time Gram matrices (summed in place
    into a kept buffer): the same neighbours as the features of every time concatenated."""
    images, labels = digits
    cfg = small(sizes=(10,), duration_ms=150.0, sketch_dim=64, baselines=False)
    result = run_fig3(cfg, images, labels, tmp_path / "run", progress=False)
    chunks = [np.load(path) for path in sorted((tmp_path / "run").glob("chunks/*/*.npz"))]
    y = labels[:cfg.n_images].astype(np.int64)
    for model in ("crdm_all", "crdm_recurrent"):
        features = np.concatenate([c[model] for c in chunks])
        assert features.shape == (cfg.n_images, 3, 64)
        side_by_side = features.reshape(cfg.n_images, -1)
        want = wknn_protocol(side_by_side, y, n_splits=cfg.n_splits, n_test=cfg.test_size)
        for metric in ("euclidean", "cosine"):
            (row,) = [r for r in result.rows if r["model"] == model and r["metric"] == metric
                      and r["time_ms"] == "trajectory" and r["feature"] == "delta"]
            assert row["accuracies"] == want[metric].accuracies.tolist()
            assert row["knn_dims"] == 3 * 64


def test_run_writes_every_output_and_resumes_without_redoing_chunks(digits, tmp_path,
                                                                    monkeypatch):
    images, labels = digits
    cfg = small(sizes=(5, 10))
    out = tmp_path / "run"
    first = run_fig3(cfg, images, labels, out, progress=False)
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {(r["model"], r["size"]) for r in rows} >= {("crdm_all", "5"), ("crdm_all", "10"),
                                                       ("raw_pixels", "")}
    assert (out / "fig3.png").is_file() and (out / "results.json").is_file()
    chunks = sorted(out.glob("chunks/*/*.npz"))
    assert len(chunks) == 2 * 3
    # Lose one chunk and the evaluation that used it: only that chunk is simulated again.
    chunks[4].unlink()
    (out / "eval" / "n0010.json").unlink()
    calls = []
    real = fig3.encode_chunk

    def counting(config, size, images, **kw):
        calls.append((size, images.shape[0]))
        return real(config, size, images, **kw)

    monkeypatch.setattr(fig3, "encode_chunk", counting)
    second = run_fig3(cfg, images, labels, out, progress=False)
    assert calls == [(10, 10)]
    assert second.rows == first.rows


def test_more_sizes_continue_the_folder(digits, tmp_path, monkeypatch):
    """Sizes are independent pieces: a rerun with other sizes adds them (the manifest keeps the
    union, results.csv every evaluated size) and never recomputes the old ones."""
    images, labels = digits
    run_fig3(small(sizes=(5,)), images, labels, tmp_path, progress=False)
    calls = []
    real = fig3.encode_chunk

    def counting(config, size, images, **kw):
        calls.append(size)
        return real(config, size, images, **kw)

    monkeypatch.setattr(fig3, "encode_chunk", counting)
    grown = run_fig3(small(sizes=(10,)), images, labels, tmp_path, progress=False)
    assert set(calls) == {10}
    assert {r["size"] for r in grown.rows if r["model"] == "crdm_all"} == {5, 10}
    sizes = {r["size"] for r in csv.DictReader((tmp_path / "results.csv").open())
             if r["model"] == "crdm_all"}
    assert sizes == {"5", "10"}
    manifest = json.loads((tmp_path / "config.json").read_text())
    assert manifest["config"]["sizes"] == [5, 10]
    assert manifest["provenance"]["crdm_version"]
    calls.clear()
    again = run_fig3(small(sizes=(5, 10)), images, labels, tmp_path, progress=False)
    assert calls == [] and again.rows == grown.rows


def test_a_folder_of_another_configuration_is_refused(digits, tmp_path):
    images, labels = digits
    run_fig3(small(), images, labels, tmp_path, progress=False)
    with pytest.raises(ConfigMismatchError) as exc:
        run_fig3(small(seed=1), images, labels, tmp_path, progress=False)
    assert exc.value.field == "seed" and exc.value.value == (0, 1)
    with pytest.raises(ConfigMismatchError, match=r"data\.sha256"):
        run_fig3(small(), images[::-1], labels[::-1], tmp_path, progress=False)
    with pytest.raises(ConfigMismatchError) as exc:
        run_fig3(small(plastic="recurrent"), images, labels, tmp_path, progress=False)
    assert exc.value.field == "plastic"


def test_a_folder_simulated_under_other_dynamics_is_refused(digits, tmp_path, monkeypatch):
    images, labels = digits
    monkeypatch.setattr(fig3, "MODEL_REVISION", 1)
    run_fig3(small(), images, labels, tmp_path, progress=False)
    monkeypatch.undo()
    with pytest.raises(ConfigMismatchError) as exc:
        run_fig3(small(), images, labels, tmp_path, progress=False)
    assert exc.value.field == "model_revision" and exc.value.value == (1, 2)


def test_corrupt_manifest_and_chunk_are_data_errors(digits, tmp_path):
    images, labels = digits
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.json").write_text("{not json")
    with pytest.raises(DataError, match="manifest"):
        run_fig3(small(), images, labels, tmp_path / "a", progress=False)
    run_fig3(small(), images, labels, tmp_path / "b", progress=False)
    (tmp_path / "b" / "eval" / "n0005.json").unlink()
    chunk = next((tmp_path / "b").glob("chunks/*/*.npz"))
    chunk.write_bytes(chunk.read_bytes()[:100])
    with pytest.raises(DataError, match="not a readable result file"):
        run_fig3(small(), images, labels, tmp_path / "b", progress=False)


@pytest.mark.parametrize("kw, field", [({"sizes": ()}, "sizes"), ({"sizes": (0,)}, "sizes"),
                                       ({"n_images": 3}, "n_images"),
                                       ({"n_test": 30}, "n_test"),
                                       ({"sketch_dim": -1}, "sketch_dim"),
                                       ({"sample_interval_ms": 500.0}, "sample_interval_ms"),
                                       ({"network_params": {"plastic": "none"}},
                                        "network_params.plastic"),
                                       ({"plastic": "input"}, "plastic")])
def test_bad_configuration_names_the_field(kw, field):
    with pytest.raises(ValidationError) as exc:
        small(**kw)
    assert exc.value.field == field


def test_more_images_than_the_data_has_is_refused(digits, tmp_path):
    with pytest.raises(ValidationError, match="n_images"):
        run_fig3(small(n_images=100), *digits, tmp_path, progress=False)


def test_killed_run_resumes_to_the_same_results(digits_dir, tmp_path):
    """SIGKILL in the middle of a real run: the rerun keeps finished chunks, redoes none twice,
    and ends with the results of an uninterrupted run."""
    argv = [sys.executable, "-m", "crdm.cli", "reproduce", "fig3", "--sizes", "25,50",
            "--images", "120", "--chunk-size", "10", "--splits", "2", "--duration-ms", "200",
            "--sketch-dim", "128", "--dataset", str(digits_dir), "--quiet", "--threads", "1"]
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen([*argv, "--out", str(killed)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(killed.glob("chunks/*/*.npz")) and time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"run ended before any chunk: {proc.stderr.read().decode()}")
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {p.name for p in killed.glob("chunks/*/*.npz")}
    stamps = {p: p.stat().st_mtime_ns for p in killed.glob("chunks/*/*.npz")}
    assert 0 < len(done) < 24, "the kill should land between the first and the last chunk"
    for path in stamps:  # every chunk that exists is whole
        with np.load(path) as data:
            assert data["crdm_all"].shape == (10, 2, 128)
    resumed = subprocess.run([*argv, "--out", str(killed)], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(done)} of 24 chunks already done" in resumed.stdout
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert not list(killed.rglob("*.tmp")), "temporary files of the killed run are removed"
    subprocess.run([*argv, "--out", str(clean)], check=True, capture_output=True)
    assert (killed / "results.csv").read_text() == (clean / "results.csv").read_text()
    assert Path(killed / "fig3.png").is_file()


def test_a_two_worker_dask_cluster_gives_the_single_process_numbers(digits_dir, tmp_path):
    from dask.distributed import Client, LocalCluster

    from crdm.datasets import load_idx_dataset

    d = load_idx_dataset(digits_dir, "test")
    cfg = small(sizes=(5, 10), sketch_dim=64)
    local = run_fig3(cfg, d.images, d.labels, tmp_path / "local", progress=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        remote = run_fig3(cfg, d.images, d.labels, tmp_path / "dask", progress=False,
                          client=client)
    assert remote.rows == local.rows
    for chunk in (tmp_path / "local").glob("chunks/*/*.npz"):
        twin = tmp_path / "dask" / chunk.relative_to(tmp_path / "local")
        a, b = np.load(chunk), np.load(twin)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])


def test_graded_code_reads_each_images_own_initial_weights(digits, tmp_path):
    """With the graded code every image runs on its own w(0) (input weights × grey level):
    the weights rows are the protocol on w(0) + Δw of each image, the delta rows on Δw."""
    from crdm.input_codes import InputCode

    images, labels = digits
    cfg = small(sizes=(5,), sketch_dim=0, baselines=True,
                input_code=InputCode("graded", pixel_threshold=0.1))
    result = run_fig3(cfg, images, labels, tmp_path / "run", progress=False)
    x = images[:cfg.n_images].reshape(cfg.n_images, -1) / 255.0
    y = labels[:cfg.n_images].astype(np.int64)
    net = cfg.network(5)
    arrays = encode_chunk(cfg, 5, x, n_threads=1)
    for i in (0, 7):
        own = cfg.code.network_for(x[i], net)
        np.testing.assert_array_equal(arrays["offset_crdm_all"][i],
                                      own.weights.astype(np.float32))
    weights = arrays["crdm_all"][:, 1, :].astype(np.float64) + arrays["offset_crdm_all"]
    want = wknn_protocol(weights, y, n_splits=cfg.n_splits, n_test=cfg.test_size)
    (row,) = [r for r in result.rows if r["model"] == "crdm_all" and r["feature"] == "weights"
              and r["metric"] == "cosine" and r["time_ms"] == 100.0]
    assert row["accuracies"] == want["cosine"].accuracies.tolist()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"][
        "input_code"]["kind"] == "graded"


def test_the_default_code_keeps_folders_of_earlier_runs(digits, tmp_path):
    """A binary run stores no input_code (its folders match those written before the field
    existed); pixel_threshold belongs inside an explicit code."""
    from crdm.input_codes import InputCode

    assert "input_code" not in small().as_dict()
    assert small(input_code={"kind": "rate"}).code == InputCode("rate")
    with pytest.raises(ValidationError) as info:
        small(pixel_threshold=0.2, input_code=InputCode("latency"))
    assert info.value.field == "pixel_threshold"


def test_binary_pixels_are_what_the_code_shows_the_network(digits, tmp_path):
    from crdm.input_codes import InputCode

    images, labels = digits
    cfg = small(input_code=InputCode("latency", pixel_threshold=0.4))
    result = run_fig3(cfg, images, labels, tmp_path / "run", progress=False)
    x = images[:cfg.n_images].reshape(cfg.n_images, -1) / 255.0
    want = wknn_protocol((x > 0.4).astype(float), labels[:cfg.n_images].astype(np.int64),
                         n_splits=cfg.n_splits, n_test=cfg.test_size)
    for metric in ("euclidean", "cosine"):
        (row,) = [r for r in result.rows if r["model"] == "binary_pixels"
                  and r["metric"] == metric]
        assert row["accuracies"] == want[metric].accuracies.tolist()


def test_without_the_stdp_off_baseline_every_other_row_is_the_same(digits, tmp_path):
    images, labels = digits
    full = run_fig3(small(), images, labels, tmp_path / "full", progress=False)
    lean = run_fig3(small(stdp_off=False), images, labels, tmp_path / "lean", progress=False)
    assert any(r["model"] == "stdp_off_counts" for r in full.rows)
    assert lean.rows == [r for r in full.rows if r["model"] != "stdp_off_counts"]
    assert "stdp_off" not in small().as_dict()
    assert small(stdp_off=False).as_dict()["stdp_off"] is False
    # a folder of one is not continued as the other
    with pytest.raises(ConfigMismatchError, match="stdp_off"):
        run_fig3(small(), images, labels, tmp_path / "lean", progress=False)
