"""Every command on data sets other than MNIST, written by the tests themselves as IDX files:
their identity in the results, the papers' numbers only beside MNIST, other image shapes run
or refused, and MNIST itself never mistaken either way."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from crdm import datasets
from crdm.cli import main
from crdm.errors import ChecksumError, ValidationError
from crdm.reproduce.report import report
from idx_sets import write_set


@pytest.fixture
def bars28(tmp_path: Path) -> Path:
    return write_set(tmp_path / "bars28")


@pytest.fixture
def bars12(tmp_path: Path) -> Path:
    return write_set(tmp_path / "bars12", (12, 12))


def test_another_data_set_is_named_after_its_directory_with_its_files(bars28):
    train = datasets.load_dataset(str(bars28), "train")
    assert train.name == "idx:bars28" and not train.info.is_mnist
    assert train.images.shape == (80, 28, 28) and len(train) == 80
    files = train.info.as_dict()["files"]
    assert set(files) == {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte"}
    raw = gzip.decompress((bars28 / "train-images-idx3-ubyte.gz").read_bytes())
    import hashlib

    assert files["train-images-idx3-ubyte.gz"] == {"sha256": hashlib.sha256(raw).hexdigest(),
                                                   "bytes": len(raw)}


def test_files_named_like_mnist_are_refused_as_mnist_and_never_called_mnist(tmp_path):
    """A copy whose content is not MNIST's (damaged, or another set under MNIST's file names)
    is refused where MNIST is asked for, and loads under another name where a directory is."""
    fake = write_set(tmp_path / "mnist")
    with pytest.raises(ChecksumError, match="does not match MNIST"):
        datasets.load_dataset("mnist", "train", data_dir=fake)
    loaded = datasets.load_dataset(str(fake), "test")
    assert loaded.name == "idx:mnist" and not loaded.info.is_mnist


def test_mnist_in_any_directory_is_mnist_by_its_checksums(mnist_dir, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in mnist_dir.glob("t10k-*"):
        (copy / f.name).symlink_to(f)
    assert datasets.load_dataset(str(copy), "test").info.is_mnist
    damaged = tmp_path / "damaged"
    shutil.copytree(copy, damaged, symlinks=False)
    labels = damaged / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(labels.read_bytes()))
    raw[-1] = (raw[-1] + 1) % 10
    labels.write_bytes(gzip.compress(bytes(raw)))
    assert not datasets.load_dataset(str(damaged), "test").info.is_mnist
    with pytest.raises(ChecksumError):
        datasets.load_dataset("mnist", "test", data_dir=damaged)


def test_data_dir_belongs_to_mnist_only(bars28, tmp_path):
    with pytest.raises(ValidationError) as info:
        datasets.load_dataset(str(bars28), "train", data_dir=tmp_path)
    assert info.value.field == "data_dir"


def fig3_argv(dataset: Path, out: Path) -> list[str]:
    return ["reproduce", "fig3", "--dataset", str(dataset), "--sizes", "5", "--images", "60",
            "--splits", "2", "--duration-ms", "200", "--chunk-size", "30", "--quiet",
            "--out", str(out)]


@pytest.mark.parametrize("which", ["bars28", "bars12"])
def test_fig3_runs_on_another_data_set_without_the_papers_numbers(which, request, tmp_path,
                                                                  capsys):
    dataset = request.getfixturevalue(which)
    out = tmp_path / "out"
    assert main(fig3_argv(dataset, out)) == 0
    record = json.loads((out / "results.json").read_text())
    data = record["config"]["data"]
    assert data["name"] == f"idx:{dataset.name}" and len(data["files"]) == 2
    assert "paper_points" not in record
    side = 28 if which == "bars28" else 12
    assert record["config"]["network_params"].get("image_shape", [28, 28]) == [side, side]
    pixels = [r for r in record["rows"] if r["model"] == "raw_pixels"]
    assert pixels and pixels[0]["n_features"] == side * side
    table = report(out)
    assert f"data: idx:{dataset.name}" in table and "paper" not in table
    assert f"images of idx:{dataset.name}" in capsys.readouterr().out
    # the same folder continues; other data in it is refused
    assert main(fig3_argv(dataset, out)) == 0
    other = write_set(tmp_path / "other", (side, side), n_test=70)
    assert main(fig3_argv(other, out)) == 1
    assert "another configuration" in capsys.readouterr().err


def test_ann_runs_on_any_image_size(bars12, tmp_path):
    out = tmp_path / "ann"
    assert main(["reproduce", "ann", "--dataset", str(bars12), "--sizes", "8", "--images", "60",
                 "--repeats", "2", "--test-size", "20", "--max-epochs", "50", "--ncm-draws",
                 "2", "--quiet", "--out", str(out)]) == 0
    record = json.loads((out / "results.json").read_text())
    ann = next(r for r in record["rows"] if r["model"] == "ann_one_shot")
    assert ann["parameters"] == 144 * 8 + 8 + 10 * 8 + 10
    assert record["config"]["data"]["name"] == "idx:bars12"


@pytest.mark.parametrize("command", [
    ["reproduce", "fig1", "--images", "40"],
    ["reproduce", "sec32", "--stdp-images", "4", "--encode-images", "20"],
    ["reproduce", "mstdp", "--presentations", "10"],
    ["tune", "run", "--trials", "1", "--images", "60", "--confirm-images", "0"],
])
def test_experiments_defined_on_28_by_28_refuse_other_shapes_before_any_work(command, bars12,
                                                                              tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*command, "--dataset", str(bars12), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "ValidationError" in err and "12 × 12" in err
    assert not (out / "config.json").exists()


def test_demo_and_bench_take_another_data_set(bars12, tmp_path, capsys):
    assert main(["bench", "--dataset", str(bars12), "--sizes", "5", "--images", "2",
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {r["n_recurrent"] for r in rows} == {5}
    assert all(r["synapses"] == 144 * 5 + 5 * 4 for r in rows)
    assert main(["demo", "--dataset", str(bars12), "--sizes", "5", "--images", "40",
                 "--splits", "2", "--duration-ms", "200", "--quiet",
                 "--out", str(tmp_path / "demo")]) == 0
    assert "idx:bars12" in capsys.readouterr().out


def test_reports_quote_the_paper_only_beside_mnist(tmp_path):
    """The same Section-3.1 record reported as MNIST and as another data set."""
    row = {"model": "crdm_paths", "mean": 0.5, "sd": 0.01, "per_class": {"1": 0.9, "8": 0.6}}
    for name, paper in (("mnist", True), ("idx:bars", False)):
        folder = tmp_path / name.replace(":", "_")
        folder.mkdir()
        cfg = {"experiment": "fig1", "n_images": 100, "n_splits": 2, "test_size": 10, "k": 5,
               "walks": 2, "dimension": 8, "method": "mean",
               "data": {"name": name, "source": "x", "files": {}}}
        (folder / "results.json").write_text(json.dumps({"config": cfg, "rows": [row]}))
        assert ("| paper |" in report(folder)) is paper
