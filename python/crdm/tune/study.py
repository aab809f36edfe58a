"""A search as a named, resumable Optuna study in a folder, for any task
(:mod:`crdm.tune.tasks`: the Section-4 model, MSTDP).

``DIR/config.json`` binds the folder to its task, settings, search space and data (a
:class:`crdm.results.ResultFolder`: other settings are refused); ``DIR/study.sqlite3`` is the
Optuna storage (SQLite). Every finished trial is committed there when it ends, so a process
killed at any moment loses only the trial it was running: its heartbeat stops, and the next
process to start a trial marks it failed after ``3 × heartbeat_s`` and queues its parameters
again (``RetryFailedTrialCallback``). The target counts finished trials (complete or pruned),
so none is lost or counted twice. Several processes, or the workers of a Dask cluster, may work
on one study at once; each trial's score is a pure function of its parameters and the images.

The sampler is TPE (seeded per process from the study's seed and name and its number of trials); the
pruner is Optuna's median rule on the accuracy after each chunk of images (section4) or block
of presentations (mstdp).
"""

from __future__ import annotations

import fcntl
import json
import math
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crdm._checks import integer
from crdm.datasets import DatasetInfo
from crdm.errors import CrdmError, ValidationError
from crdm.reproduce.experiment import check_image_shape, data_fingerprint, unit_pixels
from crdm.results import ResultFolder
from crdm.tune.objective import TrialTooSlow
from crdm.tune.space import Dimension, check_params, space_from_dict, space_to_dict, suggest
from crdm.tune.tasks import Task, get_task

__all__ = ["TuneData", "check_enqueued", "confirm", "count_finished", "enqueue", "export_trial",
           "open_folder", "open_study", "optimize", "ranked_trials", "run_on_dask",
           "split_training_images", "study_config", "study_task", "trials_table"]

STORAGE_FILE = "study.sqlite3"
#: heartbeat of a running trial; one silent for three beats belongs to a dead process
HEARTBEAT_S = 60


def _states() -> tuple[Any, ...]:
    from optuna.trial import TrialState

    return (TrialState.COMPLETE, TrialState.PRUNED)


@dataclass(frozen=True)
class TuneData:
    """The search and confirmation images: float64 in [0, 1], ``(n, pixels)``."""

    search_images: np.ndarray
    search_labels: np.ndarray
    confirm_images: np.ndarray
    confirm_labels: np.ndarray
    source: str = ""
    dataset: DatasetInfo | None = None

    def fingerprint(self) -> dict[str, Any]:
        """What the study folder records about its images: where they came from, the data
        set (name, files) and the SHA-256 of each part."""
        info = {} if self.dataset is None else self.dataset.as_dict()
        return {**info, "source": self.source,
                "search_sha256": data_fingerprint(self.search_images, self.search_labels),
                "confirm_sha256": data_fingerprint(self.confirm_images, self.confirm_labels)}

    def same_images(self, stored: Mapping[str, Any]) -> bool:
        """Whether a study's stored fingerprint is of these images (by content: the data may
        have moved since)."""
        mine = self.fingerprint()
        return all(stored.get(k) == mine[k] for k in ("search_sha256", "confirm_sha256"))


def split_training_images(images: np.ndarray, labels: np.ndarray, settings: Any, *,
                          source: str = "", dataset: DatasetInfo | None = None) -> TuneData:
    """A seeded draw of ``n_images`` search and ``n_confirm`` disjoint confirmation images
    from training ``images`` (28 × 28, uint8 0-255 or float in [0, 1])."""
    check_image_shape(images, [(28, 28)], experiment="the Section-4 search")
    x = np.asarray(images)
    y = np.asarray(labels).astype(np.int64)
    need = settings.n_images + settings.n_confirm
    if x.shape[0] < need or y.shape[0] != x.shape[0]:
        raise ValidationError(f"the search needs {need} training images (n_images + "
                              f"n_confirm), the data has {min(x.shape[0], y.shape[0])}",
                              "n_images", settings.n_images)
    order = np.random.default_rng(settings.seed).permutation(x.shape[0])[:need]
    s, c = order[:settings.n_images], order[settings.n_images:]
    return TuneData(unit_pixels(x[s]), y[s], unit_pixels(x[c]), y[c], source, dataset)


