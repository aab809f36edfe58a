"""``crdm reproduce mstdp`` end to end on a tiny run, and its resume."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from crdm.cli import main
from crdm.reproduce.mstdp import LABEL_GAINS


def test_cli_end_to_end_and_resume(digits_dir, tmp_path, capsys):
    argv = ["reproduce", "mstdp", "--hidden", "6", "--presentations", "7", "--eval-every",
            "3", "--train-images", "40", "--test-images", "30", "--dataset", str(digits_dir),
            "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "mlp_backprop" in out and "raw_pixels_5nn" in out
    curve = list(csv.DictReader((tmp_path / "curve.csv").open()))
    assert [int(r["presentations"]) for r in curve] == [3, 6, 7]
    record = json.loads((tmp_path / "results.json").read_text())
    assert {r["model"] for r in record["rows"]} == {"mstdp", "mlp_backprop", "raw_pixels_5nn"}
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in record["rows"])
    gen = record["generation"]
    assert len(gen["recognised_per_class"]) == 10 and gen["images_per_class"] == 20
    assert gen["recognised"] == sum(gen["recognised_per_class"]) / 10
    assert [row["label_gain"] for row in gen["label_gains"]] == list(LABEL_GAINS)
    assert gen["label_gains"][0]["recognised"] == gen["recognised"]
    best = max(row["recognised"] for row in gen["label_gains"])
    assert gen["best_label_gain"] == next(row["label_gain"] for row in gen["label_gains"]
                                          if row["recognised"] == best)
    assert "recognised as their label" in out and "30: " in out
    for name in ("curve.png", "generated.png", "training_loop.png", "momentum.png"):
        assert (tmp_path / name).stat().st_size > 5_000
    assert main(["report", str(tmp_path)]) == 0
    report = capsys.readouterr().out
    assert "| mstdp |" in report and "| label gain | recognised % |" in report
    first = (tmp_path / "results.csv").read_text()
    # lose the last checkpoint: the rerun redoes only the last block, with the same numbers
    (tmp_path / "checkpoints" / "000000007.npz").unlink()
    assert main(argv) == 0
    assert "resuming after 6 presentations" in capsys.readouterr().out
    assert (tmp_path / "results.csv").read_text() == first
    assert main([*argv[:-1], "--alpha", "nan", "--quiet"]) == 1
    assert "alpha" in capsys.readouterr().err


def test_hidden_rule_and_backend_are_recorded_and_a_folder_keeps_them(digits_dir, tmp_path,
                                                                      capsys):
    from crdm.mstdp import load_mstdp

    argv = ["reproduce", "mstdp", "--hidden", "5", "--presentations", "4", "--eval-every",
            "4", "--train-images", "20", "--test-images", "10", "--dataset", str(digits_dir),
            "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "sym")]) == 0
    assert main([*argv, "--out", str(tmp_path / "paper"), "--hidden-rule", "paper",
                 "--backend", "array_api_strict"]) == 0
    configs = {name: json.loads((tmp_path / name / "results.json").read_text())["config"]
               for name in ("sym", "paper")}
    assert configs["sym"]["symmetric_hidden"] is True and configs["sym"]["backend"] == "numpy"
    assert configs["paper"]["symmetric_hidden"] is False
    assert configs["paper"]["backend"] == "array_api_strict"
    model = load_mstdp(tmp_path / "paper" / "checkpoints" / "000000004.npz")
    assert model.symmetric_hidden is False and model.backend == "array_api_strict"
    capsys.readouterr()
    # the same folder with another rule is another experiment: refused, not mixed
    assert main([*argv, "--out", str(tmp_path / "sym"), "--hidden-rule", "paper"]) == 1
    assert "symmetric_hidden" in capsys.readouterr().err
    assert "activation" not in configs["sym"]          # the default is not stored
    assert main([*argv, "--out", str(tmp_path / "sym"), "--activation", "hard_sigmoid"]) == 1
    assert "activation" in capsys.readouterr().err
    assert main([*argv, "--out", str(tmp_path / "hard"), "--activation", "hard_sigmoid"]) == 0
    model = load_mstdp(tmp_path / "hard" / "checkpoints" / "000000004.npz")
    assert model.activation == "hard_sigmoid" and model.state_.min() >= 0.0


def test_controls_run_in_the_same_experiment_and_resume(digits_dir, tmp_path, capsys):
    argv = ["reproduce", "mstdp", "--rule", "eqprop", "--layered", "--hidden", "12",
            "--presentations", "40", "--eval-every", "20", "--chains", "4", "--train-images",
            "40", "--test-images", "30", "--dataset", str(digits_dir), "--out",
            str(tmp_path), "--quiet"]
    assert main(argv) == 0
    record = json.loads((tmp_path / "results.json").read_text())
    assert [r["model"] for r in record["rows"]] == ["eqprop_layered", "mlp_backprop",
                                                    "raw_pixels_5nn"]
    assert record["config"]["rule"] == "eqprop" and record["config"]["layered"] is True
    first = (tmp_path / "results.csv").read_text()
    (tmp_path / "checkpoints" / "000000040.pkl").unlink()
    assert main(argv) == 0
    assert "resuming after 20 presentations" in capsys.readouterr().out
    assert (tmp_path / "results.csv").read_text() == first
    # a folder of the control is not continued as MSTDP
    assert main([a for a in argv if a not in ("--rule", "eqprop", "--layered")]) == 1
    assert main([*argv[:2], "--layered", *argv[4:]]) == 1       # layered is for the controls
    assert "layered" in capsys.readouterr().err


def test_momentum_inference_figure(digits_dir, tmp_path):
    from crdm.datasets import load_idx_dataset
    from crdm.mstdp import MSTDPClassifier

    d = load_idx_dataset(digits_dir, "train")
    x, y = d.images[:20].reshape(20, -1) / 255.0, d.labels[:20]
    model = MSTDPClassifier(16, n_phases=1).fit(x, y)
    with_m = model.inference_trace(x, y, n_iterations=40)
    without = model.inference_trace(x, y, momentum=0.0, n_iterations=40)
    assert with_m.shape == without.shape == (41, 16)
    np.testing.assert_array_equal(with_m[0], without[0])         # the same starting state
    assert not np.array_equal(with_m[1:], without[1:])
    from crdm.reproduce.mstdp import plot_momentum_inference

    assert plot_momentum_inference(model, x, y, tmp_path / "m.png").stat().st_size > 5_000


def test_curves_of_several_runs_share_one_figure_and_count_the_same_images(tmp_path):
    from crdm.errors import DataError
    from crdm.reproduce.mstdp import plot_curves

    def folder(name: str, **config):
        path = tmp_path / name
        path.mkdir()
        cfg = {"experiment": "mstdp", "rule": "mstdp", "n_hidden": 16, "n_chains": 4,
               "alpha": 0.004, "n_test_curve": 50, "n_train": 100,
               "data": {"name": "mnist"}, **config}
        rows = [{"model": cfg["rule"], "test_accuracy_curve_set": 0.5},
                {"model": "mlp_backprop", "test_accuracy_curve_set": 0.9},
                {"model": "raw_pixels_5nn", "test_accuracy_curve_set": 0.8}]
        curve = [{"presentations": p, "test_accuracy": a} for p, a in ((10, 0.2), (20, 0.5))]
        (path / "results.json").write_text(json.dumps({"config": cfg, "rows": rows,
                                                       "curve": curve}))
        return path

    a, b = folder("a"), folder("b", rule="eqprop", layered=True)
    png = plot_curves([a, b], tmp_path / "curves.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    other = folder("c", n_test_curve=500)
    with pytest.raises(DataError, match="n_test_curve"):
        plot_curves([a, other], tmp_path / "no.png")
    assert not (tmp_path / "no.png").exists()
    # runs that differ only in their MSTDP options get different legend entries
    from crdm.reproduce.mstdp import _curve_label

    plain = {"rule": "mstdp", "n_chains": 16, "alpha": 0.004, "activation": "hard_sigmoid"}
    layered = _curve_label({**plain, "options": {"layered": True}})
    clamped = _curve_label({**plain, "options": {"free_phase": "inputs_clamped"}})
    assert len({_curve_label(plain), layered, clamped}) == 3 and "layered" in layered


def test_a_configuration_from_a_study_is_checked_before_any_work(tmp_path, capsys):
    from crdm.errors import ValidationError
    from crdm.reproduce.mstdp import MstdpConfig

    config = MstdpConfig.from_export({"classifier": {"n_hidden": 32, "alpha": 0.01, "beta": 0.5,
                                                     "random_state": 7},
                                      "alpha_decay": 0.25}, presentations=100)
    assert (config.n_hidden, config.alpha, config.options) == (32, 0.01, {"beta": 0.5})
    assert config.seed == 0 and config.model().beta == 0.5
    assert config.alpha_at(0) == 0.01 and config.alpha_at(100) == 0.01 * 0.25
    assert "options" not in MstdpConfig().as_dict() and "alpha_decay" not in MstdpConfig().as_dict()
    for kwargs, field in (({"options": {"bogus": 1}}, "options.bogus"),
                          ({"alpha_decay": 0.0}, "alpha_decay"),
                          ({"rule": "eqprop", "options": {"beta": 0.5}}, "rule"),
                          ({"options": {"beta": -1.0}}, "beta")):
        with pytest.raises(ValidationError) as err:
            MstdpConfig(**kwargs)
        assert err.value.field == field
    with pytest.raises(ValidationError, match="classifier"):
        MstdpConfig.from_export({"alpha_decay": 0.5})
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"classifier": {"n_hidden": 8}}))
    argv = ["reproduce", "mstdp", "--config", str(path), "--out", str(tmp_path / "run"),
            "--dataset", str(tmp_path / "nowhere")]
    assert main([*argv, "--alpha", "0.01"]) == 1
    assert "--alpha and --config both set the model" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
