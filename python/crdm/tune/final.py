"""The test-set protocol of a study's best trials: the first time the test set is touched,
so its numbers are the search's verdict (the study chose the trials on training images only).

* ``section4``: the paper's Figure-3 protocol (:func:`crdm.reproduce.fig3.run_fig3`: the first
  ``n_images`` test images, 10 splits of 9,000 / 1,000, weighted 5-NN) with each trial's model
  at the recurrent sizes asked for, read out as the trial was (its edges, feature form,
  sample time), beside grey raw pixels, binary pixels and the random projection of the pixels
  on the same splits, with both metrics. Each network is simulated up to the trial's sample
  time (the weights read there do not depend on later ticks), and once: without the STDP-off
  spike counts.
* ``mstdp``: each trial's classifier trained as ``crdm reproduce mstdp`` trains (the first
  10,000 training images, ``presentations`` of them in seeded blocks, α decaying as in the
  search), scored on the 10,000 test images beside an MLP of the same hidden size and a
  raw-pixel 5-NN on the same images, with its generated digits scored.

Every trial's run is an ordinary result folder (``DIR/trial_N``) that resumes when the
protocol is rerun; ``final.json`` and ``final.md`` are rewritten after every trial, listing
the trials still to run. Two processes on one protocol share its trials: a trial that another
process is running is left to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from crdm._io import atomic_write
from crdm.errors import FolderBusyError, ValidationError
from crdm.input_codes import InputCode
from crdm.reproduce.experiment import check_image_shape
from crdm.reproduce.fig3 import Fig3Config, Fig3Result, run_fig3
from crdm.simulation import StdpParams
from crdm.tune.objective import Readout, trial_configuration
from crdm.tune.study import fixed_params, open_study, ranked_trials, study_config, study_task

__all__ = ["final_config", "final_protocol", "final_table", "trial_rows"]

#: the paper's test-set protocol
PAPER_IMAGES = 10_000
PAPER_SIZES = (100, 200, 400)
#: an MSTDP trial's final training: the length of `crdm reproduce mstdp`'s default run
MSTDP_PRESENTATIONS = 40_000
MSTDP_EVAL_EVERY = 4_000
_METRICS = ("euclidean", "cosine")


def _fig3_feature(readout: Readout) -> tuple[str, str, Any]:
    """The Figure-3 row that holds a read-out: ``(model, feature, time_ms)``."""
    model = f"crdm_{readout.edges}"
    if readout.form == "trajectory":
        return model, "delta", "trajectory"
    if readout.form == "normalised" and readout.metric != "cosine":
        # unit-length Δw: cosine reads it as Δw does, Euclidean distances differ
        raise ValidationError("the normalised feature form with the Euclidean metric has no "
                              "Figure-3 row", "readout.form", readout.form)
    return model, "weights" if readout.form == "weights" else "delta", readout.sample_time_ms


def final_config(params: dict[str, Any], settings: Any, sizes: Sequence[int],
                 n_images: int) -> Fig3Config:
    """The Figure-3 configuration of a trial's model (``crdm tune export`` run by
    ``crdm reproduce fig3 --config FILE --sizes … --duration-ms T --no-stdp-off``: the
    verdict's baselines are the pixels and their projection, so the STDP-off counts, which
    simulate every image a second time, are left out)."""
    model, readout = trial_configuration(params)
    _fig3_feature(readout)
    duration = settings.duration_ms if readout.sample_time_ms is None else readout.sample_time_ms
    return Fig3Config(sizes=tuple(sizes), n_images=n_images, duration_ms=duration,
                      sample_interval_ms=settings.sample_interval_ms, k=settings.k,
                      seed=settings.seed, sketch_dim=settings.sketch_dim, stdp_off=False,
                      plastic=model["plastic"], stdp=StdpParams(**model["stdp"]),
                      network_params=dict(model["network_params"]),
                      input_code=InputCode(**model["input_code"]))


def _pick(result: Fig3Result, model: str, feature: str | None, size: int | None, time: Any,
          metric: str) -> dict[str, Any] | None:
    for row in result.rows:
        if (row["model"] == model and row["metric"] == metric
                and (feature is None or row["feature"] == feature)
                and (size is None or row["size"] == size)
                and (time is None or str(row["time_ms"]) == str(time))):
            return row
    return None


def trial_rows(number: int, readout: Readout, result: Fig3Result,
               sizes: Sequence[int]) -> list[dict[str, Any]]:
    """One row per size: the trial's read-out and the baselines on the same splits, both
    metrics (percentages, mean and sd over splits)."""
    model, feature, time = _fig3_feature(readout)
    rows = []
    for size in sizes:
        row: dict[str, Any] = {"trial": number, "size": size, "edges": readout.edges,
                               "form": readout.form, "time_ms": time,
                               "search_metric": readout.metric}
        for metric in _METRICS:
            found = {
                "crdm": _pick(result, model, feature, size, time, metric),
                "grey_pixels": _pick(result, "raw_pixels", None, None, None, metric),
                "binary_pixels": _pick(result, "binary_pixels", None, None, None, metric),
                "random_projection": _pick(result, "random_projection", None, size, None,
                                           metric)}
            for name, hit in found.items():
                row[f"{name}_{metric}"] = None if hit is None else 100 * hit["mean"]
                row[f"{name}_{metric}_sd"] = None if hit is None else 100 * hit["sd"]
        rows.append(row)
    return rows


def _pct(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.2f}"


def final_table(rows: Sequence[dict[str, Any]]) -> str:
    """The markdown table of :func:`final_protocol`'s rows."""
    out = ["| trial | N | read-out | metric | CRDM % | grey pixels % | binary pixels % | "
           "random projection % | CRDM − grey |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        where = (f"{r['edges']} edges, {r['form']}, "
                 + ("all times" if r["time_ms"] == "trajectory" else f"{r['time_ms']:g} ms"))
        for metric in _METRICS:
            crdm, grey = r[f"crdm_{metric}"], r[f"grey_pixels_{metric}"]
            gap = None if crdm is None or grey is None else crdm - grey
            mark = " (searched)" if metric == r["search_metric"] else ""
            out.append(f"| {r['trial']} | {r['size']} | {where} | {metric}{mark} | "
                       f"{_pct(crdm)} ± {_pct(r[f'crdm_{metric}_sd'])} | {_pct(grey)} | "
                       f"{_pct(r[f'binary_pixels_{metric}'])} | "
                       f"{_pct(r[f'random_projection_{metric}'])} | "
                       f"{'–' if gap is None else f'{gap:+.2f}'} |")
    return "\n".join(out)


