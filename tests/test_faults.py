"""Faults survived for real, on a data set the tests write themselves: a Dask worker killed
mid-sweep, two processes on one result folder, a full disk (docs/reliability.md)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from crdm import datasets
from crdm.cli import main
from crdm.errors import FolderBusyError, StorageError
from crdm.reproduce.fig3 import Fig3Config, run_fig3
from crdm.results import ResultFolder
from idx_sets import write_set


@pytest.fixture(scope="module")
def bars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_set(tmp_path_factory.mktemp("data") / "bars", (12, 12), n_test=120)


def sweep_argv(data: Path, out: Path, *extra: str) -> list[str]:
    return ["reproduce", "fig3", "--dataset", str(data), "--sizes", "5,8", "--images", "120",
            "--splits", "2", "--duration-ms", "200", "--chunk-size", "30", "--sketch-dim", "64",
            "--quiet", "--out", str(out), *extra]


@pytest.fixture(scope="module")
def undisturbed(bars: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("undisturbed") / "out"
    assert main(sweep_argv(bars, out)) == 0
    return out


def same_results(a: Path, b: Path) -> None:
    assert (a / "results.csv").read_text() == (b / "results.csv").read_text()
    chunks = sorted(p.relative_to(a) for p in a.glob("chunks/*/*.npz"))
    assert chunks and chunks == sorted(p.relative_to(b) for p in b.glob("chunks/*/*.npz"))
    for name in chunks:
        with np.load(a / name) as x, np.load(b / name) as y:
            assert x.files == y.files
            for key in x.files:
                np.testing.assert_array_equal(x[key], y[key])


def test_a_dask_worker_killed_mid_sweep_loses_nothing(bars, undisturbed, tmp_path):
    """The first worker to start a chunk dies on the spot (its process exits); the scheduler
    hands the chunk to a worker that lives, and the sweep equals the undisturbed one."""
    from dask.distributed import Client, LocalCluster, WorkerPlugin

    class KillFirstWorker(WorkerPlugin):
        def __init__(self, flag: str) -> None:
            self.flag = flag

        def transition(self, key, start, finish, **kwargs):
            if finish == "executing":
                try:
                    fd = os.open(self.flag, os.O_CREAT | os.O_EXCL)
                except FileExistsError:
                    return
                os.close(fd)
                os._exit(1)

    digits = datasets.load_dataset(str(bars), "test")
    config = Fig3Config(sizes=(5, 8), n_images=120, n_splits=2, duration_ms=200.0,
                        chunk_size=30, sketch_dim=64)
    flag = tmp_path / "killed"
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        client.register_plugin(KillFirstWorker(str(flag)))
        run_fig3(config, digits.images, digits.labels, tmp_path / "out", dataset=digits.info,
                 progress=False, client=client)
    assert flag.exists(), "no worker was killed"
    same_results(undisturbed, tmp_path / "out")


HOLDER = textwrap.dedent("""
    import sys, time
    from crdm.results import ResultFolder
    folder = ResultFolder(sys.argv[1], {"experiment": "holder"})
    print("holding", flush=True)
    time.sleep(600)
""")


def test_a_second_process_on_the_same_folder_is_refused_until_the_first_dies(tmp_path, bars):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(FolderBusyError, match=f"pid {holder.pid}"):
            ResultFolder(out, {"experiment": "holder"})
        manifest = (out / "config.json").read_text()
        # the command line says so and does no work
        assert main(sweep_argv(bars, out)) == 1
        assert (out / "config.json").read_text() == manifest
        assert not (out / "chunks").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # a crashed holder leaves nothing held
    folder = ResultFolder(out, {"experiment": "holder"})
    assert folder.config == {"experiment": "holder"}
    # and within one process the folder is shared, not refused
    assert ResultFolder(out, {"experiment": "holder"}).path == folder.path


def test_two_sweeps_started_together_on_one_folder_never_corrupt_it(bars, undisturbed,
                                                                   tmp_path):
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "crdm.cli", *sweep_argv(bars, out)]
    runs = [subprocess.Popen(argv, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = [(run.wait(), run.stderr.read() if run.stderr else "") for run in runs]
    assert any(rc == 0 for rc, _ in outcomes), outcomes
    for rc, err in outcomes:
        assert rc == 0 or "FolderBusyError" in err, err
    assert main(sweep_argv(bars, out)) == 0       # whatever is missing, a rerun finishes
    same_results(undisturbed, out)


def test_a_full_disk_stops_with_a_clear_error_and_the_rerun_continues(bars, undisturbed,
                                                                      tmp_path, monkeypatch,
                                                                      capsys):
    """Writes fail with ENOSPC after the first few files: the run stops with a StorageError,
    every file it wrote is whole, none is left half-written, and the rerun (space back)
    finishes with the undisturbed numbers."""
    import crdm._io

    real_fsync = os.fsync
    calls = {"n": 0}

    def fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] > 6:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    out = tmp_path / "out"
    monkeypatch.setattr(crdm._io.os, "fsync", fsync)
    assert main(sweep_argv(bars, out)) == 1
    err = capsys.readouterr().err
    assert "StorageError" in err and "No space left on device" in err
    assert not list(out.rglob("*.tmp"))
    written = list(out.glob("chunks/*/*.npz"))
    assert written, "the run should have finished some chunks before the disk filled"
    for chunk in written:
        with np.load(chunk) as z, np.load(undisturbed / chunk.relative_to(out)) as want:
            for key in want.files:
                np.testing.assert_array_equal(z[key], want[key])
    monkeypatch.setattr(crdm._io.os, "fsync", real_fsync)
    assert main(sweep_argv(bars, out)) == 0
    same_results(undisturbed, out)


def test_storage_errors_are_os_errors_with_their_errno(tmp_path):
    from crdm._io import atomic_write

    with pytest.raises(StorageError) as info:
        atomic_write(tmp_path / "missing" / "x.json", lambda fh: fh.write(b"{}"))
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOENT
