"""The ``crdm`` command line, end to end."""

from __future__ import annotations

import subprocess
import sys

import pytest

from crdm.cli import main


def test_demo_prints_spikes_events_and_weight_changes(mnist_dir, capsys):
    code = main(["demo", "--digits", "2", "--recurrent", "20", "--duration-ms", "60",
                 "--data-dir", str(mnist_dir)])
    out = capsys.readouterr().out
    assert code == 0
    assert "784 input + 20 recurrent nodes" in out
    assert "million per second" in out
    assert "weight change of the recurrent edges" in out
    rows = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 2


def test_demo_bad_data_dir_is_a_clear_error(tmp_path, capsys):
    assert main(["demo", "--data-dir", str(tmp_path / "none")]) == 1
    assert "DataError" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["demo", "--digits", "0"], ["demo", "--recurrent", "-3"]])
def test_demo_rejects_bad_counts(argv, capsys):
    assert main(argv) == 2


def test_unknown_option_exits_2():
    proc = subprocess.run([sys.executable, "-m", "crdm.cli", "demo", "--bogus"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "unrecognized arguments" in proc.stderr