def _best(out: str | Path, test: Any, top: int) -> tuple[Any, list[Any]]:
    """The study's settings and its ``top`` trials, after the checks every protocol makes:
    complete trials exist, and the test images are of the data set the study was tuned on."""
    settings, _, stored = study_config(out)
    check_image_shape(test.images, [(28, 28)], experiment="a study's test-set protocol")
    name = getattr(test, "name", None)
    if stored.get("name") is not None and name != stored["name"]:
        raise ValidationError(f"the study was tuned on {stored['name']!r}, the test images "
                              f"are of {name!r}", "dataset", name)
    ranked = ranked_trials(open_study(out, create=False))[:top]
    if not ranked:
        raise ValidationError(f"{out}: the study has no complete trial yet", "out", str(out))
    return settings, ranked


def _write(results: str | Path, record: dict[str, Any], table: str,
           pending: Sequence[int]) -> None:
    """``final.json`` and ``final.md`` as they stand: written after every trial, so that a
    protocol of many hours shows its finished trials while the next ones run."""
    import json

    path = Path(results)
    path.mkdir(parents=True, exist_ok=True)
    record = record | {"pending": list(pending)}
    if pending:
        table += ("\n\nStill to run: trial" + ("s " if len(pending) > 1 else " ")
                  + ", ".join(map(str, pending)) + " (the same command continues).")
    atomic_write(path / "final.json",
                 lambda fh: fh.write(json.dumps(record, indent=1).encode()))
    atomic_write(path / "final.md", lambda fh: fh.write((table + "\n").encode()))


def final_protocol(out: str | Path, test: Any, results: str | Path, *, top: int = 3,
                   train: Any = None, sizes: Sequence[int] = PAPER_SIZES,
                   n_images: int = PAPER_IMAGES, presentations: int = MSTDP_PRESENTATIONS,
                   eval_every: int = MSTDP_EVAL_EVERY, n_threads: int | None = None,
                   progress: bool = True, log: Callable[[str], None] | None = None,
                   client: Any = None) -> tuple[list[dict[str, Any]], str]:
    """Runs (or continues) the protocol of the study's task (module docstring) for the
    ``top`` trials of the study in ``out`` into ``results/trial_N``; ``test`` (and, for an
    MSTDP study, ``train``) are :class:`crdm.datasets.Digits`. Writes ``results/final.json``
    and ``final.md``; returns the rows and the markdown table.

    Everything is checked before any training or simulation."""
    if study_task(out).name == "mstdp":
        if train is None:
            raise ValidationError("an MSTDP study's protocol trains: give the training images",
                                  "train", None)
        return _mstdp_protocol(out, train, test, results, top=top,
                               presentations=presentations, eval_every=eval_every,
                               progress=progress, log=log)
    rows = _section4_protocol(out, test, results, top=top, sizes=sizes, n_images=n_images,
                              n_threads=n_threads, progress=progress, log=log, client=client)
    return rows, final_table(rows)


