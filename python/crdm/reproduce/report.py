"""Markdown tables from result folders (what ``docs/reproduction.md`` quotes).

``crdm report DIR`` prints, for a Figure-3 folder, one row per recurrent size: the paper's
number where it gives one, our accuracy at 300 ms and at the best sample time, for both edge
sets and both metrics, and the baselines on the same splits; for a Section-4.1 folder, the
Figure-4 table; and so on for every experiment. Each report names its data set; the papers'
numbers appear only beside MNIST (checksum-verified), where they apply.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crdm.errors import DataError
from crdm.reproduce import fig1, fig3, mstdp, sec32
from crdm.reproduce.experiment import is_mnist

__all__ = ["report"]


def _data(cfg: dict[str, Any]) -> str:
    data = cfg.get("data", {})
    return f"data: {data.get('name', 'unnamed')} ({data.get('source', '')})"


def _pct(row: dict[str, Any] | None) -> str:
    return "–" if row is None else f"{100 * row['mean']:.2f} ± {100 * row['sd']:.2f}"


def _pick(rows: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def _best(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    timed = [r for r in rows if isinstance(r["time_ms"], float)]
    return max(timed, key=lambda r: r["mean"]) if timed else None


def _fig3(record: dict[str, Any]) -> str:
    rows = record["rows"]
    cfg = record["config"]
    paper = {n: acc for n, _, acc in fig3.PAPER_POINTS} if is_mnist(cfg) else None
    out = [f"{cfg['n_images']} images, {cfg['n_splits']} splits of "
           f"{cfg['n_images'] - cfg['test_size']}/{cfg['test_size']}, weighted {cfg['k']}-NN; "
           f"sketch {cfg['sketch_dim'] or 'none'}; {_data(cfg)}", ""]
    for label, model in (("Raw pixels", "raw_pixels"), ("Binary pixels", "binary_pixels")):
        raw = {m: (_pick(rows, model=model, metric=m) or [None])[0]
               for m in ("euclidean", "cosine")}
        if raw["euclidean"] is not None or model == "raw_pixels":
            out.append(f"{label}: Euclidean {_pct(raw['euclidean'])}, cosine "
                       f"{_pct(raw['cosine'])}.")
    out.append("")
    head = ("| N | " + ("paper (Eucl.) | " if paper is not None else "")
            + "all edges, Eucl. @300 | all edges, Eucl. best (t) | "
            "all edges, cos. best | all edges, trajectory, cos. | recurrent only, Eucl. best "
            "| STDP off counts, Eucl. best | random projection, Eucl. / cos. |")
    out += [head, "|---" * (8 + (paper is not None)) + "|"]
    sizes = sorted({r["size"] for r in rows if r["model"] == "crdm_all"})
    for n in sizes:
        def best(model: str, metric: str, feature: str, n: int = n) -> dict[str, Any] | None:
            return _best(_pick(rows, model=model, size=n, metric=metric, feature=feature))

        at300 = _pick(rows, model="crdm_all", size=n, metric="euclidean", feature="weights",
                      time_ms=300.0)
        b = best("crdm_all", "euclidean", "weights")
        traj = _pick(rows, model="crdm_all", size=n, metric="cosine", feature="weights",
                     time_ms="trajectory")
        rp = {m: (_pick(rows, model="random_projection", size=n, metric=m) or [None])[0]
              for m in ("euclidean", "cosine")}
        out.append(
            f"| {n} | " + (f"{paper.get(n, '–')} | " if paper is not None else "")
            + f"{_pct(at300[0] if at300 else None)} | "
            f"{_pct(b)} ({b['time_ms']:.0f} ms) | "
            f"{_pct(best('crdm_all', 'cosine', 'weights'))} | "
            f"{_pct(traj[0] if traj else None)} | "
            f"{_pct(best('crdm_recurrent', 'euclidean', 'weights'))} | "
            f"{_pct(best('stdp_off_counts', 'euclidean', 'spike_counts'))} | "
            f"{_pct(rp['euclidean'])} / {_pct(rp['cosine'])} |")
    return "\n".join(out)


def _ann(record: dict[str, Any]) -> str:
    rows = record["rows"]

    def one(model: str, size: Any, metric: str = "") -> dict[str, Any] | None:
        found = [r for r in rows if r["model"] == model and r["size"] == size
                 and (not metric or r["metric"] == metric)]
        return found[0] if found else None

    def params(model: str, size: int) -> str:
        r = one(model, size)
        return "–" if r is None else f"{r['parameters']:,}"

    out = [_data(record["config"]), "",
           "| N | ANN one-shot, cos. 5-NN | CRDM all edges, cos. (fig3) | CRDM all edges, Eucl. "
           "(fig3) | ANN parameters | CRDM feature weights (all / recurrent) | CRDM network "
           "values |", "|---" * 7 + "|"]
    for n in sorted({r["size"] for r in rows if r["model"] == "ann_one_shot"}):
        out.append(f"| {n} | {_pct(one('ann_one_shot', n))} | "
                   f"{_pct(one('fig3:crdm_all', n, 'cosine'))} | "
                   f"{_pct(one('fig3:crdm_all', n, 'euclidean'))} | {params('ann_one_shot', n)} "
                   f"| {params('crdm_features_all', n)} / {params('crdm_features_recurrent', n)} "
                   f"| {params('crdm_network', n)} |")
    for r in rows:
        if r["model"] in ("ncm_raw_pixels_one_shot", "fig3:raw_pixels"):
            out.append(f"\n{r['model']} ({r['metric']}): {_pct(r)} over {r['n_repeats']} "
                       f"{'draws' if r['model'].startswith('ncm') else 'splits'}")
    return "\n".join(out)


def _fig1(record: dict[str, Any]) -> str:
    cfg = record["config"]
    out = [f"{cfg['n_images']} images ({cfg['data']['source']}), {cfg['n_splits']} splits of "
           f"{cfg['n_images'] - cfg['test_size']}/{cfg['test_size']}, cosine majority "
           f"{cfg['k']}-NN; {cfg['walks']} paths per image, Word2Vec {cfg['dimension']}-d, "
           f"{cfg['method']}; {_data(cfg)}", "",
           "| features | average | class 1 | class 8 | all classes |", "|---|---|---|---|---|"]
    if is_mnist(cfg):
        p = fig1.PAPER
        out.append(f"| paper | {p['average']:g} | {p['per_class'][1]:g} | "
                   f"{p['per_class'][8]:g} | – |")
    for r in record["rows"]:
        per = {int(c): v for c, v in r["per_class"].items()}
        out.append(f"| {r['model']} | {_pct(r)} | {100 * per.get(1, float('nan')):.0f} | "
                   f"{100 * per.get(8, float('nan')):.0f} | "
                   f"{' '.join(f'{100 * per[c]:.0f}' for c in sorted(per))} |")
    return "\n".join(out)


def _sec32(record: dict[str, Any]) -> str:
    cfg = record["config"]
    e = record["edges"]
    a, b = cfg["classes"]
    mnist = is_mnist(cfg)
    pe = sec32.PAPER["edges"]
    out = [f"STDP over {cfg['n_stdp']} alternating {a}s and {b}s; {cfg['n_encode']} others "
           f"encoded, {cfg['n_splits']} splits of {cfg['n_encode'] - cfg['test_size']}/"
           f"{cfg['test_size']}; STDP {cfg['stdp'] or 'defaults'}; {_data(cfg)}", "",
           "| edges | rose | fell | turned inhibitory | turned excitatory | unchanged |",
           "|---|---|---|---|---|---|"]
    if mnist:
        out.append(f"| paper | {pe['rose']:g} | {pe['fell']:g} | {pe['turned_inhibitory']:g} | "
                   f"– | {pe['unchanged']:g} |")
    out += [f"| ours ({e['n_edges']:,}) | {100 * e['rose']:.1f} | {100 * e['fell']:.1f} | "
            f"{100 * e['turned_inhibitory']:.1f} | {100 * e['turned_excitatory']:.1f} | "
            f"{100 * e['unchanged']:.1f} |", "",
            "| features | classifier | accuracy |" + (" paper |" if mnist else ""),
            "|---|---|---|" + ("---|" if mnist else "")]
    for r in record["rows"]:
        graph = r["model"].split(" ")[0]
        kind = "knn" if "NN" in r["classifier"] else "svm"
        paper = f" {sec32.PAPER[kind].get(graph, '–')} |" if mnist else ""
        out.append(f"| {r['model']} | {r['classifier']} | {_pct(r)} |{paper}")
    return "\n".join(out)


def _mstdp(record: dict[str, Any]) -> str:
    cfg = record["config"]
    rule = ("symmetrised hidden-to-hidden rule" if cfg.get("symmetric_hidden")
            else "the paper's rule")
    bound = ("" if cfg.get("weight_bound") is None
             else f", weights clipped to ±{cfg['weight_bound']}")
    out = [f"H = {cfg['n_hidden']}, alpha = {cfg['alpha']}, {cfg['n_chains']} chain(s), "
           f"{rule}{bound}, backend {cfg.get('backend', 'numpy')}; {cfg['presentations']} "
           f"presentations of the first {cfg['n_train']} training images; {_data(cfg)}", "",
           f"| model | test ({cfg['n_test']}) | test (first {cfg['n_test_curve']}) | train |",
           "|---|---|---|---|"]
    if is_mnist(cfg):
        p = mstdp.PAPER
        out.append(f"| paper (H = {p['n_hidden']}, {p['presentations']:,} presentations) | – | "
                   f"{p['test_accuracy_500']:g} | {p['train_accuracy']:g} |")
    for r in record["rows"]:
        out.append(f"| {r['model']} | {100 * r['test_accuracy']:.2f} | "
                   f"{100 * r['test_accuracy_curve_set']:.2f} | {100 * r['train_accuracy']:.2f} |")
    out += ["", "| presentations | test accuracy (first "
                f"{cfg['n_test_curve']}) |", "|---|---|"]
    out += [f"| {p['presentations']} | {100 * p['test_accuracy']:.2f} |" for p in record["curve"]]
    gen = record.get("generation")
    if gen:
        out += ["", f"Generated images ({gen['images_per_class']} per label) that the raw-pixel "
                f"5-NN recognises as their label: {100 * gen['recognised']:.1f} % (chance: "
                f"{100 / len(gen['recognised_per_class']):.0f} %); per label "
                + ", ".join(f"{100 * v:.0f}" for v in gen["recognised_per_class"]) + " %."]
        if "label_gains" in gen:     # folders written before the gains were scored lack them
            out += ["", "| label gain | recognised % |", "|---|---|"]
            out += [f"| {row['label_gain']:g} | {100 * row['recognised']:.1f} |"
                    for row in gen["label_gains"]]
    return "\n".join(out)


def report(folder: str | Path) -> str:
    """The markdown table(s) for one result folder."""
    path = Path(folder) / "results.json"
    try:
        record = json.loads(path.read_text())
        experiment = record["config"]["experiment"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is not a crdm results file: {exc}") from exc
    if experiment == "fig3":
        return _fig3(record)
    if experiment == "ann":
        return _ann(record)
    if experiment == "fig1":
        return _fig1(record)
    if experiment == "sec32":
        return _sec32(record)
    if experiment == "mstdp":
        return _mstdp(record)
    raise DataError(f"{path}: no report for experiment {experiment!r}")
