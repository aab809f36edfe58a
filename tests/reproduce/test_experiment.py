"""What every experiment does with its images: grey levels in [0, 1], never a silent rescale."""

from __future__ import annotations

import numpy as np
import pytest

from crdm.datasets import Digits
from crdm.errors import DtypeError, ValidationError
from crdm.reproduce import ann, experiment, fig1, fig3, mstdp, sec32
from crdm.reproduce.experiment import unit_pixels


def test_integers_are_0_255_and_floats_are_taken_as_they_are():
    u8 = np.array([[0, 51, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(unit_pixels(u8), [[0.0, 0.2, 1.0]])
    np.testing.assert_array_equal(unit_pixels(u8 / 255.0), unit_pixels(u8))
    np.testing.assert_array_equal(unit_pixels(np.array([[True, False]])), [[1.0, 0.0]])
    assert unit_pixels(np.zeros((2, 28, 28), np.uint8)).shape == (2, 784)


@pytest.mark.parametrize(("images", "error"), [
    (np.array([[0.0, 2.0]]), ValidationError), (np.array([[np.nan]]), ValidationError),
    (np.array([[-1, 3]]), ValidationError), (np.array([[300]]), ValidationError),
    (np.array([["a"]]), DtypeError)])
def test_images_that_are_not_grey_levels_are_refused(images, error):
    with pytest.raises(error) as info:
        unit_pixels(images, "images")
    assert info.value.field == "images"


class _Stored(Exception):
    """Raised instead of opening the result folder: carries what the run would store."""


@pytest.fixture()
def stored(monkeypatch):
    seen = []

    def capture(path, config, **kwargs):
        seen.append(config)
        raise _Stored

    # every command opens its folder through the shared scaffold
    monkeypatch.setattr(experiment, "ResultFolder", capture)
    return seen


def _run(which: str, images: np.ndarray, labels: np.ndarray, tmp_path) -> None:
    digits = Digits(images, labels, "test")
    if which == "fig3":
        fig3.run_fig3(fig3.Fig3Config(sizes=(5,), n_images=40, n_splits=1), images, labels,
                      tmp_path, progress=False)
    elif which == "ann":
        ann.run_ann(ann.AnnConfig(sizes=(5,), n_images=40), images, labels, images, labels,
                    tmp_path, progress=False)
    elif which == "fig1":
        fig1.run_fig1(fig1.Fig1Config(n_images=40), images, labels, tmp_path, progress=False)
    elif which == "sec32":
        sec32.run_sec32(sec32.Sec32Config(n_stdp=10, n_encode=20), images, labels, tmp_path,
                        progress=False)
    else:
        mstdp.run_mstdp(mstdp.MstdpConfig(n_train=40, n_test=40, n_test_curve=10,
                                          presentations=2, eval_every=1), digits, digits,
                        tmp_path, progress=False)


@pytest.mark.parametrize("which", ["fig3", "ann", "fig1", "sec32", "mstdp"])
def test_every_experiment_reads_float_images_as_the_same_grey_levels(which, stored, tmp_path):
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (200, 28, 28), dtype=np.uint8)
    labels = np.arange(200) % 10
    for images in (u8, u8 / 255.0):
        with pytest.raises(_Stored):
            _run(which, images, labels, tmp_path)
    assert stored[0]["data"] == stored[1]["data"]
    with pytest.raises(ValidationError):
        _run(which, u8.astype(np.float64), labels, tmp_path)     # 0-255 as floats: refused


def test_a_folder_written_before_data_sets_were_recorded_is_continued(tmp_path):
    """Older folders store only ``{part: fingerprint}`` as ``data``: the same images continue
    them (and the manifest gains today's record); other images are refused."""
    import json

    from crdm.errors import ConfigMismatchError

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (6, 4, 4), dtype=np.uint8), np.arange(6)
    first = experiment.open_results(tmp_path / "run", "demo", {"k": 1}, None,
                                    {"images": (x, y)})
    record = first.config["data"]
    del first
    manifest = tmp_path / "run" / "config.json"
    stored = json.loads(manifest.read_text())
    stored["config"]["data"] = dict(record["sha256"])      # the earlier form
    manifest.write_text(json.dumps(stored))
    again = experiment.open_results(tmp_path / "run", "demo", {"k": 1}, None,
                                    {"images": (x, y)})
    assert json.loads(manifest.read_text())["config"]["data"] == record == again.config["data"]
    del again
    stored["config"]["data"] = {"images": "0" * 64}
    manifest.write_text(json.dumps(stored))
    with pytest.raises(ConfigMismatchError, match="data"):
        experiment.open_results(tmp_path / "run", "demo", {"k": 1}, None,
                                {"images": (x, y)})
