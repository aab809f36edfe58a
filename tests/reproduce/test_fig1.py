"""Section 3.1: paths of a two-block SBM, embedded, classified; resumable and chunk-free."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from crdm.cli import main
from crdm.errors import ValidationError
from crdm.reproduce.fig1 import Fig1Config, encode_paths


def test_paths_do_not_depend_on_chunking(digits_dir):
    from crdm.datasets import load_idx_dataset

    x = load_idx_dataset(digits_dir, "train").images[:4].reshape(4, -1) / 255.0
    cfg = Fig1Config(n_images=40, duration_ms=60.0, walks=5, max_length=6)
    whole = encode_paths(cfg, x, 0, n_threads=1)
    parts = [encode_paths(cfg, x[a:a + 2], a, n_threads=2) for a in (0, 2)]
    for key in whole:
        np.testing.assert_array_equal(whole[key], np.concatenate([p[key] for p in parts]))
    assert whole["paths_per_image"].tolist() == [5] * 4
    assert whole["path_lengths"].sum() == whole["tokens"].size
    assert whole["tokens"].min() >= 0 and whole["tokens"].max() < 784 + 200


def test_cli_end_to_end_and_resume(digits_dir, tmp_path, capsys):
    argv = ["reproduce", "fig1", "--images", "40", "--splits", "2", "--duration-ms", "60",
            "--walks", "10", "--max-length", "6", "--chunk-size", "20", "--dataset",
            str(digits_dir), "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "crdm_paths" in out and "raw_pixels" in out
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [r["model"] for r in rows] == ["crdm_paths", "raw_pixels"]
    assert (tmp_path / "fig1.png").stat().st_size > 10_000
    assert main(["report", str(tmp_path)]) == 0
    assert "| crdm_paths |" in capsys.readouterr().out
    first = (tmp_path / "results.csv").read_text()
    (tmp_path / "chunks" / "000020.npz").unlink()
    (tmp_path / "embeddings.npz").unlink()
    assert main(argv) == 0
    assert "1 of 2 chunks already done" in capsys.readouterr().out
    assert (tmp_path / "results.csv").read_text() == first


def test_bad_configuration():
    with pytest.raises(ValidationError) as exc:
        Fig1Config(method="graph2vec")
    assert exc.value.field == "method"
    with pytest.raises(ValidationError):
        Fig1Config(network_params={"plastic": "all"})


def test_runs_are_batched_under_the_memory_limit(digits_dir, monkeypatch):
    """Each run's worst-case causal record is large; a chunk is split into batches that fit
    the limit, with the same paths as one batch."""
    from crdm.datasets import load_idx_dataset
    from crdm.reproduce import fig1

    x = load_idx_dataset(digits_dir, "train").images[:3].reshape(3, -1) / 255.0
    cfg = Fig1Config(n_images=40, duration_ms=40.0, walks=4, max_length=5)
    whole = encode_paths(cfg, x, 0)
    monkeypatch.setattr(fig1.Simulator, "recording_bound_bytes", lambda self, cfg: 3 * 2**30)
    one_by_one = encode_paths(cfg, x, 0)
    for key in whole:
        np.testing.assert_array_equal(whole[key], one_by_one[key])
