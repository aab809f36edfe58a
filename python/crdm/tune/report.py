"""Tables and plots of a study: best trials, parameter importances, coverage, confirmation.

:func:`write_report` writes into ``DIR/report/``: ``trials.csv`` (every trial),
``summary.json``, ``history.png`` (optimisation history), ``importances.png`` (fANOVA
importances) and ``slices.png`` (accuracy against the most important parameters); it returns
the markdown that ``crdm report DIR`` prints.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from pathlib import Path
from typing import Any

from crdm._io import atomic_write
from crdm.results import ResultFolder
from crdm.tune.study import (
    fixed_params,
    json_config,
    open_study,
    study_config,
    study_task,
    trials_table,
)
from crdm.tune.tasks import Task

__all__ = ["write_report"]


def _pct(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.2f}"


def _importances(study: Any) -> dict[str, float]:
    import optuna

    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(complete) < 3:
        return {}
    try:
        return optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except (ValueError, RuntimeError):
        return {}


def _cell(value: Any, header: str) -> str:
    """A table cell: a fraction under a header ending in ``%`` as a percentage, other floats
    to four significant digits, the rest as they print."""
    if header.endswith("%") and isinstance(value, float):
        return _pct(value)
    if isinstance(value, float) and not isinstance(value, bool):
        return f"{value:.4g}"
    return str(value)


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    atomic_write(path, lambda fh: fh.write(buf.getvalue()))


def _plots(study: Any, importances: dict[str, float], baseline: dict[str, Any],
           out: Path, log_scale: set[str], task: Task, fixed: dict[str, Any]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trials = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if not trials:
        return []
    written = []
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    xs = [t.number for t in trials]
    ys = [100 * t.value for t in trials]
    best, run = [], -math.inf
    for y in ys:
        run = max(run, y)
        best.append(run)
    pixels = [100 * b["mean"] for b in baseline.values()]
    # left: every trial; right: the band where trials meet the pixel baselines
    for ax, low in ((axes[0], max(0.0, min(ys) - 2)),
                    (axes[1], min([*pixels, max(ys)]) - 4)):
        for metric, color in (("euclidean", "tab:blue"), ("cosine", "tab:orange")):
            pts = [(x, y) for x, y, t in zip(xs, ys, trials, strict=True)
                   if task.metric(t.params | fixed) == metric]
            if pts:
                ax.plot(*zip(*pts, strict=True), "o", ms=3, alpha=0.7, color=color,
                        label=task.trial_label.format(metric=metric))
        ax.step(xs, best, where="post", color="crimson", label="best so far")
        for metric, style in (("euclidean", "--"), ("cosine", ":")):
            if metric in baseline:
                ax.axhline(100 * baseline[metric]["mean"], color="k", ls=style, lw=1,
                           label=f"grey pixels, {metric}")
        ax.set_xlabel("trial")
        ax.set_ylim(low, max([*ys, *pixels]) + 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy on the search images (%)")
    axes[1].legend(fontsize=8)
    fig.suptitle(f"study {study.study_name}: optimisation history")
    _save(fig, out / "history.png")
    written.append("history.png")
    if importances:
        fig, ax = plt.subplots(figsize=(7, 0.3 * len(importances) + 1.2))
        names = list(importances)[::-1]
        ax.barh(names, [importances[n] for n in names])
        ax.set_xlabel("fANOVA importance (share of the accuracy's variance)")
        ax.set_title("parameter importances")
        _save(fig, out / "importances.png")
        written.append("importances.png")
        top = list(importances)[:6]
        fig, axes = plt.subplots(2, 3, figsize=(12, 7), sharey=True)
        for ax, name in zip(axes.ravel(), top, strict=False):
            pts = [(t.params[name], 100 * t.value) for t in trials if name in t.params]
            if not pts:
                continue
            xv, yv = zip(*pts, strict=True)
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xv):
                ax.plot(xv, yv, "o", ms=3, alpha=0.6)
                if name in log_scale and min(xv) > 0:
                    ax.set_xscale("log")
                    # a range under a decade labels its minor ticks, which overlap
                    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            else:
                labels = sorted({str(v) for v in xv})
                ax.plot([labels.index(str(v)) for v in xv], yv, "o", ms=3, alpha=0.6)
                ax.set_xticks(range(len(labels)), labels, fontsize=8)
            ax.set_xlabel(name)
            ax.grid(alpha=0.3)
        for ax in axes[:, 0]:
            ax.set_ylabel("accuracy (%)")
        fig.suptitle("accuracy against the most important parameters")
        _save(fig, out / "slices.png")
        written.append("slices.png")
    return written


def write_report(out: str | Path, *, top: int = 10) -> str:
    """Writes ``out/report/`` and returns its markdown summary."""
    path = Path(out)
    study = open_study(path, create=False)
    settings, space, data = study_config(path)
    task = study_task(path)
    fixed = fixed_params(path)
    folder = ResultFolder(path, json_config(path), exclusive=False)
    baseline = folder.read_json("baseline.json")["search"] if folder.has("baseline.json") else {}
    rows = trials_table(study, fixed)
    states = Counter(r["state"] for r in rows)
    complete = sorted((r for r in rows if r["state"] == "COMPLETE" and r["value"] is not None),
                      key=lambda r: (-r["value"], r["number"]))
    importances = _importances(study)
    report_dir = path / "report"
    report_dir.mkdir(exist_ok=True)
    buf = io.StringIO()
    keys = sorted({k for r in rows for k in r})
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    folder.write_text("report/trials.csv", buf.getvalue())
    plots = _plots(study, importances, baseline, report_dir,
                   {d.name for d in space if d.log}, task, fixed)

    lines = [f"study `{study.study_name}` ({task.name}): {len(rows)} trials ("
             + ", ".join(f"{n} {s.lower()}" for s, n in sorted(states.items())) + "); "
             f"{settings.describe()}, from {data.get('source') or 'the data'}", ""]
    # one split (the MSTDP task's validation images) has no spread to show
    lines.append("Grey raw pixels on the same images and splits: " + ", ".join(
        f"{m} {_pct(b['mean'])}" + (f" ± {_pct(b['sd'])}" if b["sd"] else "")
        for m, b in baseline.items()))
    lines += ["", f"### Best {min(top, len(complete))} trials", "",
              "| trial | accuracy % | ± sd | " + " | ".join(h for h, _ in task.columns) + " |",
              "|---" * (3 + len(task.columns)) + "|"]
    for r in complete[:top]:
        cells = [_cell(r.get(key, ""), header) for header, key in task.columns]
        lines.append(f"| {r['number']} | {_pct(r['value'])} | "
                     f"{_pct(r.get('attr_accuracy_sd'))} | " + " | ".join(cells) + " |")
    if task.group_by is not None:
        lines += ["", f"### Best trial per {task.group_by} and metric", "",
                  f"| {task.group_by} | metric | trials | best % | trial | grey pixels % |",
                  "|---|---|---|---|---|---|"]
        groups: dict[tuple[str, str], list[dict]] = {}
        for r in complete:
            metric = task.metric({k: v for k, v in r.items() if v is not None})
            groups.setdefault((str(r.get(task.group_by, "")), metric), []).append(r)
        for (value, metric), grp in sorted(groups.items()):
            b = baseline.get(metric, {}).get("mean")
            lines.append(f"| {value} | {metric} | {len(grp)} | {_pct(grp[0]['value'])} | "
                         f"{grp[0]['number']} | {_pct(b)} |")
    if importances:
        lines += ["", "### Parameter importances (fANOVA)", "", "| parameter | importance |",
                  "|---|---|"]
        lines += [f"| {k} | {v:.3f} |" for k, v in importances.items()]
    lines += ["", "### Search space", "", "| parameter | searched | when |", "|---|---|---|"]
    for d in space:
        what = (f"[{d.low:g}, {d.high:g}]{' log' if d.log else ''}" if d.kind in ("float", "int")
                else ", ".join(map(str, d.choices)) if d.kind == "categorical"
                else f"fixed {d.choices[0]}")
        when = "" if d.when is None else f"{d.when[0]} ∈ {{{', '.join(map(str, d.when[1]))}}}"
        lines.append(f"| {d.name} | {what} | {when} |")
    confirmed = sorted(p for p in (path / "confirm").glob("trial_*.json")) \
        if (path / "confirm").is_dir() else []
    if confirmed:
        pixels = folder.read_json("confirm/pixels.json")
        lines += ["", f"### Confirmed on {settings.n_confirm} held-out training images", "",
                  "| trial | search % | held-out % | ± sd | grey pixels eucl. % | cos. % |",
                  "|---|---|---|---|---|---|"]
        for p in confirmed:
            rec = folder.read_json(f"confirm/{p.name}")
            lines.append(f"| {rec['trial']} | {_pct(rec['search_accuracy'])} | "
                         f"{_pct(rec['accuracy'])} | {_pct(rec.get('accuracy_sd'))} | "
                         f"{_pct(pixels['euclidean']['mean'])} | "
                         f"{_pct(pixels['cosine']['mean'])} |")
    if plots:
        lines += ["", "Plots: " + ", ".join(f"`report/{p}`" for p in plots)]
    text = "\n".join(lines) + "\n"
    folder.write_text("report/summary.md", text)
    folder.write_json("report/summary.json", {
        "states": dict(states), "baseline": baseline, "importances": importances,
        "best": complete[:top]})
    return text
