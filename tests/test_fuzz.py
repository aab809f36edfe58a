"""The fuzzing campaign: bad input anywhere ends in a typed crdm error, never anything else.

Every test draws inputs that are valid, slightly wrong or wildly wrong (NaN, ±inf, negative,
zero, huge, wrong shapes and dtypes, truncated or corrupted files, unknown options) and checks
the one property that matters to a user: the call either works, and then its answer is right,
or it raises a :class:`crdm.errors.CrdmError` subclass whose message names the problem. Any
other exception (a ``TypeError`` from deep inside numpy, a Rust panic, an ``OSError`` from a
reader) fails the test. ``docs/reliability.md`` records how many cases a full campaign tried:
``HYPOTHESIS_PROFILE=long pytest tests/test_fuzz.py --hypothesis-show-statistics``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crdm
from crdm.errors import CrdmError
from crdm.network import Network, load_network, two_block_sbm
from crdm.simulation import RunConfig, Simulator, StdpParams, Stimulus

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

WILD_NUMBERS = [np.nan, np.inf, -np.inf, 0.0, -0.0, -1.0, -1e308, 1e308, 1e-308, 5e-324, 2**63,
                -(2**63), 2**64, 1.5]
WILD_OBJECTS = ["", "abc", "1", None, [], [[1.0]], {"a": 1}, b"\x00", 1j, True, object()]


def wild_value() -> st.SearchStrategy[Any]:
    """Any of the awkward values a parameter might be handed."""
    return st.one_of(st.sampled_from(WILD_NUMBERS), st.sampled_from(WILD_OBJECTS),
                     st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True))


def assert_typed(exc: BaseException) -> None:
    """The error a user sees: a crdm error with a message (or fail the test)."""
    assert isinstance(exc, CrdmError), f"{type(exc).__name__}: {exc}"
    assert str(exc).strip()


def outcome(call: Any, *args: Any, **kwargs: Any) -> Any:
    """``call(...)``'s value, or ``None`` after checking that what it raised is typed."""
    try:
        return call(*args, **kwargs)
    except Exception as exc:   # the point is to inspect whatever escapes
        assert_typed(exc)
        return None


# -- the network and the simulation ---------------------------------------------------------

NETWORK_ARGS = ("positions_um", "edges", "weights", "velocity_m_s", "refractory_ms",
                "threshold", "tau_m_ms", "length_um", "plastic", "input_nodes")