def _section4_protocol(out: str | Path, digits: Any, results: str | Path, *, top: int,
                       sizes: Sequence[int], n_images: int, n_threads: int | None,
                       progress: bool, log: Callable[[str], None] | None, client: Any
                       ) -> list[dict[str, Any]]:
    say = log or (lambda msg: None)
    settings, ranked = _best(out, digits, top)
    name = getattr(digits, "name", None)
    plans = []
    for trial in ranked:
        params = trial.params | fixed_params(out)
        config = final_config(params, settings, sizes, min(n_images, len(digits)))
        plans.append((trial, trial_configuration(params)[1], config))

    def run(trial: Any, readout: Readout, config: Fig3Config) -> list[dict[str, Any]]:
        say(f"trial {trial.number} (search {100 * trial.value:.2f} %): sizes "
            f"{', '.join(map(str, sizes))}, {config.duration_ms:g} ms per image")
        result = run_fig3(config, digits.images, digits.labels,
                          Path(results) / f"trial_{trial.number}",
                          dataset=getattr(digits, "info", None), n_threads=n_threads,
                          progress=progress, log=log, client=client)
        return trial_rows(trial.number, readout, result, sizes)

    def write(rows: list[dict[str, Any]], pending: list[int]) -> None:
        _write(results, {"study": str(out), "task": "section4", "top": top,
                         "sizes": list(sizes), "n_images": n_images, "data": name,
                         "rows": rows}, final_table(rows), pending)

    return _each_trial(plans, run, write, say)


def _each_trial(plans: Sequence[tuple[Any, ...]], run: Callable[..., list[dict[str, Any]]],
                write: Callable[[list[dict[str, Any]], list[int]], None],
                say: Callable[[str], None]) -> list[dict[str, Any]]:
    """Runs ``run(*plan)`` for each plan (its first item the trial) and rewrites the summary
    after each, rows in the plans' order. A trial whose folder another process is writing
    (a second ``crdm tune final`` on the same study) is left to it and tried again once the
    others are done: so two processes share the trials, and the last to finish writes the
    whole table."""
    numbers = [plan[0].number for plan in plans]
    done: dict[int, list[dict[str, Any]]] = {}

    def rows() -> list[dict[str, Any]]:
        return [row for number in numbers for row in done.get(number, [])]

    for second_pass in (False, True):
        for number, plan in zip(numbers, plans, strict=True):
            if number in done:
                continue
            try:
                done[number] = run(*plan)
            except FolderBusyError:
                say(f"trial {number}: another process is running it"
                    + ("" if second_pass else "; trying it again after the others"))
                continue
            write(rows(), [n for n in numbers if n not in done])
    return rows()


def _mstdp_protocol(out: str | Path, train: Any, test: Any, results: str | Path, *, top: int,
                    presentations: int, eval_every: int, progress: bool,
                    log: Callable[[str], None] | None) -> tuple[list[dict[str, Any]], str]:
    from crdm.reproduce.mstdp import MstdpConfig, run_mstdp

    say = log or (lambda msg: None)
    settings, ranked = _best(out, test, top)
    task = study_task(out)
    plans = []
    for trial in ranked:
        exported = task.export(trial.params | fixed_params(out), settings)
        config = MstdpConfig.from_export(exported, presentations=presentations,
                                         eval_every=min(eval_every, presentations),
                                         n_train=min(10_000, len(train)),
                                         n_test=min(10_000, len(test)),
                                         n_test_curve=min(500, len(test)), seed=settings.seed)
        plans.append((trial, config))

    def run(trial: Any, config: Any) -> list[dict[str, Any]]:
        say(f"trial {trial.number} (search {100 * trial.value:.2f} %): {presentations} "
            "presentations")
        record = run_mstdp(config, train, test, Path(results) / f"trial_{trial.number}",
                           progress=progress, log=log)
        by_model = {row["model"]: row for row in record["rows"]}
        gen = record["generation"]
        best = next(row for row in gen["label_gains"]
                    if row["label_gain"] == gen["best_label_gain"])
        return [{"trial": trial.number, "search": 100 * trial.value,
                 "presentations": presentations,
                 "test": 100 * by_model["mstdp"]["test_accuracy"],
                 "train": 100 * by_model["mstdp"]["train_accuracy"],
                 "mlp": 100 * by_model["mlp_backprop"]["test_accuracy"],
                 "raw_pixels": 100 * by_model["raw_pixels_5nn"]["test_accuracy"],
                 "generated": 100 * gen["recognised"],
                 "generated_best": 100 * best["recognised"],
                 "best_label_gain": best["label_gain"], "n_test": config.n_test}]

    def write(rows: list[dict[str, Any]], pending: list[int]) -> None:
        _write(results, {"study": str(out), "task": "mstdp", "top": top,
                         "presentations": presentations, "data": getattr(test, "name", None),
                         "rows": rows}, _mstdp_table(rows), pending)

    rows = _each_trial(plans, run, write, say)
    return rows, _mstdp_table(rows)


def _mstdp_table(rows: Sequence[dict[str, Any]]) -> str:
    return "\n".join([
        "| trial | search % | presentations | test % | train % | MLP % | raw pixels 5-NN % | "
        "generated recognised %, gain 1 / best (gain) |", "|---|---|---|---|---|---|---|---|",
        *(f"| {r['trial']} | {r['search']:.2f} | {r['presentations']} | {r['test']:.2f} | "
          f"{r['train']:.2f} | {r['mlp']:.2f} | {r['raw_pixels']:.2f} | "
          f"{r['generated']:.1f} / {r['generated_best']:.1f} ({r['best_label_gain']:g}) |"
          for r in rows)])
