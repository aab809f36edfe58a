"""Section 4.1: the one-shot ANN, the parameter counts, the resumable run."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from crdm.cli import main
from crdm.errors import ValidationError
from crdm.reproduce import ann
from crdm.reproduce.ann import (
    AnnConfig,
    hidden_activations,
    one_per_class,
    parameter_counts,
    run_ann,
    train_one_shot,
)


@pytest.fixture(scope="module")
def mnist(digits_dir):
    from crdm.datasets import load_idx_dataset

    return load_idx_dataset(digits_dir, "train"), load_idx_dataset(digits_dir, "test")


def test_parameter_counts_by_hand():
    c = parameter_counts(5)
    assert c["ann"] == 784 * 5 + 5 + 5 * 10 + 10 == 3985
    assert c["crdm_features_recurrent"] == 20
    assert c["crdm_features_all"] == 3920 + 20
    assert c["crdm_network"] == 2 * 3940 + 3 * 789 + 4


def test_one_image_per_class_and_reproducible():
    labels = np.repeat(np.arange(10), 7)[::-1]
    pick = one_per_class(labels, 3)
    assert labels[pick].tolist() == list(range(10))
    assert pick.tolist() == one_per_class(labels, 3).tolist()
    assert pick.tolist() != one_per_class(labels, 4).tolist()


def test_the_network_overfits_its_ten_images_and_embeds_with_relu(mnist):
    train, _ = mnist
    pick = one_per_class(train.labels, 0)
    x = train.images[pick].reshape(10, -1) / 255.0
    cfg = AnnConfig(sizes=(20,))
    mlp, stats = train_one_shot(x, train.labels[pick], 20, 0, cfg)
    assert stats["train_accuracy"] == 1.0 and stats["loss"] < cfg.loss_target
    h = hidden_activations(mlp, x)
    assert h.shape == (10, 20) and h.min() >= 0.0
    np.testing.assert_allclose(h, np.maximum(x @ mlp.coefs_[0] + mlp.intercepts_[0], 0))
    again, _ = train_one_shot(x, train.labels[pick], 20, 0, cfg)
    np.testing.assert_array_equal(again.coefs_[0], mlp.coefs_[0])


def test_run_resumes_and_joins_figure3_rows(mnist, tmp_path, monkeypatch):
    train, test = mnist
    cfg = AnnConfig(sizes=(5, 10), n_images=200, n_repeats=2, ncm_draws=5, max_epochs=300)
    out = tmp_path / "ann"
    rows = run_ann(cfg, train.images, train.labels, test.images, test.labels, out,
                   progress=False)
    table = list(csv.DictReader((out / "results.csv").open()))
    assert [r["model"] for r in table].count("ann_one_shot") == 2
    assert {r["metric"] for r in table if r["model"] == "ncm_raw_pixels_one_shot"} == {
        "euclidean", "cosine"}
    assert (out / "fig5.png").stat().st_size > 10_000
    (out / "pieces" / "n0010_r01.json").unlink()
    calls = []
    real = ann.train_one_shot
    monkeypatch.setattr(ann, "train_one_shot",
                        lambda x, y, h, seed, c: calls.append(h) or real(x, y, h, seed, c))
    assert run_ann(cfg, train.images, train.labels, test.images, test.labels, out,
                   progress=False) == rows
    assert calls == [10]


def test_cli_end_to_end_with_figure3_rows(digits_dir, tmp_path, capsys):
    fig3_out = tmp_path / "fig3"
    assert main(["reproduce", "fig3", "--sizes", "5", "--images", "60", "--splits", "2",
                 "--duration-ms", "100", "--sketch-dim", "128", "--quiet", "--dataset",
                 str(digits_dir), "--out", str(fig3_out)]) == 0
    code = main(["reproduce", "ann", "--sizes", "5", "--images", "60", "--repeats", "2",
                 "--ncm-draws", "3", "--max-epochs", "200", "--dataset", str(digits_dir),
                 "--out", str(tmp_path / "ann"), "--fig3", str(fig3_out), "--quiet"])
    text = capsys.readouterr().out
    assert code == 0
    assert "ann_one_shot" in text and "fig3:crdm_all" in text and "fig3:raw_pixels" in text
    assert main(["reproduce", "ann", "--images", "60", "--dataset", str(digits_dir),
                 "--out", str(tmp_path / "x"), "--fig3", str(tmp_path / "none"),
                 "--sizes", "5", "--repeats", "1", "--ncm-draws", "1", "--quiet",
                 "--max-epochs", "5"]) == 1
    assert "DataError" in capsys.readouterr().err


@pytest.mark.parametrize("kw, field", [({"sizes": ()}, "sizes"), ({"n_repeats": 0}, "n_repeats"),
                                       ({"learning_rate": 0.0}, "learning_rate"),
                                       ({"n_test": 10_000}, "n_test")])
def test_bad_configuration_names_the_field(kw, field):
    with pytest.raises(ValidationError) as exc:
        AnnConfig(**kw)
    assert exc.value.field == field