@st.composite
def network_kwargs(draw: st.DrawFn) -> dict[str, Any]:
    """Valid ``Network.from_arrays`` arguments, then up to three of them replaced or bent."""
    n = draw(st.integers(1, 6))
    m = draw(st.integers(0, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kw: dict[str, Any] = {
        "positions_um": rng.uniform(0, 300, (n, 3)),
        "edges": rng.integers(0, n, (m, 2)),
        "weights": rng.uniform(-1.5, 1.5, m),
        "velocity_m_s": rng.uniform(0.05, 1.0, m),
        "refractory_ms": rng.uniform(0.1, 3.0, n),
        "threshold": rng.uniform(0.2, 2.0, n),
        "tau_m_ms": np.where(rng.random(n) < 0.5, np.inf, rng.uniform(1, 40, n)),
        "plastic": rng.random(m) < 0.5,
        "input_nodes": np.arange(min(n, 2)),
    }
    valid = dict(kw)
    for name in draw(st.lists(st.sampled_from(NETWORK_ARGS), max_size=3, unique=True)):
        how = draw(st.sampled_from(["value", "element", "shape", "dtype"]))
        current = np.asarray(valid.get(name, np.zeros(m)))
        if how == "value":
            kw[name] = draw(wild_value())
        elif how == "element" and current.size:
            bent = current.astype(np.float64)
            bent.flat[draw(st.integers(0, current.size - 1))] = draw(st.sampled_from(WILD_NUMBERS))
            kw[name] = bent
        elif how == "shape":
            kw[name] = np.resize(current, draw(st.sampled_from([(0,), (1,), (n + 1,), (2, 2),
                                                                 (m + 1, 3)])))
        else:
            kw[name] = current.astype(draw(st.sampled_from([np.complex128, np.str_, object,
                                                            np.float16, np.uint8, bool])))
    return kw


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(kw=network_kwargs(), n_ticks=st.integers(1, 60), stdp=st.booleans(),
       stim_seed=st.integers(0, 2**32 - 1))
def test_networks_and_runs(kw, n_ticks, stdp, stim_seed):
    """A network is valid or refused with a typed error; a valid one runs identically on both
    backends (so an odd but legal value such as 1e-308 is not silently mishandled)."""
    net = outcome(Network.from_arrays, **kw)
    if net is None:
        return
    rng = np.random.default_rng(stim_seed)
    stim = Stimulus(rng.integers(0, net.n_nodes, 4), rng.integers(0, n_ticks, 4))
    cfg = RunConfig(duration_ms=n_ticks * 0.1, stdp=StdpParams() if stdp else None,
                    record_causal=True, snapshot_interval_ms=None)
    results = [outcome(lambda b=b: Simulator(net, backend=b).run(stim, cfg))
               for b in ("rust", "reference")]
    if results[0] is None or results[1] is None:
        assert results[0] is None and results[1] is None, "one backend refused, one ran"
        return
    for field in ("spike_nodes", "spike_ticks", "cause_edges", "final_weights"):
        np.testing.assert_array_equal(getattr(results[0], field), getattr(results[1], field))


def _dataclass_fuzz(cls: type, draw: st.DrawFn) -> dict[str, Any]:
    names = [f.name for f in dataclasses.fields(cls)]
    picked = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    return {name: draw(wild_value()) for name in picked}


@given(data=st.data(), which=st.sampled_from(["run", "stdp"]))
def test_run_and_stdp_parameters(data, which):
    """Every wild parameter is accepted with a usable value or refused naming its field."""
    cls = RunConfig if which == "run" else StdpParams
    kw = data.draw(st.composite(lambda draw: _dataclass_fuzz(cls, draw))())
    try:
        cls(**kw)
    except Exception as exc:
        assert_typed(exc)
        # the field at fault, or (for a relation such as duration / dt) a message naming it
        field = str(getattr(exc, "field", ""))
        assert any(k in field or k in str(exc) for k in kw), (field, str(exc), kw)


# -- the experiment configurations and models ------------------------------------------------

def _configs() -> dict[str, type]:
    from crdm.reproduce.ann import AnnConfig
    from crdm.reproduce.fig1 import Fig1Config
    from crdm.reproduce.fig3 import Fig3Config
    from crdm.reproduce.mstdp import MstdpConfig
    from crdm.reproduce.sec32 import Sec32Config

    return {"fig3": Fig3Config, "fig1": Fig1Config, "sec32": Sec32Config, "ann": AnnConfig,
            "mstdp": MstdpConfig}


@given(data=st.data(), which=st.sampled_from(["fig3", "fig1", "sec32", "ann", "mstdp"]))
def test_experiment_configurations(data, which):
    cls = _configs()[which]
    kw = data.draw(st.composite(lambda draw: _dataclass_fuzz(cls, draw))())
    config = outcome(cls, **kw)
    if config is None or not hasattr(config, "network"):
        return
    # Building a network costs memory in proportion to its size: only for the smaller ones.
    if which == "fig3":
        if min(config.sizes) <= 1000:
            outcome(config.network, min(config.sizes))
    elif config.n_hidden <= 1000:
        outcome(config.network)


@given(params=st.dictionaries(st.sampled_from(
    ["n_hidden", "alpha", "n_phases", "n_iterations", "eps_clamped", "beta", "momentum",
     "eps_free", "smoothing", "test_phases", "init_scale", "n_chains", "n_epochs",
     "random_state", "dtype", "backend", "device", "weight_bound", "symmetric_hidden"]),
    wild_value(),
    max_size=2))
def test_mstdp_parameters(params):
    from crdm.mstdp import MSTDPClassifier

    # Valid but huge counts ask for hours of work, not for an error: keep the work small.
    for name in ("n_phases", "n_iterations", "test_phases", "n_epochs", "n_chains"):
        value = params.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 8:
            params[name] = 8

    x = np.random.default_rng(0).random((4, 784))
    y = np.array([0, 1, 2, 3])
    base = {"n_hidden": 4, "n_phases": 1, "n_iterations": 2, "test_phases": 1}
    model = outcome(lambda: MSTDPClassifier(**{**base, **params}).fit(x, y))
    if model is not None:
        assert np.isin(model.predict(x), np.arange(10)).all()


@given(features=st.sampled_from(["ok", "nan", "inf", "1d", "3d", "str", "short_labels"]),
       n_test=wild_value(), k=wild_value())
def test_protocol_inputs(features, n_test, k):
    from crdm.protocol import wknn_protocol

    x = np.random.default_rng(0).random((30, 4))
    y = np.arange(30) % 3
    bad = {"ok": x, "nan": np.where(x > 0.9, np.nan, x), "inf": np.where(x > 0.9, np.inf, x),
           "1d": x[:, 0], "3d": x[None], "str": x.astype(str), "short_labels": x}[features]
    labels = y[:-1] if features == "short_labels" else y
    res = outcome(wknn_protocol, bad, labels, n_test=n_test, k=k, n_splits=2)
    if res is not None:
        assert all(0.0 <= r.mean <= 1.0 for r in res.values())


@given(corpora=st.lists(st.lists(st.lists(st.one_of(st.integers(-5, 2**40),
                                                    st.sampled_from([1.5, "a", None])),
                                          max_size=4), max_size=3), max_size=4),
       dimension=st.one_of(st.integers(-2, 8), st.sampled_from(WILD_NUMBERS)))
def test_embedding_inputs(corpora, dimension):
    from crdm.embedding import embed_paths

    emb = outcome(embed_paths, corpora, dimension=dimension, epochs=1)
    if emb is not None:
        assert emb.shape == (len(corpora), dimension) and np.isfinite(emb).all()


# -- files ----------------------------------------------------------------------------------

@st.composite
def damaged(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` truncated, with bytes flipped, with junk appended, or replaced altogether."""
    how = draw(st.sampled_from(["truncate", "flip", "append", "random", "none"]))
    if how == "truncate":
        return data[:draw(st.integers(0, max(len(data) - 1, 0)))]
    if how == "flip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(out) - 1))
            out[at] ^= draw(st.integers(1, 255))
        return bytes(out)
    if how == "append":
        return data + draw(st.binary(min_size=1, max_size=64))
    if how == "random":
        return draw(st.binary(max_size=256))
    return data


def idx_bytes(arr: np.ndarray) -> bytes:
    code = {np.dtype(np.uint8): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f8"): 0x0E}[arr.dtype]
    return (struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
            + arr.tobytes())


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), shape=st.lists(st.integers(0, 5), min_size=1, max_size=3),
       dtype=st.sampled_from([np.uint8, ">i4", ">f8"]), compress=st.booleans())
def test_idx_reader(tmp_path, data, shape, dtype, compress):
    from crdm.datasets import read_idx

    original = np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)
    raw = data.draw(damaged(idx_bytes(original)))
    path = tmp_path / ("f.gz" if compress else "f")
    path.write_bytes(gzip.compress(raw, mtime=0) if compress else raw)
    arr = outcome(read_idx, path)
    if arr is not None and raw == idx_bytes(original):
        np.testing.assert_array_equal(arr, original)
    elif arr is not None:   # a damaged file that still parses must be self-consistent
        assert arr.size == int(np.prod(arr.shape))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=50)
@given(data=st.data(), n=st.integers(0, 4), side=st.integers(1, 4),
       names=st.sampled_from([("train", "t10k"), ("train", "test"), ("tr", "te")]),
       split=st.sampled_from(["train", "test", "valid"]), compress=st.booleans(),
       with_data_dir=st.booleans())
def test_dataset_directories(tmp_path_factory, data, n, side, names, split, compress,
                             with_data_dir):
    """Any directory given as a data set: a set of images with their labels, or a typed
    error; MNIST's name only for MNIST's files."""
    from crdm.datasets import load_dataset

    folder = tmp_path_factory.mktemp("set")
    for prefix in names:
        for kind, arr in (("images-idx3-ubyte",
                           np.arange(n * side * side, dtype=np.uint8).reshape(n, side, side)),
                          ("labels-idx1-ubyte", np.arange(n, dtype=np.uint8) % 10)):
            raw = data.draw(damaged(idx_bytes(arr)))
            name = f"{prefix}-{kind}" + (".gz" if compress else "")
            (folder / name).write_bytes(gzip.compress(raw, mtime=0) if compress else raw)
    digits = outcome(load_dataset, str(folder), split,
                     data_dir=folder if with_data_dir else None)
    if digits is not None:
        assert digits.images.shape[0] == digits.labels.shape[0] and not digits.info.is_mnist
    # and any string as the data set's name
    outcome(load_dataset, data.draw(st.text(max_size=8)), "train", download=False)


@pytest.fixture(scope="module")
def saved_network(tmp_path_factory) -> tuple[Network, bytes]:
    net = two_block_sbm(6, seed=1, block_probabilities=((0.0, 0.2), (0.0, 0.3)),
                        image_shape=(3, 3))
    path = net.save(tmp_path_factory.mktemp("net") / "net.npz")
    return net, Path(path).read_bytes()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_network_files(tmp_path, saved_network, data):
    """A damaged network file is refused, or (damage outside the data, e.g. a zip timestamp)
    loads as exactly the saved network: never as a different one."""
    net, blob = saved_network
    path = tmp_path / "net.npz"
    path.write_bytes(data.draw(damaged(blob)))
    loaded = outcome(load_network, path)
    if loaded is not None:
        assert loaded == net


@pytest.fixture(scope="module")
def saved_mstdp(tmp_path_factory) -> tuple[Any, bytes]:
    from crdm.mstdp import MSTDPClassifier

    x = np.random.default_rng(0).random((3, 784))
    model = MSTDPClassifier(n_hidden=3, n_phases=1, n_iterations=2, test_phases=1).fit(
        x, np.array([0, 1, 2]))
    path = model.save(tmp_path_factory.mktemp("mstdp") / "m.npz")
    return model, Path(path).read_bytes()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_model_checkpoints(tmp_path, saved_mstdp, data):
    from crdm.mstdp import load_mstdp

    model, blob = saved_mstdp
    path = tmp_path / "m.npz"
    path.write_bytes(data.draw(damaged(blob)))
    loaded = outcome(load_mstdp, path)
    if loaded is not None:
        assert loaded.get_params() == model.get_params()
        x = np.random.default_rng(1).random((2, 784))
        np.testing.assert_array_equal(loaded.decision_function(x), model.decision_function(x))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), which=st.sampled_from(["config.json", "chunk.npz"]))
def test_result_folders(tmp_path_factory, data, which):
    """A damaged manifest or chunk is refused or read back unchanged, never mixed in."""
    from crdm.results import ResultFolder

    root = tmp_path_factory.mktemp("results")
    config = {"experiment": "fuzz", "n": 3}
    folder = ResultFolder(root, config)
    folder.write_arrays("chunk.npz", a=np.arange(5.0))
    target = root / which
    target.write_bytes(data.draw(damaged(target.read_bytes())))
    reopened = outcome(ResultFolder, root, config)
    if reopened is None:
        return
    arrays = outcome(reopened.read_arrays, "chunk.npz")
    if arrays is not None:
        np.testing.assert_array_equal(arrays["a"], np.arange(5.0))


# -- the command line -----------------------------------------------------------------------

class _Reached(Exception):
    """Raised instead of running an experiment: the arguments made a valid configuration."""


COMMANDS = [["demo"], ["reproduce", "fig3"], ["reproduce", "fig1"], ["reproduce", "sec32"],
            ["reproduce", "ann"], ["reproduce", "mstdp"], ["report"], ["bench"], ["bogus"],
            ["tune", "run"], ["tune", "export"], ["tune", "confirm"], ["tune"], []]
OPTIONS = ["--sizes", "--images", "--plastic", "--json", "--splits", "--test-size",
           "--duration-ms", "--seed",
           "--sketch-dim", "--chunk-size", "--network", "--stdp", "--pixel-threshold",
           "--threads", "--workers", "--walks", "--max-length", "--method", "--classes",
           "--stdp-images", "--encode-images", "--repeats", "--max-epochs", "--ncm-draws",
           "--split", "--quiet", "--no-baselines", "--no-download", "--unknown", "-x",
           "--hidden", "--presentations", "--eval-every", "--alpha", "--chains",
           "--space", "--space-file", "--trials", "--input-code", "--code", "--config",
           "--top", "--trial", "--confirm-images", "--max-trial-s", "--heartbeat-s", "--rule",
           "--layered"]
VALUES = ["nan", "inf", "-inf", "-1", "0", "1", "3", "1e400", "abc", "", "1,5", "5,5", "1,,2",
          "[1]", "a_plus=nan", "a_plus=-1", "w_min=2", "velocity_m_s=[0,1]", "bogus=1",
          "weight=1e308", "density=2", "test", "train", "doc2vec", "=", "x=", "1" * 30,
          "threshold=0:1", "threshold=2:1:log", "size=5", "plastic=0:1", "latency", "rate",
          "latency_window_ms=-1", "rate_max_hz=0", "/nonexistent/file.json", "eqprop", "chl",
          "mstdp"]


def _fake_digits(n: int = 3000) -> Any:
    from crdm.datasets import Digits

    rng = np.random.default_rng(0)
    return Digits(rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                  np.arange(n, dtype=np.uint8) % 10, "fuzz")


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(COMMANDS),
       options=st.lists(st.tuples(st.sampled_from(OPTIONS), st.sampled_from(VALUES)),
                        max_size=4))
def test_command_line(command, options, capsys):
    """Any argument list: exit 2 with a usage message, exit 1 with a crdm error, or a valid
    configuration handed to the experiment; nothing else."""
    from crdm import bench, cli, datasets
    from crdm.reproduce import ann, fig1, fig3, mstdp, sec32

    argv = [*command]
    for opt, value in options:
        flag = opt in ("--quiet", "--no-baselines", "--no-download", "--json", "--layered")
        argv += [opt] if flag else [opt, value]
    if command == ["report"]:
        argv.append("/nonexistent/folder")
    if command[:1] == ["tune"]:
        argv += ["--out", "/nonexistent/folder"]

    def reached(*args: Any, **kwargs: Any) -> Any:
        raise _Reached

    with pytest.MonkeyPatch.context() as mp:
        for module, name in ((fig3, "run_fig3"), (fig1, "run_fig1"), (sec32, "run_sec32"),
                             (ann, "run_ann"), (mstdp, "run_mstdp"),
                             (bench, "bench_engine")):
            mp.setattr(module, name, reached)
        mp.setattr(datasets, "load_mnist", lambda *a, **k: _fake_digits())
        from crdm.tune import study

        mp.setattr(study, "open_folder", reached)
        mp.setattr(datasets, "load_demo_digits", lambda *a, **k: _fake_digits())
        # Starting Dask clusters is tested in test_fig3.py; here only the options are fuzzed.
        mp.setattr(cli, "_dask_client", lambda args: contextlib.nullcontext())
        try:
            code = cli.main(argv)
        except SystemExit as exc:
            assert exc.code in (0, 2), exc.code
            assert capsys.readouterr().err.strip() or exc.code == 0
            return
        except _Reached:
            return
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("crdm: error: ") and len(err) > 20


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_search_space_files_and_overrides(tmp_path, data):
    """A space file of any content, or an override of any text: a space whose every dimension
    is valid, or a typed error."""
    from crdm.tune.space import SEARCH_SPACE, apply_overrides, load_space_file, parse_override

    names = [d.name for d in SEARCH_SPACE] + ["bogus"]
    entry = st.dictionaries(st.sampled_from(["low", "high", "log", "choices", "value", "x"]),
                            st.one_of(wild_value(), st.lists(wild_value(), max_size=3)),
                            max_size=3)
    content = data.draw(st.one_of(
        st.binary(max_size=64),
        st.dictionaries(st.sampled_from(names), entry, max_size=3).map(
            lambda d: __import__("json").dumps(d, default=repr).encode())))
    path = tmp_path / "space.json"
    path.write_bytes(content)
    overrides = outcome(load_space_file, path)
    if overrides is not None:
        outcome(apply_overrides, SEARCH_SPACE, overrides)
    text = data.draw(st.text(max_size=30))
    parsed = outcome(parse_override, text)
    if parsed is not None:
        outcome(apply_overrides, SEARCH_SPACE, dict([parsed]))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_enqueued_configuration_files(tmp_path, data):
    """A file of configurations to run first, of any content: parameters that every space
    dimension accepts, or a typed error."""
    from crdm.tune.mstdp import MSTDP_SPACE
    from crdm.tune.space import SEARCH_SPACE, load_configurations
    from crdm.tune.study import check_enqueued

    space = data.draw(st.sampled_from([SEARCH_SPACE, MSTDP_SPACE]))
    names = [d.name for d in space] + ["bogus"]
    config = st.dictionaries(st.sampled_from(names),
                             st.one_of(wild_value(), st.booleans(),
                                       st.sampled_from(["graded", "hard_sigmoid", "all"])),
                             max_size=4)
    content = data.draw(st.one_of(
        st.binary(max_size=64),
        st.one_of(config, st.lists(st.one_of(config, wild_value()), max_size=3)).map(
            lambda d: __import__("json").dumps(d, default=repr).encode())))
    path = tmp_path / "known.json"
    path.write_bytes(content)
    configurations = outcome(load_configurations, path)
    if configurations is not None:
        checked = outcome(check_enqueued, space, configurations, origin=str(path))
        for params in checked or []:
            dims = {d.name: d for d in space}
            for name, value in params.items():
                d = dims[name]
                assert (value in d.choices if d.kind == "categorical"
                        else d.low <= value <= d.high)


def test_campaign_covers_every_reader():
    """Guard: a new public reader must join the campaign (add a test above, then here)."""
    import importlib
    import pkgutil

    readers = set()
    for info in pkgutil.walk_packages(crdm.__path__, "crdm."):
        if info.name.endswith("_core"):
            continue
        module = importlib.import_module(info.name)
        readers |= {name for name in getattr(module, "__all__", ())
                    if name.startswith(("load_", "read_"))}
    covered = {"load_network", "load_mstdp", "load_mnist", "load_idx_dataset", "read_npz",
               "load_demo_digits", "read_idx", "load_space_file", "load_dataset",
               "load_configurations"}
    assert readers <= covered, readers - covered