def open_folder(out: str | Path, study_name: str, settings: Any,
                space: Iterable[Dimension], data: TuneData, *, task: str = "section4"
                ) -> ResultFolder:
    """The study's folder, created or checked against ``task``, ``settings``, ``space`` and
    ``data``; the raw-pixel baseline of the search images is computed once."""
    from crdm import __version__

    fingerprint = data.fingerprint()
    if (Path(out) / "config.json").is_file():
        stored = json_config(out).get("data", {})
        if isinstance(stored, Mapping) and data.same_images(stored):
            fingerprint = dict(stored)      # the same images, wherever they are read now
    # the section4 task is the default, left out of its folders' configuration
    which = {} if task == "section4" else {"task": get_task(task).name}
    folder = ResultFolder(out, {"experiment": "tune", "study": study_name, **which,
                                "settings": settings.as_dict(),
                                "space": space_to_dict(space), "data": fingerprint},
                          provenance={"crdm_version": __version__}, exclusive=False)
    if not folder.has("baseline.json"):
        folder.write_json("baseline.json", {"search": get_task(task).baseline(
            data.search_images, data.search_labels, settings)})
    open_study(folder.path)
    return folder


def open_study(out: str | Path, *, heartbeat_s: int = HEARTBEAT_S, create: bool = True) -> Any:
    """The Optuna study of the folder ``out`` (SQLite storage with heartbeats)."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    folder = Path(out)
    config = json_config(folder)
    # Optuna creates its tables when a storage is first opened; two processes doing that at
    # once collide, so opening is serialised by a lock that the system releases with its
    # process (a crashed run never leaves it held).
    with open(folder / ".storage.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with warnings.catch_warnings():
                # heartbeats are marked experimental in Optuna; they make a kill safe
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = RDBStorage(
                    f"sqlite:///{(folder / STORAGE_FILE).resolve()}",
                    engine_kwargs={"connect_args": {"timeout": 120}},
                    heartbeat_interval=heartbeat_s, grace_period=3 * heartbeat_s,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                        max_retry=3))
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            name = config["study"]
            if create:
                return optuna.create_study(study_name=name, storage=storage,
                                           direction="maximize", load_if_exists=True)
            return optuna.load_study(study_name=name, storage=storage)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def check_enqueued(space: Iterable[Dimension], configurations: Iterable[Any],
                   origin: str | None = None) -> list[dict[str, Any]]:
    """Configurations to run first, each checked against ``space`` (:func:`check_params`;
    ``origin``: the file they came from); a fixed dimension's value is the space's, so it is
    left out."""
    space = tuple(space)
    fixed = {d.name for d in space if d.kind == "fixed"}
    return [{k: v for k, v in check_params(space, config, f"enqueue[{i}]", origin).items()
             if k not in fixed} for i, config in enumerate(configurations)]


def enqueue(out: str | Path, configurations: Iterable[Mapping[str, Any]]) -> int:
    """Queues configurations (some or all of a trial's parameters; the sampler draws the
    rest) to run before sampled ones: known configurations, so that the search reads them on
    its own objective and starts from them. A configuration already in the study is not
    queued twice. Returns how many were queued."""
    _, space, _ = study_config(out)
    checked = check_enqueued(space, configurations)
    study = open_study(out)

    def waiting() -> int:
        import optuna

        return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)))

    before = waiting()
    for params in checked:
        study.enqueue_trial(params, skip_if_exists=True)
    return waiting() - before


def study_task(out: str | Path) -> Task:
    """What the study in the folder ``out`` searches."""
    return get_task(json_config(out).get("task", "section4"))


def study_config(out: str | Path) -> tuple[Any, tuple[Dimension, ...], dict]:
    """Settings, space and data fingerprint stored in the folder ``out``."""
    config = json_config(out)
    task = get_task(config.get("task", "section4"))
    return (task.settings(**config["settings"]), space_from_dict(config["space"]),
            config["data"])


def count_finished(study: Any) -> int:
    return len(study.get_trials(deepcopy=False, states=_states()))


def _objective(task: Task, space: tuple[Dimension, ...], data: TuneData, settings: Any,
               n_threads: int | None, progress: bool) -> Callable[[Any], float]:
    import optuna
    from tqdm.auto import tqdm

    def objective(trial: Any) -> float:
        params = suggest(trial, space)
        total, unit = task.progress(settings, data.search_images.shape[0])
        bar = tqdm(total=total, unit=unit, leave=False, disable=not progress,
                   desc=f"trial {trial.number} {task.describe(params)}")

        def report(accuracy: float, step: int) -> None:
            trial.report(accuracy, step)
            if trial.should_prune():
                trial.set_user_attr("pruned_at", step)
                raise optuna.TrialPruned(f"accuracy {accuracy:.4f} after {step} {unit}")

        try:
            result = task.evaluate(params, data.search_images, data.search_labels, settings,
                                   n_threads=n_threads, report=report, progress=bar.update)
        except TrialTooSlow as exc:
            trial.set_user_attr("too_slow", str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        except CrdmError as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            raise
        finally:
            bar.close()
        for key, value in result.items():
            if key != "accuracy":
                trial.set_user_attr(key, value)
        return result["accuracy"]

    return objective


def optimize(out: str | Path, data: TuneData, n_trials: int, *, n_threads: int | None = None,
             progress: bool = True, heartbeat_s: int = HEARTBEAT_S, worker: int = 0,
             prune_after: int = 0, log: Callable[[str], None] | None = None) -> int:
    """Runs trials in this process until the study has ``n_trials`` finished ones; returns
    how many of them this process finished. Other processes may work on the same study
    meanwhile. The median rule prunes a trial at a report only from step ``prune_after`` on
    (images for the Section-4 task, presentations for MSTDP): a model that learns slowly
    first is not judged by its start."""
    integer("prune_after", prune_after, low=0)
    import optuna
    from optuna.study import MaxTrialsCallback
    from tqdm.auto import tqdm

    settings, space, stored_data = study_config(out)
    task = study_task(out)
    if not data.same_images(stored_data):
        raise ValidationError(f"{out} was created on other images than these", "data",
                              stored_data.get("source"))
    study = open_study(out, heartbeat_s=heartbeat_s)
    before = count_finished(study)
    if before >= n_trials:
        return 0
    # per study, per process and per restart: two studies (or two workers) never replay one
    # another's proposals
    seed = int(np.random.SeedSequence([settings.seed, len(study.trials), worker,
                                       zlib.crc32(study.study_name.encode())])
               .generate_state(1)[0])
    with warnings.catch_warnings():
        # multivariate TPE over the conditional space is marked experimental in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=20,
                                                   multivariate=True, group=True,
                                                   constant_liar=True)
    study.pruner = optuna.pruners.MedianPruner(n_startup_trials=10,
                                               n_warmup_steps=prune_after)
    bar = tqdm(total=n_trials, initial=before, unit="trial", disable=not progress,
               desc=f"study {study.study_name}")

    mine = [0]
    failed_in_a_row: list[str] = []

    def tick(study: Any, trial: Any) -> None:
        mine[0] += trial.state in _states()
        # failed trials do not count towards the target: a space where every trial fails
        # would never end, so stop after a run of them and say why
        if trial.state.name == "FAIL":
            failed_in_a_row.append(str(trial.user_attrs.get("error", "unknown error")))
            if len(failed_in_a_row) >= MAX_FAILED_IN_A_ROW:
                study.stop()
        else:
            failed_in_a_row.clear()
        bar.n = count_finished(study)
        best = _best_value(study)
        bar.set_postfix_str("" if best is None else f"best {100 * best:.2f}%")
        bar.refresh()
        if log is not None:
            value = "" if trial.value is None else f" {100 * trial.value:.2f}%"
            log(f"trial {trial.number}: {trial.state.name}{value}")

    study.optimize(_objective(task, space, data, settings, n_threads,
                              progress and worker == 0),
                   callbacks=[MaxTrialsCallback(n_trials, states=_states()), tick],
                   catch=(CrdmError,), gc_after_trial=True)
    bar.close()
    if len(failed_in_a_row) >= MAX_FAILED_IN_A_ROW:
        raise ValidationError(f"{len(failed_in_a_row)} trials in a row failed, the last with "
                              f"{failed_in_a_row[-1]}: the search space holds settings the "
                              "model refuses; narrow it with --space", "space",
                              failed_in_a_row[-1])
    return mine[0]


#: failed trials (settings the model refuses) in a row after which a process stops
MAX_FAILED_IN_A_ROW = 20


def _best_value(study: Any) -> float | None:
    done = [t.value for t in study.get_trials(deepcopy=False) if t.value is not None
            and t.state.name == "COMPLETE"]
    return max(done) if done else None


def _dask_worker(out: str, data: TuneData, n_trials: int, heartbeat_s: int,
                 worker: int, prune_after: int) -> int:
    return optimize(out, data, n_trials, n_threads=1, progress=False,
                    heartbeat_s=heartbeat_s, worker=worker, prune_after=prune_after)


def run_on_dask(client: Any, out: str | Path, data: TuneData, n_trials: int, *,
                n_workers: int, heartbeat_s: int = HEARTBEAT_S, prune_after: int = 0,
                progress: bool = True) -> int:
    """Runs ``n_workers`` trial loops on a Dask cluster (each on one thread), all on the study
    of ``out`` (the storage must be reachable from the workers: a shared file system);
    ``prune_after`` as in :func:`optimize`."""
    from tqdm.auto import tqdm

    integer("prune_after", prune_after, low=0)
    out = str(Path(out).resolve())
    study = open_study(out, heartbeat_s=heartbeat_s)
    before = count_finished(study)
    shared = client.scatter(data, broadcast=True)
    futures = [client.submit(_dask_worker, out, shared, n_trials, heartbeat_s, w + 1,
                             prune_after, pure=False) for w in range(n_workers)]
    bar = tqdm(total=n_trials, initial=before, unit="trial", disable=not progress,
               desc=f"study {study.study_name} on {n_workers} workers")
    while not all(f.done() for f in futures):
        time.sleep(2.0)
        bar.n = count_finished(study)
        bar.refresh()
    bar.n = count_finished(study)
    bar.close()
    for f in futures:
        f.result()          # a worker's error is raised here
    return count_finished(study) - before


def ranked_trials(study: Any) -> list[Any]:
    """Complete trials with a finite score, best first (ties: the earlier trial)."""
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"
            and t.value is not None and math.isfinite(t.value)]
    return sorted(done, key=lambda t: (-t.value, t.number))


def confirm(out: str | Path, data: TuneData, *, top: int = 3, n_threads: int | None = None,
            progress: bool = True, log: Callable[[str], None] | None = None
            ) -> list[dict[str, Any]]:
    """The ``top`` trials re-scored on the held-out confirmation images, beside grey raw
    pixels on the same images and splits; kept in ``confirm/`` (a rerun reuses them)."""
    from tqdm.auto import tqdm

    settings, _, stored_data = study_config(out)
    task = study_task(out)
    if not data.same_images(stored_data):
        raise ValidationError(f"{out} was created on other images than these", "data",
                              stored_data.get("source"))
    if data.confirm_images.shape[0] == 0:
        raise ValidationError("the study has no confirmation images (n_confirm = 0)",
                              "n_confirm", 0)
    folder = ResultFolder(out, json_config(out), exclusive=False)
    study = open_study(out, create=False)
    if not folder.has("confirm/pixels.json"):
        folder.write_json("confirm/pixels.json", task.baseline(
            data.confirm_images, data.confirm_labels, settings))
    pixels = folder.read_json("confirm/pixels.json")
    rows = []
    for trial in ranked_trials(study)[:top]:
        name = f"confirm/trial_{trial.number:05d}.json"
        params = trial.params | fixed_params(out)
        if not folder.has(name):
            total, unit = task.progress(settings, data.confirm_images.shape[0])
            bar = tqdm(total=total, unit=unit, disable=not progress,
                       desc=f"confirm trial {trial.number}")
            res = task.evaluate(params, data.confirm_images, data.confirm_labels, settings,
                                n_threads=n_threads, progress=bar.update)
            bar.close()
            folder.write_json(name, {"trial": trial.number, "search_accuracy": trial.value,
                                     **res})
        rec = folder.read_json(name)
        metric = task.metric(params)
        rec["pixels"] = pixels[metric]
        rec["metric"] = metric
        rows.append(rec)
        if log is not None:
            sd = rec.get("accuracy_sd")
            log(f"trial {trial.number}: search {100 * trial.value:.2f}%, held-out "
                f"{100 * rec['accuracy']:.2f}%" + ("" if sd is None else f" ± {100 * sd:.2f}")
                + f" (grey pixels {100 * rec['pixels']['mean']:.2f}%, {metric})")
    return rows


def json_config(out: str | Path) -> dict[str, Any]:
    """The stored configuration of the study folder ``out`` (``ValidationError`` if ``out``
    is not one)."""
    manifest = Path(out) / "config.json"
    try:
        config = json.loads(manifest.read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ValidationError(f"{out} is not a crdm tune folder (no readable config.json; "
                              "`crdm tune run --out DIR` creates one)", "out", str(out)) from None
    if not isinstance(config, dict) or config.get("experiment") != "tune":
        raise ValidationError(f"{out} holds another experiment's results, not a study", "out",
                              str(out))
    return config


def fixed_params(out: str | Path) -> dict[str, Any]:
    """Parameters the study's space fixes (Optuna stores only the searched ones)."""
    _, space, _ = study_config(out)
    return {d.name: d.choices[0] for d in space if d.kind == "fixed"}


def export_trial(out: str | Path, number: int | None = None) -> dict[str, Any]:
    """A trial's configuration (the best one by default) as the JSON its command runs
    (section4: ``crdm reproduce fig3 --config FILE``, the model fields of
    :class:`Fig3Config` with the trial's read-out; mstdp: the classifier's keyword
    arguments), with the trial's score beside it for reference."""
    study = open_study(out, create=False)
    if number is None:
        ranked = ranked_trials(study)
        if not ranked:
            raise ValidationError(f"{out}: the study has no complete trial yet", "trial", None)
        trial = ranked[0]
    else:
        found = [t for t in study.get_trials(deepcopy=False) if t.number == number]
        if not found or found[0].state.name != "COMPLETE":
            raise ValidationError(f"{out}: no complete trial number {number}", "trial", number)
        trial = found[0]
    settings, _, _ = study_config(out)
    exported = study_task(out).export(trial.params | fixed_params(out), settings)
    return {**exported,
            "trial": {"study": study.study_name, "number": trial.number, "value": trial.value}}


def trials_table(study: Any, fixed: Mapping[str, Any] | None = None
                 ) -> list[dict[str, Any]]:
    """Every trial as a flat record (number, state, value, ``fixed`` and searched parameters,
    user attributes)."""
    return [{"number": t.number, "state": t.state.name, "value": t.value, **(fixed or {}),
             **t.params,
             **{f"attr_{k}": v for k, v in t.user_attrs.items()}}
            for t in study.get_trials(deepcopy=False)]
