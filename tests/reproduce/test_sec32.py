"""Section 3.2: STDP on G, encoding on G and G_STDP, k-NN and SVM; resumable."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from crdm.cli import main
from crdm.errors import ValidationError
from crdm.reproduce.sec32 import Sec32Config, _Concatenated, edge_changes, stdp_stream


def test_edge_changes_partition_the_edges():
    before = np.array([0.5, 0.5, 0.5, -0.5, -0.5, -0.5, 0.2, 0.1])
    after = np.array([0.7, 0.1, -0.3, -0.2, -0.9, 0.4, 0.2, 0.1])
    shares = edge_changes(before, after)
    assert shares["rose"] == 2 / 8       # 0.5 → 0.7 and −0.5 → −0.2
    assert shares["fell"] == 2 / 8       # 0.5 → 0.1 and −0.5 → −0.9
    assert shares["turned_inhibitory"] == 1 / 8
    assert shares["turned_excitatory"] == 1 / 8
    assert shares["unchanged"] == 2 / 8
    assert sum(shares.values()) == pytest.approx(1.0)
    with pytest.raises(ValidationError):
        edge_changes(before, after[:-1])


def test_stream_alternates_and_is_disjoint_from_the_encoded_images():
    labels = np.repeat(np.arange(10), 30)
    cfg = Sec32Config(classes=(1, 5), n_stdp=21, n_encode=30)
    stream, encode = stdp_stream(labels, cfg)
    assert labels[stream].tolist() == [1, 5] * 10 + [1]
    assert sorted(np.bincount(labels[encode], minlength=10)[[1, 5]].tolist()) == [15, 15]
    assert not set(stream) & set(encode) and len(set(encode)) == 30
    again, _ = stdp_stream(labels, cfg)
    assert again.tolist() == stream.tolist()
    with pytest.raises(ValidationError) as exc:
        stdp_stream(labels, Sec32Config(classes=(1, 5), n_stdp=40, n_encode=30))
    assert exc.value.field == "classes"


def test_bad_configuration():
    for kwargs, field in (({"classes": (3, 3)}, "classes"), ({"n_stdp": 0}, "n_stdp"),
                          ({"stdp": {"gain": 1.0}}, "stdp"),
                          ({"stdp": {"w_min": 1.0, "w_max": 0.0}}, "stdp.w_min"),
                          ({"method": "graph2vec"}, "method"),
                          ({"network_params": {"plastic": "none"}}, "network_params.plastic"),
                          ({"network_params": {"densty": 0.1}}, "network_params.densty"),
                          ({"network_params": "x"}, "network_params")):
        with pytest.raises(ValidationError) as exc:
            Sec32Config(**kwargs)
        assert exc.value.field == field


def test_concatenated_sequence():
    both = _Concatenated([[1, 2], [], [3]])
    assert len(both) == 3 and [both[i] for i in range(3)] == [1, 2, 3]
    assert both[-1] == 3 and both[0:2] == [1, 2]
    with pytest.raises(IndexError):
        both[3]


def test_cli_end_to_end_and_resume(digits_dir, digits_are_mnist, tmp_path, capsys):
    argv = ["reproduce", "sec32", "--stdp-images", "6", "--encode-images", "24", "--splits",
            "2", "--test-size", "6", "--duration-ms", "50", "--walks", "8", "--max-length", "5",
            "--chunk-size", "10", "--dataset", str(digits_dir), "--out", str(tmp_path),
            "--quiet"]
    assert main([*argv[:-1], "--stdp", "nonsense=1", "--quiet"]) == 1
    assert "nonsense" in capsys.readouterr().err
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "turned inhibitory" in out and "G_STDP" in out
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert {r["model"] for r in rows} == {"G", "G_STDP", "raw_pixels", "G (shared space)",
                                          "G_STDP (shared space)"}
    assert all(0.0 <= float(r["mean"]) <= 1.0 for r in rows)
    record = json.loads((tmp_path / "results.json").read_text())
    shares = record["edges"]
    assert sum(v for k, v in shares.items() if k != "n_edges") == pytest.approx(1.0)
    assert shares["unchanged"] < 1.0          # STDP changed something
    assert (tmp_path / "sec32.png").stat().st_size > 10_000
    assert main(["report", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert ("| paper | 29 | 40 | 20 | – | 11 |" in table) is digits_are_mnist
    assert "| G_STDP | cosine majority" in table
    first = (tmp_path / "results.csv").read_text()
    # Kill-like loss: the final network, one path chunk and the embeddings are gone; the rest
    # of the STDP stream is redone from its last checkpoint with the same weights.
    (tmp_path / "g_stdp.npz").unlink()
    (tmp_path / "paths_G_STDP" / "000010.npz").unlink()
    (tmp_path / "embeddings.npz").unlink()
    assert main(argv) == 0
    assert (tmp_path / "results.csv").read_text() == first


def test_checkpoints_resume_the_stdp_stream(digits_dir, tmp_path):
    """A stream stopped after a checkpoint ends with the same weights as one run straight."""
    from crdm.datasets import load_idx_dataset
    from crdm.reproduce.sec32 import _train_stdp
    from crdm.results import ResultFolder

    x = load_idx_dataset(digits_dir, "train").images[:5].reshape(5, -1) / 255.0
    cfg = Sec32Config(n_stdp=5, n_encode=10, duration_ms=40.0, checkpoint_every=2)
    straight = _train_stdp(cfg, x, ResultFolder(tmp_path / "a", {"x": 1}), False, print)
    folder = ResultFolder(tmp_path / "b", {"x": 1})
    _train_stdp(cfg, x, folder, False, print)
    for name in ("g_stdp.npz", "stdp/000004.npz", "stdp/000005.npz"):
        folder.file(name).unlink()
    resumed = _train_stdp(cfg, x, folder, False, print)
    np.testing.assert_array_equal(resumed.weights, straight.weights)
    assert not np.array_equal(straight.weights, cfg.network().weights)
