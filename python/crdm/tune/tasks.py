"""What a study searches. A :class:`Task` declares in one place its space, its settings, the
objective, the baseline beside which trials are read, how a trial is exported and which
columns the report shows; the study machinery (storage, sampler, pruner, workers,
confirmation, report) is the same for every task.

* ``section4``: the CRDM's Section-4 encoding, read out by the weighted 5-NN
  (:mod:`crdm.tune.objective`, :data:`crdm.tune.space.SEARCH_SPACE`); exports a
  ``crdm reproduce fig3 --config`` file.
* ``mstdp``: the MSTDP network's own classification after training
  (:mod:`crdm.tune.mstdp`); exports :class:`crdm.MSTDPClassifier` keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from crdm.errors import ValidationError
from crdm.tune import mstdp, objective
from crdm.tune.space import SEARCH_SPACE, Dimension

__all__ = ["TASKS", "Task", "get_task"]


@dataclass(frozen=True)
class Task:
    """One kind of study (see the module docstring)."""

    name: str
    space: tuple[Dimension, ...]
    settings: Callable[..., Any]
    #: ``(params, images, labels, settings, *, n_threads, report, progress) -> {"accuracy", …}``
    evaluate: Callable[..., dict[str, Any]]
    #: grey raw pixels on the same images: ``{metric: {"mean", "sd"}}``
    baseline: Callable[..., dict[str, dict[str, float]]]
    #: the baseline row a trial is read against
    metric: Callable[[Mapping[str, Any]], str]
    #: a few words for a trial's progress bar
    describe: Callable[[Mapping[str, Any]], str]
    #: a trial's configuration as the file its command runs
    export: Callable[[Mapping[str, Any], Any], dict[str, Any]]
    #: what one trial's progress bar counts, and in which unit
    progress: Callable[[Any, int], tuple[int, str]]
    #: ``(header, trial-table key)`` of the report's best-trials table
    columns: tuple[tuple[str, str], ...]
    #: a parameter whose values each get their best trial in the report (or none)
    group_by: str | None
    #: the history plot's legend for trials whose baseline row is ``{metric}``
    trial_label: str = "trial read out with {metric} distance"


def _section4_describe(params: Mapping[str, Any]) -> str:
    model, _ = objective.trial_configuration(params)
    return f"N={model['size']} {model['input_code']['kind']}"


def _section4_export(params: Mapping[str, Any], settings: Any) -> dict[str, Any]:
    model, readout = objective.trial_configuration(params)
    size = model.pop("size")
    return {"sizes": [size], **model,
            "readout": {"edges": readout.edges, "form": readout.form, "metric": readout.metric,
                        "sample_time_ms": readout.sample_time_ms}}


def _mstdp_export(params: Mapping[str, Any], settings: Any) -> dict[str, Any]:
    return {"classifier": mstdp.classifier_params(params, settings),
            "alpha_decay": float(params.get("alpha_decay", 1.0)),
            "presentations": settings.presentations}


TASKS: dict[str, Task] = {
    "section4": Task(
        name="section4", space=SEARCH_SPACE, settings=objective.SearchSettings,
        evaluate=objective.evaluate, baseline=objective.pixel_baseline,
        metric=objective.baseline_metric,
        describe=_section4_describe, export=_section4_export,
        progress=lambda settings, n: (n, "img"),
        columns=(("N", "size"), ("code", "input_code"), ("plastic", "plastic"),
                 ("edges", "feature_edges"), ("form", "feature_form"), ("metric", "metric"),
                 ("t ms", "sample_time_ms"), ("rate Hz", "attr_rate_hz"), ("s", "attr_seconds")),
        group_by="input_code"),
    "mstdp": Task(
        name="mstdp", space=mstdp.MSTDP_SPACE, settings=mstdp.MstdpSearchSettings,
        evaluate=mstdp.evaluate_mstdp, baseline=mstdp.mstdp_baseline,
        metric=lambda p: "euclidean",
        describe=lambda p: f"chains={p.get('n_chains', 1)} {p.get('activation', 'sigmoid4')}",
        export=_mstdp_export,
        progress=lambda settings, n: (settings.presentations, "pres"),
        columns=(("α", "alpha"), ("β", "beta"), ("m", "momentum"), ("chains", "n_chains"),
                 ("ρ", "activation"), ("layered", "layered"), ("train %", "attr_train_accuracy"),
                 ("s", "attr_seconds")),
        group_by="activation",
        trial_label="trial (the network's own label units; pixels read with {metric} "
                    "distance)"),
}


def get_task(name: str) -> Task:
    """The task called ``name`` (``ValidationError`` naming ``task`` otherwise)."""
    if name not in TASKS:
        raise ValidationError(f"invalid value for `task`: {name!r} (one of "
                              f"{', '.join(TASKS)})", "task", name)
    return TASKS[name]
